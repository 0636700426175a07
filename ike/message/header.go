package message

import (
	"encoding/binary"
	"fmt"
	"strings"
)

// IKE header (RFC 7296 section 3.1):
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                       IKE SA Initiator's SPI                  |
//	|                                                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                       IKE SA Responder's SPI                  |
//	|                                                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  Next Payload | MjVer | MnVer | Exchange Type |     Flags     |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                          Message ID                           |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                            Length                             |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// On UDP port 4500 the message follows a four-octet non-ESP marker; the
// caller strips it, it is not part of the message.
const (
	HeaderLen = 28 // octets of the IKE header

	// MajorVersion is the only major version this package decodes.
	MajorVersion = 2

	// MaxMessageLen bounds what Unmarshal accepts and Marshal produces:
	// one UDP datagram, and the largest message the TCP encapsulation of
	// RFC 9329 can frame.
	MaxMessageLen = 65535
)

// Flags are the flag bits of the IKE header.
type Flags uint8

const (
	FlagInitiator Flags = 0x08 // I: sent by the original initiator of the IKE SA
	FlagVersion   Flags = 0x10 // V: sender can speak a higher major version
	FlagResponse  Flags = 0x20 // R: this message is a response

	// flagsKnown are the bits RFC 7296 defines; the others are cleared
	// when sent and ignored on receipt.
	flagsKnown = FlagInitiator | FlagVersion | FlagResponse
)

func (f Flags) String() string {
	var s []string
	if f&FlagInitiator != 0 {
		s = append(s, "I")
	}
	if f&FlagVersion != 0 {
		s = append(s, "V")
	}
	if f&FlagResponse != 0 {
		s = append(s, "R")
	}
	if rest := f &^ flagsKnown; rest != 0 {
		s = append(s, fmt.Sprintf("%#02x", uint8(rest)))
	}
	return strings.Join(s, "|")
}

// Header is the IKE header.
type Header struct {
	InitiatorSPI uint64
	ResponderSPI uint64
	// NextPayload is the type of the first payload. Decoding sets it;
	// encoding computes it and ignores this value.
	NextPayload PayloadType
	// MinorVersion is kept as received (RFC 7296 asks receivers to
	// ignore it) and sent as given, normally 0. The major version is
	// always 2.
	MinorVersion uint8
	ExchangeType ExchangeType
	Flags        Flags
	MessageID    uint32
	// Length is the length of the whole message. Decoding sets it;
	// encoding computes it and ignores this value.
	Length uint32
}

// IsResponse reports whether the R flag is set.
func (h *Header) IsResponse() bool { return h.Flags&FlagResponse != 0 }

// IsInitiator reports whether the I flag is set.
func (h *Header) IsInitiator() bool { return h.Flags&FlagInitiator != 0 }

// UnmarshalHeader decodes the IKE header at the start of b, b being the
// whole message: it checks the major version and that the Length field
// matches len(b). Reserved flag bits are cleared.
//
// A caller takes the header this way when the payloads fail to decode, to
// answer INVALID_SYNTAX or UNSUPPORTED_CRITICAL_PAYLOAD with the right SPIs
// and message ID. When b holds at least HeaderLen octets the returned
// Header is filled in even with an error (ErrInvalidMajorVersion: answer
// INVALID_MAJOR_VERSION; RFC 7296 section 2.5).
func UnmarshalHeader(b []byte) (Header, error) {
	if len(b) < HeaderLen {
		return Header{}, fmt.Errorf("decode IKE header: %d octets: %w", len(b), ErrTruncated)
	}
	h := Header{
		InitiatorSPI: binary.BigEndian.Uint64(b[0:8]),
		ResponderSPI: binary.BigEndian.Uint64(b[8:16]),
		NextPayload:  PayloadType(b[16]),
		MinorVersion: b[17] & 0x0f,
		ExchangeType: ExchangeType(b[18]),
		Flags:        Flags(b[19]) & flagsKnown,
		MessageID:    binary.BigEndian.Uint32(b[20:24]),
		Length:       binary.BigEndian.Uint32(b[24:28]),
	}
	if major := b[17] >> 4; major != MajorVersion {
		return h, fmt.Errorf("decode IKE header: version %d.%d: %w", major, h.MinorVersion, ErrInvalidMajorVersion)
	}
	if uint64(h.Length) != uint64(len(b)) {
		return h, fmt.Errorf("decode IKE header: length field %d, message %d octets: %w", h.Length, len(b), ErrBadLength)
	}
	if len(b) > MaxMessageLen {
		return h, fmt.Errorf("decode IKE header: %d octets: %w", len(b), ErrTooLarge)
	}
	return h, nil
}

// putHeader writes h into b[:HeaderLen] with the given next payload and
// message length.
func putHeader(b []byte, h *Header, next PayloadType, length int) error {
	if h.MinorVersion > 0x0f {
		return fmt.Errorf("encode IKE header: minor version %d: %w", h.MinorVersion, ErrTooLarge)
	}
	if length > MaxMessageLen {
		return fmt.Errorf("encode IKE header: message of %d octets: %w", length, ErrTooLarge)
	}
	binary.BigEndian.PutUint64(b[0:8], h.InitiatorSPI)
	binary.BigEndian.PutUint64(b[8:16], h.ResponderSPI)
	b[16] = byte(next)
	b[17] = MajorVersion<<4 | h.MinorVersion
	b[18] = byte(h.ExchangeType)
	b[19] = byte(h.Flags & flagsKnown)
	binary.BigEndian.PutUint32(b[20:24], h.MessageID)
	binary.BigEndian.PutUint32(b[24:28], uint32(length))
	return nil
}
