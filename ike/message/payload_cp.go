package message

import (
	"encoding/binary"
	"fmt"
)

// Configuration payload (RFC 7296 section 3.15):
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Next Payload  |C| RESERVED    |         Payload Length        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|   CFG Type    |                    RESERVED                   |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                   Configuration Attributes                    ~
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// Configuration attribute (section 3.15.1):
//
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|R|         Attribute Type      |            Length             |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                             Value                             ~
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// R is reserved (cleared when sent, ignored on receipt). Values are kept
// as octets: whether an INTERNAL_IP4_ADDRESS of 3 octets is an error is for
// the configuration task to say, and requests carry empty values.
const (
	cpFixedLen          = 4 // CFG Type and RESERVED
	cpAttributeHeadLen  = 4 // R, Attribute Type, Length
	cpAttributeReserved = 0x8000
)

// Configuration is the CP payload.
type Configuration struct {
	CFGType    CFGType
	Attributes []ConfigAttribute
}

// ConfigAttribute is one configuration attribute.
type ConfigAttribute struct {
	Type  CPAttributeType
	Value []byte
}

func (*Configuration) Type() PayloadType { return PayloadCP }

func (p *Configuration) appendBody(b []byte) ([]byte, error) {
	b = append(b, byte(p.CFGType), 0, 0, 0)
	for i, a := range p.Attributes {
		if a.Type&cpAttributeReserved != 0 {
			return b, fmt.Errorf("attribute %d: type %#x does not fit 15 bits: %w", i+1, uint16(a.Type), ErrTooLarge)
		}
		if len(a.Value) > 0xffff {
			return b, fmt.Errorf("attribute %d: %d octets: %w", i+1, len(a.Value), ErrTooLarge)
		}
		b = binary.BigEndian.AppendUint16(b, uint16(a.Type))
		b = binary.BigEndian.AppendUint16(b, uint16(len(a.Value)))
		b = append(b, a.Value...)
	}
	return b, nil
}

func unmarshalConfiguration(b []byte) (*Configuration, error) {
	if len(b) < cpFixedLen {
		return nil, fmt.Errorf("%d octets: %w", len(b), ErrTruncated)
	}
	cp := &Configuration{CFGType: CFGType(b[0])}
	b = b[cpFixedLen:]
	for len(b) > 0 {
		n := len(cp.Attributes) + 1
		if len(b) < cpAttributeHeadLen {
			return nil, fmt.Errorf("attribute %d: header of %d octets: %w", n, len(b), ErrTruncated)
		}
		typ := CPAttributeType(binary.BigEndian.Uint16(b[0:2]) &^ cpAttributeReserved)
		alen := int(binary.BigEndian.Uint16(b[2:4]))
		if cpAttributeHeadLen+alen > len(b) {
			return nil, fmt.Errorf("attribute %d (%v): length %d, %d octets left: %w", n, typ, alen, len(b)-cpAttributeHeadLen, ErrTruncated)
		}
		cp.Attributes = append(cp.Attributes, ConfigAttribute{Type: typ, Value: clone(b[cpAttributeHeadLen : cpAttributeHeadLen+alen])})
		b = b[cpAttributeHeadLen+alen:]
	}
	return cp, nil
}
