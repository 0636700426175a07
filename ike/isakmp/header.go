package isakmp

import (
	"encoding/binary"
	"fmt"
)

// ISAKMP header (RFC 2408 section 3.1):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	!                          Initiator                            !
//	!                            Cookie                             !
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	!                          Responder                            !
//	!                            Cookie                             !
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	!  Next Payload ! MjVer ! MnVer ! Exchange Type !     Flags     !
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	!                          Message ID                           !
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	!                            Length                             !
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
const (
	HeaderLen = 28
	// MajorVersion and MinorVersion are what this package sends: 1.0.
	MajorVersion = 1
	// MaxMessageLen bounds messages in both directions (one datagram).
	MaxMessageLen = 65535
)

// Header is the ISAKMP header. The cookies are the IKE SPIs of IKEv2.
type Header struct {
	InitiatorCookie uint64
	ResponderCookie uint64
	// NextPayload is set by decoding; encoding computes it.
	NextPayload  PayloadType
	MinorVersion uint8
	Exchange     ExchangeType
	Flags        Flags
	MessageID    uint32
	// Length is set by decoding; encoding computes it.
	Length uint32
}

// MajorVersionOf returns the major version of a message whose first
// octets are an ISAKMP or IKEv2 header, 0 if it is too short: the engine
// dispatches on it.
func MajorVersionOf(b []byte) uint8 {
	if len(b) < HeaderLen {
		return 0
	}
	return b[17] >> 4
}

// UnmarshalHeader decodes the header at the start of b, b being the whole
// message: it checks the version and that Length matches len(b). With at
// least HeaderLen octets the header is returned even with an error.
func UnmarshalHeader(b []byte) (Header, error) {
	if len(b) < HeaderLen {
		return Header{}, fmt.Errorf("decode ISAKMP header: %d octets: %w", len(b), ErrTruncated)
	}
	h := Header{
		InitiatorCookie: binary.BigEndian.Uint64(b[0:]),
		ResponderCookie: binary.BigEndian.Uint64(b[8:]),
		NextPayload:     PayloadType(b[16]),
		MinorVersion:    b[17] & 0x0f,
		Exchange:        ExchangeType(b[18]),
		Flags:           Flags(b[19]),
		MessageID:       binary.BigEndian.Uint32(b[20:]),
		Length:          binary.BigEndian.Uint32(b[24:]),
	}
	if major := b[17] >> 4; major != MajorVersion {
		return h, fmt.Errorf("decode ISAKMP header: version %d.%d: %w", major, h.MinorVersion, ErrInvalidMajorVersion)
	}
	if uint64(h.Length) != uint64(len(b)) {
		return h, fmt.Errorf("decode ISAKMP header: length field %d, message %d octets: %w", h.Length, len(b), ErrBadLength)
	}
	if len(b) > MaxMessageLen {
		return h, fmt.Errorf("decode ISAKMP header: %d octets: %w", len(b), ErrTooLarge)
	}
	return h, nil
}

// AppendHeader appends h with the given first payload and total length.
func AppendHeader(b []byte, h *Header, next PayloadType, length int) ([]byte, error) {
	if length > MaxMessageLen || length < HeaderLen {
		return nil, fmt.Errorf("encode ISAKMP header: message of %d octets: %w", length, ErrTooLarge)
	}
	b = binary.BigEndian.AppendUint64(b, h.InitiatorCookie)
	b = binary.BigEndian.AppendUint64(b, h.ResponderCookie)
	b = append(b, byte(next), MajorVersion<<4|h.MinorVersion&0x0f, byte(h.Exchange), byte(h.Flags))
	b = binary.BigEndian.AppendUint32(b, h.MessageID)
	return binary.BigEndian.AppendUint32(b, uint32(length)), nil
}
