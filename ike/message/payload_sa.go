package message

import (
	"encoding/binary"
	"fmt"
)

// Security Association payload (RFC 7296 section 3.3): after the generic
// header, one or more Proposal substructures.
//
// Proposal substructure (section 3.3.1):
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Last Substruc |   RESERVED    |         Proposal Length       |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Proposal Num  |  Protocol ID  |    SPI Size   |Num  Transforms|
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                        SPI (variable)                         ~
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                        <Transforms>                           ~
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// Transform substructure (section 3.3.2):
//
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Last Substruc |   RESERVED    |        Transform Length       |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|Transform Type |   RESERVED    |          Transform ID         |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                      Transform Attributes                     ~
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// Transform attribute (section 3.3.5), Type/Value (AF=1) or
// Type/Length/Value (AF=0):
//
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|A|       Attribute Type        |    AF=0  Attribute Length     |
//	|F|                             |    AF=1  Attribute Value      |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                   AF=0  Attribute Value                       |
//	|                   AF=1  Not Transmitted                       |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
const (
	proposalHeaderLen  = 8 // Last Substruc through Num Transforms
	transformHeaderLen = 8 // Last Substruc through Transform ID
	attributeHeaderLen = 4 // AF, Attribute Type, Length or Value

	lastSubstrucLast      = 0 // no further proposal or transform
	lastSubstrucProposal  = 2 // another proposal follows
	lastSubstrucTransform = 3 // another transform follows

	attributeFormatTV = 0x8000 // AF bit: Type/Value, no length

	// AttributeKeyLength is the Key Length transform attribute, in bits,
	// always in TV format.
	AttributeKeyLength = 14

	// maxProposals: Proposal Num is one octet.
	maxProposals = 255
)

// SecurityAssociation is the SA payload: proposals, most preferred first.
type SecurityAssociation struct {
	Proposals []Proposal
}

// Proposal is one Proposal substructure.
type Proposal struct {
	// Number is the Proposal Num: 1, 2, ... in an offer; the number of
	// the accepted proposal in a reply.
	Number   uint8
	Protocol ProtocolID
	// SPI is absent for the initial IKE SA, 8 octets for an IKE SA
	// rekey, 4 for AH and ESP.
	SPI        []byte
	Transforms []Transform
}

// Transform is one Transform substructure. Type and ID stay numbers here:
// package transform owns their names and meaning.
type Transform struct {
	Type uint8
	ID   uint16
	// KeyLength is the Key Length attribute in bits, 0 when absent.
	KeyLength uint16
	// Attributes are the other attributes, in the order received.
	Attributes []TransformAttribute
}

// TransformAttribute is a transform attribute other than Key Length.
type TransformAttribute struct {
	// Type is the 15-bit Attribute Type.
	Type uint16
	// TV marks the Type/Value format: Value is then exactly 2 octets.
	TV    bool
	Value []byte
}

func (*SecurityAssociation) Type() PayloadType { return PayloadSA }

func (p *SecurityAssociation) appendBody(b []byte) ([]byte, error) {
	if len(p.Proposals) > maxProposals {
		return b, fmt.Errorf("%d proposals: %w", len(p.Proposals), ErrTooLarge)
	}
	for i := range p.Proposals {
		last := i == len(p.Proposals)-1
		var err error
		if b, err = p.Proposals[i].append(b, last); err != nil {
			return b, fmt.Errorf("proposal %d: %w", i+1, err)
		}
	}
	return b, nil
}

func (p *Proposal) append(b []byte, last bool) ([]byte, error) {
	if err := checkProposalSPI(p.Protocol, len(p.SPI)); err != nil {
		return b, err
	}
	if len(p.Transforms) > 0xff {
		return b, fmt.Errorf("%d transforms: %w", len(p.Transforms), ErrTooLarge)
	}
	start := len(b)
	more := byte(lastSubstrucProposal)
	if last {
		more = lastSubstrucLast
	}
	b = append(b, more, 0, 0, 0, p.Number, byte(p.Protocol), byte(len(p.SPI)), byte(len(p.Transforms)))
	b = append(b, p.SPI...)
	for i := range p.Transforms {
		var err error
		if b, err = p.Transforms[i].append(b, i == len(p.Transforms)-1); err != nil {
			return b, fmt.Errorf("transform %d: %w", i+1, err)
		}
	}
	return putLength16(b, start, "proposal")
}

