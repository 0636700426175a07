package ike_test

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/xdpsec/xdpsec/ike"
	"github.com/xdpsec/xdpsec/ike/message"
	"github.com/xdpsec/xdpsec/ike/transform"
)

func withIKEProposals(s string) func(*ike.Connection) {
	return func(c *ike.Connection) { c.Proposals = transform.MustParseProposals(transform.ProtoIKE, s) }
}

// exchangesSeen lists the exchange types of the requests the network
// carried, in order, once per message ID (fragments and retransmits
// count once), IKE SA and sender.
func exchangesSeen(tb *testbed) []message.ExchangeType {
	var out []message.ExchangeType
	type key struct {
		spi uint64
		mid uint32
		i   bool
	}
	seen := map[key]bool{}
	for _, d := range tb.net.Log {
		h, err := message.UnmarshalHeader(d.Data)
		if k := (key{h.InitiatorSPI, h.MessageID, h.IsInitiator()}); err == nil && !h.IsResponse() && !seen[k] {
			seen[k] = true
			out = append(out, h.ExchangeType)
		}
	}
	return out
}

// RFC 9370 over RFC 9242: IKE_SA_INIT negotiates the additional key
// exchanges, one IKE_INTERMEDIATE exchange runs each, the keys are
// derived again after every one, and IKE_AUTH's AUTH payloads cover the
// IKE_INTERMEDIATE messages (IntAuth):
//
//	IKE_SA_INIT:      HDR, SAi1, KEi, Ni, N(INT_EXCH_SUP) -->  <-- HDR, SAr1, KEr, Nr, N(INT_EXCH_SUP)
//	IKE_INTERMEDIATE: HDR, SK {KEi(1)} -->                      <-- HDR, SK {KEr(1)}
//	[IKE_INTERMEDIATE for KE2 ...]
//	IKE_AUTH:         HDR, SK {IDi, AUTH, SAi2, TSi, TSr} -->  <-- HDR, SK {IDr, AUTH, SAr2, TSi, TSr}
func TestAdditionalKEEstablish(t *testing.T) {
	for _, c := range []struct {
		proposal string
		want     string // the selected proposal as logged
		rounds   int
		// esp, when set, is the CHILD_SA's proposal, whose rekey must
		// select espWant with espRounds IKE_FOLLOWUP_KE exchanges.
		esp, espWant string
		espRounds    int
	}{
		{proposal: "aes256gcm16-prfsha384-x25519-ke1_mlkem768", want: "IKE:AES_GCM_16_256/PRF_HMAC_SHA2_384/CURVE_25519/KE1_ML_KEM_768", rounds: 1},
		{proposal: "aes128-sha256-x25519-ke1_ecp384", want: "IKE:AES_CBC_128/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/CURVE_25519/KE1_ECP_384", rounds: 1},
		{proposal: "aes256gcm16-prfsha256-ecp256-ke1_mlkem1024-ke2_x25519", want: "IKE:AES_GCM_16_256/PRF_HMAC_SHA2_256/ECP_256/KE1_ML_KEM_1024/KE2_CURVE_25519", rounds: 2},
		// ML-KEM alone, also as the CHILD_SA rekey's PFS key exchange.
		{proposal: "aes256gcm16-prfsha256-mlkem768", want: "IKE:AES_GCM_16_256/PRF_HMAC_SHA2_256/ML_KEM_768",
			esp: "aes128gcm16-mlkem768", espWant: "ESP:AES_GCM_16_128/ML_KEM_768/NO_EXT_SEQ"},
		// ML-KEM-512 (CIRCL) hybrid, for the IKE SA and the CHILD_SA.
		{proposal: "aes256gcm16-prfsha256-x25519-ke1_mlkem512", want: "IKE:AES_GCM_16_256/PRF_HMAC_SHA2_256/CURVE_25519/KE1_ML_KEM_512", rounds: 1,
			esp: "aes128gcm16-x25519-ke1_mlkem512", espWant: "ESP:AES_GCM_16_128/CURVE_25519/KE1_ML_KEM_512/NO_EXT_SEQ", espRounds: 1},
		{proposal: "aes256gcm16-prfsha256-mlkem512", want: "IKE:AES_GCM_16_256/PRF_HMAC_SHA2_256/ML_KEM_512",
			esp: "aes128gcm16-mlkem512", espWant: "ESP:AES_GCM_16_128/ML_KEM_512/NO_EXT_SEQ"},
	} {
		t.Run(c.proposal, func(t *testing.T) {
			set := func(conn *ike.Connection) {
				withIKEProposals(c.proposal)(conn)
				if c.esp != "" {
					conn.Children[0].ESPProposals = transform.MustParseProposals(transform.ProtoESP, c.esp)
				}
			}
			tb := newTestbed(t, bedOptions{connA: set, connB: set})
			tb.establish()
			a, b := tb.established(tb.a), tb.established(tb.b)
			if a.Proposal != c.want || b.Proposal != c.want {
				t.Errorf("proposals %q and %q, want %q", a.Proposal, b.Proposal, c.want)
			}
			tb.checkKeys()
			n := 0
			for _, x := range exchangesSeen(tb) {
				if x == message.IKE_INTERMEDIATE {
					n++
				}
			}
			if n != c.rounds {
				t.Errorf("%d IKE_INTERMEDIATE requests, want %d: %v", n, c.rounds, exchangesSeen(tb))
			}
			if c.rounds > 0 {
				for _, want := range []string{
					"N(IKE_INT_SUP)",
					"generating IKE_INTERMEDIATE request 1 [ KE ]",
					"parsed IKE_INTERMEDIATE response 1 [ KE ]",
					"additional key exchange 1 (",
					"parsed IKE_AUTH response " + string(rune('1'+c.rounds)) + " [ IDr AUTH",
					// MOBIKE is off in the testbed; MSG_ID_SYN_SUP goes in
					// the first IKE_AUTH request whatever its message ID.
					"generating IKE_AUTH request " + string(rune('1'+c.rounds)) + " [ IDi IDr N(INIT_CONTACT) AUTH SA TSi TSr N(MSG_ID_SYN_SUP) ]",
				} {
					if !tb.a.log.contains(want) {
						t.Errorf("a did not log %q", want)
					}
				}
			}
			// The SA works on: a CHILD_SA rekey over the final keys, and
			// an IKE SA rekey, with IKE_FOLLOWUP_KE for the additional
			// key exchanges.
			if err := tb.a.e.RekeyChildSA(a.Children[0].ID); err != nil {
				t.Fatal(err)
			}
			tb.net.Flush()
			tb.settleRekeys()
			tb.checkKeys()
			if c.espWant != "" && !tb.b.log.contains("selected proposal: "+c.espWant) {
				t.Errorf("CHILD_SA rekey did not select %s", c.espWant)
			}
			if err := tb.b.e.RekeyIKESA(b.ID); err != nil {
				t.Fatal(err)
			}
			tb.net.Flush()
			na, nb := tb.established(tb.a), tb.established(tb.b)
			if na.SPIi != nb.SPIi || na.SPIi == a.SPIi || len(na.Children) != 1 {
				t.Fatalf("IKE rekey: %+v %+v", na, nb)
			}
			if na.Proposal != c.want || nb.Proposal != c.want {
				t.Errorf("rekeyed IKE SA: proposals %q and %q, want %q", na.Proposal, nb.Proposal, c.want)
			}
			followups := 0
			for _, x := range exchangesSeen(tb) {
				if x == message.IKE_FOLLOWUP_KE {
					followups++
				}
			}
			if followups != c.espRounds+c.rounds {
				t.Errorf("%d IKE_FOLLOWUP_KE requests in the CHILD_SA and IKE rekeys, want %d+%d", followups, c.espRounds, c.rounds)
			}
			// The new IKE SA carries a CHILD_SA rekey.
			if err := tb.a.e.RekeyChildSA(na.Children[0].ID); err != nil {
				t.Fatal(err)
			}
			tb.net.Flush()
			tb.settleRekeys()
			tb.checkKeys()
			na = tb.established(tb.a)
			if err := tb.a.e.DeleteIKESA(na.ID); err != nil {
				t.Fatal(err)
			}
			tb.settleRekeys()
			tb.wantNoSAs(tb.a)
			tb.wantNoSAs(tb.b)
		})
	}
}

