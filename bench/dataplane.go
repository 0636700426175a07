// Package bench measures xdpsec against its references, for both
// `go test -bench ./bench/` and `xdpsec bench`: the measurement functions
// live here, the _test.go files and the CLI only call them and print.
//
// Dataplane figures come from BPF_PROG_TEST_RUN with repeats (the kernel
// times the loop), each next to xdp_floor, a bare count-and-pass XDP
// program, measured in the same rounds. Policy lookup figures compare
// tc_lan with the kernel's own XFRM policy lookup on the same policy set.
package bench

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/rlimit"

	"github.com/xdpsec/xdpsec/bpf"
	"github.com/xdpsec/xdpsec/internal/packet"
	"github.com/xdpsec/xdpsec/maps"
)

// Options tune the dataplane measurements.
type Options struct {
	// Repeats is how often the kernel runs a program per BPF_PROG_TEST_RUN.
	Repeats int
	// Rounds is how many such measurements are taken, interleaved with the
	// floor's, keeping the fastest of each: the cost without interference
	// from whatever else the machine runs.
	Rounds int
	// SAs and Policies are the table sizes to measure at.
	SAs      []int
	Policies []int
}

// DefaultOptions are what `make bench` uses.
var DefaultOptions = Options{
	Repeats:  1_000_000,
	Rounds:   9,
	SAs:      []int{1, 10_000, 1_000_000},
	Policies: []int{10, 1_000, 100_000},
}

var (
	peer = netip.MustParseAddr("198.51.100.7")
	us   = netip.MustParseAddr("192.0.2.1")
)

// ErrNoBPF means this process cannot load the programs (not root, or a
// kernel without XDP and tc program types).
var ErrNoBPF = errors.New("cannot load BPF programs")

// Dataplane is xdpsec's programs and maps loaded (not attached) with
// chosen table sizes, next to the floor program.
type Dataplane struct {
	Objs  bpf.XdpsecObjects
	Floor bpf.FloorObjects
	Maps  *maps.Set
}

// LoadDataplane loads the programs with room for maxSAs SAs and
// maxPolicies policies.
func LoadDataplane(maxSAs, maxPolicies uint32) (*Dataplane, error) {
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("%w: lift the memlock limit: %v", ErrNoBPF, err)
	}
	spec, err := bpf.LoadXdpsec()
	if err != nil {
		return nil, err
	}
	for name, n := range map[string]uint32{"sa_in": maxSAs, "sa_slot": maxSAs, "sa_slot_stats": maxSAs, "sa_foreign": maps.ForeignSlots(maxSAs), "sa_foreign_stats": maps.ForeignSlots(maxSAs), "spd_out": maxPolicies, "spd_stats": maxPolicies + 1,
		"spd_prefix4": 2 * maxPolicies, "spd_prefix6": 2 * maxPolicies, "spd_dst": 2 * maxPolicies, "spd_src": 2 * maxPolicies, "spd_node": 2 * maxPolicies, "spd_rule": 2 * maxPolicies} {
		spec.Maps[name].MaxEntries = n
	}
	d := &Dataplane{}
	if err := spec.LoadAndAssign(&d.Objs, nil); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoBPF, err)
	}
	if err := bpf.LoadFloorObjects(&d.Floor, nil); err != nil {
		d.Objs.Close()
		return nil, fmt.Errorf("%w: %v", ErrNoBPF, err)
	}
	d.Maps = maps.New(&d.Objs.XdpsecMaps)
	if err := d.Maps.Config.SetSPIRange(maps.SPIRange{Base: maps.DefaultSPIBase, Count: maxSAs}, maxSAs); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

// Close unloads the programs and maps.
func (d *Dataplane) Close() {
	d.Objs.Close()
	d.Floor.Close()
}

// perPacket is the cost in ns of one run of prog on pkt, as the kernel
// times its repeat loop: setup excluded, and the clock stopped while the
// thread is scheduled away, so other load on the machine hardly shows.
// The kernel rounds down to whole nanoseconds.
func perPacket(prog *ebpf.Program, pkt []byte, repeats int) (float64, error) {
	_, d, err := prog.Benchmark(pkt, repeats, nil)
	if err != nil {
		return 0, err
	}
	return float64(d.Nanoseconds()), nil
}

// check runs prog once and fails unless it gives the verdict the
// measurement means to measure.
func check(prog *ebpf.Program, pkt []byte, want uint32) error {
	ret, err := prog.Run(&ebpf.RunOptions{Data: pkt})
	if err != nil {
		return err
	}
	if ret != want {
		return fmt.Errorf("program returned %d on the benchmark packet, want %d", ret, want)
	}
	return nil
}

// Run is one program on one packet, with the verdict it must give.
type Run struct {
	Prog    *ebpf.Program
	Packet  []byte
	Verdict uint32
}

