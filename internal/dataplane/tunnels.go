package dataplane

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/xdpsec/xdpsec/maps/xfrm"
)

// Tunnels gives route-based CHILD_SAs their XFRM interface and routes
// their remote selectors into it: the interface's if_id makes the kernel
// find the catch-all policy of that if_id for everything routed there.
// KernelConfig.Tunnels nil leaves interfaces and routes to the operator.
type Tunnels interface {
	// Interface returns the ifindex of the XFRM interface for if_id: one
	// that exists already (given by the operator), or a new one.
	Interface(ifID uint32) (int, error)
	AddRoute(dst netip.Prefix, ifindex int) error
	DeleteRoute(dst netip.Prefix, ifindex int) error
}

// tunnelName names the interfaces the daemon creates: "xdpsec" and the
// if_id in hex, within the 15 characters Linux allows.
func tunnelName(ifID uint32) string { return fmt.Sprintf("xdpsec%x", ifID) }

// NetlinkTunnels is the real Tunnels.
type NetlinkTunnels struct {
	Kernel *xfrm.Conn
}

// Interface finds an XFRM interface with the if_id, or creates one.
func (t NetlinkTunnels) Interface(ifID uint32) (int, error) {
	links, err := netlink.LinkList()
	if err != nil {
		return 0, fmt.Errorf("list interfaces: %w", err)
	}
	for _, l := range links {
		if x, ok := l.(*netlink.Xfrmi); ok && x.Ifid == ifID {
			if x.Attrs().Flags&net.FlagUp == 0 {
				if err := netlink.LinkSetUp(l); err != nil {
					return 0, fmt.Errorf("set %s up: %w", x.Attrs().Name, err)
				}
			}
			return x.Attrs().Index, nil
		}
	}
	name := tunnelName(ifID)
	if err := t.Kernel.AddInterface(xfrm.Interface{Name: name, IfID: ifID, Up: true}); err != nil {
		return 0, fmt.Errorf("create XFRM interface %s for if_id %#x: %w", name, ifID, err)
	}
	ifc, err := net.InterfaceByName(name)
	if err != nil {
		return 0, fmt.Errorf("XFRM interface %s: %w", name, err)
	}
	return ifc.Index, nil
}

func route(dst netip.Prefix, ifindex int) *netlink.Route {
	return &netlink.Route{
		LinkIndex: ifindex,
		Dst:       &net.IPNet{IP: dst.Addr().AsSlice(), Mask: net.CIDRMask(dst.Bits(), dst.Addr().BitLen())},
		Scope:     netlink.SCOPE_LINK,
		Protocol:  routeProtocol,
	}
}

// routeProtocol marks the daemon's routes (RTPROT_STATIC would hide them
// among the operator's; strongSwan has no number either).
const routeProtocol = unix.RTPROT_STATIC

// AddRoute routes dst into the interface (replacing a route there already).
func (NetlinkTunnels) AddRoute(dst netip.Prefix, ifindex int) error {
	if err := netlink.RouteReplace(route(dst, ifindex)); err != nil {
		return fmt.Errorf("route %s into ifindex %d: %w", dst, ifindex, err)
	}
	return nil
}

// DeleteRoute removes a route AddRoute made; a route gone already is fine.
func (NetlinkTunnels) DeleteRoute(dst netip.Prefix, ifindex int) error {
	if err := netlink.RouteDel(route(dst, ifindex)); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("delete route %s: %w", dst, err)
	}
	return nil
}
