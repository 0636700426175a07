package ike

import (
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/xdpsec/xdpsec/ike/message"
)

// childRekey replaces a CHILD_SA make-before-break (RFC 7296 section
// 1.3.3): the new CHILD_SA is installed next to the old one, which the
// initiator then deletes.
//
//	Initiator                         Responder
//	-------------------------------------------------------------------
//	HDR, SK {N(REKEY_SA), SA, Ni, [KEi,]
//	    TSi, TSr}  -->
//	                             <--  HDR, SK {SA, Nr, [KEr,] TSi, TSr}
//	HDR, SK {D(ESP, old SPI_i)}  -->
//	                             <--  HDR, SK {D(ESP, old SPI_r)}
//
// When both ends rekey the same CHILD_SA at once (section 2.8.1), each
// answers the other's request and so two new CHILD_SAs appear; the one
// whose exchange had the lowest nonce is deleted by its initiator, and
// the winner deletes the old one.
//
// With additional key exchanges (RFC 9370 section 2.2.4) the new CHILD_SAs
// are only made by the IKE_FOLLOWUP_KE exchanges after the CREATE_CHILD_SA
// exchanges, so the collision is decided when our CREATE_CHILD_SA response
// arrives, by the same nonces: the loser does not start its IKE_FOLLOWUP_KE
// exchanges (nothing to delete) and waits for the winner's, the winner
// goes on and forgets the loser's pending CHILD_SA. A peer's rekey request
// that comes after we sent our first IKE_FOLLOWUP_KE request is answered
// with TEMPORARY_FAILURE.
type childRekey struct {
	sa        *ikeSA
	initiator bool
	old       *childSA
	create    *childCreate
	errNotify *message.Notify // responder
	// collision is the peer's rekey of the same CHILD_SA, answered by us
	// while ours was in flight.
	collision *childCreate
	oldGone   bool
}

func newChildRekey(sa *ikeSA, initiator bool, old *childSA) *childRekey {
	return &childRekey{sa: sa, initiator: initiator, old: old}
}

func (t *childRekey) kind() taskKind                 { return taskChildRekey }
func (t *childRekey) exchange() message.ExchangeType { return message.CREATE_CHILD_SA }

// rekeyFor returns our rekey of c in flight, if any.
func (sa *ikeSA) rekeyFor(c *childSA) *childRekey {
	if r, ok := sa.tm.active.(*childRekey); ok && r.initiator && r.old == c {
		return r
	}
	return nil
}

func (t *childRekey) build(m *message.Message) error {
	if !t.initiator {
		if t.errNotify != nil {
			m.Payloads = append(m.Payloads, t.errNotify)
			return nil
		}
		return t.create.buildResponse(m)
	}
	sa, old := t.sa, t.old
	if t.create == nil {
		if old.state != ChildSAInstalled || sa.childByID(old.id) == nil {
			return fmt.Errorf("CHILD_SA %s is %s, not rekeying it", old.name(), old.state)
		}
		old.setState(ChildSARekeying)
		infof(sa.log, "rekeying CHILD_SA %s with SPIs %.8x_i %.8x_o", old.name(), old.spiIn, old.spiOut)
		t.create = newChildCreate(sa, true, old.cfg, old)
	}
	m.Payloads = append(m.Payloads, &message.Notify{Protocol: wireProto(old.proto()),
		SPI: binary.BigEndian.AppendUint32(nil, old.spiIn), NotifyType: message.REKEY_SA})
	if err := t.create.buildRequest(m); err != nil {
		old.setState(ChildSAInstalled)
		return err
	}
	return nil
}

