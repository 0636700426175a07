package transform

import (
	"crypto/subtle"
	"fmt"
	"io"

	"filippo.io/edwards25519"
	"github.com/cloudflare/circl/dh/x25519"
)

// Curve25519 (RFC 8031, X25519 of RFC 7748). The Key Exchange Data is the
// 32-byte u-coordinate; g^ir is the 32-byte X25519 output, and an all-zero
// output, which a low-order peer value produces, MUST be refused
// (RFC 8031 section 2.3).
//
// Our public value is [k]B for the clamped scalar k, a fixed-base
// multiplication: it is computed on the birationally equivalent Edwards
// curve with a precomputed table of multiples of the base point and mapped
// to the Montgomery u-coordinate (RFC 7748 section 4.1), about three times
// faster than the Montgomery ladder, which crypto/ecdh runs for the public
// key too (filippo.io/edwards25519's constant-time group arithmetic, the
// code crypto/ecdh is built on). The shared secret is the RFC 7748
// section 5 ladder from CIRCL (x25519Ladder): crypto/ecdh cannot take a
// private scalar without running a ladder for its public key first, which
// would cost more than it saves. The tests compare both results with
// crypto/ecdh's.

const x25519Size = 32

type x25519KE struct {
	scalar [x25519Size]byte // as drawn; clamped where used
	public [x25519Size]byte
	closed bool
}

func newX25519(rand io.Reader) (*x25519KE, error) {
	k := &x25519KE{}
	if _, err := io.ReadFull(rand, k.scalar[:]); err != nil {
		return nil, fmt.Errorf("%v private value: %w", CURVE_25519, err)
	}
	k.setPublic()
	return k, nil
}

func newX25519FromPrivate(scalar []byte) (*x25519KE, error) {
	if len(scalar) != x25519Size {
		return nil, fmt.Errorf("%v: %d-byte private value, want %d", CURVE_25519, len(scalar), x25519Size)
	}
	k := &x25519KE{}
	copy(k.scalar[:], scalar)
	k.setPublic()
	return k, nil
}

// setPublic computes u([k]B). A clamped k is 8 times an odd multiple of a
// number below 2^252 plus 2^254, never a multiple of the group order, so
// the point is never the identity (whose u would be 0).
func (k *x25519KE) setPublic() {
	var s edwards25519.Scalar
	if _, err := s.SetBytesWithClamping(k.scalar[:]); err != nil {
		panic("transform: X25519 scalar: " + err.Error()) // 32 bytes by construction
	}
	var p edwards25519.Point
	copy(k.public[:], p.ScalarBaseMult(&s).BytesMontgomery())
	s = edwards25519.Scalar{}
}

func (k *x25519KE) Method() KEID { return CURVE_25519 }

func (k *x25519KE) PublicValue() []byte {
	return append([]byte(nil), k.public[:]...)
}

func (k *x25519KE) SharedSecret(peer []byte) ([]byte, error) {
	if k.closed {
		return nil, errKEClosed
	}
	if len(peer) != x25519Size {
		return nil, fmt.Errorf("%v: %d-byte public value, want %d: %w", CURVE_25519, len(peer), x25519Size, ErrInvalidPublicValue)
	}
	z := make([]byte, x25519Size)
	x25519Ladder(z, &k.scalar, peer)
	var zero [x25519Size]byte
	if subtle.ConstantTimeCompare(z, zero[:]) == 1 {
		return nil, fmt.Errorf("%v: all-zero shared secret (low-order public value): %w", CURVE_25519, ErrInvalidPublicValue)
	}
	return z, nil
}

// Close overwrites the private scalar.
func (k *x25519KE) Close() {
	clear(k.scalar[:])
	k.closed = true
}

// x25519Ladder writes X25519(scalar, u) into out (32 bytes), as RFC 7748
// section 5 defines it: the scalar clamped, u's top bit ignored and a
// non-canonical u reduced. CIRCL's dh/x25519 computes it: its Montgomery
// ladder runs on field arithmetic written for the ADX and BMI2
// instructions of x86-64 (with a generic fallback), measured 1.5 times as
// fast as crypto/ecdh's and ours on the same edwards25519 field code
// (about 48 against 74 microseconds here), and the shared secret was a
// seventh of a responder's CPU per IKE SA. Its answer about low-order
// points is not used: SharedSecret refuses the all-zero output, as RFC
// 8031 asks.
func x25519Ladder(out []byte, scalar *[x25519Size]byte, u []byte) {
	var z, peer x25519.Key
	copy(peer[:], u)
	x25519.Shared(&z, (*x25519.Key)(scalar), &peer)
	copy(out, z[:])
	clear(z[:])
}
