package dataplane

import (
	"errors"
	"fmt"
	"github.com/xdpsec/xdpsec/internal/testenv"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/xdpsec/xdpsec/ike"
	"github.com/xdpsec/xdpsec/ike/transform"
	"github.com/xdpsec/xdpsec/maps"
	"github.com/xdpsec/xdpsec/maps/xfrm"
)

// events records the calls both fakes see, in order.
type events struct{ list []string }

func (e *events) add(f string, a ...any) { e.list = append(e.list, fmt.Sprintf(f, a...)) }

type fakeKernel struct {
	ev       *events
	states   map[uint32]xfrm.State
	policies []xfrm.Policy
	failAdd  error
	offload  func(s xfrm.State) (xfrm.OffloadResult, error)
	nextSPI  uint32
	larval   map[uint32]bool // states GetState reports larval
}

func (k *fakeKernel) AllocSPI(proto xfrm.Proto, src, dst netip.Addr, r maps.SPIRange) (uint32, error) {
	k.nextSPI++
	spi := r.Base + k.nextSPI
	k.ev.add("kernel allocspi %.8x", spi)
	return spi, nil
}

func (k *fakeKernel) install(verb string, s xfrm.State) (xfrm.OffloadResult, error) {
	if k.failAdd != nil {
		return xfrm.OffloadResult{}, k.failAdd
	}
	var res xfrm.OffloadResult
	if s.Offload.Mode != xfrm.OffloadNo && k.offload != nil {
		var err error
		if res, err = k.offload(s); err != nil {
			return res, err
		}
	}
	k.ev.add("kernel %s %.8x", verb, s.SPI)
	s.Crypto.EncrKey = slices.Clone(s.Crypto.EncrKey)
	k.states[s.SPI] = s
	return res, nil
}

func (k *fakeKernel) AddState(s xfrm.State) (xfrm.OffloadResult, error) { return k.install("add", s) }
func (k *fakeKernel) UpdateState(s xfrm.State) (xfrm.OffloadResult, error) {
	return k.install("update", s)
}
func (k *fakeKernel) DeleteState(id xfrm.SAID) error {
	k.ev.add("kernel delete %.8x", id.SPI)
	if _, ok := k.states[id.SPI]; !ok {
		return xfrm.ErrNoSA
	}
	delete(k.states, id.SPI)
	return nil
}
func (k *fakeKernel) GetState(id xfrm.SAID) (xfrm.StateInfo, error) {
	s, ok := k.states[id.SPI]
	if !ok || s.Proto != id.Proto {
		return xfrm.StateInfo{}, xfrm.ErrNoSA
	}
	return xfrm.StateInfo{SPI: id.SPI, Larval: k.larval[id.SPI], Counters: xfrm.Counters{Bytes: 100, Packets: 2, OutSeq: s.OutSeq, InSeq: s.InSeq}}, nil
}
func (k *fakeKernel) MoveState(id xfrm.SAID, to xfrm.Move) error {
	s, ok := k.states[id.SPI]
	if !ok || s.Dst != id.Dst {
		return xfrm.ErrNoSA
	}
	k.ev.add("kernel move %.8x %s -> %s encap %v", id.SPI, id.Dst, to.Dst, to.Encap != nil)
	s.Src, s.Dst, s.Encap = to.Src, to.Dst, to.Encap
	k.states[id.SPI] = s
	return nil
}
func (k *fakeKernel) UpdatePolicy(p xfrm.Policy) error {
	i := slices.IndexFunc(k.policies, func(q xfrm.Policy) bool {
		return q.Dir == p.Dir && q.Selector == p.Selector && q.IfID == p.IfID
	})
	if i < 0 {
		return xfrm.ErrNoPolicy
	}
	k.ev.add("kernel policy update %v %v tmpl %s -> %s", p.Dir, p.Selector, p.Templates[0].Src, p.Templates[0].Dst)
	k.policies[i] = p
	return nil
}
func (k *fakeKernel) AddPolicy(p xfrm.Policy) error {
	for _, q := range k.policies {
		if q.Dir == p.Dir && q.Selector == p.Selector && q.IfID == p.IfID {
			return xfrm.ErrExists
		}
	}
	k.ev.add("kernel policy add %v %v if_id %d", p.Dir, p.Selector, p.IfID)
	k.policies = append(k.policies, p)
	return nil
}
func (k *fakeKernel) DeletePolicy(p xfrm.Policy) error {
	k.ev.add("kernel policy del %v %v if_id %d", p.Dir, p.Selector, p.IfID)
	i := slices.IndexFunc(k.policies, func(q xfrm.Policy) bool {
		return q.Dir == p.Dir && q.Selector == p.Selector && q.IfID == p.IfID
	})
	if i < 0 {
		return xfrm.ErrNoPolicy
	}
	k.policies = slices.Delete(k.policies, i, i+1)
	return nil
}

