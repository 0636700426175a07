package isakmp

import (
	"encoding/binary"
	"fmt"
)

// Attribute is a data attribute of a transform (RFC 2408 section 3.3):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	!A!       Attribute Type        !    AF=0  Attribute Length     !
//	!F!                             !    AF=1  Attribute Value      !
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	.                   AF=0  Attribute Value                       .
//	.                   AF=1  Not Transmitted                       .
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// Basic (TV, AF=1) attributes carry a 16-bit value; variable (TLV)
// attributes any number of octets. The meaning of Type depends on the
// protocol: P1Attr for ISAKMP transforms, P2Attr for IPsec ones.
type Attribute struct {
	Type  uint16 // without the AF bit
	Basic bool   // TV format
	Value []byte // two octets for basic attributes
}

// BasicAttr returns a TV attribute.
func BasicAttr[T ~uint16](t T, v uint16) Attribute {
	return Attribute{Type: uint16(t), Basic: true, Value: binary.BigEndian.AppendUint16(nil, v)}
}

// NumberAttr returns the shortest encoding of an unsigned value: TV when it
// fits 16 bits, else TLV with four or eight octets (life durations).
func NumberAttr[T ~uint16](t T, v uint64) Attribute {
	switch {
	case v <= 0xffff:
		return BasicAttr(t, uint16(v))
	case v <= 0xffffffff:
		return Attribute{Type: uint16(t), Value: binary.BigEndian.AppendUint32(nil, uint32(v))}
	}
	return Attribute{Type: uint16(t), Value: binary.BigEndian.AppendUint64(nil, v)}
}

// Uint returns the value as an unsigned number; ok is false if it has
// more than eight octets (a variable-length life duration may have any
// length, RFC 2407 section 4.5; leading zero octets are accepted).
func (a Attribute) Uint() (v uint64, ok bool) {
	b := a.Value
	for len(b) > 8 && b[0] == 0 {
		b = b[1:]
	}
	if len(b) > 8 {
		return 0, false
	}
	for _, x := range b {
		v = v<<8 | uint64(x)
	}
	return v, true
}

func (a Attribute) encodedLen() int {
	if a.Basic {
		return 4
	}
	return 4 + len(a.Value)
}

func (a Attribute) append(b []byte) ([]byte, error) {
	if a.Type > 0x7fff {
		return nil, fmt.Errorf("attribute type %d: %w", a.Type, ErrTooLarge)
	}
	if a.Basic {
		if len(a.Value) != 2 {
			return nil, fmt.Errorf("basic attribute %d with %d octets: %w", a.Type, len(a.Value), ErrMalformed)
		}
		b = binary.BigEndian.AppendUint16(b, 0x8000|a.Type)
		return append(b, a.Value...), nil
	}
	if len(a.Value) > 0xffff {
		return nil, fmt.Errorf("attribute %d: %w", a.Type, ErrTooLarge)
	}
	b = binary.BigEndian.AppendUint16(b, a.Type)
	b = binary.BigEndian.AppendUint16(b, uint16(len(a.Value)))
	return append(b, a.Value...), nil
}

func parseAttributes(b []byte) ([]Attribute, error) {
	var out []Attribute
	for len(b) > 0 {
		if len(b) < 4 {
			return nil, fmt.Errorf("attribute header: %w", ErrTruncated)
		}
		t := binary.BigEndian.Uint16(b)
		if t&0x8000 != 0 {
			out = append(out, Attribute{Type: t & 0x7fff, Basic: true, Value: append([]byte(nil), b[2:4]...)})
			b = b[4:]
			continue
		}
		n := int(binary.BigEndian.Uint16(b[2:]))
		if len(b) < 4+n {
			return nil, fmt.Errorf("attribute %d of %d octets: %w", t, n, ErrTruncated)
		}
		out = append(out, Attribute{Type: t, Value: orNil(append([]byte(nil), b[4:4+n]...))})
		b = b[4+n:]
	}
	return out, nil
}

// P1Attr is a phase 1 (Oakley) attribute class (RFC 2409 appendix A).
type P1Attr uint16

const (
	P1Encryption   P1Attr = 1
	P1Hash         P1Attr = 2
	P1AuthMethod   P1Attr = 3
	P1Group        P1Attr = 4
	P1GroupType    P1Attr = 5
	P1LifeType     P1Attr = 11
	P1LifeDuration P1Attr = 12
	P1PRF          P1Attr = 13
	P1KeyLength    P1Attr = 14
	P1FieldSize    P1Attr = 15
	P1GroupOrder   P1Attr = 16
)

func (a P1Attr) String() string {
	return lookup(map[P1Attr]string{1: "ENCRYPTION_ALGORITHM", 2: "HASH_ALGORITHM", 3: "AUTH_METHOD",
		4: "GROUP", 5: "GROUP_TYPE", 11: "LIFE_TYPE", 12: "LIFE_DURATION", 13: "PRF", 14: "KEY_LENGTH",
		15: "FIELD_SIZE", 16: "GROUP_ORDER"}, a, "P1_ATTR_")
}

