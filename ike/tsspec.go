package ike

// Configured selectors (swanctl.conf's local_ts and remote_ts) and their
// syntax; ts.go holds what the engine does with concrete ones.

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// TSSpec is a configured selector (swanctl.conf's local_ts and remote_ts):
// a concrete one, or Dynamic, the IKE SA's own address on that side with
// the protocol and ports of TS.
type TSSpec struct {
	Dynamic bool
	TS      TrafficSelector // Dynamic: only Protocol and the ports count
}

// DynamicTS is the default selector: the IKE address, any protocol and port.
func DynamicTS() TSSpec { return TSSpec{Dynamic: true, TS: TrafficSelector{EndPort: 0xffff}} }

// ParseTS parses a concrete selector as swanctl.conf writes it (see
// ParseTSSpec); "dynamic" is refused, it needs the IKE address.
func ParseTS(s string) (TrafficSelector, error) {
	spec, err := ParseTSSpec(s)
	if err == nil && spec.Dynamic {
		err = fmt.Errorf("traffic selector %q: dynamic has no address yet", s)
	}
	return spec.TS, err
}

// ParseTSSpec parses one selector of local_ts or remote_ts: "dynamic", a
// subnet ("10.1.0.0/16"), an address or a range ("10.1.0.1-10.1.0.9"),
// optionally followed by "[proto]", "[proto/port]" or "[proto/from-to]",
// where proto is a name, a number or "any" and port a service name, a
// number, "any" or "opaque" ("[tcp/80]", "[udp]", "[6/1024-2048]").
//
// For ICMP and ICMPv6 the port is a message type and code, kept as on the
// wire: the type in the high byte, the code in the low one (RFC 7296
// section 3.13.1). As in strongSwan, a number below 256 is a type with
// code 0 ("[icmp/8]" is 0x0800) and a larger one is type and code
// ("[icmp/2049]" or "[icmp/0x0801]" is type 8 code 1); charon's printed
// form "type(code)" ("[icmp/8(1)]", "[ipv6-icmp/1(4)]") is read too.
func ParseTSSpec(s string) (TSSpec, error) {
	spec := TSSpec{TS: TrafficSelector{EndPort: 0xffff}}
	ts := &spec.TS
	addr := s
	if i := strings.IndexByte(s, '['); i >= 0 {
		if !strings.HasSuffix(s, "]") {
			return spec, fmt.Errorf("traffic selector %q: missing ']'", s)
		}
		addr = s[:i]
		if err := parseProtoPort(ts, s[i+1:len(s)-1]); err != nil {
			return spec, fmt.Errorf("traffic selector %q: %v", s, err)
		}
	}
	addr = strings.TrimSpace(addr)
	switch {
	case strings.EqualFold(addr, "dynamic"):
		spec.Dynamic = true
	case strings.Contains(addr, "/"):
		p, err := netip.ParsePrefix(addr)
		if err != nil {
			return spec, fmt.Errorf("traffic selector %q: %q is not a valid subnet", s, addr)
		}
		if p.Addr().Is4In6() {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		ts.Start, ts.End = prefixRange(p.Masked())
	case strings.Contains(addr, "-"):
		from, to, ok, err := ParseAddrRange(addr)
		if err != nil {
			return spec, fmt.Errorf("traffic selector %q: %v", s, err)
		}
		if !ok {
			return spec, fmt.Errorf("traffic selector %q: %q is not an address range", s, addr)
		}
		ts.Start, ts.End = from, to
	default:
		ip, err := netip.ParseAddr(addr)
		if err != nil {
			return spec, fmt.Errorf("traffic selector %q: %q is neither \"dynamic\", a subnet, an address nor a range", s, addr)
		}
		ts.Start, ts.End = ip.Unmap(), ip.Unmap()
	}
	return spec, nil
}

// ParseAddrRange parses "from-to". ok is false when s is not two
// addresses around a '-' (it may be a DNS name with a dash).
func ParseAddrRange(s string) (from, to netip.Addr, ok bool, err error) {
	a, b, found := strings.Cut(s, "-")
	if !found {
		return from, to, false, nil
	}
	from, err1 := netip.ParseAddr(strings.TrimSpace(a))
	to, err2 := netip.ParseAddr(strings.TrimSpace(b))
	if err1 != nil || err2 != nil {
		return from, to, false, nil
	}
	from, to = from.Unmap(), to.Unmap()
	if from.Is4() != to.Is4() {
		return from, to, true, fmt.Errorf("range %q mixes IPv4 and IPv6", s)
	}
	if to.Less(from) {
		return from, to, true, fmt.Errorf("range %q ends before it starts", s)
	}
	return from, to, true, nil
}

func parseProtoPort(ts *TrafficSelector, s string) error {
	proto, port, _ := strings.Cut(s, "/")
	proto = strings.TrimSpace(proto)
	switch p, ok := protocolNumbers[strings.ToLower(proto)]; {
	case proto == "" || strings.EqualFold(proto, "any"):
	case ok:
		ts.Protocol = p
	default:
		n, err := strconv.ParseUint(proto, 0, 8)
		if err != nil {
			return fmt.Errorf("unknown protocol %q", proto)
		}
		ts.Protocol = uint8(n)
	}
	port = strings.TrimSpace(port)
	switch {
	case port == "" || strings.EqualFold(port, "any"):
		return nil
	case strings.EqualFold(port, "opaque"):
		ts.StartPort, ts.EndPort = 0xffff, 0
		return nil
	}
	parse := parsePort
	if isICMP(ts.Protocol) {
		parse = parseICMPPort
	} else if n, ok := serviceNumbers[strings.ToLower(port)]; ok {
		ts.StartPort, ts.EndPort = n, n
		return nil
	}
	from, to, isRange := strings.Cut(port, "-")
	a, err := parse(from)
	if err != nil {
		return fmt.Errorf("unknown port %q", port)
	}
	b := a
	if isRange {
		if b, err = parse(to); err != nil {
			return fmt.Errorf("unknown port %q", port)
		}
		if b < a {
			return fmt.Errorf("port range %q ends before it starts", port)
		}
	}
	ts.StartPort, ts.EndPort = a, b
	return nil
}

func parsePort(s string) (uint16, error) {
	n, err := strconv.ParseUint(strings.TrimSpace(s), 0, 16)
	return uint16(n), err
}

// isICMP reports the protocols whose selector ports carry an ICMP message
// type and code: ICMP and ICMPv6.
func isICMP(proto uint8) bool { return proto == 1 || proto == 58 }

// parseICMPPort reads an ICMP type and code as strongSwan does: below 256
// a type (code 0), from 256 the 16-bit type<<8|code; "type(code)" as
// charon prints it.
func parseICMPPort(s string) (uint16, error) {
	s = strings.TrimSpace(s)
	if t, c, ok := strings.Cut(s, "("); ok && strings.HasSuffix(c, ")") {
		typ, err1 := strconv.ParseUint(strings.TrimSpace(t), 0, 8)
		code, err2 := strconv.ParseUint(strings.TrimSpace(c[:len(c)-1]), 0, 8)
		if err1 != nil || err2 != nil {
			return 0, fmt.Errorf("bad ICMP type(code) %q", s)
		}
		return uint16(typ)<<8 | uint16(code), nil
	}
	n, err := parsePort(s)
	if err == nil && n < 256 {
		n <<= 8
	}
	return n, err
}

// icmpString writes an ICMP selector port as charon prints it: the type,
// and the code in parentheses when it is not 0 ("8", "3(4)").
func icmpString(port uint16) string {
	if code := port & 0xff; code != 0 {
		return strconv.Itoa(int(port>>8)) + "(" + strconv.Itoa(int(code)) + ")"
	}
	return strconv.Itoa(int(port >> 8))
}

// protocolNumbers are the protocol names of /etc/protocols one finds in
// selectors; the host's database is not read so that a configuration
// means the same everywhere.
var protocolNumbers = map[string]uint8{
	"icmp": 1, "igmp": 2, "ipencap": 4, "tcp": 6, "udp": 17, "ipv6": 41,
	"gre": 47, "esp": 50, "ah": 51, "ipv6-icmp": 58, "icmpv6": 58,
	"ospf": 89, "pim": 103, "vrrp": 112, "l2tp": 115, "sctp": 132,
}

// protocolName names a protocol as the logs and swanctl.conf write it,
// its number if it has no name here. ICMPv6 is "ipv6-icmp", the name
// charon prints (from /etc/protocols).
func protocolName(p uint8) string {
	if p == 58 {
		return "ipv6-icmp"
	}
	for name, n := range protocolNumbers {
		if n == p {
			return name
		}
	}
	return strconv.Itoa(int(p))
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

// Opaque reports RFC 4301's OPAQUE port selector (ports 65535-0).
func (ts TrafficSelector) Opaque() bool { return ts.StartPort == 0xffff && ts.EndPort == 0 }

// String writes the selector in swanctl.conf's syntax, which
// ParseTSSpec reads back: "dynamic[udp/500]", "10.0.0.1-10.0.0.9",
// "10.0.0.0/16[any/53]", "10.0.0.0/16[icmp/8]", "::/0[ipv6-icmp/1(4)]".
func (s TSSpec) String() string {
	ts := s.TS
	addr := ts.Start.String() + "-" + ts.End.String()
	if s.Dynamic {
		addr = "dynamic"
	} else if p, ok := ts.Prefix(); ok {
		addr = p.String()
	}
	if ts.Protocol == 0 && ts.anyPort() {
		return addr
	}
	proto := "any"
	if ts.Protocol != 0 {
		proto = protocolName(ts.Protocol)
	}
	if ts.Opaque() {
		return addr + "[" + proto + "/opaque]"
	}
	return addr + "[" + proto + ts.portSuffix() + "]"
}

// MustParseTSSpecs parses selectors written as in local_ts and remote_ts,
// one per argument, and panics on an error: for tests and fixed
// configurations.
func MustParseTSSpecs(list ...string) []TSSpec {
	var out []TSSpec
	for _, s := range list {
		spec, err := ParseTSSpec(s)
		if err != nil {
			panic(err)
		}
		out = append(out, spec)
	}
	return out
}
