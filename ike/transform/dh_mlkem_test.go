package transform

import (
	"bytes"
	"crypto/mlkem"
	"crypto/mlkem/mlkemtest"
	"crypto/sha3"
	"encoding/hex"
	"errors"
	"testing"
)

// TestMLKEM768Accumulated is the known-answer test of C2SP's CCTV ML-KEM
// vectors (github.com/C2SP/CCTV, "accumulated" FIPS 203 vectors): 100
// key pairs from seeds drawn from SHAKE-128(""), each encapsulation key,
// a ciphertext and shared key made with fixed randomness, and the
// implicit-rejection key of a random ciphertext, all hashed with
// SHAKE-128 into the published digest. Our initiator side (key from the
// seed, PublicValue, SharedSecret decapsulating) has to reproduce every
// octet of it; the fixed-randomness encapsulation comes from
// crypto/mlkem/mlkemtest, the test hook of the standard library.
func TestMLKEM768Accumulated(t *testing.T) {
	const want = "1114b1b6699ed191734fa339376afa7e285c9e6acf6ff0177d346696ce564415"
	s, o := sha3.NewSHAKE128(), sha3.NewSHAKE128()
	seed := make([]byte, mlkem.SeedSize)
	msg := make([]byte, 32)
	ct1 := make([]byte, mlkem.CiphertextSize768)
	for range 100 {
		s.Read(seed)
		ini, err := newMLKEMFromSeed(ML_KEM_768, seed)
		if err != nil {
			t.Fatal(err)
		}
		ekBytes := ini.PublicValue()
		o.Write(ekBytes)
		ek, err := mlkem.NewEncapsulationKey768(ekBytes)
		if err != nil {
			t.Fatal(err)
		}
		s.Read(msg)
		k, ct, err := mlkemtest.Encapsulate768(ek, msg)
		if err != nil {
			t.Fatal(err)
		}
		o.Write(ct)
		o.Write(k)
		kk, err := ini.SharedSecret(ct)
		if err != nil || !bytes.Equal(kk, k) {
			t.Fatalf("decapsulated %x, %v; want %x", kk, err, k)
		}
		s.Read(ct1)
		k1, err := ini.SharedSecret(ct1)
		if err != nil {
			t.Fatal(err)
		}
		o.Write(k1)
	}
	digest := make([]byte, 32)
	o.Read(digest)
	if got := hex.EncodeToString(digest); got != want {
		t.Errorf("accumulated digest %s, want %s", got, want)
	}
}

// Both parameter sets through NewKeyExchange as IKE uses them: the
// initiator sends its encapsulation key, the responder encapsulates and
// sends the ciphertext, and both end with the same 32-octet secret.
func TestMLKEMExchange(t *testing.T) {
	for _, id := range []KEID{ML_KEM_768, ML_KEM_1024} {
		ekLen, ctLen := mlkemSizes(id)
		ini, err := NewKeyExchange(id, nil)
		if err != nil {
			t.Fatal(err)
		}
		res, _ := NewKeyExchange(id, nil)
		ek := ini.PublicValue()
		if len(ek) != ekLen || id.PublicValueSize() != ekLen || !id.IsKEM() || !id.Supported() {
			t.Fatalf("%v: encapsulation key of %d octets, want %d", id, len(ek), ekLen)
		}
		ssR, err := res.SharedSecret(ek)
		if err != nil {
			t.Fatal(err)
		}
		ct := res.PublicValue()
		if len(ct) != ctLen {
			t.Fatalf("%v: ciphertext of %d octets, want %d", id, len(ct), ctLen)
		}
		ssI, err := ini.SharedSecret(ct)
		if err != nil || len(ssI) != 32 || !bytes.Equal(ssI, ssR) {
			t.Fatalf("%v: secrets %x and %x (%v)", id, ssI, ssR, err)
		}
		// Wrong lengths, either way, are refused as invalid values.
		if _, err := ini.SharedSecret(ct[1:]); !errors.Is(err, ErrInvalidPublicValue) {
			t.Errorf("%v: short ciphertext: %v", id, err)
		}
		res2, _ := NewKeyExchange(id, nil)
		if _, err := res2.SharedSecret(ek[:ekLen-1]); !errors.Is(err, ErrInvalidPublicValue) {
			t.Errorf("%v: short encapsulation key: %v", id, err)
		}
		// An encapsulation key with a coefficient >= q fails FIPS 203's
		// modulus check (section 7.2).
		bad := bytes.Clone(ek)
		bad[0], bad[1] = 0xff, 0xff
		if _, err := res2.SharedSecret(bad); !errors.Is(err, ErrInvalidPublicValue) {
			t.Errorf("%v: encapsulation key out of range: %v", id, err)
		}
		ini.Close()
		if _, err := ini.SharedSecret(ct); err == nil || ini.PublicValue() != nil {
			t.Errorf("%v: usable after Close", id)
		}
	}
	if ML_KEM_512.Supported() {
		t.Error("ML_KEM_512 reported supported")
	}
	if _, err := NewKeyExchange(ML_KEM_512, nil); !errors.Is(err, ErrUnsupported) {
		t.Errorf("ML_KEM_512: %v", err)
	}
}
