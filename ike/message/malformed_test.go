package message

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

// rawMessage frames payload octets (generic headers included) behind an
// IKE header whose Next Payload is first and whose length is right.
func rawMessage(first PayloadType, payloads ...[]byte) []byte {
	body := cat(payloads...)
	b := cat(
		[]byte{1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2},
		[]byte{byte(first), 0x20, byte(IKE_AUTH), 0x08},
		[]byte{0, 0, 0, 1},
		[]byte{0, 0, 0, 0},
	)
	b = append(b, body...)
	binary.BigEndian.PutUint32(b[24:], uint32(len(b)))
	return b
}

// one frames a single payload of type t with body.
func one(t PayloadType, body ...[]byte) []byte {
	bd := cat(body...)
	return rawMessage(t, cat([]byte{0, 0, byte((len(bd) + 4) >> 8), byte(len(bd) + 4)}, bd))
}

// proposalBytes is a well-formed single proposal with one transform, for
// tests that break one field of it.
func proposalBytes(protocol, spiSize, count byte, spi []byte, transforms ...[]byte) []byte {
	t := cat(transforms...)
	return cat([]byte{0, 0, 0, byte(8 + len(spi) + len(t)), 1, protocol, spiSize, count}, spi, t)
}

var encr = []byte{0, 0, 0, 8, 1, 0, 0, 20}

