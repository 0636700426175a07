package radius

import (
	"bytes"
	"encoding/hex"
	"testing"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
)

// Known answers for RFC 2548 §2.4.2/§2.4.3 key decryption. The encrypted
// values were computed from the RFC's text by a separate script (Python
// hashlib, not this code nor layeh's): secret "xdpsec-kat-secret",
// Request Authenticator 10 11 ... 1f, the salts below.
func TestMPPEKeyDecryptionVectors(t *testing.T) {
	reqAuth := [16]byte{}
	for i := range reqAuth {
		reqAuth[i] = byte(0x10 + i)
	}
	seq := func(n int, mul, add byte) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i)*mul + add
		}
		return b
	}
	for _, tc := range []struct {
		name       string
		recv, send string // salt || encrypted string
		wantRecv   []byte
		wantSend   []byte
		wantMSK    []byte
	}{
		{
			name:     "32+32 bytes (EAP-TLS): no padding",
			recv:     "8001d5bd55fcc73b468677823259bb8e4b772f52a67d4e0b29c739d6a6a0a3783778aef01f8e4d7a8d92b23d806e6a43bbf3",
			send:     "810262355869e9209b3d524634abbc2b9f3bb11c97b77b4f636918c2ddeff645b4a19cceae3a2fb13a968bb973e9aebd397f",
			wantRecv: seq(32, 7, 1),
			wantSend: seq(32, 11, 3),
		},
		{
			name:     "16+16 bytes (EAP-MSCHAPv2): zero-padded to 64",
			recv:     "8555a199af3d915cfa376a7fd3a8a0b4494689395ea5da7db96c414a2c46204da883",
			send:     "8666fc011b2a56c2cddbd21b738fbb0732c64d737ae719ca0dafcb3112f0e8f63579",
			wantRecv: seq(16, 1, 0),
			wantSend: seq(16, 1, 0xa0),
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := &radius.Packet{Code: radius.CodeAccessRequest, Authenticator: reqAuth}
			accept := &radius.Packet{Code: radius.CodeAccessAccept, Secret: []byte("xdpsec-kat-secret")}
			for _, k := range []struct {
				typ byte
				hex string
			}{{17, tc.recv}, {16, tc.send}} { // MS-MPPE-Recv-Key 17, MS-MPPE-Send-Key 16
				v, _ := hex.DecodeString(k.hex)
				vsa := append([]byte{0, 0, 0x01, 0x37, k.typ, byte(2 + len(v))}, v...) // vendor 311 (Microsoft)
				accept.Add(rfc2865.VendorSpecific_Type, vsa)
			}
			got, err := msk(accept, req)
			if err != nil {
				t.Fatal(err)
			}
			want := append(append([]byte(nil), tc.wantRecv...), tc.wantSend...)
			want = append(want, make([]byte, max(0, 64-len(want)))...)
			if !bytes.Equal(got, want) {
				t.Errorf("MSK\n got %x\nwant %x", got, want)
			}
			if len(got) != 64 {
				t.Errorf("MSK of %d bytes", len(got))
			}
			// Another secret decrypts to garbage or fails, never to the key.
			accept.Secret = []byte("other")
			if bad, err := msk(accept, req); err == nil && bytes.Equal(bad, want) {
				t.Error("decrypted with the wrong secret")
			}
		})
	}
}

// Malformed MPPE key attributes are errors, not panics.
func TestMPPEKeyMalformed(t *testing.T) {
	req := &radius.Packet{Code: radius.CodeAccessRequest}
	for _, v := range [][]byte{
		{},
		{0x80},
		{0x00, 0x01, 1, 2, 3}, // salt without its high bit
		append([]byte{0x80, 0x01}, make([]byte, 15)...), // not a multiple of 16
		append([]byte{0x80, 0x01}, bytes.Repeat([]byte{0xff}, 16)...),
	} {
		accept := &radius.Packet{Code: radius.CodeAccessAccept, Secret: []byte("s")}
		for _, typ := range []byte{16, 17} {
			accept.Add(rfc2865.VendorSpecific_Type, append([]byte{0, 0, 0x01, 0x37, typ, byte(2 + len(v))}, v...))
		}
		if m, err := msk(accept, req); err == nil && len(m) < 64 {
			t.Errorf("%x: MSK %x", v, m)
		}
	}
}
