package transform

import "strconv"

// TransformType is the Transform Type field of an IKEv2 Transform
// substructure (RFC 7296 section 3.3.2; "KE" since RFC 9370).
type TransformType uint8

// Transform types.
const (
	TransformENCR  TransformType = 1 // Encryption Algorithm
	TransformPRF   TransformType = 2 // Pseudorandom Function
	TransformINTEG TransformType = 3 // Integrity Algorithm
	TransformKE    TransformType = 4 // Key Exchange Method (Diffie-Hellman group)
	TransformESN   TransformType = 5 // Extended Sequence Numbers
	// TransformADDKE1 to TransformADDKE7 are the Additional Key Exchanges
	// 1 to 7 of RFC 9370 (types 6 to 12): their IDs are those of type
	// KE, and NONE (0) makes one optional.
	TransformADDKE1 TransformType = 6
	TransformADDKE7 TransformType = 12
)

// IsAdditionalKE reports whether t is one of ADDKE1 to ADDKE7.
func (t TransformType) IsAdditionalKE() bool { return t >= TransformADDKE1 && t <= TransformADDKE7 }

// AdditionalKE returns the type of the n-th additional key exchange, 1 to 7.
func AdditionalKE(n int) TransformType { return TransformADDKE1 + TransformType(n-1) }

func (t TransformType) String() string {
	switch t {
	case TransformENCR:
		return "ENCR"
	case TransformPRF:
		return "PRF"
	case TransformINTEG:
		return "INTEG"
	case TransformKE:
		return "KE"
	case TransformESN:
		return "ESN"
	}
	if t.IsAdditionalKE() {
		return "ADDKE" + strconv.Itoa(int(t-TransformADDKE1)+1)
	}
	return "TRANSFORM_TYPE_" + strconv.Itoa(int(t))
}

// EncrID is a Transform ID of type ENCR.
type EncrID uint16

// Encryption algorithm IDs (IANA "Transform Type 1"). Only ENCR_AES_CBC,
// the AES-GCM variants and ENCR_CHACHA20_POLY1305 are implemented; the others
// are named so that logs of a peer's proposals are readable.
const (
	ENCR_DES                EncrID = 2
	ENCR_3DES               EncrID = 3
	ENCR_CAST               EncrID = 6
	ENCR_BLOWFISH           EncrID = 7
	ENCR_NULL               EncrID = 11
	ENCR_AES_CBC            EncrID = 12
	ENCR_AES_CTR            EncrID = 13
	ENCR_AES_CCM_8          EncrID = 14
	ENCR_AES_CCM_12         EncrID = 15
	ENCR_AES_CCM_16         EncrID = 16
	ENCR_AES_GCM_8          EncrID = 18
	ENCR_AES_GCM_12         EncrID = 19
	ENCR_AES_GCM_16         EncrID = 20
	ENCR_NULL_AUTH_AES_GMAC EncrID = 21
	ENCR_CAMELLIA_CBC       EncrID = 23
	ENCR_CAMELLIA_CTR       EncrID = 24
	ENCR_CHACHA20_POLY1305  EncrID = 28
)

var encrNames = map[EncrID][2]string{ // IANA name, charon name
	ENCR_DES:                {"ENCR_DES", "DES"},
	ENCR_3DES:               {"ENCR_3DES", "3DES"},
	ENCR_CAST:               {"ENCR_CAST", "CAST"},
	ENCR_BLOWFISH:           {"ENCR_BLOWFISH", "BLOWFISH"},
	ENCR_NULL:               {"ENCR_NULL", "NULL"},
	ENCR_AES_CBC:            {"ENCR_AES_CBC", "AES_CBC"},
	ENCR_AES_CTR:            {"ENCR_AES_CTR", "AES_CTR"},
	ENCR_AES_CCM_8:          {"ENCR_AES_CCM_8", "AES_CCM_8"},
	ENCR_AES_CCM_12:         {"ENCR_AES_CCM_12", "AES_CCM_12"},
	ENCR_AES_CCM_16:         {"ENCR_AES_CCM_16", "AES_CCM_16"},
	ENCR_AES_GCM_8:          {"ENCR_AES_GCM_8", "AES_GCM_8"},
	ENCR_AES_GCM_12:         {"ENCR_AES_GCM_12", "AES_GCM_12"},
	ENCR_AES_GCM_16:         {"ENCR_AES_GCM_16", "AES_GCM_16"},
	ENCR_NULL_AUTH_AES_GMAC: {"ENCR_NULL_AUTH_AES_GMAC", "NULL_AES_GMAC"},
	ENCR_CAMELLIA_CBC:       {"ENCR_CAMELLIA_CBC", "CAMELLIA_CBC"},
	ENCR_CAMELLIA_CTR:       {"ENCR_CAMELLIA_CTR", "CAMELLIA_CTR"},
	ENCR_CHACHA20_POLY1305:  {"ENCR_CHACHA20_POLY1305", "CHACHA20_POLY1305"},
}

