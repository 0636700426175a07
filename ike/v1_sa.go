package ike

// IKEv1 (RFC 2407, 2408, 2409) beside IKEv2: the ISAKMP SA, its exchanges
// and their retransmission. IKEv1 shares the codec helpers, crypto,
// connections and the Dataplane with IKEv2, not its state machine: an
// ISAKMP SA is a v1SA, its IPsec SAs are v1Childs, and each exchange (Main
// or Aggressive Mode on message ID 0, Quick Mode and informational
// exchanges on random message IDs) keeps its own IV chain, last message
// received and last message sent:
//
//	Main Mode:       SA -->  <-- SA           KE Ni -->  <-- KE Nr
//	                 ID HASH_I/SIG_I* -->     <-- ID HASH_R/SIG_R*
//	Aggressive Mode: SA KE Ni ID -->  <-- SA KE Nr ID HASH_R  HASH_I -->
//	Quick Mode:      HASH(1) SA Ni [KE] [IDci IDcr]* -->
//	                 <-- HASH(2) SA Nr [KE] [IDci IDcr]*   HASH(3)* -->
//
// A message received again is answered with the last message sent in its
// exchange (IKEv1 has no responses as such); a message awaiting an answer
// is retransmitted as IKEv2 requests are.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/xdpsec/xdpsec/ike/isakmp"
	"github.com/xdpsec/xdpsec/ike/transform"
)

// v1State is the engine's IKEv1 part.
type v1State struct {
	sas    map[uint64]*v1SA // by our cookie
	init   map[initKey]*v1SA
	secret []byte // for cookies (RFC 2408 section 2.5.3)
	count  uint64
}

// v1SA is an ISAKMP SA. Guarded by the engine lock.
type v1SA struct {
	ikeSACommon

	aggressive bool
	ckyI, ckyR uint64
	step       int // phase 1 messages handled

	// Phase 1 negotiation.
	saiB       []byte           // the initiator's SA payload body, for HASH_I/R
	chosen     isakmp.Transform // responder: the transform selected
	auth       isakmp.AuthMethod
	prf        transform.PRFID
	encr       transform.EncrID
	encrBits   uint16
	group      transform.KEID
	lifetime   time.Duration
	proposal   string
	dh         transform.KeyExchange
	gxi, gxr   []byte
	ni, nr     []byte
	gxy        []byte
	keys       *transform.V1Keys
	cipher     *transform.V1Cipher
	idiiB      []byte
	peerDPD    bool
	peerNATT   bool
	exchanges  map[uint32]*v1Exchange
	quicks     map[uint32]*v1Quick
	children   []*v1Child
	pending    []*childConfig // to negotiate once established
	fragments  map[uint16]*v1Reassembly
	nextFragID uint16
	// held are informational messages that came before the last
	// Aggressive Mode message, processed once it is in.
	held []v1Held

	// rx is the message being processed; what it tells beyond its
	// payloads is taken only once it is authenticated (accept).
	rx v1Inbound

	dpdSeq        uint32
	establishedAt time.Time
	timers        []Timer
	replaces      *v1SA // the SA this one reauthenticates
	successor     *v1SA // the SA that reauthenticated this one (retire)
	// A responder's phase 1 until it completes: found by initKey in
	// v1State.init and counted under initKey's remote address in the
	// engine's halfOpenBySource (as they were when it was made: the peer
	// may float before it completes).
	halfOpen bool
	initKey  initKey
	inInit   bool
	restart  bool
	deleted  bool
	// initialContact: the peer's phase 1 carried INITIAL-CONTACT, its
	// other ISAKMP SAs go once this one is established (checkUniqueness).
	initialContact bool

	// XAuth and Mode Config (v1_transaction.go, v1_xauth.go,
	// v1_modecfg.go). xauthMethod is the XAuth auth method phase 1
	// negotiated (0: none); p1done is set once the last phase 1 message
	// is processed, when XAuth starts; txns are the Transaction
	// exchanges by message ID; xauthCancel ends a backend's XAuth check
	// under way; peerUnity: the peer sent the Cisco Unity vendor ID;
	// waitModeCfg: as a client, Quick Modes wait for the virtual IP.
	xauthMethod isakmp.AuthMethod
	p1done      bool
	txns        map[uint32]*v1Txn
	xauthCancel context.CancelFunc
	peerUnity   bool
	waitModeCfg bool
	// reauthVIPs are the virtual IPs of the ISAKMP SA this one
	// reauthenticates: its Mode Config asks for them again.
	reauthVIPs []netip.Addr
}

