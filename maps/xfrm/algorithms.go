package xfrm

import (
	"fmt"

	"github.com/xdpsec/xdpsec/ike/transform"
)

// Kernel crypto API names of the algorithms an ESP SA may use.
const (
	algGCM      = "rfc4106(gcm(aes))"
	algChaCha   = "rfc7539esp(chacha20,poly1305)"
	algCBC      = "cbc(aes)"
	algSHA1     = "hmac(sha1)"
	algSHA2_256 = "hmac(sha256)"
	algSHA2_384 = "hmac(sha384)"
	algSHA2_512 = "hmac(sha512)"
)

// aeadSaltLen is the salt the kernel takes after an AEAD key: the 4-byte
// implicit nonce part of RFC 4106 section 8.1 and RFC 7634 section 2.
const aeadSaltLen = 4

// Crypto is what an ESP SA encrypts and authenticates with, as negotiated
// in IKEv2, with its keys. For AEAD algorithms Integ is AUTH_NONE and
// EncrKey holds the cipher key followed by the 4-byte salt, exactly as the
// KEYMAT is cut (RFC 4106 8.1, RFC 7634 2); the kernel wants the same.
//
// The package copies keys into its request and keeps no reference to these
// slices; call Zero when the SA is installed.
type Crypto struct {
	Encr     transform.EncrID
	KeyBits  uint16 // ENCR Key Length attribute; 0 where the ID implies it (ChaCha20)
	Integ    transform.IntegID
	EncrKey  []byte
	IntegKey []byte
}

// Zero overwrites the keys.
func (c *Crypto) Zero() {
	clear(c.EncrKey)
	clear(c.IntegKey)
}

// String names the algorithms as the kernel does; it never prints keys.
func (c Crypto) String() string {
	a, err := c.algorithms()
	if err != nil {
		return fmt.Sprintf("%v/%v (unsupported)", c.Encr, c.Integ)
	}
	return a.String()
}

// GoString keeps %#v from printing the keys.
func (c Crypto) GoString() string { return "xfrm.Crypto{" + c.String() + "}" }

// Algorithms describes an SA's algorithms as the kernel holds them: names,
// key lengths in bits (an AEAD key counting its salt), ICV or truncation
// lengths in bits. It is what Get and List report.
type Algorithms struct {
	AEAD        string // empty for cipher+integrity
	Encr        string
	Integ       string
	EncrKeyBits int
	IntegBits   int // integrity key length
	ICVBits     int // AEAD ICV, or the truncated HMAC length
}

func (a Algorithms) String() string {
	if a.AEAD == "" && a.Encr == "" {
		return "none"
	}
	if a.AEAD != "" {
		return fmt.Sprintf("aead %s key %d icv %d", a.AEAD, a.EncrKeyBits, a.ICVBits)
	}
	return fmt.Sprintf("enc %s key %d auth-trunc %s key %d trunc %d", a.Encr, a.EncrKeyBits, a.Integ, a.IntegBits, a.ICVBits)
}

// aeadICV is the ICV length in bits of each supported AEAD.
var aeadICV = map[transform.EncrID]int{
	transform.ENCR_AES_GCM_8:         64,
	transform.ENCR_AES_GCM_12:        96,
	transform.ENCR_AES_GCM_16:        128,
	transform.ENCR_CHACHA20_POLY1305: 128,
}

// integAlg maps integrity IDs to the kernel's HMAC, key bytes and ICV bits.
var integAlg = map[transform.IntegID]struct {
	name      string
	keyLen    int
	truncBits int
}{
	transform.AUTH_HMAC_SHA1_96:      {algSHA1, 20, 96},
	transform.AUTH_HMAC_SHA2_256_128: {algSHA2_256, 32, 128},
	transform.AUTH_HMAC_SHA2_384_192: {algSHA2_384, 48, 192},
	transform.AUTH_HMAC_SHA2_512_256: {algSHA2_512, 64, 256},
}

// encrKeyLen is the cipher key length in bytes (without salt), checking
// the Key Length attribute.
func encrKeyLen(id transform.EncrID, keyBits uint16) (int, error) {
	switch id {
	case transform.ENCR_CHACHA20_POLY1305:
		if keyBits != 0 && keyBits != 256 {
			return 0, fmt.Errorf("%v takes no key length other than 256, got %d", id, keyBits)
		}
		return 32, nil
	case transform.ENCR_AES_CBC, transform.ENCR_AES_GCM_8, transform.ENCR_AES_GCM_12, transform.ENCR_AES_GCM_16:
		switch keyBits {
		case 128, 192, 256:
			return int(keyBits) / 8, nil
		}
		return 0, fmt.Errorf("%v needs a key length of 128, 192 or 256 bits, got %d", id, keyBits)
	}
	return 0, fmt.Errorf("encryption algorithm %v is not supported for ESP", id)
}

