package dataplane

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/xdpsec/xdpsec/ike"
	"github.com/xdpsec/xdpsec/maps"
	"github.com/xdpsec/xdpsec/maps/xfrm"
)

// Kernel is the part of maps/xfrm.Conn the dataplane uses; tests fake it.
type Kernel interface {
	AllocSPI(proto xfrm.Proto, src, dst netip.Addr, r maps.SPIRange) (uint32, error)
	AddState(s xfrm.State) (xfrm.OffloadResult, error)
	UpdateState(s xfrm.State) (xfrm.OffloadResult, error)
	DeleteState(id xfrm.SAID) error
	GetState(id xfrm.SAID) (xfrm.StateInfo, error)
	MoveState(id xfrm.SAID, to xfrm.Move) error
	AddPolicy(p xfrm.Policy) error
	UpdatePolicy(p xfrm.Policy) error
	DeletePolicy(p xfrm.Policy) error
}

// BPF is the part of the pinned maps the dataplane uses; PinnedBPF is the
// real one, tests fake it.
type BPF interface {
	SPIRange() (maps.SPIRange, error)
	// CPUs lists the CPUs with a cpu_map queue, where SAs may be steered.
	CPUs() ([]int, error)
	PutSA(sa maps.InboundSA) error
	DeleteSA(proto maps.SAProto, spi uint32, dst netip.Addr) error
	GetSA(proto maps.SAProto, spi uint32, dst netip.Addr) (maps.InboundSAStats, error)
	// MoveSA gives an inbound SA a new destination, counters kept.
	MoveSA(proto maps.SAProto, spi uint32, from, to netip.Addr) error
	// ApplyPolicies changes the SPD in one go (maps.SPD.Apply).
	ApplyPolicies(add []maps.Policy, del []uint32) ([]maps.Policy, error)
	// PendingSAs lists the SAs whose SPIs are pending (allocated, not
	// installed).
	PendingSAs() ([]maps.InboundSA, error)
}

// PinnedBPF adapts a maps.Set to BPF.
type PinnedBPF struct{ Set *maps.Set }

func (b PinnedBPF) SPIRange() (maps.SPIRange, error) { return b.Set.Config.SPIRange() }
func (b PinnedBPF) CPUs() ([]int, error) {
	m, err := b.Set.CPUs.Enabled()
	if err != nil {
		return nil, err
	}
	var out []int
	for cpu := range m {
		out = append(out, cpu)
	}
	slices.Sort(out)
	return out, nil
}
func (b PinnedBPF) PutSA(sa maps.InboundSA) error { return b.Set.SA.Put(sa) }
func (b PinnedBPF) DeleteSA(proto maps.SAProto, spi uint32, dst netip.Addr) error {
	return b.Set.SA.Delete(proto, spi, dst)
}
func (b PinnedBPF) GetSA(proto maps.SAProto, spi uint32, dst netip.Addr) (maps.InboundSAStats, error) {
	return b.Set.SA.Get(proto, spi, dst)
}
func (b PinnedBPF) MoveSA(proto maps.SAProto, spi uint32, from, to netip.Addr) error {
	return b.Set.SA.Move(proto, spi, from, to)
}
func (b PinnedBPF) ApplyPolicies(add []maps.Policy, del []uint32) ([]maps.Policy, error) {
	return b.Set.SPD.Apply(add, del)
}
func (b PinnedBPF) PendingSAs() ([]maps.InboundSA, error) {
	all, err := b.Set.SA.List()
	if err != nil {
		return nil, err
	}
	var out []maps.InboundSA
	for _, sa := range all {
		if sa.Pending {
			out = append(out, sa.InboundSA)
		}
	}
	return out, nil
}

// CPUSpread says how inbound SAs are spread over the CPUs of cpu_map.
type CPUSpread uint8

const (
	SpreadRoundRobin CPUSpread = iota // each new SA on the next CPU
	SpreadSPI                         // the SPI modulo the number of CPUs
	SpreadNone                        // no steering: the receiving CPU decrypts
)

// ParseCPUSpread reads --sa-cpu.
func ParseCPUSpread(s string) (CPUSpread, error) {
	switch s {
	case "round-robin", "rr", "":
		return SpreadRoundRobin, nil
	case "spi":
		return SpreadSPI, nil
	case "none":
		return SpreadNone, nil
	}
	return 0, fmt.Errorf("unknown SA CPU spreading %q (want round-robin, spi or none)", s)
}

// Offload is what a CHILD_SA asks of NIC offload (swanctl.conf
// hw_offload).
type Offload = xfrm.OffloadMode

