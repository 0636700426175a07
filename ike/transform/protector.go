package transform

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
)

// Protector encrypts and authenticates the body of an SK or SKF payload
// (RFC 7296 section 3.14, RFC 7383). The message codec calls it; it knows
// nothing of headers except that associatedData is everything before the
// payload body: the IKE header and the SK/SKF generic header (and, for SKF,
// the fragment number fields). That is the AAD of RFC 5282, and for
// non-AEAD ciphers the ICV is computed over associatedData | IV | ciphertext.
type Protector interface {
	// SealedLen is the length of the SK payload body (IV, ciphertext
	// including padding and the pad-length byte, ICV) that Seal produces
	// for n plaintext bytes. The codec needs it to write the length
	// fields inside associatedData before calling Seal.
	SealedLen(n int) int
	// Seal returns the SK payload body for plaintext (the inner payloads).
	Seal(associatedData, plaintext []byte) ([]byte, error)
	// Open verifies the ICV in constant time, decrypts and strips the
	// padding. Every failure returns ErrAuthentication and nothing else,
	// so that a peer learns nothing about why a message was refused.
	Open(associatedData, body []byte) ([]byte, error)
}

var (
	// ErrAuthentication is the one error Open returns, whatever failed.
	ErrAuthentication = errors.New("transform: SK payload integrity check failed")
	// ErrIVExhausted is returned by Seal when an AEAD key has sealed as
	// many messages as its 64-bit explicit IV counter allows.
	ErrIVExhausted = errors.New("transform: IV space exhausted, rekey")
	// ErrClosed is returned by Seal and Open after Close.
	ErrClosed = errors.New("transform: protector closed")
)

// skCipher is one encryption construction behind an SKProtector.
type skCipher interface {
	sealedLen(n int) int
	seal(associatedData, plaintext []byte) ([]byte, error)
	open(associatedData, body []byte) ([]byte, error)
	zero()
}

// SKProtector protects the SK payloads flowing in one direction of an IKE
// SA: built from SK_ei (and SK_ai) it protects what the original initiator
// sends, from SK_er (and SK_ar) what the responder sends. The sender Seals
// with it, the receiver Opens with it.
//
// Seal and Open may be called concurrently; Close must not race with them.
type SKProtector struct {
	c      skCipher
	closed bool
}

var _ Protector = (*SKProtector)(nil)

// NewProtector builds the protector for one direction from the negotiated
// encryption algorithm (with its Key Length attribute in bits), the
// integrity algorithm (AUTH_NONE for an AEAD) and their keys. For AEAD
// algorithms encrKey includes the 4-byte salt at its end (RFC 5282
// section 7.1, RFC 7634 section 2). The keys are copied; the caller keeps
// ownership of its slices. rand supplies CBC IVs and the start of the AEAD
// IV counter; nil means crypto/rand.
func NewProtector(encr EncrID, keyBits uint16, integ IntegID, encrKey, integKey []byte, rand io.Reader) (*SKProtector, error) {
	if rand == nil {
		rand = cryptoRand
	}
	want, err := encrKeySize(encr, keyBits)
	if err != nil {
		return nil, err
	}
	if len(encrKey) != want {
		return nil, fmt.Errorf("protector %v: %d-byte key, want %d: %w", encr, len(encrKey), want, errKeyLength)
	}
	var c skCipher
	if encr.IsAEAD() {
		if integ != AUTH_NONE {
			return nil, fmt.Errorf("protector %v with %v: an AEAD takes no integrity algorithm: %w", encr, integ, ErrUnsupported)
		}
		c, err = newAEADCipher(encr, encrKey, rand)
	} else {
		if !integ.Supported() {
			return nil, fmt.Errorf("protector %v: integrity %v: %w", encr, integ, ErrUnsupported)
		}
		if len(integKey) != integ.KeySize() {
			return nil, fmt.Errorf("protector %v: %d-byte key, want %d: %w", integ, len(integKey), integ.KeySize(), errKeyLength)
		}
		c, err = newCBCCipher(encrKey, integ, integKey, rand)
	}
	if err != nil {
		return nil, err
	}
	return &SKProtector{c: c}, nil
}

// SealedLen implements Protector.
func (p *SKProtector) SealedLen(n int) int { return p.c.sealedLen(n) }

// Seal implements Protector.
func (p *SKProtector) Seal(associatedData, plaintext []byte) ([]byte, error) {
	if p.closed {
		return nil, ErrClosed
	}
	return p.c.seal(associatedData, plaintext)
}

// Open implements Protector.
func (p *SKProtector) Open(associatedData, body []byte) ([]byte, error) {
	if p.closed {
		return nil, ErrClosed
	}
	pt, err := p.c.open(associatedData, body)
	if err != nil {
		return nil, ErrAuthentication
	}
	return pt, nil
}

// Close overwrites the key bytes the protector holds (integrity key, AEAD
// salt). Cipher key schedules inside crypto/aes and
// golang.org/x/crypto/chacha20poly1305 cannot be reached from here and are
// left to the garbage collector.
func (p *SKProtector) Close() {
	if !p.closed {
		p.c.zero()
		p.closed = true
	}
}

// encrKeySize is the number of key material bytes an encryption transform
// consumes from prf+: the cipher key plus, for AEADs, the 4-byte salt.
func encrKeySize(id EncrID, keyBits uint16) (int, error) {
	switch id {
	case ENCR_AES_CBC, ENCR_AES_GCM_8, ENCR_AES_GCM_12, ENCR_AES_GCM_16:
		if keyBits != 128 && keyBits != 192 && keyBits != 256 {
			return 0, fmt.Errorf("%v with key length %d: %w", id, keyBits, ErrUnsupported)
		}
		n := int(keyBits) / 8
		if id != ENCR_AES_CBC {
			n += aeadSaltSize
		}
		return n, nil
	case ENCR_CHACHA20_POLY1305:
		// RFC 7634 section 4: no Key Length attribute. strongSwan's
		// "chacha20poly1305compat" sends 256, accept that too.
		if keyBits != 0 && keyBits != 256 {
			return 0, fmt.Errorf("%v with key length %d: %w", id, keyBits, ErrUnsupported)
		}
		return 32 + aeadSaltSize, nil
	}
	return 0, fmt.Errorf("encryption %v: %w", id, ErrUnsupported)
}

var cryptoRand io.Reader = rand.Reader
