package transform

import (
	"crypto/mlkem"
	"fmt"
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
// crypto/mlkem implements ML-KEM-768 and ML-KEM-1024 only; ML_KEM_512 is
// named but not supported, so a peer's proposal of it is declined.

type mlkemKE struct {
	id     KEID
	dk768  *mlkem.DecapsulationKey768
	dk1024 *mlkem.DecapsulationKey1024
	ct     []byte // responder: the ciphertext we send
	closed bool
}

// mlkemSizes are the encapsulation key and ciphertext sizes of a method.
func mlkemSizes(id KEID) (ek, ct int) {
	switch id {
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
	var err error
	switch id {
	case ML_KEM_768:
		k.dk768, err = mlkem.NewDecapsulationKey768(seed)
	case ML_KEM_1024:
		k.dk1024, err = mlkem.NewDecapsulationKey1024(seed)
	default:
		err = ErrUnsupported
	}
	return k, err
}

func (k *mlkemKE) Method() KEID { return k.id }

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
	switch k.id {
	case ML_KEM_768:
		if k.dk768 == nil {
			dk, err := mlkem.GenerateKey768()
			if err != nil {
				return nil
			}
			k.dk768 = dk
		}
		return k.dk768.EncapsulationKey().Bytes()
	case ML_KEM_1024:
		if k.dk1024 == nil {
			dk, err := mlkem.GenerateKey1024()
			if err != nil {
				return nil
			}
			k.dk1024 = dk
		}
		return k.dk1024.EncapsulationKey().Bytes()
	}
	return nil
}

// SharedSecret decapsulates the peer's ciphertext when we sent an
// encapsulation key, and otherwise encapsulates to the peer's
// encapsulation key. A value of the wrong length, or an encapsulation key
// that fails FIPS 203's modulus check, wraps ErrInvalidPublicValue.
func (k *mlkemKE) SharedSecret(peer []byte) ([]byte, error) {
	if k.closed {
		return nil, errKEClosed
	}
	ekLen, ctLen := mlkemSizes(k.id)
	if ekLen == 0 {
		return nil, fmt.Errorf("key exchange %v: %w", k.id, ErrUnsupported)
	}
	if k.dk768 != nil || k.dk1024 != nil {
		if len(peer) != ctLen {
			return nil, fmt.Errorf("%v: %d-byte ciphertext, want %d: %w", k.id, len(peer), ctLen, ErrInvalidPublicValue)
		}
		var ss []byte
		var err error
		if k.dk768 != nil {
			ss, err = k.dk768.Decapsulate(peer)
		} else {
			ss, err = k.dk1024.Decapsulate(peer)
		}
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

// Close drops the decapsulation key; crypto/mlkem gives no way to
// overwrite it, so it is left to the garbage collector.
func (k *mlkemKE) Close() {
	k.dk768, k.dk1024, k.ct, k.closed = nil, nil, nil, true
}
