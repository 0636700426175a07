package isakmp

// Payloads whose body is one opaque field.

// KeyExchange is the KE payload: the Diffie-Hellman public value.
type KeyExchange struct{ Data []byte }

// Hash is the HASH payload (HASH_I, HASH_R, HASH(1..3)).
type Hash struct{ Data []byte }

// Signature is the SIG payload (SIG_I, SIG_R).
type Signature struct{ Data []byte }

// Nonce is the NONCE payload.
type Nonce struct{ Data []byte }

// VendorID is the VID payload.
type VendorID struct{ Data []byte }

// Unknown is a payload of a type this package does not know.
type Unknown struct {
	PayloadType PayloadType
	Data        []byte
}

// NATD is a NAT-D payload (RFC 3947 section 3.2): HASH(CKY-I | CKY-R | IP |
// Port). Draft selects the payload number of the NAT-T drafts.
type NATD struct {
	Hash  []byte
	Draft bool
}

func (*KeyExchange) Type() PayloadType { return PayloadKE }
func (*Hash) Type() PayloadType        { return PayloadHash }
func (*Signature) Type() PayloadType   { return PayloadSig }
func (*Nonce) Type() PayloadType       { return PayloadNonce }
func (*VendorID) Type() PayloadType    { return PayloadVendorID }
func (u *Unknown) Type() PayloadType   { return u.PayloadType }
func (n *NATD) Type() PayloadType {
	if n.Draft {
		return PayloadNATDDraft
	}
	return PayloadNATD
}

func (p *KeyExchange) Body() ([]byte, error) { return p.Data, nil }
func (p *Hash) Body() ([]byte, error)        { return p.Data, nil }
func (p *Signature) Body() ([]byte, error)   { return p.Data, nil }
func (p *Nonce) Body() ([]byte, error)       { return p.Data, nil }
func (p *VendorID) Body() ([]byte, error)    { return p.Data, nil }
func (p *Unknown) Body() ([]byte, error)     { return p.Data, nil }
func (p *NATD) Body() ([]byte, error)        { return p.Hash, nil }

// Certificate is the CERT payload (RFC 2408 section 3.9).
type Certificate struct {
	Encoding CertEncoding
	Data     []byte
}

func (*Certificate) Type() PayloadType { return PayloadCert }
func (p *Certificate) Body() ([]byte, error) {
	return append([]byte{byte(p.Encoding)}, p.Data...), nil
}

// CertificateRequest is the CR payload (RFC 2408 section 3.10): an
// encoding and a certificate authority (a DER DN for X.509).
type CertificateRequest struct {
	Encoding  CertEncoding
	Authority []byte
}

func (*CertificateRequest) Type() PayloadType { return PayloadCertReq }
func (p *CertificateRequest) Body() ([]byte, error) {
	return append([]byte{byte(p.Encoding)}, p.Authority...), nil
}
