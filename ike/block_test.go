package ike_test

import (
	"encoding/binary"
	"fmt"
	"maps"
	"net/netip"
	"testing"
	"time"

	"github.com/xdpsec/xdpsec/ike"
)

// Tests of Config.BlockThreshold, charon's block_threshold: half-open
// responder IKE SAs per source address.

var addrC = netip.MustParseAddr("192.0.2.3")

// blockVersions are the exchanges that make a responder IKE SA.
var blockVersions = []struct {
	name string
	conn func(c *ike.Connection)
}{
	{"ikev2", func(*ike.Connection) {}},
	{"ikev1-main", v1("aes128-sha256-modp2048", "aes128-sha256")},
	{"ikev1-aggressive", both(v1("aes128-sha256-modp2048", "aes128-sha256"), func(c *ike.Connection) { c.Aggressive = true })},
}

// blockBed is a testbed whose b answers any address, with a filter that
// keeps a's IKE SAs half-open at b while hold is set: everything a sends
// after b's first answer (IKE_AUTH; Main Mode messages 3 and 5,
// Aggressive Mode's HASH_I) is lost.
type blockBed struct {
	*testbed
	conn func(c *ike.Connection)
	hold bool
}

func newBlockBed(t *testing.T, conn func(c *ike.Connection), cfgB func(c *ike.Config)) *blockBed {
	bb := &blockBed{conn: conn, hold: true}
	bb.testbed = newTestbed(t, bedOptions{connA: conn, connB: both(conn, func(c *ike.Connection) { c.RemoteAddrs = nil }), cfgB: cfgB})
	bb.net.Filter = func(d ike.Datagram) []ike.Datagram {
		data := d.Data
		if d.Remote.Port() == 4500 && len(data) >= 4 {
			data = data[4:]
		}
		if bb.hold && d.Local.Addr() == addrA && len(data) >= 16 && binary.BigEndian.Uint64(data[8:16]) != 0 {
			return nil
		}
		return []ike.Datagram{d}
	}
	return bb
}

// initiate starts n IKE SAs from a and delivers what that sends, without
// letting time pass.
func (bb *blockBed) initiate(n int) {
	bb.t.Helper()
	for range n {
		if _, err := bb.a.e.Initiate("gw"); err != nil {
			bb.t.Fatal(err)
		}
	}
	bb.net.Flush()
}

func (bb *blockBed) wantHalfOpen(want map[netip.Addr]int) {
	bb.t.Helper()
	if got := bb.b.e.HalfOpenBySource(); !maps.Equal(got, want) {
		bb.t.Fatalf("b's half-open IKE SAs by source: %v, want %v", got, want)
	}
}

func (bb *blockBed) wantBlocked(want uint64) {
	bb.t.Helper()
	if got := bb.b.e.Stats().DroppedBlocked; got != want {
		bb.t.Fatalf("b dropped %d requests over the block threshold, want %d", got, want)
	}
}

const blockLogA = "ignoring IKE_SA setup from 192.0.2.1, per-IP half-open IKE_SA limit of 5 reached"

// establishedWith counts the IKE SAs p logged as established with a
// remote address.
func establishedWith(p *peer, remote netip.Addr) int {
	return p.log.count(fmt.Sprintf("...%s[moon.example.org]", remote))
}

