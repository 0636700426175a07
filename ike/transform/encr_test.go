package transform

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"testing"
)

// RFC 3602 section 4, cases 2 and 3, seen through Open: the last plaintext
// byte of each vector is read as the pad length, so Open returns the bytes
// before the padding. The ICV is the one computed with HMAC-SHA-256-128,
// whose own vectors are checked in integ_test.go.
func TestCBCOpenKnownAnswers(t *testing.T) {
	tests := []struct {
		key, iv, ct string
		want        []byte
	}{
		{"c286696d887c9aa0611bbb3e2025a45a", "562e17996d093d28ddb3ba695a2e6f58",
			"d296cd94c2cccf8a3a863028b5e1dc0a7586602d253cfff91b8266bea6d61ab1",
			[]byte{}}, // plaintext 00..1f: pad length 0x1f leaves nothing
		{"6c3ea0477630ce21a2ce334aa746c2cd", "c782dc4c098c66cbd9cd27d825682c81",
			"d0a02b3836451753d493665d33f0e8862dea54cdb293abc7506939276772f8d5021c19216bad525c8579695d83ba2684",
			[]byte("This i")}, // "This is a 48-byte message (exactly 3 AES blocks)": ')' = 41
	}
	integKey := bytes.Repeat([]byte{0x5a}, 32)
	ad := []byte("IKE header and SK payload header")
	for _, tc := range tests {
		p, err := NewProtector(ENCR_AES_CBC, 128, AUTH_HMAC_SHA2_256_128, unhex(t, tc.key), integKey, nil)
		if err != nil {
			t.Fatal(err)
		}
		body := append(unhex(t, tc.iv), unhex(t, tc.ct)...)
		icv, _ := AUTH_HMAC_SHA2_256_128.Compute(integKey, ad, body)
		got, err := p.Open(ad, append(body, icv...))
		if err != nil {
			t.Fatalf("RFC 3602 vector: %v", err)
		}
		if !bytes.Equal(got, tc.want) {
			t.Errorf("RFC 3602 vector: got %q, want %q", got, tc.want)
		}
	}
}

// RFC 3602 section 4, case 1, through Seal: with the IV pinned, the first
// ciphertext block of a 15-byte plaintext padded by its pad-length byte is
// not the vector, but a 16-byte plaintext's first block is.
func TestCBCSealKnownAnswer(t *testing.T) {
	iv := unhex(t, "3dafba429d9eb430b422da802c9fac41")
	p, err := NewProtector(ENCR_AES_CBC, 128, AUTH_HMAC_SHA1_96, unhex(t, "06a9214036b8a15b512e03d534120006"),
		make([]byte, 20), fixedReader{iv})
	if err != nil {
		t.Fatal(err)
	}
	body, err := p.Seal(nil, []byte("Single block msg"))
	if err != nil {
		t.Fatal(err)
	}
	if len(body) != p.SealedLen(16) || len(body) != 16+32+12 {
		t.Fatalf("sealed %d bytes, SealedLen says %d", len(body), p.SealedLen(16))
	}
	equalHex(t, "IV", body[:16], "3dafba429d9eb430b422da802c9fac41")
	equalHex(t, "RFC 3602 case 1 block", body[16:32], "e353779c1079aeb82708942dbe77181a")
}

