package ike

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	"github.com/xdpsec/xdpsec/ike/isakmp"
	"github.com/xdpsec/xdpsec/ike/transform"
)

// v1Quick is a Quick Mode exchange in progress.
type v1Quick struct {
	sa        *v1SA
	initiator bool
	mid       uint32
	cfg       *childConfig
	rekey     *v1Child  // the IPsec SA this one replaces
	startedAt time.Time // first Quick Mode message sent or received
	spiIn     uint32
	spiOut    uint32
	ni, nr    []byte
	pfs       transform.KEID
	dh        transform.KeyExchange
	gqm       []byte
	suite     v1ESPSuite
	localTS   TrafficSelector
	remoteTS  TrafficSelector
	installed bool
	// child is, for the responder, the IPsec SA whose inbound half went in
	// with QM2 (the initiator sends on it as soon as it has sent HASH(3));
	// it holds its outbound SA back until HASH(3).
	child *v1Child
}

func (q *v1Quick) release() {
	if q.dh != nil {
		q.dh.Close()
	}
	clear(q.gqm)
	if c := q.child; c != nil && !q.installed {
		c.dropHeldOutbound()
		c.releaseReqid()
	}
	if !q.installed && q.spiIn != 0 {
		q.sa.releaseSPI(q.cfg.proto(), q.spiIn)
	}
	// A rekey that never completed leaves the IPsec SA it was to replace
	// as it was, installed: its timers and the next rekey find it so.
	if r := q.rekey; r != nil && !q.installed && r.state == ChildSARekeying {
		r.state = ChildSAInstalled
	}
}

// v1Child is an IPsec SA pair negotiated in Quick Mode (kernelChild).
type v1Child struct {
	kernelChild[*v1SA]
	proposal  string
	life      time.Duration // the lifetime negotiated, the SAs' hard limit
	initiator bool          // we started its Quick Mode
	timers    []Timer
}

// setLifetime sets the limits the SAs are installed with: soft at
// rekeyAfter, hard at the negotiated lifetime, in both directions.
func (c *v1Child) setLifetime() {
	c.lifetime = Lifetime{SoftTime: c.rekeyAfter(), HardTime: c.life}
	c.outSoftTime = true
}

func (q *v1Quick) pfsGroup() transform.KEID {
	return firstKE(q.cfg.proposals())
}

// startQuick initiates a Quick Mode for a child (rekey: replacing old).
// An error means no Quick Mode is under way.
func (sa *v1SA) startQuick(cc *childConfig, old *v1Child) error {
	q := &v1Quick{sa: sa, initiator: true, cfg: cc, rekey: old, startedAt: sa.e.clock.Now()}
	for q.mid == 0 || sa.quicks[q.mid] != nil || sa.exchanges[q.mid] != nil {
		q.mid = binary.BigEndian.Uint32(sa.e.randomBytes(4))
	}
	if cc.proto() == SAProtoAH && sa.useNATT() {
		// AH authenticates the outer addresses a NAT rewrites (RFC 3947).
		infof(sa.log, "unable to establish AH CHILD_SA %s: AH is not supported behind a NAT", cc.Name)
		q.release()
		return fmt.Errorf("AH behind a NAT: %w", errNoProposal)
	}
	spi, err := sa.allocateSPI(cc.proto())
	if err != nil {
		infof(sa.log, "allocating SPI failed: %v", err)
		q.release() // an IPsec SA being rekeyed stays installed
		return fmt.Errorf("allocating SPI: %w", err)
	}
	q.spiIn = spi
	sa.quicks[q.mid] = q
	q.localTS = sa.v1LocalTS(cc.LocalTS)[0]
	q.remoteTS = sa.resolveRemoteTS(cc.RemoteTS)[0]
	if old != nil {
		q.localTS, q.remoteTS = old.localTS[0], old.remoteTS[0]
	}
	q.ni = sa.e.randomBytes(32)
	q.pfs = q.pfsGroup()
	ps := []isakmp.Payload{q.saPayload(q.spiIn, nil), &isakmp.Nonce{Data: q.ni}}
	if q.pfs != 0 {
		dh, err := transform.NewKeyExchange(q.pfs, sa.e.rand)
		if err != nil {
			infof(sa.log, "PFS group %v: %v", q.pfs, err)
			delete(sa.quicks, q.mid)
			q.release()
			return fmt.Errorf("PFS group %v: %w", q.pfs, err)
		}
		q.dh = dh
		ps = append(ps, &isakmp.KeyExchange{Data: dh.PublicValue()})
	}
	ps = append(ps, tsID(q.localTS), tsID(q.remoteTS))
	sa.sendQuick(q, ps, nil, true)
	return nil
}

