package xfrm

import (
	"fmt"
	"net/netip"
)

// Tunnel is what the policies of one CHILD_SA need to know of it: its
// outer endpoints, the reqid its SAs carry and, in route-based mode, the
// XFRM interface ID its traffic is tagged with.
type Tunnel struct {
	Local, Remote netip.Addr
	Proto         Proto // of the tunnel's SAs
	Reqid         uint32
	IfID          uint32
	Mark          Mark
	Priority      uint32
}

var anyPrefixes = []netip.Prefix{
	netip.PrefixFrom(netip.IPv4Unspecified(), 0),
	netip.PrefixFrom(netip.IPv6Unspecified(), 0),
}

// RouteBasedPolicies are the catch-all policies of route-based mode: for
// each of out, in and fwd, one policy with 0.0.0.0/0 and one with ::/0
// selectors, all carrying the tunnel's if_id. What goes into the tunnel is
// decided by routing into its XFRM interface (or, with xdpsec, by tc_lan
// setting the if_id), so the kernel's policy lookup is one hash hit per
// if_id instead of a walk through per-selector policies.
func RouteBasedPolicies(t Tunnel) ([]Policy, error) {
	if t.IfID == 0 {
		return nil, fmt.Errorf("route-based policies need a non-zero if_id")
	}
	var ps []Policy
	for _, any := range anyPrefixes {
		ps = append(ps, tunnelPolicies(t, ModeTunnel, Selector{Src: any, Dst: any}, Selector{Src: any, Dst: any})...)
	}
	return ps, nil
}

// TrafficSelectors is one pair of a CHILD_SA's traffic selectors, in the
// form XFRM can match: prefixes, a protocol and single ports (0 for any).
type TrafficSelectors struct {
	Local, Remote         netip.Prefix
	Proto                 uint8
	LocalPort, RemotePort uint16
}

// PolicyBasedPolicies are the classic policies for one selector pair of a
// CHILD_SA: out from local to remote through the SA to the peer, in and
// fwd from remote to local through the SA from the peer. Use it for
// kernels without XFRM interfaces, or to compare with route-based mode.
func PolicyBasedPolicies(t Tunnel, mode Mode, ts TrafficSelectors) ([]Policy, error) {
	if !ts.Local.IsValid() || !ts.Remote.IsValid() {
		return nil, fmt.Errorf("traffic selectors need local and remote prefixes")
	}
	out := Selector{Src: ts.Local, Dst: ts.Remote, Proto: ts.Proto, SrcPort: ts.LocalPort, DstPort: ts.RemotePort}
	in := Selector{Src: ts.Remote, Dst: ts.Local, Proto: ts.Proto, SrcPort: ts.RemotePort, DstPort: ts.LocalPort}
	return tunnelPolicies(t, mode, out, in), nil
}

func tunnelPolicies(t Tunnel, mode Mode, out, in Selector) []Policy {
	p := func(dir Dir, sel Selector, src, dst netip.Addr) Policy {
		return Policy{
			Selector:  sel,
			Dir:       dir,
			Action:    ActionAllow,
			Priority:  t.Priority,
			IfID:      t.IfID,
			Mark:      t.Mark,
			Templates: []Template{{Src: src, Dst: dst, Proto: t.Proto, Mode: mode, Reqid: t.Reqid}},
		}
	}
	return []Policy{
		p(DirOut, out, t.Local, t.Remote),
		p(DirIn, in, t.Remote, t.Local),
		p(DirFwd, in, t.Remote, t.Local),
	}
}
