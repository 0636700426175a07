package maps

import (
	"errors"
	"fmt"
	"slices"

	"github.com/cilium/ebpf"

	"github.com/xdpsec/xdpsec/bpf"
)

// ErrNoPolicy means there is no policy with that ID.
var ErrNoPolicy = errors.New("no such policy")

// PolicyStats is a policy with its counters summed over CPUs.
type PolicyStats struct {
	Policy
	Packets uint64
	Bytes   uint64
}

// SPD wraps the outbound policies (spd_out), their counters (spd_stats) and
// the compiled lookup maps tc_lan walks. Every change recompiles the whole
// set into the idle generation and switches packets to it in one store;
// the generation it left stays intact until the next change, so a packet
// that read the old generation number still finds a complete set.
type SPD struct {
	policies, stats, prefix4, prefix6, dst, node, src, rule *ebpf.Map
	config                                                  *Config
	lock                                                    func() (func(), error)
}

// Capacity is the most policies the maps hold.
func (s *SPD) Capacity() int { return int(s.policies.MaxEntries()) }

// readPolicies returns the configured policies sorted by ID.
func (s *SPD) readPolicies() ([]Policy, error) {
	var (
		id  uint32
		v   bpf.XdpsecXsPolicy
		out []Policy
	)
	it := s.policies.Iterate()
	for it.Next(&id, &v) {
		p, err := policyFromBPF(id, &v)
		if err != nil {
			return nil, fmt.Errorf("policy %d: %w", id, err)
		}
		out = append(out, p)
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("read policies: %w", err)
	}
	slices.SortFunc(out, func(a, b Policy) int { return int(a.ID) - int(b.ID) })
	return out, nil
}

// Policies returns the configured policies sorted by ID.
func (s *SPD) Policies() ([]Policy, error) { return s.readPolicies() }

// List returns the policies with their counters.
func (s *SPD) List() ([]PolicyStats, error) {
	ps, err := s.readPolicies()
	if err != nil {
		return nil, err
	}
	out := make([]PolicyStats, 0, len(ps))
	for _, p := range ps {
		st := PolicyStats{Policy: p}
		var vals []bpf.XdpsecXsCounterValue
		if err := s.stats.Lookup(p.ID, &vals); err != nil {
			return nil, fmt.Errorf("read counters of policy %d: %w", p.ID, err)
		}
		for _, v := range vals {
			st.Packets += v.Packets
			st.Bytes += v.Bytes
		}
		out = append(out, st)
	}
	return out, nil
}

// Get returns one policy.
func (s *SPD) Get(id uint32) (Policy, error) {
	var v bpf.XdpsecXsPolicy
	if err := s.policies.Lookup(id, &v); err != nil {
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return Policy{}, fmt.Errorf("policy %d: %w", id, ErrNoPolicy)
		}
		return Policy{}, err
	}
	return policyFromBPF(id, &v)
}

// Add validates a policy, gives it the lowest free ID if it has none, and
// makes it live. It returns the policy as stored.
func (s *SPD) Add(p Policy) (Policy, error) {
	unlock, err := s.lock()
	if err != nil {
		return p, err
	}
	defer unlock()
	all, err := s.readPolicies()
	if err != nil {
		return p, err
	}
	p.Normalize()
	if p.ID == 0 {
		if p.ID, err = lowestFreeID(all, s.Capacity()); err != nil {
			return p, err
		}
	}
	if int(p.ID) > s.Capacity() {
		return p, fmt.Errorf("policy ID %d out of range 1-%d", p.ID, s.Capacity())
	}
	if err := p.Validate(); err != nil {
		return p, err
	}
	for _, q := range all {
		if q.ID == p.ID {
			return p, fmt.Errorf("policy %d exists already", p.ID)
		}
	}
	next := append(all, p)
	c, err := compileSPD(next)
	if err != nil {
		return p, err
	}
	v := p.toBPF()
	if err := s.policies.Update(p.ID, &v, ebpf.UpdateNoExist); err != nil {
		return p, fmt.Errorf("add policy %d: %w", p.ID, err)
	}
	if err := s.zeroStats(p.ID); err != nil {
		s.policies.Delete(p.ID)
		return p, err
	}
	if err := s.apply(c); err != nil {
		s.policies.Delete(p.ID)
		return p, err
	}
	return p, nil
}

