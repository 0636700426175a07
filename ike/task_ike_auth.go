package ike

import (
	"github.com/xdpsec/xdpsec/ike/message"
)

// ikeAuth is the IKE_AUTH exchange (RFC 7296 section 1.2) with the first
// CHILD_SA piggybacked:
//
//	Initiator                         Responder
//	-------------------------------------------------------------------
//	HDR, SK {IDi, [CERT,] [CERTREQ,]
//	    [IDr,] AUTH, SAi2,
//	    TSi, TSr}  -->
//	                             <--  HDR, SK {IDr, [CERT,] AUTH,
//	                                      SAr2, TSi, TSr}
type ikeAuth struct {
	sa        *ikeSA
	initiator bool
	child     *childCreate
	authError bool // responder: answer AUTHENTICATION_FAILED

	eap            *eapRound              // responder: EAP runs (task_ike_auth_eap.go)
	peerEAP        *eapPeerRound          // initiator: EAP runs (task_ike_auth_eap_peer.go)
	cpReply        *message.Configuration // responder: CFG_REPLY to send
	addressFailure bool                   // responder: no virtual IP for the peer's CFG_REQUEST
	redirectTo     *message.Gateway       // responder: redirect the authenticated client there
	midSyncSent    bool                   // responder: IKEV2_MESSAGE_ID_SYNC_SUPPORTED is in a response
}

func newIKEAuth(sa *ikeSA, initiator bool, first *childConfig) *ikeAuth {
	t := &ikeAuth{sa: sa, initiator: initiator}
	if first != nil {
		t.child = newChildCreate(sa, true, first, nil)
		t.child.inAuth = true
	}
	return t
}

func (t *ikeAuth) kind() taskKind                 { return taskIKEAuth }
func (t *ikeAuth) exchange() message.ExchangeType { return message.IKE_AUTH }

func (t *ikeAuth) build(m *message.Message) error {
	sa := t.sa
	if t.initiator {
		err := t.buildRequest(m)
		first := m.Header.MessageID == sa.setup.firstAuthMID()
		if err == nil && first && sa.mobikeEnabled() {
			// Only in the first IKE_AUTH request (RFC 4555 section 3.3).
			sa.addMobikeSupported(m)
		}
		if err == nil && first {
			m.Payloads = append(m.Payloads, midSyncSupported())
		}
		return err
	}
	err := t.buildResponse(m)
	if err == nil && sa.state == IKESAEstablished && !t.midSyncSent {
		// In the response that completes IKE_AUTH (RFC 6311 section 3).
		t.midSyncSent = true
		m.Payloads = append(m.Payloads, midSyncSupported())
	}
	if sa.state == IKESAEstablished && sa.peerMobike && sa.mobikeEnabled() && !sa.mobike {
		sa.mobike = true
		sa.addMobikeSupported(m)
	}
	return err
}

func (t *ikeAuth) process(m *message.Message) error {
	t.sa.processMobikeAuth(m)
	t.sa.processMIDSyncSupported(m)
	if t.initiator {
		return t.processResponse(m)
	}
	return t.processRequest(m)
}

func (sa *ikeSA) effectiveLocalID() Identity {
	if sa.localID.IsAny() {
		return addrIdentity(sa.local.Addr())
	}
	return sa.localID
}

func (t *ikeAuth) buildRequest(m *message.Message) error {
	sa := t.sa
	if t.peerEAP != nil {
		return t.buildEAPRequest(m)
	}
	sa.localID = sa.effectiveLocalID()
	sa.remoteID = sa.conn.remote.ID
	idi := &message.IDi{Identification: sa.localID.payload()}
	if sa.conn.local.Auth == AuthEAP {
		return t.startEAPPeer(m, idi)
	}
	auth, certs, err := sa.buildAuth(sa.localID, idi.IDBytes())
	if err != nil {
		infof(sa.log, "generating AUTH payload failed: %v", err)
		return errDestroy
	}
	m.Payloads = append(m.Payloads, idi)
	m.Payloads = append(m.Payloads, certs...)
	sa.appendRequestHints(m)
	m.Payloads = append(m.Payloads, auth)
	if cp := sa.configRequestPayload(); cp != nil {
		m.Payloads = append(m.Payloads, cp)
	}
	if t.child != nil {
		if err := t.child.buildRequest(m); err != nil {
			t.child = nil
		}
	}
	return nil
}

// appendRequestHints adds what an initiator's first IKE_AUTH request
// carries beside its identity and authentication: CERTREQs when the peer
// signs, the identity we want the peer to have (IDr), and INITIAL_CONTACT
// when we have no other IKE SA with it.
func (sa *ikeSA) appendRequestHints(m *message.Message) {
	if sa.conn.remote.Auth == AuthPubkey && sa.conn.sendCertReq {
		m.Payloads = append(m.Payloads, sa.certRequests()...)
	}
	if !sa.remoteID.IsAny() {
		m.Payloads = append(m.Payloads, &message.IDr{Identification: sa.remoteID.payload()})
	}
	if sa.sendInitialContact(sa.localID) {
		m.Payloads = append(m.Payloads, notify(message.INITIAL_CONTACT, nil))
	}
}

