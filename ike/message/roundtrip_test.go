package message

import (
	"bytes"
	"net/netip"
	"reflect"
	"testing"
)

func testHeader() Header {
	return Header{
		InitiatorSPI: 0x0102030405060708,
		ResponderSPI: 0x1112131415161718,
		ExchangeType: IKE_AUTH,
		Flags:        FlagInitiator,
		MessageID:    1,
	}
}

// everyPayload has one or more examples of every payload type, each as
// decoding returns it (empty fields nil).
var everyPayload = []struct {
	name string
	p    Payload
}{
	{"SA IKE", &SecurityAssociation{Proposals: []Proposal{{
		Number: 1, Protocol: ProtocolIKE,
		Transforms: []Transform{
			{Type: 1, ID: 12, KeyLength: 256},
			{Type: 2, ID: 5},
			{Type: 3, ID: 12},
			{Type: 4, ID: 31},
		},
	}, {
		Number: 2, Protocol: ProtocolIKE,
		Transforms: []Transform{{Type: 1, ID: 20, KeyLength: 128}, {Type: 2, ID: 7}, {Type: 4, ID: 19}},
	}}}},
	{"SA ESP with SPI and attributes", &SecurityAssociation{Proposals: []Proposal{{
		Number: 1, Protocol: ProtocolESP, SPI: []byte{0xc0, 0x01, 0xd0, 0x0d},
		Transforms: []Transform{
			{Type: 1, ID: 20, KeyLength: 256, Attributes: []TransformAttribute{
				{Type: 0x1234, TV: true, Value: []byte{0, 1}},
				{Type: 0x7fff, Value: []byte("long form")},
				{Type: 3},
			}},
			{Type: 5, ID: 0},
		},
	}}}},
	{"SA IKE rekey", &SecurityAssociation{Proposals: []Proposal{{
		Number: 1, Protocol: ProtocolIKE, SPI: []byte{1, 2, 3, 4, 5, 6, 7, 8},
		Transforms: []Transform{{Type: 1, ID: 20, KeyLength: 256}},
	}}}},
	{"SA empty proposal", &SecurityAssociation{Proposals: []Proposal{{Number: 7, Protocol: ProtocolAH, SPI: []byte{9, 9, 9, 9}}}}},
	{"KE", &KeyExchange{Group: 31, Data: bytes.Repeat([]byte{0xab}, 32)}},
	{"KE empty", &KeyExchange{Group: 14}},
	{"IDi FQDN", &IDi{Identification{IDType: ID_FQDN, Data: []byte("gw.example.com")}}},
	{"IDr IPv4", &IDr{Identification{IDType: ID_IPV4_ADDR, Data: []byte{192, 0, 2, 1}}}},
	{"IDi NULL", &IDi{Identification{IDType: ID_NULL}}},
	{"CERT", &Certificate{Encoding: CertX509Signature, Data: []byte{0x30, 0x82, 0x01, 0x00}}},
	{"CERTREQ", &CertificateRequest{Encoding: CertX509Signature, Authority: bytes.Repeat([]byte{0x5a}, 40)}},
	{"CERTREQ empty", &CertificateRequest{Encoding: CertX509Signature}},
	{"AUTH PSK", &Authentication{Method: AuthSharedKeyMIC, Data: bytes.Repeat([]byte{1}, 32)}},
	{"AUTH digital signature", &Authentication{Method: AuthDigitalSignature, Data: []byte{3, 1, 2, 3, 0xff}}},
	{"Nonce", &Nonce{Data: bytes.Repeat([]byte{0x42}, 32)}},
	{"N status", &Notify{NotifyType: NAT_DETECTION_SOURCE_IP, Data: bytes.Repeat([]byte{7}, 20)}},
	{"N no data", &Notify{NotifyType: IKEV2_FRAGMENTATION_SUPPORTED}},
	{"N REKEY_SA", &Notify{Protocol: ProtocolESP, SPI: []byte{1, 2, 3, 4}, NotifyType: REKEY_SA}},
	{"N error", &Notify{NotifyType: INVALID_KE_PAYLOAD, Data: []byte{0, 19}}},
	{"D IKE", &Delete{Protocol: ProtocolIKE}},
	{"D ESP", &Delete{Protocol: ProtocolESP, SPIs: []uint32{0xc0010001, 0xc0010002, 3}}},
	{"D AH none", &Delete{Protocol: ProtocolAH}},
	{"V", &VendorID{Data: []byte("xdpsec")}},
	{"TSi IPv4", &TSi{TrafficSelectors{Selectors: []TrafficSelector{{
		TSType: TS_IPV4_ADDR_RANGE, IPProtocol: 6, StartPort: 0, EndPort: 65535,
		StartAddress: netip.MustParseAddr("192.0.2.0"), EndAddress: netip.MustParseAddr("192.0.2.255"),
	}}}}},
	{"TSr mixed", &TSr{TrafficSelectors{Selectors: []TrafficSelector{
		{TSType: TS_IPV6_ADDR_RANGE, StartPort: 65535, EndPort: 0,
			StartAddress: netip.MustParseAddr("2001:db8::"), EndAddress: netip.MustParseAddr("2001:db8::ffff")},
		{TSType: TS_IPV4_ADDR_RANGE, IPProtocol: 1, StartPort: 0x0800, EndPort: 0x08ff,
			StartAddress: netip.MustParseAddr("0.0.0.0"), EndAddress: netip.MustParseAddr("255.255.255.255")},
		{TSType: TS_SECLABEL, Opaque: []byte("system_u:object_r:ipsec_spd_t:s0\x00")},
	}}}},
	{"TSi empty", &TSi{}},
	{"CP request", &Configuration{CFGType: CFG_REQUEST, Attributes: []ConfigAttribute{
		{Type: INTERNAL_IP4_ADDRESS}, {Type: INTERNAL_IP4_DNS}, {Type: INTERNAL_IP6_ADDRESS},
	}}},
	{"CP reply", &Configuration{CFGType: CFG_REPLY, Attributes: []ConfigAttribute{
		{Type: INTERNAL_IP4_ADDRESS, Value: []byte{10, 0, 0, 2}},
		{Type: INTERNAL_DNS_DOMAIN, Value: []byte("corp.example")},
		{Type: 0x7fff, Value: []byte{1}},
	}}},
	{"EAP response identity", &EAP{Message: []byte{2, 7, 0, 9, 1, 'u', 's', 'e', 'r'}}},
	{"EAP success", &EAP{Message: []byte{3, 7, 0, 4}}},
	{"unknown non-critical", &Unknown{PayloadType: 200, Body: []byte{1, 2, 3}}},
	{"unknown empty", &Unknown{PayloadType: PayloadPS}},
}

