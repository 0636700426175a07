// Package bench measures xdpsec against its references. Dataplane
// benchmarks run each program through BPF_PROG_TEST_RUN with repeats (the
// kernel times the loop) next to xdp_floor, a bare count-and-pass XDP
// program, in the same run, and report ns/pkt for both and their ratio.
//
//	go test -run '^$' -bench . -benchtime 1x ./bench/
package bench

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/xdpsec/xdpsec/bpf"
	"github.com/xdpsec/xdpsec/internal/packet"
	"github.com/xdpsec/xdpsec/internal/testenv"
	"github.com/xdpsec/xdpsec/maps"
)

// repeats is how often the kernel runs a program per BPF_PROG_TEST_RUN;
// rounds is how many such measurements are taken, interleaved with the
// floor's, keeping the fastest of each: the cost without interference
// from whatever else the machine runs.
const (
	repeats = 1_000_000
	rounds  = 9
)

var (
	peer = netip.MustParseAddr("198.51.100.7")
	us   = netip.MustParseAddr("192.0.2.1")
)

type dataplane struct {
	objs  bpf.XdpsecObjects
	floor bpf.FloorObjects
	maps  *maps.Set
}

func loadDataplane(b *testing.B, maxSAs, maxPolicies uint32) *dataplane {
	b.Helper()
	testenv.RequireBPF(b)
	spec, err := bpf.LoadXdpsec()
	if err != nil {
		b.Fatal(err)
	}
	for name, n := range map[string]uint32{"sa_in": maxSAs, "sa_slot": maxSAs, "sa_slot_stats": maxSAs, "spd_out": maxPolicies, "spd_stats": maxPolicies + 1,
		"spd_dst": 2 * maxPolicies, "spd_src": 2 * maxPolicies, "spd_node": 2 * maxPolicies, "spd_rule": 2 * maxPolicies} {
		spec.Maps[name].MaxEntries = n
	}
	d := &dataplane{}
	if err := spec.LoadAndAssign(&d.objs, nil); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { d.objs.Close() })
	if err := bpf.LoadFloorObjects(&d.floor, nil); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { d.floor.Close() })
	d.maps = maps.New(&d.objs.XdpsecMaps)
	if err := d.maps.Config.SetSPIRange(maps.SPIRange{Base: maps.DefaultSPIBase, Count: maxSAs}, maxSAs); err != nil {
		b.Fatal(err)
	}
	return d
}

// perPacket is the cost in ns of one run of prog on pkt, as the kernel
// times its repeat loop: setup excluded, and the clock stopped while the
// thread is scheduled away, so other load on the machine hardly shows.
// The kernel rounds down to whole nanoseconds.
func perPacket(b *testing.B, prog *ebpf.Program, pkt []byte) float64 {
	b.Helper()
	_, d, err := prog.Benchmark(pkt, repeats, nil)
	if err != nil {
		b.Fatal(err)
	}
	return float64(d.Nanoseconds())
}

// check runs prog once and fails unless it gives the verdict the
// benchmark means to measure.
func check(b *testing.B, prog *ebpf.Program, pkt []byte, want uint32) {
	b.Helper()
	ret, err := prog.Run(&ebpf.RunOptions{Data: pkt})
	if err != nil {
		b.Fatal(err)
	}
	if ret != want {
		b.Fatalf("program returned %d on the benchmark packet, want %d", ret, want)
	}
}

// measure reports prog's ns/pkt on pkt against the floor's on the same
// packet, interleaving the two so that both see the same machine state.
// Extra programs (with their packets) are measured in the same rounds;
// their costs are returned in order after prog's.
func (d *dataplane) measure(b *testing.B, prog *ebpf.Program, pkt []byte, want uint32) []float64 {
	b.Helper()
	check(b, prog, pkt, want)
	var progNs, floorNs []float64
	for i := 0; i < b.N; i++ {
		for range rounds {
			floorNs = append(floorNs, perPacket(b, d.floor.XdpFloor, pkt))
			progNs = append(progNs, perPacket(b, prog, pkt))
		}
	}
	p, f := slices.Min(progNs), slices.Min(floorNs)
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(p, "ns/pkt")
	b.ReportMetric(f, "floor-ns/pkt")
	b.ReportMetric(p/f, "x-floor")
	return []float64{p, f}
}

const (
	xdpDrop     = 1
	xdpPass     = 2
	tcActUnspec = 0xffffffff
)

func espPacket(spi uint32) []byte {
	return packet.Build(packet.Spec{Src: peer, Dst: us, Proto: packet.ProtoESP, Payload: packet.ESP(spi, 1, 1400)})
}

// fillSAs loads n SAs for us with SPIs first..first+n-1.
func fillSAs(b *testing.B, d *dataplane, first uint32, n int) {
	b.Helper()
	sas := make([]maps.InboundSA, n)
	for i := range sas {
		sas[i] = maps.InboundSA{SPI: first + uint32(i), Dst: us, CPU: maps.NoCPU}
	}
	if err := d.maps.SA.PutMany(sas); err != nil {
		b.Fatal(err)
	}
}

