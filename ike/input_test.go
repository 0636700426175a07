package ike_test

import (
	"github.com/xdpsec/xdpsec/ike/transform"
	"net/netip"
	"testing"
	"time"

	"github.com/xdpsec/xdpsec/ike"
	"github.com/xdpsec/xdpsec/ike/message"
)

func TestBadInputIsCounted(t *testing.T) {
	tb := newTestbed(t, bedOptions{})
	tb.establish()
	sa := tb.established(tb.b)
	from := func(port uint16, data []byte) ike.Datagram {
		return ike.Datagram{Local: netip.AddrPortFrom(addrB, port), Remote: netip.AddrPortFrom(addrA, port), Data: data}
	}
	before := tb.b.e.Stats()
	// Not IKE at all.
	tb.b.e.HandleDatagram(from(500, []byte("hello")))
	// ESP on the NAT-T port, and a keepalive.
	tb.b.e.HandleDatagram(from(4500, []byte{0xc1, 0, 0, 1, 0, 0, 0, 1}))
	tb.b.e.HandleDatagram(from(4500, []byte{0xff}))
	// An IKE message for SPIs nobody knows.
	unknown, _ := (&message.Message{Header: message.Header{InitiatorSPI: 1, ResponderSPI: 2, ExchangeType: message.INFORMATIONAL, Flags: message.FlagInitiator}}).Marshal()
	tb.b.e.HandleDatagram(from(500, unknown))
	// A real request of the SA with one bit flipped in its ICV.
	good, err := tb.b.e.SealAsPeer(sa.ID, message.Header{ExchangeType: message.INFORMATIONAL, MessageID: 2, Flags: message.FlagInitiator}, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	bad := append([]byte(nil), good...)
	bad[len(bad)-1] ^= 1
	tb.b.e.HandleDatagram(from(500, bad))
	tb.net.Flush()
	s := tb.b.e.Stats()
	if s.DroppedMalformed-before.DroppedMalformed != 1 || s.DroppedESP-before.DroppedESP != 1 || s.KeepAlivesReceived-before.KeepAlivesReceived != 1 ||
		s.DroppedUnknownSA-before.DroppedUnknownSA != 1 || s.DroppedAuthentication-before.DroppedAuthentication != 1 {
		t.Fatalf("stats %+v", s)
	}
	if s.Sent != before.Sent {
		t.Fatal("answered bad input")
	}
	// The intact one is a liveness check and is answered.
	tb.b.e.HandleDatagram(from(500, good))
	if tb.b.e.Stats().Sent != before.Sent+1 {
		t.Fatal("liveness check not answered")
	}
	tb.established(tb.b)
}

func TestInvalidSyntax(t *testing.T) {
	tb := newTestbed(t, bedOptions{})
	tb.establish()
	sa := tb.established(tb.b)
	// An authentic request whose inner payload claims more octets than
	// there are: HDR, SK {garbage} --> <-- HDR, SK {N(INVALID_SYNTAX)}
	b, err := tb.b.e.SealAsPeer(sa.ID, message.Header{ExchangeType: message.INFORMATIONAL, MessageID: 2, Flags: message.FlagInitiator},
		message.PayloadD, []byte{0, 0, 0, 40, 1})
	if err != nil {
		t.Fatal(err)
	}
	tb.b.e.HandleDatagram(ike.Datagram{Local: netip.AddrPortFrom(addrB, 500), Remote: netip.AddrPortFrom(addrA, 500), Data: b})
	if !tb.b.log.contains("generating INFORMATIONAL response 2 [ N(INVAL_SYN) ]") || tb.b.e.Stats().InvalidSyntaxSent != 1 {
		t.Fatal("no INVALID_SYNTAX")
	}
	if !tb.b.log.contains("message parsing failed") || !tb.b.log.contains("INFORMATIONAL request with message ID 2 processing failed") {
		t.Error("parse failure not logged as charon does")
	}
	// An unknown critical payload: UNSUPPORTED_CRITICAL_PAYLOAD.
	b, _ = tb.b.e.SealAsPeer(sa.ID, message.Header{ExchangeType: message.INFORMATIONAL, MessageID: 3, Flags: message.FlagInitiator},
		message.PayloadType(200), []byte{0, 0x80, 0, 4})
	tb.b.e.HandleDatagram(ike.Datagram{Local: netip.AddrPortFrom(addrB, 500), Remote: netip.AddrPortFrom(addrA, 500), Data: b})
	if !tb.b.log.contains("generating INFORMATIONAL response 3 [ N(UNSUPPORTED_CRIT) ]") {
		t.Fatal("no UNSUPPORTED_CRITICAL_PAYLOAD")
	}
	if !tb.b.log.contains("critical unknown payloads found") || !tb.b.log.contains("INFORMATIONAL request with message ID 3 processing failed") {
		t.Error("unknown critical payload not logged as charon does")
	}
	tb.established(tb.b)
}

func TestParseTS(t *testing.T) {
	for in, want := range map[string]string{
		"10.1.0.0/16":            "10.1.0.0/16",
		"10.1.2.3":               "10.1.2.3/32",
		"10.1.0.5-10.1.0.9":      "10.1.0.5..10.1.0.9",
		"10.1.0.0/16[tcp/80]":    "10.1.0.0/16[tcp/80]",
		"0.0.0.0/0[udp]":         "0.0.0.0/0[udp]",
		"fd00::/64[6/1024-2048]": "fd00::/64[tcp/1024-2048]",
		"::/0":                   "::/0",
	} {
		ts, err := ike.ParseTS(in)
		if err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if ts.String() != want {
			t.Errorf("%s: got %s, want %s", in, ts, want)
		}
	}
	for _, bad := range []string{"10.1.0.0/33", "10.1.0.9-10.1.0.1", "10.0.0.0/8[tcp", "10.0.0.0/8[foo]", "x"} {
		if _, err := ike.ParseTS(bad); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
	a, _ := ike.ParseTS("10.0.0.0/8")
	b, _ := ike.ParseTS("10.1.0.0/16[tcp/22]")
	if i, ok := a.Intersect(b); !ok || i.String() != "10.1.0.0/16[tcp/22]" {
		t.Errorf("intersect: %v %v", i, ok)
	}
	c, _ := ike.ParseTS("192.168.0.0/16")
	if _, ok := a.Intersect(c); ok {
		t.Error("disjoint selectors intersect")
	}
}

func TestParseIdentity(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.1":               "192.0.2.1",
		"2001:db8::1":             "2001:db8::1",
		"@vpn.example.org":        "vpn.example.org",
		"vpn.example.org":         "vpn.example.org",
		"user@example.org":        "user@example.org",
		"@#00ff":                  "@#00ff",
		"C=CH, O=xdpsec, CN=moon": "C=CH, O=xdpsec, CN=moon",
		"%any":                    "%any",
		"fqdn:user@example.org":   "user@example.org",
	} {
		id, err := ike.ParseIdentity(in)
		if err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if id.String() != want {
			t.Errorf("%s: got %s, want %s", in, id, want)
		}
	}
	id, _ := ike.ParseIdentity("fqdn:user@example.org")
	if id.Type != message.ID_FQDN {
		t.Errorf("typed identity: %v", id.Type)
	}
}

func TestConnectionErrors(t *testing.T) {
	tb := newTestbed(t, bedOptions{})
	for key, mod := range map[string]func(c *ike.Connection){
		// Syntax errors are ike/swanctl's; the engine checks what typed
		// values can still get wrong.
		"proposals": func(c *ike.Connection) { c.Proposals = transform.MustParseProposals(transform.ProtoESP, "aes128gcm16") },
		"esp_proposals": func(c *ike.Connection) {
			c.Children[0].ESPProposals = transform.MustParseProposals(transform.ProtoIKE, "aes128gcm16-prfsha256-x25519")
		},
		"local_ts":     func(c *ike.Connection) { c.Children[0].LocalTS = ike.MustParseTSSpecs("10.0.0.0/8[tcp/opaque]") },
		"mode":         func(c *ike.Connection) { c.Children[0].Mode = ike.Mode(7) },
		"auth":         func(c *ike.Connection) { c.Local[0].Auth = ike.AuthMethod(7) },
		"certs":        func(c *ike.Connection) { c.Local[0].Auth = ike.AuthPubkey },
		"remote_addrs": func(c *ike.Connection) { c.RemoteAddrs = []netip.Addr{{}} },
	} {
		c := baseConn(addrA, addrB, "a", "b", "10.1.0.0/16", "10.2.0.0/16")
		mod(c)
		err := tb.a.e.AddConnection(c)
		if err == nil || !contains(err.Error(), key) {
			t.Errorf("%s: error %v does not name the key", key, err)
		}
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

func TestInvalidIKESPI(t *testing.T) {
	tb := newTestbed(t, bedOptions{connA: func(c *ike.Connection) { c.DPDDelay = 10 * time.Second }})
	tb.establish()
	// b loses its state (restart); a's next request is answered with an
	// unprotected HDR, N(INVALID_IKE_SPI), which a cannot trust and ignores.
	tb.b.e.Close()
	b2 := tb.newPeer("b2", addrB, baseConn(addrB, addrA, "sun.example.org", "moon.example.org", "10.2.0.0/16", "10.1.0.0/16"), "this is a shared secret", 0xc3000000, nil)
	tb.advance(11 * time.Second)
	if !b2.log.contains("generating INFORMATIONAL response 2 [ N(INVAL_IKE_SPI) ]") {
		t.Fatal("no INVALID_IKE_SPI")
	}
	if tb.a.e.Stats().DroppedUnexpected == 0 {
		t.Fatal("a did not drop the unprotected notify")
	}
	tb.advance(5 * time.Second)
	if b2.log.count("INVAL_IKE_SPI") != 2 {
		t.Fatalf("INVALID_IKE_SPI not rate limited or not repeated: %d", b2.log.count("INVAL_IKE_SPI"))
	}
}

// TestInvalidSyntaxResponse: a peer that could not parse our request
// answers INVALID_SYNTAX; for CREATE_CHILD_SA and INFORMATIONAL that ends
// the IKE SA (RFC 7296 section 2.21.3), as in charon.
func TestInvalidSyntaxResponse(t *testing.T) {
	tb := newTestbed(t, bedOptions{})
	tb.establish()
	sa := tb.established(tb.a)
	// a's HDR(ID 2), SK {D(ESP)} --> is lost;
	// <-- HDR(ID 2), SK {N(INVALID_SYNTAX)} comes back.
	if err := tb.a.e.DeleteChildSA(sa.Children[0].ID); err != nil {
		t.Fatal(err)
	}
	tb.net.Drop()
	notifyInvalidSyntax := []byte{0, 0, 0, 8, 0, 0, 0, byte(message.INVALID_SYNTAX)}
	b, err := tb.a.e.SealAsPeer(sa.ID, message.Header{ExchangeType: message.INFORMATIONAL, MessageID: 2, Flags: message.FlagResponse}, message.PayloadN, notifyInvalidSyntax)
	if err != nil {
		t.Fatal(err)
	}
	tb.a.e.HandleDatagram(ike.Datagram{Local: netip.AddrPortFrom(addrA, 500), Remote: netip.AddrPortFrom(addrB, 500), Data: b})
	if !tb.a.log.contains("parsed INFORMATIONAL response 2 [ N(INVAL_SYN) ]") ||
		!tb.a.log.contains("received INVALID_SYNTAX notify error, destroying IKE_SA") {
		t.Fatal("INVALID_SYNTAX not logged")
	}
	tb.wantNoSAs(tb.a)
}
