package xfrm

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// Dir is the direction a policy applies to.
type Dir uint8

const (
	DirIn  Dir = 0 // XFRM_POLICY_IN: packets delivered locally
	DirOut Dir = 1 // XFRM_POLICY_OUT: packets sent
	DirFwd Dir = 2 // XFRM_POLICY_FWD: packets forwarded
)

func (d Dir) String() string {
	switch d {
	case DirIn:
		return "in"
	case DirOut:
		return "out"
	case DirFwd:
		return "fwd"
	}
	return fmt.Sprintf("dir(%d)", uint8(d))
}

// Action is what a policy does with the packets it matches.
type Action uint8

const (
	ActionAllow Action = 0 // XFRM_POLICY_ALLOW: pass, through the templates' SAs if any
	ActionBlock Action = 1 // XFRM_POLICY_BLOCK: drop
)

func (a Action) String() string {
	if a == ActionBlock {
		return "block"
	}
	return "allow"
}

// Template names the SA a policy's packets must go through (out) or must
// have come through (in, fwd). ESP only.
type Template struct {
	Src, Dst netip.Addr // tunnel endpoints; may be unset in transport mode
	Proto    Proto      // of the SA: ESP or AH
	Mode     Mode
	Reqid    uint32 // 0: any SA
	SPI      uint32 // 0: any SA
}

// Policy is an XFRM policy.
type Policy struct {
	Selector  Selector
	Dir       Dir
	Action    Action
	Priority  uint32 // lower wins
	IfID      uint32
	Mark      Mark
	Templates []Template
	Index     uint32 // assigned by the kernel; read back by ListPolicies
}

func (p *Policy) String() string {
	s := fmt.Sprintf("policy %s %s", p.Dir, p.Selector)
	if p.IfID != 0 {
		s += fmt.Sprintf(" if_id %#x", p.IfID)
	}
	if p.Mark.isSet() {
		s += fmt.Sprintf(" mark %#x/%#x", p.Mark.Value, p.Mark.Mask)
	}
	return s
}

// ErrNoPolicy means the kernel has no such policy.
var ErrNoPolicy = errors.New("no such policy")

const allAlgos = 0xffffffff

func encodePolicy(typ uint16, p *Policy) (*request, error) {
	if p.Dir > DirFwd {
		return nil, fmt.Errorf("unknown direction %d", p.Dir)
	}
	if p.Action > ActionBlock {
		return nil, fmt.Errorf("unknown action %d", p.Action)
	}
	sel, err := p.Selector.encode()
	if err != nil {
		return nil, err
	}
	info := nl.XfrmUserpolicyInfo{
		Sel:      sel,
		Priority: p.Priority,
		Dir:      uint8(p.Dir),
		Action:   uint8(p.Action),
		Lft:      Lifetime{}.encode(),
	}
	req := newRequest(typ, unix.NLM_F_ACK)
	req.fixed(structBytes(&info))
	if len(p.Templates) > 0 {
		var tmpls []byte
		for i, t := range p.Templates {
			ut, err := encodeTemplate(t, sel.Family)
			if err != nil {
				return nil, fmt.Errorf("template %d: %w", i, err)
			}
			tmpls = append(tmpls, structBytes(&ut)...)
		}
		req.attr(nl.XFRMA_TMPL, tmpls)
	}
	if p.Mark.isSet() {
		req.attr(nl.XFRMA_MARK, p.Mark.encode())
	}
	if p.IfID != 0 {
		req.attrU32(nl.XFRMA_IF_ID, p.IfID)
	}
	return req, nil
}

func encodeTemplate(t Template, selFamily uint16) (nl.XfrmUserTmpl, error) {
	var ut nl.XfrmUserTmpl
	fam := selFamily
	switch {
	case t.Src.IsValid() && t.Dst.IsValid():
		if t.Src.Unmap().Is4() != t.Dst.Unmap().Is4() {
			return ut, errors.New("tunnel endpoints mix IPv4 and IPv6")
		}
		fam = familyOf(t.Dst)
	case t.Mode == ModeTunnel:
		return ut, errors.New("tunnel mode needs both endpoints")
	case t.Src.IsValid() || t.Dst.IsValid():
		return ut, errors.New("template needs both endpoints or none")
	}
	if t.Mode != ModeTransport && t.Mode != ModeTunnel {
		return ut, fmt.Errorf("unsupported %v", t.Mode)
	}
	ut.XfrmId.Daddr = xfrmAddr(t.Dst)
	ut.XfrmId.Spi = be32(t.SPI)
	ut.XfrmId.Proto = t.Proto.ipproto()
	ut.Family = fam
	ut.Saddr = xfrmAddr(t.Src)
	ut.Reqid = t.Reqid
	ut.Mode = uint8(t.Mode)
	ut.Aalgos, ut.Ealgos, ut.Calgos = allAlgos, allAlgos, allAlgos
	return ut, nil
}

