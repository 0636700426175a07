package ike_test

import (
	"testing"
)

// TestChildDeletedBeforeResponse: b deletes the CHILD_SA right after
// answering the exchange that made it, and its DELETE reaches a before
// that response (found by FuzzStatefulV2, for IKE_AUTH and for
// CREATE_CHILD_SA). a finds nothing to delete then; when the response
// arrives, the CHILD_SA it makes goes at once instead of living on at
// a's end only.
func TestChildDeletedBeforeResponse(t *testing.T) {
	for _, exchange := range []string{"IKE_AUTH", "CREATE_CHILD_SA"} {
		t.Run(exchange, func(t *testing.T) {
			tb := newTestbed(t, bedOptions{connA: twinChildren("net2"), connB: twinChildren("net2")})
			var ikeID uint32
			if exchange == "IKE_AUTH" {
				if _, err := tb.a.e.InitiateChildren("gw", "net"); err != nil {
					t.Fatal(err)
				}
				tb.net.Deliver() // IKE_SA_INIT request
				tb.net.Deliver() // response
				tb.net.Deliver() // IKE_AUTH request: b establishes and answers
			} else {
				ikeID = tb.establishWith("net")
				if err := tb.a.e.CreateChildSA(ikeID, "net2"); err != nil {
					t.Fatal(err)
				}
				tb.net.Deliver() // CREATE_CHILD_SA request: b answers
			}
			ch := tb.children(tb.b)
			if err := tb.b.e.DeleteChildSA(ch[len(ch)-1].ID); err != nil {
				t.Fatal(err)
			}
			if q := tb.net.Queued(); len(q) != 2 {
				t.Fatalf("%d datagrams queued, want the response and the DELETE", len(q))
			}
			tb.net.Reverse() // the DELETE overtakes the response
			tb.net.Flush()
			tb.settleRekeys()
			want := map[string]int{"IKE_AUTH": 0, "CREATE_CHILD_SA": 1}[exchange]
			if a, b := tb.children(tb.a), tb.children(tb.b); len(a) != want || len(b) != want {
				t.Fatalf("a has %d CHILD_SAs, b %d, want both %d", len(a), len(b), want)
			}
			if !tb.a.log.contains("was deleted by the peer before its response arrived") {
				t.Error("a did not say why it closed the CHILD_SA")
			}
			if want == 0 {
				for _, p := range []*peer{tb.a, tb.b} {
					if n := len(p.dp.SAs()); n != 0 {
						t.Errorf("%s kept %d SAs in its dataplane", p.name, n)
					}
				}
			} else {
				tb.checkKeys()
			}
		})
	}
}

// TestRekeyChildSANotFound: b restarts from a state without the CHILD_SA
// (its record lost), so a's rekey gets CHILD_SA_NOT_FOUND (RFC 7296
// section 3.10.1); a then closes the CHILD_SA the peer does not have and
// creates a new one, and both ends agree again.
func TestRekeyChildSANotFound(t *testing.T) {
	tb := newTestbed(t, bedOptions{})
	tb.establish()
	old := tb.children(tb.a)[0]
	st := tb.b.e.Detach()
	st.SAs[0].Children = nil
	tb.b = tb.restartPeer(tb.b, st, baseConn(addrB, addrA, "sun.example.org", "moon.example.org", "10.2.0.0/16", "10.1.0.0/16"), 0xc4000000)
	if err := tb.a.e.RekeyChildSA(old.ID); err != nil {
		t.Fatal(err)
	}
	tb.net.Flush()
	if !tb.a.log.contains("peer did not find CHILD_SA") {
		t.Fatalf("a got no CHILD_SA_NOT_FOUND")
	}
	a, b := tb.children(tb.a), tb.children(tb.b)
	if len(a) != 1 || len(b) != 1 || a[0].SPIIn == old.SPIIn || a[0].SPIIn != b[0].SPIOut {
		t.Fatalf("after CHILD_SA_NOT_FOUND: a %+v, b %+v", a, b)
	}
	if tb.a.dp.SA(old.SPIIn) != nil {
		t.Errorf("a kept the inbound SA of the CHILD_SA the peer did not have")
	}
}
