package transform

import (
	"crypto/mlkem"
	"fmt"
	"io"

	"github.com/cloudflare/circl/kem/mlkem/mlkem512"
)

// ML-KEM (FIPS 203) as an IKEv2 key exchange method
// (draft-ietf-ipsecme-ikev2-mlkem): the initiator's Key Exchange Data is
// its encapsulation key, the responder's the ciphertext it encapsulated to
// that key, and the shared secret is ML-KEM's 32-octet shared key. Unlike
// Diffie-Hellman the two ends play different parts, so one type serves
// both by the order of calls:
//
//   - initiator: PublicValue (draws the decapsulation key, returns the
//     encapsulation key), then SharedSecret(ciphertext) decapsulates;
//   - responder: SharedSecret(encapsulation key) encapsulates, then
//     PublicValue returns the ciphertext.
//
// ML-KEM-768 and ML-KEM-1024 come from crypto/mlkem. The standard library
// has no ML-KEM-512, so that parameter set comes from CIRCL's FIPS 203
// implementation (kem/mlkem/mlkem512), behind the same calls.

type mlkemKE struct {
	id     KEID
	dk     mlkemDecapsulator // initiator: our decapsulation key
	ct     []byte            // responder: the ciphertext we send
	closed bool
}

// mlkemDecapsulator is a decapsulation key of one parameter set.
type mlkemDecapsulator interface {
	encapsulationKey() []byte
	// decapsulate takes a ciphertext of the parameter set's length.
	decapsulate(ct []byte) ([]byte, error)
}

type dk768 struct{ *mlkem.DecapsulationKey768 }

func (k dk768) encapsulationKey() []byte              { return k.EncapsulationKey().Bytes() }
func (k dk768) decapsulate(ct []byte) ([]byte, error) { return k.Decapsulate(ct) }

type dk1024 struct{ *mlkem.DecapsulationKey1024 }

func (k dk1024) encapsulationKey() []byte              { return k.EncapsulationKey().Bytes() }
func (k dk1024) decapsulate(ct []byte) ([]byte, error) { return k.Decapsulate(ct) }

// dk512 keeps the encapsulation key packed, as the other two do.
type dk512 struct {
	sk *mlkem512.PrivateKey
	ek []byte
}

func newDK512(seed []byte) *dk512 {
	pk, sk := mlkem512.NewKeyFromSeed(seed)
	ek := make([]byte, mlkem512.PublicKeySize)
	pk.Pack(ek)
	return &dk512{sk: sk, ek: ek}
}

func (k *dk512) encapsulationKey() []byte { return k.ek }

func (k *dk512) decapsulate(ct []byte) ([]byte, error) {
	ss := make([]byte, mlkem512.SharedKeySize)
	k.sk.DecapsulateTo(ss, ct) // implicit rejection: never fails
	return ss, nil
}

// mlkemSizes are the encapsulation key and ciphertext sizes of a method.
func mlkemSizes(id KEID) (ek, ct int) {
	switch id {
	case ML_KEM_512:
		return mlkem512.PublicKeySize, mlkem512.CiphertextSize
	case ML_KEM_768:
		return mlkem.EncapsulationKeySize768, mlkem.CiphertextSize768
	case ML_KEM_1024:
		return mlkem.EncapsulationKeySize1024, mlkem.CiphertextSize1024
	}
	return 0, 0
}

// IsKEM reports whether the method is a key encapsulation mechanism, whose
// initiator and responder send different data (ML-KEM).
func (id KEID) IsKEM() bool { return id == ML_KEM_512 || id == ML_KEM_768 || id == ML_KEM_1024 }

func newMLKEM(id KEID) *mlkemKE { return &mlkemKE{id: id} }

// newMLKEMFromSeed is an initiator with the decapsulation key of a 64-octet
// seed (d | z of FIPS 203), for known-answer tests.
func newMLKEMFromSeed(id KEID, seed []byte) (*mlkemKE, error) {
	k := &mlkemKE{id: id}
	if len(seed) != mlkem.SeedSize {
		return nil, fmt.Errorf("%v: %d-byte seed, want %d", id, len(seed), mlkem.SeedSize)
	}
	switch id {
	case ML_KEM_512:
		k.dk = newDK512(seed)
	case ML_KEM_768:
		dk, err := mlkem.NewDecapsulationKey768(seed)
		if err != nil {
			return nil, err
		}
		k.dk = dk768{dk}
	case ML_KEM_1024:
		dk, err := mlkem.NewDecapsulationKey1024(seed)
		if err != nil {
			return nil, err
		}
		k.dk = dk1024{dk}
	default:
		return nil, ErrUnsupported
	}
	return k, nil
}

