package ike

import (
	"context"
	"net/netip"
)

// XAuthBackend checks an IKEv1 XAuth user's name and password elsewhere:
// a RADIUS server asked with a PAP Access-Request (User-Name and
// User-Password, RFC 2865 section 5.2) when the connection's remote XAuth
// round is xauth-radius. The engine knows nothing of RADIUS: the daemon
// adapts internal/radius to this interface, and tests fake it.
type XAuthBackend interface {
	// Authenticate asks about one user, waiting for the answer up to
	// ctx's end. The engine calls it on a goroutine of its own, never
	// under its lock, and cancels ctx when the IKE SA goes away first.
	// The engine zeroes Password once it returns. An error means no
	// answer (the server is not responding, or ctx ended); its text
	// names the server.
	Authenticate(ctx context.Context, r XAuthRequest) (XAuthResult, error)
}

// XAuthRequest is the user an XAuth round authenticates.
type XAuthRequest struct {
	User     string
	Password []byte
	// Remote is the peer's outer address and port, Local ours.
	Remote, Local netip.AddrPort
	// IKESAID is the ISAKMP SA's unique ID; Connection its connection.
	IKESAID    uint32
	Connection string
}

// XAuthResult is the backend's verdict.
type XAuthResult struct {
	Accept bool
	// FramedIP, when accepted, is the address the backend assigned the
	// user (Framed-IP-Address): its virtual IP in place of one from the
	// pools. Invalid: the pools choose.
	FramedIP netip.Addr
	// Server names who answered, for logs.
	Server string
}

// SetXAuthBackend replaces Config.XAuthBackend (a reload of the RADIUS
// settings). Checks under way finish with the backend that started them.
func (e *Engine) SetXAuthBackend(b XAuthBackend) {
	e.mu.Lock()
	defer e.unlock()
	e.cfg.XAuthBackend = b
}
