package dataplane

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/xdpsec/xdpsec/maps/xfrm"
)

// Tunnels is the dataplane's part of the host's routing: route-based
// CHILD_SAs get their XFRM interface and routes of their remote selectors
// into it (the interface's if_id makes the kernel find the catch-all
// policy of that if_id for everything routed there); in the client role,
// the virtual IPs the gateway assigned us go on the interface toward it,
// and policy-based CHILD_SAs get routes in ClientTable with the virtual
// IP as their source. KernelConfig.Tunnels nil leaves all this to the
// operator.
type Tunnels interface {
	// Interface returns the ifindex of the XFRM interface for if_id: one
	// that exists already (given by the operator), or a new one.
	Interface(ifID uint32) (int, error)
	AddRoute(r Route) error
	// DeleteRoute removes a route AddRoute made; one gone already is fine.
	DeleteRoute(r Route) error
	// PathTo is the interface and gateway (invalid: on link) of the
	// route to dst.
	PathTo(dst netip.Addr) (ifindex int, gw netip.Addr, err error)
	// FindAddress says on which interface a is (0: none) and whether it
	// is one of ours (AddAddress's).
	FindAddress(a netip.Addr) (ifindex int, ours bool, err error)
	// AddAddress puts a on the interface as a host address (/32, /128)
	// without a prefix route; DeleteAddress removes it.
	AddAddress(a netip.Addr, ifindex int) error
	DeleteAddress(a netip.Addr, ifindex int) error
	// AddRule makes sure the rule sending lookups to ClientTable exists
	// (at most one); DeleteRule removes it.
	AddRule(v6 bool) error
	DeleteRule(v6 bool) error
}

// Route is a route the dataplane installs.
type Route struct {
	Dst     netip.Prefix
	Ifindex int
	Gateway netip.Addr // invalid: on link
	Src     netip.Addr // preferred source (our virtual IP), invalid for none
	Table   int        // 0: main
}

func (r Route) String() string {
	s := r.Dst.String()
	if r.Gateway.IsValid() {
		s += " via " + r.Gateway.String()
	}
	s += fmt.Sprintf(" ifindex %d", r.Ifindex)
	if r.Src.IsValid() {
		s += " src " + r.Src.String()
	}
	if r.Table != 0 {
		s += fmt.Sprintf(" table %d", r.Table)
	}
	return s
}

// ClientTable is the routing table of the client role's policy-based
// routes, and the priority of the rule that looks it up: charon's
// (routing_table and routing_table_prio, both 220), so guides and
// operators' habits apply.
const ClientTable = 220

// tunnelName names the interfaces the daemon creates: "xdpsec" and the
// if_id in hex, within the 15 characters Linux allows.
func tunnelName(ifID uint32) string { return fmt.Sprintf("xdpsec%x", ifID) }

// NetlinkTunnels is the real Tunnels.
type NetlinkTunnels struct {
	Kernel *xfrm.Conn
	// Handle is the rtnetlink handle for routes, addresses and rules;
	// nil: the calling thread's namespace.
	Handle *netlink.Handle
	// ifaces remembers the XFRM interfaces by if_id (NewNetlinkTunnels);
	// nil lists the host's interfaces on every Interface call.
	ifaces *ifaceCache
}

// NewNetlinkTunnels is NetlinkTunnels remembering the XFRM interfaces it
// found or made: with thousands of route-based CHILD_SAs, listing every
// interface of the host for each of them took most of the time of a
// bring-up (one dump of N interfaces per CHILD_SA).
func NewNetlinkTunnels(k *xfrm.Conn, h *netlink.Handle) NetlinkTunnels {
	return NetlinkTunnels{Kernel: k, Handle: h, ifaces: &ifaceCache{}}
}

// ifaceCache maps if_ids to the ifindex of their XFRM interface.
type ifaceCache struct {
	mu     sync.Mutex // guards byIfID
	byIfID map[uint32]int
}

func (t NetlinkTunnels) nl() *netlink.Handle {
	if t.Handle != nil {
		return t.Handle
	}
	return &netlink.Handle{}
}