// A response lost after the responder took its new keys: the initiator
// retransmits the IKE_INTERMEDIATE request under the old ones, and the
// responder answers it from its cache instead of dropping it.
func TestIntermediateRetransmit(t *testing.T) {
	set := withIKEProposals("aes256gcm16-prfsha256-x25519-ke1_mlkem768")
	tb := newTestbed(t, bedOptions{connA: set, connB: set})
	if _, err := tb.a.e.Initiate("gw"); err != nil {
		t.Fatal(err)
	}
	// IKE_SA_INIT request and response, then the IKE_INTERMEDIATE request.
	for range 3 {
		tb.net.Deliver()
	}
	if !tb.net.DropAt(0) { // the IKE_INTERMEDIATE response
		t.Fatal("no IKE_INTERMEDIATE response queued")
	}
	tb.advance(10 * 1e9)
	tb.established(tb.a)
	tb.established(tb.b)
	tb.checkKeys()
	if !tb.b.log.contains("received retransmit of request with ID 1, retransmitting response") {
		t.Error("b did not answer the retransmit from its cache")
	}
}

// Additional key exchanges are declined like any other transform: a
// method we do not have (Curve448 here), or a mandatory one the peer
// does not offer, finds no proposal; an optional one ("ke1_none") falls
// back to the classical exchange, with a peer that lacks them or does not
// announce IKE_INTERMEDIATE.
func TestAdditionalKEDecline(t *testing.T) {
	curve448 := func(c *ike.Connection) {
		p := transform.MustParseProposals(transform.ProtoIKE, "aes256gcm16-prfsha256-x25519")[0]
		p.Transforms = append(p.Transforms, transform.Transform{Type: transform.AdditionalKE(1), ID: uint16(transform.CURVE_448)})
		c.Proposals = []transform.Proposal{p}
	}
	for _, c := range []struct {
		name   string
		a, b   func(*ike.Connection)
		want   string // proposal, "" for none established
		blog   string // b logs
		noINTA bool
	}{
		{"unsupported method", curve448, withIKEProposals("aes256gcm16-prfsha256-x25519-ke1_mlkem768"), "", "no proposal found", false},
		{"mandatory, peer classical", withIKEProposals("aes256gcm16-prfsha256-x25519"), withIKEProposals("aes256gcm16-prfsha256-x25519-ke1_mlkem768"), "", "no proposal found", true},
		{"optional, peer classical", withIKEProposals("aes256gcm16-prfsha256-x25519"), withIKEProposals("aes256gcm16-prfsha256-x25519-ke1_mlkem768-ke1_none"),
			"IKE:AES_GCM_16_256/PRF_HMAC_SHA2_256/CURVE_25519", "selected proposal: IKE:AES_GCM_16_256/PRF_HMAC_SHA2_256/CURVE_25519", true},
		{"optional, both", withIKEProposals("aes256gcm16-prfsha256-x25519-ke1_none"), withIKEProposals("aes256gcm16-prfsha256-x25519-ke1_mlkem768-ke1_none"),
			"IKE:AES_GCM_16_256/PRF_HMAC_SHA2_256/CURVE_25519", "", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			tb := newTestbed(t, bedOptions{connA: c.a, connB: c.b})
			tb.establish()
			if c.want == "" {
				tb.wantNoSAs(tb.a)
				tb.wantNoSAs(tb.b)
			} else {
				a, b := tb.established(tb.a), tb.established(tb.b)
				if a.Proposal != c.want || b.Proposal != c.want {
					t.Errorf("proposals %q %q, want %q", a.Proposal, b.Proposal, c.want)
				}
				tb.checkKeys()
			}
			if c.blog != "" && !tb.b.log.contains(c.blog) {
				t.Errorf("b did not log %q", c.blog)
			}
			for _, x := range exchangesSeen(tb) {
				if x == message.IKE_INTERMEDIATE {
					t.Errorf("IKE_INTERMEDIATE exchanged: %v", exchangesSeen(tb))
				}
			}
			if c.noINTA && tb.a.log.contains("IKE_INT_SUP") {
				t.Error("a announced IKE_INTERMEDIATE without additional key exchanges")
			}
		})
	}
}

