package message

import (
	"encoding/binary"
	"fmt"
)

// Generic payload header (RFC 7296 section 3.2), in front of every payload:
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Next Payload  |C|  RESERVED   |         Payload Length        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// Payload Length counts the generic header. The critical bit (C) applies to
// this payload, not to the one Next Payload names; receivers ignore it for
// types they know and senders clear it for types RFC 7296 defines.
const (
	genericHeaderLen = 4
	criticalBit      = 0x80
	maxPayloadLen    = 0xffff // Payload Length is two octets

	// MaxPayloads bounds the payloads of one message (or of one SK body):
	// far above any real exchange, far below what 64 KiB of four-octet
	// payloads could claim.
	MaxPayloads = 1024
)

// Payload is one IKEv2 payload. Each payload type has its own struct (a
// pointer to it implements Payload); *Unknown carries types this package
// does not interpret. The set is closed: the generic header and the chain
// of Next Payload fields are written by the encoder, not by payloads.
type Payload interface {
	// Type is the payload type that names this payload in the previous
	// Next Payload field.
	Type() PayloadType
	// appendBody appends the payload after its generic header.
	appendBody(b []byte) ([]byte, error)
}

// decodeBody decodes the body of a payload of a type this package knows
// (other than SK and SKF, which decodeChain handles). It returns nil, nil
// for an unknown type.
func decodeBody(t PayloadType, body []byte) (Payload, error) {
	switch t {
	case PayloadSA:
		return unmarshalSA(body)
	case PayloadKE:
		return unmarshalKE(body)
	case PayloadIDi:
		id, err := unmarshalIdentification(body)
		return &IDi{id}, err
	case PayloadIDr:
		id, err := unmarshalIdentification(body)
		return &IDr{id}, err
	case PayloadCERT:
		return unmarshalCertificate(body)
	case PayloadCERTREQ:
		return unmarshalCertificateRequest(body)
	case PayloadAUTH:
		return unmarshalAuthentication(body)
	case PayloadNonce:
		return &Nonce{Data: clone(body)}, nil
	case PayloadN:
		return unmarshalNotify(body)
	case PayloadD:
		return unmarshalDelete(body)
	case PayloadV:
		return &VendorID{Data: clone(body)}, nil
	case PayloadTSi:
		ts, err := unmarshalTrafficSelectors(body)
		return &TSi{ts}, err
	case PayloadTSr:
		ts, err := unmarshalTrafficSelectors(body)
		return &TSr{ts}, err
	case PayloadCP:
		return unmarshalConfiguration(body)
	case PayloadEAP:
		return unmarshalEAP(body)
	}
	return nil, nil
}

// knownType reports whether decodeChain decodes t into its own struct
// rather than into *Unknown.
func knownType(t PayloadType) bool {
	return t >= PayloadSA && t <= PayloadEAP || t == PayloadSKF
}