// KernelDataplane is ike.Dataplane over XFRM and the BPF maps.
//
// Order matters to the packets: an inbound SA's SPI goes into xdp_wan's SA
// table before the kernel SA exists (so its first packet is not dropped
// as unknown), and leaves it after the kernel SA is gone. An SA's
// policies: in route-based mode (if_id set) one catch-all XFRM policy per
// if_id and direction, shared by every CHILD_SA on that if_id, plus the
// CHILD_SA's selectors as PROTECT policies in tc_lan's SPD so LAN traffic
// is steered into the if_id; in classic policy-based mode (no if_id) one
// XFRM policy per selector pair, with a BYPASS policy in the SPD that only
// counts.
type KernelDataplane struct {
	kernel Kernel
	bpf    BPF
	log    *slog.Logger
	spread CPUSpread
	// device finds the interface that holds a local address (the device
	// offload is asked of).
	device  func(local netip.Addr) (string, error)
	tunnels Tunnels

	spd *spdWriter
	// stash holds what xdp_wan stashed for pending SPIs; nil: pending
	// SPIs are not in the BPF SA table and their packets are dropped.
	stash Stash

	mu sync.Mutex // guards everything below
	rr int
	// pending holds the SPIs allocated and not yet installed or given
	// back, with the CPU picked for the inbound SA: reading cpu_map (a
	// lookup per possible entry) stays out of the time between the
	// peer's response and the inbound SA.
	pending map[ike.SAID]pendingSPI
	// lastSweep is when sweepPending last looked for SPIs whose larval
	// kernel SA expired.
	lastSweep time.Time
	// redrain is a drain of the stash shortly after the last one.
	redrain  *time.Timer
	closed   bool
	sas      map[ike.SAID]*installed
	catchAll map[catchAllKey]*catchAll
	policies map[string]*policyState
	vips     map[netip.Addr]*vipState
	// clientRoutes counts the routes in ClientTable by family (IPv4,
	// IPv6): the rule that looks the table up goes with the last.
	clientRoutes [2]int
}

// pendingSPI is an SPI AllocateSPI handed out.
type pendingSPI struct {
	cpu  int
	at   time.Time
	slot bool // its slot in the BPF SA table is written, pending
}

type installed struct {
	inbound bool
	state   xfrm.State // without keys, for UpdateSA
}

type catchAllKey struct {
	ifID  uint32
	dir   ike.Direction
	v6    bool
	reqid uint32
}

type catchAll struct {
	refs     int
	policies []xfrm.Policy
}

// policyState is what one ike.Policy became.
type policyState struct {
	xfrm   []xfrm.Policy // classic mode
	spd    *spdEntry     // the SPD's part, written in batches
	catch  *catchAllKey  // route-based mode
	routes []Route       // outbound: into the XFRM interface, or ClientTable's
}

// KernelConfig configures a KernelDataplane.
type KernelConfig struct {
	Kernel Kernel
	BPF    BPF
	Log    *slog.Logger
	Spread CPUSpread
	// Device returns the interface holding a local address; nil looks it
	// up with netlink.
	Device func(local netip.Addr) (string, error)
	// Tunnels makes XFRM interfaces and routes for route-based CHILD_SAs;
	// nil leaves them to the operator.
	Tunnels Tunnels
	// Stash, when set, has xdp_wan hold the packets of allocated SPIs
	// until their SA is in (see AllocateSPI); nil drops them as no_sa.
	Stash Stash
}

// NewKernelDataplane returns a dataplane over a kernel and pinned maps.
func NewKernelDataplane(cfg KernelConfig) *KernelDataplane {
	d := &KernelDataplane{
		kernel: cfg.Kernel, bpf: cfg.BPF, log: cfg.Log, spread: cfg.Spread,
		device: cfg.Device, tunnels: cfg.Tunnels, stash: cfg.Stash,
		sas: map[ike.SAID]*installed{}, pending: map[ike.SAID]pendingSPI{}, catchAll: map[catchAllKey]*catchAll{}, policies: map[string]*policyState{},
		vips: map[netip.Addr]*vipState{},
	}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	if d.device == nil {
		d.device = deviceOf
	}
	d.spd = newSPDWriter(d.bpf, d.log)
	return d
}

// Flush waits until the SPD changes queued so far are in the pinned SPD.
func (d *KernelDataplane) Flush() { d.spd.flush() }

// Close writes the queued SPD changes and stops the SPD writer; the
// installed SAs and policies stay.
func (d *KernelDataplane) Close() {
	d.spd.close()
	d.mu.Lock()
	d.closed = true
	if d.redrain != nil {
		d.redrain.Stop()
	}
	d.mu.Unlock()
}

