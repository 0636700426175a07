package transform

import (
	"crypto/ecdh"
	"fmt"
	"io"
)

// ECP groups 19, 20, 21 (RFC 5903) on top of crypto/ecdh.
//
// The Key Exchange Data is x | y, each coordinate zero-padded to the field
// size, without the SEC 1 0x04 prefix (RFC 5903 section 7). The shared
// secret g^ir is the x coordinate of the common point only (RFC 5903
// section 7 as corrected by erratum 9), which is what crypto/ecdh returns.
// crypto/ecdh refuses points that are not on the curve; the point at
// infinity has no x | y encoding at all.

type ecpCurve struct {
	curve ecdh.Curve
	coord int // bytes per coordinate
}

var ecpCurves = map[KEID]ecpCurve{
	ECP_256: {ecdh.P256(), 32},
	ECP_384: {ecdh.P384(), 48},
	ECP_521: {ecdh.P521(), 66},
}

type ecpKE struct {
	id   KEID
	c    ecpCurve
	priv *ecdh.PrivateKey
}

func newECP(id KEID, c ecpCurve, rand io.Reader) (*ecpKE, error) {
	priv, err := c.curve.GenerateKey(rand)
	if err != nil {
		return nil, fmt.Errorf("%v private value: %w", id, err)
	}
	return &ecpKE{id: id, c: c, priv: priv}, nil
}

func newECPFromPrivate(id KEID, scalar []byte) (*ecpKE, error) {
	c := ecpCurves[id]
	priv, err := c.curve.NewPrivateKey(scalar)
	if err != nil {
		return nil, err
	}
	return &ecpKE{id: id, c: c, priv: priv}, nil
}

func (k *ecpKE) Method() KEID { return k.id }

func (k *ecpKE) PublicValue() []byte {
	return k.priv.PublicKey().Bytes()[1:] // drop the SEC 1 0x04 prefix
}

func (k *ecpKE) SharedSecret(peer []byte) ([]byte, error) {
	if k.priv == nil {
		return nil, errKEClosed
	}
	if len(peer) != 2*k.c.coord {
		return nil, fmt.Errorf("%v: %d-byte public value, want %d: %w", k.id, len(peer), 2*k.c.coord, ErrInvalidPublicValue)
	}
	point := make([]byte, 1+len(peer))
	point[0] = 4
	copy(point[1:], peer)
	pub, err := k.c.curve.NewPublicKey(point)
	if err != nil {
		return nil, fmt.Errorf("%v: public value is not a point on the curve: %w", k.id, ErrInvalidPublicValue)
	}
	z, err := k.priv.ECDH(pub)
	if err != nil {
		return nil, fmt.Errorf("%v: %w", k.id, ErrInvalidPublicValue)
	}
	return z, nil
}

// Close drops the private key. crypto/ecdh keeps the scalar in unexported
// fields that cannot be overwritten from here; the garbage collector
// reclaims them.
func (k *ecpKE) Close() { k.priv = nil }
