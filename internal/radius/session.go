package radius

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2869"
)

// Peer describes the IKE peer a Session authenticates, in the attributes
// charon sends for it.
type Peer struct {
	// UserName is the peer's EAP identity (User-Name, RFC 2865 §5.1).
	UserName string
	// Calling is the peer's outer address and port (Calling-Station-Id);
	// Called is ours that it reached (Called-Station-Id). Either may be
	// left zero.
	Calling, Called netip.AddrPort
	// NASPort is the IKE SA's unique ID, as charon sends it; 0: not sent.
	NASPort uint32
	// NASPortID is the connection's name (NAS-Port-Id); empty: not sent.
	NASPortID string
}

// Outcome is what the server decided.
type Outcome int

const (
	// Challenge: Access-Challenge, EAP carries the next EAP request.
	Challenge Outcome = iota + 1
	// Accept: Access-Accept, EAP carries the EAP-Success.
	Accept
	// Reject: Access-Reject, EAP carries the EAP-Failure if the server
	// sent one.
	Reject
)

func (o Outcome) String() string {
	switch o {
	case Challenge:
		return "Access-Challenge"
	case Accept:
		return "Access-Accept"
	case Reject:
		return "Access-Reject"
	}
	return "unknown outcome"
}

// Reply is a verified answer to one EAP round.
type Reply struct {
	Outcome Outcome
	// EAP is the EAP packet from the EAP-Message attributes, joined.
	EAP []byte
	// MSK, on Accept, is MS-MPPE-Recv-Key || MS-MPPE-Send-Key, zero-padded
	// to 64 bytes (see msk); nil when the server sent no keys or keys that
	// do not decrypt, MSKError then says why.
	MSK      []byte
	MSKError error
	// FramedIP, on Accept with Config.FramedIP, is the Framed-IP-Address
	// the server assigned; invalid otherwise.
	FramedIP netip.Addr
	// Class, on Accept, are the Class attributes to echo in accounting
	// (RFC 2865 §5.25).
	Class [][]byte
	// InterimInterval, on Accept, is the Acct-Interim-Interval the server
	// asked for (RFC 2869 section 5.16), at least 60 seconds; 0 when it
	// named none.
	InterimInterval time.Duration
	// Server is the name of the server that answered.
	Server string
}

// minInterimInterval is the shortest Acct-Interim-Interval taken from a
// server: RFC 2869 section 5.16 wants no less than 60 seconds.
const minInterimInterval = time.Minute

// Session relays one EAP conversation (one IKE SA). The first request
// may go to every server in turn; the rest go only to the server that
// answered it, whose State they echo. A Session is used by one goroutine
// at a time, as an EAP conversation is.
type Session struct {
	c      *Client
	peer   Peer
	server *Server // set by the first answer
	state  []byte  // the last State attribute received
}

// NewSession starts a conversation for a peer. It sends nothing yet.
func (c *Client) NewSession(p Peer) (*Session, error) {
	if p.UserName == "" {
		return nil, errors.New("radius: session without a User-Name")
	}
	if len(p.UserName) > maxAttrLen {
		return nil, fmt.Errorf("radius: User-Name of %d bytes, at most %d fit an attribute", len(p.UserName), maxAttrLen)
	}
	if len(p.NASPortID) > maxAttrLen {
		return nil, fmt.Errorf("radius: NAS-Port-Id of %d bytes, at most %d fit an attribute", len(p.NASPortID), maxAttrLen)
	}
	return &Session{c: c, peer: p}, nil
}

// maxEAPLen is the longest EAP packet an Access-Request carries: the
// packet is at most 4096 bytes, and the other attributes take at most
// a few hundred.
const maxEAPLen = 3000

// Exchange sends the peer's EAP packet (starting with its EAP-Response/
// Identity) in an Access-Request and returns the server's verified
// answer. An error means no answer: ErrNotResponding (as a
// *NotRespondingError naming each server and why) or the context's
// error.
func (s *Session) Exchange(ctx context.Context, eap []byte) (*Reply, error) {
	if len(eap) < 4 {
		return nil, fmt.Errorf("radius: EAP packet of %d bytes is shorter than its header", len(eap))
	}
	if len(eap) > maxEAPLen {
		return nil, fmt.Errorf("radius: EAP packet of %d bytes is too long for RADIUS (at most %d)", len(eap), maxEAPLen)
	}
	c := s.c
	servers := make([]*Server, 0, len(c.servers))
	if s.server != nil {
		servers = append(servers, s.server)
	} else {
		for i := range c.servers {
			servers = append(servers, &c.servers[i])
		}
	}
	ans, err := c.exchange(ctx, servers, false, func(srv *Server) (*radius.Packet, error) {
		return s.accessRequest(srv, eap)
	})
	if err != nil {
		return nil, err
	}
	s.server = ans.server
	return s.interpret(ans)
}

// maxPasswordLen is the longest User-Password RFC 2865 §5.2 allows.
const maxPasswordLen = 128

