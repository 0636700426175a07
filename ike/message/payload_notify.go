package message

import (
	"encoding/binary"
	"fmt"
)

// Notify payload (RFC 7296 section 3.10):
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Next Payload  |C|  RESERVED   |         Payload Length        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  Protocol ID  |   SPI Size    |      Notify Message Type      |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                Security Parameter Index (SPI)                 ~
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                       Notification Data                       ~
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// The Protocol ID is to be ignored on receipt when there is no SPI, and
// RFC 4306 peers sent IKE SPIs here, so the SPI size is not checked against
// the protocol; it only has to fit the payload.
const notifyFixedLen = 4 // Protocol ID, SPI Size, Notify Message Type

// Notify is the N payload.
type Notify struct {
	Protocol ProtocolID
	SPI      []byte
	// NotifyType is the Notify Message Type.
	NotifyType NotifyType
	Data       []byte
}

func (*Notify) Type() PayloadType { return PayloadN }

func (p *Notify) appendBody(b []byte) ([]byte, error) {
	if len(p.SPI) > 0xff {
		return b, fmt.Errorf("SPI of %d octets: %w", len(p.SPI), ErrTooLarge)
	}
	b = append(b, byte(p.Protocol), byte(len(p.SPI)))
	b = binary.BigEndian.AppendUint16(b, uint16(p.NotifyType))
	b = append(b, p.SPI...)
	return append(b, p.Data...), nil
}

func unmarshalNotify(b []byte) (*Notify, error) {
	if len(b) < notifyFixedLen {
		return nil, fmt.Errorf("%d octets: %w", len(b), ErrTruncated)
	}
	spiLen := int(b[1])
	if notifyFixedLen+spiLen > len(b) {
		return nil, fmt.Errorf("SPI size %d, %d octets left: %w", spiLen, len(b)-notifyFixedLen, ErrTruncated)
	}
	return &Notify{
		Protocol:   ProtocolID(b[0]),
		NotifyType: NotifyType(binary.BigEndian.Uint16(b[2:4])),
		SPI:        clone(b[notifyFixedLen : notifyFixedLen+spiLen]),
		Data:       clone(b[notifyFixedLen+spiLen:]),
	}, nil
}
