package ike

import (
	"cmp"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/xdpsec/xdpsec/ike/isakmp"
	"github.com/xdpsec/xdpsec/ike/message"
)

// Uniqueness of IKE SAs (RFC 7296 section 2.4, RFC 2407 section 4.6.3.3,
// swanctl.conf's unique) as charon's IKE_SA manager has it:
//
//   - An initiator that has no IKE SA with a peer identity sends
//     INITIAL_CONTACT with its authentication (IKE_AUTH; Main Mode's
//     fifth message), unless unique = never or the peer's identity is
//     not configured (%any).
//   - A responder that authenticated a peer who sent INITIAL_CONTACT
//     destroys every other IKE SA between the same identities without
//     telling the peer (the peer forgot them), unless unique = never.
//   - unique = replace deletes, with a DELETE, the other established IKE
//     SAs of the same connection and identities once a new one is
//     authenticated; one with the peer at the same address looks like a
//     reauthentication and goes after replaceReauthDelay.
//   - unique = keep refuses a new IKE SA of the same connection and
//     identities from another address than an established one's (the
//     same address may be reauthenticating): the IKEv2 responder answers
//     AUTHENTICATION_FAILED, IKEv1 notifies or deletes.
//
// An IKEv2 initiator checks nothing at IKE_AUTH, as charon's does not.

// replaceReauthDelay is how long an IKE SA replaced under unique =
// replace by one from the same peer address lives on, so that the
// peer's reauthentication completes before its old SAs go (charon's
// delete_ike_sa_job after 10 seconds).
const replaceReauthDelay = 10 * time.Second

// uniqueSA is an IKE SA of either version as the uniqueness policy
// deals with it: destroy forgets it quietly, delete tells the peer.
type uniqueSA interface {
	anyIKESA
	destroy()
	delete()
}

// peerKey is what charon's connected-peers table is keyed by: both
// identities (the peer's as uniquePeer has it) and the peer's address
// family.
type peerKey struct {
	me, other string
	ipv6      bool
}

func newPeerKey(me Identity, other string, remote netip.Addr) peerKey {
	return peerKey{me: me.key(), other: other, ipv6: !remote.Unmap().Is4()}
}

// uniquePeer is the peer's identity as uniqueness sees it, as a key and
// as logged: the identity it authenticated as by EAP when we were its EAP
// server (charon's get_other_eap_id: road warriors often share an IKE
// identity, their private address, and differ in their EAP one), else
// its IKE identity.
func (sa *ikeSACommon) uniquePeer() (key, name string) {
	if (sa.conn.remote.Auth.isEAP() || sa.conn.xauthServer()) && sa.eapIdentity != "" {
		return "eap:" + sa.eapIdentity, sa.eapIdentity
	}
	return sa.remoteID.key(), sa.remoteID.String()
}

// key is the identity as a map key: equal keys for Equal identities.
func (id Identity) key() string {
	data := string(id.Data)
	switch id.Type {
	case message.ID_FQDN, message.ID_RFC822_ADDR:
		data = strings.ToLower(data)
	case message.ID_DER_ASN1_DN:
		data = formatDN(id.Data)
	}
	return strconv.Itoa(int(id.Type)) + ":" + data
}

// connectedPeers indexes the IKE SAs of either version that count as a
// contact with their peer, established once and not yet destroyed
// (charon's connected peers), by peerKey: INITIAL_CONTACT and unique
// look their duplicates up there, at a cost that does not grow with the
// number of IKE SAs (remote-access clients send INITIAL_CONTACT on every
// connect). Guarded by the engine lock.
type connectedPeers map[peerKey]*peerSet

// peerSet are the IKE SAs of one peerKey: mostly one (a site, a road
// warrior), so a short list rather than a map of its own, which cost
// half a kilobyte per IKE SA; a map from peerSetMap IKE SAs on (many
// clients with one identity, unique = never) keeps removal O(1).
type peerSet struct {
	few  []*ikeSACommon
	many map[*ikeSACommon]struct{}
}

const peerSetMap = 16

func (p *peerSet) add(c *ikeSACommon) {
	if p.many != nil {
		p.many[c] = struct{}{}
		return
	}
	p.few = append(p.few, c)
	if len(p.few) > peerSetMap {
		p.many = make(map[*ikeSACommon]struct{}, len(p.few))
		for _, x := range p.few {
			p.many[x] = struct{}{}
		}
		p.few = nil
	}
}

func (p *peerSet) remove(c *ikeSACommon) {
	if p.many != nil {
		delete(p.many, c)
		return
	}
	if i := slices.Index(p.few, c); i >= 0 {
		p.few = slices.Delete(p.few, i, i+1)
	}
}

func (p *peerSet) len() int { return len(p.few) + len(p.many) }

