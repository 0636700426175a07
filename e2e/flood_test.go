package e2e

import (
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/xdpsec/xdpsec/internal/packet"
)

// TestDaemonIKEFlood: while site A floods B's WAN with IKE_SA_INIT
// requests from many spoofed sources, each sending more than the
// per-source burst back to back,
// xdp_wan's policer drops what is over the rate (ike_ratelimit), and A's
// own IKE_SA_INIT, from a source of its own bucket, gets through: the
// tunnel comes up and carries traffic. Over IPv4 and IPv6.
func TestDaemonIKEFlood(t *testing.T) { forFamilies(t, testDaemonIKEFlood) }

func testDaemonIKEFlood(t *testing.T, f family) {
	p := newPairWithLANs(t, f)
	c := tunnelConf{ifID: 0x4b}
	dp := &daemonPair{pair: p, ga: newGateway(t, p.a, swanctlConf(p, p.a, c)), gb: newGateway(t, p.b, swanctlConf(p, p.b, c))}
	dp.ga.start()
	dp.gb.start()
	limited, passed := dp.gb.counter("ike_ratelimit"), dp.gb.counter("ike_sa_init")

	const sources, perSource = 64, 100
	var stop atomic.Bool
	var sent atomic.Int64
	done := make(chan error, 1)
	go func() {
		done <- p.a.Do(func() error {
			// IPPROTO_RAW: the packets carry their own (spoofed) IP
			// header, in IPv6 as in IPv4.
			domain, to := unix.AF_INET6, unix.Sockaddr(&unix.SockaddrInet6{Addr: p.b.outer.As16()})
			if f == ipv4 {
				domain, to = unix.AF_INET, &unix.SockaddrInet4{Addr: p.b.outer.As4()}
			}
			fd, err := unix.Socket(domain, unix.SOCK_RAW, unix.IPPROTO_RAW)
			if err != nil {
				return err
			}
			defer unix.Close(fd)
			// Each source sends its requests back to back, built
			// beforehand: over the per-source rate however slowly
			// the guest sends (under TCG, round-robin over the
			// sources at a few hundred packets per second stayed
			// within every source's rate, and nothing was dropped).
			for i := 0; !stop.Load() && i < sources; i++ {
				src := netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)})
				if f == ipv6 {
					src = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0xff, 14: byte(i >> 8), 15: byte(i)})
				}
				pkts := make([][]byte, perSource)
				for round := range pkts {
					pkts[round] = packet.Build(packet.Spec{Src: src, Dst: p.b.outer, Proto: packet.ProtoUDP, NoEth: true,
						Payload: packet.UDP(src, p.b.outer, 500, 500, packet.IKESAInit(uint64(round)<<32|uint64(i)+1))})
				}
				for _, pkt := range pkts {
					if err := unix.Sendto(fd, pkt, 0, to); err != nil {
						return err
					}
					sent.Add(1)
				}
			}
			return nil
		})
	}()
	time.Sleep(300 * time.Millisecond)
	start := time.Now()
	out, err := dp.ga.xdpsec("initiate", "--child", "net", "--timeout", "60s")
	took := time.Since(start)
	stop.Store(true)
	if ferr := <-done; ferr != nil {
		t.Fatalf("flood: %v", ferr)
	}
	dropped, admitted := dp.gb.counter("ike_ratelimit")-limited, dp.gb.counter("ike_sa_init")-passed
	t.Logf("flood of %d IKE_SA_INIT from %d spoofed sources: xdp_wan admitted %d, dropped %d over the rate; A's initiate took %v",
		sent.Load(), sources, admitted, dropped, took.Round(time.Millisecond))
	if err != nil {
		t.Fatalf("initiate during the flood: %v\n%s", err, out)
	}
	if dropped == 0 {
		t.Errorf("xdp_wan's policer dropped none of %d requests", sent.Load())
	}
	if admitted+dropped < uint64(sent.Load()) {
		t.Errorf("xdp_wan counted %d admitted + %d dropped of %d sent", admitted, dropped, sent.Load())
	}
	dp.gb.waitChild("net", 10*time.Second)
	if got := ping(t, p.a.lanH, p.a.lanA, p.b.lanA, 5, 5); got != 5 {
		t.Errorf("after the flood: %d of 5 pings answered", got)
	}
}
