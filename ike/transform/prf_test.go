package transform

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"hash"
	"math/rand/v2"
	"testing"
)

// RFC 2202 section 3 (HMAC-SHA-1) and RFC 4231 section 4 (HMAC-SHA-2), test
// cases 1 and 2.
func TestPRFHMACKnownAnswers(t *testing.T) {
	case1Key := bytes.Repeat([]byte{0x0b}, 20)
	case1Data := []byte("Hi There")
	case2Key := []byte("Jefe")
	case2Data := []byte("what do ya want for nothing?")
	tests := []struct {
		prf       PRFID
		key, data []byte
		want      string
		source    string
	}{
		{PRF_HMAC_SHA1, case1Key, case1Data, "b617318655057264e28bc0b6fb378c8ef146be00", "RFC 2202 #1"},
		{PRF_HMAC_SHA1, case2Key, case2Data, "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79", "RFC 2202 #2"},
		{PRF_HMAC_SHA2_256, case1Key, case1Data, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7", "RFC 4231 4.2"},
		{PRF_HMAC_SHA2_256, case2Key, case2Data, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843", "RFC 4231 4.3"},
		{PRF_HMAC_SHA2_384, case1Key, case1Data, "afd03944d84895626b0825f4ab46907f15f9dadbe4101ec682aa034c7cebc59cfaea9ea9076ede7f4af152e8b2fa9cb6", "RFC 4231 4.2"},
		{PRF_HMAC_SHA2_384, case2Key, case2Data, "af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e8e2240ca5e69e2c78b3239ecfab21649", "RFC 4231 4.3"},
		{PRF_HMAC_SHA2_512, case1Key, case1Data, "87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cdedaa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854", "RFC 4231 4.2"},
		{PRF_HMAC_SHA2_512, case2Key, case2Data, "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737", "RFC 4231 4.3"},
	}
	for _, tc := range tests {
		got, err := tc.prf.Compute(tc.key, tc.data[:3], tc.data[3:])
		if err != nil {
			t.Fatalf("%v %s: %v", tc.prf, tc.source, err)
		}
		equalHex(t, tc.prf.String()+" "+tc.source, got, tc.want)
	}
}

// RFC 4434 section 2.1: AES-XCBC-PRF-128 with 16-, 10- and 18-byte keys,
// which exercise the padding and the shortening key rule.
func TestPRFAESXCBCKnownAnswers(t *testing.T) {
	msg := seq(0x00, 0x13)
	tests := []struct{ key, want string }{
		{"000102030405060708090a0b0c0d0e0f", "47f51b4564966215b8985c63055ed308"},
		{"00010203040506070809", "0fa087af7d866e7653434e602fdde835"},
		{"000102030405060708090a0b0c0d0e0fedcb", "8cd3c93ae598a9803006ffb67c40e9e4"},
	}
	for _, tc := range tests {
		got, err := PRF_AES128_XCBC.Compute(unhex(t, tc.key), msg)
		if err != nil {
			t.Fatal(err)
		}
		equalHex(t, "AES-XCBC-PRF-128 key "+tc.key, got, tc.want)
	}
}

// RFC 3566 section 4: AES-XCBC-MAC, test cases 1 to 7 (full 128-bit MAC).
func TestAESXCBCMACKnownAnswers(t *testing.T) {
	key := seq(0x00, 0x0f)
	tests := []struct {
		msg  []byte
		want string
	}{
		{nil, "75f0251d528ac01c4573dfd584d79f29"},
		{seq(0x00, 0x02), "5b376580ae2f19afe7219ceef172756f"},
		{seq(0x00, 0x0f), "d2a246fa349b68a79998a4394ff7a263"},
		{seq(0x00, 0x13), "47f51b4564966215b8985c63055ed308"},
		{seq(0x00, 0x1f), "f54f0ec8d2b9f3d36807734bd5283fd4"},
		{seq(0x00, 0x21), "becbb3bccdb518a30677d5481fb6b4d8"},
		{make([]byte, 1000), "f0dafee895db30253761103b5d84528f"},
	}
	for i, tc := range tests {
		x, err := newXCBC(key)
		if err != nil {
			t.Fatal(err)
		}
		// Feed byte by byte to exercise the pending-block logic.
		for _, b := range tc.msg {
			x.Write([]byte{b})
		}
		equalHex(t, "RFC 3566 case", x.Sum(nil), tc.want)
		x.Reset()
		x.Write(tc.msg)
		if i == 0 || len(tc.msg) > 0 {
			equalHex(t, "RFC 3566 case (one write)", x.Sum(nil), tc.want)
		}
	}
}

func TestPRFPlusStructure(t *testing.T) {
	// prf+ built by hand from Compute, for every PRF.
	key, seed := []byte("prf+ key of some length"), []byte("seed")
	for _, prf := range []PRFID{PRF_HMAC_SHA1, PRF_AES128_XCBC, PRF_HMAC_SHA2_256, PRF_HMAC_SHA2_384, PRF_HMAC_SHA2_512} {
		var want, prev []byte
		for i := byte(1); i <= 3; i++ {
			ti, err := prf.Compute(key, prev, seed, []byte{i})
			if err != nil {
				t.Fatal(err)
			}
			want = append(want, ti...)
			prev = ti
		}
		n := 2*prf.Size() + 3
		got, err := prf.Plus(key, seed, n)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want[:n]) {
			t.Errorf("%v: prf+ differs from T1 | T2 | T3", prf)
		}
		if _, err := prf.Plus(key, seed, 255*prf.Size()+1); err == nil {
			t.Errorf("%v: prf+ beyond 255 blocks accepted", prf)
		}
	}
	if _, err := PRF_HMAC_MD5.Compute(key, seed); err == nil {
		t.Error("unsupported PRF computed")
	}
}

// Our HMAC (pooled states) must be crypto/hmac's for keys shorter than,
// as long as and longer than the hash's block, data in pieces, and for
// states reused after every length.
func TestPRFHMACMatchesCryptoHMAC(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return b
	}
	for _, c := range []struct {
		prf PRFID
		h   func() hash.Hash
	}{{PRF_HMAC_SHA1, sha1.New}, {PRF_HMAC_SHA2_256, sha256.New}, {PRF_HMAC_SHA2_384, sha512.New384}, {PRF_HMAC_SHA2_512, sha512.New}} {
		for _, klen := range []int{0, 1, 16, 32, 63, 64, 65, 127, 128, 129, 300} {
			for _, dlen := range []int{0, 1, 55, 56, 64, 111, 112, 128, 1000} {
				key, data := random(klen), random(dlen)
				m := hmac.New(c.h, key)
				m.Write(data)
				want := m.Sum(nil)
				cut := r.IntN(dlen + 1)
				got, err := c.prf.Compute(key, data[:cut], nil, data[cut:])
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("%v key %d bytes, data %d bytes: %x, crypto/hmac %x", c.prf, klen, dlen, got, want)
				}
			}
		}
	}
}

func BenchmarkPRFCompute(b *testing.B) {
	key, data := make([]byte, 32), make([]byte, 200)
	b.Run("crypto-hmac", func(b *testing.B) {
		for b.Loop() {
			m := hmac.New(sha256.New, key)
			m.Write(data)
			m.Sum(nil)
		}
	})
	b.Run("pooled", func(b *testing.B) {
		for b.Loop() {
			PRF_HMAC_SHA2_256.Compute(key, data)
		}
	})
}

func BenchmarkPRFPlus(b *testing.B) {
	key := make([]byte, 32)
	seed := make([]byte, 64+16)
	for _, prf := range []PRFID{PRF_HMAC_SHA2_256, PRF_HMAC_SHA2_512, PRF_AES128_XCBC} {
		b.Run(prf.String(), func(b *testing.B) {
			for b.Loop() {
				if _, err := prf.Plus(key, seed, 200); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
