package transform

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"errors"
	"io"
)

// cbcCipher is AES-CBC (RFC 3602) with a separate integrity algorithm, in
// the SK payload layout of RFC 7296 section 3.14:
//
//	IV (16) | AES-CBC(plaintext | padding | pad length) | ICV
//
// with ICV = integ(SK_a, associatedData | IV | ciphertext), checked before
// anything is decrypted.
type cbcCipher struct {
	block    cipher.Block
	integ    IntegID
	integKey []byte
	rand     io.Reader
}

func newCBCCipher(key []byte, integ IntegID, integKey []byte, rand io.Reader) (*cbcCipher, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return &cbcCipher{
		block:    block,
		integ:    integ,
		integKey: append([]byte(nil), integKey...),
		rand:     rand,
	}, nil
}

// cbcPadLen is the padding that makes plaintext | padding | pad length a
// multiple of the block size, as little as possible.
func cbcPadLen(n int) int { return (aes.BlockSize - (n+1)%aes.BlockSize) % aes.BlockSize }

func (c *cbcCipher) sealedLen(n int) int {
	return aes.BlockSize + n + cbcPadLen(n) + 1 + c.integ.ICVSize()
}

func (c *cbcCipher) seal(ad, plaintext []byte) ([]byte, error) {
	n, pad := len(plaintext), cbcPadLen(len(plaintext))
	icvLen := c.integ.ICVSize()
	body := make([]byte, c.sealedLen(n))
	iv := body[:aes.BlockSize]
	if _, err := io.ReadFull(c.rand, iv); err != nil {
		return nil, err
	}
	ct := body[aes.BlockSize : len(body)-icvLen]
	copy(ct, plaintext) // padding bytes stay zero
	ct[n+pad] = byte(pad)
	cipher.NewCBCEncrypter(c.block, iv).CryptBlocks(ct, ct)
	icv, err := c.integ.Compute(c.integKey, ad, body[:len(body)-icvLen])
	if err != nil {
		return nil, err
	}
	copy(body[len(body)-icvLen:], icv)
	return body, nil
}

var errCBCOpen = errors.New("cbc open")

func (c *cbcCipher) open(ad, body []byte) ([]byte, error) {
	icvLen := c.integ.ICVSize()
	ctLen := len(body) - aes.BlockSize - icvLen
	if ctLen < aes.BlockSize || ctLen%aes.BlockSize != 0 {
		return nil, errCBCOpen
	}
	want, err := c.integ.Compute(c.integKey, ad, body[:len(body)-icvLen])
	if err != nil {
		return nil, err
	}
	if !hmac.Equal(want, body[len(body)-icvLen:]) {
		return nil, errCBCOpen
	}
	pt := make([]byte, ctLen)
	cipher.NewCBCDecrypter(c.block, body[:aes.BlockSize]).CryptBlocks(pt, body[aes.BlockSize:aes.BlockSize+ctLen])
	pad := int(pt[ctLen-1])
	if pad+1 > ctLen {
		return nil, errCBCOpen
	}
	return pt[:ctLen-1-pad], nil
}

func (c *cbcCipher) zero() { clear(c.integKey) }
