package transform

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"sync"
	"testing"
)

func TestPSKAuth(t *testing.T) {
	msg, nonce := []byte("IKE_SA_INIT request as sent"), bytes.Repeat([]byte{0x42}, 32)
	skp := bytes.Repeat([]byte{0x17}, 32)
	id := []byte{2, 0, 0, 0, 'v', 'p', 'n', '.', 'e', 'x', 'a', 'm', 'p', 'l', 'e'} // ID_FQDN
	octets, err := SignedOctets(PRF_HMAC_SHA2_256, msg, nonce, skp, id)
	if err != nil {
		t.Fatal(err)
	}
	m := hmac.New(sha256.New, skp)
	m.Write(id)
	if !bytes.Equal(octets, concat(msg, nonce, m.Sum(nil))) {
		t.Fatal("SignedOctets is not RealMessage | Nonce | prf(SK_p, RestOfIDPayload)")
	}
	secret := []byte("correct horse battery staple")
	auth, err := PSKAuth(PRF_HMAC_SHA2_256, secret, octets)
	if err != nil {
		t.Fatal(err)
	}
	inner := hmac.New(sha256.New, secret)
	inner.Write([]byte("Key Pad for IKEv2"))
	outer := hmac.New(sha256.New, inner.Sum(nil))
	outer.Write(octets)
	if !bytes.Equal(auth, outer.Sum(nil)) {
		t.Fatal("AUTH is not prf(prf(secret, \"Key Pad for IKEv2\"), SignedOctets)")
	}
	if err := VerifyPSKAuth(PRF_HMAC_SHA2_256, secret, octets, auth); err != nil {
		t.Error(err)
	}
	auth[0] ^= 1
	if err := VerifyPSKAuth(PRF_HMAC_SHA2_256, secret, octets, auth); err != ErrAuthMismatch {
		t.Errorf("tampered AUTH: %v", err)
	}
	// AES-XCBC-PRF-128 takes a secret of any length (RFC 4434 key rule).
	if _, err := PSKAuth(PRF_AES128_XCBC, bytes.Repeat(secret, 3), octets); err != nil {
		t.Error(err)
	}
}

// The DER AlgorithmIdentifiers of RFC 7427 appendix A (PKCS#1 v1.5, ECDSA)
// and RFC 8420 (Ed25519). For RSASSA-PSS we send strict DER, which leaves
// out the trailerField equal to its DEFAULT; the test below checks that the
// form with an explicit trailerField is accepted too.
func TestAlgorithmIdentifierDER(t *testing.T) {
	for s, want := range map[SignatureScheme]string{
		{SigRSAPKCS1, HashSHA2_256}: "300d06092a864886f70d01010b0500",
		{SigRSAPKCS1, HashSHA2_384}: "300d06092a864886f70d01010c0500",
		{SigRSAPKCS1, HashSHA2_512}: "300d06092a864886f70d01010d0500",
		{SigECDSA, HashSHA2_256}:    "300a06082a8648ce3d040302",
		{SigECDSA, HashSHA2_384}:    "300a06082a8648ce3d040303",
		{SigECDSA, HashSHA2_512}:    "300a06082a8648ce3d040304",
		{SigEd25519, HashIdentity}:  "300506032b6570",
		{SigRSAPSS, HashSHA2_256}: "304106092a864886f70d01010a3034a00f300d06096086480165030402010500" +
			"a11c301a06092a864886f70d010108300d06096086480165030402010500a203020120",
	} {
		der, err := s.AlgorithmIdentifier()
		if err != nil {
			t.Fatal(err)
		}
		equalHex(t, s.String(), der, want)
		got, _, err := parseAlgorithmIdentifier(der)
		if err != nil || got != s {
			t.Errorf("%v: parsed back as %v (%v)", s, got, err)
		}
	}
}

