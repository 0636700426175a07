package ike

import "bytes"

// lowestNonce is the smaller of an exchange's two nonces. RFC 7296 section
// 2.8.1 (CHILD_SA) and 2.8.2 (IKE SA): of two simultaneous rekeys, the one
// whose exchange carried the lowest of the four nonces is redundant and
// is deleted by its initiator.
func lowestNonce(ni, nr []byte) []byte {
	if bytes.Compare(ni, nr) < 0 {
		return ni
	}
	return nr
}

// weLose reports whether our exchange (ourNi, ourNr) lost against the
// peer's (theirNi, theirNr).
func weLose(ourNi, ourNr, theirNi, theirNr []byte) bool {
	return bytes.Compare(lowestNonce(ourNi, ourNr), lowestNonce(theirNi, theirNr)) < 0
}
