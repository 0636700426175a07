package message

import "fmt"

// Identification payloads IDi and IDr (RFC 7296 section 3.5):
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Next Payload  |C|  RESERVED   |         Payload Length        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|   ID Type     |                 RESERVED                      |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                   Identification Data                         ~
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// The four octets after the generic header (ID Type and RESERVED) are part
// of what AUTH signs (RestOfInitIDPayload, section 2.15); IDBytes returns
// them with the data.
const idFixedLen = 4 // ID Type and RESERVED

// Identification is the body shared by IDi and IDr.
type Identification struct {
	IDType IDType
	Data   []byte
}

// IDi is the initiator's Identification payload.
type IDi struct{ Identification }

// IDr is the responder's Identification payload.
type IDr struct{ Identification }

func (*IDi) Type() PayloadType { return PayloadIDi }
func (*IDr) Type() PayloadType { return PayloadIDr }

func (p *IDi) appendBody(b []byte) ([]byte, error) { return p.Identification.appendBody(b), nil }
func (p *IDr) appendBody(b []byte) ([]byte, error) { return p.Identification.appendBody(b), nil }

func (id *Identification) appendBody(b []byte) []byte {
	b = append(b, byte(id.IDType), 0, 0, 0)
	return append(b, id.Data...)
}

// IDBytes is the payload body, ID Type through Identification Data: the
// RestOfInitIDPayload / RestOfRespIDPayload that the AUTH computation
// hashes (RFC 7296 section 2.15). The RESERVED octets are zero, as RFC 7296
// has senders write them; a peer that sent other values will fail AUTH.
func (id *Identification) IDBytes() []byte {
	return id.appendBody(make([]byte, 0, idFixedLen+len(id.Data)))
}

func unmarshalIdentification(b []byte) (Identification, error) {
	if len(b) < idFixedLen {
		return Identification{}, fmt.Errorf("%d octets: %w", len(b), ErrTruncated)
	}
	return Identification{IDType: IDType(b[0]), Data: clone(b[idFixedLen:])}, nil
}
