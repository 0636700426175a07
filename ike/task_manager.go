package ike

import (
	"bytes"
	"errors"
	"net/netip"

	"github.com/xdpsec/xdpsec/ike/message"
	"github.com/xdpsec/xdpsec/ike/transform"
)

// taskManager runs the exchanges of one IKE SA, after charon's
// task_manager_v2: it owns the message IDs of both directions (window size
// 1), retransmits our request until its response arrives (RFC 7296 section
// 2.1), caches our last response for retransmitted requests, and queues
// the tasks waiting for their exchange.
type taskManager struct {
	sa *ikeSA

	// Our requests.
	queued  []task
	active  task     // the task whose request is in flight
	nextID  uint32   // message ID of our next (or in-flight) request
	request [][]byte // its datagrams, for retransmission
	// requestMsg is the request in flight before encoding: a message ID
	// synchronisation renumbers it (mid_sync.go).
	requestMsg *message.Message
	tries      int   // retransmits sent
	timer      Timer // retransmission
	giveUp     Timer // dpd_timeout
	// probing sends the request in flight over every path (MOBIKE path
	// probing, mobike.go) since its retransmits on the IKE SA's path
	// were used up.
	probing bool

	// The peer's requests.
	expectID uint32   // next message ID we accept
	response [][]byte // our response to expectID-1
	// pending is the task whose response to request expectID waits for
	// work outside the engine lock (errPending); pendingHdr is that
	// request's header. Retransmits of the request meanwhile are dropped:
	// the work is not started twice.
	pending    task
	pendingHdr message.Header
	// reqLocal and reqRemote are the path the peer's last request came
	// on (reqFrom): a MOBIKE SA answers there (RFC 4555 section 3.5),
	// wherever the SA is.
	reqLocal, reqRemote netip.AddrPort
}

func newTaskManager(sa *ikeSA) *taskManager { return &taskManager{sa: sa} }

// reqFrom is the path of the peer's last request, without its octets
// (which idle IKE SAs would keep).
func (tm *taskManager) reqFrom() Datagram { return Datagram{Local: tm.reqLocal, Remote: tm.reqRemote} }

func (tm *taskManager) queue(t task) { tm.queued = append(tm.queued, t) }

func (tm *taskManager) hasTask(k taskKind) bool {
	if tm.active != nil && tm.active.kind() == k {
		return true
	}
	for _, t := range tm.queued {
		if t.kind() == k {
			return true
		}
	}
	return false
}

// busy reports whether a request of ours is in flight.
func (tm *taskManager) busy() bool { return tm.active != nil }

// initiate sends the next queued request if none is in flight. Tasks
// other than IKE_SA_INIT and IKE_AUTH wait for the SA to be established.
func (tm *taskManager) initiate() {
	sa := tm.sa
	for tm.active == nil && len(tm.queued) > 0 && sa.state != IKESADestroying {
		t := tm.queued[0]
		if _, ok := t.(*authFailed); !ok && sa.state < IKESAEstablished && t.kind() != taskIKEInit && t.kind() != taskIKEAuth && t.kind() != taskIKEIntermediate {
			return
		}
		if sa.state == IKESADeleting && t.kind() != taskIKEDelete {
			tm.queued = tm.queued[1:]
			continue
		}
		tm.queued = tm.queued[1:]
		if l, ok := t.(localTask); ok {
			l.run()
			continue
		}
		tm.active = t
		tm.sendRequest()
	}
}

