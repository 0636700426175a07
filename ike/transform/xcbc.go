package transform

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"hash"
)

// AES-XCBC-MAC (RFC 3566), used as the PRF AES-XCBC-PRF-128 (RFC 4434) and
// as the integrity algorithm AES-XCBC-MAC-96. Go's standard library has no
// XCBC, so it is written here on top of crypto/aes.

const xcbcBlock = aes.BlockSize

type xcbc struct {
	k1     cipher.Block
	k2, k3 [xcbcBlock]byte
	e      [xcbcBlock]byte // chaining value E[i-1]
	buf    [xcbcBlock]byte // pending block: it may be the last one
	n      int             // bytes in buf
}

var _ hash.Hash = (*xcbc)(nil)

// newXCBC returns AES-XCBC-MAC keyed with a 128-bit key, as RFC 3566 needs.
func newXCBC(key []byte) (*xcbc, error) {
	if len(key) != 16 {
		return nil, errKeyLength
	}
	k, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	var k1 [xcbcBlock]byte
	x := &xcbc{}
	// K1 = E(K, 0x01...), K2 = E(K, 0x02...), K3 = E(K, 0x03...).
	for i, dst := range [][]byte{k1[:], x.k2[:], x.k3[:]} {
		var c [xcbcBlock]byte
		for j := range c {
			c[j] = byte(i + 1)
		}
		k.Encrypt(dst, c[:])
	}
	x.k1, err = aes.NewCipher(k1[:])
	clear(k1[:])
	if err != nil {
		return nil, err
	}
	return x, nil
}

// newXCBCPRF applies the key rule of AES-XCBC-PRF-128 (RFC 4434 section 2):
// shorter keys are padded with zero bits, longer keys are first shortened by
// running the PRF itself over them with an all-zero key.
func newXCBCPRF(key []byte) (*xcbc, error) {
	var k [16]byte
	defer clear(k[:])
	switch {
	case len(key) <= 16:
		copy(k[:], key)
	default:
		z, err := newXCBC(k[:])
		if err != nil {
			return nil, err
		}
		z.Write(key)
		z.Sum(k[:0])
		z.zero()
	}
	return newXCBC(k[:])
}

func (x *xcbc) Write(p []byte) (int, error) {
	total := len(p)
	for len(p) > 0 {
		if x.n == xcbcBlock {
			// More data follows, so the pending block is not the last.
			subtle.XORBytes(x.e[:], x.e[:], x.buf[:])
			x.k1.Encrypt(x.e[:], x.e[:])
			x.n = 0
		}
		c := copy(x.buf[x.n:], p)
		x.n += c
		p = p[c:]
	}
	return total, nil
}

func (x *xcbc) Sum(b []byte) []byte {
	var last [xcbcBlock]byte
	copy(last[:], x.buf[:x.n])
	if x.n == xcbcBlock {
		subtle.XORBytes(last[:], last[:], x.k2[:])
	} else {
		last[x.n] = 0x80
		subtle.XORBytes(last[:], last[:], x.k3[:])
	}
	subtle.XORBytes(last[:], last[:], x.e[:])
	x.k1.Encrypt(last[:], last[:])
	return append(b, last[:]...)
}

func (x *xcbc) Reset() {
	clear(x.e[:])
	clear(x.buf[:])
	x.n = 0
}

func (x *xcbc) Size() int      { return xcbcBlock }
func (x *xcbc) BlockSize() int { return xcbcBlock }

// zero overwrites the derived subkeys K2 and K3 and the chaining state. K1's
// AES key schedule lives inside crypto/aes and cannot be reached.
func (x *xcbc) zero() {
	x.Reset()
	clear(x.k2[:])
	clear(x.k3[:])
}
