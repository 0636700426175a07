package ike

import (
	"net/netip"
	"slices"
	"time"
)

// EAPAccounting is implemented by an EAP backend that keeps accounting
// (RADIUS Accounting-Request Start, Interim-Update and Stop, RFC 2866)
// for the peers it authenticated. The engine calls it under its lock: it
// must not block (the daemon's sends from a goroutine of its own).
//
// A session is the peer's IKE SA and those that rekey it; it survives a
// daemon restart that takes the IKE SA back (no second Start). Records
// go to the backend configured when they are sent, so a reload that
// changes the servers sends the Stops of earlier sessions to the new
// ones.
type EAPAccounting interface {
	// AccountingStart: the peer's first CHILD_SA is up.
	AccountingStart(s EAPSession)
	// AccountingInterim: the session goes on; u is what it carried so
	// far.
	AccountingInterim(s EAPSession, u EAPUsage)
	// AccountingStop: the peer's IKE SA is gone, with what its CHILD_SAs
	// (rekeyed ones included) carried and why it went.
	AccountingStop(s EAPSession, u EAPUsage)
	// AccountingInterval is how often interim records go out for a
	// session whose backend reply named no interval; 0: none.
	AccountingInterval() time.Duration
}

// EAPSession is one accounted IKE SA.
type EAPSession struct {
	IKESAID    uint32
	Identity   string // the EAP identity
	Connection string
	Remote     netip.AddrPort
	Local      netip.AddrPort
	VIPs       []netip.Addr // the peer's virtual IPs
	Started    time.Time
	// Class are the backend's opaque values to echo in every record
	// (EAPReply.Class).
	Class [][]byte
}

// EAPUsage is what an accounted IKE SA's CHILD_SAs carried, "in" from
// the peer.
type EAPUsage struct {
	BytesIn, BytesOut     uint64
	PacketsIn, PacketsOut uint64
	Duration              time.Duration
	// Cause, in a Stop, is why the IKE SA went.
	Cause EndCause
}

// EndCause is why an IKE SA went, as accounting reports it.
type EndCause uint8

const (
	// EndLocal: we closed it (a failed exchange, a rekey or
	// reauthentication that replaced it, an error).
	EndLocal EndCause = iota
	// EndPeerDeleted: the peer deleted it.
	EndPeerDeleted
	// EndPeerDead: the peer stopped answering (DPD, retransmits).
	EndPeerDead
	// EndExpired: its hard lifetime ran out.
	EndExpired
	// EndAdmin: an operator closed it (terminate).
	EndAdmin
	// EndReplaced: a new IKE SA of the same peer replaced it (unique,
	// INITIAL_CONTACT).
	EndReplaced
	// EndShutdown: the daemon is stopping without keeping it.
	EndShutdown
)

func (c EndCause) String() string {
	return enumName(c, "", "local", "peer-deleted", "peer-dead", "expired", "admin", "replaced", "shutdown")
}

// eapAcct is an IKE SA's accounting, set when it started. It moves to
// the IKE SA that rekeys it (sa).
type eapAcct struct {
	sa       *ikeSA
	session  EAPSession
	usage    EAPUsage // of the CHILD_SAs gone so far
	interval time.Duration
	timer    Timer
}

// accounting is the engine's EAP backend if it keeps accounting.
func (e *Engine) accounting() EAPAccounting {
	a, _ := e.cfg.EAPBackend.(EAPAccounting)
	return a
}

// childUp starts accounting with the IKE SA's first CHILD_SA when its
// peer was authenticated by an EAP backend that keeps accounting.
func (sa *ikeSA) childUp() {
	if sa.acct != nil || sa.conn.remote.Auth != AuthEAPRadius || sa.state != IKESAEstablished {
		return
	}
	a := sa.e.accounting()
	if a == nil {
		return
	}
	sa.acct = &eapAcct{sa: sa, session: EAPSession{
		IKESAID: sa.id, Identity: sa.eapIdentity, Connection: sa.conn.Name,
		Remote: sa.remote, Local: sa.local, VIPs: sa.vipAddrs(), Started: sa.e.clock.Now(),
		Class: sa.eapClass,
	}, interval: sa.eapInterim}
	a.AccountingStart(sa.acct.session)
	sa.acct.arm(a)
}