// Interface finds an XFRM interface with the if_id, or creates one. With
// a cache, a remembered interface is checked with one request for its
// index (an operator may have deleted or replaced it); the host's
// interfaces are listed only the first time, and when one to be made
// exists already.
func (t NetlinkTunnels) Interface(ifID uint32) (int, error) {
	if t.ifaces == nil {
		return t.findInterface(ifID, true)
	}
	t.ifaces.mu.Lock()
	defer t.ifaces.mu.Unlock()
	if t.ifaces.byIfID != nil {
		if idx, ok := t.ifaces.byIfID[ifID]; ok {
			l, err := t.nl().LinkByIndex(idx)
			if x, isX := l.(*netlink.Xfrmi); err == nil && isX && x.Ifid == ifID {
				return idx, t.setUp(x)
			}
			delete(t.ifaces.byIfID, ifID)
		}
		idx, err := t.findInterface(ifID, false)
		if err == nil || !errors.Is(err, unix.EEXIST) {
			if err == nil {
				t.ifaces.byIfID[ifID] = idx
			}
			return idx, err
		}
		// Made meanwhile under another name: list them again.
	}
	return t.findInterface(ifID, true)
}

// findInterface lists the host's interfaces (list) for one with the if_id,
// and creates one if there is none. With a cache, the list fills it.
func (t NetlinkTunnels) findInterface(ifID uint32, list bool) (int, error) {
	if list {
		links, err := t.nl().LinkList()
		if err != nil {
			return 0, fmt.Errorf("list interfaces: %w", err)
		}
		if t.ifaces != nil {
			t.ifaces.byIfID = map[uint32]int{}
		}
		found := -1
		for _, l := range links {
			x, ok := l.(*netlink.Xfrmi)
			if !ok {
				continue
			}
			if t.ifaces != nil {
				t.ifaces.byIfID[x.Ifid] = x.Attrs().Index
			}
			if x.Ifid == ifID && found < 0 {
				if err := t.setUp(x); err != nil {
					return 0, err
				}
				found = x.Attrs().Index
			}
		}
		if found >= 0 {
			return found, nil
		}
	}
	name := tunnelName(ifID)
	if err := t.Kernel.AddInterface(xfrm.Interface{Name: name, IfID: ifID, Up: true}); err != nil {
		return 0, fmt.Errorf("create XFRM interface %s for if_id %#x: %w", name, ifID, err)
	}
	l, err := t.nl().LinkByName(name)
	if err != nil {
		return 0, fmt.Errorf("XFRM interface %s: %w", name, err)
	}
	if t.ifaces != nil {
		t.ifaces.byIfID[ifID] = l.Attrs().Index
	}
	return l.Attrs().Index, nil
}

// setUp brings an XFRM interface up if it is down.
func (t NetlinkTunnels) setUp(x *netlink.Xfrmi) error {
	if x.Attrs().Flags&net.FlagUp != 0 {
		return nil
	}
	if err := t.nl().LinkSetUp(x); err != nil {
		return fmt.Errorf("set %s up: %w", x.Attrs().Name, err)
	}
	return nil
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func (r Route) netlink() *netlink.Route {
	nr := &netlink.Route{LinkIndex: r.Ifindex, Dst: ipNet(r.Dst), Scope: netlink.SCOPE_LINK, Protocol: routeProtocol, Table: r.Table}
	if r.Gateway.IsValid() {
		nr.Gw, nr.Scope = r.Gateway.AsSlice(), netlink.SCOPE_UNIVERSE
	}
	if r.Src.IsValid() {
		nr.Src = r.Src.AsSlice()
	}
	return nr
}

// routeProtocol marks the daemon's routes (RTPROT_STATIC would hide them
// among the operator's; strongSwan has no number either).
const routeProtocol = unix.RTPROT_STATIC

// AddRoute installs r (replacing a route to its destination in its table).
func (t NetlinkTunnels) AddRoute(r Route) error {
	if err := t.nl().RouteReplace(r.netlink()); err != nil {
		return fmt.Errorf("route %s: %w", r, err)
	}
	return nil
}

func (t NetlinkTunnels) DeleteRoute(r Route) error {
	if err := t.nl().RouteDel(r.netlink()); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("delete route %s: %w", r, err)
	}
	return nil
}

