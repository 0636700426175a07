package transform

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"sync/atomic"

	"golang.org/x/crypto/chacha20poly1305"
)

// aeadCipher is a combined-mode cipher in the SK payload layout of RFC 5282
// section 5 (AES-GCM) and RFC 7634 section 4 (ChaCha20-Poly1305):
//
//	IV (8) | AEAD(plaintext | padding | pad length) | ICV
//
// The nonce is salt (4 bytes, the tail of the key material) | IV, and the
// AAD is associatedData: the IKE header through the SK payload header.
//
// The explicit IV is a 64-bit counter starting at a random value: it never
// repeats under one key (a sender seals at most 2^64-1 messages before
// ErrIVExhausted) and a fresh protector for the same key, after a restart,
// is unlikely to land on a used range. Padding is never added: both
// ciphers are stream ciphers, and RFC 5282 leaves the amount to the sender.
//
// The cipher keeps its key and builds the AEAD for each message: an
// AES-GCM instance holds the expanded key schedules and its GHASH table,
// about 900 bytes, twice per IKE SA, which a gateway with thousands of
// mostly idle IKE SAs holds for nothing, while building one costs a
// fraction of a microsecond in an exchange that costs tens.
type aeadCipher struct {
	id     EncrID
	key    [32]byte // the cipher key, keyLen bytes of it
	keyLen int
	salt   [aeadSaltSize]byte
	start  uint64
	seq    atomic.Uint64 // messages sealed
}

const (
	aeadSaltSize = 4
	aeadIVSize   = 8
)

func newAEADCipher(id EncrID, keymat []byte, rand io.Reader) (*aeadCipher, error) {
	key := keymat[:len(keymat)-aeadSaltSize]
	c := &aeadCipher{id: id, keyLen: len(key)}
	if len(key) > len(c.key) {
		return nil, errKeyLength
	}
	copy(c.key[:], key)
	// The key and the transform are checked once, here, without building
	// the AEAD: that would cost its key schedules and GHASH table, a
	// kilobyte or more, per direction of every IKE SA.
	if err := c.check(); err != nil {
		c.zero()
		return nil, err
	}
	copy(c.salt[:], keymat[len(key):])
	var start [8]byte
	if _, err := io.ReadFull(rand, start[:]); err != nil {
		c.zero()
		return nil, err
	}
	c.start = binary.BigEndian.Uint64(start[:])
	return c, nil
}

// check fails where aead would: an unsupported transform or a key of a
// length it does not take.
func (c *aeadCipher) check() error {
	switch c.id {
	case ENCR_CHACHA20_POLY1305:
		if c.keyLen != chacha20poly1305.KeySize {
			return errKeyLength
		}
	case ENCR_AES_GCM_8, ENCR_AES_GCM_12, ENCR_AES_GCM_16:
		if c.keyLen != 16 && c.keyLen != 24 && c.keyLen != 32 {
			return errKeyLength
		}
	default:
		return ErrUnsupported
	}
	return nil
}

// aead builds the AEAD of the key.
func (c *aeadCipher) aead() (cipher.AEAD, error) {
	key := c.key[:c.keyLen]
	switch c.id {
	case ENCR_CHACHA20_POLY1305:
		return chacha20poly1305.New(key)
	case ENCR_AES_GCM_8, ENCR_AES_GCM_12, ENCR_AES_GCM_16:
		block, err := aes.NewCipher(key)
		if err != nil {
			return nil, err
		}
		switch c.id {
		case ENCR_AES_GCM_16:
			return cipher.NewGCM(block)
		case ENCR_AES_GCM_12:
			return cipher.NewGCMWithTagSize(block, 12)
		}
		return newGCM8(block)
	}
	return nil, ErrUnsupported
}

// icvSize is the AEAD's tag length.
func (c *aeadCipher) icvSize() int {
	switch c.id {
	case ENCR_AES_GCM_8:
		return gcm8TagSize
	case ENCR_AES_GCM_12:
		return 12
	}
	return 16
}

func (c *aeadCipher) sealedLen(n int) int { return aeadIVSize + n + 1 + c.icvSize() }

