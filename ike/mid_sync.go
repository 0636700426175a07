package ike

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/xdpsec/xdpsec/ike/message"
)

// Message ID synchronisation (RFC 6311): a fleet member that takes over
// an IKE SA (TakeOver) has its keys but not the message IDs the failed
// member used since its last checkpoint. Both ends announce support in
// IKE_AUTH; the new active member then sends an INFORMATIONAL request
// with message ID 0, outside the window, and the peer answers it with
// message ID 0 too, neither exchange moving the window:
//
//	New active                          Peer
//	-------------------------------------------------------------------
//	HDR(MID 0), SK {N(IKEV2_MESSAGE_ID_SYNC:
//	    nonce, M1, P1)}  -->
//	                          M2 = max(M1, peer's expected request ID)
//	                          P2 = max(P1, peer's next request ID (+1
//	                               while one of its requests is in flight))
//	                    <--  HDR(MID 0), SK {N(IKEV2_MESSAGE_ID_SYNC:
//	                             nonce, P2, M2)}
//
// M1 (EXPECTED_SEND_REQ_MESSAGE_ID) is the ID of the next request the
// sender sends, P1 (EXPECTED_RECV_REQ_MESSAGE_ID) the ID of the next
// request it accepts. The answer's fields are from the responder's view:
// its next request P2, its next accepted request M2. The nonce binds the
// answer to the request. charon (5.9.8) answers as RFC 6311 section 4.2
// says when its peer announced support, and ignores a request whose M1 is
// below its expected request ID (a stale or replayed one).

// midSyncData is the notification data of IKEV2_MESSAGE_ID_SYNC.
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                          Nonce Data                           |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                 EXPECTED_SEND_REQ_MESSAGE_ID                  |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                 EXPECTED_RECV_REQ_MESSAGE_ID                  |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
type midSyncData struct {
	Nonce      uint32
	Send, Recv uint32 // EXPECTED_SEND_REQ_MESSAGE_ID, EXPECTED_RECV_REQ_MESSAGE_ID
}

// midSyncLen is the size of the notification data: nothing more, nothing
// less is accepted.
const midSyncLen = 12

// errMIDSyncLength is the error of notification data of the wrong size.
var errMIDSyncLength = errors.New("IKEV2_MESSAGE_ID_SYNC data is not 12 octets")

func (d midSyncData) marshal() []byte {
	b := make([]byte, 0, midSyncLen)
	b = binary.BigEndian.AppendUint32(b, d.Nonce)
	b = binary.BigEndian.AppendUint32(b, d.Send)
	return binary.BigEndian.AppendUint32(b, d.Recv)
}

func parseMIDSync(b []byte) (midSyncData, error) {
	if len(b) != midSyncLen {
		return midSyncData{}, fmt.Errorf("%w: %d", errMIDSyncLength, len(b))
	}
	return midSyncData{Nonce: binary.BigEndian.Uint32(b), Send: binary.BigEndian.Uint32(b[4:]), Recv: binary.BigEndian.Uint32(b[8:])}, nil
}

// midSyncMargin is how far a member taking over moves both message IDs
// past its checkpoint: the failed member may have completed exchanges
// since it was saved (one at a time with a window of 1, but a checkpoint
// can lag several), and the peer takes the larger values (RFC 6311
// section 4.2 asks the new active member to add a margin).
const midSyncMargin = 16

// midSyncSupported is the notify both ends put into IKE_AUTH (RFC 6311
// section 3): the initiator in its first request, the responder in its
// final response.
func midSyncSupported() *message.Notify { return notify(message.IKEV2_MESSAGE_ID_SYNC_SUPPORTED, nil) }

// processMIDSyncSupported notes the peer's announcement in an IKE_AUTH
// message.
func (sa *ikeSA) processMIDSyncSupported(m *message.Message) {
	if findNotify(m, message.IKEV2_MESSAGE_ID_SYNC_SUPPORTED) != nil {
		sa.peerMIDSync = true
	}
}

