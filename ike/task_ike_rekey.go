package ike

import (
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	"github.com/xdpsec/xdpsec/ike/message"
	"github.com/xdpsec/xdpsec/ike/transform"
)

// ikeRekey replaces the IKE SA (RFC 7296 section 1.3.2). The CHILD_SAs move
// to the new IKE SA; the initiator then deletes the old one over it.
//
//	Initiator                         Responder
//	-------------------------------------------------------------------
//	HDR, SK {SA, Ni, KEi}  -->
//	                             <--  HDR, SK {SA, Nr, KEr}
//	(old IKE SA) HDR, SK {D(IKE)}  -->
//	                             <--  HDR, SK {}
//
// Simultaneous rekeys (section 2.8.2): both new IKE SAs are created; the
// one whose exchange had the lowest nonce is deleted by its initiator and
// the CHILD_SAs go to the other. With additional key exchanges (RFC 9370
// section 2.2.4) the same nonces decide when our CREATE_CHILD_SA response
// arrives, before any new IKE SA exists: the loser does not start its
// IKE_FOLLOWUP_KE exchanges, the winner forgets the loser's pending one;
// a rekey request after our first IKE_FOLLOWUP_KE gets TEMPORARY_FAILURE.
type ikeRekey struct {
	sa        *ikeSA
	initiator bool
	ke        transform.KeyExchange
	ni, nr    []byte
	newSA     *ikeSA
	errNotify *message.Notify
	selNum    uint8
	// collision is the peer's rekey, answered by us while ours was in
	// flight; its new IKE SA waits for the outcome without CHILD_SAs.
	collision *ikeRekey
	// fu runs the additional key exchanges (RFC 9370) before the new IKE
	// SA is keyed with the proposal and suite kept here.
	fu       *childFollowup
	proposal transform.Proposal
	suite    transform.IKESuite
}

func newIKERekey(sa *ikeSA, initiator bool) *ikeRekey {
	return &ikeRekey{sa: sa, initiator: initiator}
}

func (t *ikeRekey) kind() taskKind                 { return taskIKERekey }
func (t *ikeRekey) exchange() message.ExchangeType { return message.CREATE_CHILD_SA }

func (t *ikeRekey) build(m *message.Message) error {
	if !t.initiator {
		return t.buildResponse(m)
	}
	sa := t.sa
	if sa.state != IKESAEstablished {
		return fmt.Errorf("IKE_SA %s is %s, not rekeying it", sa.name(), sa.state)
	}
	group := firstKE(sa.conn.Proposals)
	if t.newSA == nil {
		t.newSA = sa.e.newIKESA(sa.conn, true, sa.local, sa.remote)
		t.newSA.spiI = sa.e.newSPI()
		sa.e.putSA(t.newSA.spiI, t.newSA) // reserve the SPI
		infof(sa.log, "rekeying IKE_SA %s", sa.name())
	} else if t.ke != nil {
		group = t.ke.Method()
		t.ke.Close()
	}
	ke, err := transform.NewKeyExchange(group, sa.e.rand)
	if err != nil {
		return err
	}
	t.ke = ke
	t.ni = sa.e.randomBytes(nonceLen)
	sa.setState(IKESARekeying)
	spi := binary.BigEndian.AppendUint64(nil, t.newSA.spiI)
	m.Payloads = append(m.Payloads,
		&message.SecurityAssociation{Proposals: proposalsToWire(sa.conn.Proposals, spi)},
		&message.Nonce{Data: t.ni},
		&message.KeyExchange{Group: uint16(group), Data: ke.PublicValue()})
	return nil
}

// abort forgets the half-made new IKE SA.
func (t *ikeRekey) abort() {
	if t.ke != nil {
		t.ke.Close()
	}
	if t.newSA != nil && t.newSA.state < IKESAEstablished {
		t.newSA.destroy()
	}
	// Only our own rekey set the state: a peer's given up (a pending
	// IKE_FOLLOWUP_KE abandoned) leaves ours in flight as it is.
	if t.initiator && t.sa.state == IKESARekeying {
		t.sa.setState(IKESAEstablished)
	}
}

func (t *ikeRekey) failed() { t.abort() }

