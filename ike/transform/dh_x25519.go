package transform

import (
	"crypto/ecdh"
	"crypto/subtle"
	"fmt"
	"io"
)

// Curve25519 (RFC 8031, X25519 of RFC 7748). The Key Exchange Data is the
// 32-byte u-coordinate; g^ir is the 32-byte X25519 output, and an all-zero
// output, which a low-order peer value produces, MUST be refused
// (RFC 8031 section 2.3). crypto/ecdh refuses it too; the check here keeps
// that promise visible and independent of the library.

const x25519Size = 32

type x25519KE struct {
	priv *ecdh.PrivateKey
}

func newX25519(rand io.Reader) (*x25519KE, error) {
	priv, err := ecdh.X25519().GenerateKey(rand)
	if err != nil {
		return nil, fmt.Errorf("%v private value: %w", CURVE_25519, err)
	}
	return &x25519KE{priv: priv}, nil
}

func newX25519FromPrivate(scalar []byte) (*x25519KE, error) {
	priv, err := ecdh.X25519().NewPrivateKey(scalar)
	if err != nil {
		return nil, err
	}
	return &x25519KE{priv: priv}, nil
}

func (k *x25519KE) Method() KEID        { return CURVE_25519 }
func (k *x25519KE) PublicValue() []byte { return k.priv.PublicKey().Bytes() }

func (k *x25519KE) SharedSecret(peer []byte) ([]byte, error) {
	if k.priv == nil {
		return nil, errKEClosed
	}
	if len(peer) != x25519Size {
		return nil, fmt.Errorf("%v: %d-byte public value, want %d: %w", CURVE_25519, len(peer), x25519Size, ErrInvalidPublicValue)
	}
	pub, err := ecdh.X25519().NewPublicKey(peer)
	if err != nil {
		return nil, fmt.Errorf("%v: %w", CURVE_25519, ErrInvalidPublicValue)
	}
	z, err := k.priv.ECDH(pub)
	if err != nil || subtle.ConstantTimeCompare(z, make([]byte, x25519Size)) == 1 {
		return nil, fmt.Errorf("%v: all-zero shared secret (low-order public value): %w", CURVE_25519, ErrInvalidPublicValue)
	}
	return z, nil
}

// Close drops the private key; see ecpKE.Close for what Go leaves behind.
func (k *x25519KE) Close() { k.priv = nil }
