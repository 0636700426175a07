// Package ikesocket is the daemon's IKE transport: UDP sockets on the IKE
// port (500) and the NAT-T port (4500), for IPv4 and IPv6, that report the
// local address every datagram arrived on and send from the address a
// datagram names. The NAT-T sockets are marked for ESP-in-UDP
// decapsulation (RFC 3948), so the kernel takes the ESP and hands up only
// IKE (with its non-ESP marker); all sockets bypass IPsec policies, so IKE
// is never caught by the tunnels it negotiates.
//
// It knows nothing of IKE messages: it moves datagrams.
package ikesocket

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// Datagram is one UDP payload and its addresses.
type Datagram struct {
	Local, Remote netip.AddrPort
	Data          []byte
	// Received is when the kernel took the datagram in (SO_TIMESTAMPNS),
	// zero if it did not say.
	Received time.Time
}

// Config says what to listen on.
type Config struct {
	// Addrs to bind; empty binds the wildcard addresses of both families.
	Addrs []netip.Addr
	// Ports; zero values default to 500 and 4500.
	Port, NATTPort uint16
	// NoEncap leaves the NAT-T sockets without UDP_ENCAP (tests on kernels
	// without ESP, or when another daemon decapsulates).
	NoEncap bool
	// ReceiveBuffer and SendBuffer size each socket's kernel buffers, in
	// bytes: zero takes DefaultBufferSize, negative leaves the system's
	// default (net.core.rmem_default, wmem_default).
	ReceiveBuffer, SendBuffer int
	Log                       *slog.Logger
}

// DefaultBufferSize is the receive and send buffer of each IKE socket.
//
// The system's default receive buffer (net.core.rmem_default, 208 KiB on
// most distributions) holds about 200 small datagrams: terminating 2,000
// IKE SAs at once brings 2,000 DELETE responses within milliseconds, and a
// daemon that is busy for that long loses the rest (RcvbufErrors in
// /proc/net/snmp), leaving the SAs in DELETING until their retransmits
// give up. A datagram costs its truesize (its data plus the skb, up to a
// few KiB with some drivers) against the limit, so 8 MiB holds a few
// thousand of them. The limit costs nothing while the queue is short:
// the kernel charges memory as datagrams wait, not when it is set.
const DefaultBufferSize = 8 << 20

// Sockets is a set of listening IKE sockets.
type Sockets struct {
	conns []*sock
	log   *slog.Logger
	wg    sync.WaitGroup
	mu    sync.Mutex
	done  bool
}

type sock struct {
	conn *net.UDPConn
	addr netip.AddrPort // bound address
	v6   bool
}

// ErrClosed is returned by Send after Close.
var ErrClosed = errors.New("IKE sockets closed")

// Listen opens the sockets. A port in use is an error naming it, as
// charon says "unable to bind socket".
func Listen(cfg Config) (*Sockets, error) {
	if cfg.Port == 0 {
		cfg.Port = 500
	}
	if cfg.NATTPort == 0 {
		cfg.NATTPort = 4500
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	addrs := cfg.Addrs
	if len(addrs) == 0 {
		addrs = []netip.Addr{netip.IPv4Unspecified(), netip.IPv6Unspecified()}
	}
	s := &Sockets{log: cfg.Log}
	for _, a := range addrs {
		for _, port := range []uint16{cfg.Port, cfg.NATTPort} {
			encap := port == cfg.NATTPort && !cfg.NoEncap
			c, err := listen(netip.AddrPortFrom(a, port), encap, cfg)
			if err != nil {
				if a.Is6() && a.IsUnspecified() && len(cfg.Addrs) == 0 && errors.Is(err, syscall.EAFNOSUPPORT) {
					cfg.Log.Info("IPv6 unavailable, IKE on IPv4 only")
					break
				}
				s.Close()
				return nil, err
			}
			s.conns = append(s.conns, c)
		}
	}
	return s, nil
}

func listen(addr netip.AddrPort, encap bool, cfg Config) (*sock, error) {
	network := "udp4"
	if addr.Addr().Is6() {
		network = "udp6"
	}
	var sockErr error
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		err := rc.Control(func(fd uintptr) { sockErr = setupFD(int(fd), addr.Addr().Is6(), encap) })
		if err != nil {
			return err
		}
		return sockErr
	}}
	pc, err := lc.ListenPacket(nil, network, addr.String())
	if err != nil {
		return nil, fmt.Errorf("unable to bind IKE socket %s: %w", addr, err)
	}
	conn := pc.(*net.UDPConn)
	if err := sizeBuffers(conn, addr, cfg); err != nil {
		conn.Close()
		return nil, err
	}
	return &sock{conn: conn, addr: addr, v6: addr.Addr().Is6()}, nil
}