// sendRequest builds and sends the active task's request.
func (tm *taskManager) sendRequest() {
	sa, t := tm.sa, tm.active
	m := &message.Message{Header: message.Header{
		InitiatorSPI: sa.spiI, ResponderSPI: sa.spiR,
		ExchangeType: t.exchange(), MessageID: tm.activeID(),
	}}
	if sa.initiator {
		m.Header.Flags = message.FlagInitiator
	}
	if err := t.build(m); err != nil {
		tm.active = nil
		if errors.Is(err, errDestroy) {
			sa.destroy()
		} else {
			infof(sa.log, "%v: %v", t.exchange(), err)
		}
		return
	}
	packets, err := tm.encode(m)
	if err != nil {
		tm.active = nil
		infof(sa.log, "generating %v request failed: %v", t.exchange(), err)
		if t.kind() == taskIKEInit || t.kind() == taskIKEAuth {
			sa.destroy()
		}
		return
	}
	if m.Header.ExchangeType == message.IKE_SA_INIT {
		sa.setupState().initReq = packets[0]
	}
	tm.request = packets
	tm.requestMsg = m
	tm.tries = 0
	tm.probing = false
	tm.sendActive()
	tm.armRetransmit()
	if t.kind() == taskDPD && sa.conn.DPDTimeout > 0 {
		tm.giveUp = sa.e.afterFunc(sa.conn.DPDTimeout, func() {
			if tm.active == t {
				tm.fail()
			}
		})
	}
}

// encode marshals a message, encrypting and fragmenting as the SA allows,
// and logs it as charon does.
func (tm *taskManager) encode(m *message.Message) ([][]byte, error) {
	sa := tm.sa
	if infoOn(sa.log) {
		sa.log.Info("generating " + summarize(m))
	}
	sa.e.countMessage(sa.conn.Name, m.Header, false)
	if m.Header.ExchangeType == message.IKE_SA_INIT {
		b, err := m.Marshal()
		return [][]byte{b}, err
	}
	out := sa.protOut()
	if out == nil {
		return nil, errors.New("no keys")
	}
	b, err := m.MarshalEncrypted(out)
	if err != nil {
		return nil, err
	}
	if max := sa.fragmentLen(); sa.peerFrag && sa.conn.fragmentation && len(b) > max {
		frags, err := m.MarshalFragments(out, max)
		if err != nil {
			return nil, err
		}
		infof(sa.log, "splitting IKE message (%d bytes) into %d fragments", len(b), len(frags))
		for i := range frags {
			infof(sa.log, "generating %v %s %d [ EF(%d/%d) ]", m.Header.ExchangeType, reqOrResp(&m.Header), m.Header.MessageID, i+1, len(frags))
		}
		return frags, nil
	}
	return [][]byte{b}, nil
}

func (tm *taskManager) armRetransmit() {
	if tm.timer != nil {
		tm.timer.Stop()
	}
	t := tm.active
	tm.timer = tm.sa.e.afterFunc(tm.sa.e.retransmitTimeout(tm.tries), func() {
		if tm.active == t && tm.sa.state != IKESADestroying {
			tm.retransmit()
		}
	})
}

func (tm *taskManager) retransmit() {
	sa := tm.sa
	if !sa.retransmitDue(&tm.tries) {
		if tm.startProbing() {
			return
		}
		tm.fail()
		return
	}
	infof(sa.log, "sending retransmit %d of request message ID %d, seq 1", tm.tries, tm.activeID())
	tm.sendActive()
	tm.armRetransmit()
}

// sendActive sends the request in flight: over the IKE SA's path, the
// task's own (a return routability check), or every path while probing.
func (tm *taskManager) sendActive() {
	sa := tm.sa
	switch t := tm.active.(type) {
	case pathTask:
		local, remote := t.path()
		sa.lastOutbound = sa.e.clock.Now()
		sa.e.send(local, remote, tm.request)
		return
	}
	if tm.probing {
		tm.sendProbes()
		return
	}
	sa.send(tm.request)
}

// fail ends the active exchange without a response.
func (tm *taskManager) fail() {
	sa, t := tm.sa, tm.active
	tm.stopTimers()
	tm.active = nil
	tm.requestMsg = nil
	if f, ok := t.(failer); ok {
		f.failed()
	}
	if sa.state == IKESADestroying {
		return
	}
	if c, ok := t.(*mobikeCheck); ok && sa.state == IKESAEstablished {
		// A new path that does not answer is not taken; the old one
		// may still work (DPD finds out).
		infof(sa.log, "path %s - %s did not answer, the IKE_SA stays on %s - %s",
			fmtAddr(c.local), fmtAddr(c.remote), fmtAddr(sa.local), fmtAddr(sa.remote))

		tm.initiate()
		return
	}
	if sa.state < IKESAEstablished || t.kind() == taskIKEDelete {
		infof(sa.log, "establishing IKE_SA %s failed, peer not responding", sa.name())
		sa.ending(EndPeerDead)
		sa.destroy()
		return
	}
	sa.peerDead()
}

