package ike

import (
	"bytes"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/xdpsec/xdpsec/ike/message"
)

// Identity is an IKE identity (RFC 7296 section 3.5). The zero value is
// "%any", which matches every identity.
type Identity struct {
	Type message.IDType
	Data []byte
}

// dnAttributes are the attribute names charon prints in DNs.
var dnAttributes = []struct {
	name string
	oid  asn1.ObjectIdentifier
}{
	{"C", asn1.ObjectIdentifier{2, 5, 4, 6}},
	{"ST", asn1.ObjectIdentifier{2, 5, 4, 8}},
	{"L", asn1.ObjectIdentifier{2, 5, 4, 7}},
	{"O", asn1.ObjectIdentifier{2, 5, 4, 10}},
	{"OU", asn1.ObjectIdentifier{2, 5, 4, 11}},
	{"CN", asn1.ObjectIdentifier{2, 5, 4, 3}},
	{"SN", asn1.ObjectIdentifier{2, 5, 4, 5}},
	{"E", asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}},
	{"DC", asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 25}},
}

// ParseIdentity parses an identity as swanctl.conf's id keys write it.
func ParseIdentity(s string) (Identity, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "%any" {
		return Identity{}, nil
	}
	if typ, rest, ok := strings.Cut(s, ":"); ok {
		switch typ {
		case "fqdn":
			return Identity{message.ID_FQDN, []byte(rest)}, nil
		case "email", "rfc822":
			return Identity{message.ID_RFC822_ADDR, []byte(rest)}, nil
		case "keyid":
			return keyID(rest)
		case "ipv4", "ipv6":
			a, err := netip.ParseAddr(rest)
			if err != nil {
				return Identity{}, fmt.Errorf("identity %q: %w", s, err)
			}
			return addrIdentity(a), nil
		case "asn1dn":
			return parseDN(rest)
		}
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return addrIdentity(a), nil
	}
	if strings.HasPrefix(s, "@#") {
		return keyID(s[2:])
	}
	if strings.HasPrefix(s, "@") {
		return Identity{message.ID_FQDN, []byte(s[1:])}, nil
	}
	if strings.Contains(s, "=") {
		return parseDN(s)
	}
	if strings.Contains(s, "@") {
		return Identity{message.ID_RFC822_ADDR, []byte(s)}, nil
	}
	return Identity{message.ID_FQDN, []byte(s)}, nil
}

// MustParseIdentity is ParseIdentity that panics on an error: for tests
// and fixed configurations.
func MustParseIdentity(s string) Identity {
	id, err := ParseIdentity(s)
	if err != nil {
		panic(err)
	}
	return id
}

func keyID(h string) (Identity, error) {
	b, err := hex.DecodeString(strings.TrimPrefix(h, "0x"))
	if err != nil {
		return Identity{}, fmt.Errorf("identity keyid %q: %w", h, err)
	}
	return Identity{message.ID_KEY_ID, b}, nil
}

func addrIdentity(a netip.Addr) Identity {
	a = a.Unmap()
	if a.Is4() {
		return Identity{message.ID_IPV4_ADDR, a.AsSlice()}
	}
	return Identity{message.ID_IPV6_ADDR, a.AsSlice()}
}

func parseDN(s string) (Identity, error) {
	var rdns pkix.RDNSequence
	for part := range strings.SplitSeq(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return Identity{}, fmt.Errorf("identity %q: bad RDN %q", s, part)
		}
		var oid asn1.ObjectIdentifier
		for _, a := range dnAttributes {
			if strings.EqualFold(a.name, strings.TrimSpace(k)) {
				oid = a.oid
			}
		}
		if oid == nil {
			return Identity{}, fmt.Errorf("identity %q: unknown attribute %q", s, k)
		}
		rdns = append(rdns, pkix.RelativeDistinguishedNameSET{{Type: oid, Value: strings.TrimSpace(v)}})
	}
	der, err := asn1.Marshal(rdns)
	if err != nil {
		return Identity{}, fmt.Errorf("identity %q: %w", s, err)
	}
	return Identity{message.ID_DER_ASN1_DN, der}, nil
}

// IsAny reports whether the identity is the wildcard %any.
func (id Identity) IsAny() bool { return id.Type == 0 }

// String formats the identity as charon logs it.
func (id Identity) String() string {
	switch id.Type {
	case 0:
		return "%any"
	case message.ID_IPV4_ADDR, message.ID_IPV6_ADDR:
		if a, ok := netip.AddrFromSlice(id.Data); ok {
			return a.String()
		}
	case message.ID_FQDN, message.ID_RFC822_ADDR:
		return string(id.Data)
	case message.ID_KEY_ID:
		return "@#" + hex.EncodeToString(id.Data)
	case message.ID_DER_ASN1_DN:
		return formatDN(id.Data)
	}
	return fmt.Sprintf("(%v)%x", id.Type, id.Data)
}

func formatDN(der []byte) string {
	var rdns pkix.RDNSequence
	if rest, err := asn1.Unmarshal(der, &rdns); err != nil || len(rest) != 0 {
		return "(invalid DN)"
	}
	var parts []string
	for _, set := range rdns {
		for _, atv := range set {
			name := atv.Type.String()
			for _, a := range dnAttributes {
				if a.oid.Equal(atv.Type) {
					name = a.name
				}
			}
			parts = append(parts, fmt.Sprintf("%s=%v", name, atv.Value))
		}
	}
	return strings.Join(parts, ", ")
}

// Equal reports whether two identities are the same.
func (id Identity) Equal(o Identity) bool {
	if id.Type != o.Type {
		return false
	}
	if id.Type == message.ID_FQDN || id.Type == message.ID_RFC822_ADDR {
		return strings.EqualFold(string(id.Data), string(o.Data))
	}
	if id.Type == message.ID_DER_ASN1_DN {
		return formatDN(id.Data) == formatDN(o.Data)
	}
	return bytes.Equal(id.Data, o.Data)
}

// Matches reports whether a peer's identity satisfies this configured one.
func (id Identity) Matches(peer Identity) bool { return id.IsAny() || id.Equal(peer) }

func (id Identity) payload() message.Identification {
	return message.Identification{IDType: id.Type, Data: slices.Clone(id.Data)}
}

// certHasIdentity reports whether the certificate is issued to id: its
// subject DN, or a subjectAltName of the matching kind.
func certHasIdentity(c *x509.Certificate, id Identity) bool {
	switch id.Type {
	case message.ID_DER_ASN1_DN:
		return id.Equal(Identity{message.ID_DER_ASN1_DN, c.RawSubject})
	case message.ID_FQDN:
		return slices.ContainsFunc(c.DNSNames, func(n string) bool { return strings.EqualFold(n, string(id.Data)) })
	case message.ID_RFC822_ADDR:
		return slices.ContainsFunc(c.EmailAddresses, func(n string) bool { return strings.EqualFold(n, string(id.Data)) })
	case message.ID_IPV4_ADDR, message.ID_IPV6_ADDR:
		a, _ := netip.AddrFromSlice(id.Data)
		return slices.ContainsFunc(c.IPAddresses, func(ip net.IP) bool {
			b, ok := netip.AddrFromSlice(ip)
			return ok && b.Unmap() == a.Unmap()
		})
	}
	return false
}
