package ike

import (
	"encoding/binary"
	"fmt"

	"github.com/xdpsec/xdpsec/ike/message"
	"github.com/xdpsec/xdpsec/ike/transform"
)

const nonceLen = 32

// maxCookieRetries bounds how often an initiator follows COOKIE requests.
const maxCookieRetries = 3

// ikeInit is the IKE_SA_INIT exchange (RFC 7296 section 1.2), with NAT
// detection (2.23), cookies (2.6), INVALID_KE_PAYLOAD (1.2) and the
// capability notifies IKEV2_FRAGMENTATION_SUPPORTED (RFC 7383) and
// SIGNATURE_HASH_ALGORITHMS (RFC 7427):
//
//	Initiator                         Responder
//	-------------------------------------------------------------------
//	HDR, SAi1, KEi, Ni,
//	  N(NATD_S_IP), N(NATD_D_IP),
//	  N(FRAG_SUP), N(HASH_ALG)  -->
//	                             <--  HDR, SAr1, KEr, Nr, [CERTREQ,]
//	                                    N(NATD_S_IP), N(NATD_D_IP), ...
type ikeInit struct {
	sa        *ikeSA
	initiator bool

	ke           transform.KeyExchange
	group        transform.KEID
	cookie       []byte
	cookieTries  int
	proposals    []transform.Proposal // initiator: offered
	selected     selection            // responder
	errorNotify  *message.Notify      // responder: the answer instead of SAr1
	peerKE       *message.KeyExchange // responder
	requestHasKE bool
	// resumeSend: a redirect waits for its gateway's address; retarget
	// sends the request when it is in.
	resumeSend bool
}

func newIKEInit(sa *ikeSA, initiator bool) *ikeInit {
	return &ikeInit{sa: sa, initiator: initiator, proposals: sa.conn.Proposals, group: firstKE(sa.conn.Proposals)}
}

func (t *ikeInit) kind() taskKind                 { return taskIKEInit }
func (t *ikeInit) exchange() message.ExchangeType { return message.IKE_SA_INIT }

func (t *ikeInit) build(m *message.Message) error {
	if t.initiator {
		return t.buildRequest(m)
	}
	return t.buildResponse(m)
}

func (t *ikeInit) process(m *message.Message) error {
	if t.initiator {
		return t.processResponse(m)
	}
	return t.processRequest(m)
}

func (t *ikeInit) buildRequest(m *message.Message) error {
	sa := t.sa
	if t.ke == nil || t.ke.Method() != t.group {
		if t.ke != nil {
			t.ke.Close()
		}
		ke, err := transform.NewKeyExchange(t.group, sa.e.rand)
		if err != nil {
			return fmt.Errorf("%w: key exchange %v: %v", errDestroy, t.group, err)
		}
		t.ke = ke
	}
	if sa.ni == nil {
		sa.ni = sa.e.randomBytes(nonceLen)
	}
	sa.setState(IKESAConnecting)
	if t.cookie != nil {
		m.Payloads = append(m.Payloads, notify(message.COOKIE, t.cookie))
	}
	m.Payloads = append(m.Payloads,
		&message.SecurityAssociation{Proposals: proposalsToWire(t.proposals, nil)},
		&message.KeyExchange{Group: uint16(t.group), Data: t.ke.PublicValue()},
		&message.Nonce{Data: sa.ni},
	)
	m.Payloads = append(m.Payloads, sa.natdPayloads(sa.spiI, 0)...)
	m.Payloads = append(m.Payloads, t.capabilities()...)
	return nil
}

func (t *ikeInit) capabilities() []message.Payload {
	var out []message.Payload
	if t.sa.conn.fragmentation {
		out = append(out, notify(message.IKEV2_FRAGMENTATION_SUPPORTED, nil))
	}
	if t.initiator && intermediateSupported(t.proposals) ||
		!t.initiator && t.sa.setup.intermediateOn() {
		out = append(out, notify(message.INTERMEDIATE_EXCHANGE_SUPPORTED, nil))
	}
	var hashes []byte
	for _, h := range transform.SupportedHashes {
		hashes = binary.BigEndian.AppendUint16(hashes, uint16(h))
	}
	out = append(out, notify(message.SIGNATURE_HASH_ALGORITHMS, hashes))
	if t.initiator {
		// Last, as charon sends it: "N(HASH_ALG) N(REDIR_SUP)".
		if n := t.sa.redirectCapability(); n != nil {
			out = append(out, n)
		}
	}
	return out
}

func (t *ikeInit) processCapabilities(m *message.Message) {
	sa := t.sa
	sa.peerFrag = findNotify(m, message.IKEV2_FRAGMENTATION_SUPPORTED) != nil
	if findNotify(m, message.INTERMEDIATE_EXCHANGE_SUPPORTED) != nil && intermediateSupported(sa.conn.Proposals) {
		sa.setupState().intermediate = true
	}
	if n := findNotify(m, message.SIGNATURE_HASH_ALGORITHMS); n != nil {
		sa.peerHashes = nil
		for i := 0; i+1 < len(n.Data); i += 2 {
			sa.peerHashes = append(sa.peerHashes, transform.HashAlgorithm(binary.BigEndian.Uint16(n.Data[i:])))
		}
	}
	if _, ok := find[*message.CertificateRequest](m); ok {
		sa.peerCertReq = true
	}
}