func (tm *taskManager) stopTimers() {
	for _, t := range []Timer{tm.timer, tm.giveUp} {
		if t != nil {
			t.Stop()
		}
	}
	tm.timer, tm.giveUp = nil, nil
}

// stop abandons all exchanges; the active task releases what it holds.
func (tm *taskManager) stop() {
	tm.stopTimers()
	tm.queued = nil
	tm.pending = nil
	tm.probing = false
	if f, ok := tm.active.(failer); ok {
		f.failed()
	}
	tm.active = nil
	tm.requestMsg = nil
}

// activeID is the message ID of the request in flight: the next one of
// the window, or the task's own (fixedMessageID).
func (tm *taskManager) activeID() uint32 {
	if f, ok := tm.active.(fixedMessageID); ok {
		return f.messageID()
	}
	return tm.nextID
}

// receive dispatches a decoded message (verified, unless IKE_SA_INIT).
func (tm *taskManager) receive(m *message.Message, raw []byte, d Datagram) {
	sa := tm.sa
	h := &m.Header
	if h.IsResponse() {
		if tm.active == nil || h.MessageID != tm.activeID() {
			// Not the response to our request in flight: a late
			// duplicate, or one we never asked for.
			sa.e.stats.DroppedMessageID++
			infof(sa.log, "received message ID %d, expected %d, ignored", h.MessageID, tm.activeID())
			return
		}
		if h.ExchangeType != tm.active.exchange() {
			sa.e.stats.DroppedUnexpected++
			infof(sa.log, "received %v response %d to our %v request, ignored", h.ExchangeType, h.MessageID, tm.active.exchange())
			return
		}
		if sc, ok := tm.active.(screener); ok && !sc.screen(m) {
			sa.e.stats.DroppedUnexpected++
			return
		}
		if h.ExchangeType != message.IKE_SA_INIT {
			if tm.probing {
				tm.probeAnswered(d)
			}
			sa.authenticated(d)
		} else if !sa.local.Addr().IsValid() {
			sa.local = d.Local
		}
		if infoOn(sa.log) {
			sa.log.Info("parsed " + summarize(m))
		}
		sa.e.countMessage(sa.conn.Name, *h, true)
		if (h.ExchangeType == message.CREATE_CHILD_SA || h.ExchangeType == message.INFORMATIONAL) && findNotify(m, message.INVALID_SYNTAX) != nil {
			// The peer could not parse our request: we and it no longer
			// agree on this IKE SA (RFC 7296 section 2.21.3).
			sa.log.Info("received INVALID_SYNTAX notify error, destroying IKE_SA")
			sa.destroy()
			return
		}
		if h.ExchangeType == message.IKE_SA_INIT {
			sa.setupState().initRes = raw
		}
		t := tm.active
		tm.stopTimers()
		err := t.process(m)
		if sa.state == IKESADestroying {
			return
		}
		if errors.Is(err, errRetry) {
			tm.sendRequest()
			return
		}
		if errors.Is(err, errPending) {
			return // the task sends the request again when it can
		}
		tm.active = nil
		tm.request = nil
		tm.requestMsg = nil
		if _, fixed := t.(fixedMessageID); !fixed {
			tm.nextID++
		}
		sa.e.midsChanged(sa)
		sa.forgetInitMessages()
		if errors.Is(err, errDestroy) {
			sa.destroy()
			return
		}
		tm.initiate()
		return
	}
	if isMIDSyncRequest(m) {
		// Outside the window, whatever it is (RFC 6311 section 4.2): not
		// a retransmit of request 0, nor the next request when that is 0.
		tm.respondMIDSync(m, d)
		return
	}
	switch {
	case tm.response != nil && h.MessageID+1 == tm.expectID:
		if h.ExchangeType == message.IKE_SA_INIT && !bytes.Equal(raw, sa.setup.initRequest()) {
			// Unprotected, so only a bitwise copy of the IKE_SA_INIT
			// request we answered is its retransmit (RFC 7296 section
			// 2.1); anything else would have us send our last response,
			// however large, for a forged datagram of a few octets.
			sa.e.stats.DroppedUnexpected++
			infof(sa.log, "received IKE_SA_INIT request with ID %d that is not a retransmit, ignored", h.MessageID)
			return
		}
		infof(sa.log, "received retransmit of request with ID %d, retransmitting response", h.MessageID)
		tm.resendResponse(d)
		return
	case tm.pending != nil && h.MessageID == tm.expectID:
		// The peer retransmits while the answer is being worked out (an
		// EAP backend's round trip can take seconds): the response goes
		// out when it is ready, and answers the retransmits too.
		infof(sa.log, "received retransmit of request with ID %d, response still pending", h.MessageID)
		return
	case h.MessageID != tm.expectID:
		// Outside the window (size 1, RFC 7296 section 2.3): older than
		// the cached response, or ahead of what the peer may send.
		sa.e.stats.DroppedMessageID++
		infof(sa.log, "received message ID %d, expected %d, ignored", h.MessageID, tm.expectID)
		return
	}
	t := tm.responderTask(m)
	if t == nil {
		sa.e.stats.DroppedUnexpected++
		debugf(sa.log, "%v request %d unexpected in state %s, ignored", h.ExchangeType, h.MessageID, sa.state)
		return
	}
	if h.ExchangeType != message.IKE_SA_INIT {
		sa.authenticated(d)
	}
	tm.reqLocal, tm.reqRemote = d.Local, d.Remote
	if infoOn(sa.log) {
		sa.log.Info("parsed " + summarize(m))
	}
	sa.e.countMessage(sa.conn.Name, *h, true)
	if h.ExchangeType == message.IKE_SA_INIT {
		sa.setupState().initReq = raw
	}
	perr := t.process(m)
	if errors.Is(perr, errPending) {
		tm.pending, tm.pendingHdr = t, *h
		return
	}
	tm.respond(t, h, perr)
}