// The SA's proposal, as list-sas shows it, names every key exchange; and
// IKEv1 connections refuse what needs IKEv2.
func TestAdditionalKEListed(t *testing.T) {
	set := withIKEProposals("aes256gcm16-prfsha384-x25519-ke1_mlkem768")
	tb := newTestbed(t, bedOptions{connA: set, connB: set})
	tb.establish()
	if p := tb.established(tb.a).Proposal; !strings.Contains(p, "/KE1_ML_KEM_768") {
		t.Errorf("proposal %q does not name the additional key exchange", p)
	}
	if !tb.b.log.contains("authentication of 'moon.example.org' with pre-shared key successful") {
		t.Error("b did not authenticate a")
	}
	for _, prop := range []string{"aes128-sha256-x25519-ke1_mlkem768", "aes128-sha256-mlkem768"} {
		c := baseConn(addrA, addrB, "moon.example.org", "sun.example.org", "10.1.0.0/16", "10.2.0.0/16")
		c.Name, c.Version = "v1", 1
		c.Proposals = transform.MustParseProposals(transform.ProtoIKE, prop)
		if err := tb.a.e.AddConnection(c); err == nil || !strings.Contains(err.Error(), "needs IKEv2") {
			t.Errorf("IKEv1 with %s: %v", prop, err)
		}
	}
}

