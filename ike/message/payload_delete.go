package message

import (
	"encoding/binary"
	"fmt"
)

// Delete payload (RFC 7296 section 3.11):
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Next Payload  |C|  RESERVED   |         Payload Length        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Protocol ID   |   SPI Size    |          Num of SPIs          |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~               Security Parameter Index(es) (SPI)              ~
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// Deleting the IKE SA carries no SPI (SPI Size and Num of SPIs are zero:
// the SPIs are in the header); AH and ESP SPIs are four octets.
const (
	deleteFixedLen = 4 // Protocol ID, SPI Size, Num of SPIs
	childSPILen    = 4 // AH and ESP SPI
)

// Delete is the D payload.
type Delete struct {
	// Protocol is IKE, AH or ESP; others are refused.
	Protocol ProtocolID
	// SPIs are the AH or ESP SPIs of the Child SAs to delete, as the
	// deleting end received them (its inbound SPIs). Empty for IKE.
	SPIs []uint32
}

func (*Delete) Type() PayloadType { return PayloadD }

func (p *Delete) appendBody(b []byte) ([]byte, error) {
	switch {
	case p.Protocol == ProtocolIKE && len(p.SPIs) != 0:
		return b, fmt.Errorf("IKE SA delete with %d SPIs: %w", len(p.SPIs), ErrMalformed)
	case p.Protocol != ProtocolIKE && p.Protocol != ProtocolAH && p.Protocol != ProtocolESP:
		return b, fmt.Errorf("protocol %v: %w", p.Protocol, ErrMalformed)
	case len(p.SPIs) > 0xffff:
		return b, fmt.Errorf("%d SPIs: %w", len(p.SPIs), ErrTooLarge)
	}
	size := byte(childSPILen)
	if p.Protocol == ProtocolIKE {
		size = 0
	}
	b = append(b, byte(p.Protocol), size)
	b = binary.BigEndian.AppendUint16(b, uint16(len(p.SPIs)))
	for _, spi := range p.SPIs {
		b = binary.BigEndian.AppendUint32(b, spi)
	}
	return b, nil
}

func unmarshalDelete(b []byte) (*Delete, error) {
	if len(b) < deleteFixedLen {
		return nil, fmt.Errorf("%d octets: %w", len(b), ErrTruncated)
	}
	d := &Delete{Protocol: ProtocolID(b[0])}
	size, count := int(b[1]), int(binary.BigEndian.Uint16(b[2:4]))
	b = b[deleteFixedLen:]
	switch d.Protocol {
	case ProtocolIKE:
		if size != 0 || count != 0 {
			return nil, fmt.Errorf("IKE SA delete with SPI size %d, %d SPIs: %w", size, count, ErrMalformed)
		}
	case ProtocolAH, ProtocolESP:
		if size != childSPILen {
			return nil, fmt.Errorf("%v SPI size %d: %w", d.Protocol, size, ErrMalformed)
		}
	default:
		return nil, fmt.Errorf("protocol %v: %w", d.Protocol, ErrMalformed)
	}
	if want := size * count; len(b) != want {
		if len(b) < want {
			return nil, fmt.Errorf("%d SPIs of %d octets, %d octets left: %w", count, size, len(b), ErrTruncated)
		}
		return nil, fmt.Errorf("%d SPIs of %d octets, %d octets left: %w", count, size, len(b), ErrBadLength)
	}
	if count > 0 {
		d.SPIs = make([]uint32, count)
		for i := range d.SPIs {
			d.SPIs[i] = binary.BigEndian.Uint32(b[i*childSPILen:])
		}
	}
	return d, nil
}