// resume answers the pending request once its task has the outcome
// (perr as process would have returned it). A task no longer pending
// (the IKE SA went meanwhile) is ignored.
func (tm *taskManager) resume(t task, perr error) {
	if tm.pending != t || tm.sa.state == IKESADestroying {
		return
	}
	h := tm.pendingHdr
	tm.pending = nil
	if errors.Is(perr, errPending) {
		tm.pending = t // another round outside the lock
		return
	}
	tm.respond(t, &h, perr)
}

// respond builds and sends the response to request h after t processed
// it, caches it for retransmits and moves the window on.
func (tm *taskManager) respond(t task, h *message.Header, perr error) {
	sa := tm.sa
	resp := &message.Message{Header: message.Header{
		InitiatorSPI: sa.spiI, ResponderSPI: sa.spiR,
		ExchangeType: h.ExchangeType, MessageID: h.MessageID, Flags: message.FlagResponse,
	}}
	if sa.initiator {
		resp.Header.Flags |= message.FlagInitiator
	}
	berr := t.build(resp)
	packets, err := tm.encode(resp)
	if err != nil {
		infof(sa.log, "generating %v response failed: %v", h.ExchangeType, err)
		sa.destroy()
		return
	}
	if h.ExchangeType == message.IKE_SA_INIT {
		sa.setupState().initRes = packets[0]
	}
	tm.expectID++
	sa.e.midsChanged(sa)
	tm.response = packets
	tm.sendResponse(tm.reqFrom())
	if rs, ok := t.(responseSender); ok && berr == nil && perr == nil {
		rs.responseSent()
	}
	sa.forgetInitMessages()
	if errors.Is(perr, errDestroy) || errors.Is(berr, errDestroy) {
		sa.destroy()
		return
	}
	tm.initiate()
}

// inWindow reports whether a message with header h is what we wait for:
// the peer's next request, or the response to our request in flight.
func (tm *taskManager) inWindow(h *message.Header) bool {
	if h.IsResponse() {
		return tm.active != nil && h.MessageID == tm.activeID()
	}
	return h.MessageID == tm.expectID
}