// v1Exchange is one exchange's state, by message ID.
type v1Exchange struct {
	mid     uint32
	iv      []byte // next IV of the CBC chain
	lastIn  []byte
	lastOut [][]byte
	// answers is the received message lastOut answered (nil: lastOut
	// started the exchange or answered nothing). Only a retransmit of
	// that message is answered with lastOut again: the end that sent an
	// exchange's final message must not answer a duplicate of the
	// message before it, or a single duplicated datagram makes both ends
	// resend their last messages to each other for ever.
	answers []byte
	timer   Timer
	tries   int
	// onGiveUp runs when retransmissions are exhausted.
	onGiveUp func()
}

func (e *Engine) v1() *v1State {
	if e.ikev1.sas == nil {
		e.ikev1.sas = map[uint64]*v1SA{}
		e.ikev1.init = map[initKey]*v1SA{}
		e.ikev1.secret = e.randomBytes(32)
	}
	return &e.ikev1
}

// v1Cookie makes a cookie as RFC 2408 section 2.5.3 recommends: a hash of
// the peer's and our address and port, a local secret and the time, with
// a counter so that two SAs at once differ.
func (e *Engine) v1Cookie(local, remote netip.AddrPort) uint64 {
	st := e.v1()
	for {
		st.count++
		h := sha256.New()
		h.Write(st.secret)
		lb, _ := local.MarshalBinary()
		rb, _ := remote.MarshalBinary()
		h.Write(lb)
		h.Write(rb)
		h.Write(binary.BigEndian.AppendUint64(nil, uint64(e.clock.Now().UnixNano())))
		h.Write(binary.BigEndian.AppendUint64(nil, st.count))
		c := binary.BigEndian.Uint64(h.Sum(nil))
		if c != 0 && st.sas[c] == nil {
			return c
		}
	}
}

func (e *Engine) newV1SA(c *connection, initiator bool, local, remote netip.AddrPort) *v1SA {
	sa := &v1SA{ikeSACommon: e.newIKESACommon(c, initiator, local, remote),
		exchanges: map[uint32]*v1Exchange{}, quicks: map[uint32]*v1Quick{}, fragments: map[uint16]*v1Reassembly{},
		aggressive: c.Aggressive && initiator}
	sa.outer = sa
	if sa.localID.IsAny() && local.Addr().IsValid() && !local.Addr().IsUnspecified() {
		sa.localID = addrIdentity(local.Addr())
	}
	return sa
}

func (sa *v1SA) ourCookie() uint64 { return ours(sa.initiator, sa.ckyI, sa.ckyR) }

func (sa *v1SA) after(d time.Duration, f func()) Timer {
	t := sa.e.afterFuncFor(sa, d, func() {
		if !sa.deleted {
			f()
		}
	})
	sa.timers = append(sa.timers, t)
	return t
}

func (e *Engine) allV1SAs() []*v1SA {
	var out []*v1SA
	seen := map[*v1SA]bool{}
	for _, sa := range e.ikev1.sas {
		if !seen[sa] {
			seen[sa] = true
			out = append(out, sa)
		}
	}
	slices.SortFunc(out, func(a, b *v1SA) int { return int(a.id) - int(b.id) })
	return out
}

func (e *Engine) v1Infos() []IKESAInfo {
	var out []IKESAInfo
	for _, sa := range e.allV1SAs() {
		i := sa.info(true)
		// A Quick Mode we started for a new IPsec SA shows as a CHILD_SA
		// being created: it follows phase 1, and waiting for the CHILD_SA
		// of an initiate must not take its absence for a failure.
		for _, q := range sa.quicks {
			if q.initiator && q.rekey == nil && !q.installed {
				i.Children = append(i.Children, ChildSAInfo{Name: q.cfg.Name, State: ChildSACreated, SPIIn: q.spiIn, Protocol: q.cfg.proto(),
					LocalTS: []TrafficSelector{q.localTS}, RemoteTS: []TrafficSelector{q.remoteTS}})
			}
		}
		out = append(out, i)
	}
	return out
}