// sizeBuffers sets the socket's receive and send buffers. Like charon's
// kernel-netlink plugin with force_receive_buffer_size (charon's
// socket-default plugin leaves its IKE sockets at the system's default), it
// uses SO_RCVBUFFORCE and SO_SNDBUFFORCE, which may exceed
// net.core.rmem_max and wmem_max but need CAP_NET_ADMIN; without that it
// falls back to SO_RCVBUF and SO_SNDBUF, which the kernel caps at those
// maxima, and says so when the buffer it got is smaller than asked.
func sizeBuffers(conn *net.UDPConn, addr netip.AddrPort, cfg Config) error {
	raw, err := conn.SyscallConn()
	if err != nil {
		return err
	}
	for _, b := range []struct {
		name          string
		size          int
		force, normal int
		sysctl        string
	}{
		{"receive", cfg.ReceiveBuffer, unix.SO_RCVBUFFORCE, unix.SO_RCVBUF, "net.core.rmem_max"},
		{"send", cfg.SendBuffer, unix.SO_SNDBUFFORCE, unix.SO_SNDBUF, "net.core.wmem_max"},
	} {
		size := b.size
		if size < 0 {
			continue
		}
		if size == 0 {
			size = DefaultBufferSize
		}
		// The kernel doubles the value (for its bookkeeping) and caps it
		// at INT_MAX; halve the largest so the doubling cannot wrap.
		size = min(size, math.MaxInt32/2)
		var got int
		var serr error
		cerr := raw.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, b.force, size)
			if errors.Is(serr, unix.EPERM) {
				serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, b.normal, size)
			}
			if serr == nil {
				got, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, b.normal)
			}
		})
		if cerr != nil {
			return cerr
		}
		if serr != nil {
			return fmt.Errorf("IKE socket %s: setting its %s buffer to %d bytes: %w", addr, b.name, size, serr)
		}
		// What getsockopt reports is the doubled value.
		if got/2 < size {
			cfg.Log.Warn(fmt.Sprintf("IKE socket %s: %s buffer is %d bytes, not the %d asked for: without CAP_NET_ADMIN it is capped by %s",
				addr, b.name, got/2, size, b.sysctl))
		}
	}
	return nil
}

// setupFD asks for the local address of each datagram, marks the socket
// for ESP-in-UDP if asked, and makes it bypass IPsec policies.
func setupFD(fd int, v6, encap bool) error {
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
		return err
	}
	if v6 {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1); err != nil {
			return err
		}
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO, 1); err != nil {
			return fmt.Errorf("IPV6_RECVPKTINFO: %w", err)
		}
	} else if err := unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_PKTINFO, 1); err != nil {
		return fmt.Errorf("IP_PKTINFO: %w", err)
	}
	// The arrival time measures how long a response waits for us (the
	// window in which the peer may send on a CHILD_SA we have not
	// installed yet); without it Received stays zero.
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1)
	if encap {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_UDP, unix.UDP_ENCAP, unix.UDP_ENCAP_ESPINUDP); err != nil {
			return fmt.Errorf("UDP_ENCAP ESP-in-UDP: %w", err)
		}
	}
	return bypassPolicies(fd, v6)
}

// bypassPolicies installs per-socket XFRM policies that let the socket's
// traffic through in clear in both directions, whatever the SPD says.
func bypassPolicies(fd int, v6 bool) error {
	level, opt := unix.IPPROTO_IP, unix.IP_XFRM_POLICY
	if v6 {
		level, opt = unix.IPPROTO_IPV6, unix.IPV6_XFRM_POLICY
	}
	// Directions and action of linux/xfrm.h: XFRM_POLICY_IN, _OUT, _ALLOW.
	const dirIn, dirOut, actionAllow = 0, 1, 0
	for _, dir := range []uint8{dirIn, dirOut} {
		p := nl.XfrmUserpolicyInfo{Action: actionAllow, Dir: dir}
		p.Sel.Family = unix.AF_INET
		if v6 {
			p.Sel.Family = unix.AF_INET6
		}
		p.Lft.SoftByteLimit, p.Lft.HardByteLimit = nl.XFRM_INF, nl.XFRM_INF
		p.Lft.SoftPacketLimit, p.Lft.HardPacketLimit = nl.XFRM_INF, nl.XFRM_INF
		if err := unix.SetsockoptString(fd, level, opt, string(p.Serialize())); err != nil {
			return fmt.Errorf("bypass IPsec policy on IKE socket: %w", err)
		}
	}
	return nil
}

// Run reads from every socket and hands each datagram to handle, until
// Close. handle must not keep Data after it returns.
func (s *Sockets) Run(handle func(Datagram)) {
	for _, c := range s.conns {
		s.wg.Add(1)
		go func(c *sock) {
			defer s.wg.Done()
			s.readLoop(c, handle)
		}(c)
	}
}

