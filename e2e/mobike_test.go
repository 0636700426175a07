package e2e

import (
	"fmt"
	"net/netip"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestDaemonMOBIKERoam: site A, the initiator, is a road warrior whose
// WAN address changes while 50 MB go from LAN A to LAN B over real ESP:
// its daemon sees the address go (netlink), moves the IKE SA and the
// CHILD_SA with MOBIKE, and B follows after its COOKIE2 check. The
// transfer completes with its SHA-256, the kernel SAs keep their SPIs and
// counters (read-delete-add keeps the lifetime and replay state), A's
// xdp_wan keeps counting the inbound SA at its new address (the BPF SA
// entry moved with its rx_seen), and once both ends moved nothing is
// dropped as no_sa on either gateway. In "out-of-nat" A starts behind a
// masquerading NAT (ESP in UDP) and moves to a public address of its own:
// the update's NAT detection switches UDP encapsulation off on both
// sides, SPIs kept.
func TestDaemonMOBIKERoam(t *testing.T) {
	for _, v := range []struct {
		name string
		conf tunnelConf
		nat  bool
	}{
		{"route-based", tunnelConf{ifID: 0x4c}, false},
		{"policy-based", tunnelConf{}, false},
		{"out-of-nat", tunnelConf{ifID: 0x4d}, true},
	} {
		t.Run(v.name, func(t *testing.T) {
			testDaemonMOBIKERoam(t, v.conf, v.nat)
		})
	}
}

func testDaemonMOBIKERoam(t *testing.T, c tunnelConf, nat bool) {
	var dp *daemonPair
	newA := netip.MustParseAddr("192.0.2.11")
	// move changes A's address; oldA is the one B saw.
	var move func()
	if nat {
		np := newNATPair(t)
		dp = startDaemonPair(t, np, c)
		if !dp.ga.child("net").Encap || !dp.gb.child("net").Encap {
			t.Fatal("behind the NAT, CHILD_SA net is not UDP-encapsulated")
		}
		// 192.0.2.11 is routed to A through the NAT namespace, which
		// answers ARP for it on B's side and does not masquerade it.
		natNS := np.nat
		ip(t, natNS, "route add "+newA.String()+"/32 dev nat-a")
		sysctl(t, natNS, "net.ipv4.conf.nat-b.proxy_arp", "1")
		if out, err := run(natNS, "", "nft", "insert rule ip nat post ip saddr "+newA.String()+" accept"); err != nil {
			t.Fatalf("nft: %v\n%s", err, out)
		}
		move = func() {
			p := dp.pair
			ip(t, p.a.Netns, "addr add "+newA.String()+"/32 dev "+p.a.wan,
				"route add 192.168.1.254/32 dev "+p.a.wan,
				"route replace default via 192.168.1.254 dev "+p.a.wan+" src "+newA.String())
			ip(t, p.a.Netns, "addr del "+p.a.outer.String()+"/24 dev "+p.a.wan)
		}
	} else {
		dp = newDaemonPair(t, ipv4, c)
		move = func() {
			p := dp.pair
			// The new address first, then the old one goes (the
			// subnet's route stays with the promoted secondary).
			sysctl(t, p.a.Netns, "net.ipv4.conf."+p.a.wan+".promote_secondaries", "1")
			ip(t, p.a.Netns, "addr add "+newA.String()+"/24 dev "+p.a.wan)
			ip(t, p.a.Netns, "addr del "+p.a.outer.String()+"/24 dev "+p.a.wan)
		}
	}
	p := dp.pair
	oldA := p.a.reachedAt()
	before := dp.ga.waitChild("net", 10*time.Second)
	bBefore := dp.gb.child("net")
	if got := ping(t, p.a.lanH, p.a.lanA, p.b.lanA, 3, 5); got != 3 {
		t.Fatalf("before the move: %d of 3 pings answered", got)
	}
	var moved time.Time
	var atMove [2]uint64 // kernel packets of A's inbound and B's inbound SA when the move began
	var noSA [2]uint64
	done := make(chan struct{})
	// during runs on a goroutine of its own while the transfer goes on:
	// it reports with Errorf, and the test waits for it below.
	res := tcpTransfer(t, p.a.lanH, p.a.lanA, p.b.lanH, p.b.lanA, 50<<20, 10*time.Minute, func() {
		defer close(done)
		atMove = [2]uint64{dp.ga.child("net").PacketsIn, dp.gb.child("net").PacketsIn}
		move()
		start := time.Now()
		if err := poll(30*time.Second, func() error {
			for _, sa := range dp.gb.sas() {
				if sa.RemoteHost == newA.String() {
					return nil
				}
				return fmt.Errorf("B's IKE_SA is with %s", sa.RemoteHost)
			}
			return fmt.Errorf("B has no IKE_SA")
		}); err != nil {
			t.Errorf("waiting for B to follow A to its new address: %v", err)
			return
		}
		moved = time.Now()
		t.Logf("both ends moved %v after the address change", moved.Sub(start).Round(time.Millisecond))
		// What was in flight during the move may be lost; from here on
		// nothing may be.
		time.Sleep(500 * time.Millisecond)
		noSA = [2]uint64{dp.ga.counter("no_sa"), dp.gb.counter("no_sa")}
	})
	t.Logf("TCP LAN A → LAN B through ESP while A roamed: %v", res)
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("the move did not finish")
	}
	if moved.IsZero() {
		t.FailNow()
	}
	if res.duration < time.Since(moved) {
		t.Logf("note: the transfer ended before both ends had moved")
	}
	for i, g := range []*gateway{dp.ga, dp.gb} {
		if d := g.counter("no_sa") - noSA[i]; d != 0 {
			t.Errorf("site %s: xdp_wan dropped %d packets as no_sa after the move", g.name, d)
		}
	}
	logA, _ := os.ReadFile(dp.ga.logPath)
	logB, _ := os.ReadFile(dp.gb.logPath)
	if !strings.Contains(string(logA), "requesting address change using MOBIKE") {
		t.Error("A did not request the address change")
	}
	if !strings.Contains(string(logB), "remote address changed from "+oldA.String()+" to "+newA.String()) {
		t.Error("B did not log the move in charon's words")
	}
	after, bAfter := dp.ga.child("net"), dp.gb.child("net")
	if after.SPIIn != before.SPIIn || after.SPIOut != before.SPIOut || bAfter.SPIIn != bBefore.SPIIn {
		t.Errorf("SPIs changed: A %s/%s then %s/%s", before.SPIIn, before.SPIOut, after.SPIIn, after.SPIOut)
	}
	// The kernel's counters went on from where they were: nothing reset
	// them at the move.
	if after.PacketsIn <= atMove[0] || bAfter.PacketsIn <= atMove[1] {
		t.Errorf("inbound packets A %d (at the move %d), B %d (at the move %d): the counters restarted",
			after.PacketsIn, atMove[0], bAfter.PacketsIn, atMove[1])
	}
	if bAfter.BytesIn < 50<<20 {
		t.Errorf("B's inbound SA counted %d bytes, less than the transfer", bAfter.BytesIn)
	}
	// The kernel SAs are at the new address, the old one has none
	// (192.0.2.1 and not the 192.0.2.1 of 192.0.2.11).
	for _, s := range []*site{p.a, p.b} {
		old := p.a.outer
		if s == p.b {
			old = oldA
		}
		st, _ := run(s.Netns, "", "ip", "xfrm", "state")
		if regexp.MustCompile(regexp.QuoteMeta(old.String())+`\b`).MatchString(st) || !strings.Contains(st, "src "+newA.String()) || !strings.Contains(st, "dst "+newA.String()) {
			t.Errorf("site %s's kernel SAs after the move:\n%s", s.name, st)
		}
		if nat && strings.Contains(st, "encap") {
			t.Errorf("site %s's kernel SAs still UDP-encapsulated out of the NAT:\n%s", s.name, st)
		}
	}
	if nat && (after.Encap || bAfter.Encap) {
		t.Errorf("CHILD_SA net UDP-encapsulated out of the NAT: A %v, B %v", after.Encap, bAfter.Encap)
	}
	// A's xdp_wan finds the inbound SA at the new address, with the
	// rx_seen it had before and what came since.
	s, err := dp.ga.maps.SA.Get(parseSPI(t, after.SPIIn), newA)
	if err != nil {
		t.Fatalf("A's BPF SA table at %s: %v", newA, err)
	}
	if s.RxSeenPackets < after.PacketsIn || s.RxSeenPackets <= atMove[0] {
		t.Errorf("A's rx_seen %d at the new address, the kernel authenticated %d (%d at the move)", s.RxSeenPackets, after.PacketsIn, atMove[0])
	}
	if got := ping(t, p.a.lanH, p.a.lanA, p.b.lanA, 3, 5); got != 3 {
		t.Errorf("after the move: %d of 3 pings answered", got)
	}
}

// poll calls cond until it returns nil or the timeout passes, and returns
// its last error.
func poll(timeout time.Duration, cond func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
}