// AllocateSPI reserves an SPI in the range xdp_wan indexes, with a larval
// kernel SA (XFRM_MSG_ALLOCSPI). The kernel keeps SPIs apart per
// protocol only, but xdp_wan's sa_slot has one slot per SPI: an SPI the
// other protocol has (larval or complete) at the same destination is
// given back and another one taken.
//
// With a stash, the SPI goes into the BPF SA table at once, pending: a
// peer may send on the CHILD_SA as soon as it has answered (RFC 7296
// allows it), before we can have its keys, and xdp_wan then holds those
// packets for AddSA to hand to the stack.
func (d *KernelDataplane) AllocateSPI(proto ike.SAProto, src, dst netip.Addr) (uint32, error) {
	r, err := d.bpf.SPIRange()
	if err != nil {
		return 0, fmt.Errorf("read SPI range: %w", err)
	}
	if r.Count == 0 {
		r = maps.SPIRange{Base: maps.DefaultSPIBase, Count: 1 << 20}
	}
	other := xfrmProto(ike.SAProtoAH)
	if proto == ike.SAProtoAH {
		other = xfrmProto(ike.SAProtoESP)
	}
	for range 8 {
		spi, err := d.kernel.AllocSPI(xfrmProto(proto), src, dst, r)
		if err != nil {
			return 0, err
		}
		if _, err := d.kernel.GetState(xfrm.SAID{Dst: dst, SPI: spi, Proto: other}); err != nil {
			// No such SA of the other protocol: this one is ours.
			d.mu.Lock()
			defer d.mu.Unlock()
			d.sweepPending()
			p := pendingSPI{cpu: d.pickCPU(spi), at: time.Now()}
			if d.stash != nil {
				in := maps.InboundSA{SPI: spi, Proto: mapsProto(proto), Dst: dst, CPU: p.cpu, Pending: true}
				if err := d.bpf.PutSA(in); err != nil {
					d.log.Warn(fmt.Sprintf("SPI %.8x: not stashing its packets until its SA is in: %v", spi, err))
				} else {
					p.slot = true
				}
			}
			d.pending[ike.SAID{Dst: dst, SPI: spi, Proto: proto}] = p
			return spi, nil
		}
		// Taken by the other protocol: the larval SA stays until it
		// expires, so that this SPI is not handed out again at once.
		d.log.Debug(fmt.Sprintf("SPI %.8x for %v is in use by %v, allocating another", spi, proto, other))
	}
	return 0, fmt.Errorf("allocate %v SPI for %s → %s: no SPI free of the other protocol", proto, src, dst)
}

// xfrmProto is the kernel's name for an SA protocol.
func xfrmProto(p ike.SAProto) xfrm.Proto {
	if p == ike.SAProtoAH {
		return xfrm.ProtoAH
	}
	return xfrm.ProtoESP
}

// mapsProto is the BPF SA table's name for an SA protocol.
func mapsProto(p ike.SAProto) maps.SAProto {
	if p == ike.SAProtoAH {
		return maps.SAProtoAH
	}
	return maps.SAProtoESP
}

func modeOf(m ike.Mode) xfrm.Mode {
	if m == ike.ModeTransport {
		return xfrm.ModeTransport
	}
	return xfrm.ModeTunnel
}

// kernelState converts an SA; the keys are the engine's, which zeroes them.
func kernelState(sa *ike.SA) xfrm.State {
	s := xfrm.State{
		Src: sa.Src, Dst: sa.Dst, SPI: sa.SPI, Proto: xfrmProto(sa.Proto), Mode: modeOf(sa.Mode), Reqid: sa.ReqID,
		Inbound: sa.Inbound, ESN: sa.ESN, ReplayWindow: sa.Replay, IfID: sa.IfID,
		OutSeq: sa.OutSeq, InSeq: sa.InSeq,
		Crypto: xfrm.Crypto{Encr: sa.Encr, KeyBits: sa.EncrBits, Integ: sa.Integ, EncrKey: sa.EncrKey, IntegKey: sa.IntegKey},
		Lifetime: xfrm.Lifetime{
			SoftAdd: sa.Lifetime.SoftTime, HardAdd: sa.Lifetime.HardTime,
			SoftBytes: sa.Lifetime.SoftBytes, HardBytes: sa.Lifetime.HardBytes,
			SoftPackets: sa.Lifetime.SoftPackets, HardPackets: sa.Lifetime.HardPackets,
		},
	}
	if sa.Encap != nil {
		s.Encap = &xfrm.Encap{SrcPort: sa.Encap.SrcPort, DstPort: sa.Encap.DstPort}
	}
	if sa.Mode == ike.ModeTransport && len(sa.Selectors) > 0 {
		// One selector can be expressed; the policies do the rest.
		if p, ok := sa.Selectors[0].Prefix(); ok {
			s.Selector.Src = p
		}
		if len(sa.Selectors) > 1 {
			if p, ok := sa.Selectors[len(sa.Selectors)-1].Prefix(); ok {
				s.Selector.Dst = p
			}
		}
		if sa.Inbound {
			s.Selector.Src, s.Selector.Dst = s.Selector.Dst, s.Selector.Src
		}
		if s.Selector.Src.IsValid() != s.Selector.Dst.IsValid() {
			s.Selector = xfrm.Selector{}
		}
	}
	return s
}

