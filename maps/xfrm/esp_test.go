package xfrm

// Tests that install real ESP SAs. They skip on kernels without the ESP
// transform and run in the VM harness (Debian's 6.12 kernel), as root, from
// a plain `go test` binary.

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/xdpsec/xdpsec/ike/transform"
	"github.com/xdpsec/xdpsec/internal/testenv"
	"github.com/xdpsec/xdpsec/maps"
)

func TestESPStateAlgorithms(t *testing.T) {
	caps := requireESP(t)
	c, ns := newConn(t)
	for i, a := range testAlgorithms {
		for _, v := range []struct {
			name     string
			src, dst netip.Addr
			mode     Mode
		}{{"v4 tunnel", addrA, addrB, ModeTunnel}, {"v6 transport", addrA6, addrB6, ModeTransport}} {
			t.Run(a.name+" "+v.name, func(t *testing.T) {
				if v.src.Is6() && !caps.ESP6.Available {
					t.Skipf("skipped: kernel has no ESP for IPv6: %s", caps.ESP6.Reason)
				}
				s := State{Src: v.src, Dst: v.dst, SPI: 0xc0000100 + uint32(i), Mode: v.mode, Reqid: uint32(i + 1),
					Crypto: testCrypto(t, a.encr, a.keyBits, a.integ), ReplayWindow: 32}
				if _, err := c.AddState(s); err != nil {
					t.Fatal(err)
				}
				if _, err := c.AddState(s); !errors.Is(err, ErrExists) {
					t.Errorf("adding twice: %v, want ErrExists", err)
				}
				got, err := c.GetState(s.ID())
				if err != nil {
					t.Fatal(err)
				}
				if got.Algorithms != a.want || got.Mode != v.mode || got.Reqid != uint32(i+1) || got.ReplayWindow != 32 || got.Larval || got.Src != v.src {
					t.Errorf("read back %+v", got)
				}
				if out := ns.MustRun(t, "ip", "xfrm", "state"); !strings.Contains(out, fmt.Sprintf("spi %#08x", s.SPI)) {
					t.Errorf("ip xfrm state lacks the SA:\n%s", out)
				}
				// On a complete SA an update changes the lifetimes.
				s.Lifetime = Lifetime{SoftAdd: 50 * time.Minute, HardAdd: time.Hour, HardBytes: 1 << 40}
				if _, err := c.UpdateState(s); err != nil {
					t.Fatal(err)
				}
				if got, _ := c.GetState(s.ID()); got.Lifetime != s.Lifetime {
					t.Errorf("lifetime after update %+v", got.Lifetime)
				}
				if err := c.DeleteState(s.ID()); err != nil {
					t.Fatal(err)
				}
				if _, err := c.GetState(s.ID()); !errors.Is(err, ErrNoSA) {
					t.Errorf("after delete: %v", err)
				}
			})
		}
	}
}

