package ike

import (
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	"github.com/xdpsec/xdpsec/ike/message"
	"github.com/xdpsec/xdpsec/ike/transform"
)

// childCreate negotiates one CHILD_SA, either piggybacked on IKE_AUTH
// (RFC 7296 section 1.2, no key exchange, IKE_SA_INIT nonces) or in its
// own CREATE_CHILD_SA exchange (section 1.3.1):
//
//	Initiator                         Responder
//	-------------------------------------------------------------------
//	HDR, SK {[N(REKEY_SA)], [N(USE_TRANSPORT_MODE)],
//	         SA, Ni, [KEi], TSi, TSr}  -->
//	                             <--  HDR, SK {[N(USE_TRANSPORT_MODE)],
//	                                      SA, Nr, [KEr], TSi, TSr}
//
// The child rekey task uses it with rekeyed set (section 1.3.3).
type childCreate struct {
	sa        *ikeSA
	initiator bool
	cfg       *childConfig
	inAuth    bool     // part of IKE_AUTH
	rekeyed   *childSA // the CHILD_SA this one replaces, for rekeying
	child     *childSA

	proposals        []transform.Proposal
	offeredLocal     []TrafficSelector // initiator: TSi
	offeredRemote    []TrafficSelector // initiator: TSr
	group            transform.KEID
	ke               transform.KeyExchange
	ni, nr           []byte // CREATE_CHILD_SA nonces
	selectedNum      uint8
	errorNotify      *message.Notify
	transportRequest bool
	done             bool // CHILD_SA installed
	requeued         bool // INVALID_KE_PAYLOAD: sent again in a new exchange
	// fu runs the additional key exchanges the CREATE_CHILD_SA
	// negotiated (RFC 9370, task_child_followup.go); the CHILD_SA is
	// installed when the last is done.
	fu *childFollowup
}

func newChildCreate(sa *ikeSA, initiator bool, cfg *childConfig, rekeyed *childSA) *childCreate {
	return &childCreate{sa: sa, initiator: initiator, cfg: cfg, rekeyed: rekeyed}
}

func (t *childCreate) kind() taskKind                 { return taskChildCreate }
func (t *childCreate) exchange() message.ExchangeType { return message.CREATE_CHILD_SA }

func (t *childCreate) build(m *message.Message) error {
	if t.initiator {
		return t.buildRequest(m)
	}
	return t.buildResponse(m)
}

func (t *childCreate) process(m *message.Message) error {
	if t.initiator {
		return t.processResponse(m)
	}
	return t.processRequest(m)
}

func (t *childCreate) buildRequest(m *message.Message) error {
	sa := t.sa
	if t.child == nil {
		if t.cfg.proto() == SAProtoAH && sa.useNATT() {
			// AH authenticates the outer addresses a NAT rewrites (RFC 3947).
			err := fmt.Errorf("unable to establish AH CHILD_SA %s: AH is not supported behind a NAT", t.cfg.Name)
			sa.log.Info(err.Error())
			return err
		}
		t.child = sa.newChild(t.cfg)
		if err := t.child.allocateSPI(); err != nil {
			sa.log.Info(err.Error())
			return err
		}
		t.proposals = t.cfg.proposals()
		if t.inAuth {
			t.proposals = withoutKE(t.proposals)
		} else if t.group == transform.KE_NONE {
			t.group = firstKE(t.proposals)
		}
		if t.rekeyed != nil {
			t.offeredLocal, t.offeredRemote = t.rekeyed.localTS, t.rekeyed.remoteTS
		} else {
			t.offeredLocal = sa.resolveLocalTS(t.cfg.LocalTS)
			t.offeredRemote = resolveTS(t.cfg.RemoteTS, sa.remote.Addr())
			t.offeredLocal, t.offeredRemote = sa.takeAcquireTS(t.cfg, t.offeredLocal, t.offeredRemote)
		}
	}
	if t.cfg.Mode == ModeTransport {
		m.Payloads = append(m.Payloads, notify(message.USE_TRANSPORT_MODE, nil))
	}
	spi := binary.BigEndian.AppendUint32(nil, t.child.spiIn)
	m.Payloads = append(m.Payloads, &message.SecurityAssociation{Proposals: proposalsToWire(t.proposals, spi)})
	if !t.inAuth {
		if t.ni == nil {
			t.ni = sa.e.randomBytes(nonceLen)
		}
		m.Payloads = append(m.Payloads, &message.Nonce{Data: t.ni})
		if t.group != transform.KE_NONE {
			if t.ke != nil {
				t.ke.Close()
			}
			ke, err := transform.NewKeyExchange(t.group, sa.e.rand)
			if err != nil {
				return err
			}
			t.ke = ke
			m.Payloads = append(m.Payloads, &message.KeyExchange{Group: uint16(t.group), Data: ke.PublicValue()})
		}
	}
	m.Payloads = append(m.Payloads, &message.TSi{TrafficSelectors: tsToWire(t.offeredLocal)}, &message.TSr{TrafficSelectors: tsToWire(t.offeredRemote)})
	return nil
}

