package daemon

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// A shared address with an interface (xdpsec.conf fleet.shared.NAME.
// interface, follow = always) is held by the daemon itself while it leads
// the address's election: added to the interface as a host address when
// elected (before the takeover, whose MID sync goes out from it), with a
// gratuitous ARP so that the neighbours' caches move to this box, and
// removed when the leadership ends. Without an interface keepalived (its
// notify calls `xdpsec fleet notify`) or routing moves the address.

// hostPrefix is a as a /32 or /128.
func hostPrefix(a netip.Addr) *netlink.Addr {
	bits := a.BitLen()
	return &netlink.Addr{IPNet: &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(bits, bits)}}
}

// holdSharedAddr adds a to the interface (being there already is no
// error) and announces it.
func holdSharedAddr(ifname string, a netip.Addr) error {
	l, err := netlink.LinkByName(ifname)
	if err != nil {
		return fmt.Errorf("interface %s: %w", ifname, err)
	}
	na := hostPrefix(a)
	// No DAD: the address moves to us on purpose, and a tentative
	// IPv6 address could not send the MID sync.
	na.Flags = unix.IFA_F_NODAD
	if err := netlink.AddrAdd(l, na); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("adding %s to %s: %w", a, ifname, err)
	}
	if a.Is4() {
		if err := gratuitousARP(l, a); err != nil {
			return fmt.Errorf("gratuitous ARP for %s on %s: %w", a, ifname, err)
		}
	}
	return nil
}

// dropSharedAddr removes a from the interface (absent is no error).
func dropSharedAddr(ifname string, a netip.Addr) error {
	l, err := netlink.LinkByName(ifname)
	if err != nil {
		return fmt.Errorf("interface %s: %w", ifname, err)
	}
	if err := netlink.AddrDel(l, hostPrefix(a)); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
		return fmt.Errorf("removing %s from %s: %w", a, ifname, err)
	}
	return nil
}

// gratuitousARP broadcasts an ARP request for a from a with the link's
// hardware address (RFC 5227 section 3, an ARP announcement): neighbours
// that cache a update their entry to this box.
func gratuitousARP(l netlink.Link, a netip.Addr) error {
	hw := l.Attrs().HardwareAddr
	if len(hw) != 6 {
		return nil // not Ethernet: nothing to announce
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ARP)))
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ip := a.As4()
	// ARP over Ethernet (RFC 826): hardware type 1, protocol IPv4,
	// lengths 6 and 4, operation request; sender and target protocol
	// address both a, target hardware address zero.
	pkt := make([]byte, 28)
	binary.BigEndian.PutUint16(pkt[0:], 1)
	binary.BigEndian.PutUint16(pkt[2:], unix.ETH_P_IP)
	pkt[4], pkt[5] = 6, 4
	binary.BigEndian.PutUint16(pkt[6:], 1)
	copy(pkt[8:14], hw)
	copy(pkt[14:18], ip[:])
	copy(pkt[24:28], ip[:])
	to := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ARP), Ifindex: l.Attrs().Index, Halen: 6}
	copy(to.Addr[:], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	return unix.Sendto(fd, pkt, 0, to)
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }
