package ike

import (
	"bytes"
	"context"
	"net/netip"

	"github.com/xdpsec/xdpsec/ike/eap"
	"github.com/xdpsec/xdpsec/ike/message"
)

// eapRelay is the responder's EAP with remote.auth = eap-radius: the
// peer's EAP Responses go to Config.EAPBackend and its Requests come back,
// as charon's eap-radius plugin relays them (RFC 3579 section 2.6.2):
//
//	Peer                    xdpsec                       backend
//	-------------------------------------------------------------------
//	IKE_AUTH {IDi, ...} -->
//	                        EAP-Response/Identity  -->   (Access-Request)
//	                                               <--   EAP-Request
//	                <-- IKE_AUTH {IDr, AUTH, EAP-Request}
//	IKE_AUTH {EAP} -->      EAP-Response           -->   ... rounds
//	                                               <--   EAP-Success, MSK
//	                <-- IKE_AUTH {EAP-Success}
//
// With eap_id = %any we ask the identity ourselves first (EAP-Identity)
// and relay the peer's answer; otherwise the first Response/Identity is
// made from the configured eap_id or the peer's IKE identity.
//
// Each round trip runs on a goroutine outside the engine lock; the IKE
// request it answers stays pending in the task manager (errPending), which
// drops the peer's retransmits meanwhile, and the answer comes back under
// the lock through taskManager.resume.
type eapRelay struct {
	conv     EAPConversation // nil until the identity is known
	identity string          // the EAP identity relayed (User-Name)
	lastID   uint8           // Identifier of the last Response relayed
	ctx      context.Context
	cancel   context.CancelFunc
}

// stop abandons a round trip in flight: the IKE SA is going.
func (r *eapRelay) stop() {
	if r.cancel != nil {
		r.cancel()
	}
}

// startRelay begins a relayed EAP conversation for a first IKE_AUTH
// request without AUTH.
func (t *ikeAuth) startRelay(m *message.Message, idi *message.IDi) error {
	sa := t.sa
	relay := &eapRelay{}
	relay.ctx, relay.cancel = context.WithCancel(context.Background())
	t.eap = &eapRound{relay: relay, first: m, idiBytes: idi.IDBytes()}
	sa.eapAuth = t
	if sa.conn.remote.EAPID == "%any" {
		id := sa.e.randomBytes(1)[0]
		req, err := eap.Packet{Code: eap.CodeRequest, Identifier: id, Type: eap.TypeIdentity}.Marshal()
		if err != nil {
			t.authError = true
			return errDestroy
		}
		t.eap.pending = req
		infof(sa.log, "initiating %v method (id 0x%02X)", eap.TypeIdentity, id)
		return nil
	}
	identity := eapIdentity(sa.conn.remote, sa.remoteID)
	resp, err := eap.Packet{Code: eap.CodeResponse, Identifier: 0, Type: eap.TypeIdentity, Data: []byte(identity)}.Marshal()
	if err != nil {
		infof(sa.log, "EAP identity '%s': %v", identity, err)
		t.authError = true
		return errDestroy
	}
	if err := t.openConversation(identity); err != nil {
		return err
	}
	return t.relaySend(resp)
}

// openConversation asks the backend for a conversation for identity.
func (t *ikeAuth) openConversation(identity string) error {
	sa, r := t.sa, t.eap.relay
	if sa.e.cfg.EAPBackend == nil {
		infof(sa.log, "no EAP backend (RADIUS) configured for eap-radius, refusing '%s'", identity)
		sa.e.stats.EAPFailures++
		t.authError = true
		return errDestroy
	}
	conv, err := sa.e.cfg.EAPBackend.NewConversation(EAPPeer{
		Identity: identity, Remote: sa.remote, Local: sa.local,
		IKESAID: sa.id, Connection: sa.conn.Name,
	})
	if err != nil {
		infof(sa.log, "EAP backend: %v", err)
		sa.e.stats.EAPFailures++
		t.authError = true
		return errDestroy
	}
	r.conv, r.identity = conv, identity
	return nil
}