func TestESPStateOptions(t *testing.T) {
	caps := requireESP(t)
	c, _ := newConn(t)
	s := State{
		Src: addrA, Dst: addrB, SPI: 0xc0000200, Mode: ModeTunnel, Reqid: 3,
		Crypto:   testCrypto(t, transform.ENCR_AES_GCM_16, 128, transform.AUTH_NONE),
		Encap:    &Encap{SrcPort: 4500, DstPort: 4500},
		IfID:     7,
		Mark:     Mark{Value: 0x10, Mask: 0xff},
		Lifetime: Lifetime{SoftBytes: 1000, HardBytes: 2000, SoftPackets: 10, HardPackets: 20, SoftAdd: time.Minute, HardAdd: 2 * time.Minute, SoftUse: time.Second, HardUse: 2 * time.Second},
	}
	tests := []struct {
		name string
		mod  func(*State)
	}{
		{"ESN", func(s *State) { s.ESN, s.ReplayWindow = true, 128 }},
		{"large window", func(s *State) { s.ReplayWindow = 1024 }},
		{"small window", func(s *State) { s.ReplayWindow = 64 }},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.name == "ESN" && !caps.ESN.Available {
				t.Skipf("skipped: %s", caps.ESN.Reason)
			}
			s := s
			s.SPI += uint32(i)
			s.Crypto = cloneCrypto(s.Crypto)
			tt.mod(&s)
			if _, err := c.AddState(s); err != nil {
				t.Fatal(err)
			}
			got, err := c.GetState(s.ID())
			if err != nil {
				t.Fatal(err)
			}
			if got.ESN != s.ESN || got.ReplayWindow != s.ReplayWindow || got.IfID != 7 || got.Mark != s.Mark ||
				got.Encap == nil || *got.Encap != *s.Encap || got.Lifetime != s.Lifetime {
				t.Errorf("read back %+v\nfrom %+v", got, s)
			}
			// NAT-T mapping moved: the update changes the ports.
			s.Encap = &Encap{SrcPort: 4500, DstPort: 31337}
			if _, err := c.UpdateState(s); err != nil {
				t.Fatal(err)
			}
			if got, _ := c.GetState(s.ID()); got.Encap == nil || got.Encap.DstPort != 31337 {
				t.Errorf("encap after update %+v", got.Encap)
			}
			// Without the mark, the kernel does not find the SA.
			if _, err := c.GetState(SAID{Dst: s.Dst, SPI: s.SPI}); !errors.Is(err, ErrNoSA) {
				t.Errorf("get without mark: %v", err)
			}
		})
	}
}