func (t *Transform) append(b []byte, last bool) ([]byte, error) {
	start := len(b)
	more := byte(lastSubstrucTransform)
	if last {
		more = lastSubstrucLast
	}
	b = append(b, more, 0, 0, 0, t.Type, 0)
	b = binary.BigEndian.AppendUint16(b, t.ID)
	if t.KeyLength != 0 {
		b = binary.BigEndian.AppendUint16(b, attributeFormatTV|AttributeKeyLength)
		b = binary.BigEndian.AppendUint16(b, t.KeyLength)
	}
	for i, a := range t.Attributes {
		if a.Type&attributeFormatTV != 0 {
			return b, fmt.Errorf("attribute %d: type %#x does not fit 15 bits: %w", i+1, a.Type, ErrTooLarge)
		}
		if a.Type == AttributeKeyLength {
			return b, fmt.Errorf("attribute %d: Key Length belongs in Transform.KeyLength: %w", i+1, ErrMalformed)
		}
		if a.TV {
			if len(a.Value) != 2 {
				return b, fmt.Errorf("attribute %d: TV value of %d octets: %w", i+1, len(a.Value), ErrMalformed)
			}
			b = binary.BigEndian.AppendUint16(b, attributeFormatTV|a.Type)
			b = append(b, a.Value...)
			continue
		}
		if len(a.Value) > 0xffff {
			return b, fmt.Errorf("attribute %d: %d octets: %w", i+1, len(a.Value), ErrTooLarge)
		}
		b = binary.BigEndian.AppendUint16(b, a.Type)
		b = binary.BigEndian.AppendUint16(b, uint16(len(a.Value)))
		b = append(b, a.Value...)
	}
	return putLength16(b, start, "transform")
}

// putLength16 writes the length of the substructure that began at start
// into its octets 2 and 3.
func putLength16(b []byte, start int, what string) ([]byte, error) {
	n := len(b) - start
	if n > 0xffff {
		return b, fmt.Errorf("%s of %d octets: %w", what, n, ErrTooLarge)
	}
	binary.BigEndian.PutUint16(b[start+2:], uint16(n))
	return b, nil
}

// checkProposalSPI checks the SPI size of a proposal against its protocol
// (RFC 7296 section 3.3.1): none or 8 octets for IKE, 4 for AH and ESP.
// Protocols this package does not know are not checked.
func checkProposalSPI(p ProtocolID, n int) error {
	want, known := spiSize(p)
	switch {
	case n > 0xff:
		return fmt.Errorf("SPI of %d octets: %w", n, ErrTooLarge)
	case !known, n == want, p == ProtocolIKE && n == 0:
		return nil
	}
	return fmt.Errorf("SPI size %d for protocol %v: %w", n, p, ErrMalformed)
}

func unmarshalSA(b []byte) (*SecurityAssociation, error) {
	sa := &SecurityAssociation{}
	for len(b) > 0 {
		if len(sa.Proposals) == maxProposals {
			return nil, fmt.Errorf("more than %d proposals: %w", maxProposals, ErrTooLarge)
		}
		n := len(sa.Proposals) + 1
		if len(b) < proposalHeaderLen {
			return nil, fmt.Errorf("proposal %d: header of %d octets: %w", n, len(b), ErrTruncated)
		}
		more, plen := b[0], int(binary.BigEndian.Uint16(b[2:4]))
		if plen < proposalHeaderLen {
			return nil, fmt.Errorf("proposal %d: length %d: %w", n, plen, ErrBadLength)
		}
		if plen > len(b) {
			return nil, fmt.Errorf("proposal %d: length %d, %d octets left: %w", n, plen, len(b), ErrTruncated)
		}
		p, err := unmarshalProposal(b[:plen])
		if err != nil {
			return nil, fmt.Errorf("proposal %d: %w", n, err)
		}
		sa.Proposals = append(sa.Proposals, p)
		b = b[plen:]
		switch {
		case more == lastSubstrucLast && len(b) != 0:
			return nil, fmt.Errorf("proposal %d: marked last, %d octets follow: %w", n, len(b), ErrBadLength)
		case more == lastSubstrucProposal && len(b) == 0:
			return nil, fmt.Errorf("proposal %d: announces another, none follows: %w", n, ErrTruncated)
		case more != lastSubstrucLast && more != lastSubstrucProposal:
			return nil, fmt.Errorf("proposal %d: Last Substruc %d: %w", n, more, ErrMalformed)
		}
	}
	return sa, nil
}