// abort releases what a failed CHILD_SA holds.
func (t *childCreate) abort() {
	if t.ke != nil {
		t.ke.Close()
	}
	if t.child != nil && !t.done {
		t.child.destroy()
	}
}

func (t *childCreate) failed() { t.abort() }

func (t *childCreate) processResponse(m *message.Message) error {
	sa := t.sa
	if n := findNotify(m, message.INVALID_KE_PAYLOAD); n != nil && !t.inAuth && len(n.Data) == 2 {
		g := transform.KEID(binary.BigEndian.Uint16(n.Data))
		if g != t.group && offersKE(t.proposals, g) {
			infof(sa.log, "peer didn't accept DH group %v, it requested %v", t.group, g)
			t.group = g
			t.ni = nil
			t.requeued = true
			// A new exchange with a new message ID (RFC 7296 section 1.3).
			sa.tm.queued = append([]task{sa.tm.active}, sa.tm.queued...)
			return nil
		}
	}
	if nt, ok := notifyErr(m); ok {
		infof(sa.log, "received %v notify, no CHILD_SA built", nt)
		if nt == message.TS_UNACCEPTABLE {
			sa.logTSProposal(t.offeredLocal, t.offeredRemote)
		}
		t.abort()
		return nil
	}
	if err := t.processSA(m); err != nil {
		infof(sa.log, "%v, no CHILD_SA built", err)
		t.abort()
		if !t.inAuth {
			// Tell the peer, who installed its half (RFC 7296 section 1.3.1
			// leaves this to a delete).
			sa.tm.queue(newChildDelete(sa, true, nil).forSPI(t.child))
		}
		return nil
	}
	return nil
}

// processSA checks the responder's choice and installs the CHILD_SA.
func (t *childCreate) processSA(m *message.Message) error {
	sa := t.sa
	sap, ok1 := find[*message.SecurityAssociation](m)
	tsi, ok2 := find[*message.TSi](m)
	tsr, ok3 := find[*message.TSr](m)
	if !ok1 || !ok2 || !ok3 || len(sap.Proposals) != 1 || len(sap.Proposals[0].SPI) != 4 {
		return fmt.Errorf("CHILD_SA response incomplete")
	}
	chosen := proposalFromWire(sap.Proposals[0])
	sel, ok := selectProposal(t.proposals, sap.Proposals)
	if !ok || !isSelected(chosen) || len(withImplicitAll(sel.proposal)) != len(withImplicitAll(chosen)) {
		return fmt.Errorf("invalid proposal selected: %v", chosen)
	}
	suite, err := chosen.ChildSuite()
	if err != nil {
		return err
	}
	local, remote := tsFromWire(tsi.TrafficSelectors), tsFromWire(tsr.TrafficSelectors)
	if !subsetTS(local, t.offeredLocal) || !subsetTS(remote, t.offeredRemote) || len(local) == 0 || len(remote) == 0 {
		// The responder narrowed to selectors we did not propose.
		sa.logTSSelection(true, t.offeredLocal, local)
		sa.logTSSelection(false, t.offeredRemote, remote)
		return fmt.Errorf("no acceptable traffic selectors found")
	}
	transport := findNotify(m, message.USE_TRANSPORT_MODE) != nil
	if t.cfg.Mode == ModeTransport && !transport {
		return fmt.Errorf("transport mode requested but not accepted")
	}
	c := t.child
	c.proposal, c.suite = chosen, suite
	c.spiOut = binary.BigEndian.Uint32(sap.Proposals[0].SPI)
	c.localTS, c.remoteTS = local, remote
	var gir []byte
	ni, nr := sa.ni, sa.nr
	if !t.inAuth {
		nrp, ok := find[*message.Nonce](m)
		if !ok || len(nrp.Data) < 16 || len(nrp.Data) > 256 {
			return fmt.Errorf("nonce missing or invalid")
		}
		t.nr = slices.Clone(nrp.Data)
		ni, nr = t.ni, t.nr
		if suite.KE != transform.KE_NONE {
			kep, ok := find[*message.KeyExchange](m)
			if !ok || t.ke == nil || transform.KEID(kep.Group) != suite.KE || t.ke.Method() != suite.KE {
				return fmt.Errorf("key exchange missing or of the wrong group")
			}
			if gir, err = t.ke.SharedSecret(kep.Data); err != nil {
				return err
			}
			defer clear(gir)
		}
	}
	if t.ke != nil {
		t.ke.Close()
	}
	if adds := chosen.AdditionalKEs(); len(adds) > 0 && !t.inAuth {
		n := findNotify(m, message.ADDITIONAL_KEY_EXCHANGE)
		if n == nil || len(n.Data) == 0 || gir == nil {
			return fmt.Errorf("additional key exchanges selected without %v notify or key exchange", message.ADDITIONAL_KEY_EXCHANGE)
		}
		t.fu = &childFollowup{create: t, initiator: true, adds: adds, secrets: [][]byte{slices.Clone(gir)}, link: slices.Clone(n.Data)}
		sa.tm.queued = append([]task{t.fu}, sa.tm.queued...)
		return nil
	}
	return t.installInitiator(gir, ni, nr)
}