// IKE_AUTH's AUTH payloads cover the IKE_INTERMEDIATE exchanges (IntAuth,
// RFC 9242 section 3.3.2): a responder whose IntAuth differs from the
// initiator's does not accept the initiator's AUTH.
func TestIntAuthBindsAuth(t *testing.T) {
	set := withIKEProposals("aes256gcm16-prfsha256-x25519-ke1_mlkem768")
	tb := newTestbed(t, bedOptions{connA: set, connB: set})
	if _, err := tb.a.e.Initiate("gw"); err != nil {
		t.Fatal(err)
	}
	// IKE_SA_INIT request and response, IKE_INTERMEDIATE request: b has
	// both IntAuth values now.
	for range 3 {
		tb.net.Deliver()
	}
	sas := tb.b.e.IKESAs()
	if len(sas) != 1 || !tb.b.e.CorruptIntAuth(sas[0].ID) {
		t.Fatalf("b has no IntAuth after IKE_INTERMEDIATE: %+v", sas)
	}
	tb.net.Flush()
	tb.wantNoSAs(tb.b)
	if !tb.b.log.contains("but MAC mismatched") || !tb.a.log.contains("received AUTHENTICATION_FAILED notify error") {
		t.Error("the failed authentication was not logged")
	}
	for _, sa := range tb.a.sas() {
		if sa.State == ike.IKESAEstablished {
			t.Errorf("a established: %+v", sa)
		}
	}
}

