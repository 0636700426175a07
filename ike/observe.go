package ike

import "time"

// SAEvent tells Config.OnIKESAEstablished and Config.OnChildSAInstalled
// about an SA that was set up, for metrics: the engine keeps no histograms
// and knows no metrics library.
type SAEvent struct {
	Conn      string // connection name
	Child     string // CHILD_SA config name; "" for an IKE SA
	Initiator bool   // we sent the request that set the SA up
	Rekey     bool   // a CHILD_SA that replaces another one
	// Took is how long setting up took: for an IKE SA from its IKE_SA_INIT
	// (IKEv1: first Main or Aggressive Mode message) sent or received to
	// ESTABLISHED; for a CHILD_SA from the start of the exchange that
	// negotiated it (IKE_AUTH, CREATE_CHILD_SA, Quick Mode) to its SAs
	// installed.
	Took time.Duration
	// SinceInit is, for the first CHILD_SA installed by an IKE SA set up
	// with IKE_SA_INIT (IKEv1: phase 1), the time from that IKE_SA_INIT to
	// the CHILD_SA installed; zero for the others.
	SinceInit time.Duration
}

// observeEstablished reports an IKE SA that reached ESTABLISHED from an
// IKE_SA_INIT or IKEv1 phase 1 (not one made by a rekey or taken back:
// initAt is zero).
func (sa *ikeSACommon) observeEstablished() {
	on := sa.e.cfg.OnIKESAEstablished
	if on == nil || sa.initAt.IsZero() || sa.establishObserved {
		return
	}
	sa.establishObserved = true
	on(SAEvent{Conn: sa.conn.Name, Initiator: sa.initiator, Took: sa.e.clock.Now().Sub(sa.initAt)})
}

// observeChild reports a CHILD_SA of the IKE SA whose SAs are installed,
// negotiated from createdAt on (zero: not observed).
func (sa *ikeSACommon) observeChild(child string, createdAt time.Time, initiator, rekey bool) {
	on := sa.e.cfg.OnChildSAInstalled
	if on == nil || createdAt.IsZero() {
		return
	}
	now := sa.e.clock.Now()
	ev := SAEvent{Conn: sa.conn.Name, Child: child, Initiator: initiator, Rekey: rekey, Took: now.Sub(createdAt)}
	if !sa.initAt.IsZero() && !sa.childObserved {
		ev.SinceInit = now.Sub(sa.initAt)
	}
	sa.childObserved = true
	on(ev)
}

func (c *childSA) observeInstalled(initiator, rekey bool) {
	c.ike.observeChild(c.cfg.Name, c.createdAt, initiator, rekey)
}
