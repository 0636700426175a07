// Package transform implements the IKEv2 cryptographic transforms: the
// algorithm identifiers negotiated in SA payloads (RFC 7296 section 3.3.2),
// the PRFs and prf+, the integrity and encryption algorithms that protect
// the SK and SKF payloads, the Diffie-Hellman key exchanges, the key
// derivations for IKE and Child SAs, the AUTH payload computations for
// pre-shared keys and digital signatures (RFC 7427), and the proposal
// strings of strongSwan's configuration syntax.
//
// It must not know about the wire format of IKE messages, about exchanges
// and their state machines, about configuration files, about the kernel or
// BPF. The message codec hands it byte strings (associated data, payload
// bodies, nonces, public values) and receives byte strings back; nothing in
// here parses an IKE header.
//
// # Algorithm identifiers
//
// Identifiers are spelled as in the IANA "IKEv2 Parameters" registry
// (ENCR_AES_CBC, PRF_HMAC_SHA2_256, AUTH_HMAC_SHA2_256_128, MODP_2048) so that
// the code reads like the RFCs. Their String methods return those names;
// Transform.String and Proposal.String use the names charon logs
// (AES_CBC_128, HMAC_SHA2_256_128, CURVE_25519), because operators search
// logs for charon's wording.
//
// # Key material
//
// Every value in this package that holds secret bytes (IKEKeys, ChildKeys,
// SKProtector, the KeyExchange implementations) has a Zero or Close method
// that overwrites the key bytes it owns. Call it where the key dies (SA
// deleted, rekeyed, exchange finished). What cannot be wiped from Go is said
// where it happens: expanded AES key schedules and HMAC pads live inside the
// standard library and are left to the garbage collector. Nothing here logs
// or prints key material; String methods never include it.
package transform
