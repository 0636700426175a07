package transform

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"io"
	"math/big"
)

// IKEv1 signatures (RFC 2409 section 5.1, RFC 4754) sign HASH_I or HASH_R.
// RSA signs the hash itself, PKCS#1 v1.5 padded without a DigestInfo (as
// charon's SIGN_RSA_EMSA_PKCS1_NULL); ECDSA signs the curve's SHA-2 digest
// of it and sends r | s, each as long as the curve order.

// V1SignHash signs a phase 1 hash with key.
func V1SignHash(rand io.Reader, key crypto.Signer, hash []byte) ([]byte, error) {
	if rand == nil {
		rand = cryptoRand
	}
	switch pub := key.Public().(type) {
	case *rsa.PublicKey:
		return key.Sign(rand, hash, crypto.Hash(0))
	case *ecdsa.PublicKey:
		digest, size, err := v1ECDSADigest(pub.Curve, hash)
		if err != nil {
			return nil, err
		}
		k, ok := key.(*ecdsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("IKEv1 ECDSA signature with a %T: %w", key, ErrUnsupported)
		}
		r, s, err := ecdsa.Sign(rand, k, digest)
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
		digest, size, err := v1ECDSADigest(pub.Curve, hash)
		if err != nil {
			return err
		}
		if len(sig) != 2*size {
			return ErrAuthMismatch
		}
		r, s := new(big.Int).SetBytes(sig[:size]), new(big.Int).SetBytes(sig[size:])
		if !ecdsa.Verify(pub, digest, r, s) {
			return ErrAuthMismatch
		}
		return nil
	}
	return fmt.Errorf("IKEv1 signature with a %T: %w", pub, ErrUnsupported)
}

func v1ECDSADigest(c elliptic.Curve, hash []byte) ([]byte, int, error) {
	switch c {
	case elliptic.P256():
		d := sha256.Sum256(hash)
		return d[:], 32, nil
	case elliptic.P384():
		d := sha512.Sum384(hash)
		return d[:], 48, nil
	case elliptic.P521():
		d := sha512.Sum512(hash)
		return d[:], 66, nil
	}
	return nil, 0, fmt.Errorf("IKEv1 ECDSA on %v: %w", c.Params().Name, ErrUnsupported)
}
