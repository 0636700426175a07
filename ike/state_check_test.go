package ike_test

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/netip"
	"strings"
	"testing"

	"github.com/xdpsec/xdpsec/ike"
	"github.com/xdpsec/xdpsec/ike/dataplanetest"
)

// twoSAState establishes two IKE SAs (each with a CHILD_SA) on a testbed
// and returns a's detached state as JSON, to be decoded afresh per case.
func twoSAState(t *testing.T, tb *testbed) []byte {
	t.Helper()
	tb.establish()
	tb.establish()
	st := tb.a.e.Detach()
	defer st.Zero()
	if n := len(st.SAs) + len(st.V1); n != 2 {
		t.Fatalf("%d IKE SAs exported, want 2", n)
	}
	b, err := json.Marshal(&st)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func importInto(t *testing.T, tb *testbed, st ike.EngineState, mod func(*ike.Connection)) (*ike.Engine, []*ike.ImportError) {
	t.Helper()
	e, err := ike.New(ike.Config{Logger: slog.New(newLogRecorder()), Sender: tb.net.Sender(), Dataplane: dataplanetest.New(0xc3000000),
		Clock: tb.clock, Credentials: ike.Credentials{Shared: []ike.SharedKey{{Secret: []byte("this is a shared secret")}}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	c := baseConn(addrA, addrB, "moon.example.org", "sun.example.org", "10.1.0.0/16", "10.2.0.0/16")
	if mod != nil {
		mod(c)
	}
	if err := e.AddConnection(c); err != nil {
		t.Fatal(err)
	}
	return e, e.Import(st)
}

// checkRefused checks that the record named refused (1-based) alone was
// refused as invalid with a reason mentioning want, that the other one
// was taken back, and which SAs the caller is told to remove.
func checkRefused(t *testing.T, e *ike.Engine, errs []*ike.ImportError, version, refused int, goodID uint32, want string, remove int) {
	t.Helper()
	if len(errs) != 1 {
		t.Fatalf("%d import errors, want 1: %v", len(errs), errs)
	}
	ie := errs[0]
	if ie.Record != refused || ie.Version != version || !errors.Is(ie.Err, ike.ErrBadRecord) || !strings.Contains(ie.Error(), want) {
		t.Errorf("refused %v (record %d of IKEv%d), want record %d of IKEv%d for %q", ie, ie.Record, ie.Version, refused, version, want)
	}
	if !strings.Contains(ie.Error(), "record ") {
		t.Errorf("error %q does not name the record", ie)
	}
	if len(ie.Remove) != remove {
		t.Errorf("told to remove %v, want %d SAs", ie.Remove, remove)
	}
	sas := e.IKESAs()
	if len(sas) != 1 || sas[0].ID != goodID || sas[0].State != ike.IKESAEstablished || len(sas[0].Children) != 1 {
		t.Errorf("taken back %+v, want IKE_SA [%d] with its CHILD_SA", sas, goodID)
	}
}

// TestImportChecksRecords: every IKEv2 record of a saved state is checked
// before any is taken back; a bad one is refused alone, naming the
// record and the reason, and the caller is told to remove only SAs no
// taken-back SA uses (none for a duplicate of a taken-back SA).
func TestImportChecksRecords(t *testing.T) {
	tb := newTestbed(t, bedOptions{})
	saved := twoSAState(t, tb)
	for _, tc := range []struct {
		name    string
		mod     func(st *ike.EngineState)
		refused int // record, from 1
		want    string
		remove  int
	}{
		{"duplicate SA", func(st *ike.EngineState) { st.SAs[1] = st.SAs[0] }, 2, "already taken by record 1 of IKEv2", 0},
		{"duplicate SA, the copy first", func(st *ike.EngineState) { st.SAs[0] = st.SAs[1] }, 2, "already taken by record 1 of IKEv2", 0},
		{"empty SK_pi", func(st *ike.EngineState) { st.SAs[1].Keys.PI = nil }, 2, "SK_pi of 0 octets", 2},
		{"empty SK_d", func(st *ike.EngineState) { st.SAs[0].Keys.D = []byte{} }, 1, "SK_d of 0 octets", 2},
		{"short SK_pr", func(st *ike.EngineState) { st.SAs[1].Keys.PR = st.SAs[1].Keys.PR[:7] }, 2, "SK_pr of 7 octets, PRF_HMAC_SHA2_256 needs 32", 2},
		{"long SK_ei", func(st *ike.EngineState) { st.SAs[1].Keys.EI = append(st.SAs[1].Keys.EI, 0) }, 2, "SK_ei of", 2},
		{"unknown ESP suite", func(st *ike.EngineState) { st.SAs[1].Children[0].Suite.Encr = 4242 }, 2, "CHILD_SA", 2},
		{"unknown IKE suite", func(st *ike.EngineState) { st.SAs[1].Suite.PRF = 4242 }, 2, "IKE suite", 2},
		{"SPI 0", func(st *ike.EngineState) { st.SAs[1].SPIr = 0 }, 2, "IKE SPI 0", 2},
		{"no remote address", func(st *ike.EngineState) { st.SAs[1].Remote = netip.AddrPort{} }, 2, "remote address", 1},
		{"CHILD_SA SPI 0", func(st *ike.EngineState) { st.SAs[1].Children[0].SPIOut = 0 }, 2, "SPI 0", 1},
		{"CHILD_SA ID twice", func(st *ike.EngineState) { st.SAs[1].Children[0].ID = st.SAs[0].Children[0].ID }, 2, "CHILD_SA ID", 2},
		{"inbound SPI twice", func(st *ike.EngineState) { st.SAs[1].Children[0].SPIIn = st.SAs[0].Children[0].SPIIn }, 2, "already taken by record 1", 1},
		{"unique ID twice", func(st *ike.EngineState) { st.SAs[1].ID = st.SAs[0].ID }, 2, "unique ID", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var st ike.EngineState
			if err := json.Unmarshal(saved, &st); err != nil {
				t.Fatal(err)
			}
			tc.mod(&st)
			goodID := st.SAs[2-tc.refused].ID // the other record
			e, errs := importInto(t, tb, st, nil)
			checkRefused(t, e, errs, 2, tc.refused, goodID, tc.want, tc.remove)
		})
	}
	// Both records good: both are taken back.
	var st ike.EngineState
	if err := json.Unmarshal(saved, &st); err != nil {
		t.Fatal(err)
	}
	if e, errs := importInto(t, tb, st, nil); len(errs) != 0 || len(e.IKESAs()) != 2 {
		t.Errorf("good state: errors %v, %d IKE SAs taken back", errs, len(e.IKESAs()))
	}
}

// TestV1ImportChecksRecords is TestImportChecksRecords for ISAKMP SAs.
func TestV1ImportChecksRecords(t *testing.T) {
	tb := v1Bed(t)
	saved := twoSAState(t, tb)
	conn := v1("aes128-sha256-modp2048", "aes128-sha256")
	for _, tc := range []struct {
		name    string
		mod     func(st *ike.EngineState)
		refused int
		want    string
		remove  int
	}{
		{"duplicate SA", func(st *ike.EngineState) { st.V1[1] = st.V1[0] }, 2, "already taken by record 1 of IKEv1", 0},
		{"empty SKEYID_a", func(st *ike.EngineState) { st.V1[1].Keys.SKEYIDa = nil }, 2, "SKEYID_a of 0 octets", 2},
		{"short SKEYID_d", func(st *ike.EngineState) { st.V1[0].Keys.SKEYIDd = st.V1[0].Keys.SKEYIDd[:3] }, 1, "SKEYID_d of 3 octets", 2},
		{"wrong encryption key length", func(st *ike.EngineState) { st.V1[1].Keys.Encr = st.V1[1].Keys.Encr[:8] }, 2, "encryption key of 8 octets", 2},
		{"unknown IPsec suite", func(st *ike.EngineState) { st.V1[1].Children[0].Suite.Integ = 4242 }, 2, "CHILD_SA", 2},
		{"cookie 0", func(st *ike.EngineState) { st.V1[1].CookieR = 0 }, 2, "cookie 0", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var st ike.EngineState
			if err := json.Unmarshal(saved, &st); err != nil {
				t.Fatal(err)
			}
			tc.mod(&st)
			goodID := st.V1[2-tc.refused].ID
			e, errs := importInto(t, tb, st, conn)
			checkRefused(t, e, errs, 1, tc.refused, goodID, tc.want, tc.remove)
		})
	}
}
