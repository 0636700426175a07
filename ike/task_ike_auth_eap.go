package ike

import (
	"crypto/x509"
	"errors"

	"github.com/xdpsec/xdpsec/ike/eap"
	"github.com/xdpsec/xdpsec/ike/message"
	"github.com/xdpsec/xdpsec/ike/transform"
)

// eapRound is the responder's side of IKE_AUTH with EAP (RFC 7296
// section 2.16): the initiator leaves AUTH out of its first request, we
// authenticate with our certificate and start EAP, and the exchange goes
// on until EAP ends; then both AUTH payloads are computed over the MSK (or
// SK_pi/SK_pr for a method that derives none) and only then is the
// CHILD_SA of the first request made:
//
//	Initiator                         Responder
//	-------------------------------------------------------------------
//	HDR, SK {IDi, [CERTREQ,] [IDr,]
//	    SAi2, TSi, TSr, [CP(CFG_REQUEST)]}  -->
//	                             <--  HDR, SK {IDr, [CERT,] AUTH, EAP}
//	HDR, SK {EAP}  -->
//	                             <--  HDR, SK {EAP (Request)}    ... rounds
//	HDR, SK {EAP}  -->
//	                             <--  HDR, SK {EAP (Success)}
//	HDR, SK {AUTH}  -->
//	                             <--  HDR, SK {AUTH, [CP(CFG_REPLY),]
//	                                      SAr2, TSi, TSr}
//
// The ikeAuth task that starts it stays the IKE SA's responder task for
// the IKE_AUTH requests that follow (ikeSA.eapAuth).
type eapRound struct {
	server   *eap.Server      // nil when relaying (relay)
	relay    *eapRelay        // eap-radius: the backend's conversation (eap_relay.go)
	first    *message.Message // the first request: SA, TSi, TSr and CP, for after EAP
	idiBytes []byte           // IDi as the first request carried it, for the peer's AUTH
	idrBytes []byte           // IDr as we sent it, for ours
	pending  []byte           // the EAP message the next response carries
	msk      []byte
	sentIDr  bool // the first response (IDr, CERT, AUTH, EAP) is built
	failed   bool // EAP failed: the response carries EAP-Failure and AUTHENTICATION_FAILED
	eapDone  bool // EAP succeeded: the peer's AUTH comes next
	authed   bool // the peer's AUTH is verified: the last response follows
}

func (r *eapRound) wipe() {
	clear(r.msk)
	r.msk = nil
	if r.server != nil {
		r.server.Abort()
	}
	if r.relay != nil {
		r.relay.stop()
	}
}

// eapIdentity is the identity the EAP server starts with: the configured
// eap_id, the peer's IKE identity when none is set, or none ("%any"), when
// the server asks with EAP-Identity.
func eapIdentity(r AuthConfig, peer Identity) string {
	switch r.EAPID {
	case "":
		return peer.String()
	case "%any":
		return ""
	}
	return r.EAPID
}

// startEAP begins EAP for a first IKE_AUTH request without AUTH.
func (t *ikeAuth) startEAP(m *message.Message, c *connection, peer Identity, idi *message.IDi) error {
	sa := t.sa
	sa.conn = c
	sa.log = sa.e.log.With("ike_sa", sa.name())
	sa.localID = sa.effectiveLocalID()
	sa.remoteID = peer
	if _, ok := find[*message.CertificateRequest](m); ok {
		sa.peerCertReq = true
	}
	if c.remote.Auth == AuthEAPRadius {
		return t.startRelay(m, idi)
	}
	srv, err := eap.NewServer(eap.ServerConfig{
		Methods:     c.remote.EAPMethods,
		Identity:    eapIdentity(c.remote, peer),
		Credentials: eap.CredentialsFunc(sa.e.eapSecret),
		Rand:        sa.e.rand,
		NewMethod:   sa.newEAPServerMethod,
	})
	if err != nil {
		infof(sa.log, "EAP server: %v", err)
		t.authError = true
		return errDestroy
	}
	first, err := srv.Start()
	if err != nil {
		infof(sa.log, "EAP server: %v", err)
		t.authError = true
		return errDestroy
	}
	t.eap = &eapRound{server: srv, first: m, idiBytes: idi.IDBytes(), pending: first}
	sa.eapAuth = t
	if p, err := eap.Parse(first); err == nil && p.Code == eap.CodeRequest {
		infof(sa.log, "initiating %v method (id 0x%02X)", p.Type, p.Identifier)
	}
	return t.eapOutcome()
}

