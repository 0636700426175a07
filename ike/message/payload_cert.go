package message

import "fmt"

// Certificate payload (RFC 7296 section 3.6) and Certificate Request
// payload (section 3.7) share one layout:
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Next Payload  |C|  RESERVED   |         Payload Length        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Cert Encoding |                                               |
//	+-+-+-+-+-+-+-+-+                                               |
//	~       Certificate Data / Certification Authority              ~
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// For X.509 requests the Certification Authority field is a concatenation
// of 20-octet SHA-1 hashes of trusted CAs' public keys; this package keeps
// it as octets.
const certFixedLen = 1 // Cert Encoding

// Certificate is the CERT payload.
type Certificate struct {
	Encoding CertEncoding
	Data     []byte
}

// CertificateRequest is the CERTREQ payload.
type CertificateRequest struct {
	Encoding CertEncoding
	// Authority is the Certification Authority field.
	Authority []byte
}

func (*Certificate) Type() PayloadType        { return PayloadCERT }
func (*CertificateRequest) Type() PayloadType { return PayloadCERTREQ }

func (p *Certificate) appendBody(b []byte) ([]byte, error) {
	return append(append(b, byte(p.Encoding)), p.Data...), nil
}

func (p *CertificateRequest) appendBody(b []byte) ([]byte, error) {
	return append(append(b, byte(p.Encoding)), p.Authority...), nil
}

func unmarshalCertificate(b []byte) (*Certificate, error) {
	if len(b) < certFixedLen {
		return nil, fmt.Errorf("%d octets: %w", len(b), ErrTruncated)
	}
	return &Certificate{Encoding: CertEncoding(b[0]), Data: clone(b[certFixedLen:])}, nil
}

func unmarshalCertificateRequest(b []byte) (*CertificateRequest, error) {
	if len(b) < certFixedLen {
		return nil, fmt.Errorf("%d octets: %w", len(b), ErrTruncated)
	}
	return &CertificateRequest{Encoding: CertEncoding(b[0]), Authority: clone(b[certFixedLen:])}, nil
}
