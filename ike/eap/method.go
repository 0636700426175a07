package eap

// Status is where a method stands after a packet.
type Status uint8

const (
	// Continue: the method sends the returned packet and expects another.
	Continue Status = iota + 1
	// Succeeded: on the server, the peer is authenticated and the runner
	// sends EAP-Success. On the peer, the method is satisfied with the
	// server; the returned packet, if any, is sent and EAP-Success may
	// come next.
	Succeeded
	// Failed: the method has failed; the error says why. On the server
	// the runner sends EAP-Failure; on the peer the returned packet, if
	// any (an acknowledgement), is sent and EAP-Failure should follow.
	Failed
)

func (s Status) String() string {
	switch s {
	case Continue:
		return "continue"
	case Succeeded:
		return "succeeded"
	case Failed:
		return "failed"
	}
	return "status?"
}

// ServerMethod is the authenticator side of one EAP method, a state
// machine driven by the peer's Responses. The Server runner owns the
// conversation around it: EAP-Identity, Nak, the Identifier check of each
// Response against the last Request, and the final Success or Failure.
//
// A method builds whole Requests, Identifier included, so that one that
// relays (EAP-RADIUS) can carry identifiers chosen elsewhere; native
// methods use the identifier Begin gave them and count up from there.
// A method that needs many round trips (EAP-TLS) returns Continue until
// it is done; MSK may be of any length (EAP-TLS's is 64 octets).
type ServerMethod interface {
	Type() Type
	// Begin returns the method's first Request, with Identifier id.
	Begin(id uint8) (Packet, error)
	// Process takes a Response of the method's Type whose Identifier
	// matches the last Request. With Continue it returns the next Request;
	// with Succeeded or Failed the returned packet is ignored.
	Process(resp Packet) (Packet, Status, error)
	// Identity is the identity the method authenticated (for
	// EAP-MSCHAPv2 the Name of the Response), valid after Succeeded.
	Identity() string
	// MSK is the Master Session Key after Succeeded, nil for a method
	// that derives none (EAP-MD5). The caller owns the returned slice.
	MSK() []byte
	// Wipe zeroes the method's secrets; it is called when the
	// conversation ends either way.
	Wipe()
}

// PeerMethod is the peer side of one EAP method, driven by the server's
// Requests. The Peer runner answers Identity and Notification itself,
// sends Nak for methods it does not take, and handles Success and
// Failure.
type PeerMethod interface {
	Type() Type
	// Process takes a Request of the method's Type and returns the
	// Response to send, or nil if there is none.
	Process(req Packet) (*Packet, Status, error)
	// MSK as for ServerMethod, valid after Succeeded.
	MSK() []byte
	// Wipe zeroes the method's secrets.
	Wipe()
}