// The GCM specification's test cases 4 (AES-128) and 16 (AES-256) (McGrew
// and Viega, also NIST's GCM examples), with the 96-bit IV split into the
// 4-byte salt and the 8-byte explicit IV of RFC 5282. Seal is checked at the
// AEAD layer; Open goes through the SK layout and reads the last plaintext
// byte (0x39 = 57) as the pad length.
func TestGCMKnownAnswers(t *testing.T) {
	pt := unhex(t, "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"+
		"1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39")
	aad := unhex(t, "feedfacedeadbeeffeedfacedeadbeefabaddad2")
	salt, iv := unhex(t, "cafebabe"), unhex(t, "facedbaddecaf888")
	tests := []struct {
		key, ct, tag string
		bits         uint16
	}{
		{"feffe9928665731c6d6a8f9467308308",
			"42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091",
			"5bc94fbc3221a5db94fae95ae7121a47", 128},
		{"feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
			"522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
			"76fc6ece0f4e1768cddf8853bb2d551b", 256},
	}
	for _, tc := range tests {
		for _, id := range []EncrID{ENCR_AES_GCM_8, ENCR_AES_GCM_12, ENCR_AES_GCM_16} {
			name := fmt.Sprintf("%v/%d", id, tc.bits)
			p, err := NewProtector(id, tc.bits, AUTH_NONE, append(unhex(t, tc.key), salt...), nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			c := p.c.(*aeadCipher)
			a, err := c.aead()
			if err != nil {
				t.Fatal(err)
			}
			icv := c.icvSize()
			if icv != a.Overhead() {
				t.Fatalf("%s: ICV size %d, the AEAD's %d", name, icv, a.Overhead())
			}
			nonce := c.nonce(iv)
			equalHex(t, name+" seal", a.Seal(nil, nonce[:], pt, aad), tc.ct+tc.tag[:2*icv])

			body := append(append(append([]byte{}, iv...), unhex(t, tc.ct)...), unhex(t, tc.tag)[:icv]...)
			got, err := p.Open(aad, body)
			if err != nil {
				t.Fatalf("%s open: %v", name, err)
			}
			if !bytes.Equal(got, pt[:2]) {
				t.Errorf("%s open: got %x, want %x", name, got, pt[:2])
			}
			body[len(body)-1] ^= 1
			if _, err := p.Open(aad, body); err == nil {
				t.Errorf("%s: truncated tag with a flipped bit accepted", name)
			}
		}
	}
}

// RFC 8439 section 2.8.2 (the AEAD vector RFC 7634 builds on): nonce
// 07000000 | 4041424344454647 is salt | explicit IV in RFC 7634's layout.
func TestChaCha20Poly1305KnownAnswer(t *testing.T) {
	key := append(seq(0x80, 0x9f), unhex(t, "07000000")...)
	iv := unhex(t, "4041424344454647")
	aad := unhex(t, "50515253c0c1c2c3c4c5c6c7")
	pt := []byte("Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.")
	ct := "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d6" +
		"3dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b36" +
		"92ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc" +
		"3ff4def08e4b7a9de576d26586cec64b6116"
	tag := "1ae10b594f09e26a7e902ecbd0600691"
	p, err := NewProtector(ENCR_CHACHA20_POLY1305, 0, AUTH_NONE, key, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := p.c.(*aeadCipher)
	a, err := c.aead()
	if err != nil {
		t.Fatal(err)
	}
	nonce := c.nonce(iv)
	equalHex(t, "RFC 8439 2.8.2 seal", a.Seal(nil, nonce[:], pt, aad), ct+tag)
	got, err := p.Open(aad, append(append(iv, unhex(t, ct)...), unhex(t, tag)...))
	if err != nil {
		t.Fatal(err)
	}
	// '.' = 0x2e = 46 is read as the pad length.
	if want := pt[:len(pt)-47]; !bytes.Equal(got, want) {
		t.Errorf("open: got %q, want %q", got, want)
	}
}

type protectorCase struct {
	encr  EncrID
	bits  uint16
	integ IntegID
}

var protectorCases = []protectorCase{
	{ENCR_AES_CBC, 128, AUTH_HMAC_SHA1_96},
	{ENCR_AES_CBC, 128, AUTH_AES_XCBC_96},
	{ENCR_AES_CBC, 192, AUTH_HMAC_SHA2_256_128},
	{ENCR_AES_CBC, 256, AUTH_HMAC_SHA2_384_192},
	{ENCR_AES_CBC, 256, AUTH_HMAC_SHA2_512_256},
	{ENCR_AES_GCM_8, 128, AUTH_NONE},
	{ENCR_AES_GCM_12, 192, AUTH_NONE},
	{ENCR_AES_GCM_16, 128, AUTH_NONE},
	{ENCR_AES_GCM_16, 256, AUTH_NONE},
	{ENCR_CHACHA20_POLY1305, 0, AUTH_NONE},
}

func newTestProtector(t testing.TB, c protectorCase) *SKProtector {
	t.Helper()
	n, err := encrKeySize(c.encr, c.bits)
	if err != nil {
		t.Fatal(err)
	}
	ek := make([]byte, n)
	rand.Read(ek)
	ik := make([]byte, c.integ.KeySize())
	rand.Read(ik)
	p, err := NewProtector(c.encr, c.bits, c.integ, ek, ik, nil)
	if err != nil {
		t.Fatalf("%v/%d %v: %v", c.encr, c.bits, c.integ, err)
	}
	return p
}

// Every protector round-trips every plaintext length around the block
// size, produces what SealedLen promised, and refuses any flipped bit in
// the associated data or the body with the one error.
func TestProtectorRoundTripAndTamper(t *testing.T) {
	ad := []byte("0123456789abcdef0123456789abcdef\x2e\x20\x24\x08\x00\x00\x00\x01\x00\x00\x00\x50\x21\x00\x00\x34")
	for _, c := range protectorCases {
		name := fmt.Sprintf("%v_%d/%v", c.encr, c.bits, c.integ)
		p := newTestProtector(t, c)
		for n := 0; n <= 40; n++ {
			pt := bytes.Repeat([]byte{byte(n)}, n)
			body, err := p.Seal(ad, pt)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if len(body) != p.SealedLen(n) {
				t.Fatalf("%s: sealed %d bytes of %d, SealedLen says %d", name, len(body), n, p.SealedLen(n))
			}
			got, err := p.Open(ad, body)
			if err != nil || !bytes.Equal(got, pt) {
				t.Fatalf("%s: round trip of %d bytes: %v", name, n, err)
			}
			if n != 17 {
				continue
			}
			for i := range body {
				for bit := 0; bit < 8; bit++ {
					body[i] ^= 1 << bit
					if _, err := p.Open(ad, body); !errors.Is(err, ErrAuthentication) || err != ErrAuthentication {
						t.Fatalf("%s: flipped bit %d of byte %d: %v", name, bit, i, err)
					}
					body[i] ^= 1 << bit
				}
			}
			for i := range ad {
				ad[i] ^= 0x80
				if _, err := p.Open(ad, body); err != ErrAuthentication {
					t.Fatalf("%s: flipped AAD byte %d: %v", name, i, err)
				}
				ad[i] ^= 0x80
			}
			for _, cut := range []int{0, 1, len(body) - 1} {
				if _, err := p.Open(ad, body[:cut]); err != ErrAuthentication {
					t.Fatalf("%s: truncated body (%d bytes): %v", name, cut, err)
				}
			}
		}
		p.Close()
		if _, err := p.Seal(ad, nil); err != ErrClosed {
			t.Errorf("%s: Seal after Close: %v", name, err)
		}
	}
}

func TestProtectorIVs(t *testing.T) {
	p := newTestProtector(t, protectorCase{ENCR_AES_GCM_16, 128, AUTH_NONE})
	seen := map[string]bool{}
	for range 1000 {
		body, _ := p.Seal(nil, nil)
		iv := string(body[:8])
		if seen[iv] {
			t.Fatal("AEAD explicit IV repeated")
		}
		seen[iv] = true
	}
	c := p.c.(*aeadCipher)
	c.seq.Store(1<<64 - 1)
	if _, err := p.Seal(nil, nil); err != ErrIVExhausted {
		t.Errorf("exhausted counter: %v", err)
	}
}

func TestProtectorRejectsBadKeys(t *testing.T) {
	bad := []struct {
		encr     EncrID
		bits     uint16
		integ    IntegID
		ekey, ik int
	}{
		{ENCR_AES_CBC, 128, AUTH_HMAC_SHA2_256_128, 15, 32},
		{ENCR_AES_CBC, 128, AUTH_HMAC_SHA2_256_128, 16, 31},
		{ENCR_AES_CBC, 0, AUTH_HMAC_SHA2_256_128, 16, 32},
		{ENCR_AES_CBC, 128, AUTH_NONE, 16, 0},
		{ENCR_AES_GCM_16, 128, AUTH_NONE, 16, 0}, // salt missing
		{ENCR_AES_GCM_16, 128, AUTH_HMAC_SHA1_96, 20, 20},
		{ENCR_CHACHA20_POLY1305, 128, AUTH_NONE, 36, 0},
		{ENCR_3DES, 0, AUTH_HMAC_SHA1_96, 24, 20},
	}
	for _, b := range bad {
		if _, err := NewProtector(b.encr, b.bits, b.integ, make([]byte, b.ekey), make([]byte, b.ik), nil); err == nil {
			t.Errorf("%v/%d %v with %d/%d-byte keys accepted", b.encr, b.bits, b.integ, b.ekey, b.ik)
		}
	}
}

func BenchmarkProtector(b *testing.B) {
	ad, pt := make([]byte, 32), make([]byte, 1200)
	for _, c := range []protectorCase{
		{ENCR_AES_CBC, 256, AUTH_HMAC_SHA2_256_128},
		{ENCR_AES_GCM_16, 256, AUTH_NONE},
		{ENCR_AES_GCM_8, 128, AUTH_NONE},
		{ENCR_CHACHA20_POLY1305, 0, AUTH_NONE},
	} {
		p := newTestProtector(b, c)
		b.Run(fmt.Sprintf("%v_%d/%v", c.encr, c.bits, c.integ), func(b *testing.B) {
			b.SetBytes(int64(len(pt)))
			for b.Loop() {
				body, _ := p.Seal(ad, pt)
				if _, err := p.Open(ad, body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