// isMIDSyncRequest says whether a request with message ID 0 is a message
// ID synchronisation: an INFORMATIONAL of an established IKE SA whose
// only payload is the IKEV2_MESSAGE_ID_SYNC notify (charon's test too).
// Anything else with message ID 0 goes through the window as usual.
func isMIDSyncRequest(m *message.Message) bool {
	h := &m.Header
	if h.IsResponse() || h.MessageID != 0 || h.ExchangeType != message.INFORMATIONAL || len(m.Payloads) != 1 {
		return false
	}
	n, ok := m.Payloads[0].(*message.Notify)
	return ok && n.NotifyType == message.IKEV2_MESSAGE_ID_SYNC
}

// respondMIDSync answers the peer's message ID synchronisation: the
// responder's side of RFC 6311 section 4.2. The answer is not cached as
// a response (a retransmit of the peer's request is answered anew), and
// the window does not move with it.
func (tm *taskManager) respondMIDSync(m *message.Message, d Datagram) {
	sa := tm.sa
	e := sa.e
	sa.log.Info("parsed " + summarize(m))
	e.countMessage(sa.conn.Name, m.Header, true)
	if sa.state < IKESAEstablished || sa.state >= IKESADeleting {
		e.stats.DroppedMIDSync++
		infof(sa.log, "IKEV2_MESSAGE_ID_SYNC in state %s, ignored", sa.state)
		return
	}
	if !sa.peerMIDSync {
		e.stats.DroppedMIDSync++
		infof(sa.log, "unexpected %v notify, ignored", message.IKEV2_MESSAGE_ID_SYNC)
		return
	}
	req, err := parseMIDSync(m.Payloads[0].(*message.Notify).Data)
	if err != nil {
		e.stats.DroppedMIDSync++
		infof(sa.log, "received invalid %v notify: %v", message.IKEV2_MESSAGE_ID_SYNC, err)
		return
	}
	if req.Send < tm.expectID {
		e.stats.DroppedMIDSync++
		infof(sa.log, "ignore %v notify with lower (%d) than expected (%d) sender MID", message.IKEV2_MESSAGE_ID_SYNC, req.Send, tm.expectID)
		return
	}
	sa.authenticated(d)
	oldRecv, oldSend := tm.expectID, tm.nextID
	m2 := max(req.Send, tm.expectID)
	floor := tm.nextID
	if _, fixed := tm.active.(fixedMessageID); tm.active != nil && !fixed {
		floor++ // the request in flight goes out again with a new ID
	}
	p2 := max(req.Recv, floor)
	tm.expectID = m2
	// Responses cached for the old window answer nothing any more.
	tm.response = nil
	tm.pending = nil
	infof(sa.log, "peer requested MID sync: initiating %d[%d], responding %d[%d]", p2, oldSend, m2, oldRecv)
	resp := &message.Message{Header: message.Header{
		InitiatorSPI: sa.spiI, ResponderSPI: sa.spiR,
		ExchangeType: message.INFORMATIONAL, MessageID: 0, Flags: message.FlagResponse,
	}, Payloads: []message.Payload{notify(message.IKEV2_MESSAGE_ID_SYNC, midSyncData{Nonce: req.Nonce, Send: p2, Recv: m2}.marshal())}}
	if sa.initiator {
		resp.Header.Flags |= message.FlagInitiator
	}
	packets, err := tm.encode(resp)
	if err == nil {
		tm.reqLocal, tm.reqRemote = d.Local, d.Remote
		tm.sendResponseTo(d, packets)
		e.stats.MIDSyncs++
	} else {
		// The peer retransmits its request; our counters stand.
		infof(sa.log, "generating INFORMATIONAL response failed: %v", err)
	}
	// The answer first: the request in flight goes out after it, with
	// the ID the peer now expects.
	if _, fixed := tm.active.(fixedMessageID); tm.active != nil && !fixed {
		tm.renumberActive(p2)
	} else {
		tm.nextID = p2
	}
	e.midsChanged(sa)
}

