package radius

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2866"
	"layeh.com/radius/rfc2869"
)

// AcctSession is what the accounting records of one session say about
// it (RFC 2866). Fill it once, after the Access-Accept, and pass the same
// one to Start, Interim and Stop.
type AcctSession struct {
	// ID is the Acct-Session-Id, unique per session (RFC 2866 §5.5).
	ID       string
	UserName string
	// FramedIP is the client's virtual IP; invalid: not sent.
	FramedIP netip.Addr
	// Calling and Called as in Peer.
	Calling, Called netip.AddrPort
	NASPort         uint32
	NASPortID       string
	// Class echoes Reply.Class (RFC 2865 §5.25).
	Class [][]byte
	// Started is when the session began; Acct-Session-Time counts from it.
	Started time.Time
}

// Usage is what a session moved so far. In is what the client sent to us,
// Out what we sent to it: the NAS's view (RFC 2866 §5.3, §5.4).
type Usage struct {
	InOctets, OutOctets   uint64
	InPackets, OutPackets uint64
}

// TerminateCause is the Acct-Terminate-Cause of a Stop (RFC 2866 §5.10).
type TerminateCause uint32

// The causes an IPsec gateway has a use for.
const (
	CauseUserRequest    = TerminateCause(rfc2866.AcctTerminateCause_Value_UserRequest)    // the peer deleted the IKE SA
	CauseLostCarrier    = TerminateCause(rfc2866.AcctTerminateCause_Value_LostCarrier)    // the peer stopped answering (DPD)
	CauseIdleTimeout    = TerminateCause(rfc2866.AcctTerminateCause_Value_IdleTimeout)    // no traffic for too long
	CauseSessionTimeout = TerminateCause(rfc2866.AcctTerminateCause_Value_SessionTimeout) // a lifetime ran out
	CauseAdminReset     = TerminateCause(rfc2866.AcctTerminateCause_Value_AdminReset)     // an operator closed it
	CauseNASError       = TerminateCause(rfc2866.AcctTerminateCause_Value_NASError)       // our failure
	CauseNASRequest     = TerminateCause(rfc2866.AcctTerminateCause_Value_NASRequest)     // we closed it (rekey failed, ...)
	CauseNASReboot      = TerminateCause(rfc2866.AcctTerminateCause_Value_NASReboot)      // the daemon is stopping
	CausePortPreempted  = TerminateCause(rfc2866.AcctTerminateCause_Value_PortPreempted)  // a new session of the same user replaced it
)

func (t TerminateCause) String() string { return rfc2866.AcctTerminateCause(t).String() }

// AccountingStart sends Acct-Status-Type Start. With accounting off it
// does nothing.
func (c *Client) AccountingStart(ctx context.Context, a *AcctSession) error {
	return c.account(ctx, a, rfc2866.AcctStatusType_Value_Start, nil, 0)
}

// AccountingInterim sends Acct-Status-Type Interim-Update with the usage
// so far.
func (c *Client) AccountingInterim(ctx context.Context, a *AcctSession, u Usage) error {
	return c.account(ctx, a, rfc2866.AcctStatusType_Value_InterimUpdate, &u, 0)
}

// AccountingStop sends Acct-Status-Type Stop with the final usage and
// the cause.
func (c *Client) AccountingStop(ctx context.Context, a *AcctSession, u Usage, cause TerminateCause) error {
	return c.account(ctx, a, rfc2866.AcctStatusType_Value_Stop, &u, cause)
}

func (c *Client) account(ctx context.Context, a *AcctSession, status rfc2866.AcctStatusType, u *Usage, cause TerminateCause) error {
	if !c.cfg.Accounting {
		return nil
	}
	if a.ID == "" {
		return fmt.Errorf("radius: accounting %v without an Acct-Session-Id", status)
	}
	servers := make([]*Server, len(c.servers))
	for i := range c.servers {
		servers[i] = &c.servers[i]
	}
	now := c.now()
	_, err := c.exchange(ctx, servers, true, func(srv *Server) (*radius.Packet, error) {
		p, err := c.newRequest(radius.CodeAccountingRequest, srv)
		if err != nil {
			return nil, err
		}
		rfc2866.AcctStatusType_Set(p, status)
		for _, s := range []struct {
			t    radius.Type
			name string
			v    string
		}{
			{rfc2866.AcctSessionID_Type, "Acct-Session-Id", a.ID},
			{rfc2865.UserName_Type, "User-Name", a.UserName},
			{rfc2869.NASPortID_Type, "NAS-Port-Id", a.NASPortID},
		} {
			if err := addStringAttr(p, s.t, s.name, s.v); err != nil {
				return nil, err
			}
		}
		if a.Called.IsValid() {
			addStringAttr(p, rfc2865.CalledStationID_Type, "Called-Station-Id", stationID(a.Called))
		}
		if a.Calling.IsValid() {
			addStringAttr(p, rfc2865.CallingStationID_Type, "Calling-Station-Id", stationID(a.Calling))
		}
		if a.NASPort != 0 {
			rfc2865.NASPort_Set(p, rfc2865.NASPort(a.NASPort))
		}
		if a.FramedIP.Is4() {
			b := a.FramedIP.As4()
			p.Add(rfc2865.FramedIPAddress_Type, b[:])
		}
		for _, cl := range a.Class {
			if len(cl) <= maxAttrLen {
				p.Add(rfc2865.Class_Type, cl)
			}
		}
		if u != nil {
			addCounter(p, rfc2866.AcctInputOctets_Type, rfc2869.AcctInputGigawords_Type, u.InOctets)
			addCounter(p, rfc2866.AcctOutputOctets_Type, rfc2869.AcctOutputGigawords_Type, u.OutOctets)
			rfc2866.AcctInputPackets_Set(p, rfc2866.AcctInputPackets(saturate32(u.InPackets)))
			rfc2866.AcctOutputPackets_Set(p, rfc2866.AcctOutputPackets(saturate32(u.OutPackets)))
			var secs uint64
			if !a.Started.IsZero() && now.After(a.Started) {
				secs = uint64(now.Sub(a.Started) / time.Second)
			}
			rfc2866.AcctSessionTime_Set(p, rfc2866.AcctSessionTime(saturate32(secs)))
		}
		if status == rfc2866.AcctStatusType_Value_Stop && cause != 0 {
			rfc2866.AcctTerminateCause_Set(p, rfc2866.AcctTerminateCause(cause))
		}
		return p, nil
	})
	if err != nil {
		return err
	}
	c.stats.acctRes.Add(1)
	return nil
}

// addCounter sends a 64-bit octet count as its low 32 bits and, when it
// passed 2^32, the number of wraps in the Gigawords attribute (RFC 2869
// §5.1, §5.2).
func addCounter(p *radius.Packet, low, giga radius.Type, n uint64) {
	p.Add(low, radius.NewInteger(uint32(n)))
	if n>>32 != 0 {
		p.Add(giga, radius.NewInteger(saturate32(n>>32)))
	}
}

func saturate32(n uint64) uint32 {
	if n > 0xffffffff {
		return 0xffffffff
	}
	return uint32(n)
}