// encapMode is the mode attribute: UDP-encapsulated behind a NAT.
func (sa *v1SA) encapMode(m Mode) uint16 {
	nat := sa.useNATT()
	switch {
	case nat && m == ModeTransport:
		return isakmp.EncapUDPTransport
	case nat:
		return isakmp.EncapUDPTunnel
	case m == ModeTransport:
		return isakmp.EncapTransport
	}
	return isakmp.EncapTunnel
}

func (q *v1Quick) saPayload(spi uint32, selected *isakmp.Transform) *isakmp.SecurityAssociation {
	var ts []isakmp.Transform
	if selected != nil {
		ts = []isakmp.Transform{*selected}
	} else if q.cfg.proto() == SAProtoAH {
		ts = v1AHTransforms(q.cfg.AHProposals, q.pfs, q.cfg.LifeTime, q.sa.encapMode(q.cfg.Mode))
	} else {
		ts = v1ESPTransforms(q.cfg.ESPProposals, q.pfs, q.cfg.LifeTime, q.sa.encapMode(q.cfg.Mode))
	}
	return v1SAPayload([]isakmp.Proposal{{Number: 1, Protocol: isakmp.ProtocolID(q.cfg.proto().Protocol()),
		SPI: binary.BigEndian.AppendUint32(nil, spi), Transforms: ts}})
}

// tsID encodes a selector as a client ID (ID_IPV4_ADDR_SUBNET etc.).
// tsID writes a selector as a Quick Mode ID: one port or none (0, any).
// ICMP and ICMPv6 put type<<8|code there as IKEv2 does, and as charon
// sends and reads it; type 0 code 0 (echo reply) cannot be told from any.
func tsID(ts TrafficSelector) *isakmp.Identification {
	port := uint16(0)
	if ts.StartPort == ts.EndPort {
		port = ts.StartPort
	}
	if p, ok := ts.Prefix(); ok {
		return isakmp.SubnetID(p, ts.Protocol, port)
	}
	return isakmp.RangeID(ts.Start, ts.End, ts.Protocol, port)
}

func idTS(id *isakmp.Identification) (TrafficSelector, error) {
	first, last, err := id.Range()
	if err != nil {
		return TrafficSelector{}, err
	}
	ts := TrafficSelector{Protocol: id.Protocol, Start: first, End: last, StartPort: 0, EndPort: 0xffff}
	if id.Port != 0 {
		ts.StartPort, ts.EndPort = id.Port, id.Port
	}
	return ts, nil
}

// sendQuick sends a Quick Mode message: HASH first, computed over the
// payloads after it (and Ni_b for HASH(2)).
func (sa *v1SA) sendQuick(q *v1Quick, ps []isakmp.Payload, niB []byte, await bool) {
	_, rest, err := isakmp.MarshalPayloads(ps)
	if err != nil {
		infof(sa.log, "encoding Quick Mode message failed: %v", err)
		return
	}
	var h []byte
	if niB == nil {
		h, err = transform.V1QuickHash1(sa.prf, sa.keys.SKEYIDa, q.mid, rest)
	} else {
		h, err = transform.V1QuickHash2(sa.prf, sa.keys.SKEYIDa, q.mid, niB, rest)
	}
	if err != nil {
		return
	}
	ex := sa.exchange(q.mid)
	sa.sendSealed(ex, sa.header(isakmp.ExchangeQuick, q.mid), append([]isakmp.Payload{&isakmp.Hash{Data: h}}, ps...), await, func() {
		infof(sa.log, "Quick Mode %d for CHILD_SA %s got no answer", q.mid, q.cfg.Name)
		sa.endQuick(q)
	})
}

