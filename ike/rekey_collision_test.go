package ike_test

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/xdpsec/xdpsec/ike"
	"github.com/xdpsec/xdpsec/ike/message"
)

// dropFirstCreateChild drops the first CREATE_CHILD_SA request each side
// sends: both rekey requests are lost once and retransmitted.
func (tb *testbed) dropFirstCreateChild() {
	dropped := map[string]bool{}
	tb.net.Filter = func(d ike.Datagram) []ike.Datagram {
		h, err := message.UnmarshalHeader(d.Data)
		from := d.Local.Addr().String()
		if err == nil && h.ExchangeType == message.CREATE_CHILD_SA && h.Flags&message.FlagResponse == 0 && !dropped[from] {
			dropped[from] = true
			return nil
		}
		return []ike.Datagram{d}
	}
}

// oneIKESA reports what wantOneIKESA checks.
func (tb *testbed) oneIKESA() bool {
	as, bs := tb.a.sas(), tb.b.sas()
	return len(as) == 1 && len(bs) == 1 && as[0].State == ike.IKESAEstablished && bs[0].State == ike.IKESAEstablished &&
		as[0].SPIi == bs[0].SPIi && as[0].SPIr == bs[0].SPIr && len(as[0].Children) == 1 && len(bs[0].Children) == 1
}

// wantOneIKESA checks that both sides have exactly one IKE SA, the same,
// established, with the one CHILD_SA, and nothing else in any state.
func (tb *testbed) wantOneIKESA(what string) {
	tb.t.Helper()
	if !tb.oneIKESA() {
		as, bs := tb.a.sas(), tb.b.sas()
		tb.t.Fatalf("%s: IKE SAs of a %+v\nof b %+v", what, as, bs)
	}
}

// TestIKERekeyCollisionLostRequests: both sides rekey the IKE SA at once
// and both first requests are lost (RFC 7296 section 2.8.2); the
// retransmits, responses and DELETEs then arrive in an order each seed
// draws: any queued datagram may overtake the others, and time moves on
// to the next timer now and then. Whatever the order, once the timers
// have run each side has one IKE SA, the same, with the CHILD_SA; a
// redundant IKE SA the peer abandoned (its rekey aborted when the old
// IKE SA's DELETE overtook our response, as charon's "peer did not
// notice IKE_SA rekey collision") is deleted by us, with a log line. The
// lag between the two rekeys varies from none to past the first
// retransmission.
func TestIKERekeyCollisionLostRequests(t *testing.T) {
	const seeds = 300
	abandoned := 0
	for seed := range seeds {
		ok := t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rnd := rand.New(rand.NewPCG(uint64(seed), 22))
			tb := newTestbed(t, bedOptions{})
			tb.establish()
			tb.dropFirstCreateChild()
			first, second := tb.a, tb.b
			if rnd.IntN(2) == 1 {
				first, second = second, first
			}
			if err := first.e.RekeyIKESA(tb.established(first).ID); err != nil {
				t.Fatal(err)
			}
			tb.clock.Advance(time.Duration(rnd.IntN(6000)) * time.Millisecond) // default first retransmit: 4s
			if err := second.e.RekeyIKESA(tb.established(second).ID); err != nil {
				t.Fatal(err)
			}
			for step := 0; step < 200; step++ {
				q := tb.net.Queued()
				d, ok := tb.clock.Next()
				// Datagrams are reordered and retransmits overtake
				// them, but none waits for longer than 30 s: a path
				// that loses everything until the retransmits give up
				// ends the IKE SA, rightly, and is no collision.
				if len(q) > 0 && (rnd.IntN(5) > 0 || !ok || d > 30*time.Second) {
					tb.net.DeliverAt(rnd.IntN(len(q)))
					continue
				}
				if !ok {
					break
				}
				if len(q) == 0 && d > time.Minute {
					break
				}
				tb.clock.Advance(d)
			}
			tb.net.Filter = nil
			// Within 30 s (charon's wait for a redundant IKE SA's DELETE)
			// nothing is left over, and nothing changes after.
			settled := false
			for range 30 {
				tb.advance(time.Second)
				if settled = tb.oneIKESA(); settled {
					break
				}
			}
			if !settled {
				tb.wantOneIKESA("30 s after the collision")
			}
			tb.advance(10 * time.Minute)
			tb.wantOneIKESA("after the collision")
			tb.checkKeys()
			if tb.a.log.contains("neither used nor deleted by the peer") || tb.b.log.contains("neither used nor deleted by the peer") {
				abandoned++
			}
		})
		if !ok {
			break
		}
	}
	t.Logf("%d orders, %d with a redundant IKE SA the peer abandoned", seeds, abandoned)
	if abandoned == 0 {
		t.Error("no order left a redundant IKE SA to delete")
	}
}