func (tm *taskManager) resendResponse(d Datagram) {
	tm.sendResponse(d)
}

// sendResponse sends our last response: a MOBIKE SA's to the path the
// request came on (d), which the SA may not have moved to (yet).
func (tm *taskManager) sendResponse(d Datagram) { tm.sendResponseTo(d, tm.response) }

// sendResponseTo sends a response to the request that came on d.
func (tm *taskManager) sendResponseTo(d Datagram, packets [][]byte) {
	sa := tm.sa
	if sa.mobike && d.Remote.IsValid() && d.Local.IsValid() && (d.Remote != sa.remote || d.Local != sa.local) {
		sa.lastOutbound = sa.e.clock.Now()
		sa.e.send(d.Local, d.Remote, packets)
		return
	}
	sa.send(packets)
}

// respondNotify answers the expected request with a lone error notify
// (INVALID_SYNTAX, UNSUPPORTED_CRITICAL_PAYLOAD; RFC 7296 section 2.21).
func (tm *taskManager) respondNotify(h message.Header, d Datagram, t message.NotifyType, data []byte) {
	sa := tm.sa
	resp := &message.Message{Header: message.Header{
		InitiatorSPI: sa.spiI, ResponderSPI: sa.spiR,
		ExchangeType: h.ExchangeType, MessageID: h.MessageID, Flags: message.FlagResponse,
	}, Payloads: []message.Payload{notify(t, data)}}
	if sa.initiator {
		resp.Header.Flags |= message.FlagInitiator
	}
	packets, err := tm.encode(resp)
	if err != nil {
		return
	}
	tm.expectID++
	sa.e.midsChanged(sa)
	tm.response = packets
	sa.send(packets)
	if h.ExchangeType == message.IKE_AUTH && sa.state < IKESAEstablished {
		sa.destroy()
	}
}

// responderTask creates the task that answers a request.
func (tm *taskManager) responderTask(m *message.Message) task {
	sa := tm.sa
	switch m.Header.ExchangeType {
	case message.IKE_SA_INIT:
		if sa.state == IKESACreated && !sa.initiator {
			return newIKEInit(sa, false)
		}
	case message.IKE_INTERMEDIATE:
		if method := sa.pendingAddKE(); sa.state == IKESAConnecting && !sa.initiator && method != transform.KE_NONE {
			return newIKEIntermediate(sa, false, method)
		}
	case message.IKE_AUTH:
		if sa.state == IKESAConnecting && !sa.initiator && sa.pendingAddKE() == transform.KE_NONE {
			if sa.eapAuth != nil {
				return sa.eapAuth // EAP goes on (task_ike_auth_eap.go)
			}
			return newIKEAuth(sa, false, nil)
		}
	case message.CREATE_CHILD_SA:
		if sa.state < IKESAEstablished {
			return nil
		}
		if sa.state >= IKESARekeyed {
			// Replaced by a new IKE SA: nothing more is created here.
			return &refuse{notify(message.TEMPORARY_FAILURE, nil)}
		}
		if findNotify(m, message.REKEY_SA) != nil {
			return newChildRekey(sa, false, nil)
		}
		if p, ok := find[*message.SecurityAssociation](m); ok && len(p.Proposals) > 0 && p.Proposals[0].Protocol == message.ProtocolIKE {
			return newIKERekey(sa, false)
		}
		return newChildCreate(sa, false, nil, nil)
	case message.IKE_FOLLOWUP_KE:
		if sa.state >= IKESAEstablished {
			return sa.followupTask()
		}
	case message.INFORMATIONAL:
		if sa.state >= IKESAEstablished || sa.state == IKESAConnecting {
			return newInformational(sa)
		}
	}
	return nil
}

// refuse answers a request with an error notify.
type refuse struct{ n *message.Notify }

func (t *refuse) kind() taskKind                   { return taskInformational }
func (t *refuse) exchange() message.ExchangeType   { return message.CREATE_CHILD_SA }
func (t *refuse) process(m *message.Message) error { return nil }
func (t *refuse) build(m *message.Message) error {
	m.Payloads = append(m.Payloads, t.n)
	return nil
}
