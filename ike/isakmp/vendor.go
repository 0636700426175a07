package isakmp

import "bytes"

// Vendor IDs that change the protocol. The NAT-T and DPD ones are MD5
// hashes of their names; the fragmentation one is Cisco's, followed by
// four octets of capability flags (strongSwan sends 0x80000000).
var (
	VendorDPD         = []byte{0xaf, 0xca, 0xd7, 0x13, 0x68, 0xa1, 0xf1, 0xc9, 0x6b, 0x86, 0x96, 0xfc, 0x77, 0x57, 0x01, 0x00}
	VendorNATTRFC3947 = []byte{0x4a, 0x13, 0x1c, 0x81, 0x07, 0x03, 0x58, 0x45, 0x5c, 0x57, 0x28, 0xf2, 0x0e, 0x95, 0x45, 0x2f}
	// draft-ietf-ipsec-nat-t-ike-02\n, -02 and -03.
	VendorNATTDraft02N = []byte{0x90, 0xcb, 0x80, 0x91, 0x3e, 0xbb, 0x69, 0x6e, 0x08, 0x63, 0x81, 0xb5, 0xec, 0x42, 0x7b, 0x1f}
	VendorNATTDraft02  = []byte{0xcd, 0x60, 0x46, 0x43, 0x35, 0xdf, 0x21, 0xf8, 0x7c, 0xfd, 0xb2, 0xfc, 0x68, 0xb6, 0xa4, 0x48}
	VendorNATTDraft03  = []byte{0x7d, 0x94, 0x19, 0xa6, 0x53, 0x10, 0xca, 0x6f, 0x2c, 0x17, 0x9d, 0x92, 0x15, 0x52, 0x9d, 0x56}
	// VendorXAuth is MD5("draft-ietf-ipsra-isakmp-xauth-06.txt"),
	// truncated to eight octets as charon and Cisco send it.
	VendorXAuth = []byte{0x09, 0x00, 0x26, 0x89, 0xdf, 0xd6, 0xb7, 0x12}
	// VendorCiscoUnity announces the Cisco Unity attributes (version 1.0
	// in the last two octets).
	VendorCiscoUnity    = []byte{0x12, 0xf5, 0xf2, 0x8c, 0x45, 0x71, 0x68, 0xa9, 0x70, 0x2d, 0x9f, 0xe2, 0x74, 0xcc, 0x01, 0x00}
	VendorFragmentation = []byte{0x40, 0x48, 0xb7, 0xd5, 0x6e, 0xbc, 0xe8, 0x85, 0x25, 0xe7, 0xde, 0x7f, 0x00, 0xd6, 0xc2, 0xd3, 0x80, 0x00, 0x00, 0x00}
)

// VendorKind classifies a received vendor ID.
type VendorKind uint8

const (
	VendorUnknown VendorKind = iota
	VendorKindDPD
	VendorKindNATT      // RFC 3947
	VendorKindNATTDraft // one of the drafts
	VendorKindFragmentation
	VendorKindXAuth
	VendorKindCiscoUnity
)

func (k VendorKind) String() string {
	switch k {
	case VendorKindDPD:
		return "DPD"
	case VendorKindNATT:
		return "RFC 3947"
	case VendorKindNATTDraft:
		return "draft-ietf-ipsec-nat-t-ike"
	case VendorKindFragmentation:
		return "FRAGMENTATION"
	case VendorKindXAuth:
		return "XAuth"
	case VendorKindCiscoUnity:
		return "Cisco Unity"
	}
	return "unknown"
}

// ClassifyVendorID tells which known vendor ID v is.
func ClassifyVendorID(v []byte) VendorKind {
	switch {
	case bytes.Equal(v, VendorDPD):
		return VendorKindDPD
	case bytes.Equal(v, VendorNATTRFC3947):
		return VendorKindNATT
	case bytes.Equal(v, VendorNATTDraft02N), bytes.Equal(v, VendorNATTDraft02), bytes.Equal(v, VendorNATTDraft03):
		return VendorKindNATTDraft
	case len(v) >= 16 && bytes.Equal(v[:16], VendorFragmentation[:16]):
		return VendorKindFragmentation
	case bytes.Equal(v, VendorXAuth):
		return VendorKindXAuth
	case len(v) == 16 && bytes.Equal(v[:14], VendorCiscoUnity[:14]):
		return VendorKindCiscoUnity
	}
	return VendorUnknown
}