func (d *KernelDataplane) pickCPU(spi uint32) int {
	if d.spread == SpreadNone {
		return maps.NoCPU
	}
	cpus, err := d.bpf.CPUs()
	if err != nil || len(cpus) == 0 {
		return maps.NoCPU
	}
	if d.spread == SpreadSPI {
		return cpus[int(spi%uint32(len(cpus)))]
	}
	cpu := cpus[d.rr%len(cpus)]
	d.rr++
	return cpu
}

// AddSA installs one direction of a CHILD_SA. For an inbound SA whose
// SPI is pending in the BPF SA table (AllocateSPI with a stash), the
// kernel SA completes the larval one AllocateSPI made, then the BPF entry
// becomes active, then the packets stashed for it go to the stack; for
// any other inbound SA its SPI goes into the BPF SA table first, then
// the kernel SA is completed.
func (d *KernelDataplane) AddSA(sa *ike.SA) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	st := kernelState(sa)
	if err := d.setOffload(sa, &st); err != nil {
		return err
	}
	if sa.Inbound {
		p, ok := d.pending[sa.SAID]
		if !ok {
			p.cpu = d.pickCPU(sa.SPI)
		}
		delete(d.pending, sa.SAID)
		in := maps.InboundSA{SPI: sa.SPI, Proto: mapsProto(sa.Proto), Dst: sa.Dst, CPU: p.cpu}
		if !p.slot {
			if err := d.bpf.PutSA(in); err != nil {
				return fmt.Errorf("BPF SA table: %w", err)
			}
		}
		res, err := d.kernel.UpdateState(st)
		if err != nil {
			if derr := d.bpf.DeleteSA(mapsProto(sa.Proto), sa.SPI, sa.Dst); derr != nil {
				d.log.Warn(fmt.Sprintf("removing SPI %.8x from the BPF SA table failed: %v", sa.SPI, derr))
			}
			return err
		}
		d.logOffload(sa, res)
		if p.slot {
			// The kernel SA is complete: from here xdp_wan passes the
			// SA's packets, and what it stashed meanwhile goes after.
			if err := d.bpf.PutSA(in); err != nil {
				d.kernel.DeleteState(xfrm.SAID{Dst: sa.Dst, SPI: sa.SPI, Proto: xfrmProto(sa.Proto)})
				if derr := d.bpf.DeleteSA(mapsProto(sa.Proto), sa.SPI, sa.Dst); derr != nil {
					d.log.Warn(fmt.Sprintf("removing SPI %.8x from the BPF SA table failed: %v", sa.SPI, derr))
				}
				return fmt.Errorf("BPF SA table: %w", err)
			}
			st.Crypto = xfrm.Crypto{Encr: sa.Encr, KeyBits: sa.EncrBits, Integ: sa.Integ}
			d.sas[sa.SAID] = &installed{inbound: true, state: st}
			d.drainStash()
			d.drainAgainSoon()
			return nil
		}
	} else {
		res, err := d.kernel.AddState(st)
		if err != nil {
			return err
		}
		d.logOffload(sa, res)
	}
	st.Crypto = xfrm.Crypto{Encr: sa.Encr, KeyBits: sa.EncrBits, Integ: sa.Integ}
	d.sas[sa.SAID] = &installed{inbound: sa.Inbound, state: st}
	return nil
}

// offloadMode is the kernel's name for a hw_offload setting.
func offloadMode(h ike.HWOffload) Offload {
	switch h {
	case ike.HWOffloadYes:
		return xfrm.OffloadYes
	case ike.HWOffloadAuto:
		return xfrm.OffloadAuto
	case ike.HWOffloadPacket:
		return xfrm.OffloadPacket
	}
	return xfrm.OffloadNo
}