func (id EncrID) String() string { return name(encrNames, id, 0, "ENCR_") }

// IsAEAD reports whether the algorithm is a combined-mode cipher, which
// negotiates no integrity algorithm (RFC 5282).
func (id EncrID) IsAEAD() bool {
	switch id {
	case ENCR_AES_CCM_8, ENCR_AES_CCM_12, ENCR_AES_CCM_16,
		ENCR_AES_GCM_8, ENCR_AES_GCM_12, ENCR_AES_GCM_16,
		ENCR_NULL_AUTH_AES_GMAC, ENCR_CHACHA20_POLY1305:
		return true
	}
	return false
}

// Supported reports whether this package implements the algorithm with the
// given Key Length attribute (bits; 0 when the attribute is absent).
func (id EncrID) Supported(keyBits uint16) bool {
	_, err := encrKeySize(id, keyBits)
	return err == nil
}

// PRFID is a Transform ID of type PRF.
type PRFID uint16

// Pseudorandom function IDs (IANA "Transform Type 2").
const (
	PRF_HMAC_MD5      PRFID = 1
	PRF_HMAC_SHA1     PRFID = 2
	PRF_HMAC_TIGER    PRFID = 3
	PRF_AES128_XCBC   PRFID = 4
	PRF_HMAC_SHA2_256 PRFID = 5
	PRF_HMAC_SHA2_384 PRFID = 6
	PRF_HMAC_SHA2_512 PRFID = 7
	PRF_AES128_CMAC   PRFID = 8
)

var prfNames = map[PRFID][2]string{
	PRF_HMAC_MD5:      {"PRF_HMAC_MD5", "PRF_HMAC_MD5"},
	PRF_HMAC_SHA1:     {"PRF_HMAC_SHA1", "PRF_HMAC_SHA1"},
	PRF_HMAC_TIGER:    {"PRF_HMAC_TIGER", "PRF_HMAC_TIGER"},
	PRF_AES128_XCBC:   {"PRF_AES128_XCBC", "PRF_AES128_XCBC"},
	PRF_HMAC_SHA2_256: {"PRF_HMAC_SHA2_256", "PRF_HMAC_SHA2_256"},
	PRF_HMAC_SHA2_384: {"PRF_HMAC_SHA2_384", "PRF_HMAC_SHA2_384"},
	PRF_HMAC_SHA2_512: {"PRF_HMAC_SHA2_512", "PRF_HMAC_SHA2_512"},
	PRF_AES128_CMAC:   {"PRF_AES128_CMAC", "PRF_AES128_CMAC"},
}

func (id PRFID) String() string { return name(prfNames, id, 0, "PRF_") }

// IntegID is a Transform ID of type INTEG.
type IntegID uint16

// Integrity algorithm IDs (IANA "Transform Type 3").
const (
	AUTH_NONE              IntegID = 0
	AUTH_HMAC_MD5_96       IntegID = 1
	AUTH_HMAC_SHA1_96      IntegID = 2
	AUTH_AES_XCBC_96       IntegID = 5
	AUTH_HMAC_MD5_128      IntegID = 6
	AUTH_HMAC_SHA1_160     IntegID = 7
	AUTH_AES_CMAC_96       IntegID = 8
	AUTH_AES_128_GMAC      IntegID = 9
	AUTH_AES_192_GMAC      IntegID = 10
	AUTH_AES_256_GMAC      IntegID = 11
	AUTH_HMAC_SHA2_256_128 IntegID = 12
	AUTH_HMAC_SHA2_384_192 IntegID = 13
	AUTH_HMAC_SHA2_512_256 IntegID = 14
)