// v1Inbound is a received message under processing. An ISAKMP SA's
// cookies and message IDs travel in clear, so anyone can send it
// datagrams: nothing of the SA changes for one until it is authenticated
// (HASH or signature verified). Then accept moves its exchange's IV chain
// and duplicate check on, counts the peer alive and follows an address
// change (RFC 7296 section 2.23's rule, which IKEv1 NAT-T needs as well).
type v1Inbound struct {
	d      Datagram
	data   []byte
	ex     *v1Exchange // the exchange, stored once accepted (nil: none)
	commit func()      // moves ex's IV chain on (nil: unencrypted)
}

// accept takes the authenticated message in sa.rx.
func (sa *v1SA) accept() {
	rx := sa.rx
	sa.rx = v1Inbound{}
	if rx.commit != nil {
		rx.commit()
	}
	if ex := rx.ex; ex != nil {
		ex.lastIn = rx.data
		if sa.exchanges[ex.mid] == nil {
			sa.exchanges[ex.mid] = ex
		}
	}
	sa.lastInbound = sa.e.clock.Now()
	d := rx.d
	if d.Remote.IsValid() && (d.Remote != sa.remote || d.Local != sa.local) {
		// The peer floated to port 4500 or its NAT mapping changed.
		if sa.e.mayFloat(sa.log, sa.state == IKESAEstablished, sa.natLocal || sa.natRemote, sa.local, sa.remote, d) {
			sa.notifyUpdate(d.Local, d.Remote)
			sa.local, sa.remote = d.Local, d.Remote
			for _, c := range sa.children {
				c.updateAddresses()
			}
		}
	}
}

// exchange returns the state of an exchange, creating it.
func (sa *v1SA) exchange(mid uint32) *v1Exchange {
	ex := sa.exchanges[mid]
	if ex == nil {
		ex = &v1Exchange{mid: mid}
		sa.exchanges[mid] = ex
	}
	return ex
}

// forget drops a finished exchange.
func (sa *v1SA) forget(ex *v1Exchange) {
	ex.stop()
	sa.dropExchange(ex.mid)
}

// dropExchange removes an exchange's state. Phase 1's (message ID 0)
// stays for the ISAKMP SA's life: its last message stays answerable and
// its IV chain seeds every later exchange's IV.
func (sa *v1SA) dropExchange(mid uint32) {
	if mid != 0 {
		delete(sa.exchanges, mid)
	}
}

func (ex *v1Exchange) stop() {
	if ex.timer != nil {
		ex.timer.Stop()
		ex.timer = nil
	}
	ex.onGiveUp = nil
}

// ivFor returns the IV of the next message of an exchange: the phase 1
// IV chain for message ID 0, else hash(last phase 1 block | M-ID).
func (sa *v1SA) ivFor(ex *v1Exchange) ([]byte, error) {
	if ex.iv == nil && ex.mid != 0 {
		p1 := sa.exchanges[0]
		if p1 == nil || p1.iv == nil {
			return nil, fmt.Errorf("no phase 1 IV: %w", transform.ErrV1IV)
		}
		iv, err := transform.V1ExchangeIV(sa.prf, p1.iv, ex.mid, sa.cipher.BlockSize())
		if err != nil {
			return nil, err
		}
		ex.iv = iv
	}
	if ex.iv == nil {
		return nil, fmt.Errorf("exchange %d has no IV: %w", ex.mid, transform.ErrV1IV)
	}
	return ex.iv, nil
}

// seal encrypts a message of an exchange, advancing its IV chain.
func (sa *v1SA) seal(h isakmp.Header, payloads []isakmp.Payload, ex *v1Exchange) ([]byte, error) {
	first, body, err := isakmp.MarshalPayloads(payloads)
	if err != nil {
		return nil, err
	}
	iv, err := sa.ivFor(ex)
	if err != nil {
		return nil, err
	}
	ct, err := sa.cipher.Encrypt(iv, body)
	clear(body) // it may hold an XAuth password
	if err != nil {
		return nil, err
	}
	ex.iv = append([]byte(nil), ct[len(ct)-sa.cipher.BlockSize():]...)
	return isakmp.AssembleEncrypted(h, first, ct)
}

