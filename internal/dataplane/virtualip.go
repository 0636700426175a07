package dataplane

import (
	"fmt"
	"net/netip"

	"github.com/xdpsec/xdpsec/ike"
)

// The client role's virtual IPs, installed as charon's kernel-netlink
// does: the address as a host address (no prefix route) on the interface
// that routes to the gateway; policy-based CHILD_SAs get routes to their
// remote selectors in ClientTable (looked up by a rule of priority
// ClientTable) along the same path with the virtual IP as their source,
// so that what the host sends there leaves from the virtual IP and
// matches the policy; route-based ones get it as the source of their
// routes into the XFRM interface (addRoutes).

// vipState is a virtual IP the dataplane holds.
type vipState struct {
	ifindex int
	// ours: the dataplane put the address there (or a predecessor did);
	// an address the operator had is used as it is and left in place.
	ours bool
}

// AddVirtualIP puts the virtual IP on the interface toward the peer. An
// address there already is taken as it is: one of ours (a restarted
// daemon's) is removed later as if we had added it, someone else's is
// not.
func (d *KernelDataplane) AddVirtualIP(v *ike.VirtualIP) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !v.Addr.IsValid() {
		return fmt.Errorf("invalid virtual IP")
	}
	if d.vips[v.Addr] != nil {
		return nil
	}
	if d.tunnels == nil {
		return fmt.Errorf("virtual IP %s: this dataplane installs no addresses", v.Addr)
	}
	ifindex, ours, err := d.tunnels.FindAddress(v.Addr)
	if err != nil {
		return err
	}
	if ifindex != 0 {
		if !ours {
			d.log.Info(fmt.Sprintf("virtual IP %s is already installed (not by us): used as it is, and left in place", v.Addr))
		}
		d.vips[v.Addr] = &vipState{ifindex: ifindex, ours: ours}
		return nil
	}
	ifindex, _, err = d.tunnels.PathTo(v.Peer)
	if err != nil {
		return fmt.Errorf("virtual IP %s: %w", v.Addr, err)
	}
	if err := d.tunnels.AddAddress(v.Addr, ifindex); err != nil {
		return err
	}
	d.vips[v.Addr] = &vipState{ifindex: ifindex, ours: true}
	return nil
}

// DeleteVirtualIP removes a virtual IP AddVirtualIP installed.
func (d *KernelDataplane) DeleteVirtualIP(v *ike.VirtualIP) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	st := d.vips[v.Addr]
	if st == nil {
		return fmt.Errorf("virtual IP %s not installed", v.Addr)
	}
	delete(d.vips, v.Addr)
	if !st.ours {
		return nil
	}
	return d.tunnels.DeleteAddress(v.Addr, st.ifindex)
}

// addClientRoutes routes an outbound policy-based policy's remote
// selector in ClientTable when the policy has a virtual IP to route
// from: along the path to the peer, with the virtual IP as the source.
func (d *KernelDataplane) addClientRoutes(p *ike.Policy, ps *policyState) error {
	if !p.RouteSrc.IsValid() || d.tunnels == nil || p.Mode != ike.ModeTunnel {
		return nil
	}
	ifindex, gw, err := d.tunnels.PathTo(p.TmplDst)
	if err != nil {
		return err
	}
	if gw.IsValid() && gw.Is4() != p.RouteSrc.Is4() {
		// An IPv6 network over an IPv4 path (or the reverse): no
		// gateway of that family; the policy takes the packet first.
		gw = netip.Addr{}
	}
	v6 := p.RouteSrc.Is6()
	for _, dst := range rangePrefixes(p.Dst.Start, p.Dst.End) {
		if dst.Addr().Is6() != v6 {
			continue
		}
		if d.clientRoutes[famIndex(v6)] == 0 {
			if err := d.tunnels.AddRule(v6); err != nil {
				return err
			}
		}
		r := Route{Dst: dst, Ifindex: ifindex, Gateway: gw, Src: p.RouteSrc, Table: ClientTable}
		if err := d.tunnels.AddRoute(r); err != nil {
			if d.clientRoutes[famIndex(v6)] == 0 {
				d.tunnels.DeleteRule(v6)
			}
			return err
		}
		d.clientRoutes[famIndex(v6)]++
		ps.routes = append(ps.routes, r)
	}
	return nil
}

// clientRouteGone counts a route of ClientTable out; the rule goes with
// the last of its family.
func (d *KernelDataplane) clientRouteGone(v6 bool) error {
	i := famIndex(v6)
	if d.clientRoutes[i] == 0 {
		return nil
	}
	d.clientRoutes[i]--
	if d.clientRoutes[i] > 0 {
		return nil
	}
	return d.tunnels.DeleteRule(v6)
}

func famIndex(v6 bool) int {
	if v6 {
		return 1
	}
	return 0
}
