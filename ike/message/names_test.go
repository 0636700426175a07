package message

import (
	"fmt"
	"testing"
)

func TestNames(t *testing.T) {
	tests := []struct {
		v    fmt.Stringer
		want string
	}{
		{IKE_SA_INIT, "IKE_SA_INIT"},
		{CREATE_CHILD_SA, "CREATE_CHILD_SA"},
		{ExchangeType(99), "ExchangeType(99)"},
		{PayloadSKF, "SKF"},
		{PayloadType(200), "PayloadType(200)"},
		{NO_PROPOSAL_CHOSEN, "NO_PROPOSAL_CHOSEN"},
		{INVALID_KE_PAYLOAD, "INVALID_KE_PAYLOAD"},
		{NAT_DETECTION_SOURCE_IP, "NAT_DETECTION_SOURCE_IP"},
		{IKEV2_FRAGMENTATION_SUPPORTED, "IKEV2_FRAGMENTATION_SUPPORTED"},
		{SIGNATURE_HASH_ALGORITHMS, "SIGNATURE_HASH_ALGORITHMS"},
		{USE_TRANSPORT_MODE, "USE_TRANSPORT_MODE"},
		{REKEY_SA, "REKEY_SA"},
		{COOKIE, "COOKIE"},
		{ESP_TFC_PADDING_NOT_SUPPORTED, "ESP_TFC_PADDING_NOT_SUPPORTED"},
		{NotifyType(40000), "NotifyType(40000)"},
		{ID_RFC822_ADDR, "ID_RFC822_ADDR"},
		{AuthDigitalSignature, "Digital Signature"},
		{CertX509Signature, "X.509 Certificate - Signature"},
		{TS_IPV6_ADDR_RANGE, "TS_IPV6_ADDR_RANGE"},
		{CFG_REPLY, "CFG_REPLY"},
		{INTERNAL_IP4_ADDRESS, "INTERNAL_IP4_ADDRESS"},
		{ProtocolESP, "ESP"},
		{FlagInitiator | FlagResponse, "I|R"},
	}
	for _, tt := range tests {
		if got := tt.v.String(); got != tt.want {
			t.Errorf("%T %v: got %q, want %q", tt.v, tt.v, got, tt.want)
		}
	}
	// The notify numbers that matter most, against RFC 7296 section 3.10.1.
	for v, n := range map[NotifyType]uint16{
		UNSUPPORTED_CRITICAL_PAYLOAD: 1, INVALID_SYNTAX: 7, NO_PROPOSAL_CHOSEN: 14, INVALID_KE_PAYLOAD: 17,
		AUTHENTICATION_FAILED: 24, TS_UNACCEPTABLE: 38, TEMPORARY_FAILURE: 43, CHILD_SA_NOT_FOUND: 44,
		INITIAL_CONTACT: 16384, NAT_DETECTION_SOURCE_IP: 16388, COOKIE: 16390, REKEY_SA: 16393,
		IKEV2_FRAGMENTATION_SUPPORTED: 16430, SIGNATURE_HASH_ALGORITHMS: 16431,
	} {
		if uint16(v) != n {
			t.Errorf("%v = %d, want %d", v, uint16(v), n)
		}
	}
	if !NO_PROPOSAL_CHOSEN.IsError() || COOKIE.IsError() {
		t.Error("IsError")
	}
}
