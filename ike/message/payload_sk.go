package message

import (
	"encoding/binary"
	"fmt"
)

// Encrypted payload SK (RFC 7296 section 3.14):
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Next Payload  |C|  RESERVED   |         Payload Length        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                     Initialization Vector                     |
//	|         (length is block size for encryption algorithm)       |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                    Encrypted IKE Payloads                     ~
//	+               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|               |             Padding (0-255 octets)            |
//	+-+-+-+-+-+-+-+-+                               +-+-+-+-+-+-+-+-+
//	|                                               |  Pad Length   |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                    Integrity Checksum Data                    ~
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// Its Next Payload names the first payload inside, so SK is always the
// last payload of a message. Everything after the generic header (the
// body) belongs to the Protector.
//
// Encrypted Fragment payload SKF (RFC 7383 section 2.5):
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Next Payload  |C|  RESERVED   |         Payload Length        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|        Fragment Number        |        Total Fragments        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                     Initialization Vector                     |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                      Encrypted content                        ~
//	+               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|               |             Padding (0-255 octets)            |
//	+-+-+-+-+-+-+-+-+                               +-+-+-+-+-+-+-+-+
//	|                                               |  Pad Length   |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                    Integrity Checksum Data                    ~
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// Fragment numbers run from 1 to Total Fragments; only fragment 1 names
// the first inner payload, the others send Next Payload 0.
const (
	skfFixedLen = 4 // Fragment Number and Total Fragments

	// skAADLen and skfAADLen are the associated data of a message that
	// holds nothing but SK or SKF: the IKE header, the generic header
	// and, for SKF, the fragment fields.
	skAADLen  = HeaderLen + genericHeaderLen
	skfAADLen = HeaderLen + genericHeaderLen + skfFixedLen
)

// Encrypted is the SK payload still sealed.
type Encrypted struct {
	// NextPayload is the type of the first payload inside.
	NextPayload PayloadType
	// Body is IV, ciphertext and integrity checksum.
	Body []byte
}

// EncryptedFragment is the SKF payload still sealed.
type EncryptedFragment struct {
	// NextPayload is the type of the first inner payload in fragment 1,
	// 0 in the others.
	NextPayload PayloadType
	Number      uint16 // Fragment Number, from 1
	Total       uint16 // Total Fragments
	// Body is IV, ciphertext and integrity checksum.
	Body []byte
}

func (*Encrypted) Type() PayloadType         { return PayloadSK }
func (*EncryptedFragment) Type() PayloadType { return PayloadSKF }

func (p *Encrypted) appendBody(b []byte) ([]byte, error) { return append(b, p.Body...), nil }

func (p *EncryptedFragment) appendBody(b []byte) ([]byte, error) {
	if err := checkFragmentNumber(p.Number, p.Total); err != nil {
		return b, err
	}
	b = binary.BigEndian.AppendUint16(b, p.Number)
	b = binary.BigEndian.AppendUint16(b, p.Total)
	return append(b, p.Body...), nil
}

func checkFragmentNumber(number, total uint16) error {
	if number == 0 || total == 0 || number > total {
		return fmt.Errorf("fragment %d of %d: %w", number, total, ErrMalformed)
	}
	return nil
}

func unmarshalEncrypted(next PayloadType, b []byte) (*Encrypted, error) {
	return &Encrypted{NextPayload: next, Body: clone(b)}, nil
}

func unmarshalEncryptedFragment(next PayloadType, b []byte) (*EncryptedFragment, error) {
	if len(b) < skfFixedLen {
		return nil, fmt.Errorf("%d octets: %w", len(b), ErrTruncated)
	}
	f := &EncryptedFragment{
		NextPayload: next,
		Number:      binary.BigEndian.Uint16(b[0:2]),
		Total:       binary.BigEndian.Uint16(b[2:4]),
		Body:        clone(b[skfFixedLen:]),
	}
	if err := checkFragmentNumber(f.Number, f.Total); err != nil {
		return nil, err
	}
	return f, nil
}
