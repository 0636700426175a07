package ike_test

import (
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/xdpsec/xdpsec/ike"
	"github.com/xdpsec/xdpsec/ike/dataplanetest"
)

// TestV1DetachImport restarts each side of an IKEv1 tunnel in turn: its
// engine detaches (leaving the dataplane alone), the state goes through
// JSON as in the daemon's state file, and a new engine imports it and
// carries on with the peer: DPD, a Quick Mode rekey with the imported
// SKEYID_d, reauthentication by the initiator, then a delete.
func TestV1DetachImport(t *testing.T) {
	for _, restarted := range []string{"initiator", "responder"} {
		t.Run(restarted, func(t *testing.T) {
			dpd := func(c *ike.Connection) { c.DPDDelay = 10 * time.Second }
			tb := v1Bed(t, dpd)
			tb.establish()
			old := tb.a
			if restarted == "responder" {
				old = tb.b
			}
			before := tb.established(old)
			nSAs := len(old.dp.SAs())

			st := old.e.Detach()
			if len(st.V1) != 1 || len(st.V1[0].Children) != 1 || len(st.SAs) != 0 ||
				len(st.V1[0].Keys.SKEYIDd) == 0 || len(st.V1[0].IV) != 16 {
				t.Fatalf("exported %+v", st)
			}
			if len(old.dp.SAs()) != nSAs || len(old.dp.Policies()) == 0 {
				t.Fatal("Detach touched the dataplane")
			}
			b, err := json.Marshal(&st)
			if err != nil {
				t.Fatal(err)
			}
			st.Zero()
			var loaded ike.EngineState
			if err := json.Unmarshal(b, &loaded); err != nil {
				t.Fatal(err)
			}
			clear(b)

			dp := dataplanetest.New(0xc3000000)
			log := newLogRecorder()
			e, err := ike.New(ike.Config{Logger: slog.New(log), Sender: tb.net.Sender(), Dataplane: dp, Clock: tb.clock,
				Credentials: ike.Credentials{Shared: []ike.SharedKey{{Secret: []byte("this is a shared secret")}}}})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(e.Close)
			c := baseConn(addrA, addrB, "moon.example.org", "sun.example.org", "10.1.0.0/16", "10.2.0.0/16")
			if restarted == "responder" {
				c = baseConn(addrB, addrA, "sun.example.org", "moon.example.org", "10.2.0.0/16", "10.1.0.0/16")
			}
			both(v1("aes128-sha256-modp2048", "aes128-sha256"), dpd)(c)
			if err := e.AddConnection(c); err != nil {
				t.Fatal(err)
			}
			if errs := e.Import(loaded); len(errs) != 0 {
				t.Fatalf("import: %v", errs)
			}
			loaded.Zero()
			nu := &peer{name: old.name + "2", addr: old.addr, e: e, dp: dp, log: log}
			tb.net.Attach(old.addr, e)
			if restarted == "responder" {
				tb.b = nu
			} else {
				tb.a = nu
			}

			after := tb.established(nu)
			if after.ID != before.ID || after.Version != 1 || after.SPIi != before.SPIi || after.SPIr != before.SPIr ||
				len(after.Children) != 1 || after.Children[0].SPIIn != before.Children[0].SPIIn ||
				after.Children[0].ReqID != before.Children[0].ReqID || after.Proposal != before.Proposal ||
				after.Initiator != before.Initiator {
				t.Fatalf("taken back differently:\n%+v\n%+v", before, after)
			}
			if n := len(dp.Policies()); n != 3 {
				t.Errorf("%d policies re-added, want 3", n)
			}
			if !log.contains("IKE_SA gw[1] taken back, established between") {
				t.Errorf("no log line for the IKE_SA taken back")
			}

			// Liveness: an informational exchange each way with the
			// imported SKEYID_a, SKEYID_e and phase 1 IV.
			tb.advance(25 * time.Second)
			if !log.contains("N(DPD)") || !log.contains("N(DPD_ACK)") {
				t.Fatalf("no DPD exchange after the restart")
			}
			tb.established(nu)

			// Quick Mode rekey from the restarted side, with SKEYID_d.
			if err := e.RekeyChildSA(after.Children[0].ID); err != nil {
				t.Fatal(err)
			}
			tb.net.Flush()
			ch := tb.children(nu)
			if len(ch) != 1 || ch[0].SPIIn == before.Children[0].SPIIn || ch[0].ReqID != before.Children[0].ReqID {
				t.Fatalf("children after rekey: %+v", ch)
			}
			for _, sa := range dp.SAs() {
				y := tb.b.dp.SA(sa.SPI)
				if restarted == "responder" {
					y = tb.a.dp.SA(sa.SPI)
				}
				if y == nil || string(y.EncrKey) != string(sa.EncrKey) || y.Inbound == sa.Inbound {
					t.Fatalf("rekeyed SA %08x has no matching twin", sa.SPI)
				}
			}

			// The initiator reauthenticates, the IPsec SA moves over.
			initiator := tb.a
			if err := initiator.e.RekeyIKESA(tb.established(initiator).ID); err != nil {
				t.Fatal(err)
			}
			tb.net.Flush()
			now := tb.established(nu)
			if now.SPIi == before.SPIi || len(now.Children) != 1 {
				t.Fatalf("ISAKMP SA not reauthenticated with its IPsec SA: %+v", now)
			}

			if err := e.DeleteIKESA(now.ID); err != nil {
				t.Fatal(err)
			}
			tb.net.Flush()
			if len(e.IKESAs()) != 0 || len(tb.a.e.IKESAs())+len(tb.b.e.IKESAs()) != 0 {
				t.Fatalf("left: %+v %+v", tb.a.e.IKESAs(), tb.b.e.IKESAs())
			}
			if len(dp.Policies()) != 0 || len(dp.SAs()) != 0 {
				t.Fatalf("dataplane left: %d policies %d SAs", len(dp.Policies()), len(dp.SAs()))
			}
		})
	}
}

// TestV1ImportRefused: an ISAKMP SA whose connection is gone is reported
// with its SAs, for the daemon to remove them from the dataplane.
func TestV1ImportRefused(t *testing.T) {
	tb := v1Bed(t)
	tb.establish()
	st := tb.a.e.Detach()
	defer st.Zero()
	e, _ := ike.New(ike.Config{Logger: slog.New(newLogRecorder()), Sender: tb.net.Sender(), Dataplane: dataplanetest.New(1), Clock: tb.clock})
	defer e.Close()
	errs := e.Import(st)
	if len(errs) != 1 || len(errs[0].SA.SAIDs()) != 2 || len(st.V1[0].SAIDs()) != 2 {
		t.Fatalf("errs %v", errs)
	}
	// A state with a broken IV is refused, not imported half.
	c := baseConn(addrA, addrB, "moon.example.org", "sun.example.org", "10.1.0.0/16", "10.2.0.0/16")
	v1("aes128-sha256-modp2048", "aes128-sha256")(c)
	if err := e.AddConnection(c); err != nil {
		t.Fatal(err)
	}
	st.V1[0].IV = st.V1[0].IV[:3]
	if errs := e.Import(st); len(errs) != 1 || len(e.IKESAs()) != 0 {
		t.Fatalf("broken state imported: %v %+v", errs, e.IKESAs())
	}
}