func (t *childRekey) process(m *message.Message) error {
	if !t.initiator {
		return t.processRequest(m)
	}
	sa, old := t.sa, t.old
	if nt, ok := notifyErr(m); ok && nt != message.INVALID_KE_PAYLOAD {
		infof(sa.log, "received %v notify, rekeying CHILD_SA %s failed", nt, old.name())
		t.create.abort()
		if t.collision != nil && t.collision.done {
			// The peer won by finishing first; it deletes the old one.
			old.setState(ChildSARekeyed)
			return nil
		}
		if t.collision != nil && t.collision.fu != nil && sa.e.followups[sa] == t.collision.fu {
			// The peer declined ours after its first IKE_FOLLOWUP_KE
			// (RFC 9370 section 2.2.4): its rekey goes on, the old
			// CHILD_SA is replaced when it is done (or rekeyed again
			// later if it fails).
			infof(sa.log, "CHILD_SA %s is being rekeyed by the peer with additional key exchanges", old.name())
			return nil
		}
		if nt == message.CHILD_SA_NOT_FOUND && sa.childByID(old.id) == old && old.state != ChildSADestroying {
			// The peer has no such CHILD_SA (RFC 7296 section 3.10.1):
			// it deleted it, and its DELETE crossed the exchange that
			// made it ours, or the exchange that makes it its own is
			// still on its way. Ours goes, with a DELETE that covers
			// the second case, and a new one is made in its place,
			// instead of keeping an SA pair only one end has.
			infof(sa.log, "peer did not find CHILD_SA %s, deleting it and creating a new one", old.name())
			old.setState(ChildSAInstalled)
			sa.tm.queue(newChildDelete(sa, true, old))
			sa.tm.queue(newChildCreate(sa, true, old.cfg, nil))
			return nil
		}
		if old.state == ChildSARekeying {
			old.setState(ChildSAInstalled)
			if nt == message.TEMPORARY_FAILURE && intermediateSupported(old.cfg.proposals()) {
				old.retryRekey()
			}
		}
		return nil
	}
	if err := t.create.processResponse(m); err != nil {
		return err
	}
	if t.create.requeued {
		t.create.requeued = false
		return nil
	}
	if fu := t.create.fu; fu != nil && !t.create.done && t.create.child != nil && t.create.child.state != ChildSADestroying {
		if t.collision != nil && !t.decideFollowupCollision() {
			return nil
		}
		// Installed after IKE_FOLLOWUP_KE (RFC 9370 section 2.2.4).
		fu.onDone = func(ok bool) {
			if ok {
				t.initiatorDone()
			} else if old.state == ChildSARekeying {
				old.setState(ChildSAInstalled)
			}
		}
		return nil
	}
	if !t.create.done {
		if old.state == ChildSARekeying {
			old.setState(ChildSAInstalled)
		}
		return nil
	}
	t.initiatorDone()
	return nil
}

// decideFollowupCollision decides a collision with the peer's rekey when
// our CREATE_CHILD_SA response negotiated additional key exchanges (RFC
// 9370 section 2.2.4): it reports whether ours goes on. The loser drops
// its IKE_FOLLOWUP_KE exchanges before the first; the winner forgets the
// peer's CHILD_SA still waiting for its own (the peer, having lost, sends
// none) or, if the peer's was made without additional exchanges, lets
// initiatorDone settle it as any collision.
func (t *childRekey) decideFollowupCollision() bool {
	sa, old, peer := t.sa, t.old, t.collision
	if weLose(t.create.ni, t.create.nr, peer.ni, peer.nr) {
		infof(sa.log, "CHILD_SA rekey collision lost, abort incomplete multi-KE rekeying of %s", old.name())
		fu := t.create.fu
		sa.tm.queued = slices.DeleteFunc(sa.tm.queued, func(q task) bool { return q == fu })
		fu.wipe()
		t.create.abort()
		switch {
		case peer.done:
			old.setState(ChildSARekeyed) // the peer deletes it
		case peer.fu == nil || sa.e.followups[sa] != peer.fu:
			// The peer's was given up meanwhile: the old one stays,
			// and is rekeyed again later.
			old.setState(ChildSAInstalled)
			old.retryRekey()
		}
		return false
	}
	if peer.fu != nil && !peer.done {
		infof(sa.log, "CHILD_SA rekey collision won, continue with multi-KE rekeying of %s", old.name())
		t.collision = nil
		if sa.e.followups[sa] == peer.fu {
			peer.fu.abandon()
		}
	}
	return true
}

// rekeyingChild reports whether we are rekeying c ourselves: our
// CREATE_CHILD_SA or IKE_FOLLOWUP_KE exchanges for it in flight.
func (sa *ikeSA) rekeyingChild(c *childSA) bool {
	if sa.rekeyFor(c) != nil {
		return true
	}
	ours := func(q task) bool {
		fu, ok := q.(*childFollowup)
		return ok && fu.create != nil && fu.initiator && fu.create.rekeyed == c
	}
	return ours(sa.tm.active) || slices.ContainsFunc(sa.tm.queued, ours)
}

