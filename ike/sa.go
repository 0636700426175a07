package ike

import (
	"errors"
	"net/netip"
	"slices"
	"time"

	"github.com/xdpsec/xdpsec/ike/message"
	"github.com/xdpsec/xdpsec/ike/transform"
)

// ikeSA is one IKE SA: its identity, keys and CHILD_SAs, and the task
// manager that runs its exchanges. Everything is guarded by the engine lock.
type ikeSA struct {
	ikeSACommon

	// establishedAt is when it got established (a restart keeps it).
	establishedAt time.Time

	spiI uint64
	spiR uint64

	proposal transform.Proposal
	suite    transform.IKESuite
	keys     *transform.IKEKeys
	protI    *transform.SKProtector // protects what the original initiator sends
	protR    *transform.SKProtector // protects what the responder sends

	ni, nr []byte // IKE_SA_INIT nonces (kept for the first CHILD_SA and AUTH)
	// setup is what the SA needs only until it is established: the
	// IKE_SA_INIT messages and the IKE_INTERMEDIATE state (ikeSetup).
	setup *ikeSetup

	peerHashes []transform.HashAlgorithm

	children []*childSA
	// acquireTS are the packet addresses of an acquire whose CHILD_SA
	// this IKE SA is about to request (trap.go), nil for none.
	acquireTS *acquireTS
	tm        *taskManager
	reasm     *message.Reassembler // nil until a fragment arrives

	earlyDeletes []uint32 // noteDeletedEarly
	// rekeyOf is the IKE SA the peer's rekey made this one from: until
	// that one hands over its CHILD_SAs (a rekey collision of ours still
	// running), the peer may already address them here.
	rekeyOf        *ikeSA
	initKey        initKey // the SA's key in the engine's init index, if inInit (its remote: in halfOpenBySource)
	halfOpenTimer  Timer
	keepAliveTimer Timer
	rekeyTimer     Timer
	expireTimer    Timer // rekey_time + over_time: hard lifetime
	dpdTimer       Timer
	reauthTimer    Timer
	// reauthAt is when the IKE SA reauthenticates (zero: never), kept
	// across rekeys; reauthenticating is set once it started (reauth.go).
	reauthAt time.Time
	// afterDestroy runs when the IKE SA is destroyed: a break-before-make
	// reauthentication establishes the connection again.
	afterDestroy func()
	// reauthVIPs are the virtual IPs of the IKE SA this one
	// reauthenticates: its CFG_REQUEST asks for them again.
	reauthVIPs []netip.Addr

	// rekeyCollision is set on the old IKE SA when the peer rekeyed it
	// while our own rekey was in flight (RFC 7296 section 2.8.2).
	rekeyCollision *ikeRekey

	// eapAuth is the responder's IKE_AUTH task while EAP runs: it answers
	// the IKE_AUTH requests that follow the first.
	eapAuth *ikeAuth
	// acct is the IKE SA's accounting with its EAP backend, once started
	// (eap_accounting.go).
	acct *eapAcct
	// eapClass and eapInterim are what the EAP backend's Accept asked
	// of the accounting session (EAPReply.Class, InterimInterval).
	eapClass   [][]byte
	eapInterim time.Duration

	// Redirects (redirect.go): redir, nil until needed; the flags below.
	redir *redirectState
	// MOBIKE (mobike.go): mobike once both ends announced it, the peer's
	// additional addresses for path probing, the message ID of the last
	// UPDATE_SA_ADDRESSES followed (updateSeen), and the return
	// routability check of a new peer address in progress.
	peerAddrs    []netip.Addr
	check        *mobikeCheck
	lastUpdateID uint32

	// The flags, side by side: apart, each would take eight bytes of
	// every IKE SA.
	//
	// viaRekey: the SA was made by an IKE rekey (no ike-updown when it
	// comes up); rekeyedAway: it was rekeyed (none when it goes).
	viaRekey, rekeyedAway bool
	peerCertReq           bool
	halfOpen              bool // counted in the engine's halfOpenCount and halfOpenBySource
	inInit                bool
	reauthenticating      bool
	// restart re-initiates the connection when the SA dies (dpd_action).
	restart bool
	// peerRedirect: the client announced REDIRECT_SUPPORTED or
	// REDIRECTED_FROM. redirected: a REDIRECT was sent (gateway) or
	// followed (client) for this IKE SA.
	peerRedirect bool
	redirected   bool
	mobike       bool
	peerMobike   bool
	updateSeen   bool
	// originalInitiator: we initiated the first IKE SA this one descends
	// from by rekeys (the I flag follows whoever initiated the last
	// rekey), as charon's COND_ORIGINAL_INITIATOR: the one who may move
	// the SA with MOBIKE (RFC 4555 section 3.4), and the client a gateway
	// may redirect (RFC 5685).
	originalInitiator bool
	// peerMIDSync: the peer announced IKEV2_MESSAGE_ID_SYNC_SUPPORTED in
	// IKE_AUTH (RFC 6311 section 3, mid_sync.go).
	peerMIDSync bool
}