var integNames = map[IntegID][2]string{
	AUTH_NONE:              {"AUTH_NONE", "NONE"},
	AUTH_HMAC_MD5_96:       {"AUTH_HMAC_MD5_96", "HMAC_MD5_96"},
	AUTH_HMAC_SHA1_96:      {"AUTH_HMAC_SHA1_96", "HMAC_SHA1_96"},
	AUTH_AES_XCBC_96:       {"AUTH_AES_XCBC_96", "AES_XCBC_96"},
	AUTH_HMAC_MD5_128:      {"AUTH_HMAC_MD5_128", "HMAC_MD5_128"},
	AUTH_HMAC_SHA1_160:     {"AUTH_HMAC_SHA1_160", "HMAC_SHA1_160"},
	AUTH_AES_CMAC_96:       {"AUTH_AES_CMAC_96", "AES_CMAC_96"},
	AUTH_AES_128_GMAC:      {"AUTH_AES_128_GMAC", "AES_128_GMAC"},
	AUTH_AES_192_GMAC:      {"AUTH_AES_192_GMAC", "AES_192_GMAC"},
	AUTH_AES_256_GMAC:      {"AUTH_AES_256_GMAC", "AES_256_GMAC"},
	AUTH_HMAC_SHA2_256_128: {"AUTH_HMAC_SHA2_256_128", "HMAC_SHA2_256_128"},
	AUTH_HMAC_SHA2_384_192: {"AUTH_HMAC_SHA2_384_192", "HMAC_SHA2_384_192"},
	AUTH_HMAC_SHA2_512_256: {"AUTH_HMAC_SHA2_512_256", "HMAC_SHA2_512_256"},
}

func (id IntegID) String() string { return name(integNames, id, 0, "AUTH_") }

// KEID is a Transform ID of type KE: a Diffie-Hellman group.
type KEID uint16

// Key exchange method IDs (IANA "Transform Type 4"). MODP_2048/3072/4096,
// ECP_256/384/521, CURVE_25519 and ML_KEM_512/768/1024 are implemented.
const (
	KE_NONE       KEID = 0
	MODP_768      KEID = 1
	MODP_1024     KEID = 2
	MODP_1536     KEID = 5
	MODP_2048     KEID = 14
	MODP_3072     KEID = 15
	MODP_4096     KEID = 16
	MODP_6144     KEID = 17
	MODP_8192     KEID = 18
	ECP_256       KEID = 19
	ECP_384       KEID = 20
	ECP_521       KEID = 21
	MODP_1024_160 KEID = 22
	MODP_2048_224 KEID = 23
	MODP_2048_256 KEID = 24
	ECP_192       KEID = 25
	ECP_224       KEID = 26
	ECP_224_BP    KEID = 27
	ECP_256_BP    KEID = 28
	ECP_384_BP    KEID = 29
	ECP_512_BP    KEID = 30
	CURVE_25519   KEID = 31
	CURVE_448     KEID = 32
	// ML-KEM of FIPS 203 (draft-ietf-ipsecme-ikev2-mlkem, IANA).
	ML_KEM_512  KEID = 35
	ML_KEM_768  KEID = 36
	ML_KEM_1024 KEID = 37
)

