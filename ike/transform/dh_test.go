package transform

import (
	"bytes"
	"errors"
	"math/big"
	"testing"
)

// RFC 5903 section 8: the ECP test vectors, both directions. The shared
// secret is the x coordinate only (erratum 9 to RFC 5903).
func TestECPKnownAnswers(t *testing.T) {
	tests := []struct {
		id          KEID
		i, gix, giy string
		r, grx, gry string
		girx        string
	}{
		{ECP_256, // RFC 5903 8.1
			"c88f01f510d9ac3f70a292daa2316de544e9aab8afe84049c62a9c57862d1433",
			"dad0b65394221cf9b051e1feca5787d098dfe637fc90b9ef945d0c3772581180",
			"5271a0461cdb8252d61f1c456fa3e59ab1f45b33accf5f58389e0577b8990bb3",
			"c6ef9c5d78ae012a011164acb397ce2088685d8f06bf9be0b283ab46476bee53",
			"d12dfb5289c8d4f81208b70270398c342296970a0bccb74c736fc7554494bf63",
			"56fbf3ca366cc23e8157854c13c58d6aac23f046ada30f8353e74f33039872ab",
			"d6840f6b42f6edafd13116e0e12565202fef8e9ece7dce03812464d04b9442de"},
		{ECP_384, // RFC 5903 8.2
			"099f3c7034d4a2c699884d73a375a67f7624ef7c6b3c0f160647b67414dce655e35b538041e649ee3faef896783ab194",
			"667842d7d180ac2cde6f74f37551f55755c7645c20ef73e31634fe72b4c55ee6de3ac808acb4bdb4c88732aee95f41aa",
			"9482ed1fc0eeb9cafc4984625ccfc23f65032149e0e144ada024181535a0f38eeb9fcff3c2c947dae69b4c634573a81c",
			"41cb0779b4bdb85d47846725fbec3c9430fab46cc8dc5060855cc9bda0aa2942e0308312916b8ed2960e4bd55a7448fc",
			"e558dbef53eecde3d3fccfc1aea08a89a987475d12fd950d83cfa41732bc509d0d1ac43a0336def96fda41d0774a3571",
			"dcfbec7aacf3196472169e838430367f66eebe3c6e70c416dd5f0c68759dd1fff83fa40142209dff5eaad96db9e6386c",
			"11187331c279962d93d604243fd592cb9d0a926f422e47187521287e7156c5c4d603135569b9e9d09cf5d4a270f59746"},
		{ECP_521, // RFC 5903 8.3
			"0037ade9319a89f4dabdb3ef411aaccca5123c61acab57b5393dce47608172a095aa85a30fe1c2952c6771d937ba9777f5957b2639bab072462f68c27a57382d4a52",
			"0015417e84dbf28c0ad3c278713349dc7df153c897a1891bd98bab4357c9ecbee1e3bf42e00b8e380aeae57c2d107564941885942af5a7f4601723c4195d176ced3e",
			"017cae20b6641d2eeb695786d8c946146239d099e18e1d5a514c739d7cb4a10ad8a788015ac405d7799dc75e7b7d5b6cf2261a6a7f1507438bf01beb6ca3926f9582",
			"0145ba99a847af43793fdd0e872e7cdfa16be30fdc780f97bccc3f078380201e9c677d600b343757a3bdbf2a3163e4c2f869cca7458aa4a4effc311f5cb151685eb9",
			"00d0b3975ac4b799f5bea16d5e13e9af971d5e9b984c9f39728b5e5739735a219b97c356436adc6e95bb0352f6be64a6c2912d4ef2d0433ced2b6171640012d9460f",
			"015c68226383956e3bd066e797b623c27ce0eac2f551a10c2c724d9852077b87220b6536c5c408a1d2aebb8e86d678ae49cb57091f4732296579ab44fcd17f0fc56a",
			"01144c7d79ae6956bc8edb8e7c787c4521cb086fa64407f97894e5e6b2d79b04d1427e73ca4baa240a34786859810c06b3c715a3a8cc3151f2bee417996d19f3ddea"},
	}
	for _, tc := range tests {
		ki, err := newECPFromPrivate(tc.id, unhex(t, tc.i))
		if err != nil {
			t.Fatal(err)
		}
		kr, err := newECPFromPrivate(tc.id, unhex(t, tc.r))
		if err != nil {
			t.Fatal(err)
		}
		equalHex(t, tc.id.String()+" g^i", ki.PublicValue(), tc.gix+tc.giy)
		equalHex(t, tc.id.String()+" g^r", kr.PublicValue(), tc.grx+tc.gry)
		if len(ki.PublicValue()) != tc.id.PublicValueSize() {
			t.Errorf("%v: public value size %d, PublicValueSize %d", tc.id, len(ki.PublicValue()), tc.id.PublicValueSize())
		}
		zi, err := ki.SharedSecret(unhex(t, tc.grx+tc.gry))
		if err != nil {
			t.Fatal(err)
		}
		zr, err := kr.SharedSecret(unhex(t, tc.gix+tc.giy))
		if err != nil {
			t.Fatal(err)
		}
		equalHex(t, tc.id.String()+" g^ir (initiator)", zi, tc.girx)
		equalHex(t, tc.id.String()+" g^ir (responder)", zr, tc.girx)
	}
}

