package transform

import (
	"errors"
	"strings"
	"testing"
)

func TestParseProposals(t *testing.T) {
	tests := []struct {
		proto    Protocol
		in       string
		log      string // as charon logs it
		keywords string // canonical configuration form
	}{
		{ProtoIKE, "aes128gcm16-prfsha256-x25519", "IKE:AES_GCM_16_128/PRF_HMAC_SHA2_256/CURVE_25519", "aes128gcm16-prfsha256-x25519"},
		{ProtoIKE, "aes256-sha256-modp2048", "IKE:AES_CBC_256/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_2048", "aes256-sha256-modp2048"},
		{ProtoIKE, "aes128-sha1-modp2048", "IKE:AES_CBC_128/HMAC_SHA1_96/PRF_HMAC_SHA1/MODP_2048", "aes128-sha1-modp2048"},
		{ProtoIKE, "chacha20poly1305-prfsha256-x25519", "IKE:CHACHA20_POLY1305/PRF_HMAC_SHA2_256/CURVE_25519", "chacha20poly1305-prfsha256-x25519"},
		{ProtoIKE, "aes256gcm16-prfsha384-ecp384", "IKE:AES_GCM_16_256/PRF_HMAC_SHA2_384/ECP_384", "aes256gcm16-prfsha384-ecp384"},
		{ProtoIKE, "aes256-sha512-ecp521", "IKE:AES_CBC_256/HMAC_SHA2_512_256/PRF_HMAC_SHA2_512/ECP_521", "aes256-sha512-ecp521"},
		{ProtoIKE, "aes128-aes256-sha256-sha384-ecp256-modp2048",
			"IKE:AES_CBC_128/AES_CBC_256/HMAC_SHA2_256_128/HMAC_SHA2_384_192/PRF_HMAC_SHA2_256/PRF_HMAC_SHA2_384/ECP_256/MODP_2048",
			"aes128-aes256-sha256-sha384-ecp256-modp2048"},
		// An explicit PRF different from the integrity's is kept.
		{ProtoIKE, "aes128-sha256-prfsha512-curve25519", "IKE:AES_CBC_128/HMAC_SHA2_256_128/PRF_HMAC_SHA2_512/CURVE_25519", "aes128-sha256-prfsha512-x25519"},
		// Order of keywords does not matter for the printed order of types.
		{ProtoIKE, "x25519-prfaesxcbc-aesxcbc-aes192", "IKE:AES_CBC_192/AES_XCBC_96/PRF_AES128_XCBC/CURVE_25519", "aes192-aesxcbc-x25519"},
		// Aliases.
		{ProtoIKE, "aes128gcm128-aes256gcm64-aes192gcm96-prfsha256-ecp256", "IKE:AES_GCM_16_128/AES_GCM_8_256/AES_GCM_12_192/PRF_HMAC_SHA2_256/ECP_256",
			"aes128gcm16-aes256gcm8-aes192gcm12-prfsha256-ecp256"},
		{ProtoIKE, "aes-sha-modp3072", "IKE:AES_CBC_128/HMAC_SHA1_96/PRF_HMAC_SHA1/MODP_3072", "aes128-sha1-modp3072"},
		// Integrity given with an AEAD is dropped, as strongSwan does.
		{ProtoIKE, "aes128gcm16-sha256-prfsha256-ecp256", "IKE:AES_GCM_16_128/PRF_HMAC_SHA2_256/ECP_256", "aes128gcm16-prfsha256-ecp256"},

		{ProtoESP, "aes128gcm16", "ESP:AES_GCM_16_128/NO_EXT_SEQ", "aes128gcm16"},
		{ProtoESP, "aes256-sha256", "ESP:AES_CBC_256/HMAC_SHA2_256_128/NO_EXT_SEQ", "aes256-sha256"},
		{ProtoESP, "aes128gcm16-modp2048", "ESP:AES_GCM_16_128/MODP_2048/NO_EXT_SEQ", "aes128gcm16-modp2048"},
		{ProtoESP, "aes256-sha256-esn", "ESP:AES_CBC_256/HMAC_SHA2_256_128/EXT_SEQ", "aes256-sha256-esn"},
		{ProtoESP, "aes256-sha256-noesn", "ESP:AES_CBC_256/HMAC_SHA2_256_128/NO_EXT_SEQ", "aes256-sha256"},
		{ProtoESP, "aes256-sha256-esn-noesn", "ESP:AES_CBC_256/HMAC_SHA2_256_128/EXT_SEQ/NO_EXT_SEQ", "aes256-sha256-esn-noesn"},
		{ProtoESP, "aes128gcm16-ecp256-none", "ESP:AES_GCM_16_128/ECP_256/KE_NONE/NO_EXT_SEQ", "aes128gcm16-ecp256-none"},
		// PRFs mean nothing for ESP and are dropped.
		{ProtoESP, "chacha20poly1305-prfsha256", "ESP:CHACHA20_POLY1305/NO_EXT_SEQ", "chacha20poly1305"},
	}
	for _, tc := range tests {
		ps, err := ParseProposals(tc.proto, tc.in)
		if err != nil {
			t.Errorf("%s: %v", tc.in, err)
			continue
		}
		if len(ps) != 1 {
			t.Fatalf("%s: %d proposals", tc.in, len(ps))
		}
		p := ps[0]
		if p.String() != tc.log {
			t.Errorf("%s:\n got %s\nwant %s", tc.in, p, tc.log)
		}
		if p.Keywords() != tc.keywords {
			t.Errorf("%s: keywords %s, want %s", tc.in, p.Keywords(), tc.keywords)
		}
		again, err := ParseProposal(tc.proto, p.Keywords())
		if err != nil || again.String() != p.String() {
			t.Errorf("%s: keywords do not parse back: %v %v", tc.in, again, err)
		}
	}
}