// all iterates over the set's IKE SAs.
func (p *peerSet) all(yield func(*ikeSACommon) bool) {
	if p == nil {
		return
	}
	for _, c := range p.few {
		if !yield(c) {
			return
		}
	}
	for c := range p.many {
		if !yield(c) {
			return
		}
	}
}

// connected reports whether an IKE SA in this state counts as a contact.
func connected(s IKESAState) bool { return s >= IKESAEstablished && s < IKESADestroying }

// indexPeer enters the IKE SA in the engine's connected peers when its
// state makes it one, and removes it when it no longer is (setState).
func (sa *ikeSACommon) indexPeer() {
	sa.indexConnecting()
	if connected(sa.state) && sa.peerKey == nil && sa.outer != nil {
		sa.enterPeers()
	} else if !connected(sa.state) && sa.peerKey != nil {
		sa.leavePeers()
	}
}

// reindexPeer enters the IKE SA in the connected peers again after what
// uniquePeer says changed (an IKE SA rekey hands the EAP identity over
// after the new SA is established).
func (sa *ikeSACommon) reindexPeer() {
	if sa.peerKey != nil {
		sa.leavePeers()
		sa.enterPeers()
	}
}

func (sa *ikeSACommon) enterPeers() {
	e := sa.e
	other, _ := sa.uniquePeer()
	k := newPeerKey(sa.localID, other, sa.remote.Addr())
	if e.peers == nil {
		e.peers = connectedPeers{}
	}
	set := e.peers[k]
	if set == nil {
		set = &peerSet{}
		e.peers[k] = set
	}
	set.add(sa)
	sa.peerKey = &k
}

func (sa *ikeSACommon) leavePeers() {
	e, k := sa.e, *sa.peerKey
	if set := e.peers[k]; set != nil {
		set.remove(sa)
		if set.len() == 0 {
			delete(e.peers, k)
		}
	}
	sa.peerKey = nil
}

// connectedPeer reports whether an IKE SA counts as a contact with its
// peer now.
func connectedPeer(sa uniqueSA) bool {
	c := sa.common()
	if v1, ok := sa.(*v1SA); ok && v1.deleted {
		return false
	}
	return connected(c.state)
}

// duplicatesOf returns the IKE SAs of either version, other than self,
// that are contacts between these identities in the remote address's
// family, oldest first.
func (e *Engine) duplicatesOf(self *ikeSACommon, me Identity, other string, remote netip.Addr) []uniqueSA {
	var out []uniqueSA
	for c := range e.peers[newPeerKey(me, other, remote)].all {
		if c != self && connectedPeer(c.outer) {
			out = append(out, c.outer)
		}
	}
	slices.SortFunc(out, func(a, b uniqueSA) int { return cmp.Compare(a.common().id, b.common().id) })
	return out
}

// hasContact reports whether we have an IKE SA with the peer (charon's
// has_contact): if not, our authentication carries INITIAL_CONTACT.
func (e *Engine) hasContact(me, other Identity, remote netip.Addr) bool {
	// One is enough: with many IKE SAs to one peer (unique = no), listing
	// and sorting them all for every new one made establishment O(SAs).
	for c := range e.peers[newPeerKey(me, other.key(), remote)].all {
		if connectedPeer(c.outer) {
			return true
		}
	}
	return false
}

// sendInitialContact reports whether an initiator's authentication with
// local identity me carries INITIAL_CONTACT: not when we have another IKE
// SA with the peer, established or one we are initiating of the same
// connection. Two initiated at once (an operator's double initiate, a
// trap and a start) would otherwise both assert they are the only one,
// and the peer would silently drop the one it authenticated first while
// we keep it.
func (sa *ikeSACommon) sendInitialContact(me Identity) bool {
	other := sa.conn.remote.ID
	return sa.conn.Unique != UniqueNever && !other.IsAny() && !sa.e.hasContact(me, other, sa.remote.Addr()) &&
		!sa.othersConnecting()
}

// connectingKey names the IKE SAs we initiate of one connection to one
// peer address.
type connectingKey struct {
	conn   string
	remote netip.Addr
}

// indexConnecting counts the IKE SA in Engine.connecting while we
// initiate it and it is not established (setState). Its key is taken
// anew each time: the peer's address of an IKE SA being initiated does
// not change (a REDIRECT makes another IKE SA).
func (sa *ikeSACommon) indexConnecting() {
	e := sa.e
	want := sa.initiator && sa.state == IKESAConnecting
	if want == sa.connecting {
		return
	}
	k := connectingKey{sa.conn.Name, sa.remote.Addr()}
	if want {
		if e.connecting == nil {
			e.connecting = map[connectingKey]int{}
		}
		e.connecting[k]++
	} else if e.connecting[k]--; e.connecting[k] <= 0 {
		delete(e.connecting, k)
	}
	sa.connecting = want
}

