package ike

import (
	"net/netip"
	"slices"
)

// Observer is told of IKE SA and CHILD_SA events, as charon's bus tells
// its listeners (ike_updown, ike_rekey, child_updown, child_rekey): the
// VICI server's events hang on it. It is called with the engine's lock
// held, on the engine's goroutine: it must return quickly and must not
// call the Engine. The infos are copies it may keep.
//
// IKEv1 SAs report them too: a reauthentication is a new ISAKMP SA (up)
// and the old one going (down), as IKEv1 has no IKE SA rekey.
type Observer interface {
	// IKEUpDown: an IKE SA was established (up) or an established one
	// went away (not when it was rekeyed: that is IKERekey).
	IKEUpDown(sa IKESAInfo, up bool)
	// IKERekey: old was rekeyed into new.
	IKERekey(old, new IKESAInfo)
	// ChildUpDown: a CHILD_SA was installed (up), or an installed one
	// went away (not when it was rekeyed: that is ChildRekey). sa has no
	// Children.
	ChildUpDown(sa IKESAInfo, child ChildSAInfo, up bool)
	// ChildRekey: old was rekeyed into new; sa has no Children.
	ChildRekey(sa IKESAInfo, old, new ChildSAInfo)
	// IKEUpdate: the IKE SA's outer addresses are about to change to
	// local and remote (MOBIKE, a peer's NAT mapping that changed, as
	// charon's ike_update): sa has the old ones.
	IKEUpdate(sa IKESAInfo, local, remote netip.AddrPort)
}

// SetObserver has the engine report events to o; nil stops them. Without
// one, events cost a nil check.
func (e *Engine) SetObserver(o Observer) {
	e.mu.Lock()
	defer e.unlock()
	e.observer = o
}

// info describes the IKE SA, with its CHILD_SAs if children.
func (sa *ikeSA) info(children bool) IKESAInfo {
	i := IKESAInfo{
		ID: sa.id, Name: sa.conn.Name, State: sa.state, Initiator: sa.initiator,
		SPIi: sa.spiI, SPIr: sa.spiR, Local: sa.local, Remote: sa.remote,
		LocalID: sa.localID, RemoteID: sa.remoteID, NATLocal: sa.natLocal, NATRemote: sa.natRemote,
		Proposal: sa.proposal.String(), Version: 2,
		EAPIdentity: sa.eapIdentity, LocalVIPs: append([]netip.Addr(nil), sa.localVIPs...), RemoteVIPs: sa.vipAddrs(),
		DNSServers: slices.Clone(sa.dnsServers), Established: sa.establishedAt,
	}
	if children {
		for _, c := range sa.children {
			i.Children = append(i.Children, c.info())
		}
	}
	return i
}

func (c *childSA) info() ChildSAInfo {
	return ChildSAInfo{ID: c.id, Name: c.cfg.Name, State: c.state, SPIIn: c.spiIn,
		SPIOut: c.spiOut, Protocol: c.proto(), Mode: c.mode, Proposal: c.proposal.String(), LocalTS: slices.Clone(c.localTS),
		RemoteTS: slices.Clone(c.remoteTS), ReqID: c.reqID(), Encap: c.encap, InstalledAt: c.installedAt}
}

func (sa *ikeSA) notifyUpDown(up bool) {
	if o := sa.e.observer; o != nil {
		o.IKEUpDown(sa.info(false), up)
	}
}

// notifyUpdate reports that the IKE SA moves to local and remote, before
// it does; nothing when neither changes.
func (sa *ikeSA) notifyUpdate(local, remote netip.AddrPort) {
	if o := sa.e.observer; o != nil && (local != sa.local || remote != sa.remote) {
		o.IKEUpdate(sa.info(false), local, remote)
	}
}

func (sa *v1SA) notifyUpdate(local, remote netip.AddrPort) {
	if o := sa.e.observer; o != nil && (local != sa.local || remote != sa.remote) {
		o.IKEUpdate(sa.info(false), local, remote)
	}
}

func (sa *ikeSA) notifyRekey(n *ikeSA) {
	sa.rekeyedAway = true
	if o := sa.e.observer; o != nil {
		o.IKERekey(sa.info(false), n.info(false))
	}
}

// notifyChild reports a new CHILD_SA: up, or a rekey of old.
func (c *childSA) notifyNew(old *childSA) {
	if old != nil {
		c.ike.e.count(c.ike.conn.Name, CounterChildRekey)
	}
	o := c.ike.e.observer
	if o == nil {
		return
	}
	if old == nil {
		o.ChildUpDown(c.ike.info(false), c.info(), true)
	} else {
		o.ChildRekey(c.ike.info(false), old.info(), c.info())
	}
}

// notifyDown reports an installed CHILD_SA that goes, once, unless it
// was rekeyed.
func (c *childSA) notifyDown() {
	o := c.ike.e.observer
	if o == nil || c.downSent || c.state < ChildSAInstalled || c.state == ChildSADestroying || c.rekeyed {
		return
	}
	c.downSent = true
	o.ChildUpDown(c.ike.info(false), c.info(), false)
}

// info describes the ISAKMP SA, with its IPsec SAs if children.
func (sa *v1SA) info(children bool) IKESAInfo {
	i := IKESAInfo{ID: sa.id, Version: 1, Name: sa.conn.Name, State: sa.state, Initiator: sa.initiator,
		SPIi: sa.ckyI, SPIr: sa.ckyR, Local: sa.local, Remote: sa.remote, LocalID: sa.localID, RemoteID: sa.remoteID,
		NATLocal: sa.natLocal, NATRemote: sa.natRemote, Proposal: sa.proposal,
		EAPIdentity: sa.eapIdentity, LocalVIPs: slices.Clone(sa.localVIPs), RemoteVIPs: sa.vipAddrs(),
		DNSServers: slices.Clone(sa.dnsServers), Established: sa.establishedAt}
	if children {
		for _, c := range sa.children {
			i.Children = append(i.Children, c.info())
		}
	}
	return i
}

func (c *v1Child) info() ChildSAInfo {
	return ChildSAInfo{ID: c.id, Name: c.cfg.Name, State: c.state, SPIIn: c.spiIn,
		SPIOut: c.spiOut, Protocol: c.proto(), Mode: c.mode, Proposal: c.proposal, LocalTS: slices.Clone(c.localTS), RemoteTS: slices.Clone(c.remoteTS), ReqID: c.reqID(), Encap: c.encap, InstalledAt: c.installedAt}
}

// notifyDown reports an installed IPsec SA that goes, once, unless it was
// rekeyed.
func (c *v1Child) notifyDown() {
	o := c.ike.e.observer
	if o == nil || c.downSent || c.state < ChildSAInstalled || c.state == ChildSADestroying || c.state == ChildSARekeyed {
		return
	}
	c.downSent = true
	o.ChildUpDown(c.ike.info(false), c.info(), false)
}
