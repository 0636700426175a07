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

// InboundSA is an SA xdp_wan accepts ESP or AH for.
type InboundSA struct {
	SPI   uint32     // host order
	Proto SAProto    // ESP (the zero value) or AH
	Dst   netip.Addr // our address, the outer destination
	CPU   int        // CPU to steer the SA's packets to, NoCPU for none
	// Pending: the SPI is allocated but the SA not in yet; xdp_wan stashes
	// its packets (see Stash) instead of dropping them. Only SPIs of the
	// allocated range can be pending.
	Pending bool
}

// SAProto is an SA's IPsec protocol (enum xs_sa_proto); ESP in UDP is
// ESP.
type SAProto uint8

const (
	SAProtoESP SAProto = SAProto(bpf.XdpsecXsSaProtoXS_SA_ESP)
	SAProtoAH  SAProto = SAProto(bpf.XdpsecXsSaProtoXS_SA_AH)
)

func (p SAProto) String() string {
	if p == SAProtoAH {
		return "AH"
	}
	return "ESP"
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

// SATable is the inbound SA table: SAs with SPIs in the allocated range in
// sa_slot/sa_slot_stats, indexed by SPI, the rest in their SPI's window of
// sa_foreign/sa_foreign_stats, or in the sa_in hash when the window is
// full. Callers see one table.
type SATable struct {
	m            *ebpf.Map // sa_in
	slots        *ebpf.Map // sa_slot
	slotStats    *ebpf.Map // sa_slot_stats
	foreign      *ebpf.Map // sa_foreign
	foreignStats *ebpf.Map // sa_foreign_stats
	config       *Config
}

func saKey(proto SAProto, spi uint32, dst netip.Addr) bpf.XdpsecXsSaKey {
	dst = unmap(dst)
	return bpf.XdpsecXsSaKey{
		Spi:    hton32(spi),
		Family: familyOf(dst),
		Proto:  bpf.XdpsecXsSaProto(proto),
		Daddr:  addrBytes(dst),
	}
}

// holds says whether the slot holds the SA of key.
func holds(slot *bpf.XdpsecXsSaSlot, key bpf.XdpsecXsSaKey) bool {
	return slot.Spi == key.Spi && slot.Family == key.Family && slot.Proto == key.Proto && slot.Daddr == key.Daddr
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

func validSA(sa InboundSA) error {
	if !sa.Dst.IsValid() {
		return fmt.Errorf("SA %#08x: no destination address", sa.SPI)
	}
	if sa.SPI == 0 {
		return fmt.Errorf("SPI 0 is reserved (RFC 4303 2.1)")
	}
	return nil
}

// Put adds an SA or changes its CPU, keeping its counters.
func (t *SATable) Put(sa InboundSA) error {
	if err := validSA(sa); err != nil {
		return fmt.Errorf("put SA: %w", err)
	}
	ncpu, err := ebpf.PossibleCPU()
	if err != nil {
		return fmt.Errorf("put SA: %w", err)
	}
	cpu, err := cpuField(sa.CPU, ncpu)
	if err != nil {
		return fmt.Errorf("put SA: %w", err)
	}
	r, err := t.config.SPIRange()
	if err != nil {
		return err
	}
	key := saKey(sa.Proto, sa.SPI, sa.Dst)
	if r.Contains(sa.SPI) {
		return t.putSlot(sa.SPI-r.Base, key, cpu, ncpu, true, sa.Pending)
	}
	if sa.Pending {
		return fmt.Errorf("put SA %#08x: only SPIs of the allocated range (%#08x-%#08x) can be pending", sa.SPI, r.Base, r.Base+r.Count-1)
	}
	// An SA in its window keeps its slot and counters; a new one takes
	// the first free slot of the window, or goes to the hash.
	at, free, err := t.findForeign(key)
	if err != nil {
		return fmt.Errorf("put SA: %w", err)
	}
	vals := make([]bpf.XdpsecXsSaEntry, ncpu)
	hashed := true
	if err := t.m.Lookup(&key, vals); errors.Is(err, ebpf.ErrKeyNotExist) {
		hashed = false
	} else if err != nil {
		return fmt.Errorf("put SA: %w", err)
	}
	if at < 0 && !hashed && free >= 0 {
		at = free
		// Before the entry exists, so its first packet is looked up; the
		// counters before the slot, so none of its packets are cleared.
		if err := t.config.setForeign(cfgForeignSAs, true, t.foreignMask()); err != nil {
			return err
		}
		if err := t.foreignStats.Put(uint32(at), make([]bpf.XdpsecXsCounterValue, ncpu)); err != nil {
			return fmt.Errorf("reset SA counters: %w", err)
		}
	}
	if at >= 0 {
		slot := bpf.XdpsecXsSaSlot{Spi: key.Spi, Family: key.Family, Proto: key.Proto, Daddr: key.Daddr, Cpu: cpu}
		if err := t.putForeignSlot(uint32(at), slot); err != nil {
			return fmt.Errorf("put SA %#08x %s: %w", sa.SPI, sa.Dst, err)
		}
		return nil
	}
	// A full window: into the hash, the window marked first.
	if err := t.config.setForeign(cfgForeignSAs|cfgForeignHashed, true, t.foreignMask()); err != nil {
		return err
	}
	if err := t.markOverflow(sa.SPI); err != nil {
		return fmt.Errorf("put SA %#08x %s: %w", sa.SPI, sa.Dst, err)
	}
	// Keep the counters of an existing entry; per-CPU updates write all copies.
	for i := range vals {
		vals[i].Cpu = cpu
		vals[i].Flags = 0
	}
	if err := t.m.Put(&key, vals); err != nil {
		return fmt.Errorf("put SA %#08x %s: %w", sa.SPI, sa.Dst, err)
	}
	return nil
}

// putSlot writes a slot; its counters restart unless it already held this SA.
// A pending slot of another SA is overwritten: the kernel, which handed
// out the SPI again, knows its first holder is gone (a daemon that died
// between allocating and installing).
func (t *SATable) putSlot(idx uint32, key bpf.XdpsecXsSaKey, cpu uint32, ncpu int, keep, pending bool) error {
	var old bpf.XdpsecXsSaSlot
	if err := t.slots.Lookup(idx, &old); err != nil {
		return fmt.Errorf("read SA slot %d: %w", idx, err)
	}
	same := holds(&old, key)
	if old.Spi != 0 && !same && old.Flags&slotPending == 0 {
		dst, _ := addrFrom(old.Family, old.Daddr)
		return fmt.Errorf("put SA %#08x: the SPI is in use by the %v SA for %s", ntoh32(key.Spi), SAProto(old.Proto), dst)
	}
	if !keep || !same {
		// The counters are written before the slot, so no packet of the new
		// SA is counted and then cleared.
		if err := t.slotStats.Put(idx, make([]bpf.XdpsecXsCounterValue, ncpu)); err != nil {
			return fmt.Errorf("reset SA counters: %w", err)
		}
	}
	slot := bpf.XdpsecXsSaSlot{Spi: key.Spi, Family: key.Family, Proto: key.Proto, Daddr: key.Daddr, Cpu: cpu}
	if pending {
		slot.Flags = slotPending
	}
	if err := t.slots.Put(idx, &slot); err != nil {
		return fmt.Errorf("put SA %#08x: %w", ntoh32(key.Spi), err)
	}
	return nil
}

// Delete removes an SA.
func (t *SATable) Delete(proto SAProto, spi uint32, dst netip.Addr) error {
	key := saKey(proto, spi, dst)
	r, err := t.config.SPIRange()
	if err != nil {
		return err
	}
	if r.Contains(spi) {
		idx := spi - r.Base
		var old bpf.XdpsecXsSaSlot
		if err := t.slots.Lookup(idx, &old); err != nil {
			return fmt.Errorf("delete SA %#08x %s: %w", spi, dst, err)
		}
		if !holds(&old, key) {
			return fmt.Errorf("delete SA %#08x %s: %w", spi, dst, ErrNoSA)
		}
		if err := t.slots.Put(idx, &bpf.XdpsecXsSaSlot{}); err != nil {
			return fmt.Errorf("delete SA %#08x %s: %w", spi, dst, err)
		}
		return nil
	}
	at, _, err := t.findForeign(key)
	if err != nil {
		return fmt.Errorf("delete SA %#08x %s: %w", spi, dst, err)
	}
	if at >= 0 {
		if err := t.putForeignSlot(uint32(at), bpf.XdpsecXsSaSlot{}); err != nil {
			return fmt.Errorf("delete SA %#08x %s: %w", spi, dst, err)
		}
	}
	// From the hash too: a writer that died between the two may have left
	// it in both.
	if err := t.m.Delete(&key); errors.Is(err, ebpf.ErrKeyNotExist) {
		if at < 0 {
			return fmt.Errorf("delete SA %#08x %s: %w", spi, dst, ErrNoSA)
		}
	} else if err != nil {
		return fmt.Errorf("delete SA %#08x %s: %w", spi, dst, err)
	}
	return t.syncForeignFlags()
}

// syncForeignFlags clears XS_CFG_FOREIGN_HASHED once sa_in is empty and
// XS_CFG_FOREIGN_SAS once sa_foreign is too.
func (t *SATable) syncForeignFlags() error {
	var key bpf.XdpsecXsSaKey
	err := t.m.NextKey(nil, &key)
	if err == nil {
		return nil
	}
	if !errors.Is(err, ebpf.ErrKeyNotExist) {
		return err
	}
	found := false
	errFound := errors.New("found")
	err = eachSlotOf(t.foreign, func(uint32, *bpf.XdpsecXsSaSlot) error { found = true; return errFound })
	if err != nil && !errors.Is(err, errFound) {
		return err
	}
	if found {
		return t.config.setForeign(cfgForeignHashed, false, 0)
	}
	return t.config.setForeign(cfgForeignSAs|cfgForeignHashed, false, 0)
}

// Get returns one SA with its counters.
func (t *SATable) Get(proto SAProto, spi uint32, dst netip.Addr) (InboundSAStats, error) {
	key := saKey(proto, spi, dst)
	r, err := t.config.SPIRange()
	if err != nil {
		return InboundSAStats{}, err
	}
	if r.Contains(spi) {
		idx := spi - r.Base
		var slot bpf.XdpsecXsSaSlot
		if err := t.slots.Lookup(idx, &slot); err != nil {
			return InboundSAStats{}, err
		}
		if !holds(&slot, key) {
			return InboundSAStats{}, fmt.Errorf("SA %#08x %s: %w", spi, dst, ErrNoSA)
		}
		var ctrs []bpf.XdpsecXsCounterValue
		if err := t.slotStats.Lookup(idx, &ctrs); err != nil {
			return InboundSAStats{}, err
		}
		return slotStats(&slot, ctrs)
	}
	if at, _, err := t.findForeign(key); err != nil {
		return InboundSAStats{}, err
	} else if at >= 0 {
		var slot bpf.XdpsecXsSaSlot
		var ctrs []bpf.XdpsecXsCounterValue
		if err := t.foreign.Lookup(uint32(at), &slot); err != nil {
			return InboundSAStats{}, err
		}
		if err := t.foreignStats.Lookup(uint32(at), &ctrs); err != nil {
			return InboundSAStats{}, err
		}
		return slotStats(&slot, ctrs)
	}
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
	var out []InboundSAStats
	for _, tab := range [][2]*ebpf.Map{{t.slots, t.slotStats}, {t.foreign, t.foreignStats}} {
		err := eachSlotOf(tab[0], func(idx uint32, slot *bpf.XdpsecXsSaSlot) error {
			var ctrs []bpf.XdpsecXsCounterValue
			if err := tab[1].Lookup(idx, &ctrs); err != nil {
				return err
			}
			s, err := slotStats(slot, ctrs)
			if err != nil {
				return err
			}
			out = append(out, s)
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("list SAs: %w", err)
		}
	}
	var (
		key  bpf.XdpsecXsSaKey
		vals []bpf.XdpsecXsSaEntry
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

// eachSlotOf calls fn for every occupied slot of sa_slot or sa_foreign,
// reading the array in batches.
func eachSlotOf(m *ebpf.Map, fn func(uint32, *bpf.XdpsecXsSaSlot) error) error {
	const batch = 4096
	keys := make([]uint32, batch)
	vals := make([]bpf.XdpsecXsSaSlot, batch)
	var cursor ebpf.MapBatchCursor
	for {
		n, err := m.BatchLookup(&cursor, keys, vals, nil)
		for i := 0; i < n; i++ {
			if vals[i].Spi != 0 {
				if err := fn(keys[i], &vals[i]); err != nil {
					return err
				}
			}
		}
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func slotStats(slot *bpf.XdpsecXsSaSlot, ctrs []bpf.XdpsecXsCounterValue) (InboundSAStats, error) {
	dst, err := addrFrom(slot.Family, slot.Daddr)
	if err != nil {
		return InboundSAStats{}, err
	}
	s := InboundSAStats{InboundSA: InboundSA{SPI: ntoh32(slot.Spi), Proto: SAProto(slot.Proto), Dst: dst, CPU: NoCPU}}
	s.Pending = slot.Flags&slotPending != 0 // only ever in sa_slot
	if slot.Cpu != bpfNone {
		s.CPU = int(slot.Cpu)
	}
	for _, c := range ctrs {
		s.RxSeenPackets += c.Packets
		s.RxSeenBytes += c.Bytes
	}
	return s, nil
}

func saStats(key bpf.XdpsecXsSaKey, vals []bpf.XdpsecXsSaEntry) (InboundSAStats, error) {
	dst, err := addrFrom(key.Family, key.Daddr)
	if err != nil {
		return InboundSAStats{}, err
	}
	s := InboundSAStats{InboundSA: InboundSA{SPI: ntoh32(key.Spi), Proto: SAProto(key.Proto), Dst: dst, CPU: NoCPU}}
	for i, v := range vals {
		if i == 0 && v.Cpu != bpfNone {
			s.CPU = int(v.Cpu)
		}
		s.RxSeenPackets += v.RxSeenPackets
		s.RxSeenBytes += v.RxSeenBytes
	}
	return s, nil
}

// Capacity is the number of SPIs in the allocated range (found by index)
// and of other SAs the hash holds (besides those in sa_foreign's windows).
func (t *SATable) Capacity() (slots, hashed int) {
	return int(t.slots.MaxEntries()), int(t.m.MaxEntries())
}

// PutMany adds many SAs in batches, for bulk loads (a restarted daemon, a
// benchmark). Unlike Put it does not keep counters: every entry starts at
// zero. It takes no pending SAs.
func (t *SATable) PutMany(sas []InboundSA) error {
	ncpu, err := ebpf.PossibleCPU()
	if err != nil {
		return err
	}
	r, err := t.config.SPIRange()
	if err != nil {
		return err
	}
	const batch = 4096
	var (
		hkeys []bpf.XdpsecXsSaKey
		hvals []bpf.XdpsecXsSaEntry
		skeys []uint32
		svals []bpf.XdpsecXsSaSlot
		fkeys []uint32
		fvals []bpf.XdpsecXsSaSlot
		zeros = make([]bpf.XdpsecXsCounterValue, batch*ncpu)
		// sa_foreign as it is, read once if any SA is foreign, and
		// filled here: where each foreign SA goes.
		foreign []bpf.XdpsecXsSaSlot
		// Whether sa_in may hold some already: those stay there.
		hashedBefore bool
		marked       = map[uint32]bool{} // windows marked in foreign, to write
	)
	writeSlots := func(slots, stats *ebpf.Map, keys []uint32, vals []bpf.XdpsecXsSaSlot) error {
		if len(keys) == 0 {
			return nil
		}
		if _, err := stats.BatchUpdate(keys, zeros[:len(keys)*ncpu], nil); err != nil {
			return fmt.Errorf("put SAs: %w", err)
		}
		if _, err := slots.BatchUpdate(keys, vals, nil); err != nil {
			return fmt.Errorf("put SAs: %w", err)
		}
		return nil
	}
	flush := func() error {
		if len(fkeys) > 0 {
			if err := t.config.setForeign(cfgForeignSAs, true, t.foreignMask()); err != nil {
				return err
			}
		}
		if err := writeSlots(t.slots, t.slotStats, skeys, svals); err != nil {
			return err
		}
		if err := writeSlots(t.foreign, t.foreignStats, fkeys, fvals); err != nil {
			return err
		}
		if len(hkeys) > 0 {
			if err := t.config.setForeign(cfgForeignSAs|cfgForeignHashed, true, t.foreignMask()); err != nil {
				return err
			}
			// The marks before the hash entries they send lookups to.
			for idx := range marked {
				if err := t.foreign.Put(idx, &foreign[idx]); err != nil {
					return fmt.Errorf("put SAs: %w", err)
				}
			}
			clear(marked)
			if _, err := t.m.BatchUpdate(hkeys, hvals, nil); err != nil {
				return fmt.Errorf("put SAs: %w", err)
			}
		}
		hkeys, hvals, skeys, svals, fkeys, fvals = hkeys[:0], hvals[:0], skeys[:0], svals[:0], fkeys[:0], fvals[:0]
		return nil
	}
	for _, sa := range sas {
		if err := validSA(sa); err != nil {
			return fmt.Errorf("put SAs: %w", err)
		}
		if sa.Pending {
			return fmt.Errorf("put SAs: SA %#08x is pending: bulk loads take installed SAs only", sa.SPI)
		}
		cpu, err := cpuField(sa.CPU, ncpu)
		if err != nil {
			return fmt.Errorf("put SAs: %w", err)
		}
		key := saKey(sa.Proto, sa.SPI, sa.Dst)
		slot := bpf.XdpsecXsSaSlot{Spi: key.Spi, Family: key.Family, Proto: key.Proto, Daddr: key.Daddr, Cpu: cpu}
		if r.Contains(sa.SPI) {
			skeys = append(skeys, sa.SPI-r.Base)
			svals = append(svals, slot)
		} else {
			if foreign == nil {
				if foreign, err = t.readForeign(); err != nil {
					return fmt.Errorf("put SAs: %w", err)
				}
				var probe bpf.XdpsecXsSaKey
				if err := t.m.NextKey(nil, &probe); err == nil {
					hashedBefore = true
				} else if !errors.Is(err, ebpf.ErrKeyNotExist) {
					return fmt.Errorf("put SAs: %w", err)
				}
			}
			inHash := false
			if hashedBefore {
				vals := make([]bpf.XdpsecXsSaEntry, ncpu)
				if err := t.m.Lookup(&key, vals); err == nil {
					inHash = true
				} else if !errors.Is(err, ebpf.ErrKeyNotExist) {
					return fmt.Errorf("put SAs: %w", err)
				}
			}
			at, free := -1, -1
			win := t.foreignWindow(sa.SPI)
			for _, idx := range win {
				if holds(&foreign[idx], key) {
					at = int(idx)
					break
				}
				if foreign[idx].Spi == 0 && free < 0 {
					free = int(idx)
				}
			}
			if at < 0 && !inHash {
				at = free
			}
			if at >= 0 {
				slot.Flags = foreign[at].Flags & slotOverflow
				foreign[at] = slot
				fkeys = append(fkeys, uint32(at))
				fvals = append(fvals, slot)
			} else {
				foreign[win[0]].Flags |= slotOverflow
				marked[win[0]] = true
				hkeys = append(hkeys, key)
				for range ncpu {
					hvals = append(hvals, bpf.XdpsecXsSaEntry{Cpu: cpu})
				}
			}
		}
		if len(hkeys) == batch || len(skeys) == batch || len(fkeys) == batch {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}

// Move gives an SA a new destination address (MOBIKE moved its CHILD_SA)
// and keeps its SPI, CPU and rx_seen counters: an SPI of the range keeps
// its slot and the slot's counters, any other SPI's per-CPU entry is
// copied to the new key before the old one goes.
func (t *SATable) Move(proto SAProto, spi uint32, from, to netip.Addr) error {
	if !to.IsValid() {
		return fmt.Errorf("move SA %#08x: no destination address", spi)
	}
	oldKey, newKey := saKey(proto, spi, from), saKey(proto, spi, to)
	if oldKey == newKey {
		return nil
	}
	r, err := t.config.SPIRange()
	if err != nil {
		return err
	}
	if r.Contains(spi) {
		idx := spi - r.Base
		var slot bpf.XdpsecXsSaSlot
		if err := t.slots.Lookup(idx, &slot); err != nil {
			return fmt.Errorf("move SA %#08x: %w", spi, err)
		}
		if !holds(&slot, oldKey) {
			return fmt.Errorf("move SA %#08x %s: %w", spi, from, ErrNoSA)
		}
		slot.Family, slot.Daddr = newKey.Family, newKey.Daddr
		if err := t.slots.Put(idx, &slot); err != nil {
			return fmt.Errorf("move SA %#08x: %w", spi, err)
		}
		return nil
	}
	// Both keys have the SPI's window: a slot there is rewritten in place.
	at, _, err := t.findForeign(oldKey)
	if err != nil {
		return fmt.Errorf("move SA %#08x: %w", spi, err)
	}
	if at >= 0 {
		if dup, _, err := t.findForeign(newKey); err != nil {
			return fmt.Errorf("move SA %#08x: %w", spi, err)
		} else if dup >= 0 {
			return fmt.Errorf("move SA %#08x to %s: that SA exists already", spi, to)
		}
		var slot bpf.XdpsecXsSaSlot
		if err := t.foreign.Lookup(uint32(at), &slot); err != nil {
			return fmt.Errorf("move SA %#08x: %w", spi, err)
		}
		slot.Family, slot.Daddr = newKey.Family, newKey.Daddr
		if err := t.foreign.Put(uint32(at), &slot); err != nil {
			return fmt.Errorf("move SA %#08x: %w", spi, err)
		}
		return nil
	}
	var vals []bpf.XdpsecXsSaEntry
	if err := t.m.Lookup(&oldKey, &vals); err != nil {
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("move SA %#08x %s: %w", spi, from, ErrNoSA)
		}
		return fmt.Errorf("move SA %#08x: %w", spi, err)
	}
	if err := t.m.Put(&newKey, vals); err != nil {
		return fmt.Errorf("move SA %#08x to %s: %w", spi, to, err)
	}
	if err := t.m.Delete(&oldKey); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("move SA %#08x: %w", spi, err)
	}
	return nil
}

// foreignProbes mirrors XS_FOREIGN_PROBES: the slots of sa_foreign an SA
// with a given SPI may sit in.
const foreignProbes = 4

// foreignMask is sa_foreign's size - 1, rounded down to a power of two.
func (t *SATable) foreignMask() uint32 {
	n := t.foreign.MaxEntries()
	for n&(n-1) != 0 {
		n &= n - 1
	}
	return n - 1
}

// foreignWindow mirrors XS_FOREIGN_HASH: the indices an SA with this
// SPI may occupy in sa_foreign, in the order xdp_wan examines them.
func (t *SATable) foreignWindow(spi uint32) [foreignProbes]uint32 {
	h := spi * 0x9e3779b1
	h ^= h >> 16
	mask := t.foreignMask()
	var w [foreignProbes]uint32
	for i := range w {
		w[i] = (h + uint32(i)) & mask
	}
	return w
}

// findForeign returns the index of key's slot in sa_foreign (-1: none)
// and of the first free slot of its window (-1: none).
func (t *SATable) findForeign(key bpf.XdpsecXsSaKey) (at, free int, err error) {
	at, free = -1, -1
	for _, idx := range t.foreignWindow(ntoh32(key.Spi)) {
		var slot bpf.XdpsecXsSaSlot
		if err := t.foreign.Lookup(idx, &slot); err != nil {
			return -1, -1, fmt.Errorf("read sa_foreign: %w", err)
		}
		if holds(&slot, key) {
			return int(idx), free, nil
		}
		if slot.Spi == 0 && free < 0 {
			free = int(idx)
		}
	}
	return -1, free, nil
}

// readForeign returns the whole of sa_foreign, empty slots (with their
// marks) included.
func (t *SATable) readForeign() ([]bpf.XdpsecXsSaSlot, error) {
	n := int(t.foreign.MaxEntries())
	out := make([]bpf.XdpsecXsSaSlot, n)
	keys := make([]uint32, min(n, 4096))
	var cursor ebpf.MapBatchCursor
	for done := 0; done < n; {
		c, err := t.foreign.BatchLookup(&cursor, keys, out[done:done+min(len(keys), n-done)], nil)
		for _, k := range keys[:c] {
			if int(k) != done {
				return nil, fmt.Errorf("read sa_foreign: batch out of order")
			}
			done++
		}
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read sa_foreign: %w", err)
		}
	}
	return out, nil
}

// slotOverflow mirrors XS_SLOT_OVERFLOW, slotPending XS_SLOT_PENDING.
const (
	slotOverflow = 0x1
	slotPending  = 0x2
)

// putForeignSlot writes a slot of sa_foreign, keeping its overflow mark.
func (t *SATable) putForeignSlot(idx uint32, slot bpf.XdpsecXsSaSlot) error {
	var old bpf.XdpsecXsSaSlot
	if err := t.foreign.Lookup(idx, &old); err != nil {
		return fmt.Errorf("read sa_foreign: %w", err)
	}
	slot.Flags = old.Flags & slotOverflow
	return t.foreign.Put(idx, &slot)
}

// markOverflow marks the window of spi: some SA of it is in the hash.
// The mark stays: a lookup that misses there then also asks the hash.
func (t *SATable) markOverflow(spi uint32) error {
	idx := t.foreignWindow(spi)[0]
	var slot bpf.XdpsecXsSaSlot
	if err := t.foreign.Lookup(idx, &slot); err != nil {
		return fmt.Errorf("read sa_foreign: %w", err)
	}
	if slot.Flags&slotOverflow != 0 {
		return nil
	}
	slot.Flags |= slotOverflow
	return t.foreign.Put(idx, &slot)
}

// ForeignSlots is the size to give sa_foreign (and sa_foreign_stats) for
// up to n SAs outside the allocated range: a power of two with room to
// spare, so that windows seldom fill and SAs seldom go to the hash.
func ForeignSlots(n uint32) uint32 {
	want := max(uint64(n)+uint64(n)/2, 64)
	s := uint64(1)
	for s < want {
		s <<= 1
	}
	return uint32(min(s, 1<<31))
}