func (t *ikeRekey) process(m *message.Message) error {
	if !t.initiator {
		return t.processRequest(m)
	}
	sa := t.sa
	if n := findNotify(m, message.INVALID_KE_PAYLOAD); n != nil && len(n.Data) == 2 {
		g := transform.KEID(binary.BigEndian.Uint16(n.Data))
		if offersKE(sa.conn.Proposals, g) && (t.ke == nil || g != t.ke.Method()) {
			infof(sa.log, "peer didn't accept DH group %v, it requested %v", t.ke.Method(), g)
			t.ke.Close()
			t.ke, _ = transform.NewKeyExchange(g, sa.e.rand)
			sa.tm.queued = append([]task{t}, sa.tm.queued...)
			return nil
		}
	}
	if nt, ok := notifyErr(m); ok {
		infof(sa.log, "received %v notify, rekeying IKE_SA %s failed", nt, sa.name())
		t.abort()
		if t.collision.pending() && sa.e.followups[sa] == t.collision.fu {
			// Declined after the peer's first IKE_FOLLOWUP_KE: its
			// rekey goes on (and if it fails, ours is tried again).
			infof(sa.log, "IKE_SA %s is being rekeyed by the peer with additional key exchanges", sa.name())
			sa.scheduleRekeyRetry()
			return nil
		}
		if t.collision.made() {
			// The peer's rekey went through; adopt its IKE SA.
			sa.setState(IKESARekeyed)
			sa.moveChildren(t.collision.newSA)
		} else {
			sa.scheduleRekeyRetry()
		}
		return nil
	}
	sap, ok1 := find[*message.SecurityAssociation](m)
	nr, ok2 := find[*message.Nonce](m)
	kep, ok3 := find[*message.KeyExchange](m)
	if !ok1 || !ok2 || !ok3 || len(sap.Proposals) != 1 || len(sap.Proposals[0].SPI) != 8 || len(nr.Data) < 16 {
		sa.log.Info("invalid IKE_SA rekey response")
		t.abort()
		return nil
	}
	chosen := proposalFromWire(sap.Proposals[0])
	sel, ok := selectProposal(sa.conn.Proposals, sap.Proposals)
	suite, err := chosen.IKESuite()
	if !ok || !isSelected(chosen) || len(sel.proposal.Transforms) != len(chosen.Transforms) || err != nil ||
		transform.KEID(kep.Group) != suite.KE || suite.KE != t.ke.Method() {
		sa.log.Info("invalid proposal selected for IKE_SA rekey: " + chosen.String())
		t.abort()
		return nil
	}
	n := t.newSA
	n.spiR = binary.BigEndian.Uint64(sap.Proposals[0].SPI)
	t.nr = slices.Clone(nr.Data)
	if adds := chosen.AdditionalKEs(); len(adds) > 0 {
		link := findNotify(m, message.ADDITIONAL_KEY_EXCHANGE)
		gir, err := t.ke.SharedSecret(kep.Data)
		t.ke.Close()
		if link == nil || len(link.Data) == 0 || err != nil {
			infof(sa.log, "IKE_SA rekey with additional key exchanges failed: %v notify missing or %v", message.ADDITIONAL_KEY_EXCHANGE, err)
			t.abort()
			return nil
		}
		t.proposal, t.suite = chosen, suite
		t.fu = &childFollowup{rekey: t, initiator: true, adds: adds, secrets: [][]byte{gir}, link: slices.Clone(link.Data)}
		if t.collision != nil && !t.decideFollowupCollision() {
			return nil
		}
		sa.tm.queued = append([]task{t.fu}, sa.tm.queued...)
		return nil
	}
	gir, err := t.ke.SharedSecret(kep.Data)
	if err == nil {
		err = t.deriveNewSA(n, chosen, suite, gir)
		clear(gir)
	}
	t.ke.Close()
	if err != nil {
		infof(sa.log, "IKE_SA rekey key derivation failed: %v", err)
		t.abort()
		return nil
	}
	t.initiatorDone()
	return nil
}

// pending reports whether t is a peer's rekey still waiting for its
// IKE_FOLLOWUP_KE exchanges.
func (t *ikeRekey) pending() bool {
	return t != nil && t.fu != nil && t.newSA != nil && t.newSA.state < IKESAEstablished
}

// made reports whether t's new IKE SA is up (not pending, not given up).
func (t *ikeRekey) made() bool {
	return t != nil && t.newSA != nil && t.newSA.state >= IKESAEstablished && t.newSA.state < IKESADeleting
}