func (t *ikeAuth) processResponse(m *message.Message) error {
	sa := t.sa
	if t.peerEAP != nil {
		return t.processEAPResponse(m)
	}
	idr, ok1 := find[*message.IDr](m)
	auth, ok2 := find[*message.Authentication](m)
	var redirectTo *message.Gateway
	if n := findNotify(m, message.REDIRECT); n != nil {
		if r, err := message.UnmarshalRedirect(n.Data); err != nil || len(r.Nonce) > 0 {
			sa.log.Info("received invalid REDIRECT notify")
		} else {
			redirectTo = &r.Gateway
		}
	}
	if (!ok1 || !ok2) && redirectTo != nil {
		// Redirected before the gateway authenticated itself (RFC 5685
		// section 5): start over with the new one.
		var first *childConfig
		if t.child != nil {
			first = t.child.cfg
		}
		t.abortChild()
		sa.redirectConnecting(*redirectTo, first)
		return errDestroy
	}
	if !ok1 || !ok2 {
		if nt, ok := notifyErr(m); ok {
			infof(sa.log, "received %v notify error", nt)
		} else {
			sa.log.Info("IDr or AUTH payload missing")
		}
		t.abortChild()
		return errDestroy
	}
	peer := Identity{Type: idr.IDType, Data: idr.Data}
	if !sa.conn.remote.ID.Matches(peer) {
		infof(sa.log, "received IDr '%s' does not match configured '%s'", peer, sa.conn.remote.ID)
		return t.rejectResponder()
	}
	if err := sa.verifyAuth(sa.conn.remote, peer, idr.IDBytes(), auth, findAll[*message.Certificate](m)); err != nil {
		sa.log.Info(err.Error())
		return t.rejectResponder()
	}
	sa.remoteID = peer
	sa.configReply(m)
	sa.established()
	sa.logEstablished()
	if redirectTo != nil {
		// Authenticated, and sent elsewhere (RFC 5685 section 5): no
		// CHILD_SA here, the one asked for goes to the new gateway.
		var children []*childConfig
		if t.child != nil {
			children = []*childConfig{t.child.cfg}
		}
		t.abortChild()
		sa.redirectEstablished(*redirectTo, children)
		return nil
	}
	if t.child != nil {
		return t.child.processResponse(m)
	}
	return nil
}

// rejectResponder handles a responder we do not accept: it considers the
// IKE SA established, so we tell it in an INFORMATIONAL exchange (RFC 7296
// section 2.21.2) before the IKE SA goes.
func (t *ikeAuth) rejectResponder() error {
	t.abortChild()
	t.sa.tm.queued = []task{&authFailed{sa: t.sa}}
	return nil
}

func (t *ikeAuth) abortChild() {
	if t.child != nil {
		t.child.abort()
	}
}

func (t *ikeAuth) failed() {
	t.abortChild()
	if t.peerEAP != nil {
		t.peerEAP.wipe()
	}
}

func (sa *ikeSA) logEstablished() {
	if infoOn(sa.log) {
		infof(sa.log, "IKE_SA %s established between %s", sa.name(), sa.ends())
	}
}

func (t *ikeAuth) processRequest(m *message.Message) error {
	sa := t.sa
	if t.eap != nil {
		return t.processEAP(m)
	}
	idi, ok1 := find[*message.IDi](m)
	auth, ok2 := find[*message.Authentication](m)
	var peer, wanted Identity
	if ok1 {
		peer = Identity{Type: idi.IDType, Data: idi.Data}
	}
	if idr, ok := find[*message.IDr](m); ok {
		wanted = Identity{Type: idr.IDType, Data: idr.Data}
	}
	if ok1 && !ok2 {
		// No AUTH: the initiator wants to authenticate with EAP.
		if c := sa.e.peerConfigFor(sa, peer, wanted, true); c != nil {
			return t.startEAP(m, c, peer, idi)
		}
	}
	if !ok1 || !ok2 {
		sa.log.Info("IDi or AUTH payload missing")
		t.authError = true
		return errDestroy
	}
	c := sa.e.peerConfigFor(sa, peer, wanted, false)
	if c == nil {
		infof(sa.log, "looking for peer configs matching %s[%s]...%s[%s]", sa.local.Addr(), wanted, sa.remote.Addr(), peer)
		sa.log.Info("no matching peer config found")
		t.authError = true
		return errDestroy
	}
	sa.conn = c
	sa.log = sa.e.log.With("ike_sa", sa.name())
	sa.localID = sa.effectiveLocalID()
	sa.remoteID = peer
	if err := sa.verifyAuth(c.remote, peer, idi.IDBytes(), auth, findAll[*message.Certificate](m)); err != nil {
		sa.log.Info(err.Error())
		t.authError = true
		return errDestroy
	}
	if _, ok := find[*message.CertificateRequest](m); ok {
		sa.peerCertReq = true
	}
	if sa.checkUniqueness(sa, findNotify(m, message.INITIAL_CONTACT) != nil) {
		sa.log.Info("canceling IKE_SA setup due to uniqueness policy")
		t.authError = true
		return errDestroy
	}
	if gw, ok := sa.redirectOnAuth(); ok {
		sa.established()
		sa.logEstablished()
		t.redirectTo = &gw // no CHILD_SA nor virtual IP: the client goes there
		return nil
	}
	failure := t.configRequest(m)
	sa.established()
	sa.logEstablished()
	if failure {
		return nil // no CHILD_SA without its virtual IP
	}
	t.child = newChildCreate(sa, false, nil, nil)
	t.child.inAuth = true
	return t.child.processRequest(m)
}

