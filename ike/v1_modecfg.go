package ike

// Mode Config (draft-dukes-ike-mode-cfg-02) after phase 1 and XAuth: the
// client's virtual IP and DNS servers, from the same pools as IKEv2's
// configuration payload and leased to the same identity (the XAuth user,
// else the IKE identity), so a user keeps its address whichever IKE
// version it comes with. Pull (the default, swanctl.conf's pull = yes):
//
//	CFG_REQUEST(INTERNAL_IP4_ADDRESS, INTERNAL_IP4_DNS, ...) -->
//	<-- CFG_REPLY(INTERNAL_IP4_ADDRESS=10.3.0.1, INTERNAL_IP4_DNS=...)
//
// push (pull = no): the gateway sends a CFG_SET, the client a CFG_ACK.
// To a client that sent the Cisco Unity vendor ID the reply adds
// UNITY_SPLIT_INCLUDE (the children's local selectors and the pools'
// split_include), as strongSwan's unity plugin does, and a Quick Mode of
// such a client for 0.0.0.0/0 is narrowed to the child's local selector.

import (
	"net/netip"
	"strings"

	"github.com/xdpsec/xdpsec/ike/isakmp"
	"github.com/xdpsec/xdpsec/ike/message"
)

// startModeCfg starts Mode Config once the ISAKMP SA is established: a
// client with vips asks for its address (pull) or waits for it (push),
// a gateway with pools in push mode sends it. It reports whether the
// Quick Modes wait for the virtual IP (modeCfgDone).
func (sa *v1SA) startModeCfg() bool {
	c := sa.conn
	switch {
	case len(c.VIPs) > 0:
		sa.waitModeCfg = true
		if c.Push {
			sa.log.Info("waiting for Mode Config push of the virtual IP")
			sa.after(sa.e.cfg.HalfOpenTimeout, func() {
				if sa.waitModeCfg {
					sa.log.Info("no virtual IP received, Mode Config push did not come")
					sa.modeCfgDone()
				}
			})
			return true
		}
		cp := &isakmp.ConfigAttributes{CfgType: isakmp.CfgRequest, Identifier: sa.txnIdentifier()}
		vips := c.VIPs
		if len(sa.reauthVIPs) > 0 {
			// A reauthentication keeps the addresses (the gateway
			// leases them to the same user).
			vips = sa.reauthVIPs
		}
		for _, v := range vips {
			var val []byte
			if !v.IsUnspecified() {
				val = v.AsSlice()
			}
			if v.Is4() {
				cp.Attributes = append(cp.Attributes, isakmp.ModeCfgAttribute(isakmp.InternalIP4Address, val),
					isakmp.ModeCfgAttribute(isakmp.InternalIP4DNS, nil))
			} else {
				cp.Attributes = append(cp.Attributes, isakmp.ModeCfgAttribute(isakmp.InternalIP6Address, val),
					isakmp.ModeCfgAttribute(isakmp.InternalIP6DNS, nil))
			}
		}
		sa.txnRequest(cp, "Mode Config request", func(r *isakmp.ConfigAttributes) {
			if r.CfgType != isakmp.CfgReply {
				infof(sa.log, "ignoring %v config payload answering our CFG_REQUEST", r.CfgType)
			} else {
				sa.modeCfgTake(r.Attributes)
			}
			sa.modeCfgDone()
		})
		return true
	case len(c.Pools) > 0 && c.Push:
		cp := &isakmp.ConfigAttributes{CfgType: isakmp.CfgSet, Identifier: sa.txnIdentifier(), Attributes: sa.modeCfgAssign(nil, true)}
		sa.txnRequest(cp, "Mode Config push", func(r *isakmp.ConfigAttributes) {
			if r.CfgType != isakmp.CfgAck {
				infof(sa.log, "received %v answering our CFG_SET, expected CFG_ACK", r.CfgType)
			}
		})
	}
	return false
}

// modeCfgDone starts the Quick Modes that waited for the virtual IP.
func (sa *v1SA) modeCfgDone() {
	if !sa.waitModeCfg || sa.deleted {
		return
	}
	sa.waitModeCfg = false
	sa.retireReplaced()
	sa.startPending()
}

