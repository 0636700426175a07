package eap

import (
	"fmt"
	"unicode"
	"unicode/utf8"
)

// EAP-Identity (RFC 3748 section 5.1). The Request's Type-Data is an
// optional prompt, the Response's the peer's identity, not
// NUL-terminated. Identity is not an authentication method: it names the
// user whose secret the method that follows looks up.

// MaxIdentityLen bounds an identity. RFC 3748 sets none; 253 octets is
// RADIUS's limit for User-Name (RFC 2865 section 5.1), where an identity
// may end up.
const MaxIdentityLen = 253

// checkIdentity refuses what a log or a RADIUS server should not see:
// empty or overlong identities, invalid UTF-8, control characters.
func checkIdentity(b []byte) error {
	if len(b) == 0 {
		return fmt.Errorf("empty identity: %w", ErrMalformed)
	}
	if len(b) > MaxIdentityLen {
		return fmt.Errorf("identity of %d octets: %w", len(b), ErrTooLarge)
	}
	if !utf8.Valid(b) {
		return fmt.Errorf("identity is not UTF-8: %w", ErrMalformed)
	}
	for _, r := range string(b) {
		if unicode.IsControl(r) {
			return fmt.Errorf("identity has control character %U: %w", r, ErrMalformed)
		}
	}
	return nil
}

// identityServer asks for the identity. It is the Server's first step
// when no identity is configured.
type identityServer struct {
	identity string
}

func newIdentityServer() *identityServer { return &identityServer{} }

func (*identityServer) Type() Type { return TypeIdentity }

func (*identityServer) Begin(id uint8) (Packet, error) {
	return Packet{Code: CodeRequest, Identifier: id, Type: TypeIdentity}, nil
}

func (m *identityServer) Process(resp Packet) (Packet, Status, error) {
	if err := checkIdentity(resp.Data); err != nil {
		return Packet{}, Failed, failure(TypeIdentity, ReasonMalformed, "", err)
	}
	m.identity = string(resp.Data)
	return Packet{}, Succeeded, nil
}

func (m *identityServer) Identity() string { return m.identity }
func (*identityServer) MSK() []byte        { return nil }
func (*identityServer) Wipe()              {}

// identityResponse answers an EAP-Identity Request; the Peer runner calls
// it for every one, as charon's peer does.
func identityResponse(req Packet, identity string) Packet {
	return Packet{Code: CodeResponse, Identifier: req.Identifier, Type: TypeIdentity, Data: []byte(identity)}
}