// CHILD_SA rekeys with additional key exchanges (RFC 9370 section
// 2.2.4): CREATE_CHILD_SA with the KE, then one IKE_FOLLOWUP_KE exchange
// per additional exchange, the new CHILD_SA installed after the last; from
// either end, and with the SA's keys equal on both.
func TestFollowupKE(t *testing.T) {
	set := func(c *ike.Connection) {
		c.Proposals = transform.MustParseProposals(transform.ProtoIKE, "aes256gcm16-prfsha256-x25519-ke1_mlkem768")
		c.Children[0].ESPProposals = transform.MustParseProposals(transform.ProtoESP, "aes128gcm16-x25519-ke1_mlkem768-ke2_ecp384")
	}
	tb := newTestbed(t, bedOptions{connA: set, connB: func(c *ike.Connection) {
		set(c)
		// A second CHILD_SA config on b, created below.
		c.Children = append(c.Children, &ike.ChildConfig{Name: "net2",
			LocalTS: ike.MustParseTSSpecs("10.2.1.0/24"), RemoteTS: ike.MustParseTSSpecs("10.1.1.0/24"),
			ESPProposals: c.Children[0].ESPProposals})
	}})
	tb.establish()
	for i, p := range []*peer{tb.a, tb.b, tb.a} {
		before := len(tb.net.Log)
		child := tb.children(p)[0]
		if err := p.e.RekeyChildSA(child.ID); err != nil {
			t.Fatal(err)
		}
		tb.net.Flush()
		tb.settleRekeys()
		tb.checkKeys()
		children := tb.children(p)
		if len(children) != 1 || children[0].ID == child.ID {
			t.Fatalf("rekey %d: children %+v", i, children)
		}
		if want := "ESP:AES_GCM_16_128/CURVE_25519/KE1_ML_KEM_768/KE2_ECP_384/NO_EXT_SEQ"; children[0].Proposal != want {
			t.Errorf("rekey %d: proposal %q, want %q", i, children[0].Proposal, want)
		}
		var seen []message.ExchangeType
		for _, d := range tb.net.Log[before:] {
			if h, err := message.UnmarshalHeader(d.Data); err == nil && !h.IsResponse() && h.ExchangeType != message.INFORMATIONAL {
				if len(seen) == 0 || seen[len(seen)-1] != h.ExchangeType || h.ExchangeType == message.IKE_FOLLOWUP_KE {
					seen = append(seen, h.ExchangeType)
				}
			}
		}
		if len(seen) < 3 || seen[0] != message.CREATE_CHILD_SA || seen[1] != message.IKE_FOLLOWUP_KE || seen[len(seen)-1] != message.IKE_FOLLOWUP_KE {
			t.Errorf("rekey %d: exchanges %v", i, seen)
		}
	}
	if !tb.a.log.contains("[ KE N(ADD_KE) ]") || !tb.b.log.contains("N(ADD_KE)") {
		t.Error("no ADDITIONAL_KEY_EXCHANGE notifies logged")
	}
	// A second CHILD_SA of its own CREATE_CHILD_SA, from b: installed on
	// both ends after the IKE_FOLLOWUP_KE exchanges, with equal keys.
	if err := tb.b.e.CreateChildSA(tb.established(tb.b).ID, "net2"); err != nil {
		t.Fatal(err)
	}
	tb.net.Flush()
	tb.checkKeys()
	if na, nb := len(tb.children(tb.a)), len(tb.children(tb.b)); na != 2 || nb != 2 {
		t.Fatalf("CHILD_SAs after the new one: %d and %d, want 2", na, nb)
	}
	if err := tb.a.e.DeleteIKESA(tb.established(tb.a).ID); err != nil {
		t.Fatal(err)
	}
	tb.settleRekeys()
	tb.wantNoSAs(tb.a)
	tb.wantNoSAs(tb.b)
}

// An IKE_FOLLOWUP_KE request that no CREATE_CHILD_SA announced (or whose
// link data is not ours) is answered with STATE_NOT_FOUND (RFC 9370
// section 2.2.4), and nothing is installed.
func TestFollowupKEStateNotFound(t *testing.T) {
	set := func(c *ike.Connection) {
		c.Proposals = transform.MustParseProposals(transform.ProtoIKE, "aes256gcm16-prfsha256-x25519-ke1_mlkem768")
		c.Children[0].ESPProposals = transform.MustParseProposals(transform.ProtoESP, "aes128gcm16-x25519-ke1_mlkem768")
	}
	tb := newTestbed(t, bedOptions{connA: set, connB: set})
	tb.establish()
	sa := tb.established(tb.b)
	// KE(ML_KEM_768, 4 octets), N(ADDITIONAL_KEY_EXCHANGE, "link").
	plain := []byte{
		byte(message.PayloadN), 0, 0, 12, 0, 36, 0, 0, 1, 2, 3, 4,
		0, 0, 0, 12, 0, 0, 0x40, 0x39, 'l', 'i', 'n', 'k',
	}
	req, err := tb.b.e.SealAsPeer(sa.ID, message.Header{ExchangeType: message.IKE_FOLLOWUP_KE, MessageID: 3, Flags: message.FlagInitiator},
		message.PayloadKE, plain)
	if err != nil {
		t.Fatal(err)
	}
	sas := len(tb.b.dp.SAs())
	tb.b.e.HandleDatagram(ike.Datagram{Local: netip.AddrPortFrom(addrB, 500), Remote: netip.AddrPortFrom(addrA, 500), Data: req})
	if !tb.b.log.contains("parsed IKE_FOLLOWUP_KE request 3 [ KE N(ADD_KE) ]") ||
		!tb.b.log.contains("generating IKE_FOLLOWUP_KE response 3 [ N(NO_STATE) ]") {
		t.Error("no STATE_NOT_FOUND answer")
	}
	if len(tb.b.dp.SAs()) != sas {
		t.Error("an SA was installed")
	}
}

