package message_test

import (
	"errors"
	"fmt"

	"github.com/xdpsec/xdpsec/ike/message"
)

// A responder decodes a request and, when a payload it cannot skip is in
// it, answers UNSUPPORTED_CRITICAL_PAYLOAD for the request's message ID.
func ExampleUnmarshal() {
	request := &message.Message{
		Header: message.Header{InitiatorSPI: 0x1122334455667788, ExchangeType: message.IKE_SA_INIT, Flags: message.FlagInitiator},
		Payloads: []message.Payload{
			&message.Nonce{Data: make([]byte, 32)},
			&message.Unknown{PayloadType: 200, Critical: true, Body: []byte("future")},
		},
	}
	b, _ := request.Marshal()

	_, err := message.Unmarshal(b)
	var ucp *message.UnsupportedCriticalPayloadError
	if errors.As(err, &ucp) {
		h, _ := message.UnmarshalHeader(b)
		answer := &message.Message{
			Header: message.Header{
				InitiatorSPI: h.InitiatorSPI,
				ExchangeType: h.ExchangeType,
				Flags:        message.FlagResponse,
				MessageID:    h.MessageID,
			},
			Payloads: []message.Payload{&message.Notify{
				NotifyType: message.UNSUPPORTED_CRITICAL_PAYLOAD,
				Data:       []byte{byte(ucp.Type)},
			}},
		}
		out, _ := answer.Marshal()
		fmt.Printf("%v, answering %v with %d octets\n", err, answer.Payloads[0].(*message.Notify).NotifyType, len(out))
	}
	// Output: decode IKE_SA_INIT message 0: unsupported critical payload 200, answering UNSUPPORTED_CRITICAL_PAYLOAD with 37 octets
}