type fakeBPF struct {
	ev       *events
	sas      map[uint32]maps.InboundSA
	policies []maps.Policy
	applied  int // ApplyPolicies calls
	cpus     []int
	cpuReads int // CPUs calls
}

func (b *fakeBPF) SPIRange() (maps.SPIRange, error) {
	return maps.SPIRange{Base: 0xc0000000, Count: 4096}, nil
}
func (b *fakeBPF) CPUs() ([]int, error) { b.cpuReads++; return b.cpus, nil }
func (b *fakeBPF) PutSA(sa maps.InboundSA) error {
	if sa.Pending {
		b.ev.add("bpf put %.8x cpu %d pending", sa.SPI, sa.CPU)
	} else {
		b.ev.add("bpf put %.8x cpu %d", sa.SPI, sa.CPU)
	}
	b.sas[sa.SPI] = sa
	return nil
}
func (b *fakeBPF) DeleteSA(proto maps.SAProto, spi uint32, dst netip.Addr) error {
	if _, ok := b.sas[spi]; !ok {
		return maps.ErrNoSA
	}
	b.ev.add("bpf delete %.8x", spi)
	delete(b.sas, spi)
	return nil
}
func (b *fakeBPF) GetSA(proto maps.SAProto, spi uint32, dst netip.Addr) (maps.InboundSAStats, error) {
	sa, ok := b.sas[spi]
	if !ok {
		return maps.InboundSAStats{}, maps.ErrNoSA
	}
	return maps.InboundSAStats{InboundSA: sa, RxSeenPackets: 3, RxSeenBytes: 300}, nil
}

func (b *fakeBPF) PendingSAs() ([]maps.InboundSA, error) {
	var out []maps.InboundSA
	for _, sa := range b.sas {
		if sa.Pending {
			out = append(out, sa)
		}
	}
	return out, nil
}

func (b *fakeBPF) MoveSA(proto maps.SAProto, spi uint32, from, to netip.Addr) error {
	sa, ok := b.sas[spi]
	if !ok || sa.Dst != from {
		return maps.ErrNoSA
	}
	b.ev.add("bpf move %.8x %s -> %s", spi, from, to)
	sa.Dst = to
	b.sas[spi] = sa
	return nil
}

// ApplyPolicies does what maps.SPD.Apply does, on a slice.
func (b *fakeBPF) ApplyPolicies(add []maps.Policy, del []uint32) ([]maps.Policy, error) {
	b.applied++
	for _, id := range del {
		if i := slices.IndexFunc(b.policies, func(q maps.Policy) bool { return q.ID == id }); i >= 0 {
			b.ev.add("bpf policy del %d", id)
			b.policies = slices.Delete(b.policies, i, i+1)
		}
	}
	var out []maps.Policy
	for _, p := range add {
		if i := slices.IndexFunc(b.policies, func(q maps.Policy) bool { q.ID = p.ID; return q == p }); i >= 0 {
			out = append(out, b.policies[i])
			continue
		}
		p.ID = 1
		for slices.ContainsFunc(b.policies, func(q maps.Policy) bool { return q.ID == p.ID }) {
			p.ID++
		}
		b.ev.add("bpf policy add %d %s %s %s if_id %d", p.ID, maps.ActionName(p.Action), p.Src, p.Dst, p.IfID)
		b.policies = append(b.policies, p)
		out = append(out, p)
	}
	return out, nil
}

func newFakeDataplane(t *testing.T) (*KernelDataplane, *fakeKernel, *fakeBPF, *events) {
	ev := &events{}
	k := &fakeKernel{ev: ev, states: map[uint32]xfrm.State{}}
	b := &fakeBPF{ev: ev, sas: map[uint32]maps.InboundSA{}, cpus: []int{0, 1}}
	d := NewKernelDataplane(KernelConfig{Kernel: k, BPF: b, Log: testenv.Logger(t),
		Device: func(netip.Addr) (string, error) { return "wan0", nil }})
	t.Cleanup(d.Close)
	return d, k, b, ev
}

