package isakmp

import (
	"bytes"
	"reflect"
	"testing"
)

// xauthRequest is the first XAuth message as charon's xauth-generic
// server sends it: HASH, then a CFG_REQUEST asking for the user name and
// password with empty TLV attributes.
func xauthRequest() *Message {
	return &Message{
		Header: Header{InitiatorCookie: 1, ResponderCookie: 2, Exchange: ExchangeTransaction, MessageID: 0x1234},
		Payloads: []Payload{
			&Hash{Data: bytes.Repeat([]byte{7}, 32)},
			&ConfigAttributes{CfgType: CfgRequest, Identifier: 0xbeef, Attributes: []Attribute{
				ModeCfgAttribute(XAuthUserName, nil), ModeCfgAttribute(XAuthUserPassword, nil)}},
		},
	}
}

// TestConfigAttributesEncoding checks the octets of the Attribute
// payload against its layout (draft-dukes-ike-mode-cfg-02 section 3.2).
func TestConfigAttributesEncoding(t *testing.T) {
	p := &ConfigAttributes{CfgType: CfgSet, Identifier: 0x0102, Attributes: []Attribute{
		BasicAttr(XAuthStatus, XAuthStatusOK),
		ModeCfgAttribute(InternalIP4Address, []byte{10, 3, 0, 1}),
		ModeCfgAttribute(XAuthUserName, []byte("alice")),
	}}
	body, err := p.Body()
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{3, 0, 1, 2,
		0xc0, 0x8f, 0, 1, // AF=1, 16527, value 1
		0, 1, 0, 4, 10, 3, 0, 1,
		0x40, 0x89, 0, 5, 'a', 'l', 'i', 'c', 'e'}
	if !bytes.Equal(body, want) {
		t.Fatalf("encoding\n%x\nwant\n%x", body, want)
	}
	ps, n, err := ParsePayloads(PayloadAttribute, append([]byte{0, 0, 0, byte(4 + len(body))}, body...))
	if err != nil || n != 4+len(body) || len(ps) != 1 {
		t.Fatalf("decode: %v %d %d", err, n, len(ps))
	}
	if !reflect.DeepEqual(ps[0], p) {
		t.Fatalf("decoded %#v, want %#v", ps[0], p)
	}
	if a, ok := p.Find(XAuthUserName); !ok || string(a.Value) != "alice" {
		t.Errorf("Find user name: %v %v", a, ok)
	}
	if _, ok := p.Find(XAuthUserPassword); ok {
		t.Errorf("Find found an absent attribute")
	}
}

func TestConfigAttributesRoundTrip(t *testing.T) {
	m := xauthRequest()
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	got, err := Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	m.Header.Length, m.Header.NextPayload = got.Header.Length, got.Header.NextPayload
	if !reflect.DeepEqual(m, got) {
		t.Fatalf("round trip differs:\n%#v\n%#v", m, got)
	}
}

func TestConfigAttributesMalformed(t *testing.T) {
	for name, body := range map[string][]byte{
		"short header":       {1, 0, 0},
		"attribute header":   {1, 0, 0, 1, 0x40},
		"attribute too long": {1, 0, 0, 1, 0x40, 0x89, 0, 9, 'a'},
	} {
		b := append([]byte{0, 0, 0, byte(4 + len(body))}, body...)
		if _, _, err := ParsePayloads(PayloadAttribute, b); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
}

func TestVendorKinds(t *testing.T) {
	for v, want := range map[string]VendorKind{
		string(VendorXAuth): VendorKindXAuth, string(VendorCiscoUnity): VendorKindCiscoUnity,
		string(append(VendorCiscoUnity[:14:14], 1, 1)): VendorKindCiscoUnity,
		string(VendorCiscoUnity[:15]):                  VendorUnknown,
	} {
		if got := ClassifyVendorID([]byte(v)); got != want {
			t.Errorf("%x: %v, want %v", v, got, want)
		}
	}
	if b, ok := AuthXAuthInitRSA.XAuthBase(); !ok || b != AuthRSA {
		t.Errorf("XAUTH_INIT_RSA base %v %v", b, ok)
	}
	if _, ok := AuthPSK.XAuthBase(); ok {
		t.Errorf("PSK is not XAuth")
	}
}