// MeasureRounds measures the runs and the floor (on the first run's
// packet) in interleaved rounds, so that all see the same machine state,
// and returns the fastest ns/pkt of each run followed by the floor's.
func MeasureRounds(floor *ebpf.Program, o Options, runs ...Run) ([]float64, error) {
	for _, r := range runs {
		if err := check(r.Prog, r.Packet, r.Verdict); err != nil {
			return nil, err
		}
	}
	best := make([]float64, len(runs)+1)
	for i := range best {
		best[i] = -1
	}
	keep := func(i int, v float64) {
		if best[i] < 0 || v < best[i] {
			best[i] = v
		}
	}
	for range o.Rounds {
		v, err := perPacket(floor, runs[0].Packet, o.Repeats)
		if err != nil {
			return nil, err
		}
		keep(len(runs), v)
		for i, r := range runs {
			v, err := perPacket(r.Prog, r.Packet, o.Repeats)
			if err != nil {
				return nil, err
			}
			keep(i, v)
		}
	}
	return best, nil
}

// Verdicts the benchmark packets must get.
const (
	xdpDrop     = 1
	xdpPass     = 2
	tcActUnspec = 0xffffffff
)

// ESPPacket is ESP from the peer to us with the given SPI.
func ESPPacket(spi uint32) []byte {
	return packet.Build(packet.Spec{Src: peer, Dst: us, Proto: packet.ProtoESP, Payload: packet.ESP(spi, 1, 1400)})
}

// IKESAInitPacket is an IKE_SA_INIT request from the peer to us.
func IKESAInitPacket() []byte {
	return packet.Build(packet.Spec{Src: peer, Dst: us, Proto: packet.ProtoUDP,
		Payload: packet.UDP(peer, us, 500, 500, append(packet.IKESAInit(1), make([]byte, 300)...))})
}

// FillSAs loads n SAs for us with SPIs first..first+n-1.
func (d *Dataplane) FillSAs(first uint32, n int) error {
	sas := make([]maps.InboundSA, n)
	for i := range sas {
		sas[i] = maps.InboundSA{SPI: first + uint32(i), Dst: us, CPU: maps.NoCPU}
	}
	return d.Maps.SA.PutMany(sas)
}

// Result is one program's cost on one case next to the floor's.
type Result struct {
	Program  string
	Case     string
	SAs      int // SAs loaded, or 0 where it does not apply
	Policies int // policies loaded, or 0
	Ns       float64
	FloorNs  float64
	// BaseNs is tc_lan's cost with the smallest policy set measured in the
	// same rounds (0 elsewhere).
	BaseNs float64
}

// XFloor is the cost as a multiple of the floor's.
func (r Result) XFloor() float64 { return r.Ns / r.FloorNs }

// xdpCase is an xdp_wan case on a dataplane with SAs loaded.
type xdpCase struct {
	name    string
	foreign bool // SAs with SPIs outside the allocated range, found by hash
	setup   func(d *Dataplane) error
	packet  func(n int) []byte
	verdict uint32
}

// missRoom is how many empty slots the allocated SPI range has past the
// SAs loaded.
const missRoom = 16

// xdpCases are the xdp_wan cases, each measured at every SA count. SAs
// the daemon makes get SPIs from the allocated range (found by index);
// foreign ones (manual, another daemon's) in their SPI's window of sa_foreign.
var xdpCases = []xdpCase{
	{name: "ESP, SA hit", packet: func(n int) []byte { return ESPPacket(maps.DefaultSPIBase + uint32(n) - 1) }, verdict: xdpPass},
	{name: "ESP, SA miss (SPI in the range, no SA)", packet: func(n int) []byte { return ESPPacket(maps.DefaultSPIBase + uint32(n) + 5) }, verdict: xdpDrop},
	{name: "ESP, SPI outside the range, no foreign SAs", packet: func(int) []byte { return ESPPacket(maps.DefaultSPIBase - 1) }, verdict: xdpDrop},
	{name: "ESP, foreign SPI hit", foreign: true, packet: func(n int) []byte { return ESPPacket(uint32(n)) }, verdict: xdpPass},
	{name: "ESP, foreign SPI miss", foreign: true, packet: func(n int) []byte { return ESPPacket(2_000_000_000) }, verdict: xdpDrop},
	{name: "IKE_SA_INIT, policer off", setup: func(d *Dataplane) error {
		return d.Maps.Config.SetIKERateLimit(maps.IKERateLimit{Rate: 0})
	}, packet: func(int) []byte { return IKESAInitPacket() }, verdict: xdpPass},
	{name: "IKE_SA_INIT, policer on (admitted)", setup: func(d *Dataplane) error {
		// The policer's path: bucket lookup and compare-and-swap, admitting.
		return d.Maps.Config.SetIKERateLimit(maps.IKERateLimit{Rate: 1_000_000_000, Burst: 1 << 30})
	}, packet: func(int) []byte { return IKESAInitPacket() }, verdict: xdpPass},
}