var (
	us   = netip.MustParseAddr("192.0.2.1")
	them = netip.MustParseAddr("192.0.2.2")
)

func testSA(spi uint32, inbound bool) *ike.SA {
	sa := &ike.SA{
		Inbound: inbound, Encr: transform.ENCR_AES_GCM_16, EncrBits: 128,
		EncrKey: make([]byte, 20), Integ: transform.AUTH_NONE, ReqID: 1, Replay: 32,
	}
	if inbound {
		sa.SAID, sa.Src = ike.SAID{Dst: us, SPI: spi}, them
	} else {
		sa.SAID, sa.Src = ike.SAID{Dst: them, SPI: spi}, us
	}
	return sa
}

func TestDataplaneInboundOrder(t *testing.T) {
	d, k, b, ev := newFakeDataplane(t)
	spi, err := d.AllocateSPI(ike.SAProtoESP, them, us)
	if err != nil {
		t.Fatal(err)
	}
	if spi < 0xc0000000 || spi >= 0xc0000000+4096 {
		t.Errorf("SPI %.8x outside the pinned range", spi)
	}
	if err := d.AddSA(testSA(spi, true)); err != nil {
		t.Fatal(err)
	}
	if err := d.AddSA(testSA(0x1234, false)); err != nil {
		t.Fatal(err)
	}
	if _, ok := b.sas[0x1234]; ok {
		t.Error("outbound SA went into the BPF SA table")
	}
	st, err := d.QuerySA(ike.SAID{Dst: us, SPI: spi})
	if err != nil || st.Bytes != 100 || st.Packets != 2 {
		t.Errorf("QuerySA = %+v, %v", st, err)
	}
	if p, by, err := d.RxSeen(ike.SAID{Dst: us, SPI: spi}); err != nil || p != 3 || by != 300 {
		t.Errorf("RxSeen = %d %d %v", p, by, err)
	}
	if err := d.DeleteSA(ike.SAID{Dst: us, SPI: spi}); err != nil {
		t.Fatal(err)
	}
	if err := d.DeleteSA(ike.SAID{Dst: them, SPI: 0x1234}); err != nil {
		t.Fatal(err)
	}
	want := []string{
		fmt.Sprintf("kernel allocspi %.8x", spi),
		fmt.Sprintf("bpf put %.8x cpu 0", spi), // BPF entry before the kernel SA
		fmt.Sprintf("kernel update %.8x", spi),
		"kernel add 00001234",
		fmt.Sprintf("kernel delete %.8x", spi), // kernel SA removed before the BPF entry
		fmt.Sprintf("bpf delete %.8x", spi),
		"kernel delete 00001234",
	}
	if !slices.Equal(ev.list, want) {
		t.Errorf("events:\n%s\nwant:\n%s", strings.Join(ev.list, "\n"), strings.Join(want, "\n"))
	}
	if len(k.states) != 0 || len(b.sas) != 0 {
		t.Errorf("left behind: %v %v", k.states, b.sas)
	}
}

// TestDataplaneCPUPickedAtAllocation: the inbound SA's CPU is picked
// when its SPI is allocated, so that installing the SA once the peer's
// response is in does not read cpu_map; an SPI given back forgets it.
func TestDataplaneCPUPickedAtAllocation(t *testing.T) {
	d, _, b, _ := newFakeDataplane(t)
	b.cpus = []int{3, 4}
	var spis []uint32
	for range 2 {
		spi, err := d.AllocateSPI(ike.SAProtoESP, them, us)
		if err != nil {
			t.Fatal(err)
		}
		spis = append(spis, spi)
	}
	reads := b.cpuReads
	if reads != 2 {
		t.Errorf("cpu_map read %d times for 2 SPIs", reads)
	}
	if err := d.AddSA(testSA(spis[1], true)); err != nil {
		t.Fatal(err)
	}
	if b.cpuReads != reads {
		t.Errorf("installing the inbound SA read cpu_map again")
	}
	if c := b.sas[spis[1]].CPU; c != 4 {
		t.Errorf("the second SPI's SA went to CPU %d, want 4 (picked at allocation)", c)
	}
	if err := d.DeleteSA(ike.SAID{Dst: us, SPI: spis[0]}); err != nil {
		t.Fatal(err)
	}
	if len(d.pending) != 0 {
		t.Errorf("CPUs of allocated SPIs left: %v", d.pending)
	}
}