func (sa *v1SA) endQuick(q *v1Quick) {
	delete(sa.quicks, q.mid)
	if ex := sa.exchanges[q.mid]; ex != nil {
		ex.stop()
	}
	q.release()
	if sa.successor != nil {
		sa.handOver()
	}
}

// processQuick handles the messages of Quick Mode, both roles.
func (sa *v1SA) processQuick(h isakmp.Header, data []byte) {
	if sa.state != IKESAEstablished {
		sa.e.stats.DroppedUnexpected++
		return
	}
	q := sa.quicks[h.MessageID]
	// A new exchange's state is kept only once its first message is
	// authenticated (accept): a forgery leaves nothing behind.
	ex := sa.exchanges[h.MessageID]
	if ex == nil {
		ex = &v1Exchange{mid: h.MessageID}
	}
	ps, plain, commit, err := sa.open(h, data, ex)
	if err != nil {
		sa.e.stats.DroppedAuthentication++
		infof(sa.log, "could not decrypt Quick Mode message %d: %v", h.MessageID, err)
		return
	}
	// A message whose HASH matches moves the exchange on: its IV and
	// the duplicate check.
	sa.rx.ex, sa.rx.commit = ex, commit
	verified := sa.accept
	unverified := func(why string) {
		sa.e.stats.DroppedAuthentication++
		sa.log.Info(why)
	}
	sa.log.Info("parsed " + v1Summary(h, q == nil || !q.initiator, ps))
	hp, ok := ps[0].(*isakmp.Hash)
	if !ok {
		unverified("Quick Mode message without HASH first")
		return
	}
	hashLen := 4 + len(hp.Data)
	rest := plain[min(hashLen, len(plain)):]
	switch {
	case q == nil: // HASH(1) SA Ni [KE] [IDci IDcr] -->
		want, _ := transform.V1QuickHash1(sa.prf, sa.keys.SKEYIDa, h.MessageID, rest)
		if !bytes.Equal(want, hp.Data) {
			unverified("received HASH payload does not match")
			return
		}
		verified()
		if h.Flags&isakmp.FlagCommit != 0 {
			// The commit bit (RFC 2409 section 5.5) asks the responder
			// to send a CONNECTED notify once its SAs are installed.
			// charon 5.9 never sets the bit and ignores it: it installs
			// on HASH(3) and sends no CONNECTED, and so do we.
			sa.log.Debug("commit bit set, ignored: installing on HASH(3), no CONNECTED notify")
		}
		sa.respondQuick(h, ps, ex)
	case q.initiator: // <-- HASH(2) SA Nr [KE] [IDci IDcr]
		want, _ := transform.V1QuickHash2(sa.prf, sa.keys.SKEYIDa, h.MessageID, q.ni, rest)
		if !bytes.Equal(want, hp.Data) {
			unverified("received HASH payload does not match")
			return
		}
		verified()
		ex.stop()
		if h.Flags&isakmp.FlagCommit != 0 {
			// As charon: installed now, not on a CONNECTED notify.
			sa.log.Debug("commit bit set in HASH(2), ignored")
		}
		if err := q.processResponse(ps); err != nil {
			infof(sa.log, "establishing CHILD_SA %s failed: %v", q.cfg.Name, err)
			sa.endQuick(q)
			return
		}
		h3, _ := transform.V1QuickHash3(sa.prf, sa.keys.SKEYIDa, q.mid, q.ni, q.nr)
		sa.sendSealed(ex, sa.header(isakmp.ExchangeQuick, q.mid), []isakmp.Payload{&isakmp.Hash{Data: h3}}, false, nil)
		sa.installQuick(q)
	default: // HASH(3) -->
		want, _ := transform.V1QuickHash3(sa.prf, sa.keys.SKEYIDa, q.mid, q.ni, q.nr)
		if !bytes.Equal(want, hp.Data) {
			unverified("received HASH(3) does not match")
			return
		}
		verified()
		ex.stop()
		sa.installQuick(q)
	}
}

