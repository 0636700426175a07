package fleet

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
)

// sealVersion is the first byte of a sealed value: the format (AES-256-GCM,
// 12-byte nonce, the etcd key as additional data).
const sealVersion = 1

const nonceSize = 12

// ErrUnsealed says a record does not open under the fleet key: it was
// changed, moved to another key, or sealed under another key.
var ErrUnsealed = errors.New("record does not open under the fleet key (tampered, moved, or another fleet key)")

type sealer struct{ aead cipher.AEAD }

func newSealer(key []byte) (*sealer, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("fleet key is %d bytes, want 32", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCMWithNonceSize(block, nonceSize)
	if err != nil {
		return nil, err
	}
	return &sealer{aead: aead}, nil
}

// seal returns version || nonce || ciphertext+tag of plain, bound to key.
func (s *sealer) seal(key string, plain []byte) ([]byte, error) {
	out := make([]byte, 1+nonceSize, 1+nonceSize+len(plain)+s.aead.Overhead())
	out[0] = sealVersion
	if _, err := rand.Read(out[1 : 1+nonceSize]); err != nil {
		return nil, fmt.Errorf("nonce: %w", err)
	}
	return s.aead.Seal(out, out[1:1+nonceSize], plain, []byte(key)), nil
}

// open is the reverse of seal; an error names the key.
func (s *sealer) open(key string, sealed []byte) ([]byte, error) {
	if len(sealed) < 1+nonceSize+s.aead.Overhead() {
		return nil, fmt.Errorf("fleet record %s: %d bytes, too short to be sealed: %w", key, len(sealed), ErrUnsealed)
	}
	if sealed[0] != sealVersion {
		return nil, fmt.Errorf("fleet record %s: unknown seal format %d: %w", key, sealed[0], ErrUnsealed)
	}
	plain, err := s.aead.Open(nil, sealed[1:1+nonceSize], sealed[1+nonceSize:], []byte(key))
	if err != nil {
		return nil, fmt.Errorf("fleet record %s: %w", key, ErrUnsealed)
	}
	return plain, nil
}
