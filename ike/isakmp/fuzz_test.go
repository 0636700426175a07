package isakmp

import (
	"bytes"
	"reflect"
	"testing"
)

func addSeeds(f *testing.F) {
	for _, m := range []*Message{mainMode1(), xauthRequest()} {
		b, err := m.Marshal()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add(make([]byte, HeaderLen))
}

// FuzzUnmarshal decodes arbitrary messages: no panics, and what decodes
// encodes to the same octets again.
func FuzzUnmarshal(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Unmarshal(b)
		if err != nil {
			return
		}
		out, err := m.Marshal()
		if err != nil {
			t.Fatalf("decoded message does not encode: %v", err)
		}
		m2, err := Unmarshal(out)
		if err != nil {
			t.Fatalf("re-encoded message does not decode: %v", err)
		}
		out2, _ := m2.Marshal()
		if !bytes.Equal(out, out2) {
			t.Fatalf("encoding not stable")
		}
	})
}

// FuzzParsePayloads decodes arbitrary payload chains as found in
// decrypted bodies (trailing padding allowed), and re-encodes the
// payloads, which must decode to the same values.
func FuzzParsePayloads(f *testing.F) {
	b, _ := mainMode1().Marshal()
	f.Add(uint8(b[16]), b[HeaderLen:])
	f.Add(uint8(PayloadHash), []byte{0, 0, 0, 8, 1, 2, 3, 4, 0, 0, 0})
	f.Add(uint8(PayloadID), []byte{0, 0, 0, 16, 4, 0, 0, 0, 10, 0, 0, 0, 255, 255, 0, 0})
	f.Add(uint8(PayloadNotify), []byte{0, 0, 0, 16, 0, 0, 0, 1, 1, 4, 0x8d, 0x28, 1, 2, 3, 4})
	x, _ := xauthRequest().Marshal()
	f.Add(uint8(x[16]), x[HeaderLen:])
	f.Add(uint8(PayloadAttribute), []byte{0, 0, 0, 16, 3, 0, 1, 2, 0xc0, 0x8f, 0, 1, 0, 1, 0, 0})
	f.Fuzz(func(t *testing.T, first uint8, body []byte) {
		ps, n, err := ParsePayloads(PayloadType(first), body)
		if err != nil {
			return
		}
		if n > len(body) {
			t.Fatalf("consumed %d of %d", n, len(body))
		}
		for _, p := range ps {
			if id, ok := p.(*Identification); ok {
				_, _, _ = id.Range()
			}
			if ca, ok := p.(*ConfigAttributes); ok {
				for _, a := range ca.Attributes {
					a.Uint()
				}
				ca.Find(XAuthStatus)
			}
			if sa, ok := p.(*SecurityAssociation); ok {
				for _, pr := range sa.Proposals {
					for _, tr := range pr.Transforms {
						for _, a := range tr.Attributes {
							a.Uint()
						}
					}
				}
			}
		}
		t2, out, err := MarshalPayloads(ps)
		if err != nil {
			t.Fatalf("decoded payloads do not encode: %v", err)
		}
		ps2, _, err := ParsePayloads(t2, out)
		if err != nil {
			t.Fatalf("re-encoded payloads do not decode: %v", err)
		}
		if !reflect.DeepEqual(ps, ps2) {
			t.Fatalf("payloads differ after a round trip")
		}
	})
}