// respondQuick selects a transform and selectors and answers QM1.
func (sa *v1SA) respondQuick(h isakmp.Header, ps []isakmp.Payload, ex *v1Exchange) {
	saP, ok1 := isakmp.Find[*isakmp.SecurityAssociation](ps)
	n, ok2 := isakmp.Find[*isakmp.Nonce](ps)
	if !ok1 || !ok2 {
		sa.log.Info("Quick Mode request without SA or nonce")
		return
	}
	ids := isakmp.All[*isakmp.Identification](ps)
	// Their IDci is our remote selector, their IDcr our local one; without
	// IDs the selectors are the IKE addresses.
	remoteTS, localTS := HostTS(sa.remote.Addr()), HostTS(sa.local.Addr())
	if len(ids) == 2 {
		var err1, err2 error
		remoteTS, err1 = idTS(ids[0])
		localTS, err2 = idTS(ids[1])
		if err1 != nil || err2 != nil {
			sa.log.Info("invalid client ID")
			sa.notifyQuick(h.MessageID, isakmp.InvalidIDInformation, nil)
			return
		}
	}
	// Among the children whose selectors fit, one of a protocol (ESP or
	// AH) the peer offers first.
	offered := map[isakmp.ProtocolID]bool{}
	for _, pr := range saP.Proposals {
		offered[pr.Protocol] = true
	}
	var cc *childConfig
	// A Cisco Unity client that received split includes proposes
	// 0.0.0.0/0 for our side: the child's own local selector answers it
	// (strongSwan's unity plugin narrows so).
	unity := sa.peerUnity && len(ids) == 2 && unityWildcard(localTS)
	for _, c := range sa.conn.children {
		l, r := resolveTS(c.LocalTS, sa.local.Addr()), sa.resolveRemoteTS(c.RemoteTS)
		if unity && tsListContains(r, remoteTS) && len(l) > 0 && l[0].Start.Is4() {
			cc = c
			localTS = l[0]
			infof(sa.log, "narrowed CHILD_SA to UNITY_SPLIT_INCLUDE %s", localTS)
			ids[1] = tsID(localTS)
			break
		}
		if tsListContains(l, localTS) && tsListContains(r, remoteTS) {
			if cc == nil {
				cc = c
			}
			if offered[isakmp.ProtocolID(c.proto().Protocol())] {
				cc = c
				break
			}
		}
	}
	if cc == nil {
		var conf []string
		for _, c := range sa.conn.children {
			conf = append(conf, formatTS(resolveTS(c.LocalTS, sa.local.Addr()))+" === "+formatTS(sa.resolveRemoteTS(c.RemoteTS)))
		}
		infof(sa.log, "no matching CHILD_SA config found for %s === %s (configured: %v), sending INVALID_ID_INFORMATION",
			localTS, remoteTS, conf)

		sa.notifyQuick(h.MessageID, isakmp.InvalidIDInformation, nil)
		sa.dropExchange(h.MessageID)
		return
	}
	q := &v1Quick{sa: sa, mid: h.MessageID, cfg: cc, ni: n.Data, localTS: localTS, remoteTS: remoteTS, startedAt: sa.e.clock.Now()}
	ke, hasKE := isakmp.Find[*isakmp.KeyExchange](ps)
	var chosen *isakmp.Transform
	var received []string
	proto, parse := isakmp.ProtocolID(cc.proto().Protocol()), v1ParseESP
	if cc.proto() == SAProtoAH {
		parse = v1ParseAH
	}
	withSPI := func(pr isakmp.Proposal) bool { return pr.Protocol == proto && len(pr.SPI) == 4 }
	for offer := range v1Offers(sa.log, proto.String()+" ", saP, withSPI, parse, &received) {
		s := offer.suite
		if matchESP(cc.proposals(), s.suite, firstKE(cc.proposals())) && (s.suite.KE == 0) == !hasKE {
			chosen, q.suite, q.spiOut, q.pfs = &offer.transform, s, binary.BigEndian.Uint32(offer.proposal.SPI), s.suite.KE
			break
		}
	}
	if chosen == nil {
		sa.log.Info("received proposals: " + fmt.Sprint(received))
		sa.log.Info("configured proposals: " + transform.FormatProposals(cc.proposals()))
		sa.log.Info("no acceptable proposal found, sending NO_PROPOSAL_CHOSEN")
		sa.notifyQuick(h.MessageID, isakmp.NoProposalChosen, nil)
		sa.dropExchange(h.MessageID)
		return
	}
	if q.suite.suite.AH && sa.useNATT() {
		// AH authenticates the outer addresses a NAT rewrites (RFC 3947).
		infof(sa.log, "AH is not supported behind a NAT, sending NO_PROPOSAL_CHOSEN for CHILD_SA %s", cc.Name)
		sa.notifyQuick(h.MessageID, isakmp.NoProposalChosen, nil)
		sa.dropExchange(h.MessageID)
		return
	}
	// The shorter lifetime wins: answer with ours if it is shorter.
	q.suite.life = min(q.suite.life, cc.LifeTime)
	sel := *chosen
	sel.Attributes = nil
	for _, a := range chosen.Attributes {
		if isakmp.P2Attr(a.Type) == isakmp.P2LifeDuration {
			a = isakmp.NumberAttr(isakmp.P2LifeDuration, uint64(q.suite.life/time.Second))
		}
		sel.Attributes = append(sel.Attributes, a)
	}
	spi, err := sa.allocateSPI(cc.proto())
	if err != nil {
		infof(sa.log, "allocating SPI failed: %v", err)
		return
	}
	q.spiIn = spi
	q.nr = sa.e.randomBytes(32)
	out := []isakmp.Payload{q.saPayload(q.spiIn, &sel), &isakmp.Nonce{Data: q.nr}}
	if q.pfs != 0 {
		dh, err := transform.NewKeyExchange(q.pfs, sa.e.rand)
		if err != nil {
			q.release()
			return
		}
		q.dh = dh
		if q.gqm, err = dh.SharedSecret(ke.Data); err != nil {
			infof(sa.log, "PFS key exchange failed: %v", err)
			q.release()
			return
		}
		out = append(out, &isakmp.KeyExchange{Data: dh.PublicValue()})
	}
	if len(ids) == 2 {
		out = append(out, ids[0], ids[1])
	}
	sa.quicks[q.mid] = q
	sa.sendQuick(q, out, q.ni, true)
	sa.installQuickInbound(q)
}