func TestParseProposalsErrors(t *testing.T) {
	tests := []struct {
		proto Protocol
		in    string
		want  string
	}{
		{ProtoIKE, "aes128-sha256-modp2048-bogus", `algorithm "bogus" not recognized`},
		{ProtoIKE, "aes128-foo256-modp2048", `"foo256"`},
		{ProtoIKE, "3des-sha1-modp1024", `algorithm "3des" is not supported: 3DES is refused by default (64-bit blocks, Sweet32)`},
		{ProtoIKE, "aes128ctr-sha256-modp2048", `"aes128ctr" is not supported`},
		{ProtoIKE, "aes128-sha256-modp768", `"modp768" is not supported`},
		{ProtoIKE, "aes128-sha256-ke1_curve448-x25519", `"ke1_curve448" is not supported`},
		{ProtoIKE, "aes128-sha256-x25519-curve448", `"curve448" is not supported`},
		{ProtoIKE, "aes128-sha256-x25519-ke8_mlkem768", `the number must be 1 to 7`},
		{ProtoIKE, "aes128-sha256-x25519-ke1_foo", `"ke1_foo" not recognized`},
		{ProtoIKE, "aes128-sha256-x25519-ke2_mlkem768", `additional key exchange 1 missing before 2`},
		{ProtoESP, "aes128-sha256-ke1_mlkem768", `need a key exchange (PFS)`},
		{ProtoIKE, "aes128gcm16-x25519", "a PRF algorithm is mandatory"},
		{ProtoIKE, "aes128-sha256", "a DH group is mandatory"},
		{ProtoIKE, "aes128-sha256-none", "a DH group is mandatory"},
		{ProtoIKE, "prfsha256-x25519", "an encryption algorithm is mandatory"},
		{ProtoIKE, "aes128-prfsha256-x25519", "an integrity algorithm is mandatory"},
		{ProtoIKE, "aes128-aes128gcm16-sha256-x25519", "can't be contained in the same IKE proposal"},
		{ProtoIKE, "aes128-sha256-x25519-esn", "esn/noesn is not allowed"},
		{ProtoIKE, "aes128--sha256-x25519", "empty algorithm keyword"},
		{ProtoIKE, "", "empty algorithm keyword"},
		{ProtoESP, "aes256", "an integrity algorithm is mandatory in ESP proposals"},
		{ProtoESP, "sha256", "an encryption algorithm is mandatory in ESP proposals"},
		{ProtoAH, "aes128-sha256", "encryption algorithm AES_CBC_128 is not allowed in AH proposals"},
		{ProtoAH, "modp2048", "an integrity algorithm is mandatory in AH proposals"},
		{Protocol(4), "sha256", "PROTO_4 proposals are not supported"},
		{ProtoESP, "aes128gcm16, aes256-bogus", `"bogus" not recognized`},
	}
	for _, tc := range tests {
		_, err := ParseProposals(tc.proto, tc.in)
		if err == nil || !errors.Is(err, ErrProposal) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v %q: error %v, want one containing %q", tc.proto, tc.in, err, tc.want)
		}
	}
}