// relayResponse takes the EAP payload of an IKE_AUTH request while the
// relayed conversation runs.
func (t *ikeAuth) relayResponse(msg []byte) error {
	sa, r := t.sa, t.eap.relay
	p, err := eap.Parse(msg)
	if err != nil || p.Code != eap.CodeResponse {
		infof(sa.log, "EAP: expected a Response, got %d bytes that are not one", len(msg))
		sa.e.stats.EAPFailures++
		t.authError = true
		return errDestroy
	}
	if r.conv == nil {
		// Our own EAP-Identity request was answered.
		if p.Type != eap.TypeIdentity || len(p.Data) == 0 {
			infof(sa.log, "EAP: expected an EAP-Identity Response, got %v", p.Type)
			sa.e.stats.EAPFailures++
			t.authError = true
			return errDestroy
		}
		infof(sa.log, "received EAP identity '%s'", p.Data)
		if err := t.openConversation(string(p.Data)); err != nil {
			return err
		}
	}
	return t.relaySend(msg)
}

// relaySend sends one EAP Response to the backend on a goroutine of its
// own; the request that carried it is answered when relayed runs.
func (t *ikeAuth) relaySend(msg []byte) error {
	sa, r := t.sa, t.eap.relay
	msg = bytes.Clone(msg)
	if p, err := eap.Parse(msg); err == nil {
		r.lastID = p.Identifier
	}
	e, conv, ctx := sa.e, r.conv, r.ctx
	go func() {
		reply, err := conv.Exchange(ctx, msg)
		e.mu.Lock()
		defer e.unlock()
		if e.closed || sa.state == IKESADestroying || sa.eapAuth != t {
			clear(reply.MSK)
			return
		}
		defer e.recoverPanic(netip.AddrPort{})
		e.handle(sa)
		sa.tm.resume(t, t.relayed(reply, err))
	}()
	return errPending
}

// relayed takes the backend's answer to a round, under the engine lock,
// and returns what process would have.
func (t *ikeAuth) relayed(reply EAPReply, err error) error {
	sa, r := t.sa, t.eap
	if err != nil {
		infof(sa.log, "EAP backend: %v", err)
		infof(sa.log, "EAP method EAP_RADIUS failed for peer %s: no answer", sa.remoteID)
		sa.e.stats.EAPFailures++
		t.authError = true
		return errDestroy
	}
	switch reply.Outcome {
	case EAPChallenge:
		if p, err := eap.Parse(reply.EAP); err != nil || p.Code != eap.CodeRequest {
			infof(sa.log, "EAP backend %s sent a challenge without an EAP-Request", reply.Server)
			sa.e.stats.EAPFailures++
			t.authError = true
			return errDestroy
		}
		r.pending = reply.EAP
		return nil
	case EAPAccept:
		r.pending = reply.EAP
		if p, err := eap.Parse(reply.EAP); err != nil || p.Code != eap.CodeSuccess {
			// RFC 3579 section 2.6.3 wants EAP-Success in an Accept;
			// the peer waits for one.
			r.pending, _ = eap.Packet{Code: eap.CodeSuccess, Identifier: r.relay.lastID}.Marshal()
		}
		r.msk = reply.MSK
		sa.framedIP = reply.FramedIP
		sa.eapClass, sa.eapInterim = cloneClass(reply.Class), reply.InterimInterval
		r.eapDone = true
		if len(r.msk) > 0 {
			sa.log.Info("EAP method EAP_RADIUS succeeded, MSK established")
		} else {
			sa.log.Info("EAP method EAP_RADIUS succeeded, no MSK established")
		}
		return nil
	}
	clear(reply.MSK)
	r.pending = reply.EAP
	if p, err := eap.Parse(reply.EAP); err != nil || p.Code != eap.CodeFailure {
		r.pending, _ = eap.Packet{Code: eap.CodeFailure, Identifier: r.relay.lastID}.Marshal()
	}
	infof(sa.log, "EAP method EAP_RADIUS failed for peer %s: rejected by %s", sa.remoteID, reply.Server)
	sa.e.stats.EAPFailures++
	r.failed = true
	return errDestroy
}