// decideFollowupCollision decides a collision with the peer's rekey when
// our CREATE_CHILD_SA response negotiated additional key exchanges (RFC
// 9370 section 2.2.4), and reports whether ours goes on: the loser drops
// its IKE_FOLLOWUP_KE exchanges before the first, the winner forgets the
// peer's new IKE SA still waiting for its own (the peer sends none).
func (t *ikeRekey) decideFollowupCollision() bool {
	sa, peer := t.sa, t.collision
	if weLose(t.ni, t.nr, peer.ni, peer.nr) {
		infof(sa.log, "IKE_SA rekey collision lost, abort incomplete multi-KE rekeying of %s", sa.name())
		t.fu.wipe()
		t.fu = nil
		t.abort()
		if peer.made() {
			// The peer's was made without additional exchanges.
			sa.setState(IKESARekeyed)
			sa.moveChildren(peer.newSA)
		}
		return false
	}
	if peer.pending() {
		infof(sa.log, "IKE_SA rekey collision won, continue with multi-KE rekeying of %s", sa.name())
		t.collision = nil
		if sa.e.followups[sa] == peer.fu {
			peer.fu.abandon()
		}
	}
	return true
}

// finish keys the new IKE SA after the last additional key exchange
// from all the shared secrets, and completes the rekey.
func (t *ikeRekey) finish(all []byte) error {
	if err := t.deriveNewSA(t.newSA, t.proposal, t.suite, all); err != nil {
		return err
	}
	if t.initiator {
		t.initiatorDone()
		return nil
	}
	if ours, _ := t.sa.tm.active.(*ikeRekey); ours != nil && ours.initiator && ours.collision == t {
		// Done before our CREATE_CHILD_SA response came: that response
		// decides, as in a collision without additional exchanges.
		return nil
	}
	t.sa.setState(IKESARekeyed)
	t.sa.moveChildren(t.newSA)
	return nil
}

// initiatorDone ends our rekey once the new IKE SA is up: the CHILD_SAs
// move to it (or to the collision's winner) and the old one is deleted.
func (t *ikeRekey) initiatorDone() {
	sa, n := t.sa, t.newSA
	sa.setState(IKESARekeyed)
	if t.collision.pending() {
		// Ours was made without additional exchanges, the peer's
		// waits for them: ours is there first, the peer's goes.
		if sa.e.followups[sa] == t.collision.fu {
			t.collision.fu.abandon()
		}
		t.collision = nil
	}
	if t.collision.made() {
		if weLose(t.ni, t.nr, t.collision.ni, t.collision.nr) {
			infof(sa.log, "IKE_SA rekey collision lost, deleting redundant IKE_SA %s", n.name())
			sa.moveChildren(t.collision.newSA)
			n.tm.queue(newIKEDelete(n))
			n.tm.initiate()
			return
		}
		sa.log.Info("IKE_SA rekey collision won, deleting old IKE_SA " + sa.name())
		t.collision.newSA.expectPeerDelete()
	}
	sa.moveChildren(n)
	sa.tm.queue(newIKEDelete(sa))
}

// deriveNewSA keys the new IKE SA (section 2.18; gir is g^ir, followed
// by the additional key exchanges' secrets with RFC 9370) and brings it up.
func (t *ikeRekey) deriveNewSA(n *ikeSA, p transform.Proposal, suite transform.IKESuite, gir []byte) error {
	sa := t.sa
	keys, err := transform.RekeyIKEKeys(suite, sa.suite.PRF, sa.keys.D, gir, t.ni, t.nr, n.spiI, n.spiR)
	if err != nil {
		return err
	}
	n.proposal, n.suite = p, suite
	if err := n.installKeys(keys); err != nil {
		return err
	}
	n.ni, n.nr = slices.Clone(t.ni), slices.Clone(t.nr)
	n.localID, n.remoteID = sa.localID, sa.remoteID
	n.natLocal, n.natRemote = sa.natLocal, sa.natRemote
	n.peerFrag, n.peerHashes, n.peerRedirect, n.peerMIDSync = sa.peerFrag, sa.peerHashes, sa.peerRedirect, sa.peerMIDSync
	n.mobike, n.peerMobike, n.peerAddrs = sa.mobike, sa.peerMobike, slices.Clone(sa.peerAddrs)
	n.originalInitiator = sa.originalInitiator
	n.conn = sa.conn
	n.e.putSA(n.ourSPI(), n)
	n.viaRekey = true
	n.established()
	if t.initiator {
		sa.e.count(sa.conn.Name, CounterIKERekeyInit)
	} else {
		sa.e.count(sa.conn.Name, CounterIKERekeyResp)
	}
	sa.notifyRekey(n)
	n.inheritReauth(sa)
	infof(sa.log, "IKE_SA %s rekeyed between %s", n.name(), n.ends())
	return nil
}