// arm schedules the next interim record.
func (acct *eapAcct) arm(a EAPAccounting) {
	d := acct.interval
	if d <= 0 {
		d = a.AccountingInterval()
	}
	if d <= 0 {
		return
	}
	acct.timer = acct.sa.e.afterFuncFor(acct.sa, d, func() {
		acct.timer = nil
		sa := acct.sa
		if sa.acct != acct || sa.state == IKESADestroying {
			return
		}
		a := sa.e.accounting()
		if a == nil {
			infof(sa.log, "no EAP backend keeps accounting any more: no interim record for '%s'", acct.session.Identity)
			return
		}
		u := acct.usage
		for _, c := range sa.children {
			sa.addChildUsage(&u, c)
		}
		u.Duration = sa.e.clock.Now().Sub(acct.session.Started)
		a.AccountingInterim(acct.session, u)
		acct.arm(a)
	})
}

func (acct *eapAcct) stopTimer() {
	if acct.timer != nil {
		acct.timer.Stop()
		acct.timer = nil
	}
}

// takeAccounting moves old's accounting session to sa, which rekeyed it.
func (sa *ikeSA) takeAccounting(old *ikeSA) {
	sa.acct, old.acct = old.acct, nil
	if sa.acct != nil {
		sa.acct.sa = sa
	}
}

// countChild adds a going CHILD_SA's counters to the IKE SA's usage.
func (sa *ikeSA) countChild(c *childSA) {
	if sa.acct != nil {
		sa.addChildUsage(&sa.acct.usage, c)
	}
}

// addChildUsage adds a CHILD_SA's counters, as the dataplane has them,
// to u.
func (sa *ikeSA) addChildUsage(u *EAPUsage, c *childSA) {
	dp := sa.e.cfg.Dataplane
	if c.spiIn != 0 && c.inInstalled {
		if st, err := dp.QuerySA(c.inboundID()); err == nil {
			u.BytesIn += st.Bytes
			u.PacketsIn += st.Packets
		}
	}
	if c.outInstalled {
		if st, err := dp.QuerySA(c.outboundID()); err == nil {
			u.BytesOut += st.Bytes
			u.PacketsOut += st.Packets
		}
	}
}

// ending records why the IKE SA is about to go, for its accounting
// Stop; the first cause named wins.
func (sa *ikeSACommon) ending(c EndCause) {
	if !sa.endCauseSet {
		sa.endCause, sa.endCauseSet = c, true
	}
}

// stopAccounting ends the IKE SA's accounting, after its CHILD_SAs went.
func (sa *ikeSA) stopAccounting() {
	acct := sa.acct
	if acct == nil {
		return
	}
	sa.acct = nil
	acct.stopTimer()
	a := sa.e.accounting()
	if a == nil {
		infof(sa.log, "no EAP backend keeps accounting any more: no Stop record for '%s'", acct.session.Identity)
		return
	}
	acct.usage.Duration = sa.e.clock.Now().Sub(acct.session.Started)
	acct.usage.Cause = sa.endCause
	a.AccountingStop(acct.session, acct.usage)
}

// ExportedAccounting is an exported IKE SA's accounting session, which a
// restarted daemon carries on without a second Start.
type ExportedAccounting struct {
	// Session is the unique ID of the IKE SA the session started with
	// (EAPSession.IKESAID), Started when.
	Session  uint32
	Started  time.Time
	Class    [][]byte `json:",omitempty"`
	Interval time.Duration
	// Usage is what the CHILD_SAs gone before the export carried.
	Usage EAPUsage
}

func (sa *ikeSA) exportAccounting() *ExportedAccounting {
	if sa.acct == nil {
		return nil
	}
	return &ExportedAccounting{Session: sa.acct.session.IKESAID, Started: sa.acct.session.Started, Class: cloneClass(sa.acct.session.Class),
		Interval: sa.acct.interval, Usage: sa.acct.usage}
}

// takeBackAccounting carries an imported IKE SA's accounting session on.
func (sa *ikeSA) takeBackAccounting(x *ExportedAccounting) {
	if x == nil {
		return
	}
	a := sa.e.accounting()
	if a == nil {
		infof(sa.log, "accounting session of '%s' not taken back: no EAP backend keeps accounting", sa.eapIdentity)
		return
	}
	sa.eapClass, sa.eapInterim = cloneClass(x.Class), x.Interval
	sa.acct = &eapAcct{sa: sa, session: EAPSession{
		IKESAID: x.Session, Identity: sa.eapIdentity, Connection: sa.conn.Name,
		Remote: sa.remote, Local: sa.local, VIPs: sa.vipAddrs(), Started: x.Started,
		Class: sa.eapClass,
	}, interval: x.Interval, usage: x.Usage}
	sa.acct.usage.Cause = 0
	sa.acct.arm(a)
}

func cloneClass(c [][]byte) [][]byte {
	out := make([][]byte, 0, len(c))
	for _, v := range c {
		out = append(out, slices.Clone(v))
	}
	if len(out) == 0 {
		return nil
	}
	return out
}
