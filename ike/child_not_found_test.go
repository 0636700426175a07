package ike_test

import (
	"testing"

	"github.com/xdpsec/xdpsec/ike/message"
)

// TestRekeyChildSANotFound: b deletes the CHILD_SA right after answering
// IKE_AUTH, and its DELETE reaches a before the IKE_AUTH response (found
// by FuzzStatefulV2): a finds nothing to delete, then installs the
// CHILD_SA that b no longer has. Its next rekey gets CHILD_SA_NOT_FOUND;
// a then closes it and creates a new CHILD_SA, so both ends agree again.
func TestRekeyChildSANotFound(t *testing.T) {
	tb := newTestbed(t, bedOptions{})
	if _, err := tb.a.e.Initiate("gw"); err != nil {
		t.Fatal(err)
	}
	tb.net.Deliver() // IKE_SA_INIT request
	tb.net.Deliver() // response
	tb.net.Deliver() // IKE_AUTH request: b establishes and answers
	ch := tb.children(tb.b)
	if err := tb.b.e.DeleteChildSA(ch[0].ID); err != nil {
		t.Fatal(err)
	}
	if q := tb.net.Queued(); len(q) != 2 {
		t.Fatalf("%d datagrams queued, want the IKE_AUTH response and the DELETE", len(q))
	}
	tb.net.Reverse() // the DELETE overtakes the IKE_AUTH response
	tb.net.Flush()
	if n := len(tb.children(tb.a)); n != 1 || len(tb.children(tb.b)) != 0 {
		t.Fatalf("a has %d CHILD_SAs, b %d: the race did not happen", n, len(tb.children(tb.b)))
	}
	old := tb.children(tb.a)[0]
	if err := tb.a.e.RekeyChildSA(old.ID); err != nil {
		t.Fatal(err)
	}
	tb.net.Flush()
	if !tb.a.log.contains(message.CHILD_SA_NOT_FOUND.String()) && !tb.a.log.contains("CHILD_SA_NOT_FOUND") {
		t.Fatalf("a got no CHILD_SA_NOT_FOUND")
	}
	a, b := tb.children(tb.a), tb.children(tb.b)
	if len(a) != 1 || len(b) != 1 || a[0].SPIIn == old.SPIIn || a[0].SPIIn != b[0].SPIOut {
		t.Fatalf("after CHILD_SA_NOT_FOUND: a %+v, b %+v", a, b)
	}
	tb.checkKeys()
}