// moveChildren hands the CHILD_SAs to the IKE SA that replaces this one,
// with the CHILD_SA exchanges still waiting in our queue.
func (sa *ikeSA) moveChildren(n *ikeSA) {
	n.rekeyOf = nil
	for _, c := range sa.children {
		c.ike = n
		n.children = append(n.children, c)
	}
	sa.children = nil
	n.vips, sa.vips = sa.vips, nil
	n.eapIdentity = sa.eapIdentity
	// The accounting session goes on over the new IKE SA.
	n.takeAccounting(sa)
	n.eapClass, n.eapInterim = sa.eapClass, sa.eapInterim
	n.reindexPeer()
	n.localVIPs, n.dnsServers = sa.localVIPs, sa.dnsServers
	sa.localVIPs = nil // the new IKE SA holds them now: not removed with this one
	var keep []task
	for _, q := range sa.tm.queued {
		switch q := q.(type) {
		case *childRekey:
			n.tm.queue(newChildRekey(n, true, q.old))
		case *childCreate:
			n.tm.queue(newChildCreate(n, true, q.cfg, nil))
		case *childDelete:
			if q.child != nil {
				d := newChildDelete(n, true, q.child)
				d.expired = q.expired
				n.tm.queue(d)
			}
		case *dpd:
		default:
			keep = append(keep, q)
		}
	}
	sa.tm.queued = keep
	n.tm.initiate()
}

// expectPeerDelete waits for the peer to delete the IKE SA its rekey made
// when ours won the collision (RFC 7296 section 2.8.2: the SA's
// initiator deletes it). A peer that never learnt it lost, because the
// old IKE SA's DELETE overtook our response to its rekey, never does:
// charon then aborts its rekey ("peer did not notice IKE_SA rekey
// collision") and forgets its half of this SA without a DELETE. So after
// the peer's retransmission budget an SA still here, without CHILD_SAs
// and without a request from the peer (the peer neither deletes nor
// uses it), is deleted here: one DELETE, in case the peer has it after
// all, and forgotten at once rather than listed as DELETING while a
// DELETE the peer cannot read is retransmitted.
func (sa *ikeSA) expectPeerDelete() {
	cfg := sa.e.cfg
	wait := cfg.RetransmitTimeout * time.Duration(cfg.RetransmitTries+1)
	sa.e.afterFuncFor(sa, wait, func() {
		if sa.state != IKESAEstablished || len(sa.children) != 0 || sa.tm.expectID != 0 {
			return
		}
		if sa.tm.busy() {
			// An exchange of ours (a liveness check) is in flight: look
			// again when the peer has had the time to answer it.
			sa.expectPeerDelete()
			return
		}
		infof(sa.log, "redundant IKE_SA %s of a rekey collision neither used nor deleted by the peer, deleting it", sa.name())
		d := newIKEDelete(sa)
		sa.tm.queue(d)
		sa.tm.initiate()
		if sa.tm.active == d {
			infof(sa.log, "IKE_SA %s deleted", sa.name())
			sa.destroy()
		}
	})
}

func (sa *ikeSA) scheduleRekeyRetry() {
	if sa.rekeyTimer != nil {
		sa.rekeyTimer.Stop()
	}
	delay := sa.e.cfg.RetransmitTimeout * 4
	if intermediateSupported(sa.conn.Proposals) {
		// A declined collision (processRequest): both ends retry, not
		// at the same moment.
		b := sa.e.randomBytes(2)
		delay += time.Duration(int64(delay) * int64(int(b[0])<<8|int(b[1])) >> 16)
	}
	sa.rekeyTimer = sa.e.afterFunc(delay, func() {
		if sa.state == IKESAEstablished {
			sa.rekey()
		}
	})
}