func TestMalformed(t *testing.T) {
	long := rawMessage(PayloadV, []byte{0, 0, 0, 4})
	v1025 := bytes.Repeat([]byte{byte(PayloadV), 0, 0, 4}, 1025)
	v1025[len(v1025)-4] = 0
	var props256 []byte
	for i := range 256 {
		more := byte(2)
		if i == 255 {
			more = 0
		}
		props256 = append(props256, more, 0, 0, 8, 1, 1, 0, 0)
	}

	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, ErrTruncated},
		{"short header", make([]byte, 27), ErrTruncated},
		{"header length beyond buffer", long[:len(long)-1], ErrBadLength},
		{"header length short of buffer", append(bytes.Clone(long), 0), ErrBadLength},
		{"major version 3", func() []byte { b := bytes.Clone(long); b[17] = 0x30; return b }(), ErrInvalidMajorVersion},
		{"next payload without bytes", rawMessage(PayloadSA), ErrTruncated},
		{"generic header cut", rawMessage(PayloadV, []byte{0, 0, 0}), ErrTruncated},
		{"payload length 3", rawMessage(PayloadV, []byte{0, 0, 0, 3}), ErrBadLength},
		{"payload length beyond message", rawMessage(PayloadV, []byte{0, 0, 0, 9, 1, 2, 3, 4}), ErrTruncated},
		{"octets after last payload", rawMessage(PayloadV, []byte{0, 0, 0, 4, 0xee}), ErrBadLength},
		{"chain names a missing payload", rawMessage(PayloadV, []byte{byte(PayloadV), 0, 0, 4}), ErrTruncated},
		{"too many payloads", rawMessage(PayloadV, v1025), ErrTooLarge},

		{"SA proposal header cut", one(PayloadSA, []byte{0, 0, 0, 8, 1, 1, 0}), ErrTruncated},
		{"SA proposal length 7", one(PayloadSA, []byte{0, 0, 0, 7, 1, 1, 0, 0}), ErrBadLength},
		{"SA proposal length beyond payload", one(PayloadSA, []byte{0, 0, 0, 9, 1, 1, 0, 0}), ErrTruncated},
		{"SA proposal announces another", one(PayloadSA, []byte{2, 0, 0, 8, 1, 1, 0, 0}), ErrTruncated},
		{"SA last proposal followed by octets", one(PayloadSA, []byte{0, 0, 0, 8, 1, 1, 0, 0}, []byte{0, 0, 0, 8, 2, 1, 0, 0}), ErrBadLength},
		{"SA Last Substruc 3 on a proposal", one(PayloadSA, []byte{3, 0, 0, 8, 1, 1, 0, 0}), ErrMalformed},
		{"SA 256 proposals", one(PayloadSA, props256), ErrTooLarge},
		{"SA fewer transforms than announced", one(PayloadSA, proposalBytes(1, 0, 2, nil, encr)), ErrMalformed},
		{"SA more transforms than announced", one(PayloadSA, proposalBytes(1, 0, 1, nil, []byte{3, 0, 0, 8, 1, 0, 0, 20}, encr)), ErrBadLength},
		{"SA transforms but none announced", one(PayloadSA, proposalBytes(1, 0, 0, nil, encr)), ErrBadLength},
		{"SA transform marked last too early", one(PayloadSA, proposalBytes(1, 0, 2, nil, encr, encr)), ErrMalformed},
		{"SA transform announces another", one(PayloadSA, proposalBytes(1, 0, 1, nil, []byte{3, 0, 0, 8, 1, 0, 0, 20})), ErrTruncated},
		{"SA Last Substruc 2 on a transform", one(PayloadSA, proposalBytes(1, 0, 1, nil, []byte{2, 0, 0, 8, 1, 0, 0, 20})), ErrMalformed},
		{"SA IKE SPI of 4", one(PayloadSA, proposalBytes(1, 4, 1, []byte{1, 2, 3, 4}, encr)), ErrMalformed},
		{"SA ESP SPI of 8", one(PayloadSA, proposalBytes(3, 8, 1, []byte{1, 2, 3, 4, 5, 6, 7, 8}, encr)), ErrMalformed},
		{"SA ESP without SPI", one(PayloadSA, proposalBytes(3, 0, 1, nil, encr)), ErrMalformed},
		{"SA SPI beyond proposal", one(PayloadSA, []byte{0, 0, 0, 10, 1, 3, 4, 0, 1, 2}), ErrTruncated},
		{"SA transform header cut", one(PayloadSA, proposalBytes(1, 0, 1, nil, []byte{0, 0, 0, 8, 1, 0, 0})), ErrTruncated},
		{"SA transform length 7", one(PayloadSA, proposalBytes(1, 0, 1, nil, []byte{0, 0, 0, 7, 1, 0, 0, 20})), ErrBadLength},
		{"SA transform length beyond proposal", one(PayloadSA, proposalBytes(1, 0, 1, nil, []byte{0, 0, 0, 12, 1, 0, 0, 20})), ErrTruncated},
		{"SA attribute header cut", one(PayloadSA, proposalBytes(1, 0, 1, nil, []byte{0, 0, 0, 10, 1, 0, 0, 20, 0x80, 14})), ErrTruncated},
		{"SA TLV attribute beyond transform", one(PayloadSA, proposalBytes(1, 0, 1, nil, []byte{0, 0, 0, 13, 1, 0, 0, 20, 0, 1, 0, 2, 9})), ErrTruncated},
		{"SA Key Length as TLV", one(PayloadSA, proposalBytes(1, 0, 1, nil, []byte{0, 0, 0, 14, 1, 0, 0, 20, 0, 14, 0, 2, 0, 128})), ErrMalformed},
		{"SA Key Length twice", one(PayloadSA, proposalBytes(1, 0, 1, nil, []byte{0, 0, 0, 16, 1, 0, 0, 20, 0x80, 14, 0, 128, 0x80, 14, 1, 0})), ErrMalformed},
		{"SA Key Length 0", one(PayloadSA, proposalBytes(1, 0, 1, nil, []byte{0, 0, 0, 12, 1, 0, 0, 20, 0x80, 14, 0, 0})), ErrMalformed},

		{"KE 3 octets", one(PayloadKE, []byte{0, 14, 0}), ErrTruncated},
		{"IDi 3 octets", one(PayloadIDi, []byte{2, 0, 0}), ErrTruncated},
		{"IDr empty", one(PayloadIDr), ErrTruncated},
		{"CERT empty", one(PayloadCERT), ErrTruncated},
		{"CERTREQ empty", one(PayloadCERTREQ), ErrTruncated},
		{"AUTH 3 octets", one(PayloadAUTH, []byte{2, 0, 0}), ErrTruncated},
		{"N 3 octets", one(PayloadN, []byte{0, 0, 0x40}), ErrTruncated},
		{"N SPI beyond payload", one(PayloadN, []byte{3, 4, 0x40, 0x09, 1, 2, 3}), ErrTruncated},
		{"D 3 octets", one(PayloadD, []byte{3, 4, 0}), ErrTruncated},
		{"D IKE with SPI size", one(PayloadD, []byte{1, 4, 0, 0}), ErrMalformed},
		{"D IKE with SPI count", one(PayloadD, []byte{1, 0, 0, 1}), ErrMalformed},
		{"D ESP SPI size 8", one(PayloadD, []byte{3, 8, 0, 1}, make([]byte, 8)), ErrMalformed},
		{"D ESP fewer SPIs than announced", one(PayloadD, []byte{3, 4, 0, 3}, make([]byte, 8)), ErrTruncated},
		{"D ESP more SPIs than announced", one(PayloadD, []byte{3, 4, 0, 1}, make([]byte, 8)), ErrBadLength},
		{"D unknown protocol", one(PayloadD, []byte{9, 4, 0, 0}), ErrMalformed},
		{"TS 3 octets", one(PayloadTSi, []byte{1, 0, 0}), ErrTruncated},
		{"TS fewer selectors than announced", one(PayloadTSi, []byte{2, 0, 0, 0}, []byte{7, 0, 0, 16, 0, 0, 0xff, 0xff, 10, 0, 0, 0, 10, 0, 0, 255}), ErrTruncated},
		{"TS more selectors than announced", one(PayloadTSr, []byte{0, 0, 0, 0}, []byte{7, 0, 0, 16, 0, 0, 0xff, 0xff, 10, 0, 0, 0, 10, 0, 0, 255}), ErrBadLength},
		{"TS IPv4 of length 40", one(PayloadTSi, []byte{1, 0, 0, 0}, []byte{7, 0, 0, 40}, make([]byte, 36)), ErrBadLength},
		{"TS IPv6 of length 16", one(PayloadTSi, []byte{1, 0, 0, 0}, []byte{8, 0, 0, 16}, make([]byte, 12)), ErrBadLength},
		{"TS selector length 3", one(PayloadTSi, []byte{1, 0, 0, 0}, []byte{10, 0, 0, 3}), ErrBadLength},
		{"TS selector length beyond payload", one(PayloadTSi, []byte{1, 0, 0, 0}, []byte{10, 0, 0, 8, 1}), ErrTruncated},
		{"TS selector header cut", one(PayloadTSi, []byte{1, 0, 0, 0}, []byte{7, 0}), ErrTruncated},
		{"CP 3 octets", one(PayloadCP, []byte{1, 0, 0}), ErrTruncated},
		{"CP attribute header cut", one(PayloadCP, []byte{1, 0, 0, 0}, []byte{0, 1, 0}), ErrTruncated},
		{"CP attribute beyond payload", one(PayloadCP, []byte{1, 0, 0, 0}, []byte{0, 1, 0, 4, 10, 0}), ErrTruncated},
		{"EAP 3 octets", one(PayloadEAP, []byte{1, 1, 0}), ErrTruncated},
		{"EAP length longer than payload", one(PayloadEAP, []byte{1, 1, 0, 6, 1}), ErrBadLength},
		{"EAP length shorter than payload", one(PayloadEAP, []byte{1, 1, 0, 4, 1}), ErrBadLength},

		{"SK followed by octets", rawMessage(PayloadSK, []byte{0, 0, 0, 6, 1, 2}, []byte{0, 0, 0, 4}), ErrPayloadPlacement},
		{"SKF header cut", one(PayloadSKF, []byte{0, 1, 0}), ErrTruncated},
		{"SKF fragment 0", one(PayloadSKF, []byte{0, 0, 0, 1}), ErrMalformed},
		{"SKF total 0", one(PayloadSKF, []byte{0, 1, 0, 0}), ErrMalformed},
		{"SKF number above total", one(PayloadSKF, []byte{0, 3, 0, 2}), ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Unmarshal(tt.in)
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v (%v), want %v", err, m, tt.want)
			}
		})
	}
}

