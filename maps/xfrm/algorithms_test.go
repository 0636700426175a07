package xfrm

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"

	"github.com/xdpsec/xdpsec/ike/transform"
)

// testKey is a recognisable key so that tests can look for it in text.
func testKey(n int, fill byte) []byte {
	return bytes.Repeat([]byte{fill}, n)
}

func TestAlgorithmMapping(t *testing.T) {
	tests := []struct {
		name     string
		encr     transform.EncrID
		keyBits  uint16
		integ    transform.IntegID
		encrKey  int // bytes, salt included
		integKey int
		want     Algorithms
	}{
		{"aes128gcm8", transform.ENCR_AES_GCM_8, 128, transform.AUTH_NONE, 20, 0,
			Algorithms{AEAD: "rfc4106(gcm(aes))", EncrKeyBits: 160, ICVBits: 64}},
		{"aes192gcm12", transform.ENCR_AES_GCM_12, 192, transform.AUTH_NONE, 28, 0,
			Algorithms{AEAD: "rfc4106(gcm(aes))", EncrKeyBits: 224, ICVBits: 96}},
		{"aes256gcm16", transform.ENCR_AES_GCM_16, 256, transform.AUTH_NONE, 36, 0,
			Algorithms{AEAD: "rfc4106(gcm(aes))", EncrKeyBits: 288, ICVBits: 128}},
		{"chacha20poly1305", transform.ENCR_CHACHA20_POLY1305, 0, transform.AUTH_NONE, 36, 0,
			Algorithms{AEAD: "rfc7539esp(chacha20,poly1305)", EncrKeyBits: 288, ICVBits: 128}},
		{"chacha20poly1305 with key length 256", transform.ENCR_CHACHA20_POLY1305, 256, transform.AUTH_NONE, 36, 0,
			Algorithms{AEAD: "rfc7539esp(chacha20,poly1305)", EncrKeyBits: 288, ICVBits: 128}},
		{"aes128-sha1", transform.ENCR_AES_CBC, 128, transform.AUTH_HMAC_SHA1_96, 16, 20,
			Algorithms{Encr: "cbc(aes)", EncrKeyBits: 128, Integ: "hmac(sha1)", IntegBits: 160, ICVBits: 96}},
		{"aes128-sha256", transform.ENCR_AES_CBC, 128, transform.AUTH_HMAC_SHA2_256_128, 16, 32,
			Algorithms{Encr: "cbc(aes)", EncrKeyBits: 128, Integ: "hmac(sha256)", IntegBits: 256, ICVBits: 128}},
		{"aes256-sha384", transform.ENCR_AES_CBC, 256, transform.AUTH_HMAC_SHA2_384_192, 32, 48,
			Algorithms{Encr: "cbc(aes)", EncrKeyBits: 256, Integ: "hmac(sha384)", IntegBits: 384, ICVBits: 192}},
		{"aes192-sha512", transform.ENCR_AES_CBC, 192, transform.AUTH_HMAC_SHA2_512_256, 24, 64,
			Algorithms{Encr: "cbc(aes)", EncrKeyBits: 192, Integ: "hmac(sha512)", IntegBits: 512, ICVBits: 256}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ek, ik, err := KeyLengths(tt.encr, tt.keyBits, tt.integ)
			if err != nil || ek != tt.encrKey || ik != tt.integKey {
				t.Fatalf("KeyLengths = %d, %d, %v; want %d, %d", ek, ik, err, tt.encrKey, tt.integKey)
			}
			c := Crypto{Encr: tt.encr, KeyBits: tt.keyBits, Integ: tt.integ, EncrKey: testKey(ek, 0xa5)}
			if ik > 0 {
				c.IntegKey = testKey(ik, 0x5a)
			}
			got, err := c.algorithms()
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("algorithms = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestAlgorithmErrors(t *testing.T) {
	tests := []struct {
		name string
		c    Crypto
		want string
	}{
		{"3DES", Crypto{Encr: transform.ENCR_3DES, Integ: transform.AUTH_HMAC_SHA1_96}, "not supported"},
		{"CCM", Crypto{Encr: transform.ENCR_AES_CCM_16, KeyBits: 128}, "not supported"},
		{"GCM without key length", Crypto{Encr: transform.ENCR_AES_GCM_16, EncrKey: testKey(20, 1)}, "key length"},
		{"GCM key without salt", Crypto{Encr: transform.ENCR_AES_GCM_16, KeyBits: 128, EncrKey: testKey(16, 1)}, "want 16 (key) + 4 (salt)"},
		{"GCM with integrity", Crypto{Encr: transform.ENCR_AES_GCM_16, KeyBits: 128, Integ: transform.AUTH_HMAC_SHA2_256_128, EncrKey: testKey(20, 1)}, "takes no integrity"},
		{"GCM with integrity key", Crypto{Encr: transform.ENCR_AES_GCM_16, KeyBits: 128, EncrKey: testKey(20, 1), IntegKey: testKey(32, 1)}, "no integrity key"},
		{"ChaCha20 key length 128", Crypto{Encr: transform.ENCR_CHACHA20_POLY1305, KeyBits: 128, EncrKey: testKey(20, 1)}, "256"},
		{"CBC without integrity", Crypto{Encr: transform.ENCR_AES_CBC, KeyBits: 128, EncrKey: testKey(16, 1)}, "AUTH_NONE is not supported"},
		{"CBC with XCBC", Crypto{Encr: transform.ENCR_AES_CBC, KeyBits: 128, Integ: transform.AUTH_AES_XCBC_96, EncrKey: testKey(16, 1)}, "not supported"},
		{"CBC short key", Crypto{Encr: transform.ENCR_AES_CBC, KeyBits: 256, Integ: transform.AUTH_HMAC_SHA2_256_128, EncrKey: testKey(16, 1), IntegKey: testKey(32, 1)}, "want 32"},
		{"HMAC short key", Crypto{Encr: transform.ENCR_AES_CBC, KeyBits: 128, Integ: transform.AUTH_HMAC_SHA2_256_128, EncrKey: testKey(16, 1), IntegKey: testKey(16, 1)}, "want 32"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.c.algorithms()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// No way of printing a Crypto or State shows its keys.
func TestKeysNeverPrinted(t *testing.T) {
	c := Crypto{
		Encr: transform.ENCR_AES_CBC, KeyBits: 128, Integ: transform.AUTH_HMAC_SHA2_256_128,
		EncrKey: testKey(16, 0xa5), IntegKey: testKey(32, 0x5a),
	}
	s := State{Src: probeSrc4, Dst: probeDst4, SPI: 0xc0000001, Crypto: c}
	bad := State{Src: probeSrc4, Dst: probeDst4, SPI: 0xc0000001, Crypto: c}
	bad.Crypto.IntegKey = testKey(20, 0x5a)
	_, encErr := encodeState(0x10, &bad, nil)
	for _, text := range []string{
		fmt.Sprint(c), fmt.Sprintf("%v %+v %#v %s", c, c, c, c),
		fmt.Sprint(s), fmt.Sprintf("%v %+v %#v %s", s, s, s, s),
		fmt.Sprintf("%v %+v", &s, &s),
		encErr.Error(),
	} {
		for _, key := range [][]byte{c.EncrKey, c.IntegKey} {
			for _, form := range []string{hex.EncodeToString(key[:4]), fmt.Sprint(key[:4])[1:12], string(key[:4])} {
				if strings.Contains(text, form) {
					t.Errorf("%q shows key bytes (%q)", text, form)
				}
			}
		}
	}
}

func TestCryptoZero(t *testing.T) {
	c := Crypto{EncrKey: testKey(20, 0xa5), IntegKey: testKey(32, 0x5a)}
	ek, ik := c.EncrKey, c.IntegKey
	c.Zero()
	if !bytes.Equal(ek, make([]byte, 20)) || !bytes.Equal(ik, make([]byte, 32)) {
		t.Errorf("keys not zeroed: %x %x", ek, ik)
	}
}
