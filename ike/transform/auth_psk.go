package transform

import (
	"crypto/hmac"
	"errors"
)

// keyPad is the constant of the shared-secret AUTH computation (RFC 7296
// section 2.15).
const keyPad = "Key Pad for IKEv2"

// ErrAuthMismatch is returned when a peer's AUTH payload does not verify.
var ErrAuthMismatch = errors.New("transform: AUTH payload does not verify")

// SignedOctets builds the octets an AUTH payload covers (RFC 7296 section
// 2.15):
//
//	InitiatorSignedOctets = RealMessage1 | NonceRData | MACedIDForI
//	ResponderSignedOctets = RealMessage2 | NonceIData | MACedIDForR
//	MACedIDForX = prf(SK_px, RestOfXIDPayload)
//
// realMessage is the whole IKE_SA_INIT message that side sent (request for
// the initiator, response for the responder) as it went on the wire;
// peerNonce is the other side's Nonce Data; skp is SK_pi for the initiator,
// SK_pr for the responder; restOfIDPayload is the ID payload body from the
// ID Type octet on (ID Type, three RESERVED octets, identification data).
func SignedOctets(prf PRFID, realMessage, peerNonce, skp, restOfIDPayload []byte) ([]byte, error) {
	maced, err := prf.Compute(skp, restOfIDPayload)
	if err != nil {
		return nil, err
	}
	return concat(realMessage, peerNonce, maced), nil
}

// PSKAuth computes the Authentication Data of a shared-key AUTH payload
// (auth method 2):
//
//	AUTH = prf( prf(Shared Secret, "Key Pad for IKEv2"), <SignedOctets>)
//
// With AES-XCBC-PRF-128 the shared secret is used as RFC 4434 prescribes for
// keys of any length.
func PSKAuth(prf PRFID, sharedSecret, signedOctets []byte) ([]byte, error) {
	k, err := prf.Compute(sharedSecret, []byte(keyPad))
	if err != nil {
		return nil, err
	}
	defer clear(k)
	return prf.Compute(k, signedOctets)
}

// VerifyPSKAuth checks a peer's shared-key Authentication Data in constant
// time; it returns ErrAuthMismatch when it does not match.
func VerifyPSKAuth(prf PRFID, sharedSecret, signedOctets, authData []byte) error {
	want, err := PSKAuth(prf, sharedSecret, signedOctets)
	if err != nil {
		return err
	}
	if !hmac.Equal(want, authData) {
		return ErrAuthMismatch
	}
	return nil
}