// renumberActive gives the request in flight the message ID id and sends
// it again: the peer accepts no other after a synchronisation.
func (tm *taskManager) renumberActive(id uint32) {
	tm.nextID = id
	m := tm.requestMsg
	if m == nil {
		return
	}
	m.Header.MessageID = id
	packets, err := tm.encode(m)
	if err != nil {
		infof(tm.sa.log, "generating %v request failed: %v", m.Header.ExchangeType, err)
		return
	}
	tm.request = packets
	tm.tries = 0
	tm.sendActive()
	tm.armRetransmit()
}

// midSync is the new active member's side: the INFORMATIONAL request
// with message ID 0 that TakeOver queues first on an IKE SA whose peer
// announced support.
type midSync struct {
	sa    *ikeSA
	nonce uint32
	sent  midSyncData
}

func newMIDSync(sa *ikeSA) *midSync { return &midSync{sa: sa} }

func (t *midSync) kind() taskKind                 { return taskMIDSync }
func (t *midSync) exchange() message.ExchangeType { return message.INFORMATIONAL }

// messageID: the request goes out with ID 0, outside the window.
func (t *midSync) messageID() uint32 { return 0 }

func (t *midSync) build(m *message.Message) error {
	sa := t.sa
	var b [4]byte
	if _, err := io.ReadFull(sa.e.rand, b[:]); err != nil {
		return fmt.Errorf("nonce: %w", err)
	}
	t.nonce = binary.BigEndian.Uint32(b[:])
	t.sent = midSyncData{Nonce: t.nonce, Send: sa.tm.nextID, Recv: sa.tm.expectID}
	m.Payloads = append(m.Payloads, notify(message.IKEV2_MESSAGE_ID_SYNC, t.sent.marshal()))
	return nil
}

// screen drops answers that are not the one to our request: a missing or
// malformed notify, or another nonce (a replayed answer). The request is
// retransmitted as if nothing came.
func (t *midSync) screen(m *message.Message) bool {
	sa := t.sa
	n := findNotify(m, message.IKEV2_MESSAGE_ID_SYNC)
	if n == nil {
		sa.e.stats.DroppedMIDSync++
		infof(sa.log, "INFORMATIONAL response 0 without %v notify, ignored", message.IKEV2_MESSAGE_ID_SYNC)
		return false
	}
	d, err := parseMIDSync(n.Data)
	if err != nil {
		sa.e.stats.DroppedMIDSync++
		infof(sa.log, "received invalid %v notify: %v", message.IKEV2_MESSAGE_ID_SYNC, err)
		return false
	}
	if d.Nonce != t.nonce {
		sa.e.stats.DroppedMIDSync++
		infof(sa.log, "received %v notify with a wrong nonce, ignored", message.IKEV2_MESSAGE_ID_SYNC)
		return false
	}
	return true
}

// process takes the peer's values: its next request (P2) is what we
// accept next, its next accepted request (M2) is our next one (RFC 6311
// section 4.2), never below ours.
func (t *midSync) process(m *message.Message) error {
	sa := t.sa
	d, _ := parseMIDSync(findNotify(m, message.IKEV2_MESSAGE_ID_SYNC).Data) // screened
	tm := sa.tm
	oldSend, oldRecv := tm.nextID, tm.expectID
	tm.nextID = max(tm.nextID, d.Recv)
	tm.expectID = max(tm.expectID, d.Send)
	// A response cached from before answers nothing in the new window.
	tm.response = nil
	sa.e.stats.MIDSyncs++
	infof(sa.log, "message IDs of IKE_SA %s synchronised: initiating %d[%d], responding %d[%d]",
		sa.name(), tm.nextID, oldSend, tm.expectID, oldRecv)
	return nil
}
