package ike_test

import (
	mrand "math/rand/v2"
	"testing"

	"github.com/xdpsec/xdpsec/ike"
	"github.com/xdpsec/xdpsec/ike/transform"
)

// Rekey collisions with additional key exchanges (RFC 9370 section
// 2.2.4). Two orders of events:
//
//   - crossing: each end answers the other's CREATE_CHILD_SA request
//     before its own response arrives. Neither new SA exists yet; the
//     four nonces decide when the responses arrive, as in RFC 7296
//     section 2.8.1/2.8.2: the loser does not start its IKE_FOLLOWUP_KE
//     exchanges, the winner goes on and forgets the loser's pending SA,
//     then deletes the old one. No TEMPORARY_FAILURE.
//   - late: one end has its response and sent its first IKE_FOLLOWUP_KE
//     request when the other's CREATE_CHILD_SA request arrives: that one
//     is answered TEMPORARY_FAILURE, and the first end's rekey completes.
//
// Either way both ends keep one new SA with equal keys. The crossing case
// runs with several random streams until each end has won once.
func TestFollowupKERekeyCollision(t *testing.T) {
	set := func(c *ike.Connection) {
		c.Proposals = transform.MustParseProposals(transform.ProtoIKE, "aes256gcm16-prfsha256-x25519-ke1_mlkem512")
		c.Children[0].ESPProposals = transform.MustParseProposals(transform.ProtoESP, "aes128gcm16-x25519-ke1_mlkem512")
	}
	for _, what := range []string{"CHILD_SA", "IKE_SA"} {
		rekey := func(tb *testbed, p *peer) {
			t.Helper()
			var err error
			if what == "CHILD_SA" {
				err = p.e.RekeyChildSA(tb.children(p)[0].ID)
			} else {
				err = p.e.RekeyIKESA(tb.established(p).ID)
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		// outcome checks one SA of each kind on both ends, equal, new.
		outcome := func(t *testing.T, tb *testbed, before ike.IKESAInfo) {
			t.Helper()
			tb.settleRekeys()
			if len(tb.a.sas()) != 1 || len(tb.b.sas()) != 1 {
				t.Fatalf("IKE SAs: a %+v, b %+v", tb.a.sas(), tb.b.sas())
			}
			na, nb := tb.established(tb.a), tb.established(tb.b)
			if na.SPIi != nb.SPIi || na.SPIr != nb.SPIr || len(na.Children) != 1 || len(nb.Children) != 1 {
				t.Fatalf("a %+v, b %+v", na, nb)
			}
			if what == "IKE_SA" && na.SPIi == before.SPIi {
				t.Error("the IKE SA was not rekeyed")
			}
			if what == "CHILD_SA" && na.Children[0].SPIIn == before.Children[0].SPIIn {
				t.Error("the CHILD_SA was not rekeyed")
			}
			if ca, cb := na.Children[0], nb.Children[0]; ca.SPIIn != cb.SPIOut || ca.SPIOut != cb.SPIIn {
				t.Errorf("CHILD_SAs differ: %+v %+v", ca, cb)
			}
			tb.checkKeys()
			// And the SAs rekey on.
			rekey(tb, tb.a)
			tb.net.Flush()
			tb.settleRekeys()
			tb.checkKeys()
		}
		t.Run(what+"/crossing", func(t *testing.T) {
			won := map[string]bool{}
			for seed := byte(1); seed <= 16 && len(won) < 2; seed++ {
				rnd := func(role byte) func(*ike.Config) {
					return func(c *ike.Config) { c.Rand = mrand.NewChaCha8([32]byte{role, seed}) }
				}
				tb := newTestbed(t, bedOptions{connA: set, connB: set, cfgA: rnd(1), cfgB: rnd(2)})
				tb.establish()
				before := tb.established(tb.a)
				rekey(tb, tb.a)
				rekey(tb, tb.b)
				tb.net.Deliver() // a's request to b, answered
				tb.net.Deliver() // b's request to a, answered
				tb.net.Flush()
				outcome(t, tb, before)
				for _, p := range []*peer{tb.a, tb.b} {
					if !p.log.contains("detected " + what + " rekey collision") {
						t.Errorf("seed %d: %s did not detect the collision", seed, p.name)
					}
					if p.log.contains("TEMPORARY_FAILURE") {
						t.Errorf("seed %d: %s sent or got TEMPORARY_FAILURE", seed, p.name)
					}
				}
				lostA := tb.a.log.contains(what + " rekey collision lost, abort incomplete multi-KE rekeying")
				lostB := tb.b.log.contains(what + " rekey collision lost, abort incomplete multi-KE rekeying")
				wonA := tb.a.log.contains(what + " rekey collision won, continue with multi-KE rekeying")
				wonB := tb.b.log.contains(what + " rekey collision won, continue with multi-KE rekeying")
				if lostA == lostB || wonA == wonB || lostA == wonA {
					t.Fatalf("seed %d: lost a %v b %v, won a %v b %v", seed, lostA, lostB, wonA, wonB)
				}
				if wonA {
					won["a"] = true
				} else {
					won["b"] = true
				}
			}
			if len(won) != 2 {
				t.Errorf("winners over the seeds: %v, want both ends", won)
			}
		})
		for _, c := range []struct{ first, order string }{{"a", "decline first"}, {"b", "decline first"}, {"a", "followup first"}, {"b", "followup first"}} {
			first := c.first
			t.Run(what+"/late/"+first+"-first/"+c.order, func(t *testing.T) {
				tb := newTestbed(t, bedOptions{connA: set, connB: set})
				tb.establish()
				before := tb.established(tb.a)
				p, q := tb.a, tb.b
				if first == "b" {
					p, q = tb.b, tb.a
				}
				rekey(tb, p)
				rekey(tb, q)
				tb.net.Deliver()    // p's request to q, answered
				tb.net.DeliverAt(1) // q's response to p: p sends IKE_FOLLOWUP_KE
				tb.net.Deliver()    // q's request to p: declined
				if c.order == "decline first" {
					// TEMPORARY_FAILURE overtakes p's IKE_FOLLOWUP_KE.
					tb.net.DeliverAt(1)
				}
				tb.net.Flush()
				if !p.log.contains("but we did too and already sent IKE_FOLLOWUP_KE, sending TEMPORARY_FAILURE") {
					t.Errorf("%s did not decline the late request", p.name)
				}
				waited := q.log.contains("is being rekeyed by the peer with additional key exchanges")
				if waited != (c.order == "decline first") || !q.log.contains("received TEMPORARY_FAILURE notify") {
					t.Errorf("%s: waited for the peer's rekey %v", q.name, waited)
				}
				if p.log.contains("collision lost") || q.log.contains("collision lost") {
					t.Error("a collision lost: only p's rekey ran")
				}
				outcome(t, tb, before)
			})
		}
	}
}
