package isakmp

import (
	"bytes"
	"errors"
	"net/netip"
	"reflect"
	"testing"
)

// mainMode1 is a Main Mode first message as strongSwan sends it: one
// proposal with an AES-128/SHA2-256/MODP2048/PSK transform, a life
// duration, and vendor IDs.
func mainMode1() *Message {
	return &Message{
		Header: Header{InitiatorCookie: 0x0102030405060708, Exchange: ExchangeMain},
		Payloads: []Payload{
			&SecurityAssociation{DOI: DOIIPsec, Situation: SituationIdentityOnly, Proposals: []Proposal{{
				Number: 1, Protocol: ProtoISAKMP, Transforms: []Transform{{
					Number: 1, ID: TransformKeyIKE, Attributes: []Attribute{
						BasicAttr(P1Encryption, P1EncrAESCBC),
						BasicAttr(P1KeyLength, 128),
						BasicAttr(P1Hash, P1HashSHA256),
						BasicAttr(P1AuthMethod, uint16(AuthPSK)),
						BasicAttr(P1Group, 14),
						BasicAttr(P1LifeType, LifeSeconds),
						NumberAttr(P1LifeDuration, 86400),
					}}}}}},
			&VendorID{Data: VendorDPD},
			&VendorID{Data: VendorNATTRFC3947},
			&VendorID{Data: VendorFragmentation},
		},
	}
}

