package ikesocket

import (
	"bytes"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/xdpsec/xdpsec/internal/testenv"
)

const testPort, testNATT = 10500, 14500

// inNetns runs the test body in a fresh network namespace (its own ports).
func inNetns(t *testing.T, fn func() error) {
	t.Helper()
	ns := testenv.NewNetns(t, "xdpsec-sock")
	ns.MustRun(t, "ip", "addr", "add", "127.0.0.2/8", "dev", "lo")
	if err := ns.Do(fn); err != nil {
		t.Fatal(err)
	}
}

func recvOne(ch <-chan Datagram) (Datagram, error) {
	select {
	case d := <-ch:
		return d, nil
	case <-time.After(2 * time.Second):
		return Datagram{}, errors.New("nothing received")
	}
}

// TestLocalAddressAndReply checks that a datagram reports the address it
// was sent to and that a reply leaves from that address and port.
func TestLocalAddressAndReply(t *testing.T) {
	inNetns(t, func() error {
		s, err := Listen(Config{Port: testPort, NATTPort: testNATT})
		if err != nil {
			return err
		}
		defer s.Close()
		got := make(chan Datagram, 4)
		s.Run(func(d Datagram) {
			d.Data = append([]byte(nil), d.Data...)
			got <- d
		})
		for _, dst := range []string{"127.0.0.2", "::1"} {
			to := netip.AddrPortFrom(netip.MustParseAddr(dst), testPort)
			client, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(dst)})
			if err != nil {
				return err
			}
			defer client.Close()
			if _, err := client.WriteToUDPAddrPort([]byte("IKE_SA_INIT"), to); err != nil {
				return err
			}
			d, err := recvOne(got)
			if err != nil {
				return err
			}
			if d.Local != to || string(d.Data) != "IKE_SA_INIT" {
				return errors.New("received " + d.Local.String() + " " + string(d.Data) + ", want " + to.String())
			}
			// The kernel's arrival time (SO_TIMESTAMPNS), before the
			// handler had the datagram.
			if age := time.Since(d.Received); d.Received.IsZero() || age < 0 || age > 2*time.Second {
				return errors.New("received at " + d.Received.String() + ", " + age.String() + " ago")
			}
			if err := s.Send(Datagram{Local: d.Local, Remote: d.Remote, Data: []byte("reply")}); err != nil {
				return err
			}
			buf := make([]byte, 64)
			client.SetReadDeadline(time.Now().Add(2 * time.Second))
			n, from, err := client.ReadFromUDPAddrPort(buf)
			if err != nil {
				return err
			}
			if from.Addr().Unmap() != to.Addr() || from.Port() != testPort || string(buf[:n]) != "reply" {
				return errors.New("reply from " + from.String() + ", want " + to.String())
			}
		}
		return nil
	})
}

// TestNATTPortDecapsulates checks the NAT-T socket: IKE behind the non-ESP
// marker comes up with its marker; ESP-in-UDP is the kernel's, not ours.
func TestNATTPortDecapsulates(t *testing.T) {
	inNetns(t, func() error {
		s, err := Listen(Config{Addrs: []netip.Addr{netip.MustParseAddr("127.0.0.1")}, Port: testPort, NATTPort: testNATT})
		if err != nil {
			return err
		}
		defer s.Close()
		got := make(chan Datagram, 4)
		s.Run(func(d Datagram) {
			d.Data = append([]byte(nil), d.Data...)
			got <- d
		})
		client, err := net.DialUDP("udp", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: testNATT})
		if err != nil {
			return err
		}
		defer client.Close()
		esp := []byte{0xc0, 0, 0, 1, 0, 0, 0, 1, 9, 9, 9, 9}
		ike := append([]byte{0, 0, 0, 0}, []byte("IKE_AUTH")...)
		client.Write(esp)
		client.Write(ike)
		d, err := recvOne(got)
		if err != nil {
			return err
		}
		if !bytes.Equal(d.Data, ike) {
			return errors.New("first datagram up was not the marked IKE message: " + string(d.Data))
		}
		if _, err := recvOne(got); err == nil {
			return errors.New("a second datagram came up")
		}
		return nil
	})
}