// setOffload fills in the offload request; in auto mode a device that
// cannot be found means software, with a log line.
func (d *KernelDataplane) setOffload(sa *ike.SA, st *xfrm.State) error {
	mode := offloadMode(sa.Offload)
	if mode == xfrm.OffloadNo {
		return nil
	}
	local := sa.Src
	if sa.Inbound {
		local = sa.Dst
	}
	dev, err := d.device(local)
	if err != nil {
		if mode == xfrm.OffloadAuto {
			d.log.Info(fmt.Sprintf("hw offload of SA %.8x: no device for %s (%v), falling back to software", sa.SPI, local, err))
			return nil
		}
		return fmt.Errorf("hw offload %v of SA %.8x: no device for %s: %w", mode, sa.SPI, local, err)
	}
	st.Offload = xfrm.Offload{Mode: mode, Device: dev}
	return nil
}

func (d *KernelDataplane) logOffload(sa *ike.SA, res xfrm.OffloadResult) {
	switch {
	case res.Refused != nil:
		d.log.Info(fmt.Sprintf("SA %.8x: %s", sa.SPI, res))
	case res.Offloaded:
		d.log.Info(fmt.Sprintf("SA %.8x offloaded to %s", sa.SPI, res.Device))
	}
}

// UpdateSA follows a NAT mapping change. The kernel keeps the keys of a
// complete SA on XFRM_MSG_UPDSA, so zero keys of the right length stand in.
func (d *KernelDataplane) UpdateSA(sa *ike.SA) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	st := kernelState(sa)
	ek, ik, err := xfrm.KeyLengths(sa.Encr, sa.EncrBits, sa.Integ)
	if err != nil {
		return err
	}
	st.Crypto.EncrKey, st.Crypto.IntegKey = make([]byte, ek), make([]byte, ik)
	if ik == 0 {
		st.Crypto.IntegKey = nil
	}
	if old := d.sas[sa.SAID]; old != nil {
		st.Offload = old.state.Offload
	}
	if _, err := d.kernel.UpdateState(st); err != nil {
		return err
	}
	return nil
}

// MigrateSA moves an SA to new outer addresses (MOBIKE) by the kernel's
// read-delete-add (xfrm.Conn.MoveState: SPI, keys, replay state and
// lifetime counters kept). An inbound SA's entry in the BPF SA table
// moves first, its rx_seen counters with it: packets to the new address
// are taken from then on, those still arriving at the old one are lost.
func (d *KernelDataplane) MigrateSA(from ike.SAID, sa *ike.SA) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	movedBPF := false
	if sa.Inbound && from.Dst != sa.Dst {
		if err := d.bpf.MoveSA(mapsProto(sa.Proto), sa.SPI, from.Dst, sa.Dst); err != nil && !errors.Is(err, maps.ErrNoSA) {
			return fmt.Errorf("BPF SA table: %w", err)
		} else if err == nil {
			movedBPF = true
		}
	}
	to := xfrm.Move{Src: sa.Src, Dst: sa.Dst}
	if sa.Encap != nil {
		to.Encap = &xfrm.Encap{SrcPort: sa.Encap.SrcPort, DstPort: sa.Encap.DstPort}
	}
	if err := d.kernel.MoveState(xfrm.SAID{Dst: from.Dst, SPI: from.SPI, Proto: xfrmProto(from.Proto)}, to); err != nil {
		if movedBPF {
			if berr := d.bpf.MoveSA(mapsProto(sa.Proto), sa.SPI, sa.Dst, from.Dst); berr != nil {
				d.log.Warn(fmt.Sprintf("moving SPI %.8x back in the BPF SA table failed: %v", sa.SPI, berr))
			}
		}
		return err
	}
	inst := d.sas[from]
	delete(d.sas, from)
	st := kernelState(sa)
	st.Crypto = xfrm.Crypto{Encr: sa.Encr, KeyBits: sa.EncrBits, Integ: sa.Integ}
	if inst == nil {
		inst = &installed{inbound: sa.Inbound}
	}
	inst.state = st // device offload is not asked for again (MoveState)
	d.sas[sa.SAID] = inst
	return nil
}

// DeleteSA removes the kernel SA first, then the SPI from the BPF table:
// until the kernel SA is gone its packets must still reach it. An SA this
// process did not install (taken back after a restart) is handled the
// same way; a missing BPF entry is no error.
func (d *KernelDataplane) DeleteSA(id ike.SAID) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	inst := d.sas[id]
	delete(d.pending, id)
	kerr := d.kernel.DeleteState(xfrm.SAID{Dst: id.Dst, SPI: id.SPI, Proto: xfrmProto(id.Proto)})
	if errors.Is(kerr, xfrm.ErrNoSA) {
		kerr = nil
	}
	if inst == nil || inst.inbound {
		if err := d.bpf.DeleteSA(mapsProto(id.Proto), id.SPI, id.Dst); err != nil && !errors.Is(err, maps.ErrNoSA) {
			kerr = errors.Join(kerr, fmt.Errorf("BPF SA table: %w", err))
		}
	}
	delete(d.sas, id)
	return kerr
}

