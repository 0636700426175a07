package ike

import (
	"bytes"
	"testing"
)

// RFC 9242 section 3.3.2: InitiatorSignedOctets = RealMessage1 |
// NonceRData | MACedIDForI | IntAuth_iN | IntAuth_rN | IKE_AUTH_MID (and
// the same tail for the responder), the tail only once IKE_INTERMEDIATE
// exchanges took place.
func TestIntAuthOctets(t *testing.T) {
	base := []byte("RealMessage|Nonce|MACedID")
	var none *ikeSetup
	if got, _ := none.intAuthOctets(bytes.Clone(base), nil); !bytes.Equal(got, base) {
		t.Errorf("without setup: %q", got)
	}
	if got, _ := (&ikeSetup{intermediate: true}).intAuthOctets(bytes.Clone(base), nil); !bytes.Equal(got, base) {
		t.Errorf("announced, no exchange: %q", got)
	}
	s := &ikeSetup{intAuthI: []byte("IIII"), intAuthR: []byte("RRRR"), authMID: 0x01020304}
	got, _ := s.intAuthOctets(bytes.Clone(base), nil)
	if want := append(bytes.Clone(base), "IIIIRRRR\x01\x02\x03\x04"...); !bytes.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}
