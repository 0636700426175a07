package transform

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"fmt"
	"io"
	"math/big"
)

// IKEv1 signatures (RFC 2409 section 5.1, RFC 4754) sign HASH_I or HASH_R.
// RSA signs the hash itself, PKCS#1 v1.5 padded without a DigestInfo (as
// charon's SIGN_RSA_EMSA_PKCS1_NULL). ECDSA (auth methods 9, 10, 11) signs
// the hash itself too, as charon's SIGN_ECDSA_WITH_NULL does, not the
// curve's SHA-2 digest of it that RFC 4754 names for IKEv2's AUTH payload:
// the PRF output is taken as the message digest (truncated to the order's
// length if longer), and the signature is r | s, each as long as a field
// element (32, 48, 66 octets). charon 5.9 accepts nothing else.

// V1SignHash signs a phase 1 hash with key.
func V1SignHash(rand io.Reader, key crypto.Signer, hash []byte) ([]byte, error) {
	if rand == nil {
		rand = cryptoRand
	}
	switch pub := key.Public().(type) {
	case *rsa.PublicKey:
		return key.Sign(rand, hash, crypto.Hash(0))
	case *ecdsa.PublicKey:
		size, err := v1ECDSASize(pub.Curve)
		if err != nil {
			return nil, err
		}
		k, ok := key.(*ecdsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("IKEv1 ECDSA signature with a %T: %w", key, ErrUnsupported)
		}
		r, s, err := ecdsa.Sign(rand, k, hash)
		if err != nil {
			return nil, err
		}
		out := make([]byte, 2*size)
		r.FillBytes(out[:size])
		s.FillBytes(out[size:])
		return out, nil
	}
	return nil, fmt.Errorf("IKEv1 signature with a %T: %w", key.Public(), ErrUnsupported)
}

// V1VerifyHash checks a SIG payload against the peer's public key.
func V1VerifyHash(pub crypto.PublicKey, hash, sig []byte) error {
	switch pub := pub.(type) {
	case *rsa.PublicKey:
		if rsa.VerifyPKCS1v15(pub, crypto.Hash(0), hash, sig) != nil {
			return ErrAuthMismatch
		}
		return nil
	case *ecdsa.PublicKey:
		size, err := v1ECDSASize(pub.Curve)
		if err != nil {
			return err
		}
		if len(sig) != 2*size {
			return ErrAuthMismatch
		}
		r, s := new(big.Int).SetBytes(sig[:size]), new(big.Int).SetBytes(sig[size:])
		if !ecdsa.Verify(pub, hash, r, s) {
			return ErrAuthMismatch
		}
		return nil
	}
	return fmt.Errorf("IKEv1 signature with a %T: %w", pub, ErrUnsupported)
}

// v1ECDSASize is the length of r and of s on a curve.
func v1ECDSASize(c elliptic.Curve) (int, error) {
	switch c {
	case elliptic.P256(), elliptic.P384(), elliptic.P521():
		return (c.Params().BitSize + 7) / 8, nil
	}
	return 0, fmt.Errorf("IKEv1 ECDSA on %v: %w", c.Params().Name, ErrUnsupported)
}
