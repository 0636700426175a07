package ike_test

import (
	"fmt"
	"testing"

	"github.com/xdpsec/xdpsec/ike"
	"github.com/xdpsec/xdpsec/ike/transform"
)

// TestReplayWindowAndESN: replay_window goes into the inbound SAs; with
// ESN (negotiated as the ESN transform) into the outbound SAs too, which
// the kernel refuses as ESN SAs with a window of 0. Without ESN the
// outbound SAs carry none.
func TestReplayWindowAndESN(t *testing.T) {
	for _, tt := range []struct {
		name, esp string
		window    uint32
		esn       bool
	}{
		{"default", "aes128gcm16", 0, false},
		{"1024", "aes128gcm16", 1024, false},
		{"esn-1024", "aes128gcm16-esn", 1024, true},
		{"esn-default", "aes128gcm16-esn", 0, true},
		{"esn-or-not", "aes128gcm16-esn-noesn", 128, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			set := func(c *ike.Connection) {
				c.Children[0].ESPProposals = transform.MustParseProposals(transform.ProtoESP, tt.esp)
				c.Children[0].ReplayWindow = tt.window
			}
			tb := newTestbed(t, bedOptions{connA: set, connB: set})
			tb.establish()
			want := tt.window
			if want == 0 {
				want = ike.DefaultReplayWindow
			}
			for _, end := range []*peer{tb.a, tb.b} {
				sas := end.dp.SAs()
				if len(sas) != 2 {
					t.Fatalf("%d SAs installed, want 2", len(sas))
				}
				for _, sa := range sas {
					wantSA := want
					if !sa.Inbound && !tt.esn {
						wantSA = 0
					}
					if sa.ESN != tt.esn || sa.Replay != wantSA {
						t.Errorf("inbound %v SA %.8x: ESN %v, replay window %d; want ESN %v, window %d", sa.Inbound, sa.SPI, sa.ESN, sa.Replay, tt.esn, wantSA)
					}
				}
			}
		})
	}
}

// TestResponseToInboundMeasured: each CHILD_SA an end initiates (in
// IKE_AUTH, and the rekey) is measured from the response's arrival to its
// inbound SA; the responder measures none (it installs before it
// answers).
func TestResponseToInboundMeasured(t *testing.T) {
	tb := newTestbed(t, bedOptions{})
	tb.establish()
	if a, b := tb.a.e.Stats().ResponseToInbound, tb.b.e.Stats().ResponseToInbound; a.Count != 1 || b.Count != 0 {
		t.Fatalf("after IKE_AUTH: initiator measured %d, responder %d; want 1 and 0", a.Count, b.Count)
	}
	old := tb.children(tb.b)[0]
	if err := tb.b.e.RekeyChildSA(old.ID); err != nil {
		t.Fatal(err)
	}
	tb.settleRekeys()
	if c := tb.children(tb.b); len(c) != 1 || c[0].SPIIn == old.SPIIn {
		t.Fatalf("CHILD_SAs after the rekey: %+v", c)
	}
	a, b := tb.a.e.Stats().ResponseToInbound, tb.b.e.Stats().ResponseToInbound
	if a.Count != 1 || b.Count != 1 {
		t.Errorf("after b's rekey: a measured %d, b %d; want 1 and 1", a.Count, b.Count)
	}
	if b.Max < 0 || b.Sum < b.Max {
		t.Errorf("b's measure: %+v", b)
	}
}

// TestRekeyOutboundAtOnce: the responder of a CHILD_SA rekey holds its
// new outbound SA back until the initiator's DELETE (as charon) unless
// RekeyOutboundAtOnce, when it installs it before it answers: the
// behaviour RFC 7296 allows, which leaves the initiator to install its
// inbound SA before what the responder sends on it arrives.
func TestRekeyOutboundAtOnce(t *testing.T) {
	for _, atOnce := range []bool{false, true} {
		t.Run(fmt.Sprint("at-once=", atOnce), func(t *testing.T) {
			tb := newTestbed(t, bedOptions{cfgB: func(c *ike.Config) { c.RekeyOutboundAtOnce = atOnce }})
			tb.establish()
			outbound := func(p *peer) int {
				n := 0
				for _, sa := range p.dp.SAs() {
					if !sa.Inbound {
						n++
					}
				}
				return n
			}
			if err := tb.a.e.RekeyChildSA(tb.children(tb.a)[0].ID); err != nil {
				t.Fatal(err)
			}
			// HDR, SK {N(REKEY_SA), SA, Ni, TSi, TSr} -->
			if !tb.net.Deliver() {
				t.Fatal("no CREATE_CHILD_SA request")
			}
			// <-- HDR, SK {SA, Nr, TSi, TSr}, not delivered yet
			want := 1
			if atOnce {
				want = 2
			}
			if got := outbound(tb.b); got != want {
				t.Errorf("responder has %d outbound SAs once it answered, want %d", got, want)
			}
			tb.net.Flush()
			tb.settleRekeys()
			if got := outbound(tb.b); got != 1 {
				t.Errorf("responder has %d outbound SAs after the rekey, want 1", got)
			}
			tb.checkKeys()
		})
	}
}