// A responder whose peer never sends the IKE_FOLLOWUP_KE requests it
// announced gives the pending CHILD_SA up after the peer's retransmission
// budget: its SPI is freed, and the next rekey works.
func TestFollowupKEAbandoned(t *testing.T) {
	set := func(c *ike.Connection) {
		c.Proposals = transform.MustParseProposals(transform.ProtoIKE, "aes256gcm16-prfsha256-x25519")
		c.Children[0].ESPProposals = transform.MustParseProposals(transform.ProtoESP, "aes128gcm16-x25519-ke1_mlkem768")
	}
	tb := newTestbed(t, bedOptions{connA: set, connB: set})
	tb.establish()
	child := tb.children(tb.a)[0]
	spis := tb.b.dp.AllocatedSPIs()
	if err := tb.a.e.RekeyChildSA(child.ID); err != nil {
		t.Fatal(err)
	}
	tb.net.Deliver() // CREATE_CHILD_SA request to b
	tb.net.Deliver() // its response to a, which sends IKE_FOLLOWUP_KE
	if tb.b.dp.AllocatedSPIs() != spis+1 {
		t.Fatalf("b holds %d SPIs, want %d", tb.b.dp.AllocatedSPIs(), spis+1)
	}
	// a goes silent: its engine closes, b only sees nothing more.
	tb.net.Drop()
	tb.a.e.Close()
	tb.advance(10 * time.Minute)
	if !tb.b.log.contains("IKE_FOLLOWUP_KE exchanges not completed by the peer") {
		t.Error("b did not give the pending CHILD_SA up")
	}
	if n := tb.b.dp.AllocatedSPIs(); n > spis {
		t.Errorf("b holds %d SPIs, want at most %d", n, spis)
	}
}