func TestMalformedEncrypted(t *testing.T) {
	p := &fakeProtector{key: 7}
	good, err := (&Message{Header: testHeader(), Payloads: []Payload{&Nonce{Data: []byte{1}}}}).MarshalEncrypted(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := UnmarshalEncrypted(good, p); err != nil {
		t.Fatal(err)
	}

	// sealInner frames arbitrary inner octets as a valid SK message.
	sealInner := func(first PayloadType, inner []byte) []byte {
		b, err := sealSK(&Header{ExchangeType: IKE_AUTH}, first, inner, p)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	flip := func(i int) []byte { b := bytes.Clone(good); b[i] ^= 1; return b }

	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"plaintext message", one(PayloadNonce, []byte{1}), ErrPayloadPlacement},
		{"SKF message", func() []byte { b := bytes.Clone(good); b[16] = byte(PayloadSKF); return b }(), ErrPayloadPlacement},
		{"SK generic header cut", rawMessage(PayloadSK, []byte{0, 0}), ErrTruncated},
		{"SK length 3", rawMessage(PayloadSK, []byte{0, 0, 0, 3}), ErrBadLength},
		{"SK length beyond message", rawMessage(PayloadSK, []byte{0, 0, 0, 9, 1}), ErrTruncated},
		{"SK followed by octets", rawMessage(PayloadSK, []byte{0, 0, 0, 5, 1, 0}), ErrPayloadPlacement},
		{"header tampered (AAD)", flip(20), errFakeAuth},
		{"SK next payload tampered (AAD)", flip(HeaderLen), errFakeAuth},
		{"IV tampered", flip(skAADLen), errFakeAuth},
		{"ICV tampered", flip(len(good) - 1), errFakeAuth},
		{"SK inside SK", sealInner(PayloadSK, []byte{0, 0, 0, 4}), ErrPayloadPlacement},
		{"SKF inside SK", sealInner(PayloadSKF, []byte{0, 0, 0, 8, 0, 1, 0, 1}), ErrPayloadPlacement},
		{"inner octets after last payload", sealInner(PayloadNonce, []byte{0, 0, 0, 5, 1, 9}), ErrBadLength},
		{"inner payload truncated", sealInner(PayloadNonce, []byte{0, 0, 0, 9, 1}), ErrTruncated},
		{"inner critical unknown", sealInner(0xfe, []byte{0, 0x80, 0, 4}), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := UnmarshalEncrypted(tt.in, p)
			if tt.want == nil {
				var ucp *UnsupportedCriticalPayloadError
				if !errors.As(err, &ucp) || ucp.Type != 0xfe {
					t.Fatalf("got %v, want UnsupportedCriticalPayloadError", err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v (%v), want %v", err, m, tt.want)
			}
		})
	}
}

// TestEncodeRefuses lists messages that must not be encoded.
func TestEncodeRefuses(t *testing.T) {
	h := testHeader()
	tests := []struct {
		name string
		m    Message
		want error
	}{
		{"nil payload", Message{Payloads: []Payload{nil}}, ErrMalformed},
		{"nil payload after another", Message{Payloads: []Payload{&Nonce{}, nil}}, ErrMalformed},
		{"SK not last", Message{Payloads: []Payload{&Encrypted{}, &Nonce{}}}, ErrPayloadPlacement},
		{"unknown with a known type", Message{Payloads: []Payload{&Unknown{PayloadType: PayloadN}}}, ErrMalformed},
		{"unknown with type 0", Message{Payloads: []Payload{&Unknown{}}}, ErrMalformed},
		{"payload over 64 KiB", Message{Payloads: []Payload{&VendorID{Data: make([]byte, 65532)}}}, ErrTooLarge},
		{"message over 64 KiB", Message{Payloads: []Payload{&VendorID{Data: make([]byte, 40000)}, &VendorID{Data: make([]byte, 40000)}}}, ErrTooLarge},
		{"minor version 16", Message{Header: Header{MinorVersion: 16}}, ErrTooLarge},
		{"IKE SPI of 4", Message{Payloads: []Payload{&SecurityAssociation{Proposals: []Proposal{{Protocol: ProtocolIKE, SPI: []byte{1, 2, 3, 4}}}}}}, ErrMalformed},
		{"256 transforms", Message{Payloads: []Payload{&SecurityAssociation{Proposals: []Proposal{{Protocol: ProtocolIKE, Transforms: make([]Transform, 256)}}}}}, ErrTooLarge},
		{"Key Length as attribute", Message{Payloads: []Payload{&SecurityAssociation{Proposals: []Proposal{{Protocol: ProtocolIKE, Transforms: []Transform{{Attributes: []TransformAttribute{{Type: 14, TV: true, Value: []byte{0, 128}}}}}}}}}}, ErrMalformed},
		{"TV attribute of 3 octets", Message{Payloads: []Payload{&SecurityAssociation{Proposals: []Proposal{{Protocol: ProtocolIKE, Transforms: []Transform{{Attributes: []TransformAttribute{{Type: 1, TV: true, Value: []byte{0, 1, 2}}}}}}}}}}, ErrMalformed},
		{"attribute type over 15 bits", Message{Payloads: []Payload{&SecurityAssociation{Proposals: []Proposal{{Protocol: ProtocolIKE, Transforms: []Transform{{Attributes: []TransformAttribute{{Type: 0x8001}}}}}}}}}, ErrTooLarge},
		{"D IKE with SPIs", Message{Payloads: []Payload{&Delete{Protocol: ProtocolIKE, SPIs: []uint32{1}}}}, ErrMalformed},
		{"D protocol 0", Message{Payloads: []Payload{&Delete{}}}, ErrMalformed},
		{"TS IPv4 range with IPv6 address", Message{Payloads: []Payload{&TSi{TrafficSelectors{Selectors: []TrafficSelector{{TSType: TS_IPV4_ADDR_RANGE}}}}}}, ErrMalformed},
		{"TS unknown type with ports", Message{Payloads: []Payload{&TSi{TrafficSelectors{Selectors: []TrafficSelector{{TSType: 99, EndPort: 1}}}}}}, ErrMalformed},
		{"EAP without header", Message{Payloads: []Payload{&EAP{Message: []byte{1, 2}}}}, ErrTruncated},
		{"EAP length mismatch", Message{Payloads: []Payload{&EAP{Message: []byte{1, 2, 0, 9, 1}}}}, ErrBadLength},
		{"SKF fragment 0", Message{Payloads: []Payload{&EncryptedFragment{Total: 1}}}, ErrMalformed},
		{"CP attribute type over 15 bits", Message{Payloads: []Payload{&Configuration{Attributes: []ConfigAttribute{{Type: 0x8000}}}}}, ErrTooLarge},
		{"N SPI over 255 octets", Message{Payloads: []Payload{&Notify{SPI: make([]byte, 256)}}}, ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.m.Header == (Header{}) {
				tt.m.Header = h
				tt.m.Header.MinorVersion = 0
			}
			if _, err := tt.m.Marshal(); !errors.Is(err, tt.want) {
				t.Fatalf("Marshal: %v, want %v", err, tt.want)
			}
		})
	}
	// Encrypted payloads cannot be put inside SK.
	m := Message{Header: h, Payloads: []Payload{&Encrypted{}}}
	if _, err := m.MarshalEncrypted(&fakeProtector{}); !errors.Is(err, ErrPayloadPlacement) {
		t.Errorf("SK in SK: %v", err)
	}
}