// modeCfgTake keeps the virtual IPs and DNS servers the gateway assigned
// us and installs the virtual IPs.
func (sa *v1SA) modeCfgTake(attrs []isakmp.Attribute) {
	for _, a := range attrs {
		switch t := isakmp.ModeCfgAttr(a.Type); {
		case t == isakmp.InternalIP4Address && len(a.Value) == 4:
			sa.takeVIP(netip.AddrFrom4([4]byte(a.Value)))
		case t == isakmp.InternalIP6Address && (len(a.Value) == 16 || len(a.Value) == 17):
			sa.takeVIP(netip.AddrFrom16([16]byte(a.Value[:16])))
		case t == isakmp.InternalIP4DNS && len(a.Value) == 4, t == isakmp.InternalIP6DNS && len(a.Value) == 16:
			d, _ := netip.AddrFromSlice(a.Value)
			infof(sa.log, "received DNS server %s", d)
			sa.dnsServers = append(sa.dnsServers, d)
		}
	}
	if len(sa.localVIPs) == 0 {
		sa.log.Info("no virtual IP received")
		return
	}
	sa.installVIPs(false)
}

// modeCfgSet takes the gateway's push (we are its client) and
// acknowledges it: empty attributes for what we took.
func (sa *v1SA) modeCfgSet(ex *v1Exchange, cp *isakmp.ConfigAttributes) {
	ack := &isakmp.ConfigAttributes{CfgType: isakmp.CfgAck, Identifier: cp.Identifier}
	if len(sa.conn.VIPs) == 0 || !sa.waitModeCfg {
		sa.log.Info("ignoring Mode Config CFG_SET: no virtual IP asked for")
		sa.answerTxn(ex, ack)
		return
	}
	sa.modeCfgTake(cp.Attributes)
	for _, v := range sa.localVIPs {
		t := isakmp.InternalIP4Address
		if !v.Is4() {
			t = isakmp.InternalIP6Address
		}
		ack.Attributes = append(ack.Attributes, isakmp.ModeCfgAttribute(t, nil))
	}
	sa.answerTxn(ex, ack)
	sa.modeCfgDone()
}

// modeCfgRequest answers a client's pull with addresses from the pools.
func (sa *v1SA) modeCfgRequest(ex *v1Exchange, cp *isakmp.ConfigAttributes) {
	sa.answerTxn(ex, &isakmp.ConfigAttributes{CfgType: isakmp.CfgReply, Identifier: cp.Identifier,
		Attributes: sa.modeCfgAssign(cp.Attributes, false)})
}

// leaseIdentity is who a virtual IP is bound to: the XAuth user if the
// peer authenticated with XAuth, else its IKE identity.
func (sa *v1SA) leaseIdentity() string {
	if sa.eapIdentity != "" {
		return sa.eapIdentity
	}
	return sa.remoteID.String()
}

// modeCfgAssign leases virtual IPs to the peer and returns them with the
// pools' attributes: those requested (pull; one address per family), or
// one of the first family a pool has (push).
func (sa *v1SA) modeCfgAssign(req []isakmp.Attribute, push bool) []isakmp.Attribute {
	if len(sa.conn.Pools) == 0 && !sa.framedIP.IsValid() {
		return nil
	}
	id := sa.leaseIdentity()
	type want struct {
		addr netip.Addr
		is4  bool
	}
	var wants []want
	if push {
		wants = []want{{is4: true}}
	} else {
		var asked4, asked6 bool
		for _, a := range req {
			switch t := isakmp.ModeCfgAttr(a.Type); {
			case t == isakmp.InternalIP4Address && !asked4:
				asked4 = true
				w := want{is4: true}
				if len(a.Value) == 4 {
					w.addr = netip.AddrFrom4([4]byte(a.Value))
				}
				wants = append(wants, w)
			case t == isakmp.InternalIP6Address && !asked6:
				asked6 = true
				var w want
				if len(a.Value) == 16 || len(a.Value) == 17 {
					w.addr = netip.AddrFrom16([16]byte(a.Value[:16]))
				}
				wants = append(wants, w)
			}
		}
	}
	var out []isakmp.Attribute
	var used []*Pool
	for _, w := range wants {
		if w.addr.IsValid() && w.addr.IsUnspecified() {
			w.addr = netip.Addr{}
		}
		if !push {
			infof(sa.log, "peer requested virtual IP %s", anyAddr(w.addr, w.is4))
		}
		// A client asking again (or pushed to again) keeps what it has.
		addr, p := sa.heldVIP(w.is4)
		if !addr.IsValid() {
			addr, p = sa.leaseVIP(id, w.addr, w.is4)
		}
		if !addr.IsValid() && push {
			addr, p = sa.leaseVIP(id, netip.Addr{}, false)
		}
		if !addr.IsValid() {
			sa.e.stats.VIPFailures++
			infof(sa.log, "no virtual IP found for %s requested by '%s'", anyAddr(w.addr, w.is4), id)
			continue
		}
		infof(sa.log, "assigning virtual IP %s to peer '%s'", addr, id)
		t := isakmp.InternalIP4Address
		if !addr.Is4() {
			t = isakmp.InternalIP6Address
		}
		out = append(out, isakmp.ModeCfgAttribute(t, addr.AsSlice()))
		if p != nil && !containsPool(used, p) {
			used = append(used, p)
		}
	}
	if len(sa.vips) == 0 {
		return out
	}
	var include []netip.Prefix
	for _, p := range used {
		for _, a := range p.attributes() {
			out = append(out, v1ConfigAttr(a))
		}
		include = append(include, p.SplitInclude...)
		for _, s := range p.SplitExclude {
			out = append(out, isakmp.ModeCfgAttribute(isakmp.UnityLocalLAN, unitySubnets([]netip.Prefix{s})))
		}
		for _, a := range p.UnityAttrs {
			out = append(out, isakmp.ModeCfgAttribute(isakmp.ModeCfgAttr(a.Type), a.Value))
		}
	}
	if sa.peerUnity {
		include = append(include, sa.unitySplitInclude()...)
	}
	if len(include) > 0 {
		var names []string
		for _, p := range include {
			names = append(names, p.String())
		}
		infof(sa.log, "sending UNITY_SPLIT_INCLUDE: %s", strings.Join(names, " "))
		out = append(out, isakmp.ModeCfgAttribute(isakmp.UnitySplitInclude, unitySubnets(include)))
	}
	return out
}

