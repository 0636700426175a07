package maps

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/xdpsec/xdpsec/bpf"
)

// Action is what tc_lan does with a packet a policy matches.
type Action = bpf.XdpsecXsAction

const (
	ActionProtect = bpf.XdpsecXsActionXS_ACTION_PROTECT
	ActionBypass  = bpf.XdpsecXsActionXS_ACTION_BYPASS
	ActionDiscard = bpf.XdpsecXsActionXS_ACTION_DISCARD
)

// ActionName is the lower-case name of an action as the CLI prints it.
func ActionName(a Action) string {
	switch a {
	case ActionProtect:
		return "protect"
	case ActionBypass:
		return "bypass"
	case ActionDiscard:
		return "discard"
	case bpf.XdpsecXsActionXS_ACTION_NONE:
		return "none"
	}
	return fmt.Sprintf("action(%d)", a)
}

// ParseAction reads protect, bypass or discard (also strongSwan's and
// ip-xfrm's words: ipsec, pass/allow/none, drop/block).
func ParseAction(s string) (Action, error) {
	switch strings.ToLower(s) {
	case "protect", "ipsec":
		return ActionProtect, nil
	case "bypass", "pass", "allow", "none":
		return ActionBypass, nil
	case "discard", "drop", "block":
		return ActionDiscard, nil
	}
	return 0, fmt.Errorf("unknown action %q (want protect, bypass or discard)", s)
}

var protoNames = map[string]uint8{
	"any": 0, "icmp": 1, "igmp": 2, "tcp": 6, "udp": 17, "gre": 47, "esp": 50,
	"ah": 51, "icmpv6": 58, "ipv6-icmp": 58, "sctp": 132, "udplite": 136,
}

// ParseProto reads an IP protocol by name or number.
func ParseProto(s string) (uint8, error) {
	if p, ok := protoNames[strings.ToLower(s)]; ok {
		return p, nil
	}
	n, err := strconv.ParseUint(s, 10, 8)
	if err != nil {
		return 0, fmt.Errorf("unknown protocol %q", s)
	}
	return uint8(n), nil
}

// ProtoName names an IP protocol number, "any" for 0.
func ProtoName(p uint8) string {
	for name, n := range protoNames {
		if n == p && name != "ipv6-icmp" {
			return name
		}
	}
	return strconv.Itoa(int(p))
}

// PortProto reports whether a protocol has the ports selectors use.
func PortProto(p uint8) bool {
	return p == 6 || p == 17 || p == 132 || p == 136
}

// Policy is an outbound policy: selectors and what to do with a match.
type Policy struct {
	ID       uint32       // 1..capacity; 0 asks Add for the lowest free ID
	Src      netip.Prefix // source selector
	Dst      netip.Prefix // destination selector
	Proto    uint8        // IP protocol, 0: any
	DportLo  uint16       // destination port range; 0-65535: any
	DportHi  uint16
	Priority uint32 // lower wins among equally specific selectors
	Action   Action
	IfID     uint32 // XFRM if_id of the tunnel (PROTECT)
	Redirect uint32 // ifindex to redirect PROTECTed packets to, 0: none
	MSS      uint16 // clamp TCP SYNs' MSS option to this, 0: no clamping
}

// AnyPorts reports whether the policy leaves destination ports open.
func (p *Policy) AnyPorts() bool { return p.DportLo == 0 && p.DportHi == 0xffff }

// Normalize masks the prefixes and unmaps IPv4-mapped addresses, so equal
// selectors compare equal.
func (p *Policy) Normalize() {
	p.Src = normPrefix(p.Src)
	p.Dst = normPrefix(p.Dst)
}

func normPrefix(p netip.Prefix) netip.Prefix {
	a := p.Addr()
	bits := p.Bits()
	if a.Is4In6() {
		a = a.Unmap()
		bits -= 96
		if bits < 0 {
			bits = 0
		}
	}
	return netip.PrefixFrom(a, bits).Masked()
}

