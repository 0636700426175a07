// Package message is the IKEv2 wire codec (RFC 7296): the IKE header, every
// payload with its substructures, the Encrypted payload (SK) and the
// Encrypted Fragment payload (SKF, RFC 7383) with fragmentation and
// reassembly.
//
// Decoding checks every length and count against the bytes present and
// returns wrapped sentinel errors (ErrTruncated, ErrBadLength, ErrMalformed,
// ...) for anything truncated, overlong or self-inconsistent; it never
// panics and never reads past its input. An unrecognised payload with the
// critical bit set is reported as *UnsupportedCriticalPayloadError so the
// caller can answer UNSUPPORTED_CRITICAL_PAYLOAD; unrecognised non-critical
// payloads are kept as *Unknown.
//
// Encoding computes the next-payload chain and every length itself; the
// Next Payload and Length fields of Header are outputs of decoding, not
// inputs to encoding.
//
// The package must not know about cryptography, sockets or BPF. Encryption
// and integrity of SK and SKF go through the Protector interface, which the
// crypto package implements; algorithm identifiers (transform IDs, DH
// groups) stay raw numbers here because that package owns their names.
// What a payload means for an exchange (which payloads an IKE_AUTH needs,
// nonce sizes, whether selectors are acceptable) is for the exchange tasks
// to decide.
package message
