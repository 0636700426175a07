package vici

import "testing"

// RFC 9370's additional key exchanges are listed as charon 6 lists them:
// ake1..ake7 beside dh-group, which stays the KE method.
func TestSetAlgorithmsAdditionalKE(t *testing.T) {
	m := NewMessage()
	setAlgorithms(m, "IKE:AES_GCM_16_256/PRF_HMAC_SHA2_384/CURVE_25519/KE1_ML_KEM_768/KE2_KE_NONE", true)
	for k, want := range map[string]string{
		"encr-alg": "AES_GCM_16", "encr-keysize": "256", "prf-alg": "PRF_HMAC_SHA2_384",
		"dh-group": "CURVE_25519", "ake1": "ML_KEM_768", "ake2": "KE_NONE", "ake3": "",
	} {
		if got := m.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	m = NewMessage()
	setAlgorithms(m, "ESP:AES_GCM_16_128/ML_KEM_1024/NO_EXT_SEQ", false)
	if m.Get("dh-group") != "ML_KEM_1024" || m.Get("ake1") != "" {
		t.Errorf("ML-KEM as the KE method: %v", m)
	}
}
