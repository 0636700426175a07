package message

import (
	"bytes"
	"errors"
	"net/netip"
	"reflect"
	"testing"
)

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func seq(from byte, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = from + byte(i)
	}
	return b
}

// ikeSAInitRequest is an IKE_SA_INIT request assembled octet by octet
// from the layouts of RFC 7296 section 3: HDR, SA, KE, Ni,
// N(IKEV2_FRAGMENTATION_SUPPORTED), N(NAT_DETECTION_SOURCE_IP).
var ikeSAInitRequest = cat(
	// IKE header (3.1)
	[]byte{0x8a, 0x5c, 0x0e, 0x10, 0x2b, 0x7d, 0x31, 0xa4}, // initiator SPI
	[]byte{0, 0, 0, 0, 0, 0, 0, 0},                         // responder SPI: not yet known
	[]byte{33, 0x20, 34, 0x08},                             // next SA, version 2.0, IKE_SA_INIT, I
	[]byte{0, 0, 0, 0},                                     // message ID 0
	[]byte{0, 0, 0, 164},                                   // length 28+40+40+20+8+28

	// SA (3.3): generic header, next KE, length 4+36
	[]byte{34, 0, 0, 40},
	// proposal: last, length 8+12+8+8, #1, IKE, no SPI, 3 transforms
	[]byte{0, 0, 0, 36, 1, 1, 0, 3},
	// transform: more, length 12, ENCR (1), ENCR_AES_GCM_16 (20)
	[]byte{3, 0, 0, 12, 1, 0, 0, 20},
	[]byte{0x80, 14, 0, 128}, // TV attribute Key Length = 128
	// transform: more, length 8, PRF (2), PRF_HMAC_SHA2_256 (5)
	[]byte{3, 0, 0, 8, 2, 0, 0, 5},
	// transform: last, length 8, KE (4), Curve25519 (31)
	[]byte{0, 0, 0, 8, 4, 0, 0, 31},

	// KE (3.4): next Nonce, length 4+4+32, group 31, reserved, data
	[]byte{40, 0, 0, 40, 0, 31, 0, 0},
	seq(0x01, 32),

	// Ni (3.9): next N, length 4+16
	[]byte{41, 0, 0, 20},
	seq(0xa0, 16),

	// N (3.10): next N, length 8, no protocol, no SPI, 16430
	[]byte{41, 0, 0, 8, 0, 0, 0x40, 0x2e},

	// N: last, length 4+4+20, no protocol, no SPI, 16388, SHA-1 digest
	[]byte{0, 0, 0, 28, 0, 0, 0x40, 0x04},
	seq(0xd0, 20),
)

func TestDecodeIKESAInitVector(t *testing.T) {
	m, err := Unmarshal(ikeSAInitRequest)
	if err != nil {
		t.Fatal(err)
	}
	want := &Message{
		Header: Header{
			InitiatorSPI: 0x8a5c0e102b7d31a4,
			NextPayload:  PayloadSA,
			ExchangeType: IKE_SA_INIT,
			Flags:        FlagInitiator,
			Length:       164,
		},
		Payloads: []Payload{
			&SecurityAssociation{Proposals: []Proposal{{
				Number: 1, Protocol: ProtocolIKE,
				Transforms: []Transform{
					{Type: 1, ID: 20, KeyLength: 128},
					{Type: 2, ID: 5},
					{Type: 4, ID: 31},
				},
			}}},
			&KeyExchange{Group: 31, Data: seq(0x01, 32)},
			&Nonce{Data: seq(0xa0, 16)},
			&Notify{NotifyType: IKEV2_FRAGMENTATION_SUPPORTED},
			&Notify{NotifyType: NAT_DETECTION_SOURCE_IP, Data: seq(0xd0, 20)},
		},
	}
	if !reflect.DeepEqual(m, want) {
		t.Fatalf("got  %#v\nwant %#v", m, want)
	}
	b, err := want.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, ikeSAInitRequest) {
		t.Fatalf("encode differs\n got % x\nwant % x", b, ikeSAInitRequest)
	}
}

