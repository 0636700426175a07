package ike_test

import (
	"strings"
	"testing"

	"github.com/xdpsec/xdpsec/ike"
)

// TestPanicSafetyNet injects a panic into the handling of one datagram:
// the responder's dataplane panics when it is asked to add the SA of a
// CHILD_SA rekey. The engine survives it: the panic is logged at error
// level with its stack and counted, the IKE SA it happened in is deleted
// with every SA and policy it had in the dataplane, and the engine goes on
// serving (a new IKE SA is established afterwards).
func TestPanicSafetyNet(t *testing.T) {
	for _, version := range []int{1, 2} {
		t.Run(map[int]string{1: "IKEv1", 2: "IKEv2"}[version], func(t *testing.T) {
			var tb *testbed
			var told []any
			cfg := func(c *ike.Config) { c.OnPanic = func(r any) { told = append(told, r) } }
			if version == 1 {
				f := v1("aes128-sha256-modp2048", "aes128-sha256")
				tb = newTestbed(t, bedOptions{connA: f, connB: f, cfgB: cfg})
			} else {
				tb = newTestbed(t, bedOptions{cfgB: cfg})
			}
			tb.establish()
			if len(tb.b.dp.SAs()) == 0 {
				t.Fatal("b installed nothing")
			}
			injected := false
			tb.b.dp.SetFault(func(op string) {
				if op == "AddSA" && !injected {
					injected = true
					panic("injected fault in AddSA")
				}
			})
			if err := tb.a.e.RekeyChildSA(tb.children(tb.a)[0].ID); err != nil {
				t.Fatal(err)
			}
			tb.net.Flush()
			if !injected {
				t.Fatal("the rekey never reached b's AddSA")
			}
			if n := tb.b.e.Stats().Panics; n != 1 || len(told) != 1 {
				t.Fatalf("b counted %d panics, told OnPanic %d times, want 1", n, len(told))
			}
			var line string
			for _, l := range tb.b.log.all() {
				if strings.HasPrefix(l, "ERROR BUG: panic while handling a datagram") {
					line = l
				}
			}
			if !strings.Contains(line, "injected fault in AddSA") || !strings.Contains(line, "stack=goroutine") || !strings.Contains(line, "IKE_SA gw[") {
				t.Fatalf("no error line with the panic, its IKE_SA and stack: %q", line)
			}
			if !tb.b.log.contains("after the panic") {
				t.Error("b did not say it deletes the IKE_SA")
			}
			if sas := tb.b.sas(); len(sas) != 0 {
				t.Fatalf("b kept %d IKE SAs after the panic: %+v", len(sas), sas)
			}
			if sas, pols := tb.b.dp.SAs(), tb.b.dp.Policies(); len(sas) != 0 || len(pols) != 0 {
				t.Fatalf("b left %d SAs and %d policies in the dataplane", len(sas), len(pols))
			}
			// The engine still serves: a's next initiate establishes.
			if _, err := tb.a.e.Initiate("gw"); err != nil {
				t.Fatal(err)
			}
			tb.net.Flush()
			tb.established(tb.b)
			if n := tb.b.e.Stats().Panics; n != 1 {
				t.Errorf("%d panics after the new IKE SA", n)
			}
		})
	}
}