// decodeChain decodes the payloads in b, the first of type first, following
// the Next Payload fields until one is zero. Outside SK (inner false) an SK
// or SKF payload ends the chain, because its Next Payload names the first
// payload inside it; it must be the last octets of b. Inside SK (inner
// true) SK and SKF are refused: encrypted payloads do not nest.
func decodeChain(b []byte, first PayloadType, inner bool) ([]Payload, error) {
	// Room for what an IKE_SA_INIT or IKE_AUTH carries, in one allocation
	// instead of growing: five allocations per message otherwise.
	ps := make([]Payload, 0, 12)
	for t := first; t != PayloadNone; {
		if len(ps) == MaxPayloads {
			return nil, fmt.Errorf("more than %d payloads: %w", MaxPayloads, ErrTooLarge)
		}
		if len(b) < genericHeaderLen {
			return nil, fmt.Errorf("payload %d (%v): generic header of %d octets: %w", len(ps)+1, t, len(b), ErrTruncated)
		}
		next := PayloadType(b[0])
		critical := b[1]&criticalBit != 0
		n := int(binary.BigEndian.Uint16(b[2:4]))
		if n < genericHeaderLen {
			return nil, fmt.Errorf("payload %d (%v): length %d: %w", len(ps)+1, t, n, ErrBadLength)
		}
		if n > len(b) {
			return nil, fmt.Errorf("payload %d (%v): length %d, %d octets left: %w", len(ps)+1, t, n, len(b), ErrTruncated)
		}
		body := b[genericHeaderLen:n]
		b = b[n:]

		if t == PayloadSK || t == PayloadSKF {
			if inner {
				return nil, fmt.Errorf("payload %d: %v inside an encrypted payload: %w", len(ps)+1, t, ErrPayloadPlacement)
			}
			if len(b) != 0 {
				return nil, fmt.Errorf("payload %d: %v followed by %d octets: %w", len(ps)+1, t, len(b), ErrPayloadPlacement)
			}
			var p Payload
			var err error
			if t == PayloadSK {
				p, err = unmarshalEncrypted(next, body)
			} else {
				p, err = unmarshalEncryptedFragment(next, body)
			}
			if err != nil {
				return nil, fmt.Errorf("payload %d (%v): %w", len(ps)+1, t, err)
			}
			return append(ps, p), nil
		}

		p, err := decodeBody(t, body)
		if err != nil {
			return nil, fmt.Errorf("payload %d (%v): %w", len(ps)+1, t, err)
		}
		if p == nil {
			if critical {
				return nil, &UnsupportedCriticalPayloadError{Type: t}
			}
			p = &Unknown{PayloadType: t, Body: clone(body)}
		}
		ps = append(ps, p)
		t = next
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%d octets after the last payload: %w", len(b), ErrBadLength)
	}
	return ps, nil
}

// appendChain appends ps with their generic headers, chaining Next Payload
// fields. An *Encrypted or *EncryptedFragment must come last (its Next
// Payload names the first payload it encloses), and is refused when inner.
func appendChain(b []byte, ps []Payload, inner bool) ([]byte, error) {
	if len(ps) > MaxPayloads {
		return b, fmt.Errorf("encode: %d payloads: %w", len(ps), ErrTooLarge)
	}
	for i, p := range ps {
		if p == nil {
			return b, fmt.Errorf("encode payload %d: nil: %w", i+1, ErrMalformed)
		}
		next := PayloadNone
		if i+1 < len(ps) {
			if ps[i+1] == nil {
				return b, fmt.Errorf("encode payload %d: nil: %w", i+2, ErrMalformed)
			}
			next = ps[i+1].Type()
		}
		var flags byte
		switch q := p.(type) {
		case *Encrypted, *EncryptedFragment:
			if inner || i != len(ps)-1 {
				return b, fmt.Errorf("encode payload %d (%v): not last in the outer message: %w", i+1, p.Type(), ErrPayloadPlacement)
			}
			if e, ok := q.(*Encrypted); ok {
				next = e.NextPayload
			} else {
				next = q.(*EncryptedFragment).NextPayload
			}
		case *Unknown:
			if q.Critical {
				flags = criticalBit
			}
		}
		start := len(b)
		b = append(b, byte(next), flags, 0, 0)
		var err error
		b, err = p.appendBody(b)
		if err != nil {
			return b, fmt.Errorf("encode payload %d (%v): %w", i+1, p.Type(), err)
		}
		n := len(b) - start
		if n > maxPayloadLen {
			return b, fmt.Errorf("encode payload %d (%v): %d octets: %w", i+1, p.Type(), n, ErrTooLarge)
		}
		binary.BigEndian.PutUint16(b[start+2:], uint16(n))
	}
	return b, nil
}

// clone copies b, returning nil for an empty slice so that decoded
// messages compare equal however their empty fields arrived.
func clone(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return append([]byte(nil), b...)
}