// installQuickInbound installs the responder's inbound SA as it sends
// QM2: the initiator installs its outbound SA on QM2 and sends on it
// right after HASH(3), which may reach us after the first ESP packets.
// The outbound SA and the policies wait for HASH(3); without it, release
// removes the inbound SA again.
func (sa *v1SA) installQuickInbound(q *v1Quick) {
	if sa.quicks[q.mid] != q {
		return // sending failed
	}
	c, in, out, err := sa.newQuickChild(q)
	if err != nil {
		infof(sa.log, "deriving CHILD_SA keys failed: %v", err)
		return
	}
	defer func() { clear(in.Encr); clear(in.Integ); clear(out.Encr); clear(out.Integ) }()
	c.state = ChildSAInstalling
	c.acquireReqid()
	if err := c.addSA(true, in); err != nil {
		infof(sa.log, "unable to install inbound SA of CHILD_SA %s: %v", c.name(), err)
		c.releaseReqid()
		return
	}
	c.holdOutbound(out)
	q.child = c
}

// newQuickChild derives the keys of a Quick Mode's IPsec SA pair and
// makes its v1Child (not installed).
func (sa *v1SA) newQuickChild(q *v1Quick) (*v1Child, transform.SAKeys, transform.SAKeys, error) {
	// Ni_b and Nr_b are the Quick Mode initiator's and responder's in
	// both roles.
	in, err := transform.V1ChildKeys(sa.prf, sa.keys.SKEYIDd, q.gqm, q.suite.suite, q.spiIn, q.ni, q.nr)
	if err != nil {
		return nil, in, in, err
	}
	out, err := transform.V1ChildKeys(sa.prf, sa.keys.SKEYIDd, q.gqm, q.suite.suite, q.spiOut, q.ni, q.nr)
	if err != nil {
		clear(in.Encr)
		clear(in.Integ)
		return nil, in, out, err
	}
	sa.e.nextChildID++
	c := &v1Child{kernelChild: kernelChild[*v1SA]{ike: sa, cfg: q.cfg, id: sa.e.nextChildID,
		spiIn: q.spiIn, spiOut: q.spiOut, mode: q.cfg.Mode, suite: q.suite.suite,
		localTS: []TrafficSelector{q.localTS}, remoteTS: []TrafficSelector{q.remoteTS},
		encap: q.suite.encap == isakmp.EncapUDPTunnel || q.suite.encap == isakmp.EncapUDPTransport ||
			q.suite.encap == isakmp.EncapUDPTunnelDraft || q.suite.encap == isakmp.EncapUDPTransportDraft},
		proposal: q.suite.String(), life: q.suite.life, initiator: q.initiator}
	c.setLifetime()
	return c, in, out, nil
}

