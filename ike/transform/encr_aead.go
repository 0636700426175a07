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
type aeadCipher struct {
	aead  cipher.AEAD
	salt  [aeadSaltSize]byte
	start uint64
	seq   atomic.Uint64 // messages sealed
}

const (
	aeadSaltSize = 4
	aeadIVSize   = 8
)

func newAEADCipher(id EncrID, keymat []byte, rand io.Reader) (*aeadCipher, error) {
	key := keymat[:len(keymat)-aeadSaltSize]
	var a cipher.AEAD
	var err error
	switch id {
	case ENCR_CHACHA20_POLY1305:
		a, err = chacha20poly1305.New(key)
	case ENCR_AES_GCM_8, ENCR_AES_GCM_12, ENCR_AES_GCM_16:
		var block cipher.Block
		if block, err = aes.NewCipher(key); err != nil {
			return nil, err
		}
		switch id {
		case ENCR_AES_GCM_16:
			a, err = cipher.NewGCM(block)
		case ENCR_AES_GCM_12:
			a, err = cipher.NewGCMWithTagSize(block, 12)
		default:
			a, err = newGCM8(block)
		}
	default:
		return nil, ErrUnsupported
	}
	if err != nil {
		return nil, err
	}
	c := &aeadCipher{aead: a}
	copy(c.salt[:], keymat[len(key):])
	var start [8]byte
	if _, err := io.ReadFull(rand, start[:]); err != nil {
		return nil, err
	}
	c.start = binary.BigEndian.Uint64(start[:])
	return c, nil
}

func (c *aeadCipher) sealedLen(n int) int { return aeadIVSize + n + 1 + c.aead.Overhead() }

func (c *aeadCipher) seal(ad, plaintext []byte) ([]byte, error) {
	seq := c.seq.Add(1) - 1
	if seq == math.MaxUint64 {
		c.seq.Store(math.MaxUint64) // stay exhausted
		return nil, ErrIVExhausted
	}
	return c.sealWithIV(c.start+seq, ad, plaintext), nil
}

func (c *aeadCipher) sealWithIV(iv uint64, ad, plaintext []byte) []byte {
	body := make([]byte, aeadIVSize, c.sealedLen(len(plaintext)))
	binary.BigEndian.PutUint64(body, iv)
	nonce := c.nonce(body[:aeadIVSize])
	padded := make([]byte, len(plaintext)+1) // pad length byte = 0
	copy(padded, plaintext)
	body = c.aead.Seal(body, nonce[:], padded, ad)
	clear(padded)
	return body
}

func (c *aeadCipher) nonce(iv []byte) [aeadSaltSize + aeadIVSize]byte {
	var n [aeadSaltSize + aeadIVSize]byte
	copy(n[:], c.salt[:])
	copy(n[aeadSaltSize:], iv)
	return n
}

var errAEADOpen = errors.New("aead open")

func (c *aeadCipher) open(ad, body []byte) ([]byte, error) {
	if len(body) < aeadIVSize+1+c.aead.Overhead() {
		return nil, errAEADOpen
	}
	nonce := c.nonce(body[:aeadIVSize])
	pt, err := c.aead.Open(nil, nonce[:], body[aeadIVSize:], ad)
	if err != nil {
		return nil, errAEADOpen
	}
	pad := int(pt[len(pt)-1])
	if pad+1 > len(pt) {
		return nil, errAEADOpen
	}
	return pt[:len(pt)-1-pad], nil
}

func (c *aeadCipher) zero() { clear(c.salt[:]) }

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