// strongSwan's inbound sequence: get_spi (ALLOCSPI), then add_sa with
// update (UPDSA) once the keys are known.
func TestESPAllocSPIThenUpdate(t *testing.T) {
	requireESP(t)
	c, _ := newConn(t)
	r := maps.SPIRange{Base: maps.DefaultSPIBase, Count: 4096}
	spi, err := c.AllocSPI(ProtoESP, addrA, addrB, r)
	if err != nil {
		t.Fatal(err)
	}
	s := State{Src: addrA, Dst: addrB, SPI: spi, Mode: ModeTunnel, Reqid: 9, Inbound: true,
		Crypto: testCrypto(t, transform.ENCR_AES_GCM_16, 256, transform.AUTH_NONE), ReplayWindow: 32}
	if _, err := c.UpdateState(s); err != nil {
		t.Fatal(err)
	}
	got, err := c.GetState(s.ID())
	if err != nil {
		t.Fatal(err)
	}
	if got.Larval || got.Reqid != 9 || got.Algorithms.AEAD != algGCM {
		t.Errorf("completed SA %+v", got)
	}
	sas, _ := c.ListStates()
	n := 0
	for _, sa := range sas {
		if sa.SPI == spi {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d SAs with SPI %#x, want 1 (the larval one replaced)", n, spi)
	}

	// The larval SA expired before the keys came: the update adds the SA.
	spi2, err := c.AllocSPI(ProtoESP, addrA, addrB, r)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteState(SAID{Dst: addrB, SPI: spi2}); err != nil {
		t.Fatal(err)
	}
	s.SPI = spi2
	s.Crypto = testCrypto(t, transform.ENCR_AES_GCM_16, 256, transform.AUTH_NONE)
	if _, err := c.UpdateState(s); err != nil {
		t.Fatal(err)
	}
	if got, err := c.GetState(s.ID()); err != nil || got.Larval {
		t.Errorf("SA after its larval expired: %+v %v", got, err)
	}
}

// Two namespaces over a veth pair, transport-mode SAs from A to B, UDP
// datagrams through them: the kernel's counters must show them, and a
// wrong key on B must show as integrity failures.
func TestESPCounters(t *testing.T) {
	requireESP(t)
	nsA := testenv.NewNetns(t, "xfrma")
	nsB := testenv.NewNetns(t, "xfrmb")
	testenv.Veth(t, nsA, "veth0", "10.0.0.1/24", nsB, "veth1", "10.0.0.2/24")
	a, err := OpenAt(nsA.Handle)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := OpenAt(nsB.Handle)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ipA, ipB := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")

	// Port 5555 through SA 0x1001 with matching keys, port 6666 through SA
	// 0x2001 whose key B does not share.
	for _, p := range []struct {
		port  uint16
		spi   uint32
		reqid uint32
		same  bool
	}{{5555, 0x1001, 1, true}, {6666, 0x2001, 2, false}} {
		cr := testCrypto(t, transform.ENCR_AES_GCM_16, 128, transform.AUTH_NONE)
		crB := cloneCrypto(cr)
		if !p.same {
			crB = testCrypto(t, transform.ENCR_AES_GCM_16, 128, transform.AUTH_NONE)
		}
		out := State{Src: ipA, Dst: ipB, SPI: p.spi, Mode: ModeTransport, Reqid: p.reqid, Crypto: cr}
		in := out
		in.Crypto, in.Inbound, in.ReplayWindow = crB, true, 32
		if _, err := a.AddState(out); err != nil {
			t.Fatal(err)
		}
		if _, err := b.AddState(in); err != nil {
			t.Fatal(err)
		}
		ps, _ := PolicyBasedPolicies(Tunnel{Local: ipA, Remote: ipB, Reqid: p.reqid}, ModeTransport, TrafficSelectors{
			Local: netip.PrefixFrom(ipA, 32), Remote: netip.PrefixFrom(ipB, 32), Proto: unix.IPPROTO_UDP, RemotePort: p.port,
		})
		if err := a.AddPolicy(ps[0]); err != nil {
			t.Fatal(err)
		}
		psB, _ := PolicyBasedPolicies(Tunnel{Local: ipB, Remote: ipA, Reqid: p.reqid}, ModeTransport, TrafficSelectors{
			Local: netip.PrefixFrom(ipB, 32), Remote: netip.PrefixFrom(ipA, 32), Proto: unix.IPPROTO_UDP, LocalPort: p.port,
		})
		if err := b.AddPolicy(psB[1]); err != nil {
			t.Fatal(err)
		}
	}

	const n = 5
	received := make(chan int, 1)
	var ln *net.UDPConn
	if err := nsB.Do(func() error {
		var err error
		ln, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(10, 0, 0, 2), Port: 5555})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		buf := make([]byte, 2048)
		got := 0
		ln.SetReadDeadline(time.Now().Add(5 * time.Second))
		for got < n {
			if _, _, err := ln.ReadFromUDP(buf); err != nil {
				break
			}
			got++
		}
		received <- got
	}()
	payload := make([]byte, 100)
	if err := nsA.Do(func() error {
		for _, port := range []int{5555, 6666} {
			conn, err := net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.IPv4(10, 0, 0, 2), Port: port})
			if err != nil {
				return err
			}
			for i := 0; i < n; i++ {
				if _, err := conn.Write(payload); err != nil {
					return err
				}
				time.Sleep(20 * time.Millisecond)
			}
			conn.Close()
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if got := <-received; got != n {
		t.Errorf("B received %d of %d datagrams", got, n)
	}

	outA, err := a.GetState(SAID{Dst: ipB, SPI: 0x1001})
	if err != nil {
		t.Fatal(err)
	}
	inB, err := b.GetState(SAID{Dst: ipB, SPI: 0x1001})
	if err != nil {
		t.Fatal(err)
	}
	if outA.Counters.Packets < n || outA.Counters.Bytes < n*100 || outA.Counters.OutSeq < n || outA.Counters.UseTime.IsZero() {
		t.Errorf("A's outbound counters %+v", outA.Counters)
	}
	if inB.Counters.Packets < n || inB.Counters.InSeq < n || inB.Counters.IntegrityFailures != 0 {
		t.Errorf("B's inbound counters %+v", inB.Counters)
	}
	badB, err := b.GetState(SAID{Dst: ipB, SPI: 0x2001})
	if err != nil {
		t.Fatal(err)
	}
	if badB.Counters.IntegrityFailures == 0 || badB.Counters.Packets != 0 {
		t.Errorf("B's SA with the wrong key: %+v, want integrity failures and no packets", badB.Counters)
	}
	t.Logf("A out %+v; B in %+v; B wrong key %+v", outA.Counters, inB.Counters, badB.Counters)
}

// veth has no IPsec offload: auto falls back to software and says why,
// yes and packet fail naming the device and leave no SA behind.
func TestESPOffloadOnVeth(t *testing.T) {
	requireESP(t)
	c, ns := newConn(t)
	peer := testenv.NewNetns(t, "xfrmpeer")
	testenv.Veth(t, ns, "veth0", "192.0.2.1/24", peer, "veth1", "192.0.2.2/24")
	spi := uint32(0x3000)
	state := func(mode OffloadMode, inbound bool) State {
		spi++
		src, dst := addrA, addrB
		if inbound {
			src, dst = addrB, addrA
		}
		return State{Src: src, Dst: dst, SPI: spi, Mode: ModeTunnel, Inbound: inbound, ReplayWindow: 32,
			Crypto:  testCrypto(t, transform.ENCR_AES_GCM_16, 128, transform.AUTH_NONE),
			Offload: Offload{Mode: mode, Device: "veth0"}}
	}

	for _, inbound := range []bool{false, true} {
		s := state(OffloadAuto, inbound)
		res, err := c.AddState(s)
		if err != nil {
			t.Fatalf("auto (inbound %v): %v", inbound, err)
		}
		if res.Offloaded || res.Refused == nil || res.Refused.Device != "veth0" {
			t.Errorf("auto (inbound %v): %+v", inbound, res)
		}
		if !strings.HasPrefix(res.String(), "hw offload on veth0 refused: ") || !strings.HasSuffix(res.String(), ", falling back to software") {
			t.Errorf("log line %q", res.String())
		}
		t.Logf("auto: %s", res)
		if got, err := c.GetState(s.ID()); err != nil || got.Offload != nil {
			t.Errorf("software SA %+v %v", got, err)
		}
	}

	for _, mode := range []OffloadMode{OffloadYes, OffloadPacket} {
		s := state(mode, false)
		_, err := c.AddState(s)
		var oe *OffloadError
		if !errors.As(err, &oe) || oe.Device != "veth0" || !strings.Contains(err.Error(), "hw offload on veth0 refused: ") {
			t.Fatalf("%v: %v, want an OffloadError naming veth0", mode, err)
		}
		t.Logf("%v: %v", mode, err)
		if _, err := c.GetState(s.ID()); !errors.Is(err, ErrNoSA) {
			t.Errorf("%v: SA left behind (%v)", mode, err)
		}
	}
}

// MoveState keeps an SA's SPI, sequence numbers and counters across a
// change of its outer addresses and encapsulation (MOBIKE).
func TestESPMoveState(t *testing.T) {
	requireESP(t)
	c, _ := newConn(t)
	newDst := netip.MustParseAddr("192.0.2.77")
	cr := testCrypto(t, transform.ENCR_AES_GCM_16, 128, transform.AUTH_NONE)
	s := State{Src: addrA, Dst: addrB, SPI: 0xc0000301, Mode: ModeTunnel, Reqid: 9, Crypto: cr, ESN: true, ReplayWindow: 64,
		Lifetime: Lifetime{HardAdd: time.Hour}}
	if _, err := c.AddState(s); err != nil {
		t.Fatal(err)
	}
	before, err := c.GetState(SAID{Dst: addrB, SPI: s.SPI})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.MoveState(SAID{Dst: addrB, SPI: s.SPI}, Move{Src: addrA, Dst: newDst, Encap: &Encap{SrcPort: 4500, DstPort: 4501}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetState(SAID{Dst: addrB, SPI: s.SPI}); !errors.Is(err, ErrNoSA) {
		t.Errorf("the SA is still at its old address: %v", err)
	}
	after, err := c.GetState(SAID{Dst: newDst, SPI: s.SPI})
	if err != nil {
		t.Fatal(err)
	}
	if after.Src != addrA || after.Reqid != 9 || !after.ESN || after.ReplayWindow != 64 || after.Algorithms != before.Algorithms ||
		after.Lifetime != before.Lifetime || !after.Counters.AddTime.Equal(before.Counters.AddTime) {
		t.Errorf("moved SA %+v, was %+v", after, before)
	}
	if after.Encap == nil || after.Encap.SrcPort != 4500 || after.Encap.DstPort != 4501 {
		t.Errorf("encapsulation %+v, want 4500 → 4501", after.Encap)
	}
	// And back, without encapsulation.
	if err := c.MoveState(SAID{Dst: newDst, SPI: s.SPI}, Move{Src: addrA, Dst: addrB}); err != nil {
		t.Fatal(err)
	}
	back, err := c.GetState(SAID{Dst: addrB, SPI: s.SPI})
	if err != nil {
		t.Fatal(err)
	}
	if back.Encap != nil {
		t.Errorf("encapsulation %+v after moving back, want none", back.Encap)
	}
	if err := c.MoveState(SAID{Dst: newDst, SPI: s.SPI}, Move{Src: addrA, Dst: addrB}); !errors.Is(err, ErrNoSA) {
		t.Errorf("moving a missing SA: %v, want ErrNoSA", err)
	}
}

// TestESPStateSeq: the kernel takes the initial sequence numbers of an SA
// taken over and reports them back, with the legacy replay state and
// with ESN (the high halves too).
func TestESPStateSeq(t *testing.T) {
	caps := requireESP(t)
	c, _ := newConn(t)
	for i, tt := range []struct {
		name    string
		esn     bool
		window  uint32
		out, in uint64
		inbound bool
	}{
		{"legacy out", false, 32, 1 << 20, 0, false},
		{"legacy in", false, 32, 0, 77777, true},
		{"ESN out", true, 64, 5<<32 | 9, 0, false},
		{"ESN in", true, 64, 0, 3<<32 | 11, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.esn && !caps.ESN.Available {
				t.Skipf("skipped: %s", caps.ESN.Reason)
			}
			s := State{Src: addrA, Dst: addrB, SPI: 0xc0000500 + uint32(i), Mode: ModeTunnel, Reqid: 5,
				Crypto: testCrypto(t, transform.ENCR_AES_GCM_16, 128, transform.AUTH_NONE), ESN: tt.esn, ReplayWindow: tt.window,
				Inbound: tt.inbound, OutSeq: tt.out, InSeq: tt.in}
			if _, err := c.AddState(s); err != nil {
				t.Fatal(err)
			}
			got, err := c.GetState(s.ID())
			if err != nil {
				t.Fatal(err)
			}
			if got.Counters.OutSeq != tt.out || got.Counters.InSeq != tt.in {
				t.Errorf("read back oseq %d seq %d, want %d and %d", got.Counters.OutSeq, got.Counters.InSeq, tt.out, tt.in)
			}
		})
	}
	// An inbound SA taken over goes in as the dataplane puts inbound SAs
	// in: UpdateState, which adds it when no larval SA is there, and
	// over a larval one AllocSPI made.
	t.Run("update", func(t *testing.T) {
		s := State{Src: addrA, Dst: addrB, SPI: 0xc0000510, Mode: ModeTunnel, Reqid: 5, Inbound: true,
			Crypto: testCrypto(t, transform.ENCR_AES_GCM_16, 128, transform.AUTH_NONE), ReplayWindow: 32, InSeq: 4242}
		if _, err := c.UpdateState(s); err != nil {
			t.Fatal(err)
		}
		spi, err := c.AllocSPI(ProtoESP, addrA, addrB, maps.SPIRange{Base: maps.DefaultSPIBase, Count: 4096})
		if err != nil {
			t.Fatal(err)
		}
		s2 := s
		s2.SPI, s2.InSeq, s2.Crypto = spi, 77, testCrypto(t, transform.ENCR_AES_GCM_16, 128, transform.AUTH_NONE)
		if _, err := c.UpdateState(s2); err != nil {
			t.Fatal(err)
		}
		for _, x := range []State{s, s2} {
			got, err := c.GetState(x.ID())
			if err != nil {
				t.Fatal(err)
			}
			if got.Counters.InSeq != x.InSeq || got.Larval {
				t.Errorf("SA %#x: seq %d larval %v, want %d", x.SPI, got.Counters.InSeq, got.Larval, x.InSeq)
			}
		}
	})
}
