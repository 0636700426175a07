// Package radius is the RADIUS client of remote access: it relays EAP
// conversations to RADIUS servers (RFC 3579 EAP pass-through, RFC 2865
// Access-Request/Challenge/Accept/Reject), turns an Access-Accept into an
// MSK, a Framed-IP-Address and Class attributes, and reports sessions with
// RFC 2866 accounting (Start, Interim-Update, Stop).
//
// A Client holds the configured servers and sends every request with
// retransmissions, moving to the next server when one does not answer.
// A Session is one EAP conversation (one IKE SA): it sticks to the server
// that answered its first request, because the State that server hands
// out means nothing to the others.
//
// Every reply is checked before anything in it is used: the identifier,
// the Response Authenticator and the Message-Authenticator (RFC 3579
// §3.2). A reply that fails a check is dropped and counted, as if it had
// never arrived, so a server with another shared secret looks like a
// server that does not answer, and the error says which check failed.
//
// The package knows RADIUS, not IKE: it takes EAP packets as opaque bytes
// and knows nothing of IKE SAs, EAP methods, address pools or the
// dataplane. It has no global state and logs only to the logger of its
// Config. Shared secrets are a Secret, which never formats its value.
//
// Packet encoding and the attribute dictionaries are layeh.com/radius.
package radius
