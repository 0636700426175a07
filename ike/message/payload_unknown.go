package message

import "fmt"

// Unknown is a payload of a type this package does not interpret. Decoding
// keeps non-critical ones so that the caller can log them; a critical one
// is an *UnsupportedCriticalPayloadError instead.
type Unknown struct {
	PayloadType PayloadType
	// Critical sets the critical bit when encoding. Decoded Unknown
	// payloads never have it.
	Critical bool
	Body     []byte
}

func (p *Unknown) Type() PayloadType { return p.PayloadType }

func (p *Unknown) appendBody(b []byte) ([]byte, error) {
	if p.PayloadType == PayloadNone || knownType(p.PayloadType) {
		return b, fmt.Errorf("unknown payload with type %v: %w", p.PayloadType, ErrMalformed)
	}
	return append(b, p.Body...), nil
}
