package maps

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/cilium/ebpf"

	"github.com/xdpsec/xdpsec/bpf"
)

// NoCPU means an SA is not steered to a CPU.
const NoCPU = -1

// InboundSA is an entry of sa_in: the SA inbound ESP is matched against.
type InboundSA struct {
	SPI uint32     // host order
	Dst netip.Addr // our address, the outer destination
	CPU int        // CPU to steer the SA's packets to, NoCPU for none
}

// InboundSAStats is an SA with its rx_seen counters summed over CPUs.
// They count packets before authentication: forged ESP with a valid SPI
// counts too. Authenticated counts come from the kernel's SA.
type InboundSAStats struct {
	InboundSA
	RxSeenPackets uint64
	RxSeenBytes   uint64
}

// ErrNoSA means the SA table has no entry for that SPI and destination.
var ErrNoSA = errors.New("no such SA")

// SATable wraps sa_in.
type SATable struct {
	m *ebpf.Map
}

func saKey(spi uint32, dst netip.Addr) bpf.XdpsecXsSaKey {
	dst = unmap(dst)
	return bpf.XdpsecXsSaKey{
		Spi:    hton32(spi),
		Family: familyOf(dst),
		Daddr:  addrBytes(dst),
	}
}

// Put adds an SA or changes its CPU, keeping its counters.
func (t *SATable) Put(sa InboundSA) error {
	if !sa.Dst.IsValid() {
		return fmt.Errorf("put SA: no destination address")
	}
	if sa.SPI == 0 {
		return fmt.Errorf("put SA: SPI 0 is reserved (RFC 4303 2.1)")
	}
	ncpu, err := ebpf.PossibleCPU()
	if err != nil {
		return fmt.Errorf("put SA: %w", err)
	}
	cpu, err := cpuField(sa.CPU, ncpu)
	if err != nil {
		return fmt.Errorf("put SA: %w", err)
	}
	key := saKey(sa.SPI, sa.Dst)
	vals := make([]bpf.XdpsecXsSaEntry, ncpu)
	// Keep the counters of an existing entry; per-CPU updates write all copies.
	if err := t.m.Lookup(&key, vals); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("put SA: %w", err)
	}
	for i := range vals {
		vals[i].Cpu = cpu
		vals[i].Flags = 0
	}
	if err := t.m.Put(&key, vals); err != nil {
		return fmt.Errorf("put SA %#08x %s: %w", sa.SPI, sa.Dst, err)
	}
	return nil
}

// cpuField is the cpu value of an entry: the CPU, or XS_NONE for NoCPU.
func cpuField(cpu, ncpu int) (uint32, error) {
	if cpu == NoCPU {
		return bpfNone, nil
	}
	if cpu < 0 || cpu >= ncpu {
		return 0, fmt.Errorf("CPU %d out of range (0-%d)", cpu, ncpu-1)
	}
	return uint32(cpu), nil
}

// Delete removes an SA.
func (t *SATable) Delete(spi uint32, dst netip.Addr) error {
	key := saKey(spi, dst)
	if err := t.m.Delete(&key); err != nil {
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("delete SA %#08x %s: %w", spi, dst, ErrNoSA)
		}
		return fmt.Errorf("delete SA %#08x %s: %w", spi, dst, err)
	}
	return nil
}

// Get returns one SA with its counters.
func (t *SATable) Get(spi uint32, dst netip.Addr) (InboundSAStats, error) {
	key := saKey(spi, dst)
	var vals []bpf.XdpsecXsSaEntry
	if err := t.m.Lookup(&key, &vals); err != nil {
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return InboundSAStats{}, fmt.Errorf("SA %#08x %s: %w", spi, dst, ErrNoSA)
		}
		return InboundSAStats{}, err
	}
	return saStats(key, vals)
}

// List returns every SA with its counters summed over CPUs.
func (t *SATable) List() ([]InboundSAStats, error) {
	var (
		key  bpf.XdpsecXsSaKey
		vals []bpf.XdpsecXsSaEntry
		out  []InboundSAStats
	)
	it := t.m.Iterate()
	for it.Next(&key, &vals) {
		s, err := saStats(key, vals)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("list SAs: %w", err)
	}
	return out, nil
}

func saStats(key bpf.XdpsecXsSaKey, vals []bpf.XdpsecXsSaEntry) (InboundSAStats, error) {
	dst, err := addrFrom(key.Family, key.Daddr)
	if err != nil {
		return InboundSAStats{}, err
	}
	s := InboundSAStats{InboundSA: InboundSA{SPI: ntoh32(key.Spi), Dst: dst, CPU: NoCPU}}
	for i, v := range vals {
		if i == 0 && v.Cpu != bpfNone {
			s.CPU = int(v.Cpu)
		}
		s.RxSeenPackets += v.RxSeenPackets
		s.RxSeenBytes += v.RxSeenBytes
	}
	return s, nil
}

// Len counts the SAs.
func (t *SATable) Len() (int, error) {
	var key bpf.XdpsecXsSaKey
	n := 0
	it := t.m.Iterate()
	var vals []bpf.XdpsecXsSaEntry
	for it.Next(&key, &vals) {
		n++
	}
	return n, it.Err()
}

// Capacity is the most SAs the table holds.
func (t *SATable) Capacity() int { return int(t.m.MaxEntries()) }

// PutMany adds many SAs in batches, for bulk loads (a restarted daemon, a
// benchmark). Unlike Put it does not keep counters: every entry starts at
// zero.
func (t *SATable) PutMany(sas []InboundSA) error {
	ncpu, err := ebpf.PossibleCPU()
	if err != nil {
		return err
	}
	const batch = 4096
	keys := make([]bpf.XdpsecXsSaKey, 0, batch)
	vals := make([]bpf.XdpsecXsSaEntry, 0, batch*ncpu)
	flush := func() error {
		if len(keys) == 0 {
			return nil
		}
		if _, err := t.m.BatchUpdate(keys, vals, nil); err != nil {
			return fmt.Errorf("put SAs: %w", err)
		}
		keys, vals = keys[:0], vals[:0]
		return nil
	}
	for _, sa := range sas {
		if !sa.Dst.IsValid() || sa.SPI == 0 {
			return fmt.Errorf("put SAs: SA %#08x %s: SPI and destination required", sa.SPI, sa.Dst)
		}
		cpu, err := cpuField(sa.CPU, ncpu)
		if err != nil {
			return fmt.Errorf("put SAs: %w", err)
		}
		keys = append(keys, saKey(sa.SPI, sa.Dst))
		for range ncpu {
			vals = append(vals, bpf.XdpsecXsSaEntry{Cpu: cpu})
		}
		if len(keys) == batch {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}