// TestBlockThreshold: with the default threshold (5), a sixth IKE SA
// from a source that holds five half-open ones is refused before any
// state is made, counted and logged as charon does (once a second),
// while another source still gets its IKE SA; once the five are
// established, the source gets through again, and no count is left.
func TestBlockThreshold(t *testing.T) {
	for _, v := range blockVersions {
		t.Run(v.name, func(t *testing.T) {
			bb := newBlockBed(t, v.conn, nil)
			bb.initiate(5)
			bb.wantHalfOpen(map[netip.Addr]int{addrA: 5})
			bb.wantBlocked(0)
			if n := len(bb.b.sas()); n != 5 {
				t.Fatalf("b has %d IKE SAs, want 5", n)
			}

			// The sixth and seventh: dropped, no SA made, nothing sent
			// back, one log line.
			sent := bb.b.e.Stats().Sent
			bb.initiate(2)
			if n := bb.b.e.Stats().Sent; n != sent {
				t.Fatalf("b sent %d datagrams in answer to refused requests", n-sent)
			}
			bb.wantBlocked(2)
			bb.wantHalfOpen(map[netip.Addr]int{addrA: 5})
			if n := len(bb.b.sas()); n != 5 {
				t.Fatalf("b has %d IKE SAs after the refused requests, want 5", n)
			}
			if n := bb.b.log.count(blockLogA); n != 1 {
				t.Fatalf("b logged %q %d times, want once", blockLogA, n)
			}
			// A second later the next refusal is logged again, with the
			// number of those that were not.
			bb.clock.Advance(time.Second)
			bb.initiate(1)
			bb.wantBlocked(3)
			if !bb.b.log.contains(blockLogA + " suppressed=1") {
				t.Fatalf("b did not log the refusal a second later with suppressed=1")
			}

			// Another source is not limited by a's SAs.
			cc := baseConn(addrC, addrB, "moon.example.org", "sun.example.org", "10.3.0.0/16", "10.2.0.0/16")
			v.conn(cc)
			c := bb.newPeer("c", addrC, cc, "this is a shared secret", 0xc3000000, nil)
			if _, err := c.e.Initiate("gw"); err != nil {
				t.Fatal(err)
			}
			bb.net.Flush()
			bb.wantBlocked(3)
			if n := establishedWith(bb.b, addrC); n != 1 {
				t.Fatalf("b established %d IKE SAs with c, want 1", n)
			}

			// a's five complete: its source frees up and the three
			// refused IKE SAs get through on their retransmits.
			bb.hold = false
			bb.advance(25 * time.Second)
			if n := establishedWith(bb.b, addrA); n != 8 {
				t.Fatalf("b established %d IKE SAs with a, want 8", n)
			}
			bb.wantHalfOpen(map[netip.Addr]int{})
			if n := bb.b.e.HalfOpen(); n != 0 {
				t.Fatalf("b has %d half-open IKE SAs", n)
			}
		})
	}
}

// TestBlockThresholdTimeout: half-open IKE SAs that time out free their
// source as those that are established do.
func TestBlockThresholdTimeout(t *testing.T) {
	for _, v := range blockVersions {
		t.Run(v.name, func(t *testing.T) {
			bb := newBlockBed(t, v.conn, func(c *ike.Config) { c.HalfOpenTimeout = 30 * time.Second })
			bb.initiate(6)
			bb.wantHalfOpen(map[netip.Addr]int{addrA: 5})
			bb.wantBlocked(1)
			// The five time out at 30s; the sixth's retransmits before
			// then are refused too.
			bb.advance(31 * time.Second)
			bb.wantHalfOpen(map[netip.Addr]int{})
			if n := len(bb.b.sas()); n != 0 {
				t.Fatalf("b has %d IKE SAs after the half-open timeout", n)
			}
			refused := bb.b.e.Stats().DroppedBlocked
			bb.initiate(1)
			bb.wantBlocked(refused)
			bb.wantHalfOpen(map[netip.Addr]int{addrA: 1})
			// Whatever is left half-open times out in the end.
			bb.advance(10 * time.Minute)
			bb.wantHalfOpen(map[netip.Addr]int{})
			if n := len(bb.b.sas()); n != 0 {
				t.Fatalf("b has %d IKE SAs in the end", n)
			}
		})
	}
}

// TestBlockThresholdSettings: zero takes the default of 5, a positive
// value is the limit, a negative one disables it.
func TestBlockThresholdSettings(t *testing.T) {
	for _, v := range blockVersions[:2] {
		for _, c := range []struct {
			threshold, held int
		}{{0, 5}, {2, 2}, {1, 1}, {-1, 8}} {
			t.Run(fmt.Sprintf("%s/%d", v.name, c.threshold), func(t *testing.T) {
				bb := newBlockBed(t, v.conn, func(cfg *ike.Config) { cfg.BlockThreshold = c.threshold })
				bb.initiate(8)
				bb.wantHalfOpen(map[netip.Addr]int{addrA: c.held})
				bb.wantBlocked(uint64(8 - c.held))
				if n := len(bb.b.sas()); n != c.held {
					t.Fatalf("b has %d IKE SAs, want %d", n, c.held)
				}
				if logged := bb.b.log.contains("per-IP half-open IKE_SA limit"); logged != (c.held < 8) {
					t.Fatalf("refusal logged: %v", logged)
				}
			})
		}
	}
}