func TestPortInUseAndClose(t *testing.T) {
	inNetns(t, func() error {
		busy, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: testPort})
		if err != nil {
			return err
		}
		defer busy.Close()
		// SO_REUSEADDR lets UDP sockets share a port only if both ask.
		if _, err := Listen(Config{Addrs: []netip.Addr{netip.MustParseAddr("127.0.0.1")}, Port: testPort, NATTPort: testNATT}); err == nil || !strings.Contains(err.Error(), "unable to bind") {
			return errors.New("binding a busy port: " + errString(err))
		}
		s, err := Listen(Config{Addrs: []netip.Addr{netip.MustParseAddr("127.0.0.2")}, Port: testPort, NATTPort: testNATT})
		if err != nil {
			return err
		}
		if len(s.Ports()) != 2 {
			return errors.New("want two sockets")
		}
		s.Close()
		err = s.Send(Datagram{Local: netip.MustParseAddrPort("127.0.0.2:10500"), Remote: netip.MustParseAddrPort("127.0.0.1:500"), Data: []byte{1}})
		if !errors.Is(err, ErrClosed) {
			return errors.New("send after close: " + errString(err))
		}
		return nil
	})
}

func errString(err error) string {
	if err == nil {
		return "no error"
	}
	return err.Error()
}

// TestBypassesIPsecPolicies blocks everything in a gateway's SPD; its IKE
// sockets must still send to and receive from a peer, while an ordinary
// socket is refused. (Loopback is exempt from XFRM, hence the veth.)
func TestBypassesIPsecPolicies(t *testing.T) {
	gw := testenv.NewNetns(t, "xdpsec-sockg")
	peer := testenv.NewNetns(t, "xdpsec-sockp")
	testenv.Veth(t, gw, "v0", "10.96.0.1/24", peer, "v1", "10.96.0.2/24")
	for _, dir := range []string{"in", "out"} {
		if out, err := gw.Run("ip", "xfrm", "policy", "add", "src", "0.0.0.0/0", "dst", "0.0.0.0/0", "dir", dir, "action", "block"); err != nil {
			t.Skipf("skipped: cannot add an XFRM block policy: %v: %s", err, out)
		}
	}
	peerAddr := netip.MustParseAddrPort("10.96.0.2:500")
	var echo *net.UDPConn
	if err := peer.Do(func() (err error) {
		echo, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(peerAddr))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	go func() {
		buf := make([]byte, 64)
		for {
			n, from, err := echo.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			echo.WriteToUDPAddrPort(buf[:n], from)
		}
	}()

	err := gw.Do(func() error {
		// The block shows at connect (route lookup) or at the first write.
		if plain, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(peerAddr)); err == nil {
			_, err = plain.Write([]byte{1})
			plain.Close()
			if err == nil {
				return errors.New("the block policy does not block an ordinary socket: the test proves nothing")
			}
		}
		s, err := Listen(Config{Addrs: []netip.Addr{netip.MustParseAddr("10.96.0.1")}, Port: testPort, NATTPort: testNATT})
		if err != nil {
			return err
		}
		defer s.Close()
		got := make(chan Datagram, 1)
		s.Run(func(d Datagram) { got <- Datagram{Local: d.Local, Remote: d.Remote} })
		if err := s.Send(Datagram{Local: netip.MustParseAddrPort("10.96.0.1:10500"), Remote: peerAddr, Data: []byte("IKE")}); err != nil {
			return err
		}
		d, err := recvOne(got)
		if err != nil {
			return errors.New("no echo through the block policy: " + err.Error())
		}
		if d.Remote != peerAddr {
			return errors.New("echo from " + d.Remote.String())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// sockBuffers reads back a socket's receive and send buffers, as the
// kernel reports them (twice what was set).
func sockBuffers(t *testing.T, c *sock) (rcv, snd int) {
	t.Helper()
	raw, err := c.conn.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var rerr, serr error
	raw.Control(func(fd uintptr) {
		rcv, rerr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF)
		snd, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUF)
	})
	if rerr != nil || serr != nil {
		t.Fatal(rerr, serr)
	}
	return rcv, snd
}

func readSysctl(t *testing.T, name string) int {
	t.Helper()
	b, err := os.ReadFile("/proc/sys/net/core/" + name)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestSocketBuffers checks that every IKE socket gets the buffers asked
// for, beyond net.core.rmem_max and wmem_max (SO_RCVBUFFORCE), and the
// default when none is asked for.
func TestSocketBuffers(t *testing.T) {
	inNetns(t, func() error {
		rmemMax, wmemMax := readSysctl(t, "rmem_max"), readSysctl(t, "wmem_max")
		for _, tc := range []struct{ rcv, snd, wantRcv, wantSnd int }{
			{0, 0, DefaultBufferSize, DefaultBufferSize},
			// Above the sysctl maxima: only the FORCE options reach it.
			{rmemMax + 1<<20, wmemMax + 1<<20, rmemMax + 1<<20, wmemMax + 1<<20},
		} {
			s, err := Listen(Config{Port: testPort, NATTPort: testNATT, ReceiveBuffer: tc.rcv, SendBuffer: tc.snd})
			if err != nil {
				return err
			}
			if len(s.conns) != 4 {
				t.Errorf("%d sockets, want 4 (IKE and NAT-T, IPv4 and IPv6)", len(s.conns))
			}
			for _, c := range s.conns {
				// Linux reports twice the value set.
				if rcv, snd := sockBuffers(t, c); rcv != 2*tc.wantRcv || snd != 2*tc.wantSnd {
					t.Errorf("%s: SO_RCVBUF %d, SO_SNDBUF %d; want %d and %d", c.addr, rcv, snd, 2*tc.wantRcv, 2*tc.wantSnd)
				}
			}
			s.Close()
		}
		// Negative: the system's default, untouched.
		s, err := Listen(Config{Port: testPort, NATTPort: testNATT, ReceiveBuffer: -1, SendBuffer: -1})
		if err != nil {
			return err
		}
		defer s.Close()
		if rcv, _ := sockBuffers(t, s.conns[0]); rcv != readSysctl(t, "rmem_default") {
			t.Errorf("SO_RCVBUF %d with -1, want rmem_default %d", rcv, readSysctl(t, "rmem_default"))
		}
		return nil
	})
}

// TestSocketBuffersWithoutCapNetAdmin: without CAP_NET_ADMIN the FORCE
// options fail; the buffers are set anyway, capped at net.core.rmem_max
// and wmem_max, and a warning says so. (The IKE sockets' bypass policies
// need CAP_NET_ADMIN too, so the sizing is tried on a plain socket.)
func TestSocketBuffersWithoutCapNetAdmin(t *testing.T) {
	inNetns(t, func() error {
		// This goroutine's thread is locked and dies with it (nsutil.Do),
		// so the dropped capability goes with it.
		hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
		var data [2]unix.CapUserData
		if err := unix.Capget(&hdr, &data[0]); err != nil {
			return err
		}
		data[0].Effective &^= 1 << unix.CAP_NET_ADMIN
		if err := unix.Capset(&hdr, &data[0]); err != nil {
			return err
		}
		conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			return err
		}
		defer conn.Close()
		c := &sock{conn: conn, addr: conn.LocalAddr().(*net.UDPAddr).AddrPort()}
		rmemMax, wmemMax := readSysctl(t, "rmem_max"), readSysctl(t, "wmem_max")
		var logs strings.Builder
		cfg := Config{ReceiveBuffer: rmemMax + 1<<20, SendBuffer: wmemMax + 1<<20, Log: slog.New(slog.NewTextHandler(&logs, nil))}
		if err := sizeBuffers(conn, c.addr, cfg); err != nil {
			return err
		}
		if rcv, snd := sockBuffers(t, c); rcv != 2*rmemMax || snd != 2*wmemMax {
			t.Errorf("SO_RCVBUF %d, SO_SNDBUF %d; want the maxima doubled, %d and %d", rcv, snd, 2*rmemMax, 2*wmemMax)
		}
		if !strings.Contains(logs.String(), "capped by net.core.rmem_max") || !strings.Contains(logs.String(), "capped by net.core.wmem_max") {
			t.Errorf("no warning about the capped buffers:\n%s", logs.String())
		}
		return nil
	})
}