func (t *ikeRekey) processRequest(m *message.Message) error {
	sa := t.sa
	ours, _ := sa.tm.active.(*ikeRekey)
	switch {
	case ours != nil && ours.initiator:
		infof(sa.log, "detected IKE_SA rekey collision for %s", sa.name())
	case sa.state == IKESARekeying:
		if fu, ok := sa.tm.active.(*childFollowup); ok && fu.rekey != nil {
			// RFC 9370 section 2.2.4.
			infof(sa.log, "peer initiated rekeying of IKE_SA %s, but we did too and already sent %v, sending TEMPORARY_FAILURE", sa.name(), message.IKE_FOLLOWUP_KE)
		}
		t.errNotify = notify(message.TEMPORARY_FAILURE, nil)
		return nil
	case sa.state != IKESAEstablished, sa.e.followups[sa] != nil:
		// Not with a CHILD_SA's IKE_FOLLOWUP_KE exchanges pending either.
		t.errNotify = notify(message.TEMPORARY_FAILURE, nil)
		return nil
	case sa.tm.busy():
		// Another exchange of ours is in flight; RFC 7296 section 2.25.
		t.errNotify = notify(message.TEMPORARY_FAILURE, nil)
		return nil
	}
	sap, _ := find[*message.SecurityAssociation](m)
	nip, ok1 := find[*message.Nonce](m)
	kep, ok2 := find[*message.KeyExchange](m)
	if !ok1 || !ok2 || len(nip.Data) < 16 || len(nip.Data) > 256 {
		t.errNotify = notify(message.INVALID_SYNTAX, nil)
		return nil
	}
	sel, ok := selectProposal(sa.conn.Proposals, sap.Proposals)
	if !ok || len(sel.spi) != 8 {
		sa.log.Info("received proposals: " + transform.FormatProposals(proposalsFromWire(sap.Proposals, message.ProtocolIKE)))
		sa.log.Info("configured proposals: " + transform.FormatProposals(sa.conn.Proposals))
		sa.log.Info("no proposal found")
		t.errNotify = notify(message.NO_PROPOSAL_CHOSEN, nil)
		return nil
	}
	suite, err := sel.proposal.IKESuite()
	if err != nil {
		t.errNotify = notify(message.NO_PROPOSAL_CHOSEN, nil)
		return nil
	}
	if transform.KEID(kep.Group) != suite.KE {
		t.errNotify = notify(message.INVALID_KE_PAYLOAD, binary.BigEndian.AppendUint16(nil, uint16(suite.KE)))
		return nil
	}
	ke, err := transform.NewKeyExchange(suite.KE, sa.e.rand)
	if err != nil {
		t.errNotify = notify(message.NO_PROPOSAL_CHOSEN, nil)
		return nil
	}
	t.ke = ke
	t.ni, t.nr = slices.Clone(nip.Data), sa.e.randomBytes(nonceLen)
	n := sa.e.newIKESA(sa.conn, false, sa.local, sa.remote)
	n.rekeyOf = sa
	n.spiI = binary.BigEndian.Uint64(sel.spi)
	n.spiR = sa.e.newSPI()
	t.selNum = sel.number
	gir, err := ke.SharedSecret(kep.Data)
	if adds := sel.proposal.AdditionalKEs(); len(adds) > 0 && err == nil {
		if sa.e.followups[sa] != nil {
			clear(gir)
			t.ke.Close()
			n.destroy()
			t.errNotify = notify(message.TEMPORARY_FAILURE, nil)
			return nil
		}
		n.proposal, n.suite = sel.proposal, suite // for the response
		t.newSA, t.proposal, t.suite = n, sel.proposal, suite
		t.fu = &childFollowup{rekey: t, adds: adds, secrets: [][]byte{gir}, link: sa.e.randomBytes(8)}
		if sa.e.followups == nil {
			sa.e.followups = map[*ikeSA]*childFollowup{}
		}
		sa.e.followups[sa] = t.fu
		t.fu.expire()
		if ours != nil && ours.initiator {
			// Decided when our response arrives (decideFollowupCollision).
			ours.collision = t
		}
		return nil
	}
	if err == nil {
		err = t.deriveNewSA(n, sel.proposal, suite, gir)
		clear(gir)
	}
	if err != nil {
		t.ke.Close()
		n.destroy()
		t.errNotify = notify(message.INVALID_SYNTAX, nil)
		return nil
	}
	t.newSA = n
	if ours != nil && ours.initiator {
		ours.collision = t
		return nil
	}
	sa.setState(IKESARekeyed)
	sa.moveChildren(n)
	return nil
}

func (t *ikeRekey) buildResponse(m *message.Message) error {
	if t.errNotify != nil {
		m.Payloads = append(m.Payloads, t.errNotify)
		return nil
	}
	n := t.newSA
	m.Payloads = append(m.Payloads,
		&message.SecurityAssociation{Proposals: []message.Proposal{proposalToWire(n.proposal, t.selNum, binary.BigEndian.AppendUint64(nil, n.spiR))}},
		&message.Nonce{Data: t.nr})
	if t.fu != nil {
		m.Payloads = append(m.Payloads, notify(message.ADDITIONAL_KEY_EXCHANGE, t.fu.link))
	}
	m.Payloads = append(m.Payloads, &message.KeyExchange{Group: uint16(n.suite.KE), Data: t.ke.PublicValue()})
	t.ke.Close()
	return nil
}
