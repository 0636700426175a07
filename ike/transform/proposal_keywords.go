package transform

import (
	"strconv"
	"strings"
)

// The proposal keywords of strongSwan's configuration syntax (its
// proposal_keywords_static.txt) for the algorithms this package implements.
// The first keyword of each transform is the one Proposal.Keywords prints.

type keyword struct {
	word string
	t    Transform
}

func encrT(id EncrID, bits uint16) Transform {
	return Transform{Type: TransformENCR, ID: uint16(id), KeyLength: bits}
}
func integT(id IntegID) Transform { return Transform{Type: TransformINTEG, ID: uint16(id)} }
func prfT(id PRFID) Transform     { return Transform{Type: TransformPRF, ID: uint16(id)} }
func keT(id KEID) Transform       { return Transform{Type: TransformKE, ID: uint16(id)} }
func esnT(id ESNID) Transform     { return Transform{Type: TransformESN, ID: uint16(id)} }

var keywords = func() []keyword {
	kw := []keyword{
		{"aes128", encrT(ENCR_AES_CBC, 128)},
		{"aes192", encrT(ENCR_AES_CBC, 192)},
		{"aes256", encrT(ENCR_AES_CBC, 256)},
		{"aes", encrT(ENCR_AES_CBC, 128)},
	}
	for _, bits := range []uint16{128, 192, 256} {
		b := strconv.Itoa(int(bits))
		// aesNNNgcmI and the aliases with the ICV in bits; plain
		// "aesNNNgcm" means the 16-octet ICV.
		kw = append(kw,
			keyword{"aes" + b + "gcm16", encrT(ENCR_AES_GCM_16, bits)},
			keyword{"aes" + b + "gcm128", encrT(ENCR_AES_GCM_16, bits)},
			keyword{"aes" + b + "gcm", encrT(ENCR_AES_GCM_16, bits)},
			keyword{"aes" + b + "gcm12", encrT(ENCR_AES_GCM_12, bits)},
			keyword{"aes" + b + "gcm96", encrT(ENCR_AES_GCM_12, bits)},
			keyword{"aes" + b + "gcm8", encrT(ENCR_AES_GCM_8, bits)},
			keyword{"aes" + b + "gcm64", encrT(ENCR_AES_GCM_8, bits)},
		)
	}
	return append(kw,
		keyword{"chacha20poly1305", encrT(ENCR_CHACHA20_POLY1305, 0)},
		keyword{"chacha20poly1305compat", encrT(ENCR_CHACHA20_POLY1305, 256)},

		keyword{"sha1", integT(AUTH_HMAC_SHA1_96)},
		keyword{"sha", integT(AUTH_HMAC_SHA1_96)},
		keyword{"sha256", integT(AUTH_HMAC_SHA2_256_128)},
		keyword{"sha2_256", integT(AUTH_HMAC_SHA2_256_128)},
		keyword{"sha384", integT(AUTH_HMAC_SHA2_384_192)},
		keyword{"sha2_384", integT(AUTH_HMAC_SHA2_384_192)},
		keyword{"sha512", integT(AUTH_HMAC_SHA2_512_256)},
		keyword{"sha2_512", integT(AUTH_HMAC_SHA2_512_256)},
		keyword{"aesxcbc", integT(AUTH_AES_XCBC_96)},

		keyword{"prfsha1", prfT(PRF_HMAC_SHA1)},
		keyword{"prfsha256", prfT(PRF_HMAC_SHA2_256)},
		keyword{"prfsha384", prfT(PRF_HMAC_SHA2_384)},
		keyword{"prfsha512", prfT(PRF_HMAC_SHA2_512)},
		keyword{"prfaesxcbc", prfT(PRF_AES128_XCBC)},

		keyword{"modp1024", keT(MODP_1024)},
		keyword{"modp1536", keT(MODP_1536)},
		keyword{"modp2048", keT(MODP_2048)},
		keyword{"modp3072", keT(MODP_3072)},
		keyword{"modp4096", keT(MODP_4096)},
		keyword{"ecp256", keT(ECP_256)},
		keyword{"ecp384", keT(ECP_384)},
		keyword{"ecp521", keT(ECP_521)},
		keyword{"x25519", keT(CURVE_25519)},
		keyword{"curve25519", keT(CURVE_25519)},
		keyword{"mlkem512", keT(ML_KEM_512)},
		keyword{"mlkem768", keT(ML_KEM_768)},
		keyword{"mlkem1024", keT(ML_KEM_1024)},
		keyword{"none", keT(KE_NONE)},
		keyword{"modpnone", keT(KE_NONE)},

		keyword{"noesn", esnT(NO_ESN)},
		keyword{"esn", esnT(ESN)},
	)
}()

var (
	keywordTransforms = map[string]Transform{}
	transformKeywords = map[Transform]string{}
)

func init() {
	for _, k := range keywords {
		keywordTransforms[k.word] = k.t
		if _, ok := transformKeywords[k.t]; !ok {
			transformKeywords[k.t] = k.word
		}
	}
}

// strongSwan keywords for algorithms we do not implement: they get an error
// saying so rather than "not recognized".
var unsupportedKeywords = map[string]bool{
	"null": true, "des": true, "3des": true, "cast128": true,
	"sha1_160": true, "sha256_96": true, "sha2_256_96": true, "md5": true, "md5_128": true,
	"camelliaxcbc": true, "aescmac": true,
	"prfmd5": true, "prfcamelliaxcbc": true, "prfaescmac": true,
	"modpnull": true, "modp768": true, "modp6144": true, "modp8192": true,
	"modp1024s160": true, "modp2048s224": true, "modp2048s256": true,
	"ecp192": true, "ecp224": true, "ecp224bp": true, "ecp256bp": true, "ecp384bp": true, "ecp512bp": true,
	"curve448": true, "x448": true,
}

var unsupportedKeywordPrefixes = []string{
	"blowfish", "camellia", "serpent", "twofish",
	"ntru", "kyber", "saber", "bike", "frodo", "hqc", "sike",
}

func isUnsupportedKeyword(w string) bool {
	if unsupportedKeywords[w] {
		return true
	}
	if strings.HasPrefix(w, "aes") && (strings.Contains(w, "ctr") || strings.Contains(w, "ccm") || strings.Contains(w, "gmac")) {
		return true
	}
	for _, p := range unsupportedKeywordPrefixes {
		if strings.HasPrefix(w, p) {
			return true
		}
	}
	return false
}
