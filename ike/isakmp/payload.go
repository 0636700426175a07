package isakmp

import (
	"encoding/binary"
	"fmt"
)

// Generic payload header (RFC 2408 section 3.2):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	! Next Payload  !   RESERVED    !         Payload Length        !
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
const genericHeaderLen = 4

// Payload is one ISAKMP payload. Body returns its encoding without the
// generic header: what the RFCs call the payload's "_b" form (SAi_b,
// IDii_b, Ni_b).
type Payload interface {
	Type() PayloadType
	Body() ([]byte, error)
}

// MarshalPayloads encodes a payload chain: the type of the first payload
// and the octets of all of them.
func MarshalPayloads(ps []Payload) (PayloadType, []byte, error) {
	var out []byte
	for i, p := range ps {
		body, err := p.Body()
		if err != nil {
			return 0, nil, fmt.Errorf("encode %v payload: %w", p.Type(), err)
		}
		if genericHeaderLen+len(body) > 0xffff {
			return 0, nil, fmt.Errorf("encode %v payload: %d octets: %w", p.Type(), len(body), ErrTooLarge)
		}
		next := PayloadNone
		if i+1 < len(ps) {
			next = ps[i+1].Type()
		}
		out = append(out, byte(next), 0)
		out = binary.BigEndian.AppendUint16(out, uint16(genericHeaderLen+len(body)))
		out = append(out, body...)
	}
	first := PayloadNone
	if len(ps) > 0 {
		first = ps[0].Type()
	}
	return first, out, nil
}

// maxPayloads bounds a chain, so that a hostile message of tiny payloads
// costs little.
const maxPayloads = 512

// ParsePayloads decodes the payload chain in b that starts with a payload
// of type first, up to the payload whose Next Payload is NONE. It returns
// the payloads and the octets they took: a decrypted body continues with
// padding, which the caller ignores (RFC 2408 section 3.1).
func ParsePayloads(first PayloadType, b []byte) ([]Payload, int, error) {
	var out []Payload
	off := 0
	for t := first; t != PayloadNone; {
		if len(out) == maxPayloads {
			return nil, 0, fmt.Errorf("more than %d payloads: %w", maxPayloads, ErrTooLarge)
		}
		rest := b[off:]
		if len(rest) < genericHeaderLen {
			return nil, 0, fmt.Errorf("decode %v payload: header: %w", t, ErrTruncated)
		}
		n := int(binary.BigEndian.Uint16(rest[2:]))
		if n < genericHeaderLen {
			return nil, 0, fmt.Errorf("decode %v payload: length %d: %w", t, n, ErrBadLength)
		}
		if n > len(rest) {
			return nil, 0, fmt.Errorf("decode %v payload: length %d, %d octets left: %w", t, n, len(rest), ErrTruncated)
		}
		p, err := decodePayload(t, rest[genericHeaderLen:n])
		if err != nil {
			return nil, 0, fmt.Errorf("decode %v payload: %w", t, err)
		}
		out = append(out, p)
		t = PayloadType(rest[0])
		off += n
	}
	return out, off, nil
}

func decodePayload(t PayloadType, b []byte) (Payload, error) {
	b = append([]byte(nil), b...) // payloads own their octets
	switch t {
	case PayloadSA:
		return decodeSA(b)
	case PayloadKE:
		return &KeyExchange{Data: orNil(b)}, nil
	case PayloadID:
		return decodeID(b)
	case PayloadCert:
		if len(b) < 1 {
			return nil, ErrTruncated
		}
		return &Certificate{Encoding: CertEncoding(b[0]), Data: orNil(b[1:])}, nil
	case PayloadCertReq:
		if len(b) < 1 {
			return nil, ErrTruncated
		}
		return &CertificateRequest{Encoding: CertEncoding(b[0]), Authority: orNil(b[1:])}, nil
	case PayloadHash:
		return &Hash{Data: orNil(b)}, nil
	case PayloadSig:
		return &Signature{Data: orNil(b)}, nil
	case PayloadNonce:
		return &Nonce{Data: orNil(b)}, nil
	case PayloadNotify:
		return decodeNotify(b)
	case PayloadDelete:
		return decodeDelete(b)
	case PayloadVendorID:
		return &VendorID{Data: orNil(b)}, nil
	case PayloadNATD, PayloadNATDDraft:
		return &NATD{Hash: orNil(b), Draft: t == PayloadNATDDraft}, nil
	case PayloadNATOA, PayloadNATOADraft:
		return decodeNATOA(b, t == PayloadNATOADraft)
	case PayloadFragment:
		return decodeFragment(b)
	case PayloadAttribute:
		return decodeConfigAttributes(b)
	case PayloadProposal, PayloadTransform:
		return nil, fmt.Errorf("substructure outside an SA payload: %w", ErrMalformed)
	}
	return &Unknown{PayloadType: t, Data: orNil(b)}, nil
}

// Message is a decoded plaintext message, or an encrypted one after the
// caller decrypted its body.
type Message struct {
	Header   Header
	Payloads []Payload
}

// Unmarshal decodes an unencrypted message. Messages with the E flag are
// decoded with UnmarshalHeader and, after decryption, ParsePayloads.
func Unmarshal(b []byte) (*Message, error) {
	h, err := UnmarshalHeader(b)
	if err != nil {
		return nil, err
	}
	if h.Flags&FlagEncryption != 0 {
		return nil, fmt.Errorf("decode ISAKMP message: encrypted: %w", ErrMalformed)
	}
	ps, n, err := ParsePayloads(h.NextPayload, b[HeaderLen:])
	if err != nil {
		return nil, err
	}
	if n != len(b)-HeaderLen {
		return nil, fmt.Errorf("decode ISAKMP message: %d octets after the last payload: %w", len(b)-HeaderLen-n, ErrBadLength)
	}
	return &Message{Header: h, Payloads: ps}, nil
}

// Marshal encodes the message unencrypted (the E flag is cleared).
func (m *Message) Marshal() ([]byte, error) {
	first, body, err := MarshalPayloads(m.Payloads)
	if err != nil {
		return nil, err
	}
	h := m.Header
	h.Flags &^= FlagEncryption
	out, err := AppendHeader(make([]byte, 0, HeaderLen+len(body)), &h, first, HeaderLen+len(body))
	if err != nil {
		return nil, err
	}
	return append(out, body...), nil
}

// AssembleEncrypted builds an encrypted message: the header (with the E
// flag) naming first as the first payload, and the ciphertext.
func AssembleEncrypted(h Header, first PayloadType, ciphertext []byte) ([]byte, error) {
	h.Flags |= FlagEncryption
	out, err := AppendHeader(make([]byte, 0, HeaderLen+len(ciphertext)), &h, first, HeaderLen+len(ciphertext))
	if err != nil {
		return nil, err
	}
	return append(out, ciphertext...), nil
}

// Find returns the first payload of type T.
func Find[T Payload](ps []Payload) (T, bool) {
	for _, p := range ps {
		if x, ok := p.(T); ok {
			return x, true
		}
	}
	var zero T
	return zero, false
}

// All returns the payloads of type T.
func All[T Payload](ps []Payload) []T {
	var out []T
	for _, p := range ps {
		if x, ok := p.(T); ok {
			out = append(out, x)
		}
	}
	return out
}

// orNil keeps decoded empty fields nil, as locally built payloads have them.
func orNil(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}