// QuerySA returns the kernel's counters of an SA.
func (d *KernelDataplane) QuerySA(id ike.SAID) (ike.SAStats, error) {
	info, err := d.kernel.GetState(xfrm.SAID{Dst: id.Dst, SPI: id.SPI, Proto: xfrmProto(id.Proto)})
	if err != nil {
		return ike.SAStats{}, err
	}
	return ike.SAStats{Bytes: info.Counters.Bytes, Packets: info.Counters.Packets, LastUsed: info.Counters.UseTime,
		OutSeq: info.Counters.OutSeq, InSeq: info.Counters.InSeq}, nil
}

// RxSeen returns xdp_wan's counters of an inbound SA: packets and bytes
// seen before authentication.
func (d *KernelDataplane) RxSeen(id ike.SAID) (packets, bytes uint64, err error) {
	s, err := d.bpf.GetSA(mapsProto(id.Proto), id.SPI, id.Dst)
	if err != nil {
		return 0, 0, err
	}
	return s.RxSeenPackets, s.RxSeenBytes, nil
}

func policyKey(p *ike.Policy) string {
	return fmt.Sprintf("%v|%s|%s|%s|%s|%d|%d|%d|%s|%v", p.Dir, p.Src, p.Dst, p.TmplSrc, p.TmplDst, p.Mode, p.ReqID, p.IfID, p.RouteSrc, p.Proto)
}

// MigratePolicy gives an installed policy new template addresses
// (MOBIKE). Classic XFRM policies are replaced in place
// (XFRM_MSG_UPDPOLICY), so their selectors never go unprotected; the
// SPD's entries and routes stay as they are (their selectors did not
// change). A route-based policy's catch-all policies follow when their
// templates carry its old addresses. A policy this process did not
// install is added.
func (d *KernelDataplane) MigratePolicy(from, to *ike.Policy) error {
	d.mu.Lock()
	oldKey := policyKey(from)
	ps := d.policies[oldKey]
	if ps == nil {
		d.mu.Unlock()
		return d.AddPolicy(to)
	}
	defer d.mu.Unlock()
	retarget := func(xp *xfrm.Policy) bool {
		changed := false
		for i := range xp.Templates {
			t := &xp.Templates[i]
			if t.Src == from.TmplSrc && t.Dst == from.TmplDst && t.Src.IsValid() {
				t.Src, t.Dst = to.TmplSrc, to.TmplDst
				changed = true
			}
		}
		return changed
	}
	var errs []error
	for i := range ps.xfrm {
		if retarget(&ps.xfrm[i]) {
			if err := d.kernel.UpdatePolicy(ps.xfrm[i]); err != nil {
				errs = append(errs, fmt.Errorf("policy %s === %s %v: %w", to.Src, to.Dst, to.Dir, err))
			}
		}
	}
	if ps.catch != nil {
		if ca := d.catchAll[*ps.catch]; ca != nil {
			for i := range ca.policies {
				if retarget(&ca.policies[i]) {
					if err := d.kernel.UpdatePolicy(ca.policies[i]); err != nil {
						errs = append(errs, fmt.Errorf("catch-all policy for if_id %#x: %w", to.IfID, err))
					}
				}
			}
		}
	}
	delete(d.policies, oldKey)
	d.policies[policyKey(to)] = ps
	return errors.Join(errs...)
}

// AddPolicy installs a policy. It is idempotent, so a restarted daemon
// takes back the policies its predecessor left.
func (d *KernelDataplane) AddPolicy(p *ike.Policy) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	key := policyKey(p)
	if d.policies[key] != nil {
		return nil
	}
	ps := &policyState{}
	var err error
	if p.IfID != 0 {
		err = d.addRouteBased(p, ps)
	} else {
		err = d.addClassic(p, ps)
	}
	if err != nil {
		d.removePolicy(ps)
		return err
	}
	d.policies[key] = ps
	return nil
}