func TestRoundTripEveryPayload(t *testing.T) {
	for _, tt := range everyPayload {
		t.Run(tt.name, func(t *testing.T) {
			m := &Message{Header: testHeader(), Payloads: []Payload{tt.p}}
			b, err := m.Marshal()
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			got, err := Unmarshal(b)
			if err != nil {
				t.Fatalf("Unmarshal: %v\n% x", err, b)
			}
			if len(got.Payloads) != 1 || !reflect.DeepEqual(got.Payloads[0], tt.p) {
				t.Fatalf("payload\n got %#v\nwant %#v", got.Payloads, tt.p)
			}
			if got.Header.NextPayload != tt.p.Type() || int(got.Header.Length) != len(b) {
				t.Errorf("header next %v length %d, want %v %d", got.Header.NextPayload, got.Header.Length, tt.p.Type(), len(b))
			}
			b2, err := got.Marshal()
			if err != nil || !bytes.Equal(b, b2) {
				t.Errorf("re-encode differs (%v)\n% x\n% x", err, b, b2)
			}
		})
	}
}

// TestRoundTripChain puts every payload into one message, plaintext and
// encrypted, so that each is also decoded with a neighbour behind it.
func TestRoundTripChain(t *testing.T) {
	var ps []Payload
	for _, tt := range everyPayload {
		ps = append(ps, tt.p)
	}
	m := &Message{Header: testHeader(), Payloads: ps}
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	got, err := Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Payloads, ps) {
		t.Fatalf("plaintext chain differs")
	}

	p := &fakeProtector{key: 1}
	eb, err := m.MarshalEncrypted(p)
	if err != nil {
		t.Fatal(err)
	}
	got, err = UnmarshalEncrypted(eb, p)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Payloads, ps) {
		t.Fatalf("encrypted chain differs")
	}
	if got.Header.NextPayload != PayloadSK || int(got.Header.Length) != len(eb) {
		t.Errorf("header next %v length %d", got.Header.NextPayload, got.Header.Length)
	}
}

func TestEmptyMessage(t *testing.T) {
	m := &Message{Header: Header{ExchangeType: INFORMATIONAL, Flags: FlagResponse, MessageID: 9}}
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != HeaderLen || b[16] != 0 {
		t.Fatalf("% x", b)
	}
	got, err := Unmarshal(b)
	if err != nil || len(got.Payloads) != 0 {
		t.Fatalf("%v %v", got, err)
	}
	// An empty INFORMATIONAL (liveness check) is still encrypted: SK
	// with Next Payload 0.
	p := &fakeProtector{}
	eb, err := m.MarshalEncrypted(p)
	if err != nil {
		t.Fatal(err)
	}
	if eb[HeaderLen] != 0 {
		t.Errorf("SK next payload %d", eb[HeaderLen])
	}
	got, err = UnmarshalEncrypted(eb, p)
	if err != nil || len(got.Payloads) != 0 {
		t.Fatalf("%v %v", got, err)
	}
}