// algorithms maps the negotiated transforms to the kernel's algorithms and
// checks the key lengths. It reads key lengths, not keys.
func (c Crypto) algorithms() (Algorithms, error) {
	klen, err := encrKeyLen(c.Encr, c.KeyBits)
	if err != nil {
		return Algorithms{}, err
	}
	if icv, ok := aeadICV[c.Encr]; ok {
		if c.Integ != transform.AUTH_NONE {
			return Algorithms{}, fmt.Errorf("%v is an AEAD and takes no integrity algorithm, got %v", c.Encr, c.Integ)
		}
		if len(c.EncrKey) != klen+aeadSaltLen {
			return Algorithms{}, fmt.Errorf("%v key is %d bytes, want %d (key) + %d (salt)", c.Encr, len(c.EncrKey), klen, aeadSaltLen)
		}
		if len(c.IntegKey) != 0 {
			return Algorithms{}, fmt.Errorf("%v takes no integrity key", c.Encr)
		}
		name := algGCM
		if c.Encr == transform.ENCR_CHACHA20_POLY1305 {
			name = algChaCha
		}
		return Algorithms{AEAD: name, EncrKeyBits: 8 * len(c.EncrKey), ICVBits: icv}, nil
	}
	in, ok := integAlg[c.Integ]
	if !ok {
		return Algorithms{}, fmt.Errorf("integrity algorithm %v is not supported for ESP", c.Integ)
	}
	if len(c.EncrKey) != klen {
		return Algorithms{}, fmt.Errorf("%v key is %d bytes, want %d", c.Encr, len(c.EncrKey), klen)
	}
	if len(c.IntegKey) != in.keyLen {
		return Algorithms{}, fmt.Errorf("%v key is %d bytes, want %d", c.Integ, len(c.IntegKey), in.keyLen)
	}
	return Algorithms{
		Encr: algCBC, EncrKeyBits: 8 * klen,
		Integ: in.name, IntegBits: 8 * in.keyLen, ICVBits: in.truncBits,
	}, nil
}

// ahAlgorithms maps an AH SA's integrity algorithm to the kernel's; AH
// has no encryption.
func (c Crypto) ahAlgorithms() (Algorithms, error) {
	if c.Encr != 0 || len(c.EncrKey) != 0 {
		return Algorithms{}, fmt.Errorf("AH takes no encryption algorithm, got %v", c.Encr)
	}
	in, ok := integAlg[c.Integ]
	if !ok {
		return Algorithms{}, fmt.Errorf("integrity algorithm %v is not supported for AH", c.Integ)
	}
	if len(c.IntegKey) != in.keyLen {
		return Algorithms{}, fmt.Errorf("%v key is %d bytes, want %d", c.Integ, len(c.IntegKey), in.keyLen)
	}
	return Algorithms{Integ: in.name, IntegBits: 8 * in.keyLen, ICVBits: in.truncBits}, nil
}

// KeyLengths returns how many bytes of KEYMAT each direction of an SA with
// these algorithms takes for encryption (an AEAD's salt included) and for
// integrity, in the order RFC 7296 2.17 draws them.
//
// An encryption algorithm 0 is AH's: integrity only.
func KeyLengths(encr transform.EncrID, keyBits uint16, integ transform.IntegID) (encrKey, integKey int, err error) {
	if encr == 0 {
		in, ok := integAlg[integ]
		if !ok {
			return 0, 0, fmt.Errorf("integrity algorithm %v is not supported for AH", integ)
		}
		return 0, in.keyLen, nil
	}
	klen, err := encrKeyLen(encr, keyBits)
	if err != nil {
		return 0, 0, err
	}
	if _, ok := aeadICV[encr]; ok {
		if integ != transform.AUTH_NONE {
			return 0, 0, fmt.Errorf("%v is an AEAD and takes no integrity algorithm, got %v", encr, integ)
		}
		return klen + aeadSaltLen, 0, nil
	}
	in, ok := integAlg[integ]
	if !ok {
		return 0, 0, fmt.Errorf("integrity algorithm %v is not supported for ESP", integ)
	}
	return klen, in.keyLen, nil
}
