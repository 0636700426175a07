package message

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"
)

// TestRedirectData: RFC 5685 section 8's layout for each identity type,
// with and without the nonce, and the malformed inputs refused by name.
func TestRedirectData(t *testing.T) {
	nonce := bytes.Repeat([]byte{0xab}, 32)
	for _, tc := range []struct {
		gw   string
		want []byte
	}{
		{"192.0.2.7", []byte{1, 4, 192, 0, 2, 7}},
		{"2001:db8::1", append([]byte{2, 16}, netip.MustParseAddr("2001:db8::1").AsSlice()...)},
		{"GW2.Example.NET.", append([]byte{3, 15}, "gw2.example.net"...)},
	} {
		g, err := ParseGateway(tc.gw)
		if err != nil {
			t.Fatal(err)
		}
		b, err := Redirect{Gateway: g}.Marshal()
		if err != nil || !bytes.Equal(b, tc.want) {
			t.Fatalf("%s: % x, %v; want % x", tc.gw, b, err, tc.want)
		}
		withNonce, _ := Redirect{Gateway: g, Nonce: nonce}.Marshal()
		r, err := UnmarshalRedirect(withNonce)
		if err != nil || r.Gateway != g || !bytes.Equal(r.Nonce, nonce) {
			t.Fatalf("%s: round trip %+v, %v", tc.gw, r, err)
		}
	}
	for _, tc := range []struct {
		name string
		data []byte
		want error
	}{
		{"empty", nil, ErrTruncated},
		{"one octet", []byte{1}, ErrTruncated},
		{"length past the end", []byte{1, 4, 10, 0}, ErrTruncated},
		{"IPv4 of 5 octets", []byte{1, 5, 1, 2, 3, 4, 5}, ErrBadLength},
		{"IPv6 of 4 octets", []byte{2, 4, 1, 2, 3, 4}, ErrBadLength},
		{"unknown type", []byte{9, 1, 'a'}, ErrMalformed},
		{"type zero", []byte{0, 0}, ErrMalformed},
		{"empty FQDN", []byte{3, 0}, ErrMalformed},
		{"FQDN with a space", []byte{3, 3, 'a', ' ', 'b'}, ErrMalformed},
		{"FQDN with NUL", []byte{3, 3, 'a', 0, 'b'}, ErrMalformed},
		{"FQDN empty label", []byte{3, 3, 'a', '.', '.'}, ErrMalformed},
		{"unspecified address", []byte{1, 4, 0, 0, 0, 0}, ErrMalformed},
		{"multicast address", []byte{1, 4, 224, 0, 0, 1}, ErrMalformed},
	} {
		if _, err := UnmarshalRedirect(tc.data); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	for _, bad := range []string{"", "-a.example", "a..b", "fe80::1%eth0", "a b"} {
		if _, err := ParseGateway(bad); err == nil {
			t.Errorf("ParseGateway(%q) accepted", bad)
		}
	}
}

// FuzzRedirectData: any notification data decodes or fails with an error,
// never panics, and what decodes encodes back to the same octets (modulo
// the FQDN's case and trailing dot, which are normalised).
func FuzzRedirectData(f *testing.F) {
	f.Add([]byte{1, 4, 192, 0, 2, 7})
	f.Add(append([]byte{2, 16}, netip.MustParseAddr("2001:db8::1").AsSlice()...))
	f.Add(append(append([]byte{3, 15}, "gw2.example.net"...), bytes.Repeat([]byte{1}, 32)...))
	f.Add([]byte{3, 255})
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := UnmarshalRedirect(data)
		if err != nil {
			return
		}
		b, err := r.Marshal()
		if err != nil {
			t.Fatalf("decoded %+v does not encode: %v", r, err)
		}
		again, err := UnmarshalRedirect(b)
		if err != nil || again.Gateway != r.Gateway || !bytes.Equal(again.Nonce, r.Nonce) {
			t.Fatalf("round trip: %+v -> % x -> %+v, %v", r, b, again, err)
		}
	})
}
