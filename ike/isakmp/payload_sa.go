package isakmp

import (
	"encoding/binary"
	"fmt"
)

// SecurityAssociation is the SA payload (RFC 2408 section 3.4, with the
// IPsec DOI's 32-bit situation of RFC 2407 section 4.6.1):
//
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	!              Domain of Interpretation  (DOI)                  !
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	!                           Situation                           ~
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                   Proposal payloads ...                       ~
//
// Labeled domains (SIT_SECRECY, SIT_INTEGRITY) are not supported: their
// situations make decoding fail.
type SecurityAssociation struct {
	DOI       DOI
	Situation uint32
	Proposals []Proposal
	// Raw is the body as received (SAi_b for HASH_I), nil for payloads
	// built locally.
	Raw []byte
}

// Proposal is a proposal substructure (RFC 2408 section 3.5):
//
//	! Next Payload  !   RESERVED    !         Payload Length        !
//	!  Proposal #   !  Protocol-Id  !    SPI Size   !# of Transforms!
//	!                        SPI (variable)                         !
//	~                        <Transforms>                           ~
//
// Proposals with the same number form one offer (AH and ESP together);
// different numbers are alternatives.
type Proposal struct {
	Number     uint8
	Protocol   ProtocolID
	SPI        []byte
	Transforms []Transform
}

// Transform is a transform substructure (RFC 2408 section 3.6):
//
//	! Next Payload  !   RESERVED    !         Payload Length        !
//	!  Transform #  !  Transform-Id !           RESERVED2           !
//	~                        SA Attributes                          ~
type Transform struct {
	Number     uint8
	ID         uint8
	Attributes []Attribute
}

// Attr returns the first attribute of a type.
func (t Transform) Attr(typ uint16) (Attribute, bool) {
	for _, a := range t.Attributes {
		if a.Type == typ {
			return a, true
		}
	}
	return Attribute{}, false
}

func (*SecurityAssociation) Type() PayloadType { return PayloadSA }

func (p *SecurityAssociation) Body() ([]byte, error) {
	if p.Raw != nil {
		return p.Raw, nil
	}
	b := binary.BigEndian.AppendUint32(nil, uint32(p.DOI))
	b = binary.BigEndian.AppendUint32(b, p.Situation)
	for i, pr := range p.Proposals {
		if len(pr.SPI) > 0xff || len(pr.Transforms) > 0xff {
			return nil, fmt.Errorf("proposal %d: %w", pr.Number, ErrTooLarge)
		}
		var tb []byte
		for j, t := range pr.Transforms {
			var ab []byte
			for _, a := range t.Attributes {
				var err error
				if ab, err = a.append(ab); err != nil {
					return nil, err
				}
			}
			next := PayloadNone
			if j+1 < len(pr.Transforms) {
				next = PayloadTransform
			}
			tb = append(tb, byte(next), 0)
			tb = binary.BigEndian.AppendUint16(tb, uint16(8+len(ab)))
			tb = append(tb, t.Number, t.ID, 0, 0)
			tb = append(tb, ab...)
		}
		n := 8 + len(pr.SPI) + len(tb)
		if n > 0xffff {
			return nil, fmt.Errorf("proposal %d: %w", pr.Number, ErrTooLarge)
		}
		next := PayloadNone
		if i+1 < len(p.Proposals) {
			next = PayloadProposal
		}
		b = append(b, byte(next), 0)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
		b = append(b, pr.Number, byte(pr.Protocol), byte(len(pr.SPI)), byte(len(pr.Transforms)))
		b = append(b, pr.SPI...)
		b = append(b, tb...)
	}
	return b, nil
}

func decodeSA(b []byte) (*SecurityAssociation, error) {
	if len(b) < 8 {
		return nil, fmt.Errorf("DOI and situation: %w", ErrTruncated)
	}
	sa := &SecurityAssociation{DOI: DOI(binary.BigEndian.Uint32(b)), Situation: binary.BigEndian.Uint32(b[4:]), Raw: b}
	if sa.DOI != DOIIPsec && sa.DOI != DOIISAKMP {
		return nil, fmt.Errorf("DOI %d: %w", sa.DOI, ErrMalformed)
	}
	if sa.Situation&^SituationIdentityOnly != 0 {
		return nil, fmt.Errorf("situation %#x not supported: %w", sa.Situation, ErrMalformed)
	}
	rest := b[8:]
	if len(rest) == 0 {
		return nil, fmt.Errorf("no proposal: %w", ErrMalformed)
	}
	for next := PayloadProposal; next != PayloadNone; {
		if next != PayloadProposal {
			return nil, fmt.Errorf("substructure %v in SA: %w", next, ErrMalformed)
		}
		if len(sa.Proposals) == 0xff {
			return nil, fmt.Errorf("too many proposals: %w", ErrTooLarge)
		}
		if len(rest) < 8 {
			return nil, fmt.Errorf("proposal header: %w", ErrTruncated)
		}
		n := int(binary.BigEndian.Uint16(rest[2:]))
		if n < 8 || n > len(rest) {
			return nil, fmt.Errorf("proposal length %d of %d: %w", n, len(rest), ErrBadLength)
		}
		pr, err := decodeProposal(rest[:n])
		if err != nil {
			return nil, fmt.Errorf("proposal %d: %w", len(sa.Proposals)+1, err)
		}
		sa.Proposals = append(sa.Proposals, pr)
		next = PayloadType(rest[0])
		rest = rest[n:]
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%d octets after the last proposal: %w", len(rest), ErrBadLength)
	}
	return sa, nil
}

func decodeProposal(b []byte) (Proposal, error) {
	pr := Proposal{Number: b[4], Protocol: ProtocolID(b[5])}
	spiLen, count := int(b[6]), int(b[7])
	if 8+spiLen > len(b) {
		return pr, fmt.Errorf("SPI of %d octets: %w", spiLen, ErrTruncated)
	}
	pr.SPI = orNil(b[8 : 8+spiLen])
	rest := b[8+spiLen:]
	next := PayloadTransform
	for next != PayloadNone {
		if next != PayloadTransform {
			return pr, fmt.Errorf("substructure %v in proposal: %w", next, ErrMalformed)
		}
		if len(rest) < 8 {
			return pr, fmt.Errorf("transform header: %w", ErrTruncated)
		}
		n := int(binary.BigEndian.Uint16(rest[2:]))
		if n < 8 || n > len(rest) {
			return pr, fmt.Errorf("transform length %d of %d: %w", n, len(rest), ErrBadLength)
		}
		attrs, err := parseAttributes(rest[8:n])
		if err != nil {
			return pr, fmt.Errorf("transform %d: %w", rest[4], err)
		}
		pr.Transforms = append(pr.Transforms, Transform{Number: rest[4], ID: rest[5], Attributes: attrs})
		next = PayloadType(rest[0])
		rest = rest[n:]
	}
	if len(rest) != 0 {
		return pr, fmt.Errorf("%d octets after the last transform: %w", len(rest), ErrBadLength)
	}
	if len(pr.Transforms) != count {
		return pr, fmt.Errorf("%d transforms, count says %d: %w", len(pr.Transforms), count, ErrMalformed)
	}
	return pr, nil
}
