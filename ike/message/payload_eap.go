package message

import (
	"encoding/binary"
	"fmt"
)

// EAP payload (RFC 7296 section 3.16): the generic header, then one EAP
// message (RFC 3748):
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Next Payload  |C|  RESERVED   |         Payload Length        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|     Code      | Identifier    |           Length              |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|     Type      | Type_Data...
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// The EAP Length counts the whole EAP message, so it must equal the payload
// body length. Success and Failure (codes 3 and 4) have no Type.
const eapHeaderLen = 4 // Code, Identifier, Length

// EAP is the EAP payload. Message is the whole EAP message, header
// included, as an EAP method implementation consumes it.
type EAP struct {
	Message []byte
}

func (*EAP) Type() PayloadType { return PayloadEAP }

// Code is the EAP Code (1 Request, 2 Response, 3 Success, 4 Failure).
func (p *EAP) Code() uint8 {
	if len(p.Message) == 0 {
		return 0
	}
	return p.Message[0]
}

// Identifier is the EAP Identifier.
func (p *EAP) Identifier() uint8 {
	if len(p.Message) < 2 {
		return 0
	}
	return p.Message[1]
}

func (p *EAP) appendBody(b []byte) ([]byte, error) {
	if err := checkEAP(p.Message); err != nil {
		return b, err
	}
	return append(b, p.Message...), nil
}

func checkEAP(m []byte) error {
	if len(m) < eapHeaderLen {
		return fmt.Errorf("EAP message of %d octets: %w", len(m), ErrTruncated)
	}
	if n := int(binary.BigEndian.Uint16(m[2:4])); n != len(m) {
		return fmt.Errorf("EAP length %d, message of %d octets: %w", n, len(m), ErrBadLength)
	}
	return nil
}

func unmarshalEAP(b []byte) (*EAP, error) {
	if err := checkEAP(b); err != nil {
		return nil, err
	}
	return &EAP{Message: clone(b)}, nil
}