func (e *Engine) newIKESA(c *connection, initiator bool, local, remote netip.AddrPort) *ikeSA {
	sa := &ikeSA{ikeSACommon: e.newIKESACommon(c, initiator, local, remote), originalInitiator: initiator}
	sa.outer = sa
	sa.tm = newTaskManager(sa)
	return sa
}

// ourSPI is the SPI the peer addresses us with.
func (sa *ikeSA) ourSPI() uint64 { return ours(sa.initiator, sa.spiI, sa.spiR) }

func (sa *ikeSA) matchesSPIs(h message.Header) bool {
	if h.InitiatorSPI != sa.spiI {
		return false
	}
	// The responder's SPI is learnt from the IKE_SA_INIT response.
	return h.ResponderSPI == sa.spiR || (sa.spiR == 0 && h.ExchangeType == message.IKE_SA_INIT)
}

func (sa *ikeSA) protOut() *transform.SKProtector {
	if sa.initiator {
		return sa.protI
	}
	return sa.protR
}

func (sa *ikeSA) protIn() *transform.SKProtector {
	if sa.initiator {
		return sa.protR
	}
	return sa.protI
}

// installKeys takes an IKE SA's keys and builds its protectors.
func (sa *ikeSA) installKeys(keys *transform.IKEKeys) error {
	pi, pr, err := keys.Protectors(sa.suite, sa.e.rand)
	if err != nil {
		keys.Zero()
		return err
	}
	sa.keys, sa.protI, sa.protR = keys, pi, pr
	return nil
}

// fragmentLen is the largest IKE message we send unfragmented once
// fragmentation is negotiated.
func (sa *ikeSA) fragmentLen() int {
	n := sa.e.cfg.FragmentSize - 8 // UDP
	if sa.remote.Addr().Is4() {
		n -= 20
	} else {
		n -= 40
	}
	if sa.local.Port() == sa.e.cfg.NATTPort {
		n -= 4
	}
	return n
}

