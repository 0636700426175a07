package transform

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"testing"
)

// x25519Edges are scalars where clamping or the reduction modulo the group
// order could go wrong: zero, all ones, the group order l and its
// multiples, the clamping bits alone, and l's neighbours.
func x25519Edges(t *testing.T) [][]byte {
	l, _ := new(big.Int).SetString("7237005577332262213973186563042994240857116359379907606001950938285454250989", 10)
	le := func(n *big.Int) []byte {
		b := make([]byte, 32)
		n.FillBytes(b)
		for i, j := 0, 31; i < j; i, j = i+1, j-1 {
			b[i], b[j] = b[j], b[i]
		}
		return b
	}
	edges := [][]byte{make([]byte, 32), bytes.Repeat([]byte{0xff}, 32)}
	for _, m := range []int64{1, 2, 4, 5, 6, 7, 8, 15} {
		n := new(big.Int).Mul(l, big.NewInt(m))
		for _, d := range []int64{-8, -1, 0, 1, 8} {
			v := new(big.Int).Add(n, big.NewInt(d))
			if v.Sign() >= 0 && v.BitLen() <= 256 {
				edges = append(edges, le(v))
			}
		}
	}
	for _, bits := range []uint{254, 255} {
		edges = append(edges, le(new(big.Int).Lsh(big.NewInt(1), bits)))
	}
	for _, s := range []string{
		"77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a", // RFC 7748 6.1
		"5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb",
		"a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4", // RFC 7748 5.2
		"4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d",
	} {
		edges = append(edges, unhex(t, s))
	}
	return edges
}

// Our fixed-base public value must be crypto/ecdh's, bit for bit.
func TestX25519PublicValueMatchesECDH(t *testing.T) {
	scalars := x25519Edges(t)
	for range 2000 {
		s := make([]byte, 32)
		rand.Read(s)
		scalars = append(scalars, s)
	}
	for _, s := range scalars {
		want, err := ecdh.X25519().NewPrivateKey(s)
		if err != nil {
			t.Fatal(err)
		}
		k, err := newX25519FromPrivate(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := k.PublicValue(); !bytes.Equal(got, want.PublicKey().Bytes()) {
			t.Errorf("scalar %x: public value %x, crypto/ecdh %x", s, got, want.PublicKey().Bytes())
		}
	}
}

// The ladder must agree with crypto/ecdh for any 32 bytes from the peer:
// points on the curve and on its twist, u with the top bit set, u >= p,
// low-order u (refused by both).
func TestX25519SharedSecretMatchesECDH(t *testing.T) {
	peers := [][]byte{
		bytes.Repeat([]byte{0xff}, 32), // 2^256-1: top bit ignored, then non-canonical
		unhex(t, "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"), // p
		unhex(t, "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"), // p-1
		unhex(t, "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"), // p+1
		unhex(t, "0000000000000000000000000000000000000000000000000000000000000000"),
		unhex(t, "0100000000000000000000000000000000000000000000000000000000000000"),
		unhex(t, "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
		unhex(t, "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157"),
		unhex(t, "0900000000000000000000000000000000000000000000000000000000000000"), // base point
	}
	for range 500 {
		u := make([]byte, 32)
		rand.Read(u)
		peers = append(peers, u)
	}
	scalars := x25519Edges(t)
	for range 20 {
		s := make([]byte, 32)
		rand.Read(s)
		scalars = append(scalars, s)
	}
	refused := 0
	for i, u := range peers {
		s := scalars[i%len(scalars)]
		priv, _ := ecdh.X25519().NewPrivateKey(s)
		pub, _ := ecdh.X25519().NewPublicKey(u)
		want, wantErr := priv.ECDH(pub)
		k, _ := newX25519FromPrivate(s)
		got, err := k.SharedSecret(u)
		switch {
		case wantErr != nil:
			refused++
			if !errors.Is(err, ErrInvalidPublicValue) {
				t.Errorf("u %x: %x, %v; crypto/ecdh refuses it (%v)", u, got, err, wantErr)
			}
		case err != nil || !bytes.Equal(got, want):
			t.Errorf("scalar %x u %x: %x, %v; crypto/ecdh %x", s, u, got, err, want)
		}
	}
	if refused < 6 {
		t.Errorf("only %d low-order values refused, want at least the 6 listed", refused)
	}
}

// RFC 7748 section 5.2: X25519 iterated, k and u starting at 9.
func TestX25519Iterated(t *testing.T) {
	k := make([]byte, 32)
	k[0] = 9
	u := bytes.Clone(k)
	want := map[int]string{
		1:    "422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079",
		1000: "684cf59ba83309552800ef566f2f4d3c1c3887c49360e3875f2eb94d99532c51",
	}
	for i := 1; i <= 1000; i++ {
		var s [32]byte
		copy(s[:], k)
		out := make([]byte, 32)
		x25519Ladder(out, &s, u)
		u, k = k, out
		if w, ok := want[i]; ok {
			equalHex(t, fmt.Sprintf("after %d iterations", i), k, w)
		}
	}
}

func TestX25519Close(t *testing.T) {
	k, err := NewKeyExchange(CURVE_25519, nil)
	if err != nil {
		t.Fatal(err)
	}
	peer, _ := NewKeyExchange(CURVE_25519, nil)
	k.Close()
	if !bytes.Equal(k.(*x25519KE).scalar[:], make([]byte, 32)) {
		t.Error("private scalar not overwritten by Close")
	}
	if _, err := k.SharedSecret(peer.PublicValue()); !errors.Is(err, errKEClosed) {
		t.Errorf("SharedSecret after Close: %v, want errKEClosed", err)
	}
	if _, err := NewKeyExchange(CURVE_25519, bytes.NewReader(make([]byte, 31))); err == nil {
		t.Error("a short random source gave a key")
	}
}

// The public value before (crypto/ecdh, a Montgomery ladder) and after
// (fixed-base multiplication), in the same run.
func BenchmarkX25519PublicValue(b *testing.B) {
	s := make([]byte, 32)
	rand.Read(s)
	b.Run("crypto-ecdh", func(b *testing.B) {
		for b.Loop() {
			priv, _ := ecdh.X25519().NewPrivateKey(s)
			priv.PublicKey().Bytes()
		}
	})
	b.Run("fixed-base", func(b *testing.B) {
		for b.Loop() {
			k, _ := newX25519FromPrivate(s)
			k.PublicValue()
		}
	})
}

// The shared secret: crypto/ecdh (which needs the private key, so pays its
// public-key ladder too) against our ladder.
func BenchmarkX25519SharedSecret(b *testing.B) {
	s := make([]byte, 32)
	rand.Read(s)
	peer, _ := NewKeyExchange(CURVE_25519, nil)
	u := peer.PublicValue()
	b.Run("crypto-ecdh", func(b *testing.B) {
		pub, _ := ecdh.X25519().NewPublicKey(u)
		for b.Loop() {
			priv, _ := ecdh.X25519().NewPrivateKey(s)
			priv.ECDH(pub)
		}
	})
	b.Run("ladder", func(b *testing.B) {
		k, _ := newX25519FromPrivate(s)
		for b.Loop() {
			k.SharedSecret(u)
		}
	})
}