func (c *aeadCipher) seal(ad, plaintext []byte) ([]byte, error) {
	seq := c.seq.Add(1) - 1
	if seq == math.MaxUint64 {
		c.seq.Store(math.MaxUint64) // stay exhausted
		return nil, ErrIVExhausted
	}
	return c.sealWithIV(c.start+seq, ad, plaintext)
}

func (c *aeadCipher) sealWithIV(iv uint64, ad, plaintext []byte) ([]byte, error) {
	a, err := c.aead()
	if err != nil {
		return nil, err
	}
	// Sealed in place: IV | plaintext | pad length 0, encrypted over
	// itself, with room for a full 16-byte tag (gcm8 computes one and
	// cuts it), so that no copy of the plaintext is left behind.
	body := make([]byte, aeadIVSize, aeadIVSize+len(plaintext)+1+16)
	binary.BigEndian.PutUint64(body, iv)
	body = append(body, plaintext...)
	body = append(body, 0)
	nonce := c.nonce(body[:aeadIVSize])
	return a.Seal(body[:aeadIVSize], nonce[:], body[aeadIVSize:], ad), nil
}

func (c *aeadCipher) nonce(iv []byte) [aeadSaltSize + aeadIVSize]byte {
	var n [aeadSaltSize + aeadIVSize]byte
	copy(n[:], c.salt[:])
	copy(n[aeadSaltSize:], iv)
	return n
}

var errAEADOpen = errors.New("aead open")

func (c *aeadCipher) open(ad, body []byte) ([]byte, error) {
	if len(body) < aeadIVSize+1+c.icvSize() {
		return nil, errAEADOpen
	}
	a, err := c.aead()
	if err != nil {
		return nil, err
	}
	nonce := c.nonce(body[:aeadIVSize])
	pt, err := a.Open(nil, nonce[:], body[aeadIVSize:], ad)
	if err != nil {
		return nil, errAEADOpen
	}
	pad := int(pt[len(pt)-1])
	if pad+1 > len(pt) {
		return nil, errAEADOpen
	}
	return pt[:len(pt)-1-pad], nil
}

func (c *aeadCipher) zero() {
	clear(c.salt[:])
	clear(c.key[:])
}

// gcm8 is AES-GCM with a 64-bit ICV (ENCR_AES_GCM_8). crypto/cipher only
// offers tags of 12 to 16 bytes; a GCM tag of t bits is the first t bits of
// the full tag (NIST SP 800-38D section 7.1), so gcm8 seals with the full
// tag and truncates. To open, it decrypts with AES-CTR from counter block
// J0+1, reseals to recompute the full tag and compares the first 8 bytes in
// constant time; no plaintext leaves before that comparison succeeds.
type gcm8 struct {
	block cipher.Block
	full  cipher.AEAD
}

const gcm8TagSize = 8

func newGCM8(block cipher.Block) (*gcm8, error) {
	full, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &gcm8{block: block, full: full}, nil
}

func (g *gcm8) NonceSize() int { return g.full.NonceSize() }
func (g *gcm8) Overhead() int  { return gcm8TagSize }

func (g *gcm8) Seal(dst, nonce, plaintext, ad []byte) []byte {
	out := g.full.Seal(dst, nonce, plaintext, ad)
	return out[:len(out)-(g.full.Overhead()-gcm8TagSize)]
}

func (g *gcm8) Open(dst, nonce, ciphertext, ad []byte) ([]byte, error) {
	if len(nonce) != g.full.NonceSize() || len(ciphertext) < gcm8TagSize {
		return nil, errAEADOpen
	}
	ct, tag := ciphertext[:len(ciphertext)-gcm8TagSize], ciphertext[len(ciphertext)-gcm8TagSize:]
	var ctr [aes.BlockSize]byte // J0+1 = nonce | 0x00000002
	copy(ctr[:], nonce)
	ctr[aes.BlockSize-1] = 2
	pt := make([]byte, len(ct))
	cipher.NewCTR(g.block, ctr[:]).XORKeyStream(pt, ct)
	resealed := g.full.Seal(nil, nonce, pt, ad)
	if !hmac.Equal(resealed[len(ct):len(ct)+gcm8TagSize], tag) {
		clear(pt)
		return nil, errAEADOpen
	}
	return append(dst, pt...), nil
}