// receive handles a datagram addressed to this IKE SA: decode and decrypt,
// then hand it to the task manager.
func (sa *ikeSA) receive(h message.Header, data []byte, d Datagram) {
	e := sa.e
	if h.ExchangeType == message.IKE_SA_INIT {
		m, err := message.Unmarshal(data)
		if err != nil {
			e.stats.DroppedMalformed++
			sa.log.Debug("dropping invalid IKE_SA_INIT message", "err", err)
			return
		}
		sa.tm.receive(m, data, d)
		return
	}
	in := sa.protIn()
	if in == nil {
		e.stats.DroppedUnexpected++
		return
	}
	var m *message.Message
	var err error
	switch h.NextPayload {
	case message.PayloadSK:
		m, err = message.UnmarshalEncrypted(data, in)
	case message.PayloadSKF:
		var f *message.Fragment
		if f, err = message.UnmarshalFragment(data, in); err != nil {
			break
		}
		if !h.IsResponse() && h.MessageID+1 == sa.tm.expectID && sa.tm.response != nil {
			// A fragment of a retransmitted request: answer on the first.
			if f.Number == 1 {
				infof(sa.log, "received retransmit of request with ID %d, retransmitting response", h.MessageID)
				sa.tm.resendResponse(d)
			}
			return
		}
		if !sa.tm.inWindow(&h) {
			// An old fragment, replayed or late: kept, it would take the
			// place of the message being reassembled.
			e.stats.DroppedMessageID++
			infof(sa.log, "received fragment of message ID %d outside the window, ignored", h.MessageID)
			return
		}
		if sa.reasm == nil {
			// Made on the first fragment: most IKE SAs never see one.
			sa.reasm = message.NewReassembler(message.ReassemblyLimits{})
		}
		m, err = sa.reasm.Add(f)
		if err == nil && m == nil {
			debugf(sa.log, "received fragment #%d of %d, waiting for complete IKE message", f.Number, f.Total)
			return
		}
		if err == nil {
			debugf(sa.log, "received fragment #%d of %d, reassembled fragmented IKE message", f.Number, f.Total)
		} else if errors.Is(err, message.ErrFragmentDuplicate) {
			return
		}
	default:
		e.stats.DroppedUnexpected++
		debugf(sa.log, "dropping unencrypted %v message", h.ExchangeType)
		return
	}
	if err != nil && !errors.Is(err, message.ErrVerifiedContent) {
		// Nobody vouched for these octets (RFC 7296 section 2.21.2): no
		// answer, no message ID, nothing of the IKE SA changes.
		if sa.receiveStale(h, data, d) {
			return
		}
		if errors.Is(err, transform.ErrAuthentication) || errors.Is(err, transform.ErrClosed) {
			e.stats.DroppedAuthentication++
			debugf(sa.log, "integrity check of %v %s %d failed, dropped", h.ExchangeType, reqOrResp(&h), h.MessageID)
		} else {
			e.stats.DroppedMalformed++
			debugf(sa.log, "dropping invalid %v %s %d: %v", h.ExchangeType, reqOrResp(&h), h.MessageID, err)
		}
		return
	}
	if err != nil {
		// Authentic but undecodable: RFC 7296 section 2.21.
		var uc *message.UnsupportedCriticalPayloadError
		if errors.As(err, &uc) {
			sa.log.Info("critical unknown payloads found")
		} else {
			infof(sa.log, "message parsing failed: %v", err)
		}
		infof(sa.log, "%v %s with message ID %d processing failed", h.ExchangeType, reqOrResp(&h), h.MessageID)
		if !h.IsResponse() && h.MessageID == sa.tm.expectID {
			if uc != nil {
				sa.tm.respondNotify(h, d, message.UNSUPPORTED_CRITICAL_PAYLOAD, []byte{byte(uc.Type)})
			} else {
				e.stats.InvalidSyntaxSent++
				sa.tm.respondNotify(h, d, message.INVALID_SYNTAX, nil)
			}
		} else {
			e.stats.DroppedMalformed++
		}
		return
	}
	sa.tm.receive(m, data, d)
}

// authenticated is called for every verified message: it feeds liveness
// and follows the peer's address behind a NAT (RFC 7296 section 2.23).
func (sa *ikeSA) authenticated(d Datagram) {
	sa.lastInbound = sa.e.clock.Now()
	if d.Remote == sa.remote && d.Local == sa.local {
		return
	}
	if sa.mobike && sa.state >= IKESAEstablished {
		// A MOBIKE SA moves with UPDATE_SA_ADDRESSES alone (RFC 4555
		// section 3.5), not with the addresses of other messages, which
		// are answered where they came from.
		debugf(sa.log, "authenticated message on path %s - %s, the IKE_SA is on %s - %s",
			fmtAddr(d.Local), fmtAddr(d.Remote), fmtAddr(sa.local), fmtAddr(sa.remote))

		return
	}
	if sa.e.mayFloat(sa.log, sa.state >= IKESAEstablished, sa.natAny(), sa.local, sa.remote, d) {
		sa.notifyUpdate(d.Local, d.Remote)
		sa.local, sa.remote = d.Local, d.Remote
		for _, c := range sa.children {
			c.updateAddresses()
		}
	}
}