// P1 encryption algorithms (RFC 2409 appendix A, RFC 3602, RFC 4312).
const (
	P1EncrDES      uint16 = 1
	P1EncrIDEA     uint16 = 2
	P1EncrBlowfish uint16 = 3
	P1EncrRC5      uint16 = 4
	P1Encr3DES     uint16 = 5
	P1EncrCAST     uint16 = 6
	P1EncrAESCBC   uint16 = 7
	P1EncrCamellia uint16 = 8
)

// P1 hash algorithms.
const (
	P1HashMD5    uint16 = 1
	P1HashSHA1   uint16 = 2
	P1HashTiger  uint16 = 3
	P1HashSHA256 uint16 = 4
	P1HashSHA384 uint16 = 5
	P1HashSHA512 uint16 = 6
)

// AuthMethod is the phase 1 authentication method (RFC 2409 appendix A,
// RFC 4754).
type AuthMethod uint16

const (
	AuthPSK       AuthMethod = 1
	AuthDSS       AuthMethod = 2
	AuthRSA       AuthMethod = 3
	AuthRSAEnc    AuthMethod = 4
	AuthRSARevEnc AuthMethod = 5
	AuthECDSA256  AuthMethod = 9
	AuthECDSA384  AuthMethod = 10
	AuthECDSA521  AuthMethod = 11
	// XAuth (draft-beaulieu-ike-xauth-02 section 7.2): INIT when the
	// phase 1 initiator is the XAuth client, RESP when the responder is.
	AuthXAuthInitPSK AuthMethod = 65001
	AuthXAuthRespPSK AuthMethod = 65002
	AuthXAuthInitRSA AuthMethod = 65005
	AuthXAuthRespRSA AuthMethod = 65006
)

// XAuthBase is the phase 1 method an XAuth method authenticates the
// ISAKMP SA with (PSK or RSA signatures), and whether it is one.
func (m AuthMethod) XAuthBase() (AuthMethod, bool) {
	switch m {
	case AuthXAuthInitPSK, AuthXAuthRespPSK:
		return AuthPSK, true
	case AuthXAuthInitRSA, AuthXAuthRespRSA:
		return AuthRSA, true
	}
	return m, false
}

func (m AuthMethod) String() string {
	return lookup(map[AuthMethod]string{1: "PSK", 2: "DSS_SIG", 3: "RSA_SIG", 4: "RSA_ENC", 5: "RSA_ENC_REV",
		9: "ECDSA_256", 10: "ECDSA_384", 11: "ECDSA_521", 65001: "XAUTH_INIT_PSK", 65002: "XAUTH_RESP_PSK",
		65005: "XAUTH_INIT_RSA", 65006: "XAUTH_RESP_RSA"}, m, "AUTH_")
}

// Life types, phase 1 and 2.
const (
	LifeSeconds   uint16 = 1
	LifeKilobytes uint16 = 2
)

// P2Attr is an IPsec DOI SA attribute class (RFC 2407 section 4.5).
type P2Attr uint16

const (
	P2LifeType     P2Attr = 1
	P2LifeDuration P2Attr = 2
	P2Group        P2Attr = 3
	P2EncapMode    P2Attr = 4
	P2AuthAlg      P2Attr = 5
	P2KeyLength    P2Attr = 6
	P2KeyRounds    P2Attr = 7
	P2ESN          P2Attr = 11
)

func (a P2Attr) String() string {
	return lookup(map[P2Attr]string{1: "SA_LIFE_TYPE", 2: "SA_LIFE_DURATION", 3: "GROUP_DESCRIPTION",
		4: "ENCAPSULATION_MODE", 5: "AUTH_ALGORITHM", 6: "KEY_LENGTH", 7: "KEY_ROUNDS", 11: "EXTENDED_SEQUENCE_NUMBER"}, a, "P2_ATTR_")
}

// Encapsulation modes (RFC 2407, RFC 3947 and the NAT-T drafts).
const (
	EncapTunnel            uint16 = 1
	EncapTransport         uint16 = 2
	EncapUDPTunnel         uint16 = 3 // RFC 3947
	EncapUDPTransport      uint16 = 4
	EncapUDPTunnelDraft    uint16 = 61443
	EncapUDPTransportDraft uint16 = 61444
)

// P2 authentication algorithms (RFC 2407 section 4.5, RFC 4868).
const (
	P2AuthHMACMD5    uint16 = 1
	P2AuthHMACSHA1   uint16 = 2
	P2AuthHMACSHA256 uint16 = 5
	P2AuthHMACSHA384 uint16 = 6
	P2AuthHMACSHA512 uint16 = 7
	P2AuthAESXCBC    uint16 = 9
)