// installInitiator derives the CHILD_SA's keys from the shared secrets
// (nil, or g^ir and those of the additional key exchanges one after the
// other) and the nonces, and installs it.
func (t *childCreate) installInitiator(gir, ni, nr []byte) error {
	sa, c, suite := t.sa, t.child, t.child.suite
	keys, err := transform.DeriveChildKeys(sa.suite.PRF, sa.keys.D, suite, gir, ni, nr)
	if err != nil {
		return err
	}
	installing := sa.e.clock.Now()
	if err := c.install(keys, true); err != nil {
		return err
	}
	// The peer may send on the CHILD_SA once it has answered: what it
	// sent before this moment was dropped.
	e := sa.e
	window := c.inboundAt.Sub(e.received)
	e.stats.ResponseToInbound.add(window)
	if debugOn(sa.log) {
		us := func(d time.Duration) time.Duration { return d.Round(time.Microsecond) }
		debugf(sa.log, "inbound SA %.8x of CHILD_SA %s installed %v after the response arrived (%v to the engine, %v waiting for its lock, %v processing it, %v installing)",
			c.spiIn, c.name(), us(window), us(e.called.Sub(e.received)), us(e.locked.Sub(e.called)), us(installing.Sub(e.locked)), us(c.inboundAt.Sub(installing)))
	}
	c.observeInstalled(true, t.rekeyed != nil)
	sa.addChild(c)
	t.done = true
	c.notifyNew(t.rekeyed)
	c.logEstablished()
	sa.childUp()
	if sa.deletedEarly(c.spiOut) {
		infof(sa.log, "CHILD_SA %s was deleted by the peer before its response arrived, closing it", c.name())
		c.destroy()
	}
	return nil
}

func withImplicitAll(p transform.Proposal) []transform.Transform {
	var out []transform.Transform
	for _, tt := range transformTypes {
		out = append(out, withImplicit(p, tt)...)
	}
	return out
}

// selectChildConfig finds the child whose selectors fit the proposed ones
// (charon's select_child_cfg); our local selectors narrow TSr, our remote
// ones TSi.
func (sa *ikeSA) selectChildConfig(tsi, tsr []TrafficSelector) (*childConfig, []TrafficSelector, []TrafficSelector) {
	for _, cc := range sa.conn.children {
		local := narrowTS(resolveTS(cc.LocalTS, sa.local.Addr()), tsr)
		remote := narrowTS(sa.resolveRemoteTS(cc.RemoteTS), tsi)
		if len(local) > 0 && len(remote) > 0 {
			return cc, local, remote
		}
	}
	return nil, nil, nil
}