func tsListContains(list []TrafficSelector, ts TrafficSelector) bool {
	for _, l := range list {
		if l.Contains(ts) {
			return true
		}
	}
	return false
}

// processResponse takes QM2 as the initiator.
func (q *v1Quick) processResponse(ps []isakmp.Payload) error {
	saP, ok1 := isakmp.Find[*isakmp.SecurityAssociation](ps)
	n, ok2 := isakmp.Find[*isakmp.Nonce](ps)
	if !ok1 || !ok2 || len(saP.Proposals) != 1 || len(saP.Proposals[0].Transforms) != 1 || len(saP.Proposals[0].SPI) != 4 {
		return fmt.Errorf("invalid Quick Mode response")
	}
	parse := v1ParseESP
	if q.cfg.proto() == SAProtoAH {
		parse = v1ParseAH
	}
	if saP.Proposals[0].Protocol != isakmp.ProtocolID(q.cfg.proto().Protocol()) {
		return fmt.Errorf("responder selected a %v proposal, we proposed %v", saP.Proposals[0].Protocol, q.cfg.proto())
	}
	s, why := parse(saP.Proposals[0].Transforms[0])
	if why != "" {
		return fmt.Errorf("selected transform: %s", why)
	}
	if !matchESP(q.cfg.proposals(), s.suite, q.pfs) {
		return fmt.Errorf("responder selected a transform we did not propose")
	}
	if s.life > q.cfg.LifeTime {
		s.life = q.cfg.LifeTime
	}
	q.suite, q.nr, q.spiOut = s, n.Data, binary.BigEndian.Uint32(saP.Proposals[0].SPI)
	if q.pfs != 0 {
		ke, ok := isakmp.Find[*isakmp.KeyExchange](ps)
		if !ok {
			return fmt.Errorf("KE payload missing with PFS")
		}
		var err error
		if q.gqm, err = q.dh.SharedSecret(ke.Data); err != nil {
			return err
		}
	}
	if ids := isakmp.All[*isakmp.Identification](ps); len(ids) == 2 {
		l, err1 := idTS(ids[0])
		r, err2 := idTS(ids[1])
		if err1 != nil || err2 != nil || l != q.localTS || r != q.remoteTS {
			return fmt.Errorf("responder changed the client IDs")
		}
	}
	return nil
}

// installQuick derives the keys and installs the IPsec SAs.
func (sa *v1SA) installQuick(q *v1Quick) {
	defer sa.endQuick(q)
	var c *v1Child
	var err error
	if c = q.child; c != nil {
		// The responder: the inbound SA went in with QM2.
		err = c.installOutbound()
	} else {
		var in, out transform.SAKeys
		if c, in, out, err = sa.newQuickChild(q); err != nil {
			infof(sa.log, "deriving CHILD_SA keys failed: %v", err)
			return
		}
		defer func() { clear(in.Encr); clear(in.Integ); clear(out.Encr); clear(out.Integ) }()
		err = c.install(in, out)
	}
	if err != nil {
		infof(sa.log, "unable to install CHILD_SA %s: %v", c.name(), err)
		c.destroy()
		return
	}
	q.installed = true
	sa.observeChild(c.cfg.Name, q.startedAt, q.initiator, q.rekey != nil)
	sa.children = append(sa.children, c)
	sa.e.saveNow(&sa.ikeSACommon) // before it is said (state_journal.go)
	infof(sa.log, "CHILD_SA %s established with SPIs %.8x_i %.8x_o and TS %s === %s",
		c.name(), c.spiIn, c.spiOut, formatTS(c.localTS), formatTS(c.remoteTS))

	if old := q.rekey; old != nil {
		old.state = ChildSARekeyed
		sa.e.count(sa.conn.Name, CounterChildRekey)
		if o := sa.e.observer; o != nil {
			o.ChildRekey(sa.info(false), old.info(), c.info())
		}
		sa.deleteChild(old)
	} else if o := sa.e.observer; o != nil {
		o.ChildUpDown(sa.info(false), c.info(), true)
	}
}

