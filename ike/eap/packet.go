package eap

import (
	"encoding/binary"
	"fmt"
)

// An EAP packet (RFC 3748 section 4):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|     Code      |  Identifier   |            Length             |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|     Type      |  Type-Data ...
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// Length counts the whole packet. Request and Response carry a Type;
// Success and Failure are the four header octets alone (section 4.2).
const (
	headerLen = 4 // Code, Identifier, Length
	// MaxPacketLen is the largest packet Marshal builds and the largest
	// Length Parse accepts: the Length field is 16 bits.
	MaxPacketLen = 0xffff
)

// Code is the EAP Code (RFC 3748 section 4).
type Code uint8

const (
	CodeRequest  Code = 1
	CodeResponse Code = 2
	CodeSuccess  Code = 3
	CodeFailure  Code = 4
)

// Type is the EAP Type of a Request or Response (RFC 3748 section 5, IANA
// "EAP Method Types").
type Type uint8

const (
	TypeIdentity     Type = 1
	TypeNotification Type = 2
	TypeNak          Type = 3 // Legacy Nak, Responses only
	TypeMD5          Type = 4 // MD5-Challenge
	TypeTLS          Type = 13
	TypeMSCHAPv2     Type = 26
	// TypeExpanded carries a 24-bit Vendor-Id and a 32-bit Vendor-Type
	// (section 5.7). This package has no expanded method: Parse refuses
	// such packets with ErrExpandedType.
	TypeExpanded     Type = 254
	TypeExperimental Type = 255
)

// Packet is one decoded EAP packet. Data is the Type-Data of a Request or
// Response and aliases the slice Parse was given.
type Packet struct {
	Code       Code
	Identifier uint8
	Type       Type // zero for Success and Failure
	Data       []byte
}

// Parse decodes one EAP packet. Octets after Length are link-layer padding
// and ignored (RFC 3748 section 4.1); a Length past the end of b, or below
// what the Code needs, is an error. Success and Failure must be exactly
// four octets long. Expanded Types are refused with ErrExpandedType, an
// unknown Code or Type 0 (reserved) with ErrMalformed.
func Parse(b []byte) (Packet, error) {
	if len(b) < headerLen {
		return Packet{}, fmt.Errorf("EAP packet of %d octets: %w", len(b), ErrTruncated)
	}
	p := Packet{Code: Code(b[0]), Identifier: b[1]}
	n := int(binary.BigEndian.Uint16(b[2:4]))
	if n > len(b) {
		return Packet{}, fmt.Errorf("EAP length %d, %d octets present: %w", n, len(b), ErrTruncated)
	}
	switch p.Code {
	case CodeSuccess, CodeFailure:
		if n != headerLen {
			return Packet{}, fmt.Errorf("%s of length %d: %w", p.Code, n, ErrBadLength)
		}
		return p, nil
	case CodeRequest, CodeResponse:
		if n < headerLen+1 {
			return Packet{}, fmt.Errorf("%s of length %d has no Type: %w", p.Code, n, ErrBadLength)
		}
	default:
		return Packet{}, fmt.Errorf("EAP code %d: %w", b[0], ErrMalformed)
	}
	p.Type = Type(b[4])
	p.Data = b[5:n:n]
	if p.Type == 0 {
		return Packet{}, fmt.Errorf("%s of Type 0: %w", p.Code, ErrMalformed)
	}
	if p.Type == TypeExpanded {
		return p, fmt.Errorf("%s %s: %w", p.Code, p.Type, ErrExpandedType)
	}
	return p, nil
}

// Len is the encoded length of p.
func (p Packet) Len() int {
	if p.Code == CodeSuccess || p.Code == CodeFailure {
		return headerLen
	}
	return headerLen + 1 + len(p.Data)
}

// Marshal encodes p. Success and Failure take no Type and no Data.
func (p Packet) Marshal() ([]byte, error) {
	return p.Append(nil)
}

// Append appends the encoding of p to b.
func (p Packet) Append(b []byte) ([]byte, error) {
	switch p.Code {
	case CodeSuccess, CodeFailure:
		if p.Type != 0 || len(p.Data) != 0 {
			return b, fmt.Errorf("%s with a Type or Data: %w", p.Code, ErrMalformed)
		}
	case CodeRequest, CodeResponse:
		if p.Type == 0 {
			return b, fmt.Errorf("%s without a Type: %w", p.Code, ErrMalformed)
		}
	default:
		return b, fmt.Errorf("EAP code %d: %w", uint8(p.Code), ErrMalformed)
	}
	n := p.Len()
	if n > MaxPacketLen {
		return b, fmt.Errorf("EAP packet of %d octets: %w", n, ErrTooLarge)
	}
	b = append(b, byte(p.Code), p.Identifier)
	b = binary.BigEndian.AppendUint16(b, uint16(n))
	if n == headerLen {
		return b, nil
	}
	b = append(b, byte(p.Type))
	return append(b, p.Data...), nil
}
