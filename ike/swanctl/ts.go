package swanctl

import (
	"math"
	"net/netip"
	"strings"
)

// TrafficSelector is one local_ts or remote_ts item: an address range (given
// as a subnet, a range or "dynamic") with an optional protocol and port
// range, as in "10.0.0.0/16[tcp/443]".
type TrafficSelector struct {
	// Dynamic stands for the tunnel's outer address (or virtual IP), known
	// only once the SA is up; From, To and Prefix are unset.
	Dynamic bool
	// Prefix is set when the selector was given as a subnet or address.
	Prefix netip.Prefix
	// From and To bound the addresses; always set unless Dynamic.
	From, To netip.Addr
	// Protocol is an IP protocol number, 0 for any.
	Protocol uint8
	// FromPort and ToPort bound the ports (0-65535 for any). For ICMP they
	// carry type and code as IKEv2 does.
	FromPort, ToPort uint16
	// Opaque is RFC 4301's OPAQUE port selector.
	Opaque bool
}

func (ts TrafficSelector) String() string {
	var s string
	switch {
	case ts.Dynamic:
		s = "dynamic"
	case ts.Prefix.IsValid():
		s = ts.Prefix.String()
	default:
		s = ts.From.String() + "-" + ts.To.String()
	}
	if ts.Protocol == 0 && ts.anyPort() {
		return s
	}
	s += "[" + protocolName(ts.Protocol)
	switch {
	case ts.Opaque:
		s += "/opaque"
	case ts.anyPort():
	case ts.FromPort == ts.ToPort:
		s += "/" + uitoa(uint64(ts.FromPort))
	default:
		s += "/" + uitoa(uint64(ts.FromPort)) + "-" + uitoa(uint64(ts.ToPort))
	}
	return s + "]"
}

func (ts TrafficSelector) anyPort() bool {
	return !ts.Opaque && ts.FromPort == 0 && ts.ToPort == math.MaxUint16
}

// family returns the selector's address family, familyAny for dynamic.
func (ts TrafficSelector) family() family {
	if ts.Dynamic {
		return familyAny
	}
	return familyOf(ts.From)
}

func parseTSList(s string) ([]TrafficSelector, error) {
	var out []TrafficSelector
	for _, item := range splitList(s) {
		ts, err := parseTS(item)
		if err != nil {
			return nil, err
		}
		out = append(out, ts)
	}
	return out, nil
}

// parseTS parses one selector: "dynamic", a subnet, an address or a range
// "from-to", optionally followed by "[proto]", "[proto/port]" or
// "[proto/from-to]" where proto may be a name, a number or "any" and port a
// service name, a number, "any" or "opaque".
func parseTS(s string) (TrafficSelector, error) {
	ts := TrafficSelector{ToPort: math.MaxUint16}
	addr := s
	if i := strings.IndexByte(s, '['); i >= 0 {
		if !strings.HasSuffix(s, "]") {
			return ts, wrapf(ErrValue, "traffic selector %q: missing ']'", s)
		}
		addr = s[:i]
		if err := parseProtoPort(&ts, s[i+1:len(s)-1]); err != nil {
			return ts, wrapf(ErrValue, "traffic selector %q: %v", s, err)
		}
	}
	addr = strings.TrimSpace(addr)
	switch {
	case strings.EqualFold(addr, "dynamic"):
		ts.Dynamic = true
	case strings.Contains(addr, "/"):
		p, err := netip.ParsePrefix(addr)
		if err != nil {
			return ts, wrapf(ErrValue, "traffic selector %q: %q is not a valid subnet", s, addr)
		}
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-unmapBits(p.Addr())).Masked()
		ts.Prefix, ts.From, ts.To = p, p.Addr(), lastAddr(p)
	case strings.Contains(addr, "-"):
		from, to, ok, err := parseRange(addr)
		if err != nil {
			return ts, wrapf(ErrValue, "traffic selector %q: %v", s, err)
		}
		if !ok {
			return ts, wrapf(ErrValue, "traffic selector %q: %q is not an address range", s, addr)
		}
		ts.From, ts.To = from, to
	default:
		ip, err := netip.ParseAddr(addr)
		if err != nil {
			return ts, wrapf(ErrValue, "traffic selector %q: %q is neither \"dynamic\", a subnet, an address nor a range", s, addr)
		}
		ip = ip.Unmap()
		ts.Prefix = netip.PrefixFrom(ip, ip.BitLen())
		ts.From, ts.To = ip, ip
	}
	return ts, nil
}

