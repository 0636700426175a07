package ike

import (
	"bytes"
	"net/netip"
	"slices"

	"github.com/xdpsec/xdpsec/ike/message"
)

// MOBIKE (RFC 4555): an IKE SA and its CHILD_SAs move to other addresses
// instead of being negotiated again.
//
//   - Both ends announce MOBIKE_SUPPORTED in IKE_AUTH (the initiator in its
//     first request, the responder in the response that establishes the
//     SA), with their other addresses (ADDITIONAL_IP4/IP6_ADDRESS, or
//     NO_ADDITIONAL_ADDRESSES). An initiator with MOBIKE enabled moves to
//     the NAT-T port after IKE_SA_INIT (section 3.3), NAT or not.
//   - Only the original initiator moves the SA (section 3.4): when the
//     daemon reports that its address went away (AddressesChanged), or
//     when its requests stop being answered and path probing found
//     another path, it moves its end and sends UPDATE_SA_ADDRESSES with
//     NAT detection and a COOKIE2 from the new path; the response's NAT
//     detection switches the CHILD_SAs' UDP encapsulation on or off, and
//     its COOKIE2 must be ours.
//   - The responder answers every request of a MOBIKE SA where it came
//     from, but moves nothing until UPDATE_SA_ADDRESSES: to a new peer
//     address only after a return routability check (section 3.5), an
//     INFORMATIONAL with a COOKIE2 sent to that address, whose response
//     must echo it.
//   - Path probing: when the retransmits of a request are used up, the
//     initiator sends it again over every pair of its addresses and the
//     peer's, and moves to the path the response comes back on.
//
// Addresses move in the dataplane with MigrateSA and MigratePolicy: the
// SPIs, replay state and counters stay.

// maxPeerAddrs bounds the additional addresses kept of a peer.
const maxPeerAddrs = 8

// maxProbePaths bounds the paths one probe is sent over.
const maxProbePaths = 16

// cookie2Len is the size of our COOKIE2 (RFC 4555 section 3.5: 8 to 64).
const cookie2Len = 16

// mobikeEnabled says whether this end offers MOBIKE for the IKE SA.
func (sa *ikeSA) mobikeEnabled() bool { return sa.conn != nil && !sa.conn.NoMobike }

// addMobikeSupported appends MOBIKE_SUPPORTED and our address list to an
// IKE_AUTH message.
func (sa *ikeSA) addMobikeSupported(m *message.Message) {
	m.Payloads = append(m.Payloads, notify(message.MOBIKE_SUPPORTED, nil))
	m.Payloads = append(m.Payloads, sa.addressList()...)
}

// addressList is ADDITIONAL_IP4/IP6_ADDRESS for each of our addresses
// other than the IKE SA's, or NO_ADDITIONAL_ADDRESSES.
func (sa *ikeSA) addressList() []message.Payload {
	var out []message.Payload
	for _, a := range sa.e.localAddrs {
		if a == sa.local.Addr() || a.IsLoopback() || a.IsLinkLocalUnicast() || len(out) >= maxPeerAddrs {
			continue
		}
		t := message.ADDITIONAL_IP4_ADDRESS
		if a.Is6() && !a.Is4In6() {
			t = message.ADDITIONAL_IP6_ADDRESS
		}
		out = append(out, notify(t, a.Unmap().AsSlice()))
	}
	if len(out) == 0 {
		out = append(out, notify(message.NO_ADDITIONAL_ADDRESSES, nil))
	}
	return out
}

// processAddressList takes the peer's additional addresses from a message
// of a MOBIKE SA: its list replaces the one before.
func (sa *ikeSA) processAddressList(m *message.Message) {
	var addrs []netip.Addr
	seen := false
	for _, n := range findAll[*message.Notify](m) {
		switch n.NotifyType {
		case message.NO_ADDITIONAL_ADDRESSES:
			seen = true
		case message.ADDITIONAL_IP4_ADDRESS, message.ADDITIONAL_IP6_ADDRESS:
			seen = true
			a, ok := netip.AddrFromSlice(n.Data)
			if !ok || (n.NotifyType == message.ADDITIONAL_IP4_ADDRESS) != a.Is4() || a.IsUnspecified() || a.IsMulticast() {
				debugf(sa.log, "ignoring invalid %v notify", n.NotifyType)
				continue
			}
			if len(addrs) < maxPeerAddrs && !slices.Contains(addrs, a) {
				debugf(sa.log, "got additional MOBIKE peer address: %s", a)
				addrs = append(addrs, a)
			}
		}
	}
	if seen {
		sa.peerAddrs = addrs
	}
}

