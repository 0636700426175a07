package ike

import (
	"net/netip"
	"time"
)

// EAPAccounting is implemented by an EAP backend that keeps accounting
// (RADIUS Accounting-Request Start and Stop, RFC 2866) for the peers it
// authenticated. The engine calls it under its lock: it must not block
// (the daemon's sends from a goroutine of its own).
type EAPAccounting interface {
	// AccountingStart: the peer's first CHILD_SA is up.
	AccountingStart(s EAPSession)
	// AccountingStop: the peer's IKE SA is gone, with what its CHILD_SAs
	// (rekeyed ones included) carried.
	AccountingStop(s EAPSession, u EAPUsage)
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
}

// EAPUsage is what an accounted IKE SA's CHILD_SAs carried, "in" from
// the peer.
type EAPUsage struct {
	BytesIn, BytesOut     uint64
	PacketsIn, PacketsOut uint64
	Duration              time.Duration
}

// eapAcct is an IKE SA's accounting, set when it started.
type eapAcct struct {
	a       EAPAccounting
	session EAPSession
	usage   EAPUsage
}

// childUp starts accounting with the IKE SA's first CHILD_SA when its
// peer was authenticated by an EAP backend that keeps accounting.
func (sa *ikeSA) childUp() {
	if sa.acct != nil || sa.conn.remote.Auth != AuthEAPRadius || sa.state != IKESAEstablished {
		return
	}
	a, ok := sa.e.cfg.EAPBackend.(EAPAccounting)
	if !ok {
		return
	}
	sa.acct = &eapAcct{a: a, session: EAPSession{
		IKESAID: sa.id, Identity: sa.eapIdentity, Connection: sa.conn.Name,
		Remote: sa.remote, Local: sa.local, VIPs: sa.vipAddrs(), Started: sa.e.clock.Now(),
	}}
	a.AccountingStart(sa.acct.session)
}

// countChild adds a going CHILD_SA's counters to the IKE SA's usage.
func (sa *ikeSA) countChild(c *childSA) {
	if sa.acct == nil {
		return
	}
	dp := sa.e.cfg.Dataplane
	if c.spiIn != 0 && c.inInstalled {
		if st, err := dp.QuerySA(c.inboundID()); err == nil {
			sa.acct.usage.BytesIn += st.Bytes
			sa.acct.usage.PacketsIn += st.Packets
		}
	}
	if c.outInstalled {
		if st, err := dp.QuerySA(c.outboundID()); err == nil {
			sa.acct.usage.BytesOut += st.Bytes
			sa.acct.usage.PacketsOut += st.Packets
		}
	}
}

// stopAccounting ends the IKE SA's accounting, after its CHILD_SAs went.
func (sa *ikeSA) stopAccounting() {
	if sa.acct == nil {
		return
	}
	acct := sa.acct
	sa.acct = nil
	acct.usage.Duration = sa.e.clock.Now().Sub(acct.session.Started)
	acct.a.AccountingStop(acct.session, acct.usage)
}