// eapOutcome looks at the server after a message: failure is logged as
// charon does and answered with EAP-Failure; success waits for AUTH.
func (t *ikeAuth) eapOutcome() error {
	sa, r := t.sa, t.eap
	if !r.server.Done() {
		return nil
	}
	res := r.server.Result()
	if res.Err != nil {
		var e *eap.Error
		if errors.As(res.Err, &e) {
			sa.log.Info(e.LogLine(sa.remoteID.String()))
		} else {
			infof(sa.log, "EAP method %v failed for peer %s: %v", res.Method, sa.remoteID, res.Err)
		}
		sa.e.stats.EAPFailures++
		r.failed = true
		return errDestroy
	}
	r.msk = res.MSK
	r.eapDone = true
	if res.Detail != "" {
		sa.log.Info(res.Detail)
	}
	if len(r.msk) > 0 {
		infof(sa.log, "EAP method %v succeeded, MSK established", res.Method)
	} else {
		infof(sa.log, "EAP method %v succeeded, no MSK established", res.Method)
	}
	return nil
}

// processEAP takes the IKE_AUTH requests after the first: EAP Responses,
// then the peer's AUTH.
func (t *ikeAuth) processEAP(m *message.Message) error {
	sa, r := t.sa, t.eap
	if !r.eapDone {
		p, ok := find[*message.EAP](m)
		if !ok {
			sa.log.Info("EAP payload missing")
			sa.e.stats.EAPFailures++
			t.authError = true
			return errDestroy
		}
		if r.relay != nil {
			return t.relayResponse(p.Message)
		}
		out, err := r.server.Process(p.Message)
		if err != nil {
			infof(sa.log, "EAP: %v", err)
			t.authError = true
			return errDestroy
		}
		r.pending = out
		return t.eapOutcome()
	}
	auth, ok := find[*message.Authentication](m)
	if !ok {
		sa.log.Info("AUTH payload missing")
		t.authError = true
		return errDestroy
	}
	octets, err := sa.signedOctets(true, r.idiBytes)
	if err == nil {
		err = errAuth
		if auth.Method == message.AuthSharedKeyMIC {
			err = transform.VerifyPSKAuth(sa.suite.PRF, r.secret(sa.keys.PI), octets, auth.Data)
		}
	}
	if err != nil {
		if len(r.msk) > 0 {
			sa.log.Info("verification of AUTH payload with EAP MSK failed")
		} else {
			sa.log.Info("verification of AUTH payload without EAP MSK failed")
		}
		sa.e.stats.EAPFailures++
		t.authError = true
		return errDestroy
	}
	infof(sa.log, "authentication of '%s' with EAP successful", sa.remoteID)
	r.authed = true
	// The identity the method authenticated (MS-CHAPv2's Name may differ
	// from what EAP-Identity said): leases are bound to it, so that no one
	// is given another user's address.
	if r.relay != nil {
		sa.eapIdentity = r.relay.identity
	} else {
		sa.eapIdentity = r.server.Result().Identity
		if sa.eapIdentity == "" {
			sa.eapIdentity = r.server.Identity()
		}
	}
	sa.eapAuth = nil
	if sa.checkUniqueness(sa, findNotify(r.first, message.INITIAL_CONTACT) != nil) {
		sa.log.Info("canceling IKE_SA setup due to uniqueness policy")
		t.authError = true
		return errDestroy
	}
	failure := t.configRequest(r.first)
	sa.established()
	sa.logEstablished()
	if failure {
		return nil // no CHILD_SA without its virtual IP
	}
	t.child = newChildCreate(sa, false, nil, nil)
	t.child.inAuth = true
	return t.child.processRequest(r.first)
}