// processMobikeAuth notes the peer's MOBIKE_SUPPORTED and addresses in an
// IKE_AUTH message.
func (sa *ikeSA) processMobikeAuth(m *message.Message) {
	if findNotify(m, message.MOBIKE_SUPPORTED) == nil {
		return
	}
	sa.peerMobike = true
	sa.processAddressList(m)
	if sa.initiator && sa.mobikeEnabled() && !sa.mobike {
		sa.mobike = true
		sa.log.Info("peer supports MOBIKE")
	}
}

// natdFor compares a message's NAT detection hashes with the path it came
// on; ok is false when it carries none.
func natdFor(m *message.Message, local, remote netip.AddrPort) (natLocal, natRemote, ok bool) {
	var src []*message.Notify
	var dst *message.Notify
	for _, n := range findAll[*message.Notify](m) {
		switch n.NotifyType {
		case message.NAT_DETECTION_SOURCE_IP:
			src = append(src, n)
		case message.NAT_DETECTION_DESTINATION_IP:
			dst = n
		}
	}
	if len(src) == 0 || dst == nil {
		return false, false, false
	}
	h := &m.Header
	natLocal = !bytes.Equal(dst.Data, natdHash(h.InitiatorSPI, h.ResponderSPI, local))
	want := natdHash(h.InitiatorSPI, h.ResponderSPI, remote)
	natRemote = !slices.ContainsFunc(src, func(n *message.Notify) bool { return bytes.Equal(n.Data, want) })
	return natLocal, natRemote, true
}

// natdPayloadsFor are our NAT detection notifies for a path.
func (sa *ikeSA) natdPayloadsFor(local, remote netip.AddrPort) []message.Payload {
	src := natdHash(sa.spiI, sa.spiR, local)
	if sa.conn.Encap {
		src = natdHash(sa.spiI, sa.spiR, netip.AddrPortFrom(netip.IPv4Unspecified(), 0))
	}
	return []message.Payload{
		notify(message.NAT_DETECTION_SOURCE_IP, src),
		notify(message.NAT_DETECTION_DESTINATION_IP, natdHash(sa.spiI, sa.spiR, remote)),
	}
}

// setNAT takes NAT detection's outcome for the current path and says
// whether it changed.
func (sa *ikeSA) setNAT(natLocal, natRemote bool) bool {
	if sa.natLocal == natLocal && sa.natRemote == natRemote {
		return false
	}
	sa.natLocal, sa.natRemote = natLocal, natRemote
	sa.logNAT()
	if !sa.natAny() {
		infof(sa.log, "no NAT between %s and %s any more", fmtAddr(sa.local), fmtAddr(sa.remote))
	}
	if sa.natLocal {
		sa.scheduleKeepAlive(0)
	}
	return true
}

// moveTo puts the IKE SA on a new path and moves its CHILD_SAs there, with
// the UDP encapsulation the NAT state asks for.
func (sa *ikeSA) moveTo(local, remote netip.AddrPort) {
	oldLocal, oldRemote := sa.local, sa.remote
	sa.notifyUpdate(local, remote)
	sa.local, sa.remote = local, remote
	sa.reindexPeer()
	for _, c := range sa.children {
		c.migrate(oldLocal, oldRemote)
	}
	sa.closeAHBehindNAT()
}

// closeAHBehindNAT closes the AH CHILD_SAs of an IKE SA whose path has a
// NAT now: AH authenticates the outer addresses a NAT rewrites and cannot
// be UDP-encapsulated (RFC 3947). They were moved without encapsulation,
// so that their SAs are where the delete looks for them.
func (sa *ikeSA) closeAHBehindNAT() {
	if !sa.useNATT() {
		return
	}
	queued := false
	for _, c := range sa.children {
		if c.proto() == SAProtoAH && c.state == ChildSAInstalled {
			infof(sa.log, "AH is not supported behind a NAT, closing CHILD_SA %s", c.name())
			sa.tm.queue(newChildDelete(sa, true, c))
			queued = true
		}
	}
	if queued {
		sa.tm.initiate()
	}
}

// updateChildren moves the CHILD_SAs to the IKE SA's path (the NAT state
// changed, or the SA moved before).
func (sa *ikeSA) updateChildren() {
	for _, c := range sa.children {
		c.migrate(sa.local, sa.remote)
	}
	sa.closeAHBehindNAT()
}