// established moves the SA to ESTABLISHED and starts its timers.
func (sa *ikeSA) established() {
	if sa.establishedAt.IsZero() {
		sa.establishedAt = sa.e.clock.Now()
	}
	sa.setState(IKESAEstablished)
	sa.observeEstablished()
	if !sa.viaRekey {
		sa.notifyUpDown(true)
	}
	sa.leaveHalfOpen()
	if sa.halfOpenTimer != nil {
		sa.halfOpenTimer.Stop()
		sa.halfOpenTimer = nil
	}
	sa.forgetInit()
	sa.scheduleRekey()
	sa.scheduleReauth()
	sa.scheduleDPD()
	sa.scheduleKeepAlive(0)
	sa.armExpire(sa.conn.renewTime() + sa.conn.OverTime)
}

// armExpire sets the hard lifetime of the IKE SA to d from now.
func (sa *ikeSA) armExpire(d time.Duration) {
	if sa.expireTimer != nil {
		sa.expireTimer.Stop()
	}
	sa.expireTimer = sa.e.afterFunc(d, func() {
		if sa.state != IKESADestroying && sa.state != IKESADeleting {
			infof(sa.log, "IKE_SA %s reached its hard lifetime, deleting", sa.name())
			sa.ending(EndExpired)
			if sa.tm.busy() {
				sa.destroy() // an exchange is stuck: no time to wait for it
				return
			}
			sa.tm.queued = append([]task{newIKEDelete(sa)}, sa.tm.queued...)
			sa.tm.initiate()
		}
	})
}

func (sa *ikeSA) scheduleRekey() {
	if sa.rekeyTimer != nil {
		sa.rekeyTimer.Stop()
	}
	if sa.conn.RekeyTime == 0 {
		return // reauthentication alone renews the IKE SA
	}
	sa.rekeyTimer = sa.e.afterFunc(sa.withJitter(sa.conn.RekeyTime), func() {
		if sa.state == IKESAEstablished {
			sa.rekey()
		}
	})
}

// rekey queues an IKE SA rekey.
func (sa *ikeSA) rekey() {
	sa.tm.queue(newIKERekey(sa, true))
	sa.tm.initiate()
}

func (sa *ikeSA) scheduleDPD() {
	if sa.conn.DPDDelay <= 0 {
		return
	}
	if sa.dpdTimer != nil {
		sa.dpdTimer.Stop()
	}
	sa.dpdTimer = sa.e.afterFunc(sa.conn.DPDDelay, sa.checkLiveness)
}

// checkLiveness sends an empty INFORMATIONAL when nothing came from the
// peer for dpd_delay, neither IKE messages nor ESP on its CHILD_SAs.
func (sa *ikeSA) checkLiveness() {
	if sa.state != IKESAEstablished {
		return
	}
	last := sa.lastInbound
	for _, c := range sa.children {
		if t := c.lastUsed(true); t.After(last) {
			last = t
		}
	}
	if idle := sa.e.clock.Now().Sub(last); idle < sa.conn.DPDDelay {
		sa.dpdTimer = sa.e.afterFunc(sa.conn.DPDDelay-idle, sa.checkLiveness)
		return
	}
	if !sa.tm.hasTask(taskDPD) {
		sa.tm.queue(newDPD(sa, true))
		sa.tm.initiate()
	}
	sa.scheduleDPD()
}