// othersConnecting reports whether we initiate another IKE SA of the
// connection to the peer.
func (sa *ikeSACommon) othersConnecting() bool {
	n := sa.e.connecting[connectingKey{sa.conn.Name, sa.remote.Addr()}]
	if sa.connecting {
		n--
	}
	return n > 0
}

// checkUniqueness applies the connection's unique policy to an IKE SA
// whose peer just authenticated (charon's check_uniqueness): it reports
// whether the new SA must be refused (unique = keep). initialContact
// says the peer sent INITIAL_CONTACT: its other SAs are destroyed.
func (sa *ikeSACommon) checkUniqueness(self uniqueSA, initialContact bool) (cancel bool) {
	policy := sa.conn.Unique
	if policy == UniqueNever || (policy == UniqueNo && !initialContact) {
		return false
	}
	e := sa.e
	var replaces *v1SA // an IKEv1 reauthentication of ours takes its predecessor over itself
	if v1, ok := self.(*v1SA); ok {
		replaces = v1.replaces
	}
	other, peer := sa.uniquePeer()
	for _, dup := range e.duplicatesOf(sa, sa.localID, other, sa.remote.Addr()) {
		d := dup.common()
		if initialContact {
			infof(sa.log, "destroying duplicate IKE_SA for peer '%s', received INITIAL_CONTACT", peer)
			d.ending(EndReplaced)
			dup.destroy()
			continue
		}
		if d.conn.Name != sa.conn.Name || (d.state != IKESAEstablished && d.state != IKESARekeying) {
			continue
		}
		if v1, ok := dup.(*v1SA); ok && v1 == replaces {
			continue
		}
		switch policy {
		case UniqueReplace:
			sa.replaceDuplicate(self, dup, peer)
		case UniqueKeep:
			if d.remote.Addr() != sa.remote.Addr() {
				// The first IKE SA stays; later duplicates go.
				cancel = true
				policy = UniqueReplace
			}
		}
	}
	return cancel
}

// replaceDuplicate deletes an older IKE SA under unique = replace
// (charon's enforce_replace).
func (sa *ikeSACommon) replaceDuplicate(self, dup uniqueSA, peer string) {
	d := dup.common()
	d.ending(EndReplaced)
	if d.remote.Addr() != sa.remote.Addr() {
		infof(sa.log, "deleting duplicate IKE_SA for peer '%s' due to uniqueness policy", peer)
		dup.delete()
		return
	}
	// A reauthentication, it seems: IKEv1 takes the IPsec SAs over (the
	// peer keeps using them), IKEv2 peers make their CHILD_SAs anew.
	if v1, ok := self.(*v1SA); ok && !v1.initialContact {
		if old, ok := dup.(*v1SA); ok {
			n := len(old.children)
			v1.adoptChildren(old)
			if n > 0 {
				infof(sa.log, "detected reauth of existing IKE_SA, adopting %d children and 0 virtual IPs", n)
			}
		}
	}
	sa.e.afterFunc(replaceReauthDelay, func() {
		if connectedPeer(dup) && dup.common().state <= IKESARekeying {
			dup.delete()
		}
	})
	infof(sa.log, "schedule delete of duplicate IKE_SA for peer '%s' due to uniqueness policy and suspected reauthentication", peer)
}

// initialContactNotify is IKEv1's INITIAL-CONTACT (RFC 2407 section
// 4.6.3.3): protocol ISAKMP, the SA's cookies as its SPI.
func (sa *v1SA) initialContactNotify() *isakmp.Notify {
	return &isakmp.Notify{DOI: isakmp.DOIIPsec, Protocol: isakmp.ProtoISAKMP, SPI: sa.cookies(), NotifyType: isakmp.InitialContact}
}

// noteInitialContact takes an INITIAL-CONTACT of the peer's
// authenticated phase 1 message: its other ISAKMP SAs go once this one
// is established (charon: Main Mode responder only).
func (sa *v1SA) noteInitialContact(ps []isakmp.Payload) {
	for _, n := range isakmp.All[*isakmp.Notify](ps) {
		if n.NotifyType == isakmp.InitialContact {
			sa.initialContact = true
		}
	}
}

// uniqueRefused applies unique = keep (and replace) to an ISAKMP SA whose
// peer just authenticated: a refused one is ended with refuse.
func (sa *v1SA) uniqueRefused(mode string, refuse func()) bool {
	if !sa.checkUniqueness(sa, false) {
		return false
	}
	infof(sa.log, "canceling %s due to uniqueness policy", mode)
	refuse()
	return true
}

// refuseAuthFailed ends a phase 1 we refuse after authentication with
// an AUTHENTICATION_FAILED notify.
func (sa *v1SA) refuseAuthFailed() {
	sa.sendAuthFailed()
	sa.destroy()
}
