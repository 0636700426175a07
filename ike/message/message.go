package message

import "fmt"

// Message is one IKEv2 message: the header and its payloads in order.
//
// Marshal and Unmarshal handle the message as it is on the wire, with an
// SK or SKF payload kept sealed (*Encrypted, *EncryptedFragment).
// MarshalEncrypted and UnmarshalEncrypted go through a Protector: there
// Payloads are the payloads inside SK.
type Message struct {
	Header   Header
	Payloads []Payload
}

// Marshal encodes m. Header.NextPayload and Header.Length are computed.
func (m *Message) Marshal() ([]byte, error) {
	b := make([]byte, HeaderLen, 512)
	b, err := appendChain(b, m.Payloads, false)
	if err != nil {
		return nil, err
	}
	if err := putHeader(b, &m.Header, firstType(m.Payloads), len(b)); err != nil {
		return nil, err
	}
	return b, nil
}

// Unmarshal decodes one message, b being the whole UDP payload (without
// the non-ESP marker on port 4500). An SK or SKF payload is returned
// sealed, as the last payload.
func Unmarshal(b []byte) (*Message, error) {
	h, err := UnmarshalHeader(b)
	if err != nil {
		return nil, err
	}
	ps, err := decodeChain(b[HeaderLen:], h.NextPayload, false)
	if err != nil {
		return nil, fmt.Errorf("decode %v message %d: %w", h.ExchangeType, h.MessageID, err)
	}
	return &Message{Header: h, Payloads: ps}, nil
}

func firstType(ps []Payload) PayloadType {
	if len(ps) == 0 || ps[0] == nil {
		return PayloadNone
	}
	return ps[0].Type()
}