// AddressesChanged tells the engine our current addresses (the daemon
// watches them with netlink): an IKE SA we initiated with MOBIKE whose
// local address went away moves to the address that reaches its peer now
// (Config.SourceAddress, else the first of the family) and sends
// UPDATE_SA_ADDRESSES. The addresses are also the ones announced as
// ADDITIONAL_*_ADDRESS and tried when probing paths; virtual IPs a
// gateway assigned us are not among them.
func (e *Engine) AddressesChanged(addrs []netip.Addr) {
	e.mu.Lock()
	defer e.unlock()
	if e.closed {
		return
	}
	defer e.recoverPanic(netip.AddrPort{})
	e.handle(nil)
	// Only an established MOBIKE SA we initiated roams (roam): a
	// gateway's thousands of responder SAs are not sorted or visited per
	// route change. (A contains-check here made the walk quadratic; the
	// address watcher, this walk included, took 8.5% of the daemon's CPU
	// bringing up 10,000 route-based tunnels.)
	var list []*ikeSA
	seen := map[*ikeSA]bool{}
	vips := map[netip.Addr]bool{}
	for _, sa := range e.sas {
		for _, v := range sa.localVIPs {
			vips[v.Unmap()] = true
		}
		if sa.mobike && sa.originalInitiator && !seen[sa] {
			seen[sa] = true
			list = append(list, sa)
		}
	}
	e.localAddrs = nil
	for _, a := range addrs {
		a = a.Unmap()
		if a.IsValid() && !a.IsUnspecified() && !vips[a] && !slices.Contains(e.localAddrs, a) {
			e.localAddrs = append(e.localAddrs, a)
		}
	}
	sortSAs(list)
	for _, sa := range list {
		e.handle(sa)
		sa.roam()
	}
}

// roam checks the IKE SA's local address after an address change, as
// charon's roam: as the original initiator of a MOBIKE SA it moves to the
// address that now reaches the peer.
func (sa *ikeSA) roam() {
	if sa.state != IKESAEstablished || !sa.mobike || !sa.originalInitiator {
		return
	}
	e := sa.e
	cur := sa.local.Addr()
	if slices.Contains(e.localAddrs, cur) {
		// Still ours: the path stays unless the route to the peer now
		// leaves from another of our addresses (an uplink went, its
		// address stayed), as charon's roam checks the source address
		// on a route change. A route that broke with no other is found
		// by path probing when requests go unanswered.
		if e.cfg.SourceAddress == nil {
			return
		}
		a, ok := e.cfg.SourceAddress(sa.remote.Addr())
		if a = a.Unmap(); !ok || a == cur || !slices.Contains(e.localAddrs, a) {
			return
		}
		infof(sa.log, "the route to %s leaves from %s now", sa.remote.Addr(), a)
		sa.log.Info("requesting address change using MOBIKE")
		sa.moveTo(netip.AddrPortFrom(a, sa.local.Port()), sa.remote)
		sa.queueUpdate()
		return
	}
	want := netip.Addr{}
	if e.cfg.SourceAddress != nil {
		if a, ok := e.cfg.SourceAddress(sa.remote.Addr()); ok && slices.Contains(e.localAddrs, a.Unmap()) {
			want = a.Unmap()
		}
	}
	if !want.IsValid() {
		for _, a := range e.localAddrs {
			if a.Is4() == sa.remote.Addr().Unmap().Is4() && !a.IsLoopback() && !a.IsLinkLocalUnicast() {
				want = a
				break
			}
		}
	}
	if !want.IsValid() {
		infof(sa.log, "no route found to reach %s, MOBIKE update deferred", sa.remote.Addr())
		return
	}
	if want == cur {
		return
	}
	sa.log.Info("requesting address change using MOBIKE")
	sa.moveTo(netip.AddrPortFrom(want, sa.local.Port()), sa.remote)
	sa.queueUpdate()
}

// queueUpdate queues an UPDATE_SA_ADDRESSES unless one waits already
// (it will carry the newest addresses: they are read when it is sent).
func (sa *ikeSA) queueUpdate() {
	if !slices.ContainsFunc(sa.tm.queued, func(t task) bool { _, ok := t.(*mobikeUpdate); return ok }) {
		sa.tm.queue(&mobikeUpdate{sa: sa})
	}
	sa.tm.initiate()
}

// mobikeUpdate is the original initiator's UPDATE_SA_ADDRESSES exchange
// (RFC 4555 section 3.5), sent from the path the IKE SA is on now.
type mobikeUpdate struct {
	sa      *ikeSA
	cookie2 []byte
}