// PathTo asks the kernel for its route to dst, as a packet would get it.
func (t NetlinkTunnels) PathTo(dst netip.Addr) (int, netip.Addr, error) {
	rs, err := t.nl().RouteGet(dst.AsSlice())
	if err != nil || len(rs) == 0 || rs[0].LinkIndex == 0 {
		return 0, netip.Addr{}, fmt.Errorf("no route to %s: %v", dst, err)
	}
	gw, _ := netip.AddrFromSlice(rs[0].Gw)
	return rs[0].LinkIndex, gw.Unmap(), nil
}

// ourAddrFlags mark the addresses AddAddress makes: no prefix route, which
// is also how a restarted daemon tells its virtual IPs from the
// operator's addresses.
const ourAddrFlags = unix.IFA_F_NOPREFIXROUTE

func hostAddr(a netip.Addr, ifindex int) *netlink.Addr {
	flags := ourAddrFlags
	if a.Is6() {
		flags |= unix.IFA_F_NODAD
	}
	return &netlink.Addr{IPNet: ipNet(netip.PrefixFrom(a, a.BitLen())), LinkIndex: ifindex, Flags: flags}
}

func family(a netip.Addr) int {
	if a.Is4() {
		return unix.AF_INET
	}
	return unix.AF_INET6
}

func (t NetlinkTunnels) FindAddress(a netip.Addr) (int, bool, error) {
	list, err := t.nl().AddrList(nil, family(a))
	if err != nil {
		return 0, false, fmt.Errorf("list addresses: %w", err)
	}
	for _, x := range list {
		if got, ok := netip.AddrFromSlice(x.IP); ok && got.Unmap() == a {
			ones, bits := x.Mask.Size()
			return x.LinkIndex, ones == bits && x.Flags&ourAddrFlags != 0, nil
		}
	}
	return 0, false, nil
}

func (t NetlinkTunnels) AddAddress(a netip.Addr, ifindex int) error {
	l, err := t.nl().LinkByIndex(ifindex)
	if err != nil {
		return fmt.Errorf("interface %d: %w", ifindex, err)
	}
	if err := t.nl().AddrAdd(l, hostAddr(a, ifindex)); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("add %s to %s: %w", a, l.Attrs().Name, err)
	}
	return nil
}

func (t NetlinkTunnels) DeleteAddress(a netip.Addr, ifindex int) error {
	l, err := t.nl().LinkByIndex(ifindex)
	if err != nil {
		return fmt.Errorf("interface %d: %w", ifindex, err)
	}
	if err := t.nl().AddrDel(l, hostAddr(a, ifindex)); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
		return fmt.Errorf("remove %s from %s: %w", a, l.Attrs().Name, err)
	}
	return nil
}

func clientRule(v6 bool) *netlink.Rule {
	r := netlink.NewRule()
	r.Priority, r.Table, r.Family = ClientTable, ClientTable, unix.AF_INET
	if v6 {
		r.Family = unix.AF_INET6
	}
	return r
}

// AddRule adds `ip rule add priority 220 table 220` unless it exists:
// the kernel would keep duplicates.
func (t NetlinkTunnels) AddRule(v6 bool) error {
	r := clientRule(v6)
	have, err := t.nl().RuleListFiltered(r.Family, r, netlink.RT_FILTER_PRIORITY|netlink.RT_FILTER_TABLE)
	if err != nil {
		return fmt.Errorf("list rules: %w", err)
	}
	if len(have) > 0 {
		return nil
	}
	if err := t.nl().RuleAdd(r); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("rule priority %d table %d: %w", ClientTable, ClientTable, err)
	}
	return nil
}

func (t NetlinkTunnels) DeleteRule(v6 bool) error {
	if err := t.nl().RuleDel(clientRule(v6)); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("delete rule priority %d table %d: %w", ClientTable, ClientTable, err)
	}
	return nil
}