// XDPWan measures every xdp_wan case at each SA count of o, calling
// progress (if not nil) with each result as it comes.
func XDPWan(o Options, progress func(Result)) ([]Result, error) {
	var out []Result
	for _, n := range o.SAs {
		for _, foreign := range []bool{false, true} {
			rs, err := xdpWanAt(o, n, foreign)
			if err != nil {
				return out, err
			}
			for _, r := range rs {
				if progress != nil {
					progress(r)
				}
			}
			out = append(out, rs...)
		}
	}
	// Order by case, then SA count, as the tables read.
	slices.SortStableFunc(out, func(a, b Result) int {
		return caseIndex(a.Case) - caseIndex(b.Case)
	})
	return out, nil
}

func caseIndex(name string) int {
	return slices.IndexFunc(xdpCases, func(c xdpCase) bool { return c.name == name })
}

// xdpWanAt loads one dataplane with n SAs (from the allocated range, or
// foreign) and measures the cases that fit it, each case with its own
// rounds against the floor.
func xdpWanAt(o Options, n int, foreign bool) ([]Result, error) {
	// Room for a few more SAs than loaded, so that a miss can fall in
	// the allocated range.
	d, err := LoadDataplane(uint32(n)+missRoom, 64)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	var first uint32 = maps.DefaultSPIBase
	if foreign {
		first = 1
	}
	if err := d.FillSAs(first, n); err != nil {
		return nil, fmt.Errorf("load %d SAs: %w", n, err)
	}
	var out []Result
	for _, c := range xdpCases {
		if c.foreign != foreign {
			continue
		}
		if c.setup != nil {
			if err := c.setup(d); err != nil {
				return out, err
			}
		}
		ns, err := MeasureRounds(d.Floor.XdpFloor, o, Run{d.Objs.XdpWan, c.packet(n), c.verdict})
		if err != nil {
			return out, fmt.Errorf("xdp_wan %s, %d SAs: %w", c.name, n, err)
		}
		out = append(out, Result{Program: "xdp_wan", Case: c.name, SAs: n, Ns: ns[0], FloorNs: ns[1]})
	}
	return out, nil
}

// SitePolicies is a hub's policy set: its LAN (172.16.0.0/16) to n remote
// sites, one /24 each (10.0.0.0/24, 10.0.1.0/24, ...), each PROTECT with
// its own if_id: the shape route-based site-to-site and road-warrior
// pools give. The first k of SitePolicies(n) are SitePolicies(k).
func SitePolicies(n int) []maps.Policy {
	ps := make([]maps.Policy, n)
	for i := range ps {
		ps[i] = maps.Policy{
			Src: lanPrefix, Dst: siteDst(i),
			DportHi: 0xffff, Action: maps.ActionProtect, IfID: uint32(i + 1),
		}
	}
	return ps
}

var (
	lanPrefix = netip.MustParsePrefix("172.16.0.0/16")
	lanHost   = netip.MustParseAddr("172.16.1.1")
)

func siteDst(i int) netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(10 + i>>16), byte(i >> 8), byte(i), 0}), 24)
}

// lastSiteHost is an address in the last of n site policies' remote /24.
func lastSiteHost(n int) netip.Addr { return siteDst(n - 1).Addr().Next() }

// TCLanSetup loads a dataplane with n site policies and returns it with a
// UDP packet for the last policy inserted.
func TCLanSetup(n int) (*Dataplane, []byte, error) {
	d, err := LoadDataplane(1024, uint32(n))
	if err != nil {
		return nil, nil, err
	}
	if _, err := d.Maps.SPD.Replace(SitePolicies(n)); err != nil {
		d.Close()
		return nil, nil, fmt.Errorf("load %d policies: %w", n, err)
	}
	dst := lastSiteHost(n)
	return d, packet.Build(packet.Spec{Src: lanHost, Dst: dst, Proto: packet.ProtoUDP,
		Payload: packet.UDP(lanHost, dst, 4000, 53, make([]byte, 1000))}), nil
}

// TCLan measures tc_lan at each policy count of o and, in the same
// rounds, with the smallest count (BaseNs).
func TCLan(o Options, progress func(Result)) ([]Result, error) {
	if len(o.Policies) == 0 {
		return nil, nil
	}
	base := slices.Min(o.Policies)
	small, smallPkt, err := TCLanSetup(base)
	if err != nil {
		return nil, err
	}
	defer small.Close()
	var out []Result
	for _, n := range o.Policies {
		r, err := tcLanAt(o, n, small, smallPkt)
		if err != nil {
			return out, err
		}
		if progress != nil {
			progress(r)
		}
		out = append(out, r)
	}
	return out, nil
}

func tcLanAt(o Options, n int, small *Dataplane, smallPkt []byte) (Result, error) {
	d, pkt, err := TCLanSetup(n)
	if err != nil {
		return Result{}, err
	}
	defer d.Close()
	ns, err := MeasureRounds(d.Floor.XdpFloor, o, Run{d.Objs.TcLan, pkt, tcActUnspec}, Run{small.Objs.TcLan, smallPkt, tcActUnspec})
	if err != nil {
		return Result{}, fmt.Errorf("tc_lan, %d policies: %w", n, err)
	}
	return Result{Program: "tc_lan", Case: "UDP for the last policy (PROTECT)", Policies: n, Ns: ns[0], BaseNs: ns[1], FloorNs: ns[2]}, nil
}