func (t *ikeInit) processResponse(m *message.Message) error {
	sa := t.sa
	if n := findNotify(m, message.REDIRECT); n != nil {
		return t.followInit(n) // its nonce checked by screen
	}
	if n := findNotify(m, message.COOKIE); n != nil {
		if t.cookieTries >= maxCookieRetries || len(n.Data) == 0 || len(n.Data) > 64 {
			sa.log.Info("received COOKIE notify too often or invalid, giving up")
			return errDestroy
		}
		t.cookieTries++
		t.cookie = n.Data
		sa.log.Info("received COOKIE notify, retrying with it")
		return errRetry
	}
	if n := findNotify(m, message.INVALID_KE_PAYLOAD); n != nil {
		if len(n.Data) != 2 {
			return errDestroy
		}
		g := transform.KEID(binary.BigEndian.Uint16(n.Data))
		if g == t.group || !offersKE(t.proposals, g) || !g.Supported() {
			infof(sa.log, "peer requested unacceptable DH group %v", g)
			return errDestroy
		}
		infof(sa.log, "peer didn't accept DH group %v, it requested %v", t.group, g)
		t.group = g
		return errRetry
	}
	if nt, ok := notifyErr(m); ok {
		infof(sa.log, "received %v notify error", nt)
		return errDestroy
	}
	sap, ok1 := find[*message.SecurityAssociation](m)
	kep, ok2 := find[*message.KeyExchange](m)
	nr, ok3 := find[*message.Nonce](m)
	if !ok1 || !ok2 || !ok3 || m.Header.ResponderSPI == 0 {
		sa.log.Info("IKE_SA_INIT response incomplete")
		return errDestroy
	}
	if len(sap.Proposals) != 1 {
		sa.log.Info("responder did not select exactly one proposal")
		return errDestroy
	}
	sel, ok := selectProposal(t.proposals, sap.Proposals)
	chosen := proposalFromWire(sap.Proposals[0])
	if !ok || !isSelected(chosen) || len(sel.proposal.Transforms) != len(chosen.Transforms) {
		sa.log.Info("received invalid proposal selection: " + chosen.String())
		return errDestroy
	}
	suite, err := chosen.IKESuite()
	if err != nil {
		infof(sa.log, "selected proposal unusable: %v", err)
		return errDestroy
	}
	if len(nr.Data) < 16 || len(nr.Data) > 256 || transform.KEID(kep.Group) != suite.KE || suite.KE != t.group {
		sa.log.Info("invalid nonce or key exchange in IKE_SA_INIT response")
		return errDestroy
	}
	if len(chosen.AdditionalKEs()) > 0 && (findNotify(m, message.INTERMEDIATE_EXCHANGE_SUPPORTED) == nil || !intermediateSupported(t.proposals)) {
		// RFC 9370 section 2.2.1: no additional key exchanges without
		// IKE_INTERMEDIATE to run them in.
		sa.log.Info("peer selected additional key exchanges without supporting IKE_INTERMEDIATE: " + chosen.String())
		return errDestroy
	}
	if infoOn(sa.log) {
		sa.log.Info("selected proposal: " + chosen.String())
	}
	sa.spiR = m.Header.ResponderSPI
	sa.proposal, sa.suite = chosen, suite
	sa.nr = append([]byte(nil), nr.Data...)
	gir, err := t.ke.SharedSecret(kep.Data)
	t.ke.Close()
	if err != nil {
		infof(sa.log, "applying DH public value failed: %v", err)
		return errDestroy
	}
	keys, err := transform.NewIKEKeys(suite, sa.ni, sa.nr, gir, sa.spiI, sa.spiR)
	clear(gir)
	if err == nil {
		err = sa.installKeys(keys)
	}
	if err != nil {
		infof(sa.log, "key derivation failed: %v", err)
		return errDestroy
	}
	sa.processNATD(m)
	t.processCapabilities(m)
	t.queueIntermediate()
	if sa.useNATT() || (sa.mobikeEnabled() && sa.remote.Port() == PortIKE && sa.local.Port() == sa.e.cfg.Port) {
		// With MOBIKE, IKE_AUTH goes to the NAT-T port NAT or not (RFC
		// 4555 section 3.3): a NAT that appears later finds the SA there.
		// Custom ports stay, as they do for NAT-T.
		sa.floatToNATT()
	}
	return nil
}

