package e2e

import (
	"fmt"
	"net/netip"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/xdpsec/xdpsec/maps"
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
// masquerading NAT (ESP in UDP) and moves to a public address of its own,
// in "into-nat" the other way: the update's NAT detection switches UDP
// encapsulation off, or on, on both sides, SPIs kept.
func TestDaemonMOBIKERoam(t *testing.T) {
	for _, v := range []struct {
		name string
		conf tunnelConf
	}{
		{"route-based", tunnelConf{ifID: 0x4c}},
		{"policy-based", tunnelConf{}},
		{"out-of-nat", tunnelConf{ifID: 0x4d}},
		{"into-nat", tunnelConf{ifID: 0x4e}},
	} {
		t.Run(v.name, func(t *testing.T) {
			testDaemonMOBIKERoam(t, v.name, v.conf)
		})
	}
}

func testDaemonMOBIKERoam(t *testing.T, name string, c tunnelConf) {
	var dp *daemonPair
	public := netip.MustParseAddr("192.0.2.11")
	// move changes A's address from oldA (A's own) to aNew; B sees A at
	// oldSeen before and at bSees after; encap is whether ESP goes in UDP
	// after the move.
	var move func()
	var oldA, oldSeen, aNew, bSees netip.Addr
	encap := false
	switch name {
	case "out-of-nat", "into-nat":
		np := newNATPair(t)
		// 192.0.2.11 is routed to A through the NAT namespace, which
		// answers ARP for it on B's side and does not masquerade it.
		ip(t, np.nat, "route add "+public.String()+"/32 dev nat-a")
		sysctl(t, np.nat, "net.ipv4.conf.nat-b.proxy_arp", "1")
		if out, err := run(np.nat, "", "nft", "insert rule ip nat post ip saddr "+public.String()+" accept"); err != nil {
			t.Fatalf("nft: %v\n%s", err, out)
		}
		a := np.a
		if name == "out-of-nat" {
			oldA, oldSeen, aNew, bSees = a.outer, a.public, public, public
			move = func() {
				ip(t, a.Netns, "addr add "+public.String()+"/32 dev "+a.wan,
					"route add 192.168.1.254/32 dev "+a.wan,
					"route replace default via 192.168.1.254 dev "+a.wan+" src "+public.String())
				ip(t, a.Netns, "addr del "+a.outer.String()+"/24 dev "+a.wan)
			}
		} else {
			// A starts on the public address (the configurations
			// name it), then moves behind the NAT.
			oldA, oldSeen, aNew, bSees, encap = public, public, a.outer, a.public, true
			ip(t, a.Netns, "addr add "+public.String()+"/32 dev "+a.wan,
				"route replace default via 192.168.1.254 dev "+a.wan+" src "+public.String())
			a.outer, a.public = public, public
			move = func() {
				ip(t, a.Netns, "route replace default via 192.168.1.254 dev "+a.wan+" src "+aNew.String())
				ip(t, a.Netns, "addr del "+public.String()+"/32 dev "+a.wan)
			}
		}
		dp = startDaemonPair(t, np, c)
		if got := dp.ga.child("net").Encap; got == encap {
			t.Fatalf("before the move, CHILD_SA net encapsulated %v", got)
		}
	default:
		dp = newDaemonPair(t, ipv4, c)
		a := dp.pair.a
		oldA, oldSeen, aNew, bSees = a.outer, a.outer, public, public
		move = func() {
			// The new address first, then the old one goes (the
			// subnet's route stays with the promoted secondary).
			sysctl(t, a.Netns, "net.ipv4.conf."+a.wan+".promote_secondaries", "1")
			ip(t, a.Netns, "addr add "+public.String()+"/24 dev "+a.wan)
			ip(t, a.Netns, "addr del "+a.outer.String()+"/24 dev "+a.wan)
		}
	}
	p := dp.pair
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
				if sa.RemoteHost == bSees.String() {
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
	if !strings.Contains(string(logB), "remote address changed from "+oldSeen.String()+" to "+bSees.String()) {
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
	for _, x := range []struct {
		s        *site
		old, now netip.Addr
	}{{p.a, oldA, aNew}, {p.b, oldSeen, bSees}} {
		st, _ := run(x.s.Netns, "", "ip", "xfrm", "state")
		if regexp.MustCompile(regexp.QuoteMeta(x.old.String())+`\b`).MatchString(st) || !strings.Contains(st, "src "+x.now.String()) || !strings.Contains(st, "dst "+x.now.String()) {
			t.Errorf("site %s's kernel SAs after the move (want %s, not %s):\n%s", x.s.name, x.now, x.old, st)
		}
		if got := strings.Contains(st, "encap type espinudp"); got != encap {
			t.Errorf("site %s's kernel SAs UDP-encapsulated: %v, want %v:\n%s", x.s.name, got, encap, st)
		}
	}
	if after.Encap != encap || bAfter.Encap != encap {
		t.Errorf("CHILD_SA net UDP-encapsulated: A %v, B %v, want %v", after.Encap, bAfter.Encap, encap)
	}
	// A's xdp_wan finds the inbound SA at the new address, with the
	// rx_seen it had before and what came since.
	s, err := dp.ga.maps.SA.Get(maps.SAProtoESP, parseSPI(t, after.SPIIn), aNew)
	if err != nil {
		t.Fatalf("A's BPF SA table at %s: %v", aNew, err)
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