// unitySplitInclude are the children's local selectors a Cisco Unity
// client routes through the tunnel: static IPv4 subnets other than
// 0.0.0.0/0 (strongSwan's unity plugin).
func (sa *v1SA) unitySplitInclude() []netip.Prefix {
	var out []netip.Prefix
	for _, c := range sa.conn.children {
		for _, s := range c.LocalTS {
			if s.Dynamic || !s.TS.Start.Is4() {
				continue
			}
			if p, ok := s.TS.Prefix(); ok && p.Bits() > 0 {
				out = append(out, p)
			}
		}
	}
	return out
}

// unitySubnets encodes subnets as Cisco Unity split attributes: address,
// netmask and six octets (protocol and ports Cisco's client reads, zero)
// each.
func unitySubnets(list []netip.Prefix) []byte {
	var b []byte
	for _, p := range list {
		if !p.Addr().Is4() {
			continue
		}
		p = p.Masked()
		b = append(b, p.Addr().AsSlice()...)
		b = append(b, prefixMask4(p.Bits())...)
		b = append(b, 0, 0, 0, 0, 0, 0)
	}
	return b
}

// unityWildcard reports whether a Quick Mode selector is the 0.0.0.0/0
// a Cisco Unity client proposes for the gateway's side when it received
// split includes: any address, protocol and port.
func unityWildcard(ts TrafficSelector) bool {
	return ts.Start == netip.IPv4Unspecified() && ts.End == netip.AddrFrom4([4]byte{255, 255, 255, 255}) &&
		ts.Protocol == 0 && ts.StartPort == 0 && ts.EndPort == 0xffff
}

// v1ConfigAttr converts an IKEv2 configuration attribute of a pool to
// Mode Config: the types below 26 have the same numbers and encodings.
func v1ConfigAttr(a message.ConfigAttribute) isakmp.Attribute {
	return isakmp.ModeCfgAttribute(isakmp.ModeCfgAttr(a.Type), a.Value)
}

// v1LocalTS resolves our selectors for a Quick Mode we start: dynamic is
// our virtual IP once the gateway assigned one, else our IKE address.
func (sa *v1SA) v1LocalTS(specs []TSSpec) []TrafficSelector {
	return resolveTSOn(specs, sa.localVIPs, sa.local.Addr())
}

// heldVIP is the virtual IP of the family the peer holds already, and
// its pool.
func (sa *v1SA) heldVIP(is4 bool) (netip.Addr, *Pool) {
	for _, v := range sa.vips {
		if v.addr.Is4() == is4 {
			if v.pool != nil {
				return v.addr, sa.e.pool(v.pool.Name())
			}
			return v.addr, nil
		}
	}
	return netip.Addr{}, nil
}
