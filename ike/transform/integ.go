package transform

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"hash"
)

// Supported reports whether this package implements the integrity
// algorithm.
func (id IntegID) Supported() bool { return id.ICVSize() != 0 }

// KeySize is the integrity key length in bytes: the hash output size for
// HMAC (RFC 7296 section 2.13, RFC 4868), 16 for AES-XCBC-MAC-96 (RFC 3566).
func (id IntegID) KeySize() int {
	switch id {
	case AUTH_HMAC_SHA1_96:
		return sha1.Size
	case AUTH_AES_XCBC_96:
		return 16
	case AUTH_HMAC_SHA2_256_128:
		return sha256.Size
	case AUTH_HMAC_SHA2_384_192:
		return sha512.Size384
	case AUTH_HMAC_SHA2_512_256:
		return sha512.Size
	}
	return 0
}

// ICVSize is the length in bytes of the truncated MAC carried in messages.
func (id IntegID) ICVSize() int {
	switch id {
	case AUTH_HMAC_SHA1_96, AUTH_AES_XCBC_96:
		return 12
	case AUTH_HMAC_SHA2_256_128:
		return 16
	case AUTH_HMAC_SHA2_384_192:
		return 24
	case AUTH_HMAC_SHA2_512_256:
		return 32
	}
	return 0
}

func (id IntegID) newMAC(key []byte) (hash.Hash, error) {
	switch id {
	case AUTH_HMAC_SHA1_96:
		return hmac.New(sha1.New, key), nil
	case AUTH_HMAC_SHA2_256_128:
		return hmac.New(sha256.New, key), nil
	case AUTH_HMAC_SHA2_384_192:
		return hmac.New(sha512.New384, key), nil
	case AUTH_HMAC_SHA2_512_256:
		return hmac.New(sha512.New, key), nil
	case AUTH_AES_XCBC_96:
		return newXCBC(key)
	}
	return nil, fmt.Errorf("integrity %v: %w", id, ErrUnsupported)
}

// Compute returns the ICV, the MAC over data[0] | data[1] | ... truncated to
// ICVSize. It does not check the key length; NewProtector does.
func (id IntegID) Compute(key []byte, data ...[]byte) ([]byte, error) {
	m, err := id.newMAC(key)
	if err != nil {
		return nil, err
	}
	defer wipeHash(m)
	for _, d := range data {
		m.Write(d)
	}
	return m.Sum(nil)[:id.ICVSize()], nil
}
