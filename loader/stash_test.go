package loader_test

import (
	"bytes"
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/xdpsec/xdpsec/internal/packet"
	"github.com/xdpsec/xdpsec/loader"
	"github.com/xdpsec/xdpsec/maps"
)

// TestStashInject: ESP in UDP from the peer for a pending SPI is held by
// the attached xdp_wan (a UDP socket on port 4500 of the gateway gets
// nothing), comes out of the stash as it was received, on the WAN's
// interface, and handed back with the pinned xdp_stash_inject reaches
// that socket byte for byte.
func TestStashInject(t *testing.T) {
	g := newGateway(t)
	g.load(t, loader.TCAuto)
	s := g.maps(t)
	spi := uint32(maps.DefaultSPIBase + 5)
	if err := s.SA.Put(maps.InboundSA{SPI: spi, Dst: g.wanAddr, CPU: maps.NoCPU, Pending: true}); err != nil {
		t.Fatal(err)
	}

	var sock int
	err := g.gw.Do(func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		sock = fd
		if err := unix.Bind(fd, &unix.SockaddrInet4{Port: packet.PortNATT, Addr: g.wanAddr.As4()}); err != nil {
			return err
		}
		return unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Usec: 300000})
	})
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(sock)
	recv := func() []byte {
		buf := make([]byte, 2048)
		n, _, err := unix.Recvfrom(sock, buf, 0)
		if err != nil {
			return nil
		}
		return buf[:n]
	}

	esp := packet.ESP(spi, 1, 48)
	err = g.peer.Do(func() error {
		c, err := net.DialUDP("udp4", &net.UDPAddr{Port: packet.PortNATT}, net.UDPAddrFromAddrPort(netip.AddrPortFrom(g.wanAddr, packet.PortNATT)))
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Write(esp)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	var frames []maps.StashedFrame
	for deadline := time.Now().Add(3 * time.Second); len(frames) == 0 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		if frames, err = s.Stash.Drain(10); err != nil {
			t.Fatal(err)
		}
	}
	if len(frames) != 1 {
		t.Fatalf("stash holds %d frames after the peer sent one ESP in UDP packet to a pending SPI (counters: stashed %d, no_sa %d)",
			len(frames), counter(t, s, "stashed"), counter(t, s, "no_sa"))
	}
	if got := recv(); got != nil {
		t.Fatalf("the socket got %d bytes of a stashed packet", len(got))
	}
	if got := counter(t, s, "stashed"); got != 1 {
		t.Errorf("stashed = %d, want 1", got)
	}
	f := frames[0]
	var wanIndex int
	g.gw.Do(func() error {
		ifc, err := net.InterfaceByName("wan0")
		if err == nil {
			wanIndex = ifc.Index
		}
		return err
	})
	if f.SPI != spi || f.Dst != g.wanAddr || int(f.Ifindex) != wanIndex {
		t.Errorf("stashed for SPI %#08x %s on ifindex %d, want %#08x %s on wan0 (%d)", f.SPI, f.Dst, f.Ifindex, spi, g.wanAddr, wanIndex)
	}
	if !bytes.HasSuffix(f.Frame, esp) {
		t.Errorf("stashed frame does not end in the ESP sent:\n%x", f.Frame)
	}

	// Checked here: what comes before needs no live frames.
	if err := loader.LiveFrames(); err != nil {
		t.Skipf("skipped handing the stashed frame back: %v", err)
	}
	err = g.gw.Do(func() error {
		r, err := loader.OpenStashRunner(g.pinDir)
		if err != nil {
			return err
		}
		defer r.Close()
		return r.Inject(f.Ifindex, f.RxQueue, f.Frame)
	})
	if err != nil {
		t.Fatalf("inject: %v", err)
	}
	if got := recv(); !bytes.Equal(got, esp) {
		t.Errorf("after the injection the socket got %x, want the ESP sent, %x", got, esp)
	}
	if got := counter(t, s, "stash_injected"); got != 1 {
		t.Errorf("stash_injected = %d, want 1", got)
	}
}
