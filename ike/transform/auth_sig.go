package transform

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	_ "crypto/sha256" // hashes used through crypto.Hash
	_ "crypto/sha512"
)

// Digital Signature authentication (auth method 14, RFC 7427). The
// Authentication Data is
//
//	ASN.1 Length (1 octet) | AlgorithmIdentifier (DER) | Signature Value
//
// and the signature covers the SignedOctets of RFC 7296 section 2.15.
// RSA signatures are PKCS#1 v1.5 or RSASSA-PSS (RFC 4055 parameters),
// ECDSA signatures the DER Ecdsa-Sig-Value of RFC 5480, Ed25519 signatures
// pure EdDSA over the octets themselves (RFC 8420).

// HashAlgorithm is a hash of the SIGNATURE_HASH_ALGORITHMS notification
// (RFC 7427 section 4; IANA "IKEv2 Hash Algorithms").
type HashAlgorithm uint16

// Hash algorithm IDs.
const (
	HashSHA1     HashAlgorithm = 1
	HashSHA2_256 HashAlgorithm = 2
	HashSHA2_384 HashAlgorithm = 3
	HashSHA2_512 HashAlgorithm = 4
	HashIdentity HashAlgorithm = 5 // RFC 8420, for Ed25519
)

func (h HashAlgorithm) String() string {
	switch h {
	case HashSHA1:
		return "SHA1"
	case HashSHA2_256:
		return "SHA2_256"
	case HashSHA2_384:
		return "SHA2_384"
	case HashSHA2_512:
		return "SHA2_512"
	case HashIdentity:
		return "IDENTITY"
	}
	return "HASH_" + strconv.Itoa(int(h))
}

// SupportedHashes are the hashes to announce in our
// SIGNATURE_HASH_ALGORITHMS notification, in order of preference.
var SupportedHashes = []HashAlgorithm{HashSHA2_256, HashSHA2_384, HashSHA2_512, HashIdentity}

func (h HashAlgorithm) crypto() crypto.Hash {
	switch h {
	case HashSHA2_256:
		return crypto.SHA256
	case HashSHA2_384:
		return crypto.SHA384
	case HashSHA2_512:
		return crypto.SHA512
	}
	return 0
}

// SignatureAlgorithm is the public-key half of a signature scheme.
type SignatureAlgorithm uint8

// Signature algorithms.
const (
	SigRSAPKCS1 SignatureAlgorithm = iota + 1 // RSASSA-PKCS1-v1_5
	SigRSAPSS                                 // RSASSA-PSS, MGF1 with the same hash, salt = hash length
	SigECDSA
	SigEd25519
)

// SignatureScheme is what an RFC 7427 AlgorithmIdentifier names.
type SignatureScheme struct {
	Algorithm SignatureAlgorithm
	Hash      HashAlgorithm
}

// String names the scheme as strongSwan does in its logs.
func (s SignatureScheme) String() string {
	switch s.Algorithm {
	case SigRSAPKCS1:
		return "RSA_EMSA_PKCS1_" + s.Hash.String()
	case SigRSAPSS:
		return "RSA_EMSA_PSS_" + s.Hash.String()
	case SigECDSA:
		// charon: ECDSA_WITH_SHA256_DER, not SHA2_256 as elsewhere.
		return "ECDSA_WITH_" + strings.Replace(s.Hash.String(), "SHA2_", "SHA", 1) + "_DER"
	case SigEd25519:
		return "ED25519"
	}
	return "SIGNATURE_SCHEME_" + strconv.Itoa(int(s.Algorithm)) + "_" + s.Hash.String()
}

var (
	oidSHA256WithRSA   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11}
	oidSHA384WithRSA   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 12}
	oidSHA512WithRSA   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 13}
	oidRSASSAPSS       = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 10}
	oidMGF1            = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 8}
	oidECDSAWithSHA256 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}
	oidECDSAWithSHA384 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 3}
	oidECDSAWithSHA512 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 4}
	oidEd25519         = asn1.ObjectIdentifier{1, 3, 101, 112}
	oidSHA256          = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	oidSHA384          = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 2}
	oidSHA512          = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 3}
)

