package eap

import (
	"bytes"
	"errors"
	"testing"
)

func TestParseMarshalRoundTrip(t *testing.T) {
	for _, p := range []Packet{
		{Code: CodeRequest, Identifier: 7, Type: TypeIdentity},
		{Code: CodeResponse, Identifier: 7, Type: TypeIdentity, Data: []byte("carol")},
		{Code: CodeRequest, Identifier: 255, Type: TypeMSCHAPv2, Data: []byte{1, 2, 3}},
		{Code: CodeSuccess, Identifier: 9},
		{Code: CodeFailure},
	} {
		b, err := p.Marshal()
		if err != nil {
			t.Fatalf("%+v: %v", p, err)
		}
		if len(b) != p.Len() {
			t.Errorf("%+v: %d octets, Len %d", p, len(b), p.Len())
		}
		q, err := Parse(b)
		if err != nil {
			t.Fatalf("%x: %v", b, err)
		}
		if q.Code != p.Code || q.Identifier != p.Identifier || q.Type != p.Type || !bytes.Equal(q.Data, p.Data) {
			t.Errorf("round trip %+v -> %+v", p, q)
		}
	}
}

func TestParseRefuses(t *testing.T) {
	for _, c := range []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, ErrTruncated},
		{"three octets", []byte{1, 1, 0}, ErrTruncated},
		{"length past the end", []byte{1, 1, 0, 9, 1}, ErrTruncated},
		{"request without type", []byte{1, 1, 0, 4}, ErrBadLength},
		{"length below the header", []byte{2, 1, 0, 2, 1}, ErrBadLength},
		{"success with data", []byte{3, 1, 0, 5, 1}, ErrBadLength},
		{"failure of length 0", []byte{4, 1, 0, 0}, ErrBadLength},
		{"code 0", []byte{0, 1, 0, 4}, ErrMalformed},
		{"type 0", []byte{2, 1, 0, 5, 0}, ErrMalformed},
		{"code 5 (Initiate, RFC 6696)", []byte{5, 1, 0, 5, 1}, ErrMalformed},
		{"expanded type", []byte{1, 1, 0, 12, 254, 0, 0, 0, 0, 0, 0, 1}, ErrExpandedType},
	} {
		if _, err := Parse(c.in); !errors.Is(err, c.want) {
			t.Errorf("%s: Parse(%x) = %v, want %v", c.name, c.in, err, c.want)
		}
	}
}

// Octets past Length are link-layer padding (RFC 3748 section 4.1).
func TestParseIgnoresPadding(t *testing.T) {
	p, err := Parse([]byte{2, 3, 0, 6, 1, 'x', 0, 0, 0})
	if err != nil {
		t.Fatal(err)
	}
	if string(p.Data) != "x" {
		t.Fatalf("Data %q", p.Data)
	}
	if cap(p.Data) != 1 {
		t.Fatalf("Data reaches into the padding: cap %d", cap(p.Data))
	}
}

func TestMarshalRefuses(t *testing.T) {
	for _, p := range []Packet{
		{Code: 0, Type: TypeIdentity},
		{Code: CodeRequest},
		{Code: CodeSuccess, Type: TypeIdentity},
		{Code: CodeFailure, Data: []byte{1}},
		{Code: CodeResponse, Type: TypeIdentity, Data: make([]byte, MaxPacketLen)},
	} {
		if _, err := p.Marshal(); err == nil {
			t.Errorf("Marshal(%v %d octets) succeeded", p.Code, len(p.Data))
		}
	}
}

func TestNames(t *testing.T) {
	if TypeMSCHAPv2.String() != "EAP_MSCHAPV2" || TypeMD5.String() != "EAP_MD5" || Type(99).String() != "99" {
		t.Fatal("type names are not charon's")
	}
	if CodeFailure.String() != "EAP_FAILURE" {
		t.Fatal("code names are not charon's")
	}
}
