package ike

import (
	"fmt"
	"net/netip"
	"time"
)

// IKESAInfo describes an IKE SA (swanctl --list-sas).
type IKESAInfo struct {
	ID                uint32
	Version           int // 1 or 2
	Name              string
	State             IKESAState
	Initiator         bool
	SPIi, SPIr        uint64
	Local, Remote     netip.AddrPort
	LocalID, RemoteID Identity
	NATLocal          bool
	NATRemote         bool
	Proposal          string
	// EAPIdentity is the identity the peer authenticated with by EAP (or
	// we did, as the client), if any.
	EAPIdentity string
	// LocalVIPs are the virtual IPs we received, RemoteVIPs those we
	// assigned to the peer from a pool.
	LocalVIPs, RemoteVIPs []netip.Addr
	// DNSServers are those the gateway sent us with our virtual IPs.
	DNSServers []netip.Addr
	// Established is when it got established (zero before); a restart
	// keeps it.
	Established time.Time
	Children    []ChildSAInfo
}

// ChildSAInfo describes a CHILD_SA.
type ChildSAInfo struct {
	ID                uint32
	Name              string
	State             ChildSAState
	SPIIn, SPIOut     uint32
	Protocol          SAProto // ESP or AH
	Mode              Mode
	Proposal          string
	LocalTS, RemoteTS []TrafficSelector
	ReqID             uint32
	// Encap says whether its SAs are in UDP (RFC 3948): behind a NAT or
	// with encapsulation forced (encap = yes) on either side.
	Encap bool
	// InstalledAt is when its SAs went in (zero before), by the
	// engine's clock.
	InstalledAt time.Time
}

// IKESAs lists the IKE SAs, oldest first.
func (e *Engine) IKESAs() []IKESAInfo {
	e.mu.Lock()
	defer e.unlock()
	var out []IKESAInfo
	for _, sa := range e.allSAs() {
		out = append(out, sa.info(true))
	}
	return append(out, e.v1Infos()...)
}

func (e *Engine) ikeSA(id uint32) (*ikeSA, error) {
	if sa := e.byID[id]; sa != nil && sa.state != IKESADestroying {
		return sa, nil
	}
	return nil, fmt.Errorf("%w: IKE_SA [%d]", ErrUnknownSA, id)
}

func (e *Engine) childSA(id uint32) (*childSA, error) {
	if c := e.childIdx[id]; c != nil && c.ike.childByID(id) == c {
		return c, nil
	}
	return nil, fmt.Errorf("%w: CHILD_SA {%d}", ErrUnknownSA, id)
}

// RekeyIKESA rekeys an established IKE SA (swanctl --rekey --ike-id).
func (e *Engine) RekeyIKESA(id uint32) error {
	e.mu.Lock()
	defer e.unlock()
	if v1 := e.v1SAByID(id); v1 != nil {
		// IKEv1 cannot rekey an ISAKMP SA: it is reauthenticated.
		if v1.state != IKESAEstablished || !v1.initiatorCapable() {
			return fmt.Errorf("%w: IKE_SA %s is not established or has no remote address to reauthenticate to", ErrUnknownSA, v1.name())
		}
		v1.reauthenticate()
		return nil
	}
	sa, err := e.ikeSA(id)
	if err != nil {
		return err
	}
	sa.rekey()
	return nil
}

// RekeyChildSA rekeys a CHILD_SA (swanctl --rekey --child-id).
func (e *Engine) RekeyChildSA(id uint32) error {
	e.mu.Lock()
	defer e.unlock()
	if c := e.v1ChildByID(id); c != nil {
		if c.state != ChildSAInstalled || c.ike.state != IKESAEstablished {
			return fmt.Errorf("%w: CHILD_SA %s is %v", ErrUnknownSA, c.name(), c.state)
		}
		c.state = ChildSARekeying
		infof(c.ike.log, "rekeying CHILD_SA %s", c.name())
		c.ike.startQuick(c.cfg, c)
		return nil
	}
	c, err := e.childSA(id)
	if err != nil {
		return err
	}
	c.ike.tm.queue(newChildRekey(c.ike, true, c))
	c.ike.tm.initiate()
	return nil
}

// CreateChildSA negotiates another CHILD_SA of the IKE SA's connection:
// with CREATE_CHILD_SA over an IKEv2 SA, in a Quick Mode over an
// established ISAKMP SA (swanctl --initiate --child does the same). A
// CHILD_SA of that config already installed on the IKE SA is not
// negotiated again: the error wraps ErrChildExists and names it.
func (e *Engine) CreateChildSA(ikeID uint32, child string) error {
	e.mu.Lock()
	defer e.unlock()
	if v1 := e.v1SAByID(ikeID); v1 != nil {
		return v1.createChild(child)
	}
	sa, err := e.ikeSA(ikeID)
	if err != nil {
		return err
	}
	for _, cc := range sa.conn.children {
		if cc.Name == child {
			if dup := duplicateChild(sa.children, cc); dup != nil {
				return refuseDuplicate(cc, dup)
			}
			sa.tm.queue(newChildCreate(sa, true, cc, nil))
			sa.tm.initiate()
			return nil
		}
	}
	return fmt.Errorf("%w: child %q", ErrUnknownConnection, child)
}

// createChild starts a Quick Mode for a child config of the ISAKMP SA's
// connection, which the SA lists as a CHILD_SA being created until it is
// installed or fails.
func (sa *v1SA) createChild(child string) error {
	if sa.state != IKESAEstablished || sa.deleted {
		return fmt.Errorf("%w: IKE_SA %s is %v", ErrUnknownSA, sa.name(), sa.state)
	}
	for _, cc := range sa.conn.children {
		if cc.Name == child {
			if dup := duplicateChild(sa.children, cc); dup != nil {
				return refuseDuplicate(cc, dup)
			}
			infof(sa.log, "establishing CHILD_SA %s in a Quick Mode of IKE_SA %s", child, sa.name())
			return sa.startQuick(cc, nil)
		}
	}
	return fmt.Errorf("%w: child %q", ErrUnknownConnection, child)
}

// DeleteIKESA deletes an IKE SA and its CHILD_SAs (swanctl --terminate --ike-id).
func (e *Engine) DeleteIKESA(id uint32) error {
	e.mu.Lock()
	defer e.unlock()
	if v1 := e.v1SAByID(id); v1 != nil {
		v1.ending(EndAdmin)
		v1.delete()
		return nil
	}
	sa, err := e.ikeSA(id)
	if err != nil {
		return err
	}
	sa.ending(EndAdmin)
	sa.delete()
	return nil
}

// delete deletes the IKE SA and its CHILD_SAs, telling the peer once it
// is established.
func (sa *ikeSA) delete() {
	if sa.state < IKESAEstablished {
		sa.destroy()
		return
	}
	sa.tm.queue(newIKEDelete(sa))
	sa.tm.initiate()
}

// DeleteChildSA deletes a CHILD_SA (swanctl --terminate --child-id).
func (e *Engine) DeleteChildSA(id uint32) error {
	e.mu.Lock()
	defer e.unlock()
	if c := e.v1ChildByID(id); c != nil {
		c.ike.deleteChild(c)
		return nil
	}
	c, err := e.childSA(id)
	if err != nil {
		return err
	}
	c.ike.tm.queue(newChildDelete(c.ike, true, c))
	c.ike.tm.initiate()
	return nil
}
