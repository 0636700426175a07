package e2e

import (
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// captureESP returns the IP payload (from the ESP header on) of the first
// ESP packet (IPv4, or IPv6 without extension headers) from src with spi
// that s's WAN receives while traffic() runs.
func captureESP(t *testing.T, s *site, src netip.Addr, spi uint32, traffic func()) []byte {
	t.Helper()
	ethType := uint16(unix.ETH_P_IP)
	if src.Is6() {
		ethType = unix.ETH_P_IPV6
	}
	var fd int
	err := s.Do(func() error {
		ifc, err := net.InterfaceByName(s.wan)
		if err != nil {
			return err
		}
		if fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM, int(htons(ethType))); err != nil {
			return err
		}
		return unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(ethType), Ifindex: ifc.Index})
	})
	if err != nil {
		t.Fatalf("capture on site %s: %v", s.name, err)
	}
	defer unix.Close(fd)
	tv := unix.NsecToTimeval(int64(200 * time.Millisecond))
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	done := make(chan struct{})
	go func() { traffic(); close(done) }()
	defer func() { <-done }()
	buf := make([]byte, 65536)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			continue
		}
		if esp, ok := espFrom(buf[:n], src, spi); ok {
			return append([]byte(nil), esp...)
		}
	}
	t.Fatalf("site %s saw no ESP from %s with SPI %#x", s.name, src, spi)
	return nil
}

// espFrom returns the ESP header and what follows if p is an IP packet
// from src carrying ESP with spi.
func espFrom(p []byte, src netip.Addr, spi uint32) ([]byte, bool) {
	var from netip.Addr
	var esp []byte
	switch {
	case len(p) >= 28 && p[0]>>4 == 4 && p[9] == unix.IPPROTO_ESP:
		from, esp = netip.AddrFrom4([4]byte(p[12:16])), p[int(p[0]&0xf)*4:]
	case len(p) >= 48 && p[0]>>4 == 6 && p[6] == unix.IPPROTO_ESP:
		from, esp = netip.AddrFrom16([16]byte(p[8:24])), p[40:]
	default:
		return nil, false
	}
	if from != src || len(esp) < 8 || binary.BigEndian.Uint32(esp) != spi {
		return nil, false
	}
	return esp, true
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// rawESPSocket is a raw socket for ESP payloads to dst (the kernel makes
// the IP header) and dst as its address.
func rawESPSocket(dst netip.Addr) (int, unix.Sockaddr, error) {
	if dst.Is6() {
		fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_RAW, unix.IPPROTO_ESP)
		return fd, &unix.SockaddrInet6{Addr: dst.As16()}, err
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_ESP)
	return fd, &unix.SockaddrInet4{Addr: dst.As4()}, err
}

// sendRawESP sends esp (an ESP header and what follows) n times from s to
// dst through a raw IP socket.
func sendRawESP(t *testing.T, s *site, dst netip.Addr, esp []byte, n int) {
	t.Helper()
	err := s.Do(func() error {
		fd, to, err := rawESPSocket(dst)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		for range n {
			if err := unix.Sendto(fd, esp, 0, to); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("send ESP from site %s: %v", s.name, err)
	}
}