// Delete removes a policy.
func (s *SPD) Delete(id uint32) error {
	unlock, err := s.lock()
	if err != nil {
		return err
	}
	defer unlock()
	all, err := s.readPolicies()
	if err != nil {
		return err
	}
	i := slices.IndexFunc(all, func(p Policy) bool { return p.ID == id })
	if i < 0 {
		return fmt.Errorf("policy %d: %w", id, ErrNoPolicy)
	}
	c, err := compileSPD(slices.Delete(all, i, i+1))
	if err != nil {
		return err
	}
	// Stop matching first, then forget the policy.
	if err := s.apply(c); err != nil {
		return err
	}
	if err := s.policies.Delete(id); err != nil {
		return fmt.Errorf("delete policy %d: %w", id, err)
	}
	return nil
}

// Replace makes ps the whole policy set at once. Policies without an ID
// get the lowest free ones.
func (s *SPD) Replace(ps []Policy) ([]Policy, error) {
	unlock, err := s.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	old, err := s.readPolicies()
	if err != nil {
		return nil, err
	}
	return s.replace(old, ps)
}

// Apply deletes the policies del and adds add in one change, compiled
// once, where Add and Delete compile the whole set each: what a daemon
// that installs many tunnels at once needs. An added policy equal to a
// stored one but for its ID is not stored twice: it gets the stored one's
// ID (a restarted daemon adding what its predecessor left). IDs in del
// not stored are ignored. It returns add with the IDs given, in order.
func (s *SPD) Apply(add []Policy, del []uint32) ([]Policy, error) {
	unlock, err := s.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	old, err := s.readPolicies()
	if err != nil {
		return nil, err
	}
	gone := map[uint32]bool{}
	for _, id := range del {
		gone[id] = true
	}
	next := slices.DeleteFunc(slices.Clone(old), func(p Policy) bool { return gone[p.ID] })
	stored := len(next)
	// Policies by their content, to find equal ones.
	index := make(map[Policy]int, len(next)+len(add))
	for i, p := range next {
		p.ID = 0
		index[p] = i
	}
	where := make([]int, len(add))
	for i, p := range add {
		p.Normalize()
		p.ID = 0
		j, ok := index[p]
		if !ok {
			j = len(next)
			index[p] = j
			next = append(next, p)
		}
		where[i] = j
	}
	if len(next) == len(old) && stored == len(old) {
		// Nothing new, nothing gone.
		out := make([]Policy, len(add))
		for i, j := range where {
			out[i] = next[j]
		}
		return out, nil
	}
	done, err := s.replace(old, next)
	if err != nil {
		return nil, err
	}
	out := make([]Policy, len(add))
	for i, j := range where {
		out[i] = done[j]
	}
	return out, nil
}

// replace makes ps the policy set in place of old; the lock is held.
func (s *SPD) replace(old, ps []Policy) ([]Policy, error) {
	next := slices.Clone(ps)
	used := map[uint32]bool{}
	for i := range next {
		next[i].Normalize()
		if next[i].ID != 0 {
			if used[next[i].ID] {
				return nil, fmt.Errorf("policy ID %d given twice", next[i].ID)
			}
			used[next[i].ID] = true
		}
	}
	free := uint32(1)
	for i := range next {
		for next[i].ID == 0 {
			if !used[free] {
				next[i].ID = free
				used[free] = true
			}
			free++
		}
		if int(next[i].ID) > s.Capacity() {
			return nil, fmt.Errorf("policy ID %d out of range 1-%d (too many policies?)", next[i].ID, s.Capacity())
		}
		if err := next[i].Validate(); err != nil {
			return nil, err
		}
	}
	c, err := compileSPD(next)
	if err != nil {
		return nil, err
	}
	oldIDs := map[uint32]Policy{}
	for _, p := range old {
		oldIDs[p.ID] = p
	}
	for _, p := range next {
		if q, ok := oldIDs[p.ID]; ok && q == p {
			// Stored as it is: a batch of a few new policies among
			// thousands writes only those.
			delete(oldIDs, p.ID)
			continue
		}
		if err := s.zeroStats(p.ID); err != nil {
			return nil, err
		}
		v := p.toBPF()
		if err := s.policies.Put(p.ID, &v); err != nil {
			return nil, fmt.Errorf("write policy %d: %w", p.ID, err)
		}
		delete(oldIDs, p.ID)
	}
	if err := s.apply(c); err != nil {
		return nil, err
	}
	for id := range oldIDs {
		if err := s.policies.Delete(id); err != nil {
			return nil, fmt.Errorf("delete policy %d: %w", id, err)
		}
	}
	return next, nil
}