func (t *ikeInit) processRequest(m *message.Message) error {
	sa := t.sa
	sap, ok1 := find[*message.SecurityAssociation](m)
	kep, ok2 := find[*message.KeyExchange](m)
	ni, ok3 := find[*message.Nonce](m)
	if !ok1 || !ok2 || !ok3 {
		t.errorNotify = notify(message.INVALID_SYNTAX, nil)
		return errDestroy
	}
	offered := sap.Proposals
	if findNotify(m, message.INTERMEDIATE_EXCHANGE_SUPPORTED) == nil && intermediateSupported(sa.conn.Proposals) {
		// Additional key exchanges need IKE_INTERMEDIATE (RFC 9370
		// section 2.2.1): from a peer that cannot run it, only what
		// our proposals allow without them (ke1_none) is acceptable.
		offered = withoutAdditionalKEs(sap.Proposals)
	}
	sel, ok := selectProposal(sa.conn.Proposals, offered)
	if !ok {
		sa.log.Info("received proposals: " + transform.FormatProposals(proposalsFromWire(sap.Proposals, message.ProtocolIKE)))
		sa.log.Info("configured proposals: " + transform.FormatProposals(sa.conn.Proposals))
		sa.log.Info("no proposal found")
		t.errorNotify = notify(message.NO_PROPOSAL_CHOSEN, nil)
		return errDestroy
	}
	suite, err := sel.proposal.IKESuite()
	if err != nil {
		t.errorNotify = notify(message.NO_PROPOSAL_CHOSEN, nil)
		return errDestroy
	}
	if infoOn(sa.log) {
		sa.log.Info("selected proposal: " + sel.proposal.String())
	}
	if transform.KEID(kep.Group) != suite.KE {
		infof(sa.log, "DH group %v unacceptable, requesting %v", transform.KEID(kep.Group), suite.KE)
		t.errorNotify = notify(message.INVALID_KE_PAYLOAD, binary.BigEndian.AppendUint16(nil, uint16(suite.KE)))
		return errDestroy
	}
	if len(ni.Data) < 16 || len(ni.Data) > 256 {
		t.errorNotify = notify(message.INVALID_SYNTAX, nil)
		return errDestroy
	}
	sa.processRedirectCapability(m)
	if n := t.redirectOnInit(ni.Data); n != nil {
		t.errorNotify = n
		return errDestroy
	}
	ke, err := transform.NewKeyExchange(suite.KE, sa.e.rand)
	if err != nil {
		t.errorNotify = notify(message.NO_PROPOSAL_CHOSEN, nil)
		return errDestroy
	}
	t.ke = ke
	gir, err := ke.SharedSecret(kep.Data)
	if err != nil {
		infof(sa.log, "applying DH public value failed: %v", err)
		t.errorNotify = notify(message.INVALID_SYNTAX, nil)
		return errDestroy
	}
	t.selected = sel
	sa.proposal, sa.suite = sel.proposal, suite
	sa.ni = append([]byte(nil), ni.Data...)
	sa.nr = sa.e.randomBytes(nonceLen)
	keys, err := transform.NewIKEKeys(suite, sa.ni, sa.nr, gir, sa.spiI, sa.spiR)
	clear(gir)
	if err == nil {
		err = sa.installKeys(keys)
	}
	if err != nil {
		t.errorNotify = notify(message.NO_PROPOSAL_CHOSEN, nil)
		return errDestroy
	}
	sa.processNATD(m)
	t.processCapabilities(m)
	sa.setState(IKESAConnecting)
	return nil
}

func (t *ikeInit) buildResponse(m *message.Message) error {
	sa := t.sa
	if t.errorNotify != nil {
		m.Header.ResponderSPI = 0
		m.Payloads = []message.Payload{t.errorNotify}
		return errDestroy
	}
	defer t.ke.Close()
	m.Payloads = append(m.Payloads,
		&message.SecurityAssociation{Proposals: []message.Proposal{proposalToWire(sa.proposal, t.selected.number, nil)}},
		&message.KeyExchange{Group: uint16(sa.suite.KE), Data: t.ke.PublicValue()},
		&message.Nonce{Data: sa.nr},
	)
	m.Payloads = append(m.Payloads, sa.natdPayloads(sa.spiI, sa.spiR)...)
	m.Payloads = append(m.Payloads, t.capabilities()...)
	if sa.conn.remote.Auth == AuthPubkey && sa.conn.sendCertReq {
		m.Payloads = append(m.Payloads, sa.certRequests()...)
	}
	return nil
}

// queueIntermediate puts an IKE_INTERMEDIATE exchange for each additional
// key exchange of the selected proposal before IKE_AUTH (RFC 9370 section
// 2.2.2), in the order of their transform types.
func (t *ikeInit) queueIntermediate() {
	sa := t.sa
	adds := sa.proposal.AdditionalKEs()
	if len(adds) == 0 || !sa.setup.intermediateOn() {
		return
	}
	tasks := make([]task, 0, len(adds)+len(sa.tm.queued))
	for _, method := range adds {
		tasks = append(tasks, newIKEIntermediate(sa, true, method))
	}
	sa.tm.queued = append(tasks, sa.tm.queued...)
}