// initiatorDone ends our rekey once the new CHILD_SA is installed: the
// collision's loser goes, or the old CHILD_SA.
func (t *childRekey) initiatorDone() {
	sa, old := t.sa, t.old
	if c := t.collision; c != nil && c.fu != nil && !c.done {
		// Ours was made without additional exchanges (the peer's
		// proposal made them optional), the peer's waits for them:
		// ours is there first, the peer's goes.
		t.collision = nil
		if sa.e.followups[sa] == c.fu {
			c.fu.abandon()
		}
	}
	if t.collision != nil && t.collision.done {
		if weLose(t.create.ni, t.create.nr, t.collision.ni, t.collision.nr) {
			infof(sa.log, "CHILD_SA rekey collision lost, deleting redundant CHILD_SA %s", t.create.child.name())
			old.setState(ChildSARekeyed)
			sa.tm.queue(newChildDelete(sa, true, t.create.child))
			return
		}
		infof(sa.log, "CHILD_SA rekey collision won, deleting old CHILD_SA %s", old.name())
		// The peer's CHILD_SA is the redundant one, which it deletes:
		// its outbound SA is never used.
		if r := t.collision.child; r != nil && r.heldOut != nil {
			r.dropHeldOutbound()
			r.replaces = nil
		}
	}
	if t.oldGone || sa.childByID(old.id) == nil {
		return
	}
	old.setState(ChildSARekeyed)
	old.stopTimers()
	sa.tm.queue(newChildDelete(sa, true, old))
}

func (c *childSA) stopTimers() {
	for _, t := range []Timer{c.rekeyTimer, c.expireTimer} {
		if t != nil {
			t.Stop()
		}
	}
}

func (t *childRekey) processRequest(m *message.Message) error {
	sa := t.sa
	n := findNotify(m, message.REKEY_SA)
	proto, ok := saProtoOfWire(n.Protocol)
	if !ok || len(n.SPI) != 4 {
		t.errNotify = notify(message.INVALID_SYNTAX, nil)
		return nil
	}
	spi := binary.BigEndian.Uint32(n.SPI)
	old := sa.childByOutboundSPI(proto, spi)
	if old == nil {
		infof(sa.log, "CHILD_SA with SPI %.8x not found for rekeying", spi)
		t.errNotify = &message.Notify{Protocol: n.Protocol, SPI: n.SPI, NotifyType: message.CHILD_SA_NOT_FOUND}
		return nil
	}
	ours := sa.rekeyFor(old)
	switch {
	case ours != nil:
		infof(sa.log, "detected CHILD_SA rekey collision for %s", old.name())
	case sa.rekeyingChild(old):
		// Our IKE_FOLLOWUP_KE exchanges for it have begun (RFC 9370
		// section 2.2.4).
		infof(sa.log, "peer initiated rekeying of CHILD_SA %s, but we did too and already sent %v, sending TEMPORARY_FAILURE", old.name(), message.IKE_FOLLOWUP_KE)
		t.errNotify = notify(message.TEMPORARY_FAILURE, nil)
		return nil
	case old.state != ChildSAInstalled:
		infof(sa.log, "CHILD_SA %s is %s, refusing to rekey it", old.name(), old.state)
		t.errNotify = notify(message.TEMPORARY_FAILURE, nil)
		return nil
	}
	t.old = old
	t.create = newChildCreate(sa, false, nil, old)
	if err := t.create.processRequest(m); err != nil {
		return err
	}
	if fu := t.create.fu; fu != nil && !t.create.done && t.create.errorNotify == nil {
		if ours != nil {
			// Decided when our response arrives (decideFollowupCollision).
			ours.collision = t.create
		}
		// Replaced once IKE_FOLLOWUP_KE installed the new one.
		fu.onDone = func(ok bool) {
			switch {
			case ok && sa.rekeyFor(old) != nil:
				// Done before our CREATE_CHILD_SA response came: that
				// response decides, as in a collision without
				// additional exchanges.
				t.responderDone(sa.rekeyFor(old))
			case sa.rekeyingChild(old):
				// Ours won, or goes on: it replaces the old one.
			case ok && (old.state == ChildSAInstalled || old.state == ChildSARekeying):
				t.responderDone(nil)
			case old.state == ChildSARekeying:
				// Ours lost to this rekey, which did not complete.
				old.setState(ChildSAInstalled)
				old.retryRekey()
			}
		}
		return nil
	}
	if !t.create.done {
		return nil
	}
	t.responderDone(ours)
	return nil
}

// responderDone retires the CHILD_SA the peer rekeyed once the new one is
// installed; ours is our own rekey of it in flight, if any.
func (t *childRekey) responderDone(ours *childRekey) {
	sa, old := t.sa, t.old
	if ours != nil {
		// Replaced either way, whichever rekey wins.
		old.rekeyed = true
		ours.collision = t.create
		return
	}
	old.setState(ChildSARekeyed)
	old.stopTimers()
	// Drop a rekey of ours still waiting in the queue.
	for i, q := range sa.tm.queued {
		if r, ok := q.(*childRekey); ok && r.old == old {
			sa.tm.queued = append(sa.tm.queued[:i:i], sa.tm.queued[i+1:]...)
			break
		}
	}
}
