package ike_test

import (
	"log/slog"
	"testing"
	"time"

	"github.com/xdpsec/xdpsec/ike"
	"github.com/xdpsec/xdpsec/ike/dataplanetest"
)

// TestDetachImport restarts one side: its engine detaches (leaving the
// dataplane alone), a new engine imports the state and carries on with
// the peer: CHILD_SA and IKE SA rekeys, then a delete.
func TestDetachImport(t *testing.T) {
	tb := newTestbed(t, bedOptions{connA: func(c *ike.Connection) { c.DPDDelay = 10 * time.Second }})
	tb.establish()
	before := tb.established(tb.a)
	nSAs := len(tb.a.dp.SAs())

	st := tb.a.e.Detach()
	if len(st.SAs) != 1 || len(st.SAs[0].Children) != 1 || len(st.SAs[0].Keys.D) == 0 {
		t.Fatalf("exported %+v", st)
	}
	if len(tb.a.dp.SAs()) != nSAs || len(tb.a.dp.Policies()) == 0 {
		t.Fatal("Detach touched the dataplane")
	}
	if _, err := tb.a.e.Initiate("gw"); err == nil {
		t.Error("detached engine still initiates")
	}

	dp := dataplanetest.New(0xc3000000)
	log := newLogRecorder()
	e, err := ike.New(ike.Config{Logger: slog.New(log), Sender: tb.net.Sender(), Dataplane: dp, Clock: tb.clock,
		Credentials: ike.Credentials{Shared: []ike.SharedKey{{Secret: []byte("this is a shared secret")}}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	c := baseConn(addrA, addrB, "moon.example.org", "sun.example.org", "10.1.0.0/16", "10.2.0.0/16")
	c.DPDDelay = 10 * time.Second
	if err := e.AddConnection(c); err != nil {
		t.Fatal(err)
	}
	if errs := e.Import(st); len(errs) != 0 {
		t.Fatalf("import: %v", errs)
	}
	st.Zero()
	tb.net.Attach(addrA, e)
	tb.a = &peer{name: "a2", addr: addrA, e: e, dp: dp, log: log}

	after := tb.established(tb.a)
	if after.ID != before.ID || after.SPIi != before.SPIi || after.SPIr != before.SPIr ||
		len(after.Children) != 1 || after.Children[0].SPIIn != before.Children[0].SPIIn ||
		after.Children[0].ReqID != before.Children[0].ReqID || after.Proposal != before.Proposal {
		t.Fatalf("taken back differently:\n%+v\n%+v", before, after)
	}
	if n := len(dp.Policies()); n != 3 {
		t.Errorf("%d policies re-added, want 3", n)
	}

	// Liveness: DPD goes out and is answered.
	tb.advance(15 * time.Second)
	tb.established(tb.a)

	// CHILD_SA rekey with the imported SK_d.
	if err := e.RekeyChildSA(after.Children[0].ID); err != nil {
		t.Fatal(err)
	}
	tb.net.Flush()
	ch := tb.children(tb.a)
	if len(ch) != 1 || ch[0].SPIIn == before.Children[0].SPIIn {
		t.Fatalf("children after rekey: %+v", ch)
	}
	for _, sa := range dp.SAs() {
		y := tb.b.dp.SA(sa.SPI)
		if y == nil || string(y.EncrKey) != string(sa.EncrKey) {
			t.Fatalf("rekeyed SA %08x has no matching twin", sa.SPI)
		}
	}
	// IKE SA rekey.
	if err := e.RekeyIKESA(after.ID); err != nil {
		t.Fatal(err)
	}
	tb.net.Flush()
	now := tb.established(tb.a)
	if now.SPIi == before.SPIi {
		t.Fatal("IKE SA not rekeyed")
	}
	if err := e.DeleteIKESA(now.ID); err != nil {
		t.Fatal(err)
	}
	tb.net.Flush()
	if len(e.IKESAs()) != 0 || len(tb.b.e.IKESAs()) != 0 {
		t.Fatalf("left: %+v %+v", e.IKESAs(), tb.b.e.IKESAs())
	}
	if len(dp.Policies()) != 0 || len(dp.SAs()) != 0 {
		t.Fatalf("dataplane left: %d policies %d SAs", len(dp.Policies()), len(dp.SAs()))
	}
}

func TestImportUnknownConnection(t *testing.T) {
	tb := newTestbed(t, bedOptions{})
	tb.establish()
	st := tb.a.e.Detach()
	e, _ := ike.New(ike.Config{Logger: slog.New(newLogRecorder()), Sender: tb.net.Sender(), Dataplane: dataplanetest.New(1), Clock: tb.clock})
	defer e.Close()
	errs := e.Import(st)
	if len(errs) != 1 || len(errs[0].SA.SAIDs()) != 2 {
		t.Fatalf("errs %v", errs)
	}
}

// TestDetachDuringRekey: the responder of a CHILD_SA rekey stops between
// its answer and the initiator's DELETE. Detach installs the outbound SA
// it held back (the initiator has the inbound half by then) and exports
// both CHILD_SAs, so the restarted engine can answer the DELETE and keep
// sending on the new one.
func TestDetachDuringRekey(t *testing.T) {
	tb := newTestbed(t, bedOptions{})
	tb.establish()
	old := tb.children(tb.a)[0]
	if err := tb.a.e.RekeyChildSA(old.ID); err != nil {
		t.Fatal(err)
	}
	tb.net.Deliver() // the request, answered by b
	outbound := func() int {
		n := 0
		for _, s := range tb.b.dp.SAs() {
			if !s.Inbound {
				n++
			}
		}
		return n
	}
	if n := outbound(); n != 1 {
		t.Fatalf("b has %d outbound SAs before the DELETE, want the old one only", n)
	}
	st := tb.b.e.Detach()
	defer st.Zero()
	if len(st.SAs) != 1 || len(st.SAs[0].Children) != 2 {
		t.Fatalf("exported %+v", st.SAs)
	}
	if n := outbound(); n != 2 {
		t.Errorf("b has %d outbound SAs after Detach, want the old and the new one", n)
	}
}