// createChildSAResponse is the inner payloads of a CREATE_CHILD_SA
// response (after SK is opened): SA with an ESP SPI, Nr, TSi, TSr, then a
// Delete and a CP to cover those layouts.
var createChildSAInner = cat(
	// SA: next Nonce, length 4+8+4+8+8
	[]byte{40, 0, 0, 32},
	// proposal: last, length 28, #2, ESP, SPI size 4, 2 transforms; SPI
	[]byte{0, 0, 0, 28, 2, 3, 4, 2, 0xca, 0xfe, 0xba, 0xbe},
	[]byte{3, 0, 0, 8, 1, 0, 0, 20}, // ENCR_AES_GCM_16, no key length
	[]byte{0, 0, 0, 8, 5, 0, 0, 0},  // ESN: no
	// Nr: next TSi, length 4+16
	[]byte{44, 0, 0, 20},
	seq(0x10, 16),
	// TSi (3.13): next TSr, length 4+4+16; 1 selector
	[]byte{45, 0, 0, 24, 1, 0, 0, 0},
	// TS_IPV4_ADDR_RANGE, any protocol, length 16, ports 0-65535,
	// 192.0.2.0 - 192.0.2.255
	[]byte{7, 0, 0, 16, 0, 0, 0xff, 0xff, 192, 0, 2, 0, 192, 0, 2, 255},
	// TSr: next D, length 4+4+40; 1 selector
	[]byte{42, 0, 0, 48, 1, 0, 0, 0},
	// TS_IPV6_ADDR_RANGE, UDP, length 40, port 500 only,
	// 2001:db8:: - 2001:db8::ffff
	[]byte{8, 17, 0, 40, 0x01, 0xf4, 0x01, 0xf4},
	[]byte{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
	[]byte{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff},
	// D (3.11): next CP, length 4+4+8, ESP, SPI size 4, 2 SPIs
	[]byte{47, 0, 0, 16, 3, 4, 0, 2},
	[]byte{0, 0, 0, 1, 0xff, 0xff, 0xff, 0xfe},
	// CP (3.15): last, length 4+4+8+4, CFG_REPLY
	[]byte{0, 0, 0, 20, 2, 0, 0, 0},
	// INTERNAL_IP4_ADDRESS 10.1.2.3 (with the reserved R bit set, to be
	// ignored), then INTERNAL_IP4_DNS with no value
	[]byte{0x80, 1, 0, 4, 10, 1, 2, 3},
	[]byte{0, 3, 0, 0},
)

func TestDecodeCreateChildSAVector(t *testing.T) {
	ps, err := decodeChain(createChildSAInner, PayloadSA, true)
	if err != nil {
		t.Fatal(err)
	}
	want := []Payload{
		&SecurityAssociation{Proposals: []Proposal{{
			Number: 2, Protocol: ProtocolESP, SPI: []byte{0xca, 0xfe, 0xba, 0xbe},
			Transforms: []Transform{{Type: 1, ID: 20}, {Type: 5, ID: 0}},
		}}},
		&Nonce{Data: seq(0x10, 16)},
		&TSi{TrafficSelectors{Selectors: []TrafficSelector{{
			TSType: TS_IPV4_ADDR_RANGE, EndPort: 65535,
			StartAddress: netip.MustParseAddr("192.0.2.0"), EndAddress: netip.MustParseAddr("192.0.2.255"),
		}}}},
		&TSr{TrafficSelectors{Selectors: []TrafficSelector{{
			TSType: TS_IPV6_ADDR_RANGE, IPProtocol: 17, StartPort: 500, EndPort: 500,
			StartAddress: netip.MustParseAddr("2001:db8::"), EndAddress: netip.MustParseAddr("2001:db8::ffff"),
		}}}},
		&Delete{Protocol: ProtocolESP, SPIs: []uint32{1, 0xfffffffe}},
		&Configuration{CFGType: CFG_REPLY, Attributes: []ConfigAttribute{
			{Type: INTERNAL_IP4_ADDRESS, Value: []byte{10, 1, 2, 3}},
			{Type: INTERNAL_IP4_DNS},
		}},
	}
	if !reflect.DeepEqual(ps, want) {
		t.Fatalf("got  %#v\nwant %#v", ps, want)
	}
	b, err := appendChain(nil, want, true)
	if err != nil {
		t.Fatal(err)
	}
	// The only difference on re-encoding is the reserved bit, cleared.
	wantBytes := bytes.Clone(createChildSAInner)
	wantBytes[len(wantBytes)-12] = 0
	if !bytes.Equal(b, wantBytes) {
		t.Fatalf("encode differs\n got % x\nwant % x", b, wantBytes)
	}
}

// TestDecodeCriticalBit: RFC 7296 section 2.5. A payload type this package
// does not know, critical bit set, rejects the message with its type; the
// same payload without the bit is skipped and kept; the bit on a known
// payload is ignored.
func TestDecodeCriticalBit(t *testing.T) {
	msg := func(critical byte, typ PayloadType) []byte {
		return cat(
			[]byte{1, 2, 3, 4, 5, 6, 7, 8, 8, 7, 6, 5, 4, 3, 2, 1},
			[]byte{byte(typ), 0x20, byte(INFORMATIONAL), 0x20},
			[]byte{0, 0, 0, 5},
			[]byte{0, 0, 0, 28 + 7 + 8},
			[]byte{byte(PayloadV), critical, 0, 7, 'a', 'b', 'c'}, // the payload under test
			[]byte{0, 0, 0, 8, 'x', 'd', 'p', 's'},                // V after it
		)
	}
	_, err := Unmarshal(msg(0x80, 0xc8))
	var ucp *UnsupportedCriticalPayloadError
	if !errors.As(err, &ucp) || ucp.Type != 0xc8 {
		t.Fatalf("critical unknown: %v", err)
	}

	m, err := Unmarshal(msg(0x00, 0xc8))
	if err != nil {
		t.Fatal(err)
	}
	want := []Payload{&Unknown{PayloadType: 0xc8, Body: []byte("abc")}, &VendorID{Data: []byte("xdps")}}
	if !reflect.DeepEqual(m.Payloads, want) {
		t.Fatalf("non-critical unknown: %#v", m.Payloads)
	}

	m, err = Unmarshal(msg(0xff, PayloadV)) // critical and reserved bits on a V
	if err != nil {
		t.Fatal(err)
	}
	want = []Payload{&VendorID{Data: []byte("abc")}, &VendorID{Data: []byte("xdps")}}
	if !reflect.DeepEqual(m.Payloads, want) {
		t.Fatalf("critical known: %#v", m.Payloads)
	}

	// Sending: Critical on an Unknown sets the bit.
	b, err := (&Message{Payloads: []Payload{&Unknown{PayloadType: 0xc8, Critical: true}}}).Marshal()
	if err != nil || b[HeaderLen+1] != 0x80 {
		t.Fatalf("%v % x", err, b)
	}
}

// TestDecodeHeaderVector covers the header fields one by one, including
// bits that are to be ignored on receipt.
func TestDecodeHeaderVector(t *testing.T) {
	b := cat(
		[]byte{0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe},
		[]byte{0, 0x23, 37, 0x20 | 0x10 | 0x07}, // no payload, version 2.3, INFORMATIONAL, R|V + reserved bits
		[]byte{0xde, 0xad, 0xbe, 0xef},
		[]byte{0, 0, 0, 28},
	)
	h, err := UnmarshalHeader(b)
	if err != nil {
		t.Fatal(err)
	}
	want := Header{InitiatorSPI: 1, ResponderSPI: 0xfffffffffffffffe, MinorVersion: 3, ExchangeType: INFORMATIONAL,
		Flags: FlagResponse | FlagVersion, MessageID: 0xdeadbeef, Length: 28}
	if h != want {
		t.Fatalf("got %+v\nwant %+v", h, want)
	}
	if !h.IsResponse() || h.IsInitiator() || h.Flags.String() != "V|R" {
		t.Errorf("flags %v", h.Flags)
	}
	b[17] = 0x10 // IKEv1
	if _, err := UnmarshalHeader(b); !errors.Is(err, ErrInvalidMajorVersion) {
		t.Errorf("version 1: %v", err)
	}
}

// TestDecodeRFC7427Vector: the RFC 7427 payloads. SIGNATURE_HASH_ALGORITHMS
// (section 4) lists two-octet hash algorithm numbers, here SHA2-256 (2),
// SHA2-384 (3), SHA2-512 (4); an AUTH with method 14 (section 3) starts
// with the length of an AlgorithmIdentifier, here sha256WithRSAEncryption
// as RFC 7427 Appendix A.1 spells it, then the signature.
func TestDecodeRFC7427Vector(t *testing.T) {
	algID := []byte{
		0x30, 0x0d, // SEQUENCE, 13 octets
		0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b, // OID 1.2.840.113549.1.1.11
		0x05, 0x00, // NULL parameters
	}
	signature := seq(0x55, 256)
	inner := cat(
		// N: next AUTH, length 8+6, no protocol, no SPI, 16431
		[]byte{39, 0, 0, 14, 0, 0, 0x40, 0x2f},
		[]byte{0, 2, 0, 3, 0, 4},
		// AUTH: last, length 4+4+1+15+256, method 14, reserved
		[]byte{0, 0, 0x01, 0x18, 14, 0, 0, 0},
		[]byte{byte(len(algID))}, algID, signature,
	)
	ps, err := decodeChain(inner, PayloadN, true)
	if err != nil {
		t.Fatal(err)
	}
	want := []Payload{
		&Notify{NotifyType: SIGNATURE_HASH_ALGORITHMS, Data: []byte{0, 2, 0, 3, 0, 4}},
		&Authentication{Method: AuthDigitalSignature, Data: cat([]byte{15}, algID, signature)},
	}
	if !reflect.DeepEqual(ps, want) {
		t.Fatalf("got %#v", ps)
	}
	b, err := appendChain(nil, want, true)
	if err != nil || !bytes.Equal(b, inner) {
		t.Fatalf("encode differs (%v)", err)
	}
}