// RFC 7748 section 6.1 (Alice and Bob) and section 5.2 (first scalar
// multiplication vector).
func TestX25519KnownAnswers(t *testing.T) {
	alice, _ := newX25519FromPrivate(unhex(t, "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"))
	bob, _ := newX25519FromPrivate(unhex(t, "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"))
	equalHex(t, "Alice's public key", alice.PublicValue(), "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
	equalHex(t, "Bob's public key", bob.PublicValue(), "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f")
	for _, k := range []*x25519KE{alice, bob} {
		peer := bob.PublicValue()
		if k == bob {
			peer = alice.PublicValue()
		}
		z, err := k.SharedSecret(peer)
		if err != nil {
			t.Fatal(err)
		}
		equalHex(t, "K", z, "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742")
	}
	k, _ := newX25519FromPrivate(unhex(t, "a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4"))
	z, err := k.SharedSecret(unhex(t, "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c"))
	if err != nil {
		t.Fatal(err)
	}
	equalHex(t, "RFC 7748 5.2", z, "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552")
}

// machinPi returns floor(pi * 2^bits) by Machin's formula, to rebuild the
// RFC 3526 primes independently of the constants in dh_modp.go.
func machinPi(bits uint) *big.Int {
	const guard = 64
	one := new(big.Int).Lsh(big.NewInt(1), bits+guard)
	atanInv := func(x int64) *big.Int {
		sum := new(big.Int).Quo(one, big.NewInt(x))
		term := new(big.Int).Set(sum)
		x2 := big.NewInt(x * x)
		for n, sign := int64(3), -1; term.Sign() != 0; n, sign = n+2, -sign {
			term.Quo(term, x2)
			t := new(big.Int).Quo(term, big.NewInt(n))
			if sign < 0 {
				sum.Sub(sum, t)
			} else {
				sum.Add(sum, t)
			}
		}
		return sum
	}
	pi := new(big.Int).Mul(big.NewInt(16), atanInv(5))
	pi.Sub(pi, new(big.Int).Mul(big.NewInt(4), atanInv(239)))
	return pi.Rsh(pi, guard)
}

// RFC 3526: p = 2^n - 2^(n-64) - 1 + 2^64 * ( [2^(n-130) pi] + c ), and p
// and (p-1)/2 are prime.
func TestMODPPrimes(t *testing.T) {
	pi := machinPi(4096)
	for id, f := range map[KEID]struct {
		n uint
		c int64
	}{MODP_1024: {1024, 129093}, MODP_1536: {1536, 741804}, MODP_2048: {2048, 124476}, MODP_3072: {3072, 1690314}, MODP_4096: {4096, 240904}} {
		two := big.NewInt(2)
		p := new(big.Int).Exp(two, big.NewInt(int64(f.n)), nil)
		p.Sub(p, new(big.Int).Exp(two, big.NewInt(int64(f.n-64)), nil))
		p.Sub(p, big.NewInt(1))
		m := new(big.Int).Rsh(pi, 4096-(f.n-130))
		m.Add(m, big.NewInt(f.c))
		p.Add(p, m.Lsh(m, 64))
		g := modpGroups[id]
		if p.Cmp(g.p) != 0 {
			t.Errorf("%v: prime differs from RFC 3526's formula", id)
		}
		q := new(big.Int).Rsh(g.p, 1)
		if testing.Short() {
			continue
		}
		if !g.p.ProbablyPrime(0) || !q.ProbablyPrime(0) { // Baillie-PSW
			t.Errorf("%v: not a safe prime", id)
		}
		if g.size*8 != int(f.n) {
			t.Errorf("%v: size %d bytes", id, g.size)
		}
	}
}

// Computed MODP check: g^x for a known x, and both sides agreeing on
// g^(xy) mod p computed directly.
func TestMODPComputed(t *testing.T) {
	for _, id := range []KEID{MODP_1024, MODP_1536, MODP_2048, MODP_3072, MODP_4096} {
		g := modpGroups[id]
		x, y := big.NewInt(0x1234567), new(big.Int).SetBytes(bytes.Repeat([]byte{0xa5}, 32))
		kx, ky := newMODPFromPrivate(g, new(big.Int).Set(x)), newMODPFromPrivate(g, new(big.Int).Set(y))
		pubX := kx.PublicValue()
		if len(pubX) != id.PublicValueSize() || new(big.Int).SetBytes(pubX).Cmp(new(big.Int).Exp(big.NewInt(2), x, g.p)) != 0 {
			t.Fatalf("%v: g^x wrong", id)
		}
		zx, err := kx.SharedSecret(ky.PublicValue())
		if err != nil {
			t.Fatal(err)
		}
		zy, err := ky.SharedSecret(pubX)
		if err != nil {
			t.Fatal(err)
		}
		want := new(big.Int).Exp(big.NewInt(2), new(big.Int).Mul(x, y), g.p).FillBytes(make([]byte, g.size))
		if !bytes.Equal(zx, want) || !bytes.Equal(zy, want) {
			t.Errorf("%v: shared secrets disagree", id)
		}
		// A tiny x makes g^x short: it must still be sent padded.
		small := newMODPFromPrivate(g, big.NewInt(2))
		if pv := small.PublicValue(); len(pv) != g.size || pv[len(pv)-1] != 4 || pv[0] != 0 {
			t.Errorf("%v: g^2 not zero-padded to the modulus length", id)
		}
	}
}

func TestKeyExchangeAgreement(t *testing.T) {
	for _, id := range []KEID{MODP_1024, MODP_1536, MODP_2048, ECP_256, ECP_384, ECP_521, CURVE_25519} {
		a, err := NewKeyExchange(id, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, err := NewKeyExchange(id, nil)
		if err != nil {
			t.Fatal(err)
		}
		if a.Method() != id || len(a.PublicValue()) != id.PublicValueSize() {
			t.Errorf("%v: method %v, public value %d bytes", id, a.Method(), len(a.PublicValue()))
		}
		za, err := a.SharedSecret(b.PublicValue())
		if err != nil {
			t.Fatal(err)
		}
		zb, err := b.SharedSecret(a.PublicValue())
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(za, zb) {
			t.Errorf("%v: shared secrets differ", id)
		}
		a.Close()
		if _, err := a.SharedSecret(b.PublicValue()); err == nil {
			t.Errorf("%v: SharedSecret after Close", id)
		}
	}
	if _, err := NewKeyExchange(MODP_768, nil); !errors.Is(err, ErrUnsupported) {
		t.Errorf("MODP_768: %v", err)
	}
}

func wantInvalid(t *testing.T, what string, k KeyExchange, peer []byte) {
	t.Helper()
	if _, err := k.SharedSecret(peer); !errors.Is(err, ErrInvalidPublicValue) {
		t.Errorf("%v %s: %v, want ErrInvalidPublicValue", k.Method(), what, err)
	}
}

func TestMODPRejectsPublicValues(t *testing.T) {
	for _, id := range []KEID{MODP_1024, MODP_1536, MODP_2048, MODP_3072, MODP_4096} {
		k, err := NewKeyExchange(id, nil)
		if err != nil {
			t.Fatal(err)
		}
		g := modpGroups[id]
		val := func(v *big.Int) []byte { return v.FillBytes(make([]byte, g.size)) }
		wantInvalid(t, "y = 0", k, val(big.NewInt(0)))
		wantInvalid(t, "y = 1", k, val(big.NewInt(1)))
		wantInvalid(t, "y = p-1", k, val(g.pMinus1))
		wantInvalid(t, "y = p", k, val(g.p))
		wantInvalid(t, "y = p+1", k, val(new(big.Int).Add(g.p, big.NewInt(1))))
		wantInvalid(t, "all ones", k, bytes.Repeat([]byte{0xff}, g.size))
		good := val(big.NewInt(2))
		wantInvalid(t, "one byte short", k, good[1:])
		wantInvalid(t, "one byte long", k, append([]byte{0}, good...))
		wantInvalid(t, "empty", k, nil)
		if _, err := k.SharedSecret(good); err != nil {
			t.Errorf("%v: y = 2 refused: %v", id, err)
		}
	}
}

func TestECPRejectsPublicValues(t *testing.T) {
	for _, id := range []KEID{ECP_256, ECP_384, ECP_521} {
		k, _ := NewKeyExchange(id, nil)
		peer, _ := NewKeyExchange(id, nil)
		good := peer.PublicValue()
		offCurve := append([]byte(nil), good...)
		offCurve[len(offCurve)-1] ^= 1
		wantInvalid(t, "point off the curve", k, offCurve)
		wantInvalid(t, "all-zero (no encoding of the identity)", k, make([]byte, len(good)))
		wantInvalid(t, "x only", k, good[:len(good)/2])
		wantInvalid(t, "SEC 1 prefix included", k, append([]byte{4}, good...))
		wantInvalid(t, "one byte short", k, good[1:])
		outOfField := bytes.Repeat([]byte{0xff}, len(good)) // coordinates >= p
		wantInvalid(t, "coordinates out of the field", k, outOfField)
		if _, err := k.SharedSecret(good); err != nil {
			t.Errorf("%v: valid point refused: %v", id, err)
		}
	}
}

func TestX25519RejectsPublicValues(t *testing.T) {
	k, _ := NewKeyExchange(CURVE_25519, nil)
	lowOrder := []string{
		"0000000000000000000000000000000000000000000000000000000000000000", // 0
		"0100000000000000000000000000000000000000000000000000000000000000", // 1
		"e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800", // order 8
		"5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157", // order 8
		"edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // p, i.e. 0
		"eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // p+1, i.e. 1
	}
	for _, u := range lowOrder {
		wantInvalid(t, "low-order u "+u[:8], k, unhex(t, u))
	}
	wantInvalid(t, "31 bytes", k, make([]byte, 31))
	wantInvalid(t, "33 bytes", k, make([]byte, 33))
}

func BenchmarkKeyExchange(b *testing.B) {
	for _, id := range []KEID{MODP_2048, MODP_3072, MODP_4096, ECP_256, ECP_384, ECP_521, CURVE_25519} {
		peer, _ := NewKeyExchange(id, nil)
		pub := peer.PublicValue()
		b.Run(id.String(), func(b *testing.B) {
			for b.Loop() {
				k, err := NewKeyExchange(id, nil)
				if err != nil {
					b.Fatal(err)
				}
				k.PublicValue()
				if _, err := k.SharedSecret(pub); err != nil {
					b.Fatal(err)
				}
				k.Close()
			}
		})
	}
}
