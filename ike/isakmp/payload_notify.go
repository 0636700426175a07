package isakmp

import (
	"encoding/binary"
	"fmt"
)

// Notify is the N payload (RFC 2408 section 3.14):
//
//	!              Domain of Interpretation  (DOI)                  !
//	!  Protocol-ID  !   SPI Size    !      Notify Message Type      !
//	~                Security Parameter Index (SPI)                 ~
//	~                       Notification Data                       ~
//
// For ISAKMP the SPI is both cookies (16 octets) or empty; for DPD
// (RFC 3706) the cookies and a 32-bit sequence number as data.
type Notify struct {
	DOI        DOI
	Protocol   ProtocolID
	SPI        []byte
	NotifyType NotifyType
	Data       []byte
}

func (*Notify) Type() PayloadType { return PayloadNotify }

func (p *Notify) Body() ([]byte, error) {
	if len(p.SPI) > 0xff {
		return nil, fmt.Errorf("SPI of %d octets: %w", len(p.SPI), ErrTooLarge)
	}
	b := binary.BigEndian.AppendUint32(nil, uint32(p.DOI))
	b = append(b, byte(p.Protocol), byte(len(p.SPI)))
	b = binary.BigEndian.AppendUint16(b, uint16(p.NotifyType))
	b = append(b, p.SPI...)
	return append(b, p.Data...), nil
}

func decodeNotify(b []byte) (*Notify, error) {
	if len(b) < 8 {
		return nil, fmt.Errorf("notify header: %w", ErrTruncated)
	}
	n := &Notify{DOI: DOI(binary.BigEndian.Uint32(b)), Protocol: ProtocolID(b[4]), NotifyType: NotifyType(binary.BigEndian.Uint16(b[6:]))}
	spi := int(b[5])
	if 8+spi > len(b) {
		return nil, fmt.Errorf("SPI of %d octets: %w", spi, ErrTruncated)
	}
	n.SPI, n.Data = orNil(b[8:8+spi]), orNil(b[8+spi:])
	return n, nil
}

// Delete is the D payload (RFC 2408 section 3.15):
//
//	!              Domain of Interpretation  (DOI)                  !
//	!  Protocol-Id  !   SPI Size    !           # of SPIs           !
//	~               Security Parameter Index(es) (SPI)              ~
type Delete struct {
	DOI      DOI
	Protocol ProtocolID
	SPISize  uint8
	SPIs     [][]byte
}

func (*Delete) Type() PayloadType { return PayloadDelete }

func (p *Delete) Body() ([]byte, error) {
	if len(p.SPIs) > 0xffff {
		return nil, ErrTooLarge
	}
	b := binary.BigEndian.AppendUint32(nil, uint32(p.DOI))
	b = append(b, byte(p.Protocol), p.SPISize)
	b = binary.BigEndian.AppendUint16(b, uint16(len(p.SPIs)))
	for _, s := range p.SPIs {
		if len(s) != int(p.SPISize) {
			return nil, fmt.Errorf("SPI of %d octets, size says %d: %w", len(s), p.SPISize, ErrMalformed)
		}
		b = append(b, s...)
	}
	return b, nil
}

func decodeDelete(b []byte) (*Delete, error) {
	if len(b) < 8 {
		return nil, fmt.Errorf("delete header: %w", ErrTruncated)
	}
	d := &Delete{DOI: DOI(binary.BigEndian.Uint32(b)), Protocol: ProtocolID(b[4]), SPISize: b[5]}
	count := int(binary.BigEndian.Uint16(b[6:]))
	rest := b[8:]
	if d.SPISize == 0 && count != 0 {
		return nil, fmt.Errorf("%d SPIs of size 0: %w", count, ErrMalformed)
	}
	if len(rest) != count*int(d.SPISize) {
		return nil, fmt.Errorf("%d SPIs of %d octets in %d: %w", count, d.SPISize, len(rest), ErrBadLength)
	}
	for i := range count {
		d.SPIs = append(d.SPIs, rest[i*int(d.SPISize):(i+1)*int(d.SPISize)])
	}
	return d, nil
}

// NATOA is the NAT-OA payload (RFC 3947 section 5.2): the original
// address of a transport mode peer.
//
//	!    ID Type    !   RESERVED    !            RESERVED           !
//	~               IPv4 (4 octets) or IPv6 address (16 octets)     ~
type NATOA struct {
	IDType IDType // ID_IPV4_ADDR or ID_IPV6_ADDR
	Addr   []byte
	Draft  bool
}

func (n *NATOA) Type() PayloadType {
	if n.Draft {
		return PayloadNATOADraft
	}
	return PayloadNATOA
}

func (n *NATOA) Body() ([]byte, error) {
	return append([]byte{byte(n.IDType), 0, 0, 0}, n.Addr...), nil
}

func decodeNATOA(b []byte, draft bool) (*NATOA, error) {
	if len(b) < 4 {
		return nil, ErrTruncated
	}
	n := &NATOA{IDType: IDType(b[0]), Addr: b[4:], Draft: draft}
	if (n.IDType != IDIPv4Addr && n.IDType != IDIPv6Addr) || len(n.Addr) != n.IDType.addrLen() {
		return nil, fmt.Errorf("%v with %d octets: %w", n.IDType, len(n.Addr), ErrMalformed)
	}
	return n, nil
}

// Fragment is the IKE fragment payload of the Cisco/strongSwan IKEv1
// fragmentation extension. Fragments of a message share its ID, are
// numbered from 1, and the last has the LAST flag:
//
//	! Next Payload  !   RESERVED    !         Payload Length        !
//	!          Fragment ID          !  Fragment Num !     Flags     !
//	~                          Fragment Data                        ~
type Fragment struct {
	ID     uint16
	Number uint8
	Last   bool
	Data   []byte
}

// fragmentLast is the LAST flag.
const fragmentLast = 0x01

func (*Fragment) Type() PayloadType { return PayloadFragment }

func (f *Fragment) Body() ([]byte, error) {
	b := binary.BigEndian.AppendUint16(nil, f.ID)
	flags := byte(0)
	if f.Last {
		flags = fragmentLast
	}
	b = append(b, f.Number, flags)
	return append(b, f.Data...), nil
}

func decodeFragment(b []byte) (*Fragment, error) {
	if len(b) < 4 {
		return nil, ErrTruncated
	}
	f := &Fragment{ID: binary.BigEndian.Uint16(b), Number: b[2], Last: b[3]&fragmentLast != 0, Data: orNil(b[4:])}
	if f.Number == 0 {
		return nil, fmt.Errorf("fragment number 0: %w", ErrMalformed)
	}
	return f, nil
}