func (t *childCreate) processRequest(m *message.Message) error {
	sa := t.sa
	sap, ok1 := find[*message.SecurityAssociation](m)
	tsi, ok2 := find[*message.TSi](m)
	tsr, ok3 := find[*message.TSr](m)
	if !ok1 || !ok2 || !ok3 {
		if t.inAuth && !ok1 && !ok2 && !ok3 {
			return nil // childless IKE_AUTH
		}
		t.errorNotify = notify(message.INVALID_SYNTAX, nil)
		return nil
	}
	tsI, tsR := tsFromWire(tsi.TrafficSelectors), tsFromWire(tsr.TrafficSelectors)
	var local, remote []TrafficSelector
	if t.rekeyed != nil {
		t.cfg = t.rekeyed.cfg
		local, remote = narrowTS(t.rekeyed.localTS, tsR), narrowTS(t.rekeyed.remoteTS, tsI)
	} else {
		t.cfg, local, remote = sa.selectChildConfig(tsI, tsR)
	}
	if t.cfg == nil || len(local) == 0 || len(remote) == 0 {
		infof(sa.log, "looking for a child config for %s === %s", formatTS(tsR), formatTS(tsI))
		if t.rekeyed != nil {
			sa.logTSSelection(true, t.rekeyed.localTS, tsR)
			sa.logTSSelection(false, t.rekeyed.remoteTS, tsI)
		} else {
			for _, cc := range sa.conn.children {
				infof(sa.log, "  candidate %q:", cc.Name)
				sa.logTSSelection(true, resolveTS(cc.LocalTS, sa.local.Addr()), tsR)
				sa.logTSSelection(false, sa.resolveRemoteTS(cc.RemoteTS), tsI)
			}
		}
		infof(sa.log, "traffic selectors %s === %s unacceptable", formatTS(tsR), formatTS(tsI))
		t.errorNotify = notify(message.TS_UNACCEPTABLE, nil)
		return nil
	}
	configured := t.cfg.proposals()
	if t.inAuth {
		configured = withoutKE(configured)
	}
	sel, ok := selectProposal(configured, sap.Proposals)
	if !ok || len(sel.spi) != 4 {
		received := append(proposalsFromWire(sap.Proposals, message.ProtocolESP), proposalsFromWire(sap.Proposals, message.ProtocolAH)...)
		sa.log.Info("received proposals: " + transform.FormatProposals(received))
		sa.log.Info("configured proposals: " + transform.FormatProposals(configured))
		sa.log.Info("no acceptable proposal found")
		t.errorNotify = notify(message.NO_PROPOSAL_CHOSEN, nil)
		return nil
	}
	suite, err := sel.proposal.ChildSuite()
	if err != nil {
		t.errorNotify = notify(message.NO_PROPOSAL_CHOSEN, nil)
		return nil
	}
	if suite.AH && sa.useNATT() {
		// AH authenticates the outer addresses a NAT rewrites (RFC 3947).
		if infoOn(sa.log) {
			sa.log.Info("selected proposal: " + sel.proposal.String())
		}
		sa.log.Info("AH is not supported behind a NAT, sending NO_PROPOSAL_CHOSEN")
		t.errorNotify = notify(message.NO_PROPOSAL_CHOSEN, nil)
		return nil
	}
	if infoOn(sa.log) {
		sa.log.Info("selected proposal: " + sel.proposal.String())
	}
	var gir []byte
	ni, nr := sa.ni, sa.nr
	if !t.inAuth {
		nip, ok := find[*message.Nonce](m)
		if !ok || len(nip.Data) < 16 || len(nip.Data) > 256 {
			t.errorNotify = notify(message.INVALID_SYNTAX, nil)
			return nil
		}
		t.ni, t.nr = slices.Clone(nip.Data), sa.e.randomBytes(nonceLen)
		ni, nr = t.ni, t.nr
		if suite.KE != transform.KE_NONE {
			kep, ok := find[*message.KeyExchange](m)
			if !ok || transform.KEID(kep.Group) != suite.KE {
				offered := transform.KE_NONE
				if ok {
					offered = transform.KEID(kep.Group)
				}
				infof(sa.log, "DH group %v unacceptable, requesting %v", offered, suite.KE)
				t.errorNotify = notify(message.INVALID_KE_PAYLOAD, binary.BigEndian.AppendUint16(nil, uint16(suite.KE)))
				return nil
			}
			ke, err := transform.NewKeyExchange(suite.KE, sa.e.rand)
			if err != nil {
				t.errorNotify = notify(message.NO_PROPOSAL_CHOSEN, nil)
				return nil
			}
			t.ke = ke
			if gir, err = ke.SharedSecret(kep.Data); err != nil {
				t.errorNotify = notify(message.INVALID_SYNTAX, nil)
				return nil
			}
			defer clear(gir)
		}
	}
	c := sa.newChild(t.cfg)
	c.replaces = t.rekeyed
	t.child = c
	if findNotify(m, message.USE_TRANSPORT_MODE) != nil && t.cfg.Mode == ModeTransport {
		t.transportRequest = true
	} else {
		c.mode = ModeTunnel
	}
	if err := c.allocateSPI(); err != nil {
		sa.log.Info(err.Error())
		t.errorNotify = notify(message.NO_ADDITIONAL_SAS, nil)
		return nil
	}
	c.proposal, c.suite = sel.proposal, suite
	c.spiOut = binary.BigEndian.Uint32(sel.spi)
	c.localTS, c.remoteTS = local, remote
	t.selectedNum = sel.number
	if adds := sel.proposal.AdditionalKEs(); len(adds) > 0 && !t.inAuth {
		if sa.e.followups[sa] != nil || gir == nil || sa.state != IKESAEstablished {
			// One CHILD_SA's additional exchanges at a time, as charon,
			// and none on an IKE SA being rekeyed: the CHILD_SA would
			// end up on the IKE SA that goes.
			c.destroy()
			t.errorNotify = notify(message.TEMPORARY_FAILURE, nil)
			return nil
		}
		t.fu = &childFollowup{create: t, adds: adds, secrets: [][]byte{slices.Clone(gir)}, link: sa.e.randomBytes(8)}
		if sa.e.followups == nil {
			sa.e.followups = map[*ikeSA]*childFollowup{}
		}
		sa.e.followups[sa] = t.fu
		t.fu.expire()
		return nil
	}
	if err := t.installResponder(gir, ni, nr); err != nil {
		t.errorNotify = notify(message.NO_PROPOSAL_CHOSEN, nil)
	}
	return nil
}