func BenchmarkXDPWan(b *testing.B) {
	// SAs the daemon made: SPIs from the allocated range, found by index.
	for _, n := range []int{1, 10_000, 1_000_000} {
		b.Run(fmt.Sprintf("sa_hit/sas=%d", n), func(b *testing.B) {
			d := loadDataplane(b, uint32(n), 64)
			fillSAs(b, d, maps.DefaultSPIBase, n)
			d.measure(b, d.objs.XdpWan, espPacket(maps.DefaultSPIBase+uint32(n)-1), xdpPass)
		})
	}
	b.Run("sa_miss/sas=1000000", func(b *testing.B) {
		d := loadDataplane(b, 1_000_000, 64)
		fillSAs(b, d, maps.DefaultSPIBase, 1_000_000)
		d.measure(b, d.objs.XdpWan, espPacket(maps.DefaultSPIBase+1_000_000+5), xdpDrop)
	})
	// SAs with SPIs from elsewhere (manual, another daemon's): by hash.
	b.Run("sa_hit_foreign/sas=1000000", func(b *testing.B) {
		d := loadDataplane(b, 1_000_000, 64)
		fillSAs(b, d, 1, 1_000_000)
		d.measure(b, d.objs.XdpWan, espPacket(1_000_000), xdpPass)
	})
	b.Run("sa_miss_foreign/sas=1000000", func(b *testing.B) {
		d := loadDataplane(b, 1_000_000, 64)
		fillSAs(b, d, 1, 1_000_000)
		d.measure(b, d.objs.XdpWan, espPacket(2_000_000), xdpDrop)
	})
	b.Run("ike_sa_init", func(b *testing.B) {
		d := loadDataplane(b, 1024, 64)
		if err := d.maps.Config.SetIKERateLimit(maps.IKERateLimit{Rate: 0}); err != nil {
			b.Fatal(err)
		}
		pkt := packet.Build(packet.Spec{Src: peer, Dst: us, Proto: packet.ProtoUDP,
			Payload: packet.UDP(peer, us, 500, 500, append(packet.IKESAInit(1), make([]byte, 300)...))})
		d.measure(b, d.objs.XdpWan, pkt, xdpPass)
	})
	b.Run("ike_sa_init_policed", func(b *testing.B) {
		// The policer's path: bucket lookup and compare-and-swap, admitting.
		d := loadDataplane(b, 1024, 64)
		if err := d.maps.Config.SetIKERateLimit(maps.IKERateLimit{Rate: 1_000_000_000, Burst: 1 << 30}); err != nil {
			b.Fatal(err)
		}
		pkt := packet.Build(packet.Spec{Src: peer, Dst: us, Proto: packet.ProtoUDP,
			Payload: packet.UDP(peer, us, 500, 500, append(packet.IKESAInit(1), make([]byte, 300)...))})
		d.measure(b, d.objs.XdpWan, pkt, xdpPass)
	})
}

// sitePolicies is a hub's policy set: its LAN to n remote sites, one /24
// each, the shape route-based site-to-site and road-warrior pools give.
func sitePolicies(n int) []maps.Policy {
	ps := make([]maps.Policy, n)
	for i := range ps {
		dst := netip.AddrFrom4([4]byte{byte(10 + i>>16), byte(i >> 8), byte(i), 0})
		ps[i] = maps.Policy{
			Src: netip.MustParsePrefix("172.16.0.0/16"), Dst: netip.PrefixFrom(dst, 24),
			DportHi: 0xffff, Action: maps.ActionProtect, IfID: uint32(i + 1),
		}
	}
	return ps
}

// tcSetup loads a dataplane with n site policies and returns it with a
// packet for the last policy inserted.
func tcSetup(b *testing.B, n int) (*dataplane, []byte) {
	d := loadDataplane(b, 1024, uint32(n))
	ps := sitePolicies(n)
	if _, err := d.maps.SPD.Replace(ps); err != nil {
		b.Fatal(err)
	}
	last := ps[n-1].Dst.Addr().Next()
	src := netip.MustParseAddr("172.16.1.1")
	return d, packet.Build(packet.Spec{Src: src, Dst: last, Proto: packet.ProtoUDP,
		Payload: packet.UDP(src, last, 4000, 53, make([]byte, 1000))})
}

// BenchmarkTCLan measures tc_lan with n policies and, in the same rounds,
// with 10, reporting the growth (x-10-policies) next to the floor ratio.
func BenchmarkTCLan(b *testing.B) {
	for _, n := range []int{10, 1_000, 100_000} {
		b.Run(fmt.Sprintf("policies=%d", n), func(b *testing.B) {
			d, pkt := tcSetup(b, n)
			small, smallPkt := tcSetup(b, 10)
			check(b, d.objs.TcLan, pkt, tcActUnspec)
			check(b, small.objs.TcLan, smallPkt, tcActUnspec)
			var big, base, floor []float64
			for i := 0; i < b.N; i++ {
				for range rounds {
					floor = append(floor, perPacket(b, d.floor.XdpFloor, pkt))
					big = append(big, perPacket(b, d.objs.TcLan, pkt))
					base = append(base, perPacket(b, small.objs.TcLan, smallPkt))
				}
			}
			p, f, s := slices.Min(big), slices.Min(floor), slices.Min(base)
			b.ReportMetric(0, "ns/op")
			b.ReportMetric(p, "ns/pkt")
			b.ReportMetric(f, "floor-ns/pkt")
			b.ReportMetric(p/f, "x-floor")
			b.ReportMetric(p/s, "x-10-policies")
		})
	}
}