func TestRoundTrip(t *testing.T) {
	msgs := []*Message{mainMode1(), {
		Header: Header{InitiatorCookie: 1, ResponderCookie: 2, Exchange: ExchangeQuick, MessageID: 0xdeadbeef, Flags: FlagCommit},
		Payloads: []Payload{
			&Hash{Data: bytes.Repeat([]byte{1}, 20)},
			&SecurityAssociation{DOI: DOIIPsec, Situation: 1, Proposals: []Proposal{{
				Number: 1, Protocol: ProtoESP, SPI: []byte{0xc1, 0, 0, 1}, Transforms: []Transform{{
					Number: 1, ID: ESPAES, Attributes: []Attribute{
						BasicAttr(P2KeyLength, 256), BasicAttr(P2AuthAlg, P2AuthHMACSHA256),
						BasicAttr(P2EncapMode, EncapUDPTunnel), BasicAttr(P2LifeType, LifeSeconds),
						NumberAttr(P2LifeDuration, 3600), BasicAttr(P2LifeType, LifeKilobytes),
						NumberAttr(P2LifeDuration, 1<<40),
					}}}}}},
			&Nonce{Data: bytes.Repeat([]byte{2}, 32)},
			&KeyExchange{Data: bytes.Repeat([]byte{3}, 256)},
			SubnetID(netip.MustParsePrefix("10.1.0.0/16"), 0, 0),
			SubnetID(netip.MustParsePrefix("2001:db8::/32"), 6, 80),
			&NATOA{IDType: IDIPv4Addr, Addr: []byte{192, 0, 2, 1}},
		}}, {
		Header: Header{InitiatorCookie: 1, ResponderCookie: 2, Exchange: ExchangeInformational, MessageID: 7},
		Payloads: []Payload{
			&Notify{DOI: DOIIPsec, Protocol: ProtoISAKMP, SPI: make([]byte, 16), NotifyType: DPDRUThere, Data: []byte{0, 0, 0, 9}},
			&Delete{DOI: DOIIPsec, Protocol: ProtoESP, SPISize: 4, SPIs: [][]byte{{1, 2, 3, 4}, {5, 6, 7, 8}}},
			&Delete{DOI: DOIIPsec, Protocol: ProtoISAKMP, SPISize: 16, SPIs: [][]byte{make([]byte, 16)}},
			&Certificate{Encoding: CertX509Signature, Data: []byte{0x30, 0}},
			&CertificateRequest{Encoding: CertX509Signature},
			&Signature{Data: []byte{9, 9}},
			&NATD{Hash: []byte{1, 2}}, &NATD{Hash: []byte{3}, Draft: true},
			&Identification{IDType: IDFQDN, Data: []byte("moon.strongswan.org")},
			RangeID(netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.9"), 17, 500),
			&Fragment{ID: 1, Number: 2, Last: true, Data: []byte("x")},
			&Unknown{PayloadType: 200, Data: []byte{1}},
		}},
	}
	for _, m := range msgs {
		b, err := m.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		got, err := Unmarshal(b)
		if err != nil {
			t.Fatalf("%v: %v", m.Header.Exchange, err)
		}
		// Decoding records the raw SA body; compare without it.
		for _, p := range got.Payloads {
			if sa, ok := p.(*SecurityAssociation); ok {
				raw := sa.Raw
				sa.Raw = nil
				if body, _ := sa.Body(); !bytes.Equal(body, raw) {
					t.Fatalf("SA raw body differs from its encoding")
				}
			}
		}
		m.Header.Length, m.Header.NextPayload = got.Header.Length, got.Header.NextPayload
		if !reflect.DeepEqual(m, got) {
			t.Fatalf("round trip of %v differs:\n%#v\n%#v", m.Header.Exchange, m, got)
		}
	}
}

func TestAttributeUint(t *testing.T) {
	for _, v := range []uint64{0, 1, 0xffff, 0x10000, 0xffffffff, 1 << 40} {
		a := NumberAttr(P2LifeDuration, v)
		if got, ok := a.Uint(); !ok || got != v {
			t.Errorf("%d: got %d %v", v, got, ok)
		}
		if a.Basic != (v <= 0xffff) {
			t.Errorf("%d: basic=%v", v, a.Basic)
		}
	}
	// A variable-length duration of 12 octets with leading zeros.
	a := Attribute{Type: uint16(P2LifeDuration), Value: append(make([]byte, 10), 1, 0)}
	if got, ok := a.Uint(); !ok || got != 256 {
		t.Errorf("long duration: %d %v", got, ok)
	}
	a.Value[0] = 1
	if _, ok := a.Uint(); ok {
		t.Errorf("overlong duration accepted")
	}
}

func TestIDRange(t *testing.T) {
	for _, c := range []struct {
		id          *Identification
		first, last string
	}{
		{SubnetID(netip.MustParsePrefix("10.1.2.0/24"), 0, 0), "10.1.2.0", "10.1.2.255"},
		{SubnetID(netip.MustParsePrefix("10.1.2.3/32"), 0, 0), "10.1.2.3", "10.1.2.3"},
		{SubnetID(netip.MustParsePrefix("2001:db8::/64"), 0, 0), "2001:db8::", "2001:db8::ffff:ffff:ffff:ffff"},
		{RangeID(netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.9"), 0, 0), "10.0.0.1", "10.0.0.9"},
	} {
		f, l, err := c.id.Range()
		if err != nil || f.String() != c.first || l.String() != c.last {
			t.Errorf("%v %x: %v %v %v", c.id.IDType, c.id.Data, f, l, err)
		}
	}
	bad := &Identification{IDType: IDIPv4AddrSubnet, Data: []byte{10, 0, 0, 0, 255, 0, 255, 0}}
	if _, _, err := bad.Range(); !errors.Is(err, ErrMalformed) {
		t.Errorf("non-contiguous mask: %v", err)
	}
}

func TestMalformed(t *testing.T) {
	good, err := mainMode1().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	for name, mod := range map[string]func(b []byte) []byte{
		"short":          func(b []byte) []byte { return b[:20] },
		"version 2":      func(b []byte) []byte { b[17] = 0x20; return b },
		"length field":   func(b []byte) []byte { b[27]++; return b },
		"payload length": func(b []byte) []byte { b[31] = 0xff; return b },
		"payload < 4":    func(b []byte) []byte { b[30], b[31] = 0, 3; return b },
		"trailing":       func(b []byte) []byte { b = append(b, 0); b[27]++; return b },
		"proposal count": func(b []byte) []byte { b[HeaderLen+4+8+7] = 2; return b },
		"no proposals": func(b []byte) []byte {
			return mustMarshal(t, &Message{Payloads: []Payload{&SecurityAssociation{DOI: DOIIPsec, Situation: 1}}})
		},
		"ID address length": func(b []byte) []byte {
			return mustMarshal(t, &Message{Payloads: []Payload{&Identification{IDType: IDIPv4Addr, Data: []byte{1}}}})
		},
		"delete count": func(b []byte) []byte {
			m := mustMarshal(t, &Message{Payloads: []Payload{&Delete{Protocol: ProtoESP, SPISize: 4, SPIs: [][]byte{{1, 2, 3, 4}}}}})
			m[len(m)-5] = 2
			return m
		},
		"transform outside SA": func(b []byte) []byte { b[16] = byte(PayloadTransform); return b },
	} {
		b := mod(append([]byte(nil), good...))
		if _, err := Unmarshal(b); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
}

func mustMarshal(t *testing.T, m *Message) []byte {
	t.Helper()
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}
