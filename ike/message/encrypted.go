package message

import (
	"encoding/binary"
	"fmt"
)

// Protector encrypts and authenticates the body of SK and SKF payloads. The
// crypto package implements it for the keys of one direction of an IKE SA;
// this package only frames what it produces.
//
// The associated data handed to Seal and Open is the message from the
// first octet of the IKE header to the last octet of the SK generic header
// (for SKF: of the Fragment Number and Total Fragments fields), as RFC 5282
// section 5.1 and RFC 7383 section 2.5 define it for AEAD ciphers. For
// other ciphers the integrity checksum covers associatedData || IV ||
// ciphertext (RFC 7296 section 3.14). The IKE header in it already holds
// the final message length, computed from SealedLen.
type Protector interface {
	// SealedLen is the SK payload body length (IV, ciphertext including
	// padding and Pad Length, ICV) for n plaintext octets. It must not
	// decrease as n grows.
	SealedLen(n int) int
	// Seal encrypts plaintext and returns the body, exactly
	// SealedLen(len(plaintext)) octets. It must not modify
	// associatedData or plaintext.
	Seal(associatedData, plaintext []byte) ([]byte, error)
	// Open verifies and decrypts a body and returns the plaintext with
	// padding and Pad Length removed.
	Open(associatedData, body []byte) ([]byte, error)
}

// MarshalEncrypted encodes m with all of m.Payloads inside one SK payload
// sealed by p: the header's Next Payload is SK, SK's Next Payload is the
// first inner payload. m.Payloads must not hold SK or SKF.
func (m *Message) MarshalEncrypted(p Protector) ([]byte, error) {
	plaintext, err := appendChain(nil, m.Payloads, true)
	if err != nil {
		return nil, err
	}
	return sealSK(&m.Header, firstType(m.Payloads), plaintext, p)
}

// sealSK builds a message whose only payload is SK holding plaintext.
func sealSK(h *Header, first PayloadType, plaintext []byte, p Protector) ([]byte, error) {
	bodyLen := p.SealedLen(len(plaintext))
	if bodyLen < 0 || genericHeaderLen+bodyLen > maxPayloadLen {
		return nil, fmt.Errorf("encode SK: body of %d octets: %w", bodyLen, ErrTooLarge)
	}
	total := skAADLen + bodyLen
	b := make([]byte, skAADLen, total)
	if err := putHeader(b, h, PayloadSK, total); err != nil {
		return nil, err
	}
	b[HeaderLen] = byte(first)
	binary.BigEndian.PutUint16(b[HeaderLen+2:], uint16(genericHeaderLen+bodyLen))
	// The capacity limit keeps a Seal that appends to its associated
	// data from writing into b.
	body, err := p.Seal(b[:skAADLen:skAADLen], plaintext)
	if err != nil {
		return nil, fmt.Errorf("encode SK: %w", err)
	}
	if len(body) != bodyLen {
		return nil, fmt.Errorf("encode SK: Seal returned %d octets, SealedLen %d: %w", len(body), bodyLen, ErrProtector)
	}
	return append(b, body...), nil
}

// UnmarshalEncrypted decodes a message whose only payload is SK: it checks
// the framing, verifies and decrypts the body with p, and decodes the inner
// payloads starting at SK's Next Payload. The returned message's Payloads
// are the inner payloads; its Header is as received (Next Payload SK).
//
// Unencrypted payloads in front of SK, which no IKEv2 exchange uses, are
// refused with ErrPayloadPlacement rather than mixed with the protected
// ones. An SKF message is refused too: use UnmarshalFragment. Only errors
// in the inner payloads, found after the integrity check passed, wrap
// ErrVerifiedContent.
func UnmarshalEncrypted(b []byte, p Protector) (*Message, error) {
	h, err := UnmarshalHeader(b)
	if err != nil {
		return nil, err
	}
	if h.NextPayload != PayloadSK {
		return nil, fmt.Errorf("decode %v message %d: first payload %v, want SK: %w", h.ExchangeType, h.MessageID, h.NextPayload, ErrPayloadPlacement)
	}
	first, body, err := sealedBody(b, skAADLen)
	if err != nil {
		return nil, fmt.Errorf("decode %v message %d: SK: %w", h.ExchangeType, h.MessageID, err)
	}
	plaintext, err := p.Open(b[:skAADLen:skAADLen], body)
	if err != nil {
		return nil, fmt.Errorf("decode %v message %d: open SK: %w", h.ExchangeType, h.MessageID, err)
	}
	ps, err := decodeChain(plaintext, first, true)
	if err != nil {
		return nil, fmt.Errorf("decode %v message %d: in SK: %w: %w", h.ExchangeType, h.MessageID, ErrVerifiedContent, err)
	}
	return &Message{Header: h, Payloads: ps}, nil
}

// sealedBody checks the generic header of the SK or SKF payload that
// follows the IKE header and fills the rest of b, and returns its Next
// Payload and the body after the first aadLen octets of the message.
func sealedBody(b []byte, aadLen int) (PayloadType, []byte, error) {
	if len(b) < aadLen {
		return 0, nil, fmt.Errorf("%d octets: %w", len(b)-HeaderLen, ErrTruncated)
	}
	n := int(binary.BigEndian.Uint16(b[HeaderLen+2:]))
	switch rest := len(b) - HeaderLen; {
	case n < aadLen-HeaderLen:
		return 0, nil, fmt.Errorf("payload length %d: %w", n, ErrBadLength)
	case n > rest:
		return 0, nil, fmt.Errorf("payload length %d, %d octets left: %w", n, rest, ErrTruncated)
	case n < rest:
		return 0, nil, fmt.Errorf("payload length %d, followed by %d octets: %w", n, rest-n, ErrPayloadPlacement)
	}
	return PayloadType(b[HeaderLen]), b[aadLen:], nil
}
