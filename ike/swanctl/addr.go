package swanctl

import (
	"net/netip"
	"strings"

	"github.com/xdpsec/xdpsec/ike"
)

// AddrKind says what an IKE address setting (local_addrs, remote_addrs)
// holds.
type AddrKind uint8

const (
	AddrAny    AddrKind = iota // %any, %any4, %any6
	AddrIP                     // one address
	AddrPrefix                 // a CIDR subnet (responder side match)
	AddrRange                  // an address range "from-to"
	AddrDNS                    // a DNS name, resolved when used
)

// Addr is one item of local_addrs or remote_addrs.
type Addr struct {
	Kind AddrKind
	// Family restricts AddrAny (%any4, %any6); familyAny for %any.
	Family family
	IP     netip.Addr   // AddrIP
	Prefix netip.Prefix // AddrPrefix, masked
	From   netip.Addr   // AddrRange
	To     netip.Addr   // AddrRange
	Name   string       // AddrDNS
}

func (a Addr) String() string {
	switch a.Kind {
	case AddrAny:
		switch a.Family {
		case familyV4:
			return "%any4"
		case familyV6:
			return "%any6"
		}
		return "%any"
	case AddrIP:
		return a.IP.String()
	case AddrPrefix:
		return a.Prefix.String()
	case AddrRange:
		return a.From.String() + "-" + a.To.String()
	}
	return a.Name
}

// Specific reports whether the address names one peer an initiator can
// send to (an address or a DNS name).
func (a Addr) Specific() bool { return a.Kind == AddrIP || a.Kind == AddrDNS }

// families returns the address families a may stand for.
func (a Addr) families() family {
	switch a.Kind {
	case AddrAny:
		return a.Family
	case AddrIP:
		return familyOf(a.IP)
	case AddrPrefix:
		return familyOf(a.Prefix.Addr())
	case AddrRange:
		return familyOf(a.From)
	}
	return familyAny
}

func parseAddrs(s string) ([]Addr, error) {
	var out []Addr
	for _, item := range splitList(s) {
		a, err := parseAddr(item)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	if len(out) == 0 {
		out = []Addr{{Kind: AddrAny, Family: familyAny}}
	}
	return out, nil
}

func parseAddr(s string) (Addr, error) {
	switch strings.ToLower(s) {
	case "%any":
		return Addr{Kind: AddrAny, Family: familyAny}, nil
	case "%any4":
		return Addr{Kind: AddrAny, Family: familyV4}, nil
	case "%any6":
		return Addr{Kind: AddrAny, Family: familyV6}, nil
	}
	if ip, err := netip.ParseAddr(s); err == nil {
		return Addr{Kind: AddrIP, IP: ip.Unmap()}, nil
	}
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return Addr{}, wrapf(ErrValue, "%q is not a valid CIDR subnet", s)
		}
		return Addr{Kind: AddrPrefix, Prefix: p.Masked()}, nil
	}
	if from, to, ok, err := ike.ParseAddrRange(s); ok || err != nil {
		if err != nil {
			return Addr{}, wrapErr(ErrValue, err)
		}
		return Addr{Kind: AddrRange, From: from, To: to}, nil
	}
	if !validDNSName(s) {
		return Addr{}, wrapf(ErrValue, "%q is neither an address, a subnet, a range nor a DNS name", s)
	}
	return Addr{Kind: AddrDNS, Name: s}, nil
}

// validDNSName checks the characters and labels of a host name.
func validDNSName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(strings.TrimSuffix(s, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}