// Key exchange data the responder cannot use, in an IKE_FOLLOWUP_KE
// request of a real pending exchange (right link data, right message
// ID): an ML-KEM-512 encapsulation key of the wrong length or failing
// FIPS 203's modulus check, or a KE of another method, is answered with
// INVALID_SYNTAX (malformed, as in IKE_INTERMEDIATE), nothing is
// installed, the initiator gives its rekey up, and the next rekey works.
func TestFollowupKEBadKeyExchange(t *testing.T) {
	set := func(c *ike.Connection) {
		c.Proposals = transform.MustParseProposals(transform.ProtoIKE, "aes256gcm16-prfsha256-x25519")
		c.Children[0].ESPProposals = transform.MustParseProposals(transform.ProtoESP, "aes128gcm16-x25519-ke1_mlkem512")
	}
	ekLen := transform.ML_KEM_512.PublicValueSize()
	outOfRange := make([]byte, ekLen)
	outOfRange[0], outOfRange[1] = 0xff, 0xff // a coefficient of 4095 >= q
	for _, c := range []struct {
		name   string
		method transform.KEID
		data   []byte
		blog   string
	}{
		{"short", transform.ML_KEM_512, make([]byte, ekLen-1), "applying ML_KEM_512 key exchange data failed"},
		{"long", transform.ML_KEM_512, make([]byte, ekLen+1), "applying ML_KEM_512 key exchange data failed"},
		{"empty", transform.ML_KEM_512, nil, "applying ML_KEM_512 key exchange data failed"},
		{"modulus", transform.ML_KEM_512, outOfRange, "applying ML_KEM_512 key exchange data failed"},
		{"other method", transform.ML_KEM_768, make([]byte, transform.ML_KEM_768.PublicValueSize()), "additional key exchange ML_KEM_512 expected in IKE_FOLLOWUP_KE request"},
	} {
		t.Run(c.name, func(t *testing.T) {
			tb := newTestbed(t, bedOptions{connA: set, connB: set})
			tb.establish()
			child := tb.children(tb.a)[0]
			sas := len(tb.b.dp.SAs())
			if err := tb.a.e.RekeyChildSA(child.ID); err != nil {
				t.Fatal(err)
			}
			tb.net.Deliver() // CREATE_CHILD_SA request to b
			tb.net.Deliver() // its response to a, which sends IKE_FOLLOWUP_KE
			q := tb.net.Queued()
			if len(q) != 1 {
				t.Fatalf("%d datagrams queued, want a's IKE_FOLLOWUP_KE request", len(q))
			}
			h, err := message.UnmarshalHeader(q[0].Data)
			if err != nil || h.ExchangeType != message.IKE_FOLLOWUP_KE {
				t.Fatalf("queued %v, %v", h.ExchangeType, err)
			}
			tb.net.Drop() // lost: the forgery takes its message ID
			sa := tb.established(tb.b)
			link := tb.b.e.FollowupLink(sa.ID)
			if len(link) == 0 {
				t.Fatal("b waits for no IKE_FOLLOWUP_KE")
			}
			ke := binary.BigEndian.AppendUint16([]byte{byte(message.PayloadN), 0, 0, 0}, uint16(c.method))
			ke = append(append(ke, 0, 0), c.data...)
			binary.BigEndian.PutUint16(ke[2:], uint16(len(ke)))
			n := binary.BigEndian.AppendUint16([]byte{0, 0, 0, 0, 0, 0}, uint16(message.ADDITIONAL_KEY_EXCHANGE))
			n = append(n, link...)
			binary.BigEndian.PutUint16(n[2:], uint16(len(n)))
			req, err := tb.b.e.SealAsPeer(sa.ID, message.Header{ExchangeType: message.IKE_FOLLOWUP_KE, MessageID: h.MessageID, Flags: message.FlagInitiator},
				message.PayloadKE, append(ke, n...))
			if err != nil {
				t.Fatal(err)
			}
			tb.b.e.HandleDatagram(ike.Datagram{Local: netip.AddrPortFrom(addrB, 500), Remote: netip.AddrPortFrom(addrA, 500), Data: req})
			if !tb.b.log.contains(c.blog) {
				t.Errorf("b did not log %q", c.blog)
			}
			if want := fmt.Sprintf("generating IKE_FOLLOWUP_KE response %d [ N(INVAL_SYN) ]", h.MessageID); !tb.b.log.contains(want) {
				t.Errorf("b did not log %q", want)
			}
			if len(tb.b.dp.SAs()) != sas {
				t.Error("b installed an SA")
			}
			// a retransmits its own request, b answers it from its cache;
			// a gives the rekey up, and the next one goes through.
			tb.advance(10 * time.Second)
			tb.settleRekeys()
			if !tb.a.log.contains("received INVALID_SYNTAX notify in IKE_FOLLOWUP_KE, no CHILD_SA built") {
				t.Error("a did not give the rekey up")
			}
			old := tb.children(tb.a)[0]
			if err := tb.a.e.RekeyChildSA(old.ID); err != nil {
				t.Fatal(err)
			}
			tb.net.Flush()
			tb.settleRekeys()
			tb.checkKeys()
			if now := tb.children(tb.a); len(now) != 1 || now[0].ID == old.ID {
				t.Errorf("rekey after the bad one: %+v", now)
			}
		})
	}
}