func TestDefaultProposals(t *testing.T) {
	ike, err := ParseProposals(ProtoIKE, "aes128gcm16-prfsha256-x25519, default")
	if err != nil {
		t.Fatal(err)
	}
	if len(ike) != 3 {
		t.Fatalf("%d IKE proposals", len(ike))
	}
	if !strings.HasPrefix(ike[1].String(), "IKE:AES_GCM_16_128/AES_GCM_16_192/AES_GCM_16_256/CHACHA20_POLY1305/") ||
		!strings.HasPrefix(ike[2].String(), "IKE:AES_CBC_128/AES_CBC_192/AES_CBC_256/HMAC_SHA2_256_128/") {
		t.Errorf("default IKE proposals: %s", FormatProposals(ike[1:]))
	}
	esp, err := ParseProposals(ProtoESP, "default")
	if err != nil || len(esp) != 1 || !strings.HasSuffix(esp[0].String(), "/NO_EXT_SEQ") {
		t.Fatalf("default ESP: %v %v", esp, err)
	}
	// Every default transform is implemented, and each default proposal
	// re-parses from its keywords.
	for _, p := range append(ike[1:], esp...) {
		for _, tr := range p.Transforms {
			ok := false
			switch tr.Type {
			case TransformENCR:
				ok = EncrID(tr.ID).Supported(tr.KeyLength)
			case TransformINTEG:
				ok = IntegID(tr.ID).Supported()
			case TransformPRF:
				ok = PRFID(tr.ID).Supported()
			case TransformKE:
				ok = KEID(tr.ID).Supported()
			case TransformESN:
				ok = true
			}
			if !ok {
				t.Errorf("default %v has unsupported %v", p.Protocol, tr)
			}
		}
		again, err := ParseProposal(p.Protocol, p.Keywords())
		if err != nil || again.String() != p.String() {
			t.Errorf("default %v: %s does not parse back: %v", p.Protocol, p.Keywords(), err)
		}
	}
}

func TestProposalSuites(t *testing.T) {
	p, _ := ParseProposal(ProtoIKE, "aes256gcm16-prfsha384-ecp384")
	s, err := p.IKESuite()
	if err != nil || s != (IKESuite{ENCR_AES_GCM_16, 256, AUTH_NONE, PRF_HMAC_SHA2_384, ECP_384}) {
		t.Errorf("IKE suite %+v %v", s, err)
	}
	p, _ = ParseProposal(ProtoESP, "aes256-sha256-modp2048-esn")
	c, err := p.ChildSuite()
	if err != nil || c != (ChildSuite{ENCR_AES_CBC, 256, AUTH_HMAC_SHA2_256_128, MODP_2048, ESN, false}) {
		t.Errorf("ESP suite %+v %v", c, err)
	}
	p, _ = ParseProposal(ProtoIKE, "aes128-aes256-sha256-modp2048")
	if _, err := p.IKESuite(); err == nil {
		t.Error("suite from an unselected proposal")
	}
	if _, err := p.ChildSuite(); err == nil {
		t.Error("ESP suite from an IKE proposal")
	}
}

