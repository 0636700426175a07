package message

import (
	"encoding/binary"
	"fmt"
)

// Key Exchange payload (RFC 7296 section 3.4):
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Next Payload  |C|  RESERVED   |         Payload Length        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|   Diffie-Hellman Group Num    |           RESERVED            |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                       Key Exchange Data                       ~
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
const keFixedLen = 4 // Group Num and RESERVED

// KeyExchange is the KE payload.
type KeyExchange struct {
	// Group is the key exchange method (Transform Type 4 ID); package
	// transform names it.
	Group uint16
	Data  []byte
}

func (*KeyExchange) Type() PayloadType { return PayloadKE }

func (p *KeyExchange) appendBody(b []byte) ([]byte, error) {
	b = binary.BigEndian.AppendUint16(b, p.Group)
	b = append(b, 0, 0)
	return append(b, p.Data...), nil
}

func unmarshalKE(b []byte) (*KeyExchange, error) {
	if len(b) < keFixedLen {
		return nil, fmt.Errorf("%d octets: %w", len(b), ErrTruncated)
	}
	return &KeyExchange{Group: binary.BigEndian.Uint16(b[0:2]), Data: clone(b[keFixedLen:])}, nil
}