// secret is what the AUTH payloads are computed with: the MSK, or SK_p
// of the side whose AUTH it is when the method derives no MSK (charon
// does the same).
func (r *eapRound) secret(skp []byte) []byte {
	if len(r.msk) > 0 {
		return r.msk
	}
	return skp
}

// buildEAP builds the responses of an IKE_AUTH exchange with EAP.
func (t *ikeAuth) buildEAP(m *message.Message) error {
	sa, r := t.sa, t.eap
	if t.authError {
		r.wipe()
		m.Payloads = append(m.Payloads, notify(message.AUTHENTICATION_FAILED, nil))
		return errDestroy
	}
	if !r.sentIDr {
		r.sentIDr = true
		idr := &message.IDr{Identification: sa.localID.payload()}
		r.idrBytes = idr.IDBytes()
		auth, certs, err := sa.buildAuth(sa.localID, r.idrBytes)
		if err != nil {
			infof(sa.log, "generating AUTH payload failed: %v", err)
			m.Payloads = []message.Payload{notify(message.AUTHENTICATION_FAILED, nil)}
			return errDestroy
		}
		m.Payloads = append(m.Payloads, idr)
		m.Payloads = append(m.Payloads, certs...)
		m.Payloads = append(m.Payloads, auth)
	}
	if r.failed {
		// EAP-Failure tells an EAP peer the method's outcome; the notify is
		// what every IKEv2 client acts on (RFC 7296 section 2.21.2).
		m.Payloads = append(m.Payloads, &message.EAP{Message: r.pending}, notify(message.AUTHENTICATION_FAILED, nil))
		return errDestroy
	}
	if !r.authed {
		m.Payloads = append(m.Payloads, &message.EAP{Message: r.pending})
		return nil
	}
	octets, err := sa.signedOctets(false, r.idrBytes)
	var data []byte
	if err == nil {
		data, err = transform.PSKAuth(sa.suite.PRF, r.secret(sa.keys.PR), octets)
	}
	r.wipe()
	if err != nil {
		infof(sa.log, "generating AUTH payload failed: %v", err)
		t.abortChild()
		m.Payloads = []message.Payload{notify(message.AUTHENTICATION_FAILED, nil)}
		return errDestroy
	}
	infof(sa.log, "authentication of '%s' (myself) with EAP", sa.localID)
	m.Payloads = append(m.Payloads, &message.Authentication{Method: message.AuthSharedKeyMIC, Data: data})
	return t.buildAuthTail(m)
}

// newEAPServerMethod makes the methods the eap package leaves to us:
// EAP-TLS, with our IKE certificate and key, checking the client's
// certificate against the remote round's CAs and the EAP identity.
func (sa *ikeSA) newEAPServerMethod(t eap.Type, identity string) eap.ServerMethod {
	if t != eap.TypeTLS {
		return nil
	}
	m, err := eap.NewTLSServer(sa.tlsConfig(sa.conn.local, identity))
	if err != nil {
		infof(sa.log, "EAP-TLS server: %v", err)
		return nil
	}
	return m
}

// tlsConfig is EAP-TLS's configuration for our round own (certificate and
// key) and the other side's identity, checked against the remote round's
// trust anchors.
func (sa *ikeSA) tlsConfig(own AuthConfig, identity string) eap.TLSConfig {
	return eap.TLSConfig{
		Chain:         own.Certs,
		Key:           own.PrivateKey,
		CAs:           sa.trustedCAs(sa.conn.remote),
		Identity:      identity,
		MatchIdentity: certHasEAPIdentity,
		Now:           sa.e.clock.Now,
		Rand:          sa.e.rand,
	}
}

// certHasEAPIdentity reads an EAP identity as strongSwan reads one (an
// email address, a DN, an FQDN, an address) and checks that the
// certificate is issued to it: its subject or a subjectAltName.
func certHasEAPIdentity(c *x509.Certificate, identity string) bool {
	id, err := ParseIdentity(identity)
	if err != nil || id.IsAny() {
		return false
	}
	return certHasIdentity(c, id)
}
