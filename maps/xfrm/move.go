package xfrm

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// Move is where MoveState takes an SA: new outer addresses and the UDP
// encapsulation the new path needs (nil for none).
type Move struct {
	Src, Dst netip.Addr
	Encap    *Encap
}

// MoveState moves an SA to other outer addresses (MOBIKE, RFC 4555) and
// keeps its SPI, keys, replay state, sequence numbers, lifetimes and
// counters. It reads the SA as the kernel holds it (XFRM_MSG_GETSA, keys
// and replay state included), deletes it and adds it again with the new
// addresses and encapsulation, its current lifetime (bytes, packets, add
// time) handed back in XFRMA_LTIME_VAL: the read-delete-add of
// strongSwan's kernel-netlink update_sa. XFRM_MSG_MIGRATE would do the
// same inside the kernel but moves SAs through a policy with their
// selector and old template addresses, which route-based CHILD_SAs share
// through one catch-all policy per interface ID, and it needs
// CONFIG_XFRM_MIGRATE.
//
// A device offload the SA had is not asked for again: the new address
// may sit on another device; the SA goes on in software. If the add
// fails, the SA is put back as it was.
func (c *Conn) MoveState(id SAID, to Move) error {
	if err := c.moveState(id, to); err != nil {
		return fmt.Errorf("move %s to %s → %s: %w", id, to.Src, to.Dst, err)
	}
	return nil
}

func (c *Conn) moveState(id SAID, to Move) error {
	if !to.Src.IsValid() || !to.Dst.IsValid() || to.Src.Unmap().Is4() != to.Dst.Unmap().Is4() {
		return errors.New("the new outer addresses must be of one family")
	}
	req, err := encodeSAID(nl.XFRM_MSG_GETSA, id)
	if err != nil {
		return err
	}
	var raw []byte // the SA as read, keys included: zeroed below
	defer func() { clear(raw) }()
	err = c.exec(c.xfrm, req, func(typ uint16, data []byte) error {
		if typ == nl.XFRM_MSG_NEWSA && raw == nil {
			raw = append(make([]byte, 0, len(data)), data...)
		}
		return nil
	})
	if err == nil && raw == nil {
		err = ErrNoSA
	}
	if err != nil {
		return classify(err, ErrNoSA)
	}
	info, err := fromBytes[nl.XfrmUsersaInfo](raw)
	if err != nil {
		return err
	}
	if familyOf(to.Dst) != info.Family {
		return errors.New("an SA cannot change its address family")
	}
	moved, err := movedState(raw, info, to)
	if err != nil {
		return err
	}
	defer moved.zero()
	back, err := movedState(raw, info, Move{})
	if err != nil {
		return err
	}
	defer back.zero()
	del, err := encodeSAID(nl.XFRM_MSG_DELSA, id)
	if err != nil {
		return err
	}
	if err := classify(c.exec(c.xfrm, del, nil), ErrNoSA); err != nil {
		return fmt.Errorf("delete: %w", err)
	}
	if err := classify(c.exec(c.xfrm, moved, nil), nil); err != nil {
		if rerr := classify(c.exec(c.xfrm, back, nil), nil); rerr != nil {
			return fmt.Errorf("add: %w; putting the SA back failed too: %v", err, rerr)
		}
		return fmt.Errorf("add (the SA is back where it was): %w", err)
	}
	return nil
}

// movedState builds the XFRM_MSG_NEWSA that adds the SA read as raw
// again, at to's addresses and encapsulation (a zero to: as it was,
// offload aside). The attributes the kernel sent come back unchanged
// (algorithms with keys, replay state, mark, interface ID), but for the
// encapsulation and the offload device; the current lifetime goes along.
func movedState(raw []byte, info nl.XfrmUsersaInfo, to Move) (*request, error) {
	encap := -1 // keep
	if to.Dst.IsValid() {
		info.Saddr = xfrmAddr(to.Src)
		info.Id.Daddr = xfrmAddr(to.Dst)
		encap = 0
		if to.Encap != nil {
			encap = 1
		}
	}
	req := newRequest(nl.XFRM_MSG_NEWSA, unix.NLM_F_ACK)
	req.fixed(structBytes(&info))
	b := raw[min(align4(nl.SizeofXfrmUsersaInfo), len(raw)):]
	for len(b) >= attrHdrLen {
		n := int(native.Uint16(b[0:]))
		typ := native.Uint16(b[2:]) &^ (unix.NLA_F_NESTED | unix.NLA_F_NET_BYTEORDER)
		if n < attrHdrLen || n > len(b) {
			req.zero()
			return nil, errors.New("malformed netlink attribute")
		}
		switch {
		case typ == nl.XFRMA_OFFLOAD_DEV, typ == nl.XFRMA_LTIME_VAL:
		case typ == nl.XFRMA_ENCAP && encap >= 0:
		default:
			req.attr(native.Uint16(b[2:]), b[attrHdrLen:n])
		}
		if align4(n) >= len(b) {
			break
		}
		b = b[align4(n):]
	}
	if encap == 1 {
		e := nl.XfrmEncapTmpl{EncapType: encapESPinUDP, EncapSport: be16(to.Encap.SrcPort), EncapDport: be16(to.Encap.DstPort)}
		req.attr(nl.XFRMA_ENCAP, structBytes(&e))
	}
	cur := info.Curlft
	req.attr(nl.XFRMA_LTIME_VAL, structBytes(&cur))
	return req, nil
}
