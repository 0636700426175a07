package message

import "fmt"

// Authentication payload (RFC 7296 section 3.8):
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Next Payload  |C|  RESERVED   |         Payload Length        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Auth Method   |                RESERVED                       |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                      Authentication Data                      ~
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// With AuthDigitalSignature (RFC 7427) the data starts with a one-octet
// length and an ASN.1 AlgorithmIdentifier; that is for the authentication
// task to parse.
const authFixedLen = 4 // Auth Method and RESERVED

// Authentication is the AUTH payload.
type Authentication struct {
	Method AuthMethod
	Data   []byte
}

func (*Authentication) Type() PayloadType { return PayloadAUTH }

func (p *Authentication) appendBody(b []byte) ([]byte, error) {
	return append(append(b, byte(p.Method), 0, 0, 0), p.Data...), nil
}

func unmarshalAuthentication(b []byte) (*Authentication, error) {
	if len(b) < authFixedLen {
		return nil, fmt.Errorf("%d octets: %w", len(b), ErrTruncated)
	}
	return &Authentication{Method: AuthMethod(b[0]), Data: clone(b[authFixedLen:])}, nil
}
