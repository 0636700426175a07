package transform

import (
	"slices"
	"testing"
)

// strongSwan 6's syntax for RFC 9370's additional key exchanges: keN_
// before a KE keyword, "none" making one optional; printed as charon
// prints them.
func TestParseProposalAdditionalKE(t *testing.T) {
	for _, c := range []struct {
		in, str, keywords string
		adds              []KEID
	}{
		{"aes256gcm16-prfsha384-x25519-ke1_mlkem768",
			"IKE:AES_GCM_16_256/PRF_HMAC_SHA2_384/CURVE_25519/KE1_ML_KEM_768",
			"aes256gcm16-prfsha384-x25519-ke1_mlkem768", []KEID{ML_KEM_768}},
		{"aes128-sha256-x25519-ke1_ecp384-ke1_none-ke2_mlkem1024",
			"IKE:AES_CBC_128/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/CURVE_25519/KE1_ECP_384/KE1_KE_NONE/KE2_ML_KEM_1024",
			"aes128-sha256-x25519-ke1_ecp384-ke1_none-ke2_mlkem1024", []KEID{ECP_384, ML_KEM_1024}},
		{"aes256gcm16-prfsha256-x25519-ke1_mlkem512",
			"IKE:AES_GCM_16_256/PRF_HMAC_SHA2_256/CURVE_25519/KE1_ML_KEM_512",
			"aes256gcm16-prfsha256-x25519-ke1_mlkem512", []KEID{ML_KEM_512}},
		{"aes256gcm16-prfsha256-mlkem512",
			"IKE:AES_GCM_16_256/PRF_HMAC_SHA2_256/ML_KEM_512", "aes256gcm16-prfsha256-mlkem512", nil},
		{"aes256gcm16-prfsha256-mlkem768",
			"IKE:AES_GCM_16_256/PRF_HMAC_SHA2_256/ML_KEM_768", "aes256gcm16-prfsha256-mlkem768", nil},
	} {
		p, err := ParseProposal(ProtoIKE, c.in)
		if err != nil {
			t.Fatalf("%s: %v", c.in, err)
		}
		if p.String() != c.str {
			t.Errorf("%s: String %q, want %q", c.in, p.String(), c.str)
		}
		if p.Keywords() != c.keywords {
			t.Errorf("%s: Keywords %q, want %q", c.in, p.Keywords(), c.keywords)
		}
		// AdditionalKEs is for selected proposals: the first of each type.
		if got := p.AdditionalKEs(); !slices.Equal(got, c.adds) {
			t.Errorf("%s: AdditionalKEs %v, want %v", c.in, got, c.adds)
		}
		if got := p.WithoutAdditionalKEs(); got.HasAdditionalKEs() || len(got.Transforms) != len(p.Transforms)-countAdd(p) {
			t.Errorf("%s: WithoutAdditionalKEs %v", c.in, got)
		}
	}
}

func countAdd(p Proposal) int {
	n := 0
	for _, t := range p.Transforms {
		if t.Type.IsAdditionalKE() {
			n++
		}
	}
	return n
}

func TestTransformTypeNames(t *testing.T) {
	for tt, want := range map[TransformType]string{4: "KE", 6: "ADDKE1", 12: "ADDKE7", 13: "TRANSFORM_TYPE_13"} {
		if tt.String() != want {
			t.Errorf("%d: %q, want %q", tt, tt.String(), want)
		}
	}
	if s := (Transform{Type: AdditionalKE(3), ID: 99}).String(); s != "KE3_UNKNOWN_4_99" {
		t.Errorf("unknown additional method printed %q", s)
	}
}