func TestDataplaneKernelFailureRemovesBPFEntry(t *testing.T) {
	d, k, b, _ := newFakeDataplane(t)
	k.failAdd = xfrm.ErrNoESP
	err := d.AddSA(testSA(0xc0000005, true))
	if !errors.Is(err, xfrm.ErrNoESP) {
		t.Fatalf("AddSA = %v, want ErrNoESP", err)
	}
	if len(b.sas) != 0 {
		t.Errorf("BPF entry left after the kernel refused the SA: %v", b.sas)
	}
}

func TestDataplaneCPUSpread(t *testing.T) {
	d, _, b, _ := newFakeDataplane(t)
	b.cpus = []int{2, 5, 7}
	for i := range uint32(4) {
		if err := d.AddSA(testSA(0xc0000010+i, true)); err != nil {
			t.Fatal(err)
		}
	}
	var got []int
	for i := range uint32(4) {
		got = append(got, b.sas[0xc0000010+i].CPU)
	}
	if !slices.Equal(got, []int{2, 5, 7, 2}) {
		t.Errorf("round robin CPUs %v", got)
	}
	d.spread = SpreadSPI
	d.AddSA(testSA(0xc0000021, true))
	if c := b.sas[0xc0000021].CPU; c != b.cpus[0xc0000021%3] {
		t.Errorf("by SPI: CPU %d", c)
	}
	d.spread = SpreadNone
	d.AddSA(testSA(0xc0000022, true))
	if c := b.sas[0xc0000022].CPU; c != maps.NoCPU {
		t.Errorf("none: CPU %d", c)
	}
}