// open decrypts a message of an exchange, advancing its IV chain only if
// its payloads parse (a forged message must not break the chain). It
// returns the payloads and the decrypted body up to the last payload.
//
// CBC authenticates nothing: what decrypts and parses may still be forged
// (with the cookies and message ID seen on the wire). The exchange's IV
// moves on to the message's last block only when commit is called, after
// the caller has verified the message's HASH (or, in phase 1, at once);
// a forgery must not break the IV chain of the real exchange.
func (sa *v1SA) open(h isakmp.Header, data []byte, ex *v1Exchange) (ps []isakmp.Payload, plain []byte, commit func(), err error) {
	if sa.cipher == nil {
		return nil, nil, nil, fmt.Errorf("no keys yet")
	}
	ct := data[isakmp.HeaderLen:]
	iv, err := sa.ivFor(ex)
	if err != nil {
		return nil, nil, nil, err
	}
	pt, err := sa.cipher.Decrypt(iv, ct)
	if err != nil {
		return nil, nil, nil, err
	}
	ps, n, err := isakmp.ParsePayloads(h.NextPayload, pt)
	if err != nil {
		return nil, nil, nil, err
	}
	if len(ps) == 0 {
		return nil, nil, nil, fmt.Errorf("no payloads")
	}
	next := append([]byte(nil), ct[len(ct)-sa.cipher.BlockSize():]...)
	return ps, pt[:n], func() { ex.iv = next }, nil
}

// header returns a header of this SA.
func (sa *v1SA) header(t isakmp.ExchangeType, mid uint32) isakmp.Header {
	return isakmp.Header{InitiatorCookie: sa.ckyI, ResponderCookie: sa.ckyR, Exchange: t, MessageID: mid}
}

// transmit sends a message of an exchange, remembers it for duplicates,
// and retransmits it until answered if awaitReply.
func (sa *v1SA) transmit(ex *v1Exchange, msg []byte, summary string, awaitReply bool, onGiveUp func()) {
	sa.log.Info("generating " + summary)
	packets := sa.fragment(msg)
	ex.lastOut, ex.answers = packets, ex.lastIn
	ex.stop()
	sa.send(packets)
	if !awaitReply {
		return
	}
	ex.tries = 0
	ex.onGiveUp = onGiveUp
	sa.scheduleRetransmit(ex)
}

func (sa *v1SA) scheduleRetransmit(ex *v1Exchange) {
	ex.timer = sa.after(sa.e.retransmitTimeout(ex.tries), func() {
		ex.timer = nil
		if !sa.retransmitDue(&ex.tries) {
			if f := ex.onGiveUp; f != nil {
				ex.onGiveUp = nil
				f()
			}
			return
		}
		infof(sa.log, "retransmit %d of request with message ID %d", ex.tries, ex.mid)
		sa.send(ex.lastOut)
		sa.scheduleRetransmit(ex)
	})
}

// sendPlain sends an unencrypted message of phase 1.
func (sa *v1SA) sendPlain(ex *v1Exchange, m *isakmp.Message, awaitReply bool) {
	b, err := m.Marshal()
	if err != nil {
		infof(sa.log, "encoding %v failed: %v", m.Header.Exchange, err)
		return
	}
	sa.transmit(ex, b, v1Summary(m.Header, sa.isRequest(m.Header), m.Payloads), awaitReply, sa.giveUp)
}

// sendSealed sends an encrypted message.
func (sa *v1SA) sendSealed(ex *v1Exchange, h isakmp.Header, ps []isakmp.Payload, awaitReply bool, onGiveUp func()) {
	b, err := sa.seal(h, ps, ex)
	if err != nil {
		infof(sa.log, "encoding %v failed: %v", h.Exchange, err)
		return
	}
	sa.transmit(ex, b, v1Summary(h, sa.isRequest(h), ps), awaitReply, onGiveUp)
}

