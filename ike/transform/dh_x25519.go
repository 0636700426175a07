package transform

import (
	"crypto/subtle"
	"fmt"
	"io"

	"filippo.io/edwards25519"
	"filippo.io/edwards25519/field"
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
// key too. The shared secret is the RFC 7748 section 5 ladder, written here
// because crypto/ecdh cannot take a private scalar without running a
// ladder for its public key first, which would cost more than it saves.
// Both use filippo.io/edwards25519's constant-time field and group
// arithmetic, the same code crypto/ecdh is built on; the tests compare
// both results with crypto/ecdh's.

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

// x25519Ladder writes X25519(scalar, u) into out (32 bytes): the
// Montgomery ladder of RFC 7748 section 5, in constant time. u's top bit
// is ignored and non-canonical values are reduced, as the RFC asks.
func x25519Ladder(out []byte, scalar *[x25519Size]byte, u []byte) {
	e := *scalar
	e[0] &= 248
	e[31] &= 127
	e[31] |= 64

	var x1, x2, z2, x3, z3, a, aa, b, bb, c, d, da, cb, ee field.Element
	if _, err := x1.SetBytes(u); err != nil {
		panic("transform: X25519 u-coordinate: " + err.Error()) // length checked by the caller
	}
	x2.One()
	x3.Set(&x1)
	z3.One()
	swap := 0
	for t := 254; t >= 0; t-- {
		bit := int(e[t/8]>>(t%8)) & 1
		swap ^= bit
		x2.Swap(&x3, swap)
		z2.Swap(&z3, swap)
		swap = bit

		a.Add(&x2, &z2)
		aa.Square(&a)
		b.Subtract(&x2, &z2)
		bb.Square(&b)
		ee.Subtract(&aa, &bb)
		c.Add(&x3, &z3)
		d.Subtract(&x3, &z3)
		da.Multiply(&d, &a)
		cb.Multiply(&c, &b)
		x3.Add(&da, &cb)
		x3.Square(&x3)
		z3.Subtract(&da, &cb)
		z3.Square(&z3)
		z3.Multiply(&z3, &x1)
		x2.Multiply(&aa, &bb)
		z2.Mult32(&ee, 121665) // a24 = (486662 - 2) / 4
		z2.Add(&z2, &aa)
		z2.Multiply(&z2, &ee)
	}
	x2.Swap(&x3, swap)
	z2.Swap(&z3, swap)

	z2.Invert(&z2)
	x2.Multiply(&x2, &z2)
	copy(out, x2.Bytes())
	clear(e[:])
}