// Sync recompiles the lookup maps from the stored policies, e.g. after a
// writer died half way through a change.
func (s *SPD) Sync() error {
	unlock, err := s.lock()
	if err != nil {
		return err
	}
	defer unlock()
	all, err := s.readPolicies()
	if err != nil {
		return err
	}
	c, err := compileSPD(all)
	if err != nil {
		return err
	}
	return s.apply(c)
}

func lowestFreeID(all []Policy, capacity int) (uint32, error) {
	used := make(map[uint32]bool, len(all))
	for _, p := range all {
		used[p.ID] = true
	}
	for id := uint32(1); int(id) <= capacity; id++ {
		if !used[id] {
			return id, nil
		}
	}
	return 0, fmt.Errorf("policy table full (%d policies)", capacity)
}

func (s *SPD) zeroStats(id uint32) error {
	n, err := ebpf.PossibleCPU()
	if err != nil {
		return err
	}
	if err := s.stats.Put(id, make([]bpf.XdpsecXsCounterValue, n)); err != nil {
		return fmt.Errorf("reset counters of policy %d: %w", id, err)
	}
	return nil
}

// genCapacity is how many nodes, source entries and rules one generation has room for.
func (s *SPD) genCapacity() uint32 {
	return min(s.node.MaxEntries(), s.rule.MaxEntries(), s.src.MaxEntries(), s.dst.MaxEntries(), s.prefix4.MaxEntries(), s.prefix6.MaxEntries()) / 2
}

// apply writes a compiled set into the idle generation and switches to it.
// The caller holds the lock.
func (s *SPD) apply(c *compiledSPD) error {
	cur, err := s.config.spdGen()
	if err != nil {
		return err
	}
	gen := cur ^ 1
	capacity := s.genCapacity()
	if uint32(len(c.nodes)) > capacity || uint32(len(c.rules)) > capacity || uint32(len(c.srcs)) > capacity {
		return fmt.Errorf("policy set needs %d nodes, %d rules: more than the maps hold (%d)",
			len(c.nodes), len(c.rules), capacity)
	}
	if err := s.clearGen(gen); err != nil {
		return err
	}
	nodeBase, ruleBase := uint32(gen)*capacity, uint32(gen)*capacity
	rel := func(base, i uint32) uint32 {
		if i == bpfNone {
			return bpfNone
		}
		return base + i
	}
	for i, n := range c.nodes {
		n.Parent = rel(nodeBase, n.Parent)
		for j := range n.SrcHead {
			n.SrcHead[j] = rel(ruleBase, n.SrcHead[j])
		}
		if err := s.node.Put(nodeBase+uint32(i), &n); err != nil {
			return fmt.Errorf("write spd_node: %w", err)
		}
	}
	for i, r := range c.rules {
		r.Next = rel(ruleBase, r.Next)
		if err := s.rule.Put(ruleBase+uint32(i), &r); err != nil {
			return fmt.Errorf("write spd_rule: %w", err)
		}
	}
	for _, e := range c.srcs {
		k := bpf.XdpsecXsSpdSrcKey{
			Prefixlen: 32 + uint32(e.prefix.Bits()),
			Node:      nodeBase + e.node,
			Addr:      addrBytes(e.prefix.Addr()),
		}
		if err := s.src.Put(&k, ruleBase+e.head); err != nil {
			return fmt.Errorf("write spd_src %s: %w", e.prefix, err)
		}
	}
	for _, e := range c.dsts {
		k := bpf.XdpsecXsSpdDstKey{
			Prefixlen: 32 + uint32(e.prefix.Bits()),
			Gen:       gen,
			Family:    familyOf(e.prefix.Addr()),
			Addr:      addrBytes(e.prefix.Addr()),
		}
		if err := s.dst.Put(&k, nodeBase+e.node); err != nil {
			return fmt.Errorf("write spd_dst %s: %w", e.prefix, err)
		}
	}
	for _, e := range c.hashed {
		var err error
		if a := e.prefix.Addr(); a.Is4() {
			k := bpf.XdpsecXsSpdPrefix4Key{Gen: gen, Len: uint8(e.prefix.Bits()), Addr: a.As4()}
			err = s.prefix4.Put(&k, nodeBase+e.node)
		} else {
			k := bpf.XdpsecXsSpdPrefix6Key{Gen: gen, Len: uint8(e.prefix.Bits()), Addr: a.As16()}
			err = s.prefix6.Put(&k, nodeBase+e.node)
		}
		if err != nil {
			return fmt.Errorf("write spd_prefix %s: %w", e.prefix, err)
		}
	}
	// The generation's lengths go in before the switch, in a store of
	// their own: tc_lan reads spd_gen and then that generation's lengths,
	// which no later change touches while it is active.
	if err := s.config.updateLocked(func(v *bpf.XdpsecXsConfig) {
		for i, l := range c.lens {
			v.SpdLens[spdLensIndex(gen, i)] = l
		}
	}); err != nil {
		return err
	}
	return s.config.updateLocked(func(v *bpf.XdpsecXsConfig) { v.SpdGen = uint32(gen) })
}

