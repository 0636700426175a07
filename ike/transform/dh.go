package transform

import (
	"errors"
	"fmt"
	"io"
)

// KeyExchange is our side of one ephemeral Diffie-Hellman exchange: the
// KEi/KEr payloads of IKE_SA_INIT or CREATE_CHILD_SA.
//
// A KeyExchange is used by one goroutine at a time.
type KeyExchange interface {
	// Method is the negotiated group.
	Method() KEID
	// PublicValue returns the Key Exchange Data for our KE payload
	// (RFC 7296 section 3.4), in the group's fixed-length encoding.
	PublicValue() []byte
	// SharedSecret checks the peer's Key Exchange Data and returns g^ir
	// in the encoding the key derivation expects. A public value of the
	// wrong length, out of range, off the curve or of low order is
	// refused with an error wrapping ErrInvalidPublicValue.
	SharedSecret(peerPublicValue []byte) ([]byte, error)
	// Close forgets the private key, overwriting it where Go lets us.
	Close()
}

var (
	// ErrInvalidPublicValue is wrapped by every refusal of a peer's public
	// value.
	ErrInvalidPublicValue = errors.New("transform: invalid key exchange public value")
	errKEClosed           = errors.New("transform: key exchange closed")
)

// NewKeyExchange starts an exchange in the given group with a fresh private
// key. rand feeds the MODP private exponent; nil means crypto/rand. For the
// elliptic curves crypto/ecdh draws from its own secure source (Go 1.26
// ignores a caller's reader there).
func NewKeyExchange(id KEID, rand io.Reader) (KeyExchange, error) {
	if rand == nil {
		rand = cryptoRand
	}
	if g, ok := modpGroups[id]; ok {
		return newMODP(g, rand)
	}
	if c, ok := ecpCurves[id]; ok {
		return newECP(id, c, rand)
	}
	if id == CURVE_25519 {
		return newX25519(rand)
	}
	if ek, _ := mlkemSizes(id); ek != 0 {
		// crypto/mlkem draws from its own secure source.
		return newMLKEM(id), nil
	}
	return nil, fmt.Errorf("key exchange %v: %w", id, ErrUnsupported)
}

// Supported reports whether this package implements the group.
func (id KEID) Supported() bool { return id.PublicValueSize() != 0 }

// PublicValueSize is the length of the group's Key Exchange Data, 0 for an
// unsupported group: the modulus length for MODP, twice the coordinate
// length for ECP (x | y, RFC 5903 section 7), 32 for Curve25519 (RFC 8031),
// the initiator's encapsulation key for ML-KEM (the responder sends a
// ciphertext of another length, see dh_mlkem.go).
func (id KEID) PublicValueSize() int {
	if g, ok := modpGroups[id]; ok {
		return g.size
	}
	if c, ok := ecpCurves[id]; ok {
		return 2 * c.coord
	}
	if id == CURVE_25519 {
		return x25519Size
	}
	ek, _ := mlkemSizes(id)
	return ek
}
