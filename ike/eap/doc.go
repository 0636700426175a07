// Package eap is the Extensible Authentication Protocol (RFC 3748) as
// IKEv2 carries it in IKE_AUTH (RFC 7296 section 2.16): the EAP packet
// codec, and EAP methods as small state machines with an authenticator
// (server) side and a peer side, driven one packet at a time.
//
// Server runs a conversation for the IKE responder: EAP-Identity when the
// identity is not configured, then a method, with the Identifier of each
// Response checked against the last Request and a Nak able to pick
// another offered method, and finally EAP-Success or EAP-Failure. Peer
// runs the other side for the IKE initiator. Methods: EAP-Identity,
// EAP-MD5-Challenge (RFC 3748 section 5.4, no MSK) and EAP-MSCHAPv2
// (RFC 2759 in the packets of draft-kamath-pppext-eap-mschapv2, with the
// 64-octet MSK derived as strongSwan's eap-mschapv2 plugin derives it, so
// that AUTH payloads agree with charon's) and EAP-TLS (RFC 5216, and RFC
// 9190 for TLS 1.3: TLSServer and TLSPeer, which the runners get through
// their NewMethod hooks since they need certificates). ServerMethod and
// PeerMethod are the interfaces a further method implements; a relay of
// packets to a RADIUS server fits them too.
//
// EAP-TLS drives crypto/tls over an in-memory connection (tls_pipe.go):
// the handshake runs in a goroutine that hands over each flight when it
// waits for the other side's, so one EAP message is processed at a time
// and nothing touches a socket. Fragmentation, acknowledgements and the
// limits on what the other side may make us reassemble live in
// tls_framing.go. Wipe zeroes the MSK and the TLS 1.2 master secret held
// here and ends the goroutine; the secrets inside crypto/tls's own
// connection state cannot be zeroed from outside and go with it to the
// garbage collector.
//
// A conversation ends with a Result: the MSK on success, or an *Error
// whose Reason tells a wrong password from an unknown user for the log
// (Error.LogLine is charon's "EAP method EAP_MSCHAPV2 failed for peer
// ..."), while the server sends the same packets for both. Secrets
// (Secret, Credentials) print as "[secret]", never appear in an error,
// and are zeroed when a conversation ends, as are intermediate keys.
// Malformed or hostile packets give errors, never panics.
//
// The package must not know about IKE (payloads, SPIs, the AUTH
// computation from the MSK), sockets, RADIUS, configuration files or
// logging: the engine hands it EAP messages and a credential lookup,
// sends what it returns, and logs the outcome.
package eap