// addRouteBased takes a reference on the if_id's catch-all policies and,
// for outbound policies, puts the selectors into the SPD as PROTECT.
func (d *KernelDataplane) addRouteBased(p *ike.Policy, ps *policyState) error {
	ck := catchAllKey{ifID: p.IfID, dir: p.Dir, v6: p.TmplDst.Is6()}
	if ca := d.catchAll[ck]; ca != nil {
		ca.refs++
	} else {
		all, err := xfrm.RouteBasedPolicies(xfrm.Tunnel{Local: local(p), Remote: remote(p), Proto: xfrmProto(p.Proto), Reqid: p.ReqID, IfID: p.IfID})
		if err != nil {
			return err
		}
		ca := &catchAll{refs: 1}
		for _, xp := range all {
			if xp.Dir != xfrmDir(p.Dir) || xp.Selector.Src.Addr().Is6() != p.Src.Start.Is6() {
				continue
			}
			if err := d.kernel.AddPolicy(xp); err != nil && !errors.Is(err, xfrm.ErrExists) {
				return fmt.Errorf("catch-all policy for if_id %#x: %w", p.IfID, err)
			}
			ca.policies = append(ca.policies, xp)
		}
		d.catchAll[ck] = ca
	}
	ps.catch = &ck
	if p.Dir != ike.DirOut {
		return nil
	}
	if err := d.addRoutes(p, ps); err != nil {
		return err
	}
	if icmpRestricted(p.Src) || icmpRestricted(p.Dst) {
		d.log.Warn(fmt.Sprintf("policy %s === %s: tc_lan does not read ICMP types, it sends all ICMP of these addresses into the XFRM interface of if_id %#x", p.Src, p.Dst, p.IfID))
	}
	return d.addSPD(p, ps, maps.ActionProtect)
}

// addRoutes routes an outbound policy's remote selector into the XFRM
// interface of its if_id, with our virtual IP as the source when the
// policy has one. A prefix holding the peer's own address is not routed
// there: IKE and ESP to the peer would loop into the tunnel.
func (d *KernelDataplane) addRoutes(p *ike.Policy, ps *policyState) error {
	if d.tunnels == nil {
		return nil
	}
	ifindex, err := d.tunnels.Interface(p.IfID)
	if err != nil {
		return err
	}
	for _, dst := range rangePrefixes(p.Dst.Start, p.Dst.End) {
		if dst.Contains(p.TmplDst.Unmap()) {
			d.log.Warn(fmt.Sprintf("not routing %s into the XFRM interface of if_id %#x: it holds the peer %s; route it with policy routing", dst, p.IfID, p.TmplDst))
			continue
		}
		r := Route{Dst: dst, Ifindex: ifindex, Src: p.RouteSrc}
		if err := d.tunnels.AddRoute(r); err != nil {
			return err
		}
		ps.routes = append(ps.routes, r)
	}
	return nil
}

// local and remote are our and the peer's outer addresses in a policy.
func local(p *ike.Policy) netip.Addr {
	if p.Dir == ike.DirOut {
		return p.TmplSrc
	}
	return p.TmplDst
}

func remote(p *ike.Policy) netip.Addr {
	if p.Dir == ike.DirOut {
		return p.TmplDst
	}
	return p.TmplSrc
}

func xfrmDir(d ike.Direction) xfrm.Dir {
	switch d {
	case ike.DirIn:
		return xfrm.DirIn
	case ike.DirFwd:
		return xfrm.DirFwd
	}
	return xfrm.DirOut
}

// addSPD puts an outbound policy's selectors into tc_lan's SPD, adopting
// an equal policy already there (left by a previous daemon).
func (d *KernelDataplane) addSPD(p *ike.Policy, ps *policyState, action maps.Action) error {
	want := spdPolicies(p, action)
	for _, mp := range want {
		if err := mp.Validate(); err != nil {
			return fmt.Errorf("SPD policy %s === %s: %w", p.Src, p.Dst, err)
		}
	}
	ps.spd = &spdEntry{want: want}
	d.spd.add(ps.spd)
	return nil
}

// spdPolicies expresses an outbound policy in the SPD: prefixes covering
// the ranges, the destination port range. The SPD has no source ports: a
// source port restriction is widened to any. tc_lan reads no ICMP header
// either, so an ICMP or ICMPv6 type/code selector is widened to all ICMP of
// its prefixes: in classic mode the SPD only counts and the kernel policy
// (setPorts) decides on type and code; route-based, the SPD steers every
// ICMP type of the prefixes into the tunnel.
func spdPolicies(p *ike.Policy, action maps.Action) []maps.Policy {
	var out []maps.Policy
	proto := p.Dst.Protocol
	if proto == 0 {
		proto = p.Src.Protocol
	}
	lo, hi := p.Dst.StartPort, p.Dst.EndPort
	if !maps.PortProto(proto) {
		lo, hi = 0, 0xffff
	}
	for _, src := range rangePrefixes(p.Src.Start, p.Src.End) {
		for _, dst := range rangePrefixes(p.Dst.Start, p.Dst.End) {
			mp := maps.Policy{Src: src, Dst: dst, Proto: proto, DportLo: lo, DportHi: hi, Action: action}
			if action == maps.ActionProtect {
				mp.IfID = p.IfID
			}
			mp.Normalize()
			out = append(out, mp)
		}
	}
	return out
}

