package ike_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/xdpsec/xdpsec/ike"
)

// natBed puts a behind a NAT (as in TestNATTraversal).
func natBed(t *testing.T, cfgA func(c *ike.Config)) *testbed {
	tb := newTestbed(t, bedOptions{
		aAddr: netip.MustParseAddr("10.0.0.1"),
		connB: func(c *ike.Connection) { c.RemoteAddrs = nil },
		cfgA:  cfgA,
	})
	tb.nat = true
	tb.net.AddNAT(netip.MustParsePrefix("10.0.0.0/24"), netip.MustParseAddr("203.0.113.1"), 30000)
	return tb
}

// keepAlives returns the NAT-T keepalives sent so far, as they left the NAT.
func (tb *testbed) keepAlives() []ike.Datagram {
	var out []ike.Datagram
	for _, d := range tb.net.Log {
		if len(d.Data) == 1 && d.Data[0] == 0xff {
			out = append(out, d)
		}
	}
	return out
}

func TestNATKeepAlive(t *testing.T) {
	tb := natBed(t, nil)
	// IKE_SA_INIT finds a behind the NAT ("local host is behind NAT,
	// sending keep alives"); IKE_AUTH floats to 4500.
	tb.establish()
	if !tb.a.log.contains("local host is behind NAT, sending keep alives") {
		t.Fatal("NAT not detected")
	}
	// Nothing is sent for keep_alive (20s): a sends one 0xFF octet,
	// without non-ESP marker, from its NAT-T port through the NAT to b's.
	tb.advance(19 * time.Second)
	if n := len(tb.keepAlives()); n != 0 {
		t.Fatalf("%d keepalives before 20s", n)
	}
	tb.advance(2 * time.Second)
	ka := tb.keepAlives()
	if len(ka) != 1 {
		t.Fatalf("%d keepalives after 21s, want 1", len(ka))
	}
	if ka[0].Local != netip.MustParseAddrPort("203.0.113.1:30001") || ka[0].Remote != netip.AddrPortFrom(addrB, 4500) {
		t.Fatalf("keepalive %v -> %v", ka[0].Local, ka[0].Remote)
	}
	if s := tb.b.e.Stats(); s.KeepAlivesReceived != 1 || s.DroppedESP != 0 {
		t.Fatalf("b's stats %+v", s)
	}
	// Outbound ESP at 30s counts as sent: the next keepalive waits until
	// 50s instead of 40s.
	tb.advance(9 * time.Second)
	out := tb.children(tb.a)[0].SPIOut
	tb.a.dp.SetStats(ike.SAID{Dst: netip.MustParseAddr("192.0.2.2"), SPI: out}, ike.SAStats{Packets: 1, LastUsed: tb.clock.Now()})
	tb.advance(19 * time.Second)
	if n := len(tb.keepAlives()); n != 1 {
		t.Fatalf("%d keepalives at 49s despite ESP at 30s", n)
	}
	tb.advance(2 * time.Second)
	if n := len(tb.keepAlives()); n != 2 {
		t.Fatalf("%d keepalives at 51s, want 2", n)
	}
	// So does an IKE exchange: a rekey at 60s moves the next one to 80s.
	tb.advance(9 * time.Second)
	if err := tb.a.e.RekeyChildSA(tb.children(tb.a)[0].ID); err != nil {
		t.Fatal(err)
	}
	tb.advance(19 * time.Second)
	if n := len(tb.keepAlives()); n != 2 {
		t.Fatalf("%d keepalives at 79s despite a rekey at 60s", n)
	}
	tb.advance(2 * time.Second)
	if n := len(tb.keepAlives()); n != 3 {
		t.Fatalf("%d keepalives at 81s, want 3", n)
	}
	// b is not behind a NAT and sends none.
	for _, d := range tb.keepAlives() {
		if d.Local.Addr() == addrB {
			t.Fatal("b sent a keepalive")
		}
	}
	if s := tb.a.e.Stats(); s.KeepAlivesSent != 3 {
		t.Fatalf("a's stats %+v", s)
	}
}

func TestNATKeepAliveInterval(t *testing.T) {
	tb := natBed(t, func(c *ike.Config) { c.KeepAlive = 5 * time.Second })
	tb.establish()
	tb.advance(16 * time.Second)
	if n := len(tb.keepAlives()); n != 3 {
		t.Fatalf("%d keepalives in 16s at 5s intervals, want 3", n)
	}
	off := natBed(t, func(c *ike.Config) { c.KeepAlive = -1 })
	off.establish()
	off.advance(time.Minute)
	if n := len(off.keepAlives()); n != 0 {
		t.Fatalf("%d keepalives although disabled", n)
	}
	// Without a NAT there are none either.
	plain := newTestbed(t, bedOptions{})
	plain.establish()
	plain.advance(time.Minute)
	if n := len(plain.keepAlives()); n != 0 {
		t.Fatalf("%d keepalives without NAT", n)
	}
}