// isRequest names IKEv1 messages as charon does: phase 1 messages of the
// initiator are requests; other exchanges by whoever starts them.
func (sa *v1SA) isRequest(h isakmp.Header) bool {
	if h.MessageID == 0 {
		return sa.initiator
	}
	if q := sa.quicks[h.MessageID]; q != nil {
		return q.initiator
	}
	if t := sa.txns[h.MessageID]; t != nil {
		return t.initiator
	}
	return true
}

// giveUp ends a phase 1 that got no answer.
func (sa *v1SA) giveUp() {
	infof(sa.log, "establishing IKE_SA %s failed, peer not responding", sa.name())
	sa.die()
}

// v1Summary formats a message as charon's "generating"/"parsed" lines do:
// "ID_PROT request 0 [ SA V V V ]".
func v1Summary(h isakmp.Header, request bool, ps []isakmp.Payload) string {
	var b bytes.Buffer
	kind := "response"
	if request {
		kind = "request"
	}
	fmt.Fprintf(&b, "%v %s %d [ ", h.Exchange, kind, h.MessageID)
	for _, p := range ps {
		switch p := p.(type) {
		case *isakmp.Notify:
			fmt.Fprintf(&b, "N(%s) ", p.NotifyType.Short())
		case *isakmp.Fragment:
			fmt.Fprintf(&b, "FRAG(%d) ", p.Number)
		default:
			b.WriteString(p.Type().String() + " ")
		}
	}
	b.WriteByte(']')
	return b.String()
}

// destroy removes the SA and its IPsec SAs without telling the peer.
func (sa *v1SA) destroy() {
	if sa.deleted {
		return
	}
	sa.deleted = true
	if o := sa.e.observer; o != nil && sa.state >= IKESAEstablished {
		for _, c := range sa.children {
			c.notifyDown()
		}
		o.IKEUpDown(sa.info(false), false)
	}
	sa.setState(IKESADestroying)
	sa.stopTimers()
	if sa.xauthCancel != nil {
		sa.xauthCancel()
		sa.xauthCancel = nil
	}
	for _, q := range sa.quicks {
		q.release()
	}
	for _, c := range slices.Clone(sa.children) {
		c.destroy()
	}
	st := sa.e.v1()
	if st.sas[sa.ourCookie()] == sa {
		delete(st.sas, sa.ourCookie())
	}
	sa.leaveHalfOpen()
	sa.removeVIPs()
	sa.releaseVIPs()
	if sa.dh != nil {
		sa.dh.Close()
	}
	sa.keys.Zero()
	clear(sa.gxy)
}

// stopTimers stops the SA's timers and its exchanges' retransmits.
func (sa *v1SA) stopTimers() {
	for _, t := range sa.timers {
		t.Stop()
	}
	for _, ex := range sa.exchanges {
		ex.stop()
	}
}

// leaveHalfOpen ends a responder's phase 1, established or destroyed:
// it leaves the IKE_SA_INIT retransmit index and its source's half-open
// count.
func (sa *v1SA) leaveHalfOpen() {
	st := sa.e.v1()
	if sa.inInit && st.init[sa.initKey] == sa {
		delete(st.init, sa.initKey)
	}
	sa.inInit = false
	if sa.halfOpen {
		sa.halfOpen = false
		sa.e.leaveHalfOpenSource(halfOpenSource(sa.initKey.remote))
	}
}

// die destroys the SA and restarts its connection if its children ask
// for it (dpd_action = restart).
func (sa *v1SA) die() {
	sa.ending(EndPeerDead)
	restart := sa.restart
	var children []*childConfig
	for _, c := range sa.children {
		if c.cfg.restart() {
			restart = true
		}
		children = append(children, c.cfg)
	}
	if len(children) == 0 {
		children = sa.pending
	}
	sa.e.trapChildren(sa.conn, children, dpdAction, sa.log)
	sa.destroy()
	if restart && sa.initiatorCapable() {
		infof(sa.log, "restarting CHILD_SAs of IKE_SA %s", sa.name())
		if _, err := sa.e.initiateV1(sa.conn, children); err != nil {
			infof(sa.log, "restarting failed: %v", err)
		}
	}
}

func (sa *v1SA) initiatorCapable() bool { return len(sa.conn.RemoteAddrs) > 0 }

