package message

import (
	"fmt"
	"net/netip"
	"strings"
)

// The notification data of REDIRECT and REDIRECTED_FROM (RFC 5685
// sections 4, 5, 8):
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Gateway Identity Type | GW Ident Len  |                       |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+                       ~
//	~                  New Responder GW Identity                    ~
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                        Nonce Data                             ~
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// The Nonce Data, the initiator's Ni, is present only in a REDIRECT
// answering an IKE_SA_INIT request; REDIRECTED_FROM and a REDIRECT in
// IKE_AUTH or INFORMATIONAL carry the identity alone. REDIRECT_SUPPORTED
// has no data.

// GatewayIDType is the Gateway Identity Type (RFC 5685 section 10).
type GatewayIDType uint8

const (
	GatewayIPv4 GatewayIDType = 1
	GatewayIPv6 GatewayIDType = 2
	GatewayFQDN GatewayIDType = 3
)

// maxFQDN is the longest domain name (RFC 1035 section 3.1, 255 octets in
// wire form, 253 in text).
const maxFQDN = 253

// Gateway is a gateway identity: an address, or a domain name the
// receiver resolves.
type Gateway struct {
	Addr netip.Addr // IPv4 or IPv6; invalid for an FQDN
	FQDN string     // lower case, without a trailing dot
}

// IsFQDN reports whether the gateway is named by a domain name.
func (g Gateway) IsFQDN() bool { return g.FQDN != "" }

func (g Gateway) String() string {
	if g.IsFQDN() {
		return g.FQDN
	}
	return g.Addr.String()
}

// ParseGateway reads a gateway as a user writes it: an IP address or a
// domain name.
func ParseGateway(s string) (Gateway, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		if a.Zone() != "" {
			return Gateway{}, fmt.Errorf("gateway %q: address with a zone: %w", s, ErrMalformed)
		}
		return Gateway{Addr: a.Unmap()}, nil
	}
	name := strings.ToLower(strings.TrimSuffix(s, "."))
	if err := checkFQDN(name); err != nil {
		return Gateway{}, fmt.Errorf("gateway %q: %w", s, err)
	}
	return Gateway{FQDN: name}, nil
}

// checkFQDN accepts host names: labels of 1 to 63 letters, digits,
// hyphens and underscores, not starting or ending with a hyphen.
func checkFQDN(name string) error {
	if name == "" || len(name) > maxFQDN {
		return fmt.Errorf("domain name of %d octets: %w", len(name), ErrMalformed)
	}
	for _, label := range strings.Split(name, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("domain name label %q: %w", label, ErrMalformed)
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return fmt.Errorf("domain name label %q: character %q: %w", label, c, ErrMalformed)
			}
		}
	}
	return nil
}

// Redirect is the data of a REDIRECT or REDIRECTED_FROM notify.
type Redirect struct {
	Gateway Gateway
	Nonce   []byte // REDIRECT in an IKE_SA_INIT response only
}

// Marshal encodes the notification data.
func (r Redirect) Marshal() ([]byte, error) {
	g := r.Gateway
	var typ GatewayIDType
	var id []byte
	switch {
	case g.IsFQDN():
		if err := checkFQDN(g.FQDN); err != nil {
			return nil, err
		}
		typ, id = GatewayFQDN, []byte(g.FQDN)
	case g.Addr.Is4():
		typ, id = GatewayIPv4, g.Addr.AsSlice()
	case g.Addr.Is6():
		typ, id = GatewayIPv6, g.Addr.AsSlice()
	default:
		return nil, fmt.Errorf("gateway without address or name: %w", ErrMalformed)
	}
	b := append([]byte{byte(typ), byte(len(id))}, id...)
	return append(b, r.Nonce...), nil
}

// UnmarshalRedirect decodes the data of a REDIRECT or REDIRECTED_FROM
// notify. The nonce is what follows the identity, unchecked: only the
// initiator knows what it must be.
func UnmarshalRedirect(b []byte) (Redirect, error) {
	if len(b) < 2 {
		return Redirect{}, fmt.Errorf("redirect data of %d octets: %w", len(b), ErrTruncated)
	}
	typ, n := GatewayIDType(b[0]), int(b[1])
	if 2+n > len(b) {
		return Redirect{}, fmt.Errorf("gateway identity of %d octets, %d present: %w", n, len(b)-2, ErrTruncated)
	}
	id := b[2 : 2+n]
	var g Gateway
	switch typ {
	case GatewayIPv4:
		if n != 4 {
			return Redirect{}, fmt.Errorf("IPv4 gateway of %d octets: %w", n, ErrBadLength)
		}
		g.Addr = netip.AddrFrom4([4]byte(id))
	case GatewayIPv6:
		if n != 16 {
			return Redirect{}, fmt.Errorf("IPv6 gateway of %d octets: %w", n, ErrBadLength)
		}
		g.Addr = netip.AddrFrom16([16]byte(id)).Unmap()
	case GatewayFQDN:
		name := strings.ToLower(strings.TrimSuffix(string(id), "."))
		if err := checkFQDN(name); err != nil {
			return Redirect{}, err
		}
		g.FQDN = name
	default:
		return Redirect{}, fmt.Errorf("gateway identity type %d: %w", typ, ErrMalformed)
	}
	if g.Addr.IsValid() && (g.Addr.IsUnspecified() || g.Addr.IsMulticast()) {
		return Redirect{}, fmt.Errorf("gateway %s: %w", g.Addr, ErrMalformed)
	}
	return Redirect{Gateway: g, Nonce: clone(b[2+n:])}, nil
}