// peerDead applies the children's dpd_action after the peer stopped
// answering: clear (delete everything) or restart (initiate again).
func (sa *ikeSA) peerDead() {
	sa.ending(EndPeerDead)
	restart := sa.restart
	var children []*childConfig
	for _, c := range sa.children {
		if c.cfg.restart() {
			restart = true
		}
		if !slices.Contains(children, c.cfg) {
			children = append(children, c.cfg)
		}
	}
	sa.e.trapChildren(sa.conn, children, dpdAction, sa.log)
	sa.destroy()
	if restart && sa.conn != nil {
		infof(sa.log, "restarting CHILD_SAs of IKE_SA %s", sa.name())
		if len(children) == 0 {
			children = sa.conn.children
		}
		if _, err := sa.e.initiate(sa.conn, children); err != nil {
			infof(sa.log, "restarting failed: %v", err)
		}
	}
}

// destroy removes the IKE SA and its CHILD_SAs and zeroes its keys.
func (sa *ikeSA) destroy() {
	sa.rekeyOf = nil
	if sa.state == IKESADestroying {
		return
	}
	if sa.state >= IKESAEstablished && !sa.rekeyedAway && sa.e.observer != nil {
		// As charon's bus: the CHILD_SAs go down first.
		for _, c := range sa.children {
			c.notifyDown()
		}
		sa.notifyUpDown(false)
	}
	sa.setState(IKESADestroying)
	sa.leaveHalfOpen()
	sa.dropFollowup()
	for _, c := range slices.Clone(sa.children) {
		c.destroy()
	}
	sa.children = nil
	sa.removeVIPs()
	sa.stopAccounting()
	sa.tm.stop()
	if sa.eapAuth != nil {
		sa.eapAuth.eap.wipe()
		sa.eapAuth = nil
	}
	sa.releaseVIPs()
	for _, t := range []Timer{sa.halfOpenTimer, sa.rekeyTimer, sa.reauthTimer, sa.expireTimer, sa.dpdTimer, sa.keepAliveTimer} {
		if t != nil {
			t.Stop()
		}
	}
	if sa.redir != nil && sa.redir.timer != nil {
		sa.redir.timer.Stop()
	}
	sa.zeroKeys()
	// An IKE SA is found by our SPI, which is one of its two (a rekey
	// reserves the initiator's before the responder's is known).
	for _, spi := range []uint64{sa.spiI, sa.spiR} {
		if sa.e.sas[spi] == sa {
			delete(sa.e.sas, spi)
		}
	}
	if sa.e.byID[sa.id] == sa {
		delete(sa.e.byID, sa.id)
	}
	sa.forgetInit()
	debugf(sa.log, "IKE_SA %s destroyed", sa.name())
	if f := sa.afterDestroy; f != nil {
		sa.afterDestroy = nil
		f()
	}
}

// forgetInitMessages drops the IKE_SA_INIT messages and nonces once the
// IKE SA is established: only IKE_AUTH signs them (RFC 7296 section
// 2.15) and derives its CHILD_SA's keys from the nonces (section 2.17),
// and a retransmitted IKE_AUTH request is answered from the response
// cache. Kept, they would be half a kilobyte or more of every IKE SA.
func (sa *ikeSA) forgetInitMessages() {
	if sa.state == IKESAEstablished {
		sa.setup.drop()
		sa.setup = nil
		clear(sa.ni)
		clear(sa.nr)
		sa.ni, sa.nr = nil, nil
	}
}

// forgetInit removes the SA from the engine's IKE_SA_INIT retransmit
// index under the key it was entered with (its remote may have floated
// since): a walk of the index would cost every establishment and every
// half-open timeout as much as there are half-open SAs, which under an
// IKE_SA_INIT flood is a great many.
func (sa *ikeSA) forgetInit() {
	if sa.inInit && sa.e.init[sa.initKey] == sa {
		delete(sa.e.init, sa.initKey)
	}
	sa.inInit = false
}

func (sa *ikeSA) leaveHalfOpen() {
	if sa.halfOpen {
		sa.halfOpen = false
		sa.e.halfOpenCount--
		sa.e.leaveHalfOpenSource(halfOpenSource(sa.initKey.remote))
	}
}