var hashOIDs = map[HashAlgorithm]asn1.ObjectIdentifier{
	HashSHA2_256: oidSHA256, HashSHA2_384: oidSHA384, HashSHA2_512: oidSHA512,
}

// The schemes whose AlgorithmIdentifier is a bare OID (parameters NULL or
// absent).
var plainSchemes = []struct {
	oid    asn1.ObjectIdentifier
	scheme SignatureScheme
	null   bool // we send NULL parameters (RFC 4055 section 5); else absent
}{
	{oidSHA256WithRSA, SignatureScheme{SigRSAPKCS1, HashSHA2_256}, true},
	{oidSHA384WithRSA, SignatureScheme{SigRSAPKCS1, HashSHA2_384}, true},
	{oidSHA512WithRSA, SignatureScheme{SigRSAPKCS1, HashSHA2_512}, true},
	{oidECDSAWithSHA256, SignatureScheme{SigECDSA, HashSHA2_256}, false},
	{oidECDSAWithSHA384, SignatureScheme{SigECDSA, HashSHA2_384}, false},
	{oidECDSAWithSHA512, SignatureScheme{SigECDSA, HashSHA2_512}, false},
	{oidEd25519, SignatureScheme{SigEd25519, HashIdentity}, false},
}

// pssParameters is RSASSA-PSS-params (RFC 4055 section 3.1).
type pssParameters struct {
	Hash         pkix.AlgorithmIdentifier `asn1:"explicit,tag:0"`
	MGF          pkix.AlgorithmIdentifier `asn1:"explicit,tag:1"`
	SaltLength   int                      `asn1:"optional,explicit,tag:2,default:20"`
	TrailerField int                      `asn1:"optional,explicit,tag:3,default:1"`
}

// ErrSignatureScheme is wrapped when an AlgorithmIdentifier is malformed,
// unknown, not acceptable, or does not fit the key.
var ErrSignatureScheme = errors.New("transform: unusable signature scheme")

// AlgorithmIdentifier returns the DER AlgorithmIdentifier RFC 7427 puts in
// front of the signature.
func (s SignatureScheme) AlgorithmIdentifier() ([]byte, error) {
	for _, p := range plainSchemes {
		if p.scheme == s {
			ai := pkix.AlgorithmIdentifier{Algorithm: p.oid}
			if p.null {
				ai.Parameters = asn1.NullRawValue
			}
			return asn1.Marshal(ai)
		}
	}
	if s.Algorithm == SigRSAPSS && hashOIDs[s.Hash] != nil {
		hashAI := pkix.AlgorithmIdentifier{Algorithm: hashOIDs[s.Hash], Parameters: asn1.NullRawValue}
		hashDER, err := asn1.Marshal(hashAI)
		if err != nil {
			return nil, err
		}
		params, err := asn1.Marshal(pssParameters{
			Hash:         hashAI,
			MGF:          pkix.AlgorithmIdentifier{Algorithm: oidMGF1, Parameters: asn1.RawValue{FullBytes: hashDER}},
			SaltLength:   s.Hash.crypto().Size(),
			TrailerField: 1,
		})
		if err != nil {
			return nil, err
		}
		return asn1.Marshal(pkix.AlgorithmIdentifier{Algorithm: oidRSASSAPSS, Parameters: asn1.RawValue{FullBytes: params}})
	}
	return nil, fmt.Errorf("%v: %w", s, ErrSignatureScheme)
}

