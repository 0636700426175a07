package daemon

import (
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// The daemon's own addresses and routes, for MOBIKE: the engine does not
// watch netlink; the daemon subscribes to address and route changes
// (RTM_NEWADDR/DELADDR, RTM_NEWROUTE/DELROUTE), waits for a burst of them
// to settle, and hands the engine the addresses it has now
// (Engine.AddressesChanged). An IKE SA whose path went away then moves
// (ike/mobike.go).

// addrSettle is how long address and route events must be quiet before
// the engine hears of them: an interface going down brings a burst.
const addrSettle = 300 * time.Millisecond

// watchAddresses subscribes to address and route changes and reports the
// current addresses to the engine, once at the start and after each
// settled burst of changes.
func (d *Daemon) watchAddresses() error {
	done := make(chan struct{})
	addrs := make(chan netlink.AddrUpdate, 64)
	routes := make(chan netlink.RouteUpdate, 256)
	errs := func(err error) { d.knlLog.Debug(fmt.Sprintf("netlink address watch: %v", err)) }
	if err := netlink.AddrSubscribeWithOptions(addrs, done, netlink.AddrSubscribeOptions{ErrorCallback: errs}); err != nil {
		close(done)
		return fmt.Errorf("subscribe to address changes: %w", err)
	}
	if err := netlink.RouteSubscribeWithOptions(routes, done, netlink.RouteSubscribeOptions{ErrorCallback: errs}); err != nil {
		close(done)
		return fmt.Errorf("subscribe to route changes: %w", err)
	}
	d.reportAddresses(nil)
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		defer close(done)
		var settle <-chan time.Time
		var last []netip.Addr
		for {
			select {
			case <-d.stop:
				return
			case _, ok := <-addrs:
				if !ok {
					return
				}
				settle = time.After(addrSettle)
			case _, ok := <-routes:
				if !ok {
					return
				}
				settle = time.After(addrSettle)
			case <-settle:
				settle = nil
				last = d.reportAddresses(last)
			}
		}
	}()
	return nil
}

// reportAddresses tells the engine our addresses (every route change is
// told too: the source towards a peer may change with the same
// addresses) and returns them.
func (d *Daemon) reportAddresses(last []netip.Addr) []netip.Addr {
	now, err := localAddresses()
	if err != nil {
		d.knlLog.Info(fmt.Sprintf("listing our addresses failed: %v", err))
		return last
	}
	if !slices.Equal(now, last) {
		d.knlLog.Debug(fmt.Sprintf("our addresses: %v", now))
	}
	d.engine.AddressesChanged(now)
	return now
}

// localAddresses are the host's usable addresses: global scope, not
// tentative or deprecated (IPv6), sorted.
func localAddresses() ([]netip.Addr, error) {
	list, err := netlink.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return nil, err
	}
	return usableAddresses(list), nil
}

// usableAddresses keeps the addresses IKE may use of a netlink listing.
func usableAddresses(list []netlink.Addr) []netip.Addr {
	var out []netip.Addr
	for _, a := range list {
		if a.Scope != unix.RT_SCOPE_UNIVERSE || a.Flags&(unix.IFA_F_TENTATIVE|unix.IFA_F_DADFAILED|unix.IFA_F_DEPRECATED) != 0 {
			continue
		}
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok || ip.IsLoopback() || ip.IsLinkLocalUnicast() {
			continue
		}
		out = append(out, ip.Unmap())
	}
	slices.SortFunc(out, func(a, b netip.Addr) int { return a.Compare(b) })
	return slices.Compact(out)
}
