package ike

import (
	"errors"

	"github.com/xdpsec/xdpsec/ike/message"
)

// taskKind names what a task is for.
type taskKind uint8

const (
	taskIKEInit taskKind = iota + 1
	taskIKEAuth
	taskChildCreate
	taskChildRekey
	taskChildDelete
	taskIKERekey
	taskIKEDelete
	taskDPD
	taskInformational
	taskReauthComplete // sends nothing: a localTask
	taskIKERedirect
	taskMOBIKE          // UPDATE_SA_ADDRESSES or a COOKIE2 return routability check
	taskMIDSync         // RFC 6311 message ID synchronisation (mid_sync.go)
	taskIKEIntermediate // RFC 9242/9370 additional key exchange (task_ike_intermediate.go)
	taskFollowupKE      // RFC 9370 IKE_FOLLOWUP_KE of a CHILD_SA (task_child_followup.go)
)

// task is one concern of one exchange, after charon's task_t. The
// initiator builds the request and processes the response; the responder
// processes the request and builds the response.
type task interface {
	kind() taskKind
	// exchange is the exchange type of the request an initiator sends.
	exchange() message.ExchangeType
	build(m *message.Message) error
	process(m *message.Message) error
}

// localTask is a queued step that sends no request: the task manager
// runs it when its turn comes, in order with the exchanges queued before.
type localTask interface {
	run()
}

// screener is implemented by initiator tasks that drop some responses
// before anything of the exchange changes (charon's pre_process): the
// request stays in flight and is retransmitted as if nothing came.
type screener interface {
	screen(m *message.Message) bool
}

// fixedMessageID is implemented by initiator tasks whose request has a
// message ID of its own, outside the window, and whose exchange does not
// move it (RFC 6311's synchronisation, with ID 0).
type fixedMessageID interface {
	messageID() uint32
}

// responseSender is implemented by responder tasks that act once their
// response is encoded and sent (IKE_INTERMEDIATE takes new keys).
type responseSender interface {
	responseSent()
}

// failer is implemented by initiator tasks that clean up when their
// exchange times out (no response after the last retransmit).
type failer interface {
	failed()
}

var (
	// errRetry from an initiator's process: send the request again with
	// the same message ID (IKE_SA_INIT after COOKIE or INVALID_KE_PAYLOAD).
	errRetry = errors.New("retry exchange")
	// errDestroy from any step: the IKE SA is to be destroyed once the
	// exchange (and a response, for a responder) is done.
	errDestroy = errors.New("destroy IKE_SA")
	// errPending from a responder's process: the response waits for work
	// done outside the engine lock (an EAP backend's answer); the task
	// calls taskManager.resume with the outcome when it is in.
	errPending = errors.New("response pending")
)

// notifyErr reports the error notify a message carries, if any.
func notifyErr(m *message.Message) (message.NotifyType, bool) {
	for _, p := range m.Payloads {
		if n, ok := p.(*message.Notify); ok && n.NotifyType.IsError() {
			return n.NotifyType, true
		}
	}
	return 0, false
}

func findNotify(m *message.Message, t message.NotifyType) *message.Notify {
	for _, p := range m.Payloads {
		if n, ok := p.(*message.Notify); ok && n.NotifyType == t {
			return n
		}
	}
	return nil
}

// find returns the first payload of type T.
func find[T message.Payload](m *message.Message) (T, bool) {
	for _, p := range m.Payloads {
		if t, ok := p.(T); ok {
			return t, true
		}
	}
	var zero T
	return zero, false
}

func findAll[T message.Payload](m *message.Message) []T {
	var out []T
	for _, p := range m.Payloads {
		if t, ok := p.(T); ok {
			out = append(out, t)
		}
	}
	return out
}

func notify(t message.NotifyType, data []byte) *message.Notify {
	return &message.Notify{NotifyType: t, Data: data}
}