// RFC 8032 section 7.1, TEST 1 (empty message): Ed25519 is deterministic,
// so the whole Authentication Data is known.
func TestSignAuthEd25519KnownAnswer(t *testing.T) {
	key := ed25519.NewKeyFromSeed(unhex(t, "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"))
	equalHex(t, "public key", key.Public().(ed25519.PublicKey), "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
	auth, err := SignAuth(nil, key, SignatureScheme{SigEd25519, HashIdentity}, nil)
	if err != nil {
		t.Fatal(err)
	}
	equalHex(t, "AUTH data", auth, "07 300506032b6570"+
		"e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b")
}

var (
	rsaTestKeyOnce sync.Once
	rsaTestKey     *rsa.PrivateKey
)

func testSigners(t *testing.T) map[string]crypto.Signer {
	t.Helper()
	rsaTestKeyOnce.Do(func() {
		var err error
		if rsaTestKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			t.Fatal(err)
		}
	})
	rsaKey := rsaTestKey
	signers := map[string]crypto.Signer{"rsa": rsaKey}
	for name, c := range map[string]elliptic.Curve{"p256": elliptic.P256(), "p384": elliptic.P384(), "p521": elliptic.P521()} {
		k, err := ecdsa.GenerateKey(c, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		signers[name] = k
	}
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	signers["ed25519"] = ed
	return signers
}

func TestSignVerifyAuth(t *testing.T) {
	signers := testSigners(t)
	octets := []byte("RealMessage | Nonce | MACedID")
	cases := []struct {
		key    string
		scheme SignatureScheme
	}{
		{"rsa", SignatureScheme{SigRSAPKCS1, HashSHA2_256}},
		{"rsa", SignatureScheme{SigRSAPKCS1, HashSHA2_384}},
		{"rsa", SignatureScheme{SigRSAPKCS1, HashSHA2_512}},
		{"rsa", SignatureScheme{SigRSAPSS, HashSHA2_256}},
		{"rsa", SignatureScheme{SigRSAPSS, HashSHA2_384}},
		{"rsa", SignatureScheme{SigRSAPSS, HashSHA2_512}},
		{"p256", SignatureScheme{SigECDSA, HashSHA2_256}},
		{"p384", SignatureScheme{SigECDSA, HashSHA2_384}},
		{"p521", SignatureScheme{SigECDSA, HashSHA2_512}},
		{"ed25519", SignatureScheme{SigEd25519, HashIdentity}},
	}
	for _, c := range cases {
		key := signers[c.key]
		auth, err := SignAuth(nil, key, c.scheme, octets)
		if err != nil {
			t.Fatalf("%v: %v", c.scheme, err)
		}
		got, err := VerifyAuth(key.Public(), auth, octets, SupportedHashes)
		if err != nil || got != c.scheme {
			t.Errorf("%v: verify: %v %v", c.scheme, got, err)
		}
		if _, err := VerifyAuth(key.Public(), auth, append([]byte("x"), octets...), nil); err != ErrAuthMismatch {
			t.Errorf("%v: other octets: %v", c.scheme, err)
		}
		bad := append([]byte(nil), auth...)
		bad[len(bad)-1] ^= 1
		if _, err := VerifyAuth(key.Public(), bad, octets, nil); err == nil {
			t.Errorf("%v: flipped signature bit accepted", c.scheme)
		}
		if _, err := VerifyAuth(key.Public(), auth, octets, []HashAlgorithm{HashSHA1}); !errors.Is(err, ErrSignatureScheme) {
			t.Errorf("%v: hash not announced, yet: %v", c.scheme, err)
		}
		other := signers["p256"]
		if c.key == "p256" {
			other = signers["rsa"]
		}
		if _, err := VerifyAuth(other.Public(), auth, octets, nil); err == nil {
			t.Errorf("%v: verified with the wrong key", c.scheme)
		}
		if def, err := DefaultSignatureScheme(key.Public()); err != nil || !def.fits(key.Public()) {
			t.Errorf("%s: default scheme %v %v", c.key, def, err)
		}
	}
	if _, err := SignAuth(nil, signers["rsa"], SignatureScheme{SigECDSA, HashSHA2_256}, octets); !errors.Is(err, ErrSignatureScheme) {
		t.Errorf("ECDSA scheme with RSA key: %v", err)
	}
}

// The AlgorithmIdentifier is parsed, so equivalent encodings verify and
// wrong ones do not.
func TestVerifyAuthParsesAlgorithmIdentifier(t *testing.T) {
	signers := testSigners(t)
	octets := []byte("signed octets")
	resign := func(key crypto.Signer, scheme SignatureScheme, ai []byte) []byte {
		auth, err := SignAuth(nil, key, scheme, octets)
		if err != nil {
			t.Fatal(err)
		}
		sig := auth[1+int(auth[0]):]
		return concat([]byte{byte(len(ai))}, ai, sig)
	}
	mustDER := func(v any) []byte {
		b, err := asn1.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	sha256AbsentParams := mustDER(pkix.AlgorithmIdentifier{Algorithm: oidSHA256})
	accept := map[string]struct {
		key    string
		scheme SignatureScheme
		ai     []byte
	}{
		"PKCS#1 without NULL": {"rsa", SignatureScheme{SigRSAPKCS1, HashSHA2_256}, mustDER(pkix.AlgorithmIdentifier{Algorithm: oidSHA256WithRSA})},
		"ECDSA with NULL":     {"p256", SignatureScheme{SigECDSA, HashSHA2_256}, mustDER(pkix.AlgorithmIdentifier{Algorithm: oidECDSAWithSHA256, Parameters: asn1.NullRawValue})},
		"PSS hashes without NULL": {"rsa", SignatureScheme{SigRSAPSS, HashSHA2_256}, mustDER(pkix.AlgorithmIdentifier{Algorithm: oidRSASSAPSS,
			Parameters: asn1.RawValue{FullBytes: mustDER(pssParameters{
				Hash: pkix.AlgorithmIdentifier{Algorithm: oidSHA256}, SaltLength: 32, TrailerField: 1,
				MGF: pkix.AlgorithmIdentifier{Algorithm: oidMGF1, Parameters: asn1.RawValue{FullBytes: sha256AbsentParams}}})}})},
	}
	accept["PSS with explicit trailerField"] = struct {
		key    string
		scheme SignatureScheme
		ai     []byte
	}{"rsa", SignatureScheme{SigRSAPSS, HashSHA2_256}, unhex(t, "304606092a864886f70d01010a3039a00f300d06096086480165030402010500"+
		"a11c301a06092a864886f70d010108300d06096086480165030402010500a203020120a303020101")}
	for name, c := range accept {
		if got, err := VerifyAuth(signers[c.key].Public(), resign(signers[c.key], c.scheme, c.ai), octets, nil); err != nil || got != c.scheme {
			t.Errorf("%s: %v %v", name, got, err)
		}
	}

	pss := func(hash, mgfHash asn1.ObjectIdentifier, salt int) []byte {
		return mustDER(pkix.AlgorithmIdentifier{Algorithm: oidRSASSAPSS,
			Parameters: asn1.RawValue{FullBytes: mustDER(pssParameters{
				Hash: pkix.AlgorithmIdentifier{Algorithm: hash, Parameters: asn1.NullRawValue}, SaltLength: salt, TrailerField: 1,
				MGF: pkix.AlgorithmIdentifier{Algorithm: oidMGF1, Parameters: asn1.RawValue{FullBytes: mustDER(
					pkix.AlgorithmIdentifier{Algorithm: mgfHash, Parameters: asn1.NullRawValue})}}})}})
	}
	good, _ := SignatureScheme{SigRSAPKCS1, HashSHA2_256}.AlgorithmIdentifier()
	refuse := map[string][]byte{
		"sha1WithRSAEncryption": mustDER(pkix.AlgorithmIdentifier{Algorithm: asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 5}, Parameters: asn1.NullRawValue}),
		"PSS MGF1 hash differs": pss(oidSHA256, oidSHA384, 32),
		"PSS with SHA-1":        pss(asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26}, asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26}, 20),
		"PSS without params":    mustDER(pkix.AlgorithmIdentifier{Algorithm: oidRSASSAPSS}),
		"PKCS#1 with junk parameters": mustDER(pkix.AlgorithmIdentifier{Algorithm: oidSHA256WithRSA,
			Parameters: asn1.RawValue{FullBytes: []byte{0x02, 0x01, 0x00}}}),
		"trailing bytes": append(append([]byte(nil), good...), 0),
		"not DER":        {0x30, 0x80, 0x00},
	}
	key := signers["rsa"]
	for name, ai := range refuse {
		auth := resign(key, SignatureScheme{SigRSAPKCS1, HashSHA2_256}, ai)
		if _, err := VerifyAuth(key.Public(), auth, octets, nil); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	for _, short := range [][]byte{nil, {0x0f}, {0x0f, 0x30}} {
		if _, err := VerifyAuth(key.Public(), short, octets, nil); !errors.Is(err, ErrSignatureScheme) {
			t.Errorf("short AUTH data %x: %v", short, err)
		}
	}
}

// Scheme names are charon's, which operators grep for.
func TestSignatureSchemeNames(t *testing.T) {
	for _, tc := range []struct {
		s    SignatureScheme
		want string
	}{
		{SignatureScheme{SigECDSA, HashSHA2_256}, "ECDSA_WITH_SHA256_DER"},
		{SignatureScheme{SigECDSA, HashSHA2_384}, "ECDSA_WITH_SHA384_DER"},
		{SignatureScheme{SigRSAPKCS1, HashSHA2_256}, "RSA_EMSA_PKCS1_SHA2_256"},
		{SignatureScheme{SigEd25519, HashIdentity}, "ED25519"},
	} {
		if got := tc.s.String(); got != tc.want {
			t.Errorf("%v: %q, want %q", tc.s, got, tc.want)
		}
	}
}
