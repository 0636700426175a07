package message

// Nonce payload Ni / Nr (RFC 7296 section 3.9): the generic header, then
// the nonce. RFC 7296 asks for 16 to 256 octets and at least half the PRF
// key size; the exchange tasks check that, the codec only carries it.
type Nonce struct {
	Data []byte
}

// Vendor ID payload (RFC 7296 section 3.12): the generic header, then the
// vendor's opaque identifier.
type VendorID struct {
	Data []byte
}

func (*Nonce) Type() PayloadType    { return PayloadNonce }
func (*VendorID) Type() PayloadType { return PayloadV }

func (p *Nonce) appendBody(b []byte) ([]byte, error)    { return append(b, p.Data...), nil }
func (p *VendorID) appendBody(b []byte) ([]byte, error) { return append(b, p.Data...), nil }
