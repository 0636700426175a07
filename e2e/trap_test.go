package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestDaemonTrap: site A's CHILD_SA net has start_action = trap, and
// nobody initiates. The daemon installs its policies without SAs; a ping
// from LAN A to LAN B makes the kernel send an acquire, the daemon
// negotiates the CHILD_SA (one IKE SA, however many packets asked), and
// the pings that follow pass through it. list-sas then carries the
// kernel's last use of each SA (use-in, use-out).
func TestDaemonTrap(t *testing.T) {
	for _, v := range []struct {
		name string
		conf tunnelConf
	}{
		{"policy-based", tunnelConf{childA: "start_action = trap\n"}},
		// The trap's policies are the XFRM interface's catch-all ones,
		// with its reqid; tc_lan steers the LAN's packets into it.
		{"route-based", tunnelConf{childA: "start_action = trap\n", ifID: 0x51}},
	} {
		t.Run(v.name, func(t *testing.T) { testDaemonTrap(t, v.conf) })
	}
}

func testDaemonTrap(t *testing.T, c tunnelConf) {
	p := newPairWithLANs(t, ipv4)
	dp := &daemonPair{pair: p, conf: c, ga: newGateway(t, p.a, swanctlConf(p, p.a, c)), gb: newGateway(t, p.b, swanctlConf(p, p.b, c))}
	dp.ga.start()
	dp.gb.start()

	pols, _ := run(p.a.Netns, "", "ip", "xfrm", "policy")
	if c.ifID == 0 && !strings.Contains(pols, "src "+p.a.inner.String()+" dst "+p.b.inner.String()) || !strings.Contains(pols, "reqid") {
		t.Fatalf("site A has no trap policy %s === %s:\n%s", p.a.inner, p.b.inner, pols)
	}
	if states, _ := run(p.a.Netns, "", "ip", "xfrm", "state"); strings.TrimSpace(states) != "" {
		t.Fatalf("SAs before any traffic:\n%s", states)
	}
	if sas := dp.ga.sas(); len(sas) != 0 {
		t.Fatalf("IKE SAs before any traffic: %+v", sas)
	}

	// The first echo requests meet no SA (the kernel drops them while
	// the acquire is answered); the later ones pass.
	start := time.Now()
	ping(t, p.a.lanH, p.a.lanA, p.b.lanA, 5, 1)
	dp.ga.waitChild("net", 20*time.Second)
	dp.gb.waitChild("net", 10*time.Second)
	t.Logf("CHILD_SA net established %v after the first packet", time.Since(start).Round(time.Millisecond))
	const n = 10
	if got := ping(t, p.a.lanH, p.a.lanA, p.b.lanA, n, 5); got != n {
		t.Fatalf("ping LAN A %s → LAN B %s through the trapped CHILD_SA: %d of %d answered", p.a.lanA, p.b.lanA, got, n)
	}
	if sas := dp.ga.sas(); len(sas) != 1 || len(sas[0].Children) != 1 {
		t.Errorf("site A: want one IKE SA with one CHILD_SA after the acquires, got %+v", sas)
	}
	dp.ga.waitLogLines(time.Second, "installed trap policy for CHILD_SA net", "acquire for reqid")
	ch := dp.ga.child("net")
	if ch.UseIn == nil || ch.UseOut == nil || *ch.UseIn > 10 || *ch.UseOut > 10 {
		t.Errorf("site A's CHILD_SA after the pings: use-in %v, use-out %v, want a few seconds", ch.UseIn, ch.UseOut)
	} else {
		t.Logf("use-in %ds, use-out %ds", *ch.UseIn, *ch.UseOut)
	}
}

// TestDaemonTrapWithCharon: our trap on gateway A, charon on B answers
// the CHILD_SA that a ping's acquire starts. The request proposes the
// packet's addresses first; charon narrows to the configured selectors,
// so the CHILD_SA shares the trap's policies and the pings that follow
// pass.
func TestDaemonTrapWithCharon(t *testing.T) {
	p := newPairWithLANs(t, ipv4)
	c := tunnelConf{childA: "start_action = trap\n"}
	ga := newGateway(t, p.a, swanctlConf(p, p.a, c))
	ga.start()
	startCharon(t, p.b, swanctlConf(p, p.b, c))
	ping(t, p.a.lanH, p.a.lanA, p.b.lanA, 5, 1)
	ch := ga.waitChild("net", 20*time.Second)
	if strings.Join(ch.LocalTS, " ") != p.a.inner.String() || strings.Join(ch.RemoteTS, " ") != p.b.inner.String() {
		t.Errorf("CHILD_SA net with charon has TS %v === %v, want the configured %s === %s", ch.LocalTS, ch.RemoteTS, p.a.inner, p.b.inner)
	}
	out, _ := ga.xdpsec("list-pols")
	if !strings.Contains(out, fmt.Sprintf("reqid %d\n", ch.ReqID)) {
		t.Errorf("the CHILD_SA's reqid %d is not the trap's:\n%s", ch.ReqID, out)
	}
	const n = 10
	if got := ping(t, p.a.lanH, p.a.lanA, p.b.lanA, n, 5); got != n {
		t.Fatalf("ping LAN A → LAN B through the trapped CHILD_SA with charon: %d of %d answered", got, n)
	}
}
