package ike

import (
	"net/netip"
	"slices"
	"time"

	"github.com/xdpsec/xdpsec/ike/message"
)

// IKEv2 reauthentication (swanctl.conf's reauth_time, RFC 7296 section
// 2.8.3), as charon does it: at reauth_time (less the jitter) the IKE SA
// is replaced by a new one towards the same peer, set up from scratch with
// IKE_SA_INIT and a full IKE_AUTH, and with a new CHILD_SA for each of the
// old one's children.
//
//   - make-before-break (charon.make_before_break, Config.MakeBeforeBreak,
//     the default): the new IKE SA and its CHILD_SAs are established
//     first, then the old IKE SA is deleted with its CHILD_SAs. A new
//     CHILD_SA of the same selectors shares the old one's reqid and so its
//     policies (reqidTable): the policies stay, and traffic moves to the
//     new SAs without a gap. The new IKE_AUTH carries no INITIAL_CONTACT,
//     the old IKE SA being a contact with the peer still, and a responder
//     with unique = replace deletes the old one only replaceReauthDelay
//     later (unique.go).
//   - break-before-make: the old IKE SA is deleted first (its policies
//     with it), then the connection is established again.
//
// Either end may reauthenticate: a responder does it actively, unless the
// peer has virtual IPs or authenticated with EAP, which it alone can
// establish again (charon's "initiator did not reauthenticate as
// requested").

// renewTime is when an IKE SA is renewed first, by rekeying or
// reauthentication: the shorter of rekey_time and reauth_time that is set.
// Its hard lifetime is over_time later.
func (c *Connection) renewTime() time.Duration {
	switch {
	case c.RekeyTime == 0:
		return c.ReauthTime
	case c.ReauthTime == 0:
		return c.RekeyTime
	}
	return min(c.RekeyTime, c.ReauthTime)
}

// makeBeforeBreak reports whether reauthentication establishes the new IKE
// SA before deleting the old one.
func (e *Engine) makeBeforeBreak() bool {
	return e.cfg.MakeBeforeBreak == nil || *e.cfg.MakeBeforeBreak
}

// withJitter is d less a random part of rand_time, as rekeying and
// reauthentication are scheduled.
func (sa *ikeSA) withJitter(d time.Duration) time.Duration {
	if r := sa.conn.RandTime; r > 0 {
		d -= time.Duration(randUint32(sa.e)%uint32(r/time.Second+1)) * time.Second
	}
	return d
}

// scheduleReauth arms the reauthentication timer of an IKE SA just
// established when reauth_time is set, independently of rekeying, as
// charon does: a rekey renews the keys and keeps the time of
// reauthentication (inheritReauth).
func (sa *ikeSA) scheduleReauth() {
	if sa.conn.ReauthTime == 0 {
		return
	}
	d := sa.withJitter(sa.conn.ReauthTime)
	sa.reauthAt = sa.e.clock.Now().Add(d)
	debugf(sa.log, "scheduling reauthentication in %ds", int(d/time.Second))
	sa.armReauth(d)
}

func (sa *ikeSA) armReauth(d time.Duration) {
	if sa.reauthTimer != nil {
		sa.reauthTimer.Stop()
	}
	sa.reauthTimer = sa.e.afterFunc(d, func() {
		sa.reauthTimer = nil
		sa.reauth()
	})
}

// inheritReauth keeps the reauthentication time of the IKE SA a rekey
// replaced: rekeying renews keys, not the peer's authentication.
func (sa *ikeSA) inheritReauth(old *ikeSA) {
	if old.reauthAt.IsZero() {
		return
	}
	sa.reauthAt = old.reauthAt
	d := max(sa.reauthAt.Sub(sa.e.clock.Now()), 0)
	debugf(sa.log, "rescheduling reauthentication in %ds after rekeying, lifetime reduced to %ds",
		int(d/time.Second), int((d+sa.conn.OverTime)/time.Second))

	sa.armReauth(d)
	sa.armExpire(d + sa.conn.OverTime)
}

// reauth starts the reauthentication of an established IKE SA.
func (sa *ikeSA) reauth() {
	if sa.state != IKESAEstablished && sa.state != IKESARekeying {
		return
	}
	if sa.state == IKESARekeying || sa.tm.hasTask(taskIKERekey) {
		// An IKE SA rekey in flight hands the time over (inheritReauth);
		// try again shortly if this SA stays.
		sa.armReauth(sa.e.cfg.RetransmitTimeout * 4)
		return
	}
	if !sa.initiator {
		sa.log.Info("initiator did not reauthenticate as requested")
		if len(sa.vips) > 0 || sa.conn.remote.Auth.isEAP() {
			infof(sa.log, "IKE_SA %s will timeout in %ds", sa.name(), int(sa.conn.OverTime/time.Second))
			return
		}
		infof(sa.log, "reauthenticating IKE_SA %s actively", sa.name())
	} else {
		infof(sa.log, "reauthenticating IKE_SA %s", sa.name())
	}
	var children []*childConfig
	for _, c := range sa.children {
		if c.state == ChildSAInstalled || c.state == ChildSARekeying {
			children = append(children, c.cfg)
		}
	}
	if len(children) == 0 {
		sa.log.Info("unable to reauthenticate IKE_SA, no CHILD_SA to recreate")
		return
	}
	sa.reauthenticating = true
	if sa.rekeyTimer != nil {
		sa.rekeyTimer.Stop()
	}
	local, remote := sa.reauthEnds()
	vips := slices.Clone(sa.localVIPs)
	if !sa.e.makeBeforeBreak() {
		// The new IKE SA starts when this one is gone (destroy), whether
		// the peer answered our DELETE or not.
		sa.afterDestroy = func() {
			sa.e.startIKESA(sa.conn, children, local, remote, nil).reauthVIPs = vips
		}
		sa.delete()
		return
	}
	// The IKE_AUTH request that asks for the virtual IPs is built once the
	// IKE_SA_INIT response arrives.
	sa.e.startIKESA(sa.conn, children, local, remote, &reauthComplete{old: sa}).reauthVIPs = vips
}

// reauthEnds are the addresses the new IKE SA starts with: the old one's,
// on the connection's ports (an IKE SA floated to port 4500 behind a NAT
// starts again on 500 and floats again).
func (sa *ikeSA) reauthEnds() (local, remote netip.AddrPort) {
	rport := sa.conn.RemotePort
	if !sa.initiator && len(sa.conn.RemoteAddrs) == 0 {
		rport = sa.remote.Port() // a responder knows the peer's port only
	}
	return netip.AddrPortFrom(sa.local.Addr(), sa.conn.LocalPort), netip.AddrPortFrom(sa.remote.Addr(), rport)
}

// reauthComplete is the last task of the IKE SA that reauthenticates
// another (charon's ike_reauth_complete): queued after the CHILD_SAs it
// recreates, it sends nothing and deletes the old IKE SA once they are
// established, or failed.
type reauthComplete struct {
	old *ikeSA
}

func (t *reauthComplete) kind() taskKind                   { return taskReauthComplete }
func (t *reauthComplete) exchange() message.ExchangeType   { return message.INFORMATIONAL }
func (t *reauthComplete) build(m *message.Message) error   { return nil }
func (t *reauthComplete) process(m *message.Message) error { return nil }

// run deletes the old IKE SA unless it is already going.
func (t *reauthComplete) run() {
	if old := t.old; old.state == IKESAEstablished || old.state == IKESARekeying {
		old.delete()
	}
}
