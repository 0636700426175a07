package ike_test

import (
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