func (t *mobikeUpdate) kind() taskKind                 { return taskMOBIKE }
func (t *mobikeUpdate) exchange() message.ExchangeType { return message.INFORMATIONAL }

func (t *mobikeUpdate) build(m *message.Message) error {
	sa := t.sa
	t.cookie2 = sa.e.randomBytes(cookie2Len)
	m.Payloads = append(m.Payloads, notify(message.UPDATE_SA_ADDRESSES, nil), notify(message.COOKIE2, t.cookie2))
	m.Payloads = append(m.Payloads, sa.natdPayloadsFor(sa.local, sa.remote)...)
	m.Payloads = append(m.Payloads, sa.addressList()...)
	sa.e.stats.MOBIKEUpdates++
	return nil
}

func (t *mobikeUpdate) process(m *message.Message) error {
	sa := t.sa
	if n := findNotify(m, message.COOKIE2); n == nil || !bytes.Equal(n.Data, t.cookie2) {
		sa.e.stats.DroppedMOBIKE++
		sa.log.Info("COOKIE2 mismatch, closing IKE_SA")
		return errDestroy
	}
	sa.processAddressList(m)
	if natLocal, natRemote, ok := natdFor(m, sa.local, sa.remote); ok && sa.setNAT(natLocal, natRemote) {
		sa.updateChildren()
	}
	return nil
}

// mobikeCheck is the responder's return routability check of a peer's
// new path (RFC 4555 section 3.5): an INFORMATIONAL with a COOKIE2 sent
// there. The CHILD_SAs move when the response echoes the COOKIE2.
type mobikeCheck struct {
	sa                  *ikeSA
	local, remote       netip.AddrPort
	natLocal, natRemote bool
	cookie2             []byte
}

func (t *mobikeCheck) kind() taskKind                 { return taskMOBIKE }
func (t *mobikeCheck) exchange() message.ExchangeType { return message.INFORMATIONAL }

// path sends the check to the new path, not the IKE SA's.
func (t *mobikeCheck) path() (local, remote netip.AddrPort) { return t.local, t.remote }

func (t *mobikeCheck) build(m *message.Message) error {
	t.cookie2 = t.sa.e.randomBytes(cookie2Len)
	m.Payloads = append(m.Payloads, notify(message.COOKIE2, t.cookie2))
	infof(t.sa.log, "checking path %s - %s", fmtAddr(t.local), fmtAddr(t.remote))
	return nil
}

func (t *mobikeCheck) process(m *message.Message) error {
	sa := t.sa
	if sa.check != t {
		return nil // a newer UPDATE_SA_ADDRESSES superseded this one
	}
	sa.check = nil
	if n := findNotify(m, message.COOKIE2); n == nil || !bytes.Equal(n.Data, t.cookie2) {
		sa.e.stats.DroppedMOBIKE++
		infof(sa.log, "COOKIE2 mismatch, not moving to %s - %s", fmtAddr(t.local), fmtAddr(t.remote))
		return nil
	}
	sa.follow(t.local, t.remote, t.natLocal, t.natRemote)
	return nil
}

func (t *mobikeCheck) failed() {
	if t.sa.check == t {
		t.sa.check = nil
	}
}

// follow moves a responder's IKE SA and CHILD_SAs to the path the peer's
// UPDATE_SA_ADDRESSES came on.
func (sa *ikeSA) follow(local, remote netip.AddrPort, natLocal, natRemote bool) {
	if remote.Addr() != sa.remote.Addr() {
		infof(sa.log, "remote address changed from %s to %s", sa.remote.Addr(), remote.Addr())
	}
	if local.Addr() != sa.local.Addr() {
		infof(sa.log, "local address changed from %s to %s", sa.local.Addr(), local.Addr())
	}
	sa.natLocal, sa.natRemote = natLocal, natRemote
	sa.logNAT()
	sa.e.stats.MOBIKEUpdates++
	sa.moveTo(local, remote)
	if sa.natLocal {
		sa.scheduleKeepAlive(0)
	}
}