func (k *mlkemKE) Method() KEID { return k.id }

// generate draws a fresh decapsulation key.
func (k *mlkemKE) generate() error {
	switch k.id {
	case ML_KEM_512:
		seed := make([]byte, mlkem.SeedSize)
		if _, err := io.ReadFull(cryptoRand, seed); err != nil {
			return err
		}
		k.dk = newDK512(seed)
		clear(seed)
	case ML_KEM_768:
		dk, err := mlkem.GenerateKey768()
		if err != nil {
			return err
		}
		k.dk = dk768{dk}
	case ML_KEM_1024:
		dk, err := mlkem.GenerateKey1024()
		if err != nil {
			return err
		}
		k.dk = dk1024{dk}
	default:
		return ErrUnsupported
	}
	return nil
}

// PublicValue returns the ciphertext once SharedSecret encapsulated (the
// responder), the encapsulation key otherwise (the initiator; the
// decapsulation key is drawn on the first call). It returns nil after
// Close, which the peer refuses as a value of the wrong length.
func (k *mlkemKE) PublicValue() []byte {
	if k.closed {
		return nil
	}
	if k.ct != nil {
		return k.ct
	}
	if k.dk == nil && k.generate() != nil {
		return nil
	}
	return k.dk.encapsulationKey()
}

// SharedSecret decapsulates the peer's ciphertext when we sent an
// encapsulation key, and otherwise encapsulates to the peer's
// encapsulation key. A value of the wrong length, or an encapsulation key
// that fails FIPS 203's modulus check, wraps ErrInvalidPublicValue. A
// ciphertext of the right length always decapsulates: one that was not
// made for our key gives FIPS 203's implicit-rejection key, and the
// mismatch shows when the peer's AUTH (or the CHILD_SA's traffic) fails.
func (k *mlkemKE) SharedSecret(peer []byte) ([]byte, error) {
	if k.closed {
		return nil, errKEClosed
	}
	ekLen, ctLen := mlkemSizes(k.id)
	if ekLen == 0 {
		return nil, fmt.Errorf("key exchange %v: %w", k.id, ErrUnsupported)
	}
	if k.dk != nil {
		if len(peer) != ctLen {
			return nil, fmt.Errorf("%v: %d-byte ciphertext, want %d: %w", k.id, len(peer), ctLen, ErrInvalidPublicValue)
		}
		ss, err := k.dk.decapsulate(peer)
		if err != nil {
			return nil, fmt.Errorf("%v: %w", k.id, ErrInvalidPublicValue)
		}
		return ss, nil
	}
	if k.ct != nil {
		return nil, fmt.Errorf("%v: encapsulated already", k.id)
	}
	if len(peer) != ekLen {
		return nil, fmt.Errorf("%v: %d-byte encapsulation key, want %d: %w", k.id, len(peer), ekLen, ErrInvalidPublicValue)
	}
	var ss, ct []byte
	switch k.id {
	case ML_KEM_512:
		var ek mlkem512.PublicKey
		// Unpack runs FIPS 203's modulus check (section 7.2).
		if err := ek.Unpack(peer); err != nil {
			return nil, fmt.Errorf("%v: %w", k.id, ErrInvalidPublicValue)
		}
		ss, ct = make([]byte, mlkem512.SharedKeySize), make([]byte, mlkem512.CiphertextSize)
		ek.EncapsulateTo(ct, ss, nil) // nil: randomness from crypto/rand
	case ML_KEM_768:
		ek, err := mlkem.NewEncapsulationKey768(peer)
		if err != nil {
			return nil, fmt.Errorf("%v: %w", k.id, ErrInvalidPublicValue)
		}
		ss, ct = ek.Encapsulate()
	case ML_KEM_1024:
		ek, err := mlkem.NewEncapsulationKey1024(peer)
		if err != nil {
			return nil, fmt.Errorf("%v: %w", k.id, ErrInvalidPublicValue)
		}
		ss, ct = ek.Encapsulate()
	}
	k.ct = ct
	return ss, nil
}

// Close drops the decapsulation key; neither crypto/mlkem nor CIRCL gives
// a way to overwrite it, so it is left to the garbage collector.
func (k *mlkemKE) Close() {
	k.dk, k.ct, k.closed = nil, nil, true
}