// handleV1 takes an IKEv1 datagram (after the non-ESP marker).
func (e *Engine) handleV1(data []byte, d Datagram) {
	h, err := isakmp.UnmarshalHeader(data)
	if err != nil {
		e.stats.DroppedMalformed++
		e.log.Debug("dropping invalid ISAKMP message", "from", d.Remote, "err", err)
		return
	}
	st := e.v1()
	sa := st.sas[h.InitiatorCookie]
	if sa == nil || !sa.initiator || (sa.ckyR != 0 && sa.ckyR != h.ResponderCookie) {
		sa = st.sas[h.ResponderCookie]
		if sa != nil && (sa.initiator || sa.ckyI != h.InitiatorCookie) {
			sa = nil
		}
	}
	if sa == nil && h.ResponderCookie == 0 {
		sa = st.init[initKey{d.Remote, h.InitiatorCookie}]
		if sa == nil && h.MessageID == 0 && h.Flags&isakmp.FlagEncryption == 0 &&
			(h.Exchange == isakmp.ExchangeMain || h.Exchange == isakmp.ExchangeAggressive) {
			src := halfOpenSource(d.Remote)
			if e.blocked(src) {
				return
			}
			c := e.connectionForV1(d.Local.Addr(), d.Remote.Addr())
			if c == nil {
				infof(e.log, "no IKE config found for %s...%s, sending NO_PROPOSAL_CHOSEN", d.Local.Addr(), d.Remote.Addr())
				e.v1Notify(h, d, isakmp.NoProposalChosen)
				return
			}
			infof(e.log, "%s is initiating a %s IKE_SA", d.Remote.Addr(), map[bool]string{true: "Aggressive Mode", false: "Main Mode"}[h.Exchange == isakmp.ExchangeAggressive])
			sa = e.newV1SA(c, false, d.Local, d.Remote)
			sa.initAt = e.clock.Now()
			sa.ckyI, sa.ckyR = h.InitiatorCookie, e.v1Cookie(d.Local, d.Remote)
			sa.aggressive = h.Exchange == isakmp.ExchangeAggressive
			st.sas[sa.ckyR] = sa
			sa.initKey, sa.inInit = initKey{d.Remote, h.InitiatorCookie}, true
			st.init[sa.initKey] = sa
			sa.halfOpen = true
			e.enterHalfOpenSource(src)
			sa.after(e.cfg.HalfOpenTimeout, func() {
				if sa.state != IKESAEstablished {
					infof(sa.log, "IKE_SA %s half-open timeout", sa.name())
					sa.destroy()
				}
			})
		}
	}
	if sa == nil {
		e.stats.DroppedUnknownSA++
		debugf(e.log, "ignoring %v for unknown IKE_SA %016x_i %016x_r", h.Exchange, h.InitiatorCookie, h.ResponderCookie)
		return
	}
	e.handling = sa
	sa.receive(h, data, d)
}

// connectionForV1 finds the first IKEv1 connection allowing the addresses.
func (e *Engine) connectionForV1(local, remote netip.Addr) *connection {
	for _, c := range e.conns {
		if c.Version == 1 && addrAllowed(c.LocalAddrs, local) && addrAllowed(c.RemoteAddrs, remote) {
			return c
		}
	}
	return nil
}

// v1Notify answers an unauthenticated phase 1 message with an unencrypted
// informational notify.
func (e *Engine) v1Notify(req isakmp.Header, d Datagram, t isakmp.NotifyType) {
	m := &isakmp.Message{
		Header: isakmp.Header{InitiatorCookie: req.InitiatorCookie, ResponderCookie: req.ResponderCookie,
			Exchange: isakmp.ExchangeInformational, MessageID: binary.BigEndian.Uint32(e.randomBytes(4))},
		Payloads: []isakmp.Payload{&isakmp.Notify{DOI: isakmp.DOIIPsec, Protocol: isakmp.ProtoISAKMP,
			SPI: binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, req.InitiatorCookie), req.ResponderCookie), NotifyType: t}},
	}
	b, err := m.Marshal()
	if err != nil {
		return
	}
	e.log.Info("generating " + v1Summary(m.Header, true, m.Payloads))
	e.send(d.Local, d.Remote, [][]byte{b})
}