// Authenticate asks the servers about the peer's user name and password
// in one Access-Request with User-Password (PAP, RFC 2865 §5.2), as
// IKEv1 XAuth has them: an Access-Accept accepts, anything else (an
// Access-Challenge too: XAuth has no further round) refuses. An error
// means no answer, as with Exchange.
func (s *Session) Authenticate(ctx context.Context, password []byte) (*Reply, error) {
	if len(password) > maxPasswordLen {
		return nil, fmt.Errorf("radius: password of %d bytes, at most %d fit User-Password", len(password), maxPasswordLen)
	}
	c := s.c
	servers := make([]*Server, 0, len(c.servers))
	for i := range c.servers {
		servers = append(servers, &c.servers[i])
	}
	ans, err := c.exchange(ctx, servers, false, func(srv *Server) (*radius.Packet, error) {
		p, err := s.baseRequest(srv)
		if err != nil {
			return nil, err
		}
		if err := rfc2865.UserPassword_Set(p, password); err != nil {
			return nil, err
		}
		return p, nil
	})
	if err != nil {
		return nil, err
	}
	s.server = ans.server
	r, err := s.interpret(ans)
	if err != nil {
		return nil, err
	}
	clear(r.MSK)
	r.MSK = nil
	return r, nil
}

// accessRequest builds the Access-Request of one round (RFC 3579 §3.1).
func (s *Session) accessRequest(srv *Server, eap []byte) (*radius.Packet, error) {
	p, err := s.baseRequest(srv)
	if err != nil {
		return nil, err
	}
	// Split over as many EAP-Message attributes as it takes, 253 bytes
	// each (RFC 3579 §3.1).
	if err := rfc2869.EAPMessage_Set(p, eap); err != nil {
		return nil, err
	}
	return p, nil
}

// baseRequest builds an Access-Request with the peer's attributes and
// the State of the last answer.
func (s *Session) baseRequest(srv *Server) (*radius.Packet, error) {
	p, err := s.c.newRequest(radius.CodeAccessRequest, srv)
	if err != nil {
		return nil, err
	}
	if err := rfc2865.UserName_SetString(p, s.peer.UserName); err != nil {
		return nil, err
	}
	if s.peer.NASPort != 0 {
		rfc2865.NASPort_Set(p, rfc2865.NASPort(s.peer.NASPort))
	}
	if err := addStringAttr(p, rfc2869.NASPortID_Type, "NAS-Port-Id", s.peer.NASPortID); err != nil {
		return nil, err
	}
	if s.peer.Called.IsValid() {
		addStringAttr(p, rfc2865.CalledStationID_Type, "Called-Station-Id", stationID(s.peer.Called))
	}
	if s.peer.Calling.IsValid() {
		addStringAttr(p, rfc2865.CallingStationID_Type, "Calling-Station-Id", stationID(s.peer.Calling))
	}
	if s.state != nil {
		p.Add(rfc2865.State_Type, s.state)
	}
	return p, nil
}

// interpret reads a verified Access-Challenge, -Accept or -Reject.
func (s *Session) interpret(ans *answer) (*Reply, error) {
	c, p := s.c, ans.reply
	r := &Reply{Server: ans.server.name()}
	// EAP-Message attributes are concatenated in order (RFC 3579 §3.1).
	r.EAP, _ = rfc2869.EAPMessage_Lookup(p)
	s.state = append([]byte(nil), rfc2865.State_Get(p)...)
	if len(s.state) == 0 {
		s.state = nil
	}
	switch p.Code {
	case radius.CodeAccessChallenge:
		c.stats.challenges.Add(1)
		r.Outcome = Challenge
		if len(r.EAP) < 4 {
			return nil, fmt.Errorf("radius: Access-Challenge from server '%s' without an EAP-Message", r.Server)
		}
	case radius.CodeAccessAccept:
		c.stats.accepts.Add(1)
		r.Outcome = Accept
		r.MSK, r.MSKError = msk(p, ans.request)
		if r.MSKError != nil && !errors.Is(r.MSKError, ErrNoMPPEKeys) {
			c.log.Info(fmt.Sprintf("RADIUS Access-Accept from server '%s' has MPPE keys that do not decrypt: %v", r.Server, r.MSKError))
		}
		if c.cfg.FramedIP {
			if ip, err := rfc2865.FramedIPAddress_Lookup(p); err == nil {
				r.FramedIP = framedIP(ip)
			}
		}
		if v, err := rfc2869.AcctInterimInterval_Lookup(p); err == nil && v > 0 {
			r.InterimInterval = max(time.Duration(v)*time.Second, minInterimInterval)
		}
		classes, _ := rfc2865.Class_Gets(p)
		for _, v := range classes {
			r.Class = append(r.Class, append([]byte(nil), v...))
		}
		c.log.Info(fmt.Sprintf("RADIUS authentication of '%s' successful", s.peer.UserName))
	case radius.CodeAccessReject:
		c.stats.rejects.Add(1)
		r.Outcome = Reject
		c.log.Info(fmt.Sprintf("RADIUS authentication of '%s' failed", s.peer.UserName))
	}
	return r, nil
}

// framedIP reads a Framed-IP-Address. 255.255.255.255 (the user may
// choose) and 255.255.255.254 (the NAS should choose) leave the choice to
// our pool (RFC 2865 §5.8), and so does 0.0.0.0.
func framedIP(ip net.IP) netip.Addr {
	a, ok := netip.AddrFromSlice(ip.To4())
	if !ok || a.IsUnspecified() || a == netip.AddrFrom4([4]byte{255, 255, 255, 255}) || a == netip.AddrFrom4([4]byte{255, 255, 255, 254}) {
		return netip.Addr{}
	}
	return a
}