func TestDataplaneOffload(t *testing.T) {
	refuse := func(s xfrm.State) (xfrm.OffloadResult, error) {
		oe := &xfrm.OffloadError{Device: s.Offload.Device, Err: xfrm.ErrNotOffloaded}
		if s.Offload.Mode == xfrm.OffloadAuto {
			return xfrm.OffloadResult{Device: s.Offload.Device, Refused: oe}, nil
		}
		return xfrm.OffloadResult{}, oe
	}
	for _, tc := range []struct {
		mode    ike.HWOffload
		wantErr bool
		wantLog string
	}{
		{ike.HWOffloadAuto, false, "hw offload on wan0 refused"},
		{ike.HWOffloadYes, true, ""},
		{ike.HWOffloadPacket, true, ""},
	} {
		t.Run(tc.mode.String(), func(t *testing.T) {
			d, k, b, _ := newFakeDataplane(t)
			var logs strings.Builder
			d.log = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			k.offload = refuse
			sa := testSA(0xc0000001, true)
			sa.Offload = tc.mode
			err := d.AddSA(sa)
			if tc.wantErr {
				var oe *xfrm.OffloadError
				if !errors.As(err, &oe) || !strings.Contains(err.Error(), "wan0") {
					t.Errorf("AddSA = %v, want the device's refusal", err)
				}
				if len(b.sas) != 0 {
					t.Error("BPF entry left behind")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(logs.String(), tc.wantLog) || !strings.Contains(logs.String(), "falling back to software") {
				t.Errorf("log:\n%s", logs.String())
			}
		})
	}
}

func TestDataplaneRouteBasedPolicies(t *testing.T) {
	d, k, b, _ := newFakeDataplane(t)
	local, _ := ike.ParseTS("10.1.0.0/16")
	remote1, _ := ike.ParseTS("10.2.0.0/16")
	remote2, _ := ike.ParseTS("10.3.0.0/24")
	pols := func(remote ike.TrafficSelector) []*ike.Policy {
		return []*ike.Policy{
			{Dir: ike.DirOut, Src: local, Dst: remote, TmplSrc: us, TmplDst: them, ReqID: 1, IfID: 7},
			{Dir: ike.DirIn, Src: remote, Dst: local, TmplSrc: them, TmplDst: us, ReqID: 1, IfID: 7},
			{Dir: ike.DirFwd, Src: remote, Dst: local, TmplSrc: them, TmplDst: us, ReqID: 1, IfID: 7},
		}
	}
	a, c := pols(remote1), pols(remote2)
	for _, p := range append(a, c...) {
		if err := d.AddPolicy(p); err != nil {
			t.Fatal(err)
		}
	}
	// One catch-all per direction and family in use (IPv4 here).
	if len(k.policies) != 3 {
		t.Errorf("kernel policies: %v", k.policies)
	}
	for _, p := range k.policies {
		if p.IfID != 7 || p.Selector.Src.Bits() != 0 || p.Selector.Dst.Bits() != 0 {
			t.Errorf("not a catch-all: %v", p)
		}
	}
	d.Flush()
	if len(b.policies) != 2 {
		t.Fatalf("SPD: %+v", b.policies)
	}
	for _, p := range b.policies {
		if p.Action != maps.ActionProtect || p.IfID != 7 || p.Src != netip.MustParsePrefix("10.1.0.0/16") {
			t.Errorf("SPD policy %+v", p)
		}
	}
	// Idempotent: a restarted daemon adds them again.
	d2 := NewKernelDataplane(KernelConfig{Kernel: k, BPF: b, Log: testenv.Logger(t)})
	for _, p := range a {
		if err := d2.AddPolicy(p); err != nil {
			t.Fatal(err)
		}
	}
	d2.Close()
	if len(b.policies) != 2 || len(k.policies) != 3 {
		t.Errorf("re-adding duplicated: %d %d", len(b.policies), len(k.policies))
	}
	for _, p := range a {
		if err := d.DeletePolicy(p); err != nil {
			t.Fatal(err)
		}
	}
	d.Flush()
	if len(k.policies) != 3 || len(b.policies) != 1 {
		t.Errorf("after deleting the first child: kernel %d SPD %d", len(k.policies), len(b.policies))
	}
	for _, p := range c {
		if err := d.DeletePolicy(p); err != nil {
			t.Fatal(err)
		}
	}
	d.Flush()
	if len(k.policies) != 0 || len(b.policies) != 0 {
		t.Errorf("left: %v %v", k.policies, b.policies)
	}
}

func TestDataplaneClassicPolicies(t *testing.T) {
	d, k, b, _ := newFakeDataplane(t)
	local, _ := ike.ParseTS("10.1.0.0-10.1.0.2")
	remote, _ := ike.ParseTS("10.2.0.0/16[tcp/443]")
	p := &ike.Policy{Dir: ike.DirOut, Src: local, Dst: remote, TmplSrc: us, TmplDst: them, ReqID: 3}
	if err := d.AddPolicy(p); err != nil {
		t.Fatal(err)
	}
	// 10.1.0.0-10.1.0.2 is 10.1.0.0/31 and 10.1.0.2/32.
	if len(k.policies) != 2 {
		t.Fatalf("kernel policies: %v", k.policies)
	}
	if k.policies[0].Selector.DstPort != 443 || k.policies[0].Selector.Proto != 6 || k.policies[0].Templates[0].Reqid != 3 {
		t.Errorf("policy %+v", k.policies[0])
	}
	d.Flush()
	if len(b.policies) != 2 || b.policies[0].Action != maps.ActionBypass || b.policies[0].DportLo != 443 {
		t.Errorf("SPD %+v", b.policies)
	}
	if err := d.DeletePolicy(p); err != nil {
		t.Fatal(err)
	}
	d.Flush()
	if len(k.policies) != 0 || len(b.policies) != 0 {
		t.Errorf("left: %v %v", k.policies, b.policies)
	}
}

func TestRangePrefixes(t *testing.T) {
	for _, tc := range []struct{ from, to, want string }{
		{"10.0.0.0", "10.0.255.255", "10.0.0.0/16"},
		{"10.0.0.1", "10.0.0.6", "10.0.0.1/32 10.0.0.2/31 10.0.0.4/31 10.0.0.6/32"},
		{"0.0.0.0", "255.255.255.255", "0.0.0.0/0"},
		{"2001:db8::", "2001:db8::ffff", "2001:db8::/112"},
	} {
		var got []string
		for _, p := range rangePrefixes(netip.MustParseAddr(tc.from), netip.MustParseAddr(tc.to)) {
			got = append(got, p.String())
		}
		if strings.Join(got, " ") != tc.want {
			t.Errorf("%s-%s: %v, want %s", tc.from, tc.to, got, tc.want)
		}
	}
}

type fakeTunnels struct {
	ifaces map[uint32]int
	routes map[netip.Prefix]int
	// Client role: the full routes, the addresses (ifindex, ours) and the
	// rules (by family).
	table map[netip.Prefix]Route
	addrs map[netip.Addr]fakeAddr
	rules map[bool]bool
}

type fakeAddr struct {
	ifindex int
	ours    bool
}

func newFakeTunnels() *fakeTunnels {
	return &fakeTunnels{ifaces: map[uint32]int{}, routes: map[netip.Prefix]int{}, table: map[netip.Prefix]Route{},
		addrs: map[netip.Addr]fakeAddr{}, rules: map[bool]bool{}}
}

func (f *fakeTunnels) Interface(ifID uint32) (int, error) {
	if f.ifaces[ifID] == 0 {
		f.ifaces[ifID] = 100 + len(f.ifaces)
	}
	return f.ifaces[ifID], nil
}

func (f *fakeTunnels) AddRoute(r Route) error {
	f.routes[r.Dst] = r.Ifindex
	f.table[r.Dst] = r
	return nil
}

func (f *fakeTunnels) DeleteRoute(r Route) error {
	if f.table[r.Dst] != r {
		return errors.New("no such route")
	}
	delete(f.routes, r.Dst)
	delete(f.table, r.Dst)
	return nil
}

// The path to every peer is ifindex 2 via 192.0.2.254.
func (f *fakeTunnels) PathTo(dst netip.Addr) (int, netip.Addr, error) {
	return 2, netip.MustParseAddr("192.0.2.254"), nil
}

func (f *fakeTunnels) FindAddress(a netip.Addr) (int, bool, error) {
	x := f.addrs[a]
	return x.ifindex, x.ours, nil
}

func (f *fakeTunnels) AddAddress(a netip.Addr, ifindex int) error {
	f.addrs[a] = fakeAddr{ifindex: ifindex, ours: true}
	return nil
}

func (f *fakeTunnels) DeleteAddress(a netip.Addr, ifindex int) error {
	if f.addrs[a].ifindex != ifindex {
		return errors.New("no such address")
	}
	delete(f.addrs, a)
	return nil
}

func (f *fakeTunnels) AddRule(v6 bool) error    { f.rules[v6] = true; return nil }
func (f *fakeTunnels) DeleteRule(v6 bool) error { delete(f.rules, v6); return nil }

// TestDataplaneTunnelRoutes: a route-based CHILD_SA gets the XFRM
// interface of its if_id and its remote selectors routed into it, except a
// prefix that holds the peer; deleting the policy removes the routes.
func TestDataplaneTunnelRoutes(t *testing.T) {
	_, k, b, _ := newFakeDataplane(t)
	tun := newFakeTunnels()
	d := NewKernelDataplane(KernelConfig{Kernel: k, BPF: b, Log: testenv.Logger(t), Tunnels: tun})
	local, _ := ike.ParseTS("10.1.0.0/16")
	remote, _ := ike.ParseTS("10.2.0.0-10.3.255.255")
	all, _ := ike.ParseTS("0.0.0.0/0")
	out := &ike.Policy{Dir: ike.DirOut, Src: local, Dst: remote, TmplSrc: us, TmplDst: them, ReqID: 1, IfID: 7}
	full := &ike.Policy{Dir: ike.DirOut, Src: local, Dst: all, TmplSrc: us, TmplDst: them, ReqID: 2, IfID: 9}
	in := &ike.Policy{Dir: ike.DirIn, Src: remote, Dst: local, TmplSrc: them, TmplDst: us, ReqID: 1, IfID: 7}
	for _, p := range []*ike.Policy{out, full, in} {
		if err := d.AddPolicy(p); err != nil {
			t.Fatal(err)
		}
	}
	want := map[netip.Prefix]int{netip.MustParsePrefix("10.2.0.0/15"): tun.ifaces[7]}
	if len(tun.routes) != 1 || tun.routes[netip.MustParsePrefix("10.2.0.0/15")] != tun.ifaces[7] || tun.ifaces[7] == 0 {
		t.Errorf("routes %v, want %v (0.0.0.0/0 holds the peer and is not routed)", tun.routes, want)
	}
	if err := d.DeletePolicy(out); err != nil {
		t.Fatal(err)
	}
	if len(tun.routes) != 0 {
		t.Errorf("routes left after delete: %v", tun.routes)
	}
}

// MOBIKE: MigrateSA moves the BPF entry before the kernel SA, keeps the
// SPIs, and MigratePolicy updates classic policies in place (never
// deleted: their selectors stay protected) and leaves the SPD alone.
func TestDataplaneMigrate(t *testing.T) {
	d, k, b, ev := newFakeDataplane(t)
	newUs := netip.MustParseAddr("198.51.100.7")
	spi, err := d.AllocateSPI(ike.SAProtoESP, them, us)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.AddSA(testSA(spi, true)); err != nil {
		t.Fatal(err)
	}
	if err := d.AddSA(testSA(0x1234, false)); err != nil {
		t.Fatal(err)
	}
	local, _ := ike.ParseTS("10.1.0.0/24")
	remote, _ := ike.ParseTS("10.2.0.0/16")
	out := &ike.Policy{Dir: ike.DirOut, Src: local, Dst: remote, TmplSrc: us, TmplDst: them, ReqID: 1}
	if err := d.AddPolicy(out); err != nil {
		t.Fatal(err)
	}
	d.Flush()
	spd := slices.Clone(b.policies)
	ev.list = nil

	in := testSA(spi, true)
	in.Dst = newUs
	in.Encap = &ike.Encap{SrcPort: 4500, DstPort: 4500}
	if err := d.MigrateSA(ike.SAID{Dst: us, SPI: spi}, in); err != nil {
		t.Fatal(err)
	}
	outSA := testSA(0x1234, false)
	outSA.Src = newUs
	if err := d.MigrateSA(ike.SAID{Dst: them, SPI: 0x1234}, outSA); err != nil {
		t.Fatal(err)
	}
	moved := *out
	moved.TmplSrc = newUs
	if err := d.MigratePolicy(out, &moved); err != nil {
		t.Fatal(err)
	}
	d.Flush()
	want := []string{
		fmt.Sprintf("bpf move %.8x %s -> %s", spi, us, newUs),
		fmt.Sprintf("kernel move %.8x %s -> %s encap true", spi, us, newUs),
		fmt.Sprintf("kernel move 00001234 %s -> %s encap false", them, them),
		fmt.Sprintf("kernel policy update out %v tmpl %s -> %s", k.policies[0].Selector, newUs, them),
	}
	if !slices.Equal(ev.list, want) {
		t.Errorf("events:\n%s\nwant:\n%s", strings.Join(ev.list, "\n"), strings.Join(want, "\n"))
	}
	if b.sas[spi].Dst != newUs || k.states[spi].Dst != newUs || k.states[0x1234].Src != newUs {
		t.Errorf("after the move: bpf %+v, kernel %+v", b.sas[spi], k.states)
	}
	if !slices.Equal(b.policies, spd) {
		t.Errorf("SPD changed: %+v, was %+v", b.policies, spd)
	}
	// The moved SA and policy are found under their new names.
	if _, _, err := d.RxSeen(ike.SAID{Dst: newUs, SPI: spi}); err != nil {
		t.Errorf("RxSeen at the new address: %v", err)
	}
	if err := d.DeletePolicy(&moved); err != nil {
		t.Fatal(err)
	}
	if err := d.DeleteSA(ike.SAID{Dst: newUs, SPI: spi}); err != nil {
		t.Fatal(err)
	}
	d.Flush()
	if len(k.policies) != 0 || len(b.policies) != 0 || len(b.sas) != 0 {
		t.Errorf("left: %v %v %v", k.policies, b.policies, b.sas)
	}
	// A failed kernel move puts the BPF entry back.
	if err := d.AddSA(testSA(spi, true)); err != nil {
		t.Fatal(err)
	}
	delete(k.states, spi)
	in = testSA(spi, true)
	in.Dst = newUs
	if err := d.MigrateSA(ike.SAID{Dst: us, SPI: spi}, in); err == nil {
		t.Error("moving an SA the kernel does not have succeeded")
	}
	if b.sas[spi].Dst != us {
		t.Errorf("BPF entry after a failed move: %+v, want it back at %s", b.sas[spi], us)
	}
}

// TestDataplaneAHSPIs: the kernel hands out SPIs per protocol, but
// xdp_wan's sa_slot holds one SA per SPI: an AH SPI an ESP SA has already
// is given back for another. The AH SA goes into the kernel and the BPF
// table as AH, and leaves both by its AH SAID.
func TestDataplaneAHSPIs(t *testing.T) {
	d, k, b, ev := newFakeDataplane(t)
	esp, err := d.AllocateSPI(ike.SAProtoESP, them, us)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.AddSA(testSA(esp, true)); err != nil {
		t.Fatal(err)
	}
	k.nextSPI-- // the kernel's next AH SPI is the ESP SA's
	ah, err := d.AllocateSPI(ike.SAProtoAH, them, us)
	if err != nil {
		t.Fatal(err)
	}
	if ah == esp {
		t.Fatalf("AH SPI %.8x is the ESP SA's", ah)
	}
	sa := &ike.SA{SAID: ike.SAID{Dst: us, SPI: ah, Proto: ike.SAProtoAH}, Src: them, Inbound: true,
		Integ: transform.AUTH_HMAC_SHA2_256_128, IntegKey: make([]byte, 32), ReqID: 2, Replay: 32}
	if err := d.AddSA(sa); err != nil {
		t.Fatal(err)
	}
	if st := k.states[ah]; st.Proto != xfrm.ProtoAH || st.Crypto.Integ != transform.AUTH_HMAC_SHA2_256_128 || st.Crypto.Encr != 0 {
		t.Errorf("kernel state %+v, want AH", st)
	}
	if in := b.sas[ah]; in.Proto != maps.SAProtoAH {
		t.Errorf("BPF SA %+v, want AH", in)
	}
	if err := d.DeleteSA(sa.SAID); err != nil {
		t.Fatal(err)
	}
	if _, ok := k.states[ah]; ok {
		t.Errorf("AH state left in the kernel: %v", ev)
	}
	if _, ok := b.sas[ah]; ok {
		t.Error("AH SA left in the BPF table")
	}
}

// TestDataplaneSeq: the initial sequence numbers of SAs a fleet member
// takes over reach the kernel's state, and QuerySA reports the kernel's
// counters back; an inbound SA installed without AllocateSPI (taken
// over) still goes into the BPF SA table before the kernel SA. The dry-run
// dataplane records them and logs them.
func TestDataplaneSeq(t *testing.T) {
	d, k, b, ev := newFakeDataplane(t)
	in, out := testSA(0xc0000777, true), testSA(0x4321, false)
	in.InSeq, out.OutSeq = 500, 1<<20
	for _, sa := range []*ike.SA{in, out} {
		if err := d.AddSA(sa); err != nil {
			t.Fatal(err)
		}
	}
	if k.states[0xc0000777].InSeq != 500 || k.states[0x4321].OutSeq != 1<<20 {
		t.Fatalf("kernel states %+v", k.states)
	}
	if _, ok := b.sas[0xc0000777]; !ok || !strings.HasPrefix(ev.list[0], "bpf put c0000777") {
		t.Fatalf("inbound SA taken over: events %v", ev.list)
	}
	st, err := d.QuerySA(out.SAID)
	if err != nil || st.OutSeq != 1<<20 {
		t.Fatalf("QuerySA = %+v, %v", st, err)
	}

	log := testenv.Logger(t)
	dr := NewDryRunDataplane(log, maps.SPIRange{})
	if err := dr.AddSA(out); err != nil {
		t.Fatal(err)
	}
	if err := dr.AddSA(in); err != nil {
		t.Fatal(err)
	}
	if st, err := dr.QuerySA(out.SAID); err != nil || st.OutSeq != 1<<20 {
		t.Fatalf("dry-run QuerySA = %+v, %v", st, err)
	}
	if st, err := dr.QuerySA(in.SAID); err != nil || st.InSeq != 500 {
		t.Fatalf("dry-run QuerySA = %+v, %v", st, err)
	}
	if !strings.Contains(describeSA(out), "oseq 1048576") {
		t.Errorf("dry-run log line %q", describeSA(out))
	}
	if err := dr.DeleteSA(out.SAID); err != nil {
		t.Fatal(err)
	}
	if _, err := dr.QuerySA(out.SAID); err == nil {
		t.Error("dry-run SA still there after DeleteSA")
	}
}