var keNames = map[KEID][2]string{
	KE_NONE:       {"KE_NONE", "KE_NONE"},
	MODP_768:      {"MODP_768", "MODP_768"},
	MODP_1024:     {"MODP_1024", "MODP_1024"},
	MODP_1536:     {"MODP_1536", "MODP_1536"},
	MODP_2048:     {"MODP_2048", "MODP_2048"},
	MODP_3072:     {"MODP_3072", "MODP_3072"},
	MODP_4096:     {"MODP_4096", "MODP_4096"},
	MODP_6144:     {"MODP_6144", "MODP_6144"},
	MODP_8192:     {"MODP_8192", "MODP_8192"},
	ECP_256:       {"ECP_256", "ECP_256"},
	ECP_384:       {"ECP_384", "ECP_384"},
	ECP_521:       {"ECP_521", "ECP_521"},
	MODP_1024_160: {"MODP_1024_160", "MODP_1024_160"},
	MODP_2048_224: {"MODP_2048_224", "MODP_2048_224"},
	MODP_2048_256: {"MODP_2048_256", "MODP_2048_256"},
	ECP_192:       {"ECP_192", "ECP_192"},
	ECP_224:       {"ECP_224", "ECP_224"},
	ECP_224_BP:    {"ECP_224_BP", "ECP_224_BP"},
	ECP_256_BP:    {"ECP_256_BP", "ECP_256_BP"},
	ECP_384_BP:    {"ECP_384_BP", "ECP_384_BP"},
	ECP_512_BP:    {"ECP_512_BP", "ECP_512_BP"},
	CURVE_25519:   {"CURVE_25519", "CURVE_25519"},
	CURVE_448:     {"CURVE_448", "CURVE_448"},
	ML_KEM_512:    {"ML_KEM_512", "ML_KEM_512"},
	ML_KEM_768:    {"ML_KEM_768", "ML_KEM_768"},
	ML_KEM_1024:   {"ML_KEM_1024", "ML_KEM_1024"},
}

func (id KEID) String() string { return name(keNames, id, 0, "KE_") }

// ESNID is a Transform ID of type ESN.
type ESNID uint16

// Extended Sequence Numbers transform IDs (IANA "Transform Type 5").
const (
	NO_ESN ESNID = 0
	ESN    ESNID = 1
)

var esnNames = map[ESNID][2]string{
	NO_ESN: {"NO_ESN", "NO_EXT_SEQ"},
	ESN:    {"ESN", "EXT_SEQ"},
}

func (id ESNID) String() string { return name(esnNames, id, 0, "ESN_") }

// Transform is one transform as negotiated in an SA payload.
type Transform struct {
	Type TransformType
	ID   uint16
	// KeyLength is the Key Length attribute in bits, 0 when absent.
	KeyLength uint16
}

// String returns the transform as charon logs it, for example
// "AES_CBC_128", "HMAC_SHA2_256_128", "PRF_HMAC_SHA2_256", "CURVE_25519",
// "KE1_ML_KEM_768" (an additional key exchange).
func (t Transform) String() string { return string(t.appendName(nil)) }

func (t Transform) appendName(b []byte) []byte {
	b = append(b, t.charonName()...)
	if t.KeyLength != 0 {
		b = append(b, '_')
		b = strconv.AppendUint(b, uint64(t.KeyLength), 10)
	}
	return b
}

func (t Transform) charonName() string {
	switch t.Type {
	case TransformENCR:
		return name(encrNames, EncrID(t.ID), 1, "UNKNOWN_1_")
	case TransformPRF:
		return name(prfNames, PRFID(t.ID), 1, "UNKNOWN_2_")
	case TransformINTEG:
		return name(integNames, IntegID(t.ID), 1, "UNKNOWN_3_")
	case TransformKE:
		return name(keNames, KEID(t.ID), 1, "UNKNOWN_4_")
	case TransformESN:
		return name(esnNames, ESNID(t.ID), 1, "UNKNOWN_5_")
	}
	if t.Type.IsAdditionalKE() {
		// KE1_KE_NONE for an optional exchange, as charon lists it.
		n := strconv.Itoa(int(t.Type-TransformADDKE1) + 1)
		return "KE" + n + "_" + name(keNames, KEID(t.ID), 1, "UNKNOWN_4_")
	}
	return "UNKNOWN_" + strconv.Itoa(int(t.Type)) + "_" + strconv.Itoa(int(t.ID))
}

// name looks an ID up in a table of {IANA name, charon name} pairs; unknown
// IDs are printed as prefix followed by the number.
func name[K ~uint16](table map[K][2]string, id K, which int, prefix string) string {
	if n, ok := table[id]; ok {
		return n[which]
	}
	return prefix + strconv.Itoa(int(id))
}