// unmarshalProposal decodes one proposal, b being exactly Proposal Length
// octets.
func unmarshalProposal(b []byte) (Proposal, error) {
	p := Proposal{Number: b[4], Protocol: ProtocolID(b[5])}
	spiLen, count := int(b[6]), int(b[7])
	b = b[proposalHeaderLen:]
	if spiLen > len(b) {
		return p, fmt.Errorf("SPI size %d, %d octets left: %w", spiLen, len(b), ErrTruncated)
	}
	if err := checkProposalSPI(p.Protocol, spiLen); err != nil {
		return p, err
	}
	p.SPI = clone(b[:spiLen])
	b = b[spiLen:]
	if count > 0 {
		p.Transforms = make([]Transform, 0, min(count, len(b)/transformHeaderLen))
	}
	for len(b) > 0 {
		n := len(p.Transforms) + 1
		if n > count {
			return p, fmt.Errorf("%d octets after the %d transforms announced: %w", len(b), count, ErrBadLength)
		}
		if len(b) < transformHeaderLen {
			return p, fmt.Errorf("transform %d: header of %d octets: %w", n, len(b), ErrTruncated)
		}
		more, tlen := b[0], int(binary.BigEndian.Uint16(b[2:4]))
		if tlen < transformHeaderLen {
			return p, fmt.Errorf("transform %d: length %d: %w", n, tlen, ErrBadLength)
		}
		if tlen > len(b) {
			return p, fmt.Errorf("transform %d: length %d, %d octets left: %w", n, tlen, len(b), ErrTruncated)
		}
		t, err := unmarshalTransform(b[:tlen])
		if err != nil {
			return p, fmt.Errorf("transform %d: %w", n, err)
		}
		p.Transforms = append(p.Transforms, t)
		b = b[tlen:]
		switch {
		case more == lastSubstrucLast && (len(b) != 0 || n != count):
			return p, fmt.Errorf("transform %d of %d announced: marked last: %w", n, count, ErrMalformed)
		case more == lastSubstrucTransform && len(b) == 0:
			return p, fmt.Errorf("transform %d: announces another, none follows: %w", n, ErrTruncated)
		case more != lastSubstrucLast && more != lastSubstrucTransform:
			return p, fmt.Errorf("transform %d: Last Substruc %d: %w", n, more, ErrMalformed)
		}
	}
	if len(p.Transforms) != count {
		return p, fmt.Errorf("%d transforms announced, %d present: %w", count, len(p.Transforms), ErrMalformed)
	}
	return p, nil
}

// unmarshalTransform decodes one transform, b being exactly Transform
// Length octets.
func unmarshalTransform(b []byte) (Transform, error) {
	t := Transform{Type: b[4], ID: binary.BigEndian.Uint16(b[6:8])}
	b = b[transformHeaderLen:]
	keyLengthSeen := false
	for len(b) > 0 {
		n := len(t.Attributes) + 1
		if len(b) < attributeHeaderLen {
			return t, fmt.Errorf("attribute: header of %d octets: %w", len(b), ErrTruncated)
		}
		typ := binary.BigEndian.Uint16(b[0:2])
		tv := typ&attributeFormatTV != 0
		typ &^= attributeFormatTV
		if typ == AttributeKeyLength {
			if !tv {
				return t, fmt.Errorf("Key Length attribute in TLV format: %w", ErrMalformed)
			}
			if keyLengthSeen {
				return t, fmt.Errorf("Key Length attribute twice: %w", ErrMalformed)
			}
			keyLengthSeen = true
			t.KeyLength = binary.BigEndian.Uint16(b[2:4])
			if t.KeyLength == 0 {
				return t, fmt.Errorf("Key Length attribute of 0 bits: %w", ErrMalformed)
			}
			b = b[attributeHeaderLen:]
			continue
		}
		if tv {
			t.Attributes = append(t.Attributes, TransformAttribute{Type: typ, TV: true, Value: clone(b[2:4])})
			b = b[attributeHeaderLen:]
			continue
		}
		alen := int(binary.BigEndian.Uint16(b[2:4]))
		if attributeHeaderLen+alen > len(b) {
			return t, fmt.Errorf("attribute %d: length %d, %d octets left: %w", n, alen, len(b)-attributeHeaderLen, ErrTruncated)
		}
		t.Attributes = append(t.Attributes, TransformAttribute{Type: typ, Value: clone(b[attributeHeaderLen : attributeHeaderLen+alen])})
		b = b[attributeHeaderLen+alen:]
	}
	return t, nil
}
