package ike

import (
	"context"
	"net/netip"
	"time"
)

// EAPBackend is an EAP server elsewhere (a RADIUS server, RFC 3579) that
// the engine relays a peer's EAP conversation to when its connection's
// remote round is eap-radius. The engine knows nothing of RADIUS: the
// daemon adapts internal/radius to this interface, and tests fake it.
type EAPBackend interface {
	// NewConversation starts relaying for one IKE SA. It sends nothing and
	// must not block: the engine calls it under its lock.
	NewConversation(p EAPPeer) (EAPConversation, error)
}

// EAPPeer describes the IKE peer a conversation authenticates.
type EAPPeer struct {
	// Identity is its EAP identity (RADIUS User-Name).
	Identity string
	// Remote is its outer address and port, Local ours that it reached.
	Remote, Local netip.AddrPort
	// IKESAID is the IKE SA's unique ID; Connection its connection's name.
	IKESAID    uint32
	Connection string
}

// EAPConversation relays one peer's EAP packets.
type EAPConversation interface {
	// Exchange sends one EAP packet of the peer (the first is its
	// EAP-Response/Identity) and waits for the backend's answer, up to
	// seconds. The engine calls it on a goroutine of its own, never under
	// its lock, one call at a time per conversation, and cancels ctx when
	// the IKE SA goes away first. An error means no answer (the server is
	// not responding, or ctx ended); its text names the server.
	Exchange(ctx context.Context, eap []byte) (EAPReply, error)
}

// EAPOutcome is what the backend decided in one round.
type EAPOutcome uint8

const (
	// EAPChallenge: the conversation goes on, Reply.EAP is the next
	// EAP-Request for the peer.
	EAPChallenge EAPOutcome = iota + 1
	// EAPAccept: the peer is authenticated; Reply.EAP is EAP-Success.
	EAPAccept
	// EAPReject: the peer is refused; Reply.EAP is EAP-Failure, if the
	// backend sent one.
	EAPReject
)

func (o EAPOutcome) String() string { return enumName(o, "", "challenge", "accept", "reject") }

// EAPReply is the backend's answer to one EAP packet.
type EAPReply struct {
	Outcome EAPOutcome
	EAP     []byte
	// MSK, on EAPAccept, is the key the AUTH payloads are computed over
	// (RFC 7296 section 2.16); nil when the backend sent none (AUTH then
	// uses SK_pi/SK_pr, as charon does).
	MSK []byte
	// FramedIP, on EAPAccept, is the address the backend assigned the
	// peer (RADIUS Framed-IP-Address): its virtual IP in place of one from
	// the connection's pools. Invalid: the pools choose.
	FramedIP netip.Addr
	// Class, on EAPAccept, are opaque values the backend wants back in
	// the peer's accounting records (RADIUS Class, RFC 2865 section
	// 5.25).
	Class [][]byte
	// InterimInterval, on EAPAccept, is how often the backend wants
	// interim accounting for the peer (RADIUS Acct-Interim-Interval);
	// 0: the backend's default (EAPAccounting.AccountingInterval).
	InterimInterval time.Duration
	// Server names who answered, for logs.
	Server string
}

// SetEAPBackend replaces Config.EAPBackend (a reload of the RADIUS
// settings) and returns the one replaced. Conversations already started
// stay with the backend that started them; accounting records go to the
// new one from now on, those of sessions started before too.
func (e *Engine) SetEAPBackend(b EAPBackend) EAPBackend {
	e.mu.Lock()
	defer e.unlock()
	old := e.cfg.EAPBackend
	e.cfg.EAPBackend = b
	return old
}
