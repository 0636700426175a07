package transform

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"math/big"
	"testing"
)

// TestV1ECDSASignsHashItself: an IKEv1 ECDSA signature is over HASH_I or
// HASH_R as it is (charon's SIGN_ECDSA_WITH_NULL), r | s with each as long
// as a field element, for PRF outputs shorter and longer than the order.
func TestV1ECDSASignsHashItself(t *testing.T) {
	for _, c := range []struct {
		curve elliptic.Curve
		size  int
	}{{elliptic.P256(), 32}, {elliptic.P384(), 48}, {elliptic.P521(), 66}} {
		k, err := ecdsa.GenerateKey(c.curve, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		for _, hashLen := range []byte{20, 32, 64} {
			hash := seq(1, hashLen)
			sig, err := V1SignHash(nil, k, hash)
			if err != nil {
				t.Fatal(err)
			}
			if len(sig) != 2*c.size {
				t.Fatalf("%s: signature of %d octets, want %d", c.curve.Params().Name, len(sig), 2*c.size)
			}
			r, s := new(big.Int).SetBytes(sig[:c.size]), new(big.Int).SetBytes(sig[c.size:])
			if !ecdsa.Verify(&k.PublicKey, hash, r, s) {
				t.Errorf("%s, %d-octet hash: not a signature of the hash itself", c.curve.Params().Name, hashLen)
			}
			if err := V1VerifyHash(&k.PublicKey, hash, sig); err != nil {
				t.Errorf("%s: own signature does not verify: %v", c.curve.Params().Name, err)
			}
			hash[0] ^= 1
			if V1VerifyHash(&k.PublicKey, hash, sig) == nil {
				t.Errorf("%s: signature verifies over another hash", c.curve.Params().Name)
			}
			if V1VerifyHash(&k.PublicKey, hash, sig[1:]) == nil {
				t.Errorf("%s: short signature verifies", c.curve.Params().Name)
			}
		}
	}
}
