package daemon

import (
	"net"
	"net/netip"
	"slices"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// usableAddresses keeps what MOBIKE may move to: global addresses, not
// loopback, link-local, tentative, failed or deprecated ones, each once,
// sorted.
func TestUsableAddresses(t *testing.T) {
	addr := func(s string, scope int, flags int) netlink.Addr {
		return netlink.Addr{IPNet: &net.IPNet{IP: net.ParseIP(s)}, Scope: scope, Flags: flags}
	}
	got := usableAddresses([]netlink.Addr{
		addr("192.0.2.20", unix.RT_SCOPE_UNIVERSE, 0),
		addr("127.0.0.1", unix.RT_SCOPE_HOST, 0),
		addr("fe80::1", unix.RT_SCOPE_LINK, 0),
		addr("2001:db8::5", unix.RT_SCOPE_UNIVERSE, unix.IFA_F_TENTATIVE),
		addr("2001:db8::6", unix.RT_SCOPE_UNIVERSE, unix.IFA_F_DEPRECATED),
		addr("2001:db8::7", unix.RT_SCOPE_UNIVERSE, unix.IFA_F_DADFAILED),
		addr("2001:db8::8", unix.RT_SCOPE_UNIVERSE, 0),
		addr("192.0.2.10", unix.RT_SCOPE_UNIVERSE, 0),
		addr("192.0.2.10", unix.RT_SCOPE_UNIVERSE, 0),
	})
	want := []netip.Addr{netip.MustParseAddr("192.0.2.10"), netip.MustParseAddr("192.0.2.20"), netip.MustParseAddr("2001:db8::8")}
	if !slices.Equal(got, want) {
		t.Errorf("usable addresses %v, want %v", got, want)
	}
}