// unmapBits is what a prefix length loses when an IPv4-mapped IPv6 address
// is unmapped.
func unmapBits(a netip.Addr) int {
	if a.Is4In6() {
		return 96
	}
	return 0
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

func parseProtoPort(ts *TrafficSelector, s string) error {
	proto, port, _ := strings.Cut(s, "/")
	proto = strings.TrimSpace(proto)
	switch p, ok := protocolNumbers[strings.ToLower(proto)]; {
	case proto == "" || strings.EqualFold(proto, "any"):
	case ok:
		ts.Protocol = p
	default:
		n, err := parseUint(proto, math.MaxUint8)
		if err != nil {
			return wrapf(ErrValue, "unknown protocol %q", proto)
		}
		ts.Protocol = uint8(n)
	}
	port = strings.TrimSpace(port)
	switch {
	case port == "" || strings.EqualFold(port, "any"):
		return nil
	case strings.EqualFold(port, "opaque"):
		ts.Opaque, ts.FromPort, ts.ToPort = true, math.MaxUint16, 0
		return nil
	}
	if n, ok := serviceNumbers[strings.ToLower(port)]; ok {
		ts.FromPort, ts.ToPort = n, n
		return nil
	}
	from, to, isRange := strings.Cut(port, "-")
	a, err := parsePort(from)
	if err != nil {
		return wrapf(ErrValue, "unknown port %q", port)
	}
	b := a
	if isRange {
		if b, err = parsePort(to); err != nil {
			return wrapf(ErrValue, "unknown port %q", port)
		}
		if b < a {
			return wrapf(ErrValue, "port range %q ends before it starts", port)
		}
	}
	ts.FromPort, ts.ToPort = a, b
	return nil
}

// protocolNumbers are the protocol names of /etc/protocols one finds in
// selectors; we do not read the host's database so that a configuration
// means the same everywhere.
var protocolNumbers = map[string]uint8{
	"icmp": 1, "igmp": 2, "ipencap": 4, "tcp": 6, "udp": 17, "ipv6": 41,
	"gre": 47, "esp": 50, "ah": 51, "ipv6-icmp": 58, "icmpv6": 58,
	"ospf": 89, "pim": 103, "vrrp": 112, "l2tp": 115, "sctp": 132,
}

func protocolName(p uint8) string {
	switch p {
	case 0:
		return "any"
	case 58:
		return "ipv6-icmp"
	}
	for name, n := range protocolNumbers {
		if n == p {
			return name
		}
	}
	return uitoa(uint64(p))
}

// serviceNumbers are common service names of /etc/services.
var serviceNumbers = map[string]uint16{
	"ftp-data": 20, "ftp": 21, "ssh": 22, "telnet": 23, "smtp": 25, "domain": 53,
	"bootps": 67, "bootpc": 68, "tftp": 69, "http": 80, "www": 80, "kerberos": 88,
	"pop3": 110, "ntp": 123, "imap2": 143, "imap": 143, "snmp": 161, "snmp-trap": 162,
	"bgp": 179, "ldap": 389, "https": 443, "microsoft-ds": 445, "isakmp": 500,
	"syslog": 514, "submission": 587, "ldaps": 636, "imaps": 993, "pop3s": 995,
	"openvpn": 1194, "l2tp": 1701, "mysql": 3306, "ms-wbt-server": 3389,
	"ipsec-nat-t": 4500, "sip": 5060, "postgresql": 5432, "http-alt": 8080,
}
