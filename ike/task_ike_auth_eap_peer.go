package ike

import (
	"slices"

	"github.com/xdpsec/xdpsec/ike/eap"
	"github.com/xdpsec/xdpsec/ike/message"
	"github.com/xdpsec/xdpsec/ike/transform"
)

// eapPeerRound is the initiator's side of IKE_AUTH with EAP (the flow is
// drawn at eapRound): our first request carries no AUTH, the responder's
// first response authenticates it and starts EAP, and each response until
// EAP-Success is answered with another IKE_AUTH request from the same
// task, queued again in front; then our AUTH over the MSK, and the
// responder's AUTH, CP and CHILD_SA in the last response.
type eapPeerRound struct {
	peer     *eap.Peer
	identity string
	idiBytes []byte // IDi as we sent it, for our AUTH
	idrBytes []byte // IDr as the responder sent it, for its AUTH
	next     []byte // the EAP Response the next request carries
	msk      []byte
	verified bool // the responder's certificate AUTH is verified
	authSent bool // EAP succeeded and our AUTH is sent
}

func (r *eapPeerRound) wipe() {
	clear(r.msk)
	r.msk = nil
	r.peer.Abort()
}

func (r *eapPeerRound) secret(skp []byte) []byte {
	if len(r.msk) > 0 {
		return r.msk
	}
	return skp
}

// startEAPPeer builds the first request of an IKE_AUTH with EAP.
func (t *ikeAuth) startEAPPeer(m *message.Message, idi *message.IDi) error {
	sa := t.sa
	identity := sa.conn.local.EAPID
	if identity == "" {
		identity = sa.localID.String()
	}
	methods := sa.conn.local.EAPMethods
	secret, err := sa.e.eapSecret(identity)
	if err != nil {
		// EAP-TLS needs no password: without one, it is the only method.
		if !slices.Contains(methods, eap.TypeTLS) {
			infof(sa.log, "no EAP key found for '%s'", identity)
			t.abortChild()
			return errDestroy
		}
		methods = []eap.Type{eap.TypeTLS}
	}
	peer, err := eap.NewPeer(eap.PeerConfig{Identity: identity, Secret: secret, Methods: methods, Rand: sa.e.rand,
		NewMethod: sa.newEAPPeerMethod})
	secret.Wipe()
	if err != nil {
		infof(sa.log, "EAP peer: %v", err)
		t.abortChild()
		return errDestroy
	}
	t.peerEAP = &eapPeerRound{peer: peer, identity: identity, idiBytes: idi.IDBytes()}
	m.Payloads = append(m.Payloads, idi)
	sa.appendRequestHints(m)
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

// newEAPPeerMethod makes EAP-TLS's peer side when the server starts it:
// our round's certificate and key, the server's certificate checked
// against the remote round's CAs and the identity it authenticated with
// in IKE (verified before any EAP message is taken).
func (sa *ikeSA) newEAPPeerMethod(t eap.Type) eap.PeerMethod {
	if t != eap.TypeTLS {
		return nil
	}
	m, err := eap.NewTLSPeer(sa.tlsConfig(sa.conn.local, sa.remoteID.String()))
	if err != nil {
		infof(sa.log, "EAP-TLS peer: %v", err)
		return nil
	}
	return m
}

// buildEAPRequest builds the IKE_AUTH requests after the first.
func (t *ikeAuth) buildEAPRequest(m *message.Message) error {
	sa, r := t.sa, t.peerEAP
	if r.next != nil {
		m.Payloads = append(m.Payloads, &message.EAP{Message: r.next})
		r.next = nil
		return nil
	}
	octets, err := sa.signedOctets(true, r.idiBytes)
	var data []byte
	if err == nil {
		data, err = transform.PSKAuth(sa.suite.PRF, r.secret(sa.keys.PI), octets)
	}
	if err != nil {
		infof(sa.log, "generating AUTH payload failed: %v", err)
		t.abortChild()
		return errDestroy
	}
	infof(sa.log, "authentication of '%s' (myself) with EAP", sa.localID)
	r.authSent = true
	m.Payloads = append(m.Payloads, &message.Authentication{Method: message.AuthSharedKeyMIC, Data: data})
	return nil
}

// again queues the task in front, for the next IKE_AUTH request.
func (t *ikeAuth) again() {
	t.sa.tm.queued = append([]task{t}, t.sa.tm.queued...)
}

// processEAPResponse takes the responses of an IKE_AUTH with EAP.
func (t *ikeAuth) processEAPResponse(m *message.Message) error {
	sa, r := t.sa, t.peerEAP
	fail := func() error {
		r.wipe()
		t.abortChild()
		return errDestroy
	}
	if nt, ok := notifyErr(m); ok && (!r.authSent || nt == message.AUTHENTICATION_FAILED) {
		infof(sa.log, "received %v notify error", nt)
		return fail()
	}
	if !r.verified {
		idr, ok1 := find[*message.IDr](m)
		auth, ok2 := find[*message.Authentication](m)
		if !ok1 || !ok2 {
			sa.log.Info("IDr or AUTH payload missing")
			return fail()
		}
		peer := Identity{Type: idr.IDType, Data: idr.Data}
		if !sa.conn.remote.ID.Matches(peer) {
			infof(sa.log, "received IDr '%s' does not match configured '%s'", peer, sa.conn.remote.ID)
			return fail()
		}
		if err := sa.verifyAuth(sa.conn.remote, peer, idr.IDBytes(), auth, findAll[*message.Certificate](m)); err != nil {
			sa.log.Info(err.Error())
			return fail()
		}
		sa.remoteID = peer
		r.idrBytes = idr.IDBytes()
		r.verified = true
	}
	if !r.authSent {
		p, ok := find[*message.EAP](m)
		if !ok {
			sa.log.Info("EAP payload missing")
			return fail()
		}
		out, err := r.peer.Process(p.Message)
		if err != nil {
			infof(sa.log, "EAP: %v", err)
			return fail()
		}
		if r.peer.Done() {
			res := r.peer.Result()
			if res.Err != nil {
				infof(sa.log, "EAP authentication failed: %v", res.Err)
				return fail()
			}
			r.msk = res.MSK
			if res.Detail != "" {
				sa.log.Info(res.Detail)
			}
			if len(r.msk) > 0 {
				infof(sa.log, "EAP method %v succeeded, MSK established", res.Method)
			} else {
				infof(sa.log, "EAP method %v succeeded, no MSK established", res.Method)
			}
			t.again()
			return nil
		}
		if out == nil {
			sa.log.Info("EAP conversation stalled")
			return fail()
		}
		r.next = out
		t.again()
		return nil
	}
	auth, ok := find[*message.Authentication](m)
	if !ok {
		sa.log.Info("AUTH payload missing")
		return fail()
	}
	octets, err := sa.signedOctets(false, r.idrBytes)
	if err == nil {
		err = errAuth
		if auth.Method == message.AuthSharedKeyMIC {
			err = transform.VerifyPSKAuth(sa.suite.PRF, r.secret(sa.keys.PR), octets, auth.Data)
		}
	}
	r.wipe()
	if err != nil {
		sa.log.Info("verification of AUTH payload with EAP MSK failed")
		return t.rejectResponder()
	}
	infof(sa.log, "authentication of '%s' with EAP successful", sa.remoteID)
	sa.eapIdentity = r.identity
	sa.configReply(m)
	sa.established()
	sa.logEstablished()
	if t.child != nil {
		return t.child.processResponse(m)
	}
	return nil
}