// DefaultSignatureScheme picks the scheme we sign with for a key: RSASSA-PSS
// with SHA-256 for RSA, ECDSA with the hash matching the curve, Ed25519.
func DefaultSignatureScheme(pub crypto.PublicKey) (SignatureScheme, error) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return SignatureScheme{SigRSAPSS, HashSHA2_256}, nil
	case *ecdsa.PublicKey:
		switch k.Curve.Params().BitSize {
		case 256:
			return SignatureScheme{SigECDSA, HashSHA2_256}, nil
		case 384:
			return SignatureScheme{SigECDSA, HashSHA2_384}, nil
		case 521:
			return SignatureScheme{SigECDSA, HashSHA2_512}, nil
		}
	case ed25519.PublicKey:
		return SignatureScheme{SigEd25519, HashIdentity}, nil
	}
	return SignatureScheme{}, fmt.Errorf("key type %T: %w", pub, ErrSignatureScheme)
}

// fits reports whether the scheme can be used with the public key.
func (s SignatureScheme) fits(pub crypto.PublicKey) bool {
	switch pub.(type) {
	case *rsa.PublicKey:
		return s.Algorithm == SigRSAPKCS1 || s.Algorithm == SigRSAPSS
	case *ecdsa.PublicKey:
		return s.Algorithm == SigECDSA
	case ed25519.PublicKey:
		return s.Algorithm == SigEd25519
	}
	return false
}

// SignAuth returns the Authentication Data of a Digital Signature AUTH
// payload: the signature of signedOctets with key under scheme, preceded by
// the scheme's AlgorithmIdentifier and its length. rand is used by RSA-PSS
// (nil means crypto/rand).
func SignAuth(rand io.Reader, key crypto.Signer, scheme SignatureScheme, signedOctets []byte) ([]byte, error) {
	if rand == nil {
		rand = cryptoRand
	}
	if !scheme.fits(key.Public()) {
		return nil, fmt.Errorf("%v with a %T: %w", scheme, key.Public(), ErrSignatureScheme)
	}
	ai, err := scheme.AlgorithmIdentifier()
	if err != nil {
		return nil, err
	}
	var sig []byte
	if scheme.Algorithm == SigEd25519 {
		sig, err = key.Sign(rand, signedOctets, crypto.Hash(0))
	} else {
		h := scheme.Hash.crypto()
		d := h.New()
		d.Write(signedOctets)
		var opts crypto.SignerOpts = h
		if scheme.Algorithm == SigRSAPSS {
			opts = &rsa.PSSOptions{SaltLength: h.Size(), Hash: h}
		}
		sig, err = key.Sign(rand, d.Sum(nil), opts)
	}
	if err != nil {
		return nil, fmt.Errorf("sign AUTH with %v: %w", scheme, err)
	}
	return concat([]byte{byte(len(ai))}, ai, sig), nil
}

// VerifyAuth checks the Authentication Data of a peer's Digital Signature
// AUTH payload against its public key and the SignedOctets we computed for
// it. The AlgorithmIdentifier is parsed, not byte-compared: RSA and ECDSA
// identifiers may carry NULL or absent parameters, RSASSA-PSS parameters
// are read and must name SHA-2 with MGF1 over the same hash. If acceptable
// is not nil, the scheme's hash must be one of them (the hashes we
// announced in SIGNATURE_HASH_ALGORITHMS). It returns the scheme, for logs.
func VerifyAuth(pub crypto.PublicKey, authData, signedOctets []byte, acceptable []HashAlgorithm) (SignatureScheme, error) {
	if len(authData) < 1 || len(authData) < 1+int(authData[0]) {
		return SignatureScheme{}, fmt.Errorf("AUTH data too short: %w", ErrSignatureScheme)
	}
	aiDER, sig := authData[1:1+int(authData[0])], authData[1+int(authData[0]):]
	scheme, saltLen, err := parseAlgorithmIdentifier(aiDER)
	if err != nil {
		return SignatureScheme{}, err
	}
	if acceptable != nil && !slices.Contains(acceptable, scheme.Hash) {
		return scheme, fmt.Errorf("%v: hash %v not acceptable: %w", scheme, scheme.Hash, ErrSignatureScheme)
	}
	if !scheme.fits(pub) {
		return scheme, fmt.Errorf("%v with a %T: %w", scheme, pub, ErrSignatureScheme)
	}
	var ok bool
	if scheme.Algorithm == SigEd25519 {
		ok = ed25519.Verify(pub.(ed25519.PublicKey), signedOctets, sig)
	} else {
		h := scheme.Hash.crypto()
		d := h.New()
		d.Write(signedOctets)
		digest := d.Sum(nil)
		switch scheme.Algorithm {
		case SigRSAPKCS1:
			ok = rsa.VerifyPKCS1v15(pub.(*rsa.PublicKey), h, digest, sig) == nil
		case SigRSAPSS:
			ok = rsa.VerifyPSS(pub.(*rsa.PublicKey), h, digest, sig, &rsa.PSSOptions{SaltLength: saltLen, Hash: h}) == nil
		case SigECDSA:
			ok = ecdsa.VerifyASN1(pub.(*ecdsa.PublicKey), digest, sig)
		}
	}
	if !ok {
		return scheme, ErrAuthMismatch
	}
	return scheme, nil
}

