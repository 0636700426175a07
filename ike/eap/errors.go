package eap

import (
	"errors"
	"fmt"
)

// Decoding errors, returned wrapped with context; test with errors.Is.
var (
	// ErrTruncated: fewer octets than the packet or a field needs.
	ErrTruncated = errors.New("truncated")
	// ErrBadLength: a length field disagrees with the octets it describes
	// or with what the Code or OpCode allows.
	ErrBadLength = errors.New("bad length")
	// ErrMalformed: a field holds a value the format forbids.
	ErrMalformed = errors.New("malformed")
	// ErrTooLarge: a value does not fit its wire field.
	ErrTooLarge = errors.New("too large")
	// ErrExpandedType: an Expanded Type (254); no method here uses one.
	ErrExpandedType = errors.New("expanded EAP type not supported")
	// ErrUnexpected: a well-formed packet that does not fit the state of
	// the conversation (wrong Code, Identifier, Type or OpCode).
	ErrUnexpected = errors.New("unexpected")
	// ErrUnknownUser is what a Credentials lookup returns, wrapped or not,
	// for a user it does not know.
	ErrUnknownUser = errors.New("unknown user")
	// ErrFinished: the conversation is over; nothing more is processed.
	ErrFinished = errors.New("conversation finished")
)

// Reason says why a conversation failed, for the log. Reasons that
// concern the peer's credentials (ReasonWrongPassword,
// ReasonUnknownUser) are never told apart on the wire: the server sends
// the same packets for both.
type Reason uint8

const (
	// ReasonMalformed: the other side sent a packet that does not decode.
	ReasonMalformed Reason = iota + 1
	// ReasonUnexpected: a packet that does not fit the conversation's state.
	ReasonUnexpected
	// ReasonWrongPassword: the server's check of the peer's proof failed.
	ReasonWrongPassword
	// ReasonUnknownUser: the credential lookup does not know the identity.
	ReasonUnknownUser
	// ReasonNoSecret: the lookup failed otherwise, or the secret cannot
	// serve the method (an NT hash for EAP-MD5).
	ReasonNoSecret
	// ReasonNak: the peer refused every method the server offers, or the
	// server offers none the peer accepts.
	ReasonNak
	// ReasonRejected: the other side refused. On the peer: EAP-Failure,
	// or an MS-CHAPv2 Failure Request (E=691). On the server: the peer's
	// MS-CHAPv2 Failure Response when no wrong password of its own is
	// pending, e.g. after the peer found the authenticator response wrong.
	ReasonRejected
	// ReasonServerNotAuthenticated: the peer's check of the server's proof
	// (the MS-CHAPv2 authenticator response) failed.
	ReasonServerNotAuthenticated
	// ReasonUnsupported: a request the package does not implement
	// (change password, an Expanded Type).
	ReasonUnsupported
	// ReasonInternal: randomness or the local side's own setup failed.
	ReasonInternal
	// ReasonUntrustedCertificate: the other side's certificate does not
	// chain to a trusted CA (EAP-TLS), or none was sent.
	ReasonUntrustedCertificate
	// ReasonCertificateExpired: the other side's certificate is expired
	// or not yet valid.
	ReasonCertificateExpired
	// ReasonCertificateIdentity: the other side's certificate is not
	// issued to the identity it claims (EAP identity, server identity).
	ReasonCertificateIdentity
	// ReasonTLS: the TLS handshake failed otherwise (an alert received,
	// a protocol error).
	ReasonTLS
)

func (r Reason) String() string {
	switch r {
	case ReasonMalformed:
		return "malformed EAP message"
	case ReasonUnexpected:
		return "unexpected EAP message"
	case ReasonWrongPassword:
		return "wrong password"
	case ReasonUnknownUser:
		return "unknown user"
	case ReasonNoSecret:
		return "no usable secret"
	case ReasonNak:
		return "no acceptable method"
	case ReasonRejected:
		return "rejected by the server"
	case ReasonServerNotAuthenticated:
		return "server failed to authenticate"
	case ReasonUnsupported:
		return "not supported"
	case ReasonInternal:
		return "internal error"
	case ReasonUntrustedCertificate:
		return "certificate not trusted"
	case ReasonCertificateExpired:
		return "certificate expired or not yet valid"
	case ReasonCertificateIdentity:
		return "certificate identity mismatch"
	case ReasonTLS:
		return "TLS handshake failed"
	}
	return fmt.Sprintf("reason %d", uint8(r))
}

// Error is the failure of a conversation. It names the method and the
// identity concerned but never a secret: passwords, hashes, challenges
// and responses stay out of it.
type Error struct {
	Method   Type   // the method that failed, or TypeIdentity/TypeNak
	Reason   Reason //
	Identity string // the EAP identity concerned, if known
	Err      error  // the underlying decoding or lookup error, if any
}

func (e *Error) Error() string {
	s := e.Method.String() + ": " + e.Reason.String()
	if e.Identity != "" {
		s += " (identity " + quote(e.Identity) + ")"
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// LogLine is charon's line for a failed method with the cause appended,
// e.g. "EAP method EAP_MSCHAPV2 failed for peer carol@example.org: wrong
// password". peer is the peer's IKE identity as the engine prints it.
// EAP-TLS failures carry the detail of the certificate or TLS error
// (which certificate, which CA, which alert): it holds no secret.
func (e *Error) LogLine(peer string) string {
	s := "EAP method " + e.Method.String() + " failed for peer " + peer + ": " + e.Reason.String()
	if e.Identity != "" && e.Identity != peer {
		s += " (EAP identity " + quote(e.Identity) + ")"
	}
	if e.Method == TypeTLS && e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func failure(method Type, reason Reason, identity string, err error) *Error {
	return &Error{Method: method, Reason: reason, Identity: identity, Err: err}
}

// quote prints an identity for a log: printable characters as they are,
// everything else escaped, at most 64 runes.
func quote(s string) string {
	r := []rune(s)
	if len(r) > 64 {
		return fmt.Sprintf("%+q...", string(r[:64]))
	}
	return fmt.Sprintf("%+q", s)
}