// processUpdate handles UPDATE_SA_ADDRESSES in an INFORMATIONAL request
// of message ID id that came on path d. It reports the path the response
// must carry NAT detection for.
func (sa *ikeSA) processUpdate(m *message.Message, d Datagram) {
	id := m.Header.MessageID
	switch {
	case !sa.mobike:
		sa.e.stats.DroppedMOBIKE++
		sa.log.Info("received UPDATE_SA_ADDRESSES without MOBIKE negotiated, ignored")
		return
	case sa.originalInitiator:
		// Only the original initiator moves the SA (RFC 4555 section 3.4).
		sa.e.stats.DroppedMOBIKE++
		sa.log.Info("received UPDATE_SA_ADDRESSES from the responder of the IKE_SA, ignored")
		return
	case sa.updateSeen && id <= sa.lastUpdateID:
		// Section 3.5: an update older than one followed already.
		sa.e.stats.DroppedMOBIKE++
		infof(sa.log, "received UPDATE_SA_ADDRESSES with message ID %d, older than %d, ignored", id, sa.lastUpdateID)
		return
	}
	sa.lastUpdateID, sa.updateSeen = id, true
	natLocal, natRemote, ok := natdFor(m, d.Local, d.Remote)
	if !ok {
		natLocal, natRemote = sa.natLocal, sa.natRemote
	}
	if d.Remote.Addr() == sa.remote.Addr() {
		// The peer's address stays (its port or the NAT state changed):
		// nothing to check.
		sa.check = nil
		sa.follow(d.Local, d.Remote, natLocal, natRemote)
		return
	}
	t := &mobikeCheck{sa: sa, local: d.Local, remote: d.Remote, natLocal: natLocal, natRemote: natRemote}
	sa.check = t
	sa.tm.queued = slices.DeleteFunc(sa.tm.queued, func(q task) bool { _, ok := q.(*mobikeCheck); return ok })
	sa.tm.queue(t)
}

// pathTask is a task whose request goes over another path than the IKE
// SA's (a return routability check).
type pathTask interface {
	path() (local, remote netip.AddrPort)
}

// probePaths are the paths a probe goes over: each of our addresses with
// each of the peer's (its current and additional ones), of one family,
// the IKE SA's own first.
func (sa *ikeSA) probePaths() [][2]netip.AddrPort {
	locals := []netip.Addr{sa.local.Addr()}
	for _, a := range sa.e.localAddrs {
		if !slices.Contains(locals, a) && !a.IsLoopback() && !a.IsLinkLocalUnicast() {
			locals = append(locals, a)
		}
	}
	remotes := append([]netip.Addr{sa.remote.Addr()}, sa.peerAddrs...)
	var out [][2]netip.AddrPort
	for _, r := range remotes {
		for _, l := range locals {
			if l.Unmap().Is4() != r.Unmap().Is4() || len(out) >= maxProbePaths {
				continue
			}
			p := [2]netip.AddrPort{netip.AddrPortFrom(l, sa.local.Port()), netip.AddrPortFrom(r, sa.remote.Port())}
			if !slices.Contains(out, p) {
				out = append(out, p)
			}
		}
	}
	return out
}

// startProbing is the original initiator's answer to a request whose
// retransmits are used up on a MOBIKE SA: the old path is gone, the
// request goes out over every other path, with a fresh retransmit budget.
func (tm *taskManager) startProbing() bool {
	sa := tm.sa
	if !sa.mobike || !sa.originalInitiator || tm.probing || sa.state != IKESAEstablished || tm.active == nil {
		return false
	}
	if len(sa.probePaths()) < 2 {
		return false
	}
	sa.log.Info("old path is not available anymore, try to find another")
	tm.probing = true
	tm.tries = 0
	tm.sendProbes()
	tm.armRetransmit()
	return true
}

// sendProbes sends the request in flight over every probe path.
func (tm *taskManager) sendProbes() {
	sa := tm.sa
	for _, p := range sa.probePaths() {
		infof(sa.log, "checking path %s - %s", fmtAddr(p[0]), fmtAddr(p[1]))
		sa.e.send(p[0], p[1], tm.request)
	}
	sa.lastOutbound = sa.e.clock.Now()
}

// probeAnswered ends path probing with the response that came on d: the
// IKE SA moves there and tells the peer.
func (tm *taskManager) probeAnswered(d Datagram) {
	tm.probing = false
	sa := tm.sa
	if d.Local == sa.local && d.Remote == sa.remote {
		return
	}
	sa.log.Info("requesting address change using MOBIKE")
	sa.moveTo(d.Local, d.Remote)
	sa.tm.queued = append([]task{&mobikeUpdate{sa: sa}}, slices.DeleteFunc(sa.tm.queued, func(t task) bool {
		_, ok := t.(*mobikeUpdate)
		return ok
	})...)
}