// rekeyAfter is when the IPsec SA is rekeyed: rekey_time, or before the
// negotiated lifetime if that is shorter. The end that did not start the
// Quick Mode waits halfway to the hard lifetime, so that both ends do not
// rekey at once (IKEv1 has no collision handling).
func (c *v1Child) rekeyAfter() time.Duration {
	t := c.life * 9 / 10
	if c.cfg.RekeyTime < c.life {
		t = c.cfg.RekeyTime
	}
	if !c.initiator {
		t += (c.life - t) / 2
	}
	return t
}

func (c *v1Child) install(in, out transform.SAKeys) error {
	c.state = ChildSAInstalling
	if _, err := c.installSAs(in, out, false); err != nil {
		return err
	}
	c.installed()
	return nil
}

// installOutbound installs, on HASH(3), the outbound SA a responder held
// back and the policies.
func (c *v1Child) installOutbound() error {
	if err := c.addHeldOutbound(); err != nil {
		return err
	}
	if err := c.addPolicies(); err != nil {
		return err
	}
	c.installed()
	return nil
}

// installed starts the life of an IPsec SA whose SAs and policies are in.
func (c *v1Child) installed() {
	c.state = ChildSAInstalled
	c.installedAt = c.ike.e.clock.Now()
	c.scheduleTimers(0)
}

// scheduleTimers sets the rekey and expiry timers of an installed IPsec
// SA that has been installed for elapsed already (a restart took it back).
func (c *v1Child) scheduleTimers(elapsed time.Duration) {
	e := c.ike.e
	left := func(d time.Duration) time.Duration { return max(d-elapsed, time.Second) }
	c.timers = append(c.timers, e.afterFuncFor(c.ike, left(c.rekeyAfter()), func() {
		if c.state == ChildSAInstalled && c.ike.state == IKESAEstablished && !c.ike.deleted {
			c.state = ChildSARekeying
			infof(c.ike.log, "rekeying CHILD_SA %s", c.name())
			c.ike.startQuick(c.cfg, c)
		}
	}), e.afterFuncFor(c.ike, left(c.life), func() {
		if c.state != ChildSADestroying && !c.ike.deleted {
			infof(c.ike.log, "CHILD_SA %s expired, deleting", c.name())
			c.ike.deleteChild(c)
		}
	}))
}

func (c *v1Child) stopTimers() {
	for _, t := range c.timers {
		t.Stop()
	}
}

// replaced says whether a newer IPsec SA took this one's place: we
// rekeyed it, or the peer did (IKEv1 does not say so; a newer installed
// IPsec SA of the same selectors and policy is the sign).
func (c *v1Child) replaced() bool {
	if c.state == ChildSARekeyed {
		return true
	}
	for _, x := range c.ike.children {
		if x != c && x.state == ChildSAInstalled && x.reqid != nil && x.reqid == c.reqid && x.id > c.id {
			return true
		}
	}
	return false
}

// destroy removes the IPsec SAs and, with their last user, the policies.
func (c *v1Child) destroy() {
	if c.state == ChildSADestroying {
		return
	}
	replaced := c.replaced()
	c.notifyDown()
	c.state = ChildSADestroying
	c.stopTimers()
	// The inbound SA of a replaced IPsec SA is retired: the peer switches
	// when it installs the new one, which may be after our DELETE left.
	c.removeSAs(replaced)
	sa := c.ike
	sa.children = slices.DeleteFunc(sa.children, func(x *v1Child) bool { return x == c })
}