// maxDatagram is the largest UDP payload: IKE messages are bounded by it.
const maxDatagram = 65535

func (s *Sockets) readLoop(c *sock, handle func(Datagram)) {
	buf := make([]byte, maxDatagram)
	oob := make([]byte, 128)
	for {
		n, oobn, _, from, err := c.conn.ReadMsgUDPAddrPort(buf, oob)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.log.Warn("receiving IKE datagram failed", "socket", c.addr, "err", err)
			continue
		}
		local, received := control(c, oob[:oobn])
		handle(Datagram{Local: local, Remote: netip.AddrPortFrom(from.Addr().Unmap(), from.Port()), Data: buf[:n], Received: received})
	}
}

// control reads a datagram's control messages: the address it was sent
// to, from IP_PKTINFO or IPV6_PKTINFO, with the socket's port (the
// socket's address without them), and when the kernel received it
// (SO_TIMESTAMPNS; zero without).
func control(c *sock, oob []byte) (local netip.AddrPort, received time.Time) {
	local = c.addr
	// One message at a time: ParseSocketControlMessage allocates a
	// slice of them for every datagram.
	for len(oob) > 0 {
		h, data, rest, err := unix.ParseOneSocketControlMessage(oob)
		if err != nil {
			break
		}
		oob = rest
		switch {
		case h.Level == unix.IPPROTO_IP && h.Type == unix.IP_PKTINFO && len(data) >= unix.SizeofInet4Pktinfo:
			var a [4]byte
			copy(a[:], data[8:12]) // ipi_addr: the header's destination
			local = netip.AddrPortFrom(netip.AddrFrom4(a), c.addr.Port())
		case h.Level == unix.IPPROTO_IPV6 && h.Type == unix.IPV6_PKTINFO && len(data) >= unix.SizeofInet6Pktinfo:
			var a [16]byte
			copy(a[:], data[0:16])
			local = netip.AddrPortFrom(netip.AddrFrom16(a), c.addr.Port())
		case h.Level == unix.SOL_SOCKET && h.Type == unix.SCM_TIMESTAMPNS && len(data) >= 16:
			ts := (*unix.Timespec)(unsafe.Pointer(&data[0]))
			received = time.Unix(ts.Unix())
		}
	}
	return local, received
}

// Send sends a datagram from its Local address and port to its Remote.
func (s *Sockets) Send(d Datagram) error {
	s.mu.Lock()
	done := s.done
	s.mu.Unlock()
	if done {
		return ErrClosed
	}
	local, remote := d.Local.Addr().Unmap(), d.Remote.Addr().Unmap()
	c := s.socketFor(local, d.Local.Port())
	if c == nil {
		return fmt.Errorf("no IKE socket for %s", d.Local)
	}
	var oob []byte
	if local.IsValid() && !local.IsUnspecified() && c.addr.Addr().IsUnspecified() {
		oob = pktinfo(local)
	}
	to := remote
	if c.v6 && to.Is4() {
		return fmt.Errorf("send to %s from an IPv6 socket", d.Remote)
	}
	_, _, err := c.conn.WriteMsgUDPAddrPort(d.Data, oob, netip.AddrPortFrom(to, d.Remote.Port()))
	if err != nil {
		return fmt.Errorf("send IKE datagram %s -> %s: %w", d.Local, d.Remote, err)
	}
	return nil
}

// socketFor picks the socket bound to local (or the wildcard of its family) on port.
func (s *Sockets) socketFor(local netip.Addr, port uint16) *sock {
	var wildcard *sock
	for _, c := range s.conns {
		if c.addr.Port() != port || c.v6 == local.Is4() {
			continue
		}
		if c.addr.Addr() == local {
			return c
		}
		if c.addr.Addr().IsUnspecified() {
			wildcard = c
		}
	}
	return wildcard
}

// pktinfo builds the control message that selects the source address.
func pktinfo(src netip.Addr) []byte {
	if src.Is4() {
		var pi unix.Inet4Pktinfo
		pi.Spec_dst = src.As4()
		b := unix.PktInfo4(&pi)
		return b
	}
	var pi unix.Inet6Pktinfo
	pi.Addr = src.As16()
	return unix.PktInfo6(&pi)
}

// Ports lists the bound addresses (for logs and tests).
func (s *Sockets) Ports() []netip.AddrPort {
	out := make([]netip.AddrPort, len(s.conns))
	for i, c := range s.conns {
		out[i] = netip.AddrPortFrom(c.addr.Addr(), uint16(c.conn.LocalAddr().(*net.UDPAddr).Port))
	}
	return out
}

// Close stops reading and closes the sockets.
func (s *Sockets) Close() error {
	s.mu.Lock()
	s.done = true
	s.mu.Unlock()
	for _, c := range s.conns {
		c.conn.Close()
	}
	s.wg.Wait()
	return nil
}