// Validate reports what is wrong with a policy, naming the field.
func (p *Policy) Validate() error {
	if !p.Src.IsValid() || !p.Dst.IsValid() {
		return fmt.Errorf("policy %d: source and destination selectors are required", p.ID)
	}
	if p.Src.Addr().Is4() != p.Dst.Addr().Is4() {
		return fmt.Errorf("policy %d: source %s and destination %s are of different families", p.ID, p.Src, p.Dst)
	}
	if p.DportLo > p.DportHi {
		return fmt.Errorf("policy %d: port range %d-%d is empty", p.ID, p.DportLo, p.DportHi)
	}
	if !p.AnyPorts() && !PortProto(p.Proto) {
		return fmt.Errorf("policy %d: a port range needs protocol tcp, udp, sctp or udplite", p.ID)
	}
	switch p.Action {
	case ActionProtect:
	case ActionBypass, ActionDiscard:
		if p.IfID != 0 || p.Redirect != 0 || p.MSS != 0 {
			return fmt.Errorf("policy %d: if_id, redirect and mss apply to protect policies only", p.ID)
		}
	default:
		return fmt.Errorf("policy %d: no action", p.ID)
	}
	if p.MSS != 0 && p.MSS < 88 {
		return fmt.Errorf("policy %d: MSS %d is below the minimum of 88", p.ID, p.MSS)
	}
	return nil
}

// PortRange prints the destination port range as the CLI shows it.
func (p *Policy) PortRange() string {
	switch {
	case p.AnyPorts():
		return "any"
	case p.DportLo == p.DportHi:
		return strconv.Itoa(int(p.DportLo))
	}
	return fmt.Sprintf("%d-%d", p.DportLo, p.DportHi)
}

// ParsePortRange reads "any", "N" or "N-M".
func ParsePortRange(s string) (lo, hi uint16, err error) {
	if s == "" || s == "any" {
		return 0, 0xffff, nil
	}
	a, b, isRange := strings.Cut(s, "-")
	l, err := strconv.ParseUint(a, 10, 16)
	if err != nil {
		return 0, 0, fmt.Errorf("bad port %q", a)
	}
	h := l
	if isRange {
		if h, err = strconv.ParseUint(b, 10, 16); err != nil {
			return 0, 0, fmt.Errorf("bad port %q", b)
		}
	}
	if l > h {
		return 0, 0, fmt.Errorf("port range %s is empty", s)
	}
	return uint16(l), uint16(h), nil
}

func (p *Policy) toBPF() bpf.XdpsecXsPolicy {
	return bpf.XdpsecXsPolicy{
		Family:          familyOf(p.Dst.Addr()),
		SrcLen:          uint8(p.Src.Bits()),
		DstLen:          uint8(p.Dst.Bits()),
		Proto:           p.Proto,
		Src:             addrBytes(p.Src.Addr()),
		Dst:             addrBytes(p.Dst.Addr()),
		DportLo:         p.DportLo,
		DportHi:         p.DportHi,
		Priority:        p.Priority,
		Action:          p.Action,
		Mss:             p.MSS,
		IfId:            p.IfID,
		RedirectIfindex: p.Redirect,
	}
}

func policyFromBPF(id uint32, v *bpf.XdpsecXsPolicy) (Policy, error) {
	src, err := addrFrom(v.Family, v.Src)
	if err != nil {
		return Policy{}, err
	}
	dst, err := addrFrom(v.Family, v.Dst)
	if err != nil {
		return Policy{}, err
	}
	return Policy{
		ID:       id,
		Src:      netip.PrefixFrom(src, int(v.SrcLen)),
		Dst:      netip.PrefixFrom(dst, int(v.DstLen)),
		Proto:    v.Proto,
		DportLo:  v.DportLo,
		DportHi:  v.DportHi,
		Priority: v.Priority,
		Action:   v.Action,
		IfID:     v.IfId,
		Redirect: v.RedirectIfindex,
		MSS:      v.Mss,
	}, nil
}
