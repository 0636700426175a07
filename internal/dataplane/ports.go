package dataplane

import (
	"github.com/xdpsec/xdpsec/ike"
	"github.com/xdpsec/xdpsec/maps/xfrm"
)

// setPorts puts the port part of a selector pair into an XFRM selector.
// XFRM matches a port exactly or not at all, so a port range is installed
// as any port, as charon's kernel-netlink does.
//
// ICMP and ICMPv6 selectors carry type<<8|code in their port ranges (RFC
// 7296 section 3.13.1), while the kernel matches the type as the source
// port and the code as the destination port (xfrm_flowi_sport/dport). As
// in charon, a pair gets one ICMP range: that of the side that restricts
// it, or when both do, the one starting higher (charon compares the two in
// network byte order, which agrees while the codes are 0). Unlike charon,
// which installs a type or code of 0 as "any", type 0 (echo reply) and
// code 0 are installed exactly. A range over several types is installed as
// any type, one over some codes of a type as that type with any code: the
// kernel's selector cannot say more.
func setPorts(sel *xfrm.Selector, src, dst ike.TrafficSelector) {
	if sel.Proto == 1 || sel.Proto == 58 {
		setICMP(sel, src, dst)
		return
	}
	if src.StartPort == src.EndPort {
		sel.SrcPort = src.StartPort
	}
	if dst.StartPort == dst.EndPort {
		sel.DstPort = dst.StartPort
	}
}

// icmpRestricted reports an ICMP or ICMPv6 selector limited to some types
// or codes.
func icmpRestricted(ts ike.TrafficSelector) bool {
	return (ts.Protocol == 1 || ts.Protocol == 58) && !(ts.StartPort == 0 && ts.EndPort == 0xffff) && !ts.Opaque()
}

func setICMP(sel *xfrm.Selector, src, dst ike.TrafficSelector) {
	r := src
	switch {
	case icmpRestricted(src) && icmpRestricted(dst):
		if dst.StartPort > src.StartPort {
			r = dst
		}
	case icmpRestricted(dst):
		r = dst
	case !icmpRestricted(src):
		return
	}
	if r.StartPort>>8 != r.EndPort>>8 {
		return
	}
	sel.SrcPort, sel.SrcPortMask = r.StartPort>>8, 0xffff
	if r.StartPort == r.EndPort {
		sel.DstPort, sel.DstPortMask = r.StartPort&0xff, 0xffff
	}
}