// addClassic installs XFRM policies for a selector pair; the SPD gets a
// BYPASS policy for outbound ones, which counts the traffic and leaves the
// decision to the kernel.
func (d *KernelDataplane) addClassic(p *ike.Policy, ps *policyState) error {
	mode := modeOf(p.Mode)
	for _, src := range rangePrefixes(p.Src.Start, p.Src.End) {
		for _, dst := range rangePrefixes(p.Dst.Start, p.Dst.End) {
			sel := xfrm.Selector{Src: src, Dst: dst, Proto: p.Src.Protocol}
			if sel.Proto == 0 {
				sel.Proto = p.Dst.Protocol
			}
			setPorts(&sel, p.Src, p.Dst)
			tmpl := xfrm.Template{Src: p.TmplSrc, Dst: p.TmplDst, Proto: xfrmProto(p.Proto), Mode: mode, Reqid: p.ReqID}
			if mode == xfrm.ModeTransport {
				tmpl.Src, tmpl.Dst = netip.Addr{}, netip.Addr{}
			}
			xp := xfrm.Policy{
				Selector: sel, Dir: xfrmDir(p.Dir), Action: xfrm.ActionAllow,
				// More specific selectors first, as charon's priorities do.
				Priority:  uint32(200000 - 100*(src.Bits()+dst.Bits())),
				Templates: []xfrm.Template{tmpl},
			}
			if err := d.kernel.AddPolicy(xp); err != nil && !errors.Is(err, xfrm.ErrExists) {
				return fmt.Errorf("policy %s === %s %v: %w", p.Src, p.Dst, p.Dir, err)
			}
			ps.xfrm = append(ps.xfrm, xp)
		}
	}
	if p.Dir != ike.DirOut {
		return nil
	}
	if err := d.addClientRoutes(p, ps); err != nil {
		return err
	}
	return d.addSPD(p, ps, maps.ActionBypass)
}

// DeletePolicy removes what AddPolicy made: the SPD entries first (LAN
// traffic stops being steered), then the XFRM policies, the catch-all
// ones with their last user.
func (d *KernelDataplane) DeletePolicy(p *ike.Policy) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	key := policyKey(p)
	ps := d.policies[key]
	if ps == nil {
		return fmt.Errorf("policy %s === %s %v not installed", p.Src, p.Dst, p.Dir)
	}
	delete(d.policies, key)
	return d.removePolicy(ps)
}

func (d *KernelDataplane) removePolicy(ps *policyState) error {
	var errs []error
	for _, r := range ps.routes {
		if err := d.tunnels.DeleteRoute(r); err != nil {
			errs = append(errs, err)
		}
		if r.Table == ClientTable {
			errs = append(errs, d.clientRouteGone(r.Dst.Addr().Is6()))
		}
	}
	ps.routes = nil
	if ps.spd != nil {
		d.spd.remove(ps.spd)
		ps.spd = nil
	}
	for _, xp := range ps.xfrm {
		if err := d.kernel.DeletePolicy(xp); err != nil && !errors.Is(err, xfrm.ErrNoPolicy) {
			errs = append(errs, err)
		}
	}
	if ps.catch != nil {
		if ca := d.catchAll[*ps.catch]; ca != nil {
			ca.refs--
			if ca.refs <= 0 {
				for _, xp := range ca.policies {
					if err := d.kernel.DeletePolicy(xp); err != nil && !errors.Is(err, xfrm.ErrNoPolicy) {
						errs = append(errs, err)
					}
				}
				delete(d.catchAll, *ps.catch)
			}
		}
	}
	return errors.Join(errs...)
}

// rangePrefixes is the shortest list of prefixes covering [from, to].
func rangePrefixes(from, to netip.Addr) []netip.Prefix {
	from, to = from.Unmap(), to.Unmap()
	if !from.IsValid() || !to.IsValid() || from.Is4() != to.Is4() || to.Less(from) {
		return nil
	}
	var out []netip.Prefix
	for {
		bits := from.BitLen()
		// Widen while the prefix starts at from and ends at or before to.
		for bits > 0 {
			p := netip.PrefixFrom(from, bits-1)
			if p.Masked().Addr() != from {
				break
			}
			if _, end := prefixBounds(p); to.Less(end) {
				break
			}
			bits--
		}
		p := netip.PrefixFrom(from, bits)
		out = append(out, p)
		_, end := prefixBounds(p)
		if end == to {
			return out
		}
		from = end.Next()
	}
}

func prefixBounds(p netip.Prefix) (netip.Addr, netip.Addr) {
	start := p.Masked().Addr()
	b := start.AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	end, _ := netip.AddrFromSlice(b)
	return start, end
}