// clearGen deletes a generation's hash and trie entries; its array slots
// are simply overwritten.
func (s *SPD) clearGen(gen uint8) error {
	var (
		pk4  bpf.XdpsecXsSpdPrefix4Key
		pk6  bpf.XdpsecXsSpdPrefix6Key
		dk   bpf.XdpsecXsSpdDstKey
		sk   bpf.XdpsecXsSpdSrcKey
		v    uint32
		del4 []bpf.XdpsecXsSpdPrefix4Key
		del6 []bpf.XdpsecXsSpdPrefix6Key
		dels []bpf.XdpsecXsSpdDstKey
		sdel []bpf.XdpsecXsSpdSrcKey
	)
	hit := s.prefix4.Iterate()
	for hit.Next(&pk4, &v) {
		if pk4.Gen == gen {
			del4 = append(del4, pk4)
		}
	}
	if err := hit.Err(); err != nil {
		return fmt.Errorf("read spd_prefix4: %w", err)
	}
	hit = s.prefix6.Iterate()
	for hit.Next(&pk6, &v) {
		if pk6.Gen == gen {
			del6 = append(del6, pk6)
		}
	}
	if err := hit.Err(); err != nil {
		return fmt.Errorf("read spd_prefix6: %w", err)
	}
	it := s.dst.Iterate()
	for it.Next(&dk, &v) {
		if dk.Gen == gen {
			dels = append(dels, dk)
		}
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("read spd_dst: %w", err)
	}
	lo, hi := uint32(gen)*s.genCapacity(), uint32(gen+1)*s.genCapacity()
	it = s.src.Iterate()
	for it.Next(&sk, &v) {
		if sk.Node >= lo && sk.Node < hi {
			sdel = append(sdel, sk)
		}
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("read spd_src: %w", err)
	}
	for i := range del4 {
		if err := s.prefix4.Delete(&del4[i]); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("clear spd_prefix4: %w", err)
		}
	}
	for i := range del6 {
		if err := s.prefix6.Delete(&del6[i]); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("clear spd_prefix6: %w", err)
		}
	}
	for i := range dels {
		if err := s.dst.Delete(&dels[i]); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("clear spd_dst: %w", err)
		}
	}
	for i := range sdel {
		if err := s.src.Delete(&sdel[i]); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("clear spd_src: %w", err)
		}
	}
	return nil
}