func (sa *ikeSA) zeroKeys() {
	if sa.keys != nil {
		sa.keys.Zero()
		sa.keys = nil
	}
	if sa.protI != nil {
		sa.protI.Close()
	}
	if sa.protR != nil {
		sa.protR.Close()
	}
	clear(sa.ni)
	clear(sa.nr)
	sa.setup.drop()
}

// maxDeletedEarly bounds the SPIs noteDeletedEarly keeps.
const maxDeletedEarly = 8

// noteDeletedEarly remembers a CHILD_SA the peer deleted that we do not
// have, while an exchange of ours is in flight: the peer may have made it
// in that exchange and deleted it at once, its DELETE overtaking its
// response. When the response comes, the CHILD_SA goes again
// (deletedEarly) instead of living on at our end only.
func (sa *ikeSA) noteDeletedEarly(spi uint32) {
	if sa.tm.active == nil {
		return
	}
	if len(sa.earlyDeletes) >= maxDeletedEarly {
		sa.earlyDeletes = sa.earlyDeletes[1:]
	}
	sa.earlyDeletes = append(sa.earlyDeletes, spi)
}

// deletedEarly reports (once) whether the peer deleted the CHILD_SA with
// this outbound SPI before we had it.
func (sa *ikeSA) deletedEarly(spi uint32) bool {
	i := slices.Index(sa.earlyDeletes, spi)
	if i < 0 {
		return false
	}
	sa.earlyDeletes = slices.Delete(sa.earlyDeletes, i, i+1)
	return true
}

func (sa *ikeSA) removeChild(c *childSA) {
	sa.children = slices.DeleteFunc(sa.children, func(x *childSA) bool { return x == c })
	sa.e.unindexChild(c)
}

// addChild adds an installed CHILD_SA, found by its ID and SPIs from now
// on (Engine.childSA, childBySAID).
func (sa *ikeSA) addChild(c *childSA) {
	sa.children = append(sa.children, c)
	e := sa.e
	if e.childIdx == nil {
		e.childIdx, e.spiIdx = map[uint32]*childSA{}, map[uint32][]*childSA{}
	}
	e.childIdx[c.id] = c
	e.spiIdx[c.spiIn] = append(e.spiIdx[c.spiIn], c)
	if c.spiOut != c.spiIn {
		e.spiIdx[c.spiOut] = append(e.spiIdx[c.spiOut], c)
	}
}

func (e *Engine) unindexChild(c *childSA) {
	if e.childIdx[c.id] == c {
		delete(e.childIdx, c.id)
	}
	for _, spi := range []uint32{c.spiIn, c.spiOut} {
		if list := slices.DeleteFunc(e.spiIdx[spi], func(x *childSA) bool { return x == c }); len(list) > 0 {
			e.spiIdx[spi] = list
		} else {
			delete(e.spiIdx, spi)
		}
	}
}

func (sa *ikeSA) childByOutboundSPI(proto SAProto, spi uint32) *childSA {
	return childWhere(sa.children, func(c *childSA) bool { return c.spiOut == spi && c.proto() == proto })
}

// saProtoOfWire is the SA protocol of a Delete or REKEY_SA Protocol ID
// (ESP or AH only).
func saProtoOfWire(p message.ProtocolID) (SAProto, bool) {
	switch p {
	case message.ProtocolESP:
		return SAProtoESP, true
	case message.ProtocolAH:
		return SAProtoAH, true
	}
	return 0, false
}

// wireProto is the Protocol ID of an SA protocol.
func wireProto(p SAProto) message.ProtocolID { return message.ProtocolID(p.Protocol()) }

func (sa *ikeSA) childByID(id uint32) *childSA {
	return childWhere(sa.children, func(c *childSA) bool { return c.id == id })
}

func sortSAs(list []*ikeSA) {
	slices.SortFunc(list, func(a, b *ikeSA) int { return int(a.id) - int(b.id) })
}

func randUint32(e *Engine) uint32 {
	b := e.randomBytes(4)
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}