// installResponder derives the CHILD_SA's keys and installs it.
func (t *childCreate) installResponder(gir, ni, nr []byte) error {
	sa, c := t.sa, t.child
	keys, err := transform.DeriveChildKeys(sa.suite.PRF, sa.keys.D, c.suite, gir, ni, nr)
	if err == nil {
		err = c.install(keys, false)
	}
	if err != nil {
		infof(sa.log, "unable to install CHILD_SA %s: %v", c.name(), err)
		c.destroy()
		return err
	}
	c.observeInstalled(false, t.rekeyed != nil)
	sa.addChild(c)
	t.done = true
	c.notifyNew(t.rekeyed)
	return nil
}

func (t *childCreate) buildResponse(m *message.Message) error {
	if t.errorNotify != nil {
		m.Payloads = append(m.Payloads, t.errorNotify)
		if t.ke != nil {
			t.ke.Close()
		}
		return nil
	}
	if t.child == nil {
		return nil // childless
	}
	c := t.child
	if t.transportRequest {
		m.Payloads = append(m.Payloads, notify(message.USE_TRANSPORT_MODE, nil))
	}
	m.Payloads = append(m.Payloads, &message.SecurityAssociation{Proposals: []message.Proposal{
		proposalToWire(c.proposal, t.selectedNum, binary.BigEndian.AppendUint32(nil, c.spiIn))}})
	if !t.inAuth {
		m.Payloads = append(m.Payloads, &message.Nonce{Data: t.nr})
		if t.fu != nil {
			m.Payloads = append(m.Payloads, notify(message.ADDITIONAL_KEY_EXCHANGE, t.fu.link))
		}
		if t.ke != nil {
			m.Payloads = append(m.Payloads, &message.KeyExchange{Group: uint16(t.ke.Method()), Data: t.ke.PublicValue()})
			t.ke.Close()
		}
	}
	m.Payloads = append(m.Payloads, &message.TSi{TrafficSelectors: tsToWire(c.remoteTS)}, &message.TSr{TrafficSelectors: tsToWire(c.localTS)})
	if t.fu != nil && !t.done {
		return nil // established after IKE_FOLLOWUP_KE
	}
	c.logEstablished()
	c.ike.childUp()
	return nil
}