// receive handles a datagram of this SA.
func (sa *v1SA) receive(h isakmp.Header, data []byte, d Datagram) {
	e := sa.e
	if h.NextPayload == isakmp.PayloadFragment && h.Flags&isakmp.FlagEncryption == 0 {
		sa.reassemble(h, data, d)
		return
	}
	ex := sa.exchanges[h.MessageID]
	if ex != nil && ex.lastIn != nil && bytes.Equal(ex.lastIn, data) {
		if ex.lastOut != nil && ex.answers != nil && bytes.Equal(ex.answers, data) {
			infof(sa.log, "received retransmit of message with ID %d, retransmitting last message", h.MessageID)
			sa.send(ex.lastOut)
		}
		return
	}
	if sa.phase1Incomplete() && h.MessageID != 0 && h.Flags&isakmp.FlagEncryption != 0 {
		sa.holdUntilPhase1(h, data, d)
		return
	}
	if h.MessageID == 0 && h.Exchange != isakmp.ExchangeMain && h.Exchange != isakmp.ExchangeAggressive &&
		(h.Flags&isakmp.FlagEncryption != 0 || h.Exchange != isakmp.ExchangeInformational) {
		// Message ID 0 is phase 1's (RFC 2409 section 5): a protected
		// exchange with it would share phase 1's IV chain.
		e.stats.DroppedUnexpected++
		infof(sa.log, "ignoring %v message with message ID 0", h.Exchange)
		return
	}
	sa.rx = v1Inbound{d: d, data: data}
	defer func() { sa.rx = v1Inbound{} }()
	switch {
	case h.MessageID == 0 && (h.Exchange == isakmp.ExchangeMain || h.Exchange == isakmp.ExchangeAggressive):
		sa.processPhase1(h, data)
	case h.Exchange == isakmp.ExchangeQuick:
		sa.processQuick(h, data)
	case h.Exchange == isakmp.ExchangeInformational:
		sa.processInformational(h, data)
	case h.Exchange == isakmp.ExchangeTransaction:
		sa.processTransaction(h, data)
	default:
		e.stats.DroppedUnexpected++
		infof(sa.log, "ignoring %v message with ID %d", h.Exchange, h.MessageID)
	}
}

// v1Held is a protected message received before phase 1 completed.
type v1Held struct {
	h    isakmp.Header
	data []byte
	d    Datagram
}

// maxV1Held bounds the informational messages held per ISAKMP SA.
const maxV1Held = 4

// phase1Incomplete reports whether we respond to an Aggressive Mode whose
// third message (HASH_I) has not arrived: the initiator is established
// since it sent that message and may start Quick Mode at once, so a lost
// or reordered HASH_I lets its Quick Mode or informational messages
// arrive first. They cannot even be decrypted yet: the IV of their
// exchange derives from the last phase 1 block, which HASH_I brings.
func (sa *v1SA) phase1Incomplete() bool {
	return sa.aggressive && !sa.initiator && !sa.p1done && !sa.deleted
}

// holdUntilPhase1 does with a protected message before HASH_I what charon
// does: Quick Mode (and other exchanges) are dropped, their initiator
// retransmits them; informational messages, which nobody retransmits, are
// held and processed once phase 1 completes.
func (sa *v1SA) holdUntilPhase1(h isakmp.Header, data []byte, d Datagram) {
	if h.Exchange != isakmp.ExchangeInformational {
		sa.e.stats.DroppedUnexpected++
		infof(sa.log, "ignoring %v request while phase 1 is incomplete", h.Exchange)
		return
	}
	if len(sa.held) >= maxV1Held {
		sa.e.stats.DroppedUnexpected++
		infof(sa.log, "ignoring %v request while phase 1 is incomplete, %d already queued", h.Exchange, len(sa.held))
		return
	}
	debugf(sa.log, "queueing %v request until phase 1 completes", h.Exchange)
	sa.held = append(sa.held, v1Held{h: h, data: slices.Clone(data), d: d})
}

// releaseHeld processes the messages held during phase 1.
func (sa *v1SA) releaseHeld() {
	held := sa.held
	sa.held = nil
	for _, m := range held {
		if sa.deleted {
			return
		}
		sa.receive(m.h, m.data, m.d)
	}
}