// parseAlgorithmIdentifier maps a DER AlgorithmIdentifier to a scheme and,
// for RSASSA-PSS, the salt length.
func parseAlgorithmIdentifier(der []byte) (SignatureScheme, int, error) {
	var ai pkix.AlgorithmIdentifier
	rest, err := asn1.Unmarshal(der, &ai)
	if err != nil || len(rest) != 0 {
		return SignatureScheme{}, 0, fmt.Errorf("malformed AlgorithmIdentifier: %w", ErrSignatureScheme)
	}
	for _, p := range plainSchemes {
		if ai.Algorithm.Equal(p.oid) {
			if !absentOrNull(ai.Parameters) {
				return SignatureScheme{}, 0, fmt.Errorf("%v: unexpected parameters: %w", p.scheme, ErrSignatureScheme)
			}
			return p.scheme, 0, nil
		}
	}
	if !ai.Algorithm.Equal(oidRSASSAPSS) {
		return SignatureScheme{}, 0, fmt.Errorf("signature algorithm %v: %w", ai.Algorithm, ErrSignatureScheme)
	}
	var params pssParameters
	rest, err = asn1.Unmarshal(ai.Parameters.FullBytes, &params)
	if err != nil || len(rest) != 0 {
		return SignatureScheme{}, 0, fmt.Errorf("malformed RSASSA-PSS parameters: %w", ErrSignatureScheme)
	}
	var hash HashAlgorithm
	for h, oid := range hashOIDs {
		if params.Hash.Algorithm.Equal(oid) && absentOrNull(params.Hash.Parameters) {
			hash = h
		}
	}
	var mgfHash pkix.AlgorithmIdentifier
	if hash == 0 || !params.MGF.Algorithm.Equal(oidMGF1) {
		return SignatureScheme{}, 0, fmt.Errorf("RSASSA-PSS with hash %v, MGF %v: %w", params.Hash.Algorithm, params.MGF.Algorithm, ErrSignatureScheme)
	}
	if rest, err := asn1.Unmarshal(params.MGF.Parameters.FullBytes, &mgfHash); err != nil || len(rest) != 0 ||
		!mgfHash.Algorithm.Equal(hashOIDs[hash]) || !absentOrNull(mgfHash.Parameters) {
		return SignatureScheme{}, 0, fmt.Errorf("RSASSA-PSS: MGF1 hash differs from the message hash: %w", ErrSignatureScheme)
	}
	// A salt length of 0 becomes rsa.PSSSaltLengthAuto: Go cannot demand
	// an empty salt, and accepting any salt length costs nothing here.
	if params.TrailerField != 1 || params.SaltLength < 0 || params.SaltLength > 1024 {
		return SignatureScheme{}, 0, fmt.Errorf("RSASSA-PSS: trailer %d, salt length %d: %w", params.TrailerField, params.SaltLength, ErrSignatureScheme)
	}
	return SignatureScheme{SigRSAPSS, hash}, params.SaltLength, nil
}

func absentOrNull(v asn1.RawValue) bool {
	return len(v.FullBytes) == 0 || bytes.Equal(v.FullBytes, asn1.NullBytes)
}