func TestIDNames(t *testing.T) {
	for got, want := range map[string]string{
		ENCR_AES_GCM_16.String():        "ENCR_AES_GCM_16",
		PRF_AES128_XCBC.String():        "PRF_AES128_XCBC",
		AUTH_HMAC_SHA2_512_256.String(): "AUTH_HMAC_SHA2_512_256",
		CURVE_25519.String():            "CURVE_25519",
		ESN.String():                    "ESN",
		EncrID(999).String():            "ENCR_999",
		TransformKE.String():            "KE",
		Transform{TransformENCR, uint16(ENCR_AES_CBC), 256}.String():     "AES_CBC_256",
		Transform{TransformINTEG, uint16(AUTH_HMAC_SHA1_96), 0}.String(): "HMAC_SHA1_96",
		Transform{TransformKE, 1234, 0}.String():                         "UNKNOWN_4_1234",
		ProtoESP.String():                                                "ESP",
	} {
		if got != want {
			t.Errorf("got %s, want %s", got, want)
		}
	}
}

func TestParseAHProposal(t *testing.T) {
	for _, tc := range []struct {
		in, want string
	}{
		{"sha256", "AH:HMAC_SHA2_256_128/NO_EXT_SEQ"},
		{"sha1-sha256-modp2048", "AH:HMAC_SHA1_96/HMAC_SHA2_256_128/MODP_2048/NO_EXT_SEQ"},
		{"sha512-esn", "AH:HMAC_SHA2_512_256/EXT_SEQ"},
		{"sha256-prfsha256", "AH:HMAC_SHA2_256_128/NO_EXT_SEQ"}, // PRF ignored, as for ESP
	} {
		p, err := ParseProposal(ProtoAH, tc.in)
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if p.String() != tc.want {
			t.Errorf("%q: %s, want %s", tc.in, p, tc.want)
		}
		if back, err := ParseProposal(ProtoAH, p.Keywords()); err != nil || back.String() != p.String() {
			t.Errorf("%q: keywords %q give %v %v", tc.in, p.Keywords(), back, err)
		}
	}
	for _, bad := range []string{"aes128-sha256", "aes128gcm16", "modp2048", "esn"} {
		if _, err := ParseProposal(ProtoAH, bad); err == nil {
			t.Errorf("AH proposal %q accepted", bad)
		}
	}
	p, _ := ParseProposal(ProtoAH, "sha384-modp3072-esn")
	c, err := p.ChildSuite()
	if err != nil || c != (ChildSuite{Integ: AUTH_HMAC_SHA2_384_192, KE: MODP_3072, ESN: ESN, AH: true}) {
		t.Errorf("AH suite %+v %v", c, err)
	}
	keys, err := DeriveChildKeys(PRF_HMAC_SHA2_256, make([]byte, 32), c, nil, make([]byte, 32), make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	if len(keys.InitiatorToResponder.Encr) != 0 || len(keys.InitiatorToResponder.Integ) != 48 || len(keys.ResponderToInitiator.Integ) != 48 {
		t.Errorf("AH keys: encr %d, integ %d/%d octets", len(keys.InitiatorToResponder.Encr), len(keys.InitiatorToResponder.Integ), len(keys.ResponderToInitiator.Integ))
	}
	if d := DefaultProposals(ProtoAH); len(d) != 1 || d[0].Protocol != ProtoAH || len(d[0].Algorithms(TransformENCR)) != 0 {
		t.Errorf("default AH proposals %v", d)
	}
}
