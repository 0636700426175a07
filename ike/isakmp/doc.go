// Package isakmp encodes and decodes IKEv1 messages: the ISAKMP header and
// payloads of RFC 2408 with the IPsec DOI of RFC 2407, the Oakley
// attributes of RFC 2409, the NAT-T payloads of RFC 3947 and the IKE
// fragment payload of the Cisco/strongSwan fragmentation extension.
//
// It knows the wire format only: it does not encrypt or decrypt (the IV
// chaining of IKEv1 belongs to the exchange state in package ike), does not
// interpret proposals, and keeps no state. Decoding checks every length
// and count and returns errors wrapping the sentinels of errors.go; it
// never panics on any input.
package isakmp
