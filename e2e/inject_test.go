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
// IPv4 ESP packet from src with spi that s's WAN receives while traffic()
// runs.
func captureESP(t *testing.T, s *site, src netip.Addr, spi uint32, traffic func()) []byte {
	t.Helper()
	var fd int
	err := s.Do(func() error {
		ifc, err := net.InterfaceByName(s.wan)
		if err != nil {
			return err
		}
		proto := int(htons(unix.ETH_P_IP))
		if fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM, proto); err != nil {
			return err
		}
		return unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_IP), Ifindex: ifc.Index})
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
		p := buf[:n]
		if n < 28 || p[0]>>4 != 4 || p[9] != 50 {
			continue
		}
		hl := int(p[0]&0xf) * 4
		if netip.AddrFrom4([4]byte(p[12:16])) != src || binary.BigEndian.Uint32(p[hl:]) != spi {
			continue
		}
		return append([]byte(nil), p[hl:]...)
	}
	t.Fatalf("site %s saw no ESP from %s with SPI %#x", s.name, src, spi)
	return nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// sendRawESP sends esp (an ESP header and what follows) n times from s to
// dst through a raw IP socket.
func sendRawESP(t *testing.T, s *site, dst netip.Addr, esp []byte, n int) {
	t.Helper()
	err := s.Do(func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_ESP)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		for range n {
			if err := unix.Sendto(fd, esp, 0, &unix.SockaddrInet4{Addr: dst.As4()}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("send ESP from site %s: %v", s.name, err)
	}
}