func encodePolicyID(p *Policy) (*request, error) {
	sel, err := p.Selector.encode()
	if err != nil {
		return nil, err
	}
	id := nl.XfrmUserpolicyId{Sel: sel, Dir: uint8(p.Dir)}
	req := newRequest(nl.XFRM_MSG_DELPOLICY, unix.NLM_F_ACK)
	req.fixed(structBytes(&id))
	if p.Mark.isSet() {
		req.attr(nl.XFRMA_MARK, p.Mark.encode())
	}
	if p.IfID != 0 {
		req.attrU32(nl.XFRMA_IF_ID, p.IfID)
	}
	return req, nil
}

// AddPolicy installs a new policy (XFRM_MSG_NEWPOLICY); one with the same
// selector, direction, mark and if_id is an error (ErrExists).
func (c *Conn) AddPolicy(p Policy) error {
	return c.putPolicy(nl.XFRM_MSG_NEWPOLICY, "add", &p)
}

// UpdatePolicy installs a policy or replaces the one with the same
// selector, direction, mark and if_id (XFRM_MSG_UPDPOLICY).
func (c *Conn) UpdatePolicy(p Policy) error {
	return c.putPolicy(nl.XFRM_MSG_UPDPOLICY, "update", &p)
}

func (c *Conn) putPolicy(typ uint16, verb string, p *Policy) error {
	req, err := encodePolicy(typ, p)
	if err == nil {
		err = classify(c.exec(c.xfrm, req, nil), nil)
	}
	if err != nil {
		return fmt.Errorf("%s %s: %w", verb, p, err)
	}
	return nil
}

// DeletePolicy removes the policy with p's selector, direction, mark and
// if_id.
func (c *Conn) DeletePolicy(p Policy) error {
	req, err := encodePolicyID(&p)
	if err == nil {
		err = classify(c.exec(c.xfrm, req, nil), ErrNoPolicy)
	}
	if err != nil {
		return fmt.Errorf("delete %s: %w", &p, err)
	}
	return nil
}

// ListPolicies returns the namespace's policies (not per-socket ones).
func (c *Conn) ListPolicies() ([]Policy, error) {
	var out []Policy
	err := c.dump(c.xfrm, func() *request {
		return newRequest(nl.XFRM_MSG_GETPOLICY, unix.NLM_F_DUMP)
	}, func(typ uint16, data []byte) error {
		if typ != nl.XFRM_MSG_NEWPOLICY {
			return nil
		}
		p, err := parsePolicy(data)
		if err != nil {
			return err
		}
		if p.Dir <= DirFwd {
			out = append(out, p)
		}
		return nil
	}, func() { out = out[:0] })
	if err != nil {
		return nil, fmt.Errorf("list policies: %w", err)
	}
	return out, nil
}

func parsePolicy(data []byte) (Policy, error) {
	info, err := fromBytes[nl.XfrmUserpolicyInfo](data)
	if err != nil {
		return Policy{}, err
	}
	a, err := attrs(data[align4(nl.SizeofXfrmUserpolicyInfo):])
	if err != nil {
		return Policy{}, err
	}
	p := Policy{
		Selector: selectorFrom(&info.Sel),
		Dir:      Dir(info.Dir),
		Action:   Action(info.Action),
		Priority: info.Priority,
		Index:    info.Index,
	}
	for v := a[nl.XFRMA_TMPL]; len(v) >= nl.SizeofXfrmUserTmpl; v = v[nl.SizeofXfrmUserTmpl:] {
		ut, _ := fromBytes[nl.XfrmUserTmpl](v)
		t := Template{Mode: Mode(ut.Mode), Reqid: ut.Reqid, SPI: fromBE32(ut.XfrmId.Spi), Proto: protoOf(ut.XfrmId.Proto)}
		if ut.Mode == uint8(ModeTunnel) || ut.Saddr != (nl.XfrmAddress{}) {
			t.Src, t.Dst = addrFrom(ut.Family, ut.Saddr), addrFrom(ut.Family, ut.XfrmId.Daddr)
		}
		p.Templates = append(p.Templates, t)
	}
	if v, ok := a[nl.XFRMA_MARK]; ok {
		if m, err := fromBytes[nl.XfrmMark](v); err == nil {
			p.Mark = Mark{Value: m.Value, Mask: m.Mask}
		}
	}
	if v, ok := a[nl.XFRMA_IF_ID]; ok && len(v) >= 4 {
		p.IfID = native.Uint32(v)
	}
	return p, nil
}