func (t *ikeAuth) buildResponse(m *message.Message) error {
	sa := t.sa
	if t.eap != nil {
		return t.buildEAP(m)
	}
	if t.authError {
		m.Payloads = append(m.Payloads, notify(message.AUTHENTICATION_FAILED, nil))
		return errDestroy
	}
	idr := &message.IDr{Identification: sa.localID.payload()}
	auth, certs, err := sa.buildAuth(sa.localID, idr.IDBytes())
	if err != nil {
		infof(sa.log, "generating AUTH payload failed: %v", err)
		t.abortChild()
		m.Payloads = []message.Payload{notify(message.AUTHENTICATION_FAILED, nil)}
		return errDestroy
	}
	m.Payloads = append(m.Payloads, idr)
	m.Payloads = append(m.Payloads, certs...)
	m.Payloads = append(m.Payloads, auth)
	if t.redirectTo != nil {
		if n := sa.redirectNotify(*t.redirectTo); n != nil {
			m.Payloads = append(m.Payloads, n)
			sa.e.stats.RedirectsSent++
			sa.armRedirectDelete()
		}
		return nil
	}
	return t.buildAuthTail(m)
}

// buildAuthTail ends a responder's last IKE_AUTH response after its
// AUTH: the CFG_REPLY, then the CHILD_SA, or INTERNAL_ADDRESS_FAILURE in
// its place when the peer's CFG_REQUEST got no address.
func (t *ikeAuth) buildAuthTail(m *message.Message) error {
	if t.cpReply != nil {
		m.Payloads = append(m.Payloads, t.cpReply)
	}
	if t.child == nil {
		if t.addressFailure {
			m.Payloads = append(m.Payloads, notify(message.INTERNAL_ADDRESS_FAILURE, nil))
		}
		return nil
	}
	return t.child.buildResponse(m)
}

// peerConfigFor picks the connection for an IKE_AUTH request (charon's
// peer config lookup): addresses allowed, remote identity matching IDi, our
// identity matching IDr if the peer sent one, and the IKE proposal already
// negotiated among its proposals. The connection of IKE_SA_INIT is
// preferred.
//
// With eap, the request carried no AUTH: only connections whose remote
// round is EAP fit, and those fit no request with AUTH.
func (e *Engine) peerConfigFor(sa *ikeSA, peer, wanted Identity, eap bool) *connection {
	fits := func(c *connection) bool {
		if c.remote.Auth.isEAP() != eap {
			return false
		}
		if !addrAllowed(c.LocalAddrs, sa.local.Addr()) || !addrAllowed(c.RemoteAddrs, sa.remote.Addr()) {
			return false
		}
		if !c.remote.ID.Matches(peer) {
			return false
		}
		local := c.local.ID
		if local.IsAny() {
			local = addrIdentity(sa.local.Addr())
		}
		if !wanted.IsAny() && !wanted.Equal(local) {
			return false
		}
		_, ok := selectProposal(c.Proposals, []message.Proposal{proposalToWire(sa.proposal, 1, nil)})
		return ok
	}
	if fits(sa.conn) {
		return sa.conn
	}
	for _, c := range e.conns {
		if fits(c) {
			return c
		}
	}
	return nil
}

// authFailed is HDR, SK {N(AUTHENTICATION_FAILED)} --> <-- HDR, SK {},
// after which the IKE SA is destroyed.
type authFailed struct{ sa *ikeSA }

func (t *authFailed) kind() taskKind                 { return taskInformational }
func (t *authFailed) exchange() message.ExchangeType { return message.INFORMATIONAL }
func (t *authFailed) build(m *message.Message) error {
	m.Payloads = append(m.Payloads, notify(message.AUTHENTICATION_FAILED, nil))
	return nil
}
func (t *authFailed) process(m *message.Message) error { return errDestroy }
