// Package pool hands out virtual IP addresses to remote-access clients
// (swanctl.conf's pools section, IKEv2 configuration payloads): each
// address is leased to a client identity, and a client that comes back
// gets the address it had.
//
// A lease is online while an IKE SA uses it and offline after that; an
// offline lease stays bound to its identity, so the same user
// reconnecting gets the same address. New clients get addresses never
// handed out first; only when those are gone does the pool take back the
// offline lease released longest ago. A pool that has neither is
// exhausted (the engine answers INTERNAL_ADDRESS_FAILURE).
//
// The package is pure bookkeeping: it does not know IKE, the
// configuration file, the dataplane or where leases are saved across
// restarts (Leases and Restore give the daemon what to save and take
// back). A Pool is safe for concurrent use.
package pool

import (
	"errors"
	"fmt"
	"math/big"
	"net/netip"
	"sort"
	"sync"
)

// ErrExhausted is returned by Acquire when every address is leased
// online.
var ErrExhausted = errors.New("pool exhausted")

// ErrInUse is returned by AcquireAddr when the address is leased online
// to another identity.
var ErrInUse = errors.New("address in use")

// maxSize caps a pool's addresses: an IPv6 /64 has more than anyone can
// lease, and offsets stay in a uint64.
const maxSize = 1 << 62

// Pool is one named range of addresses of one family.
type Pool struct {
	name  string
	first netip.Addr
	base  netip.Addr // as written (Base)
	size  uint64

	mu sync.Mutex
	// free are the offsets never leased (or free again after a restore),
	// as sorted, disjoint half-open ranges.
	free   []span
	byAddr map[netip.Addr]*lease
	byID   map[string][]*lease
	// offline leases, released longest ago first: the order in which
	// they are taken back for other identities.
	offHead, offTail *lease
	online           int
	// changes are the addresses whose identity changed since
	// TakeChanges, once TrackChanges is called (nil before).
	changes map[netip.Addr]struct{}
	// arb makes the leases unique across the pools of this name in a
	// fleet (nil: this pool alone decides).
	arb Arbiter
}

type span struct{ lo, hi uint64 }

type lease struct {
	addr       netip.Addr
	id         string
	online     int // IKE SAs using it (a client may reauthenticate before the old SA goes)
	prev, next *lease
}

// Lease is one address bound to an identity, as listed and saved.
type Lease struct {
	Addr     netip.Addr `json:"addr"`
	Identity string     `json:"identity"`
	Online   bool       `json:"online"`
}

// FromPrefix makes a pool of a prefix (addrs = 10.3.200.0/24). As with
// strongSwan, the network and the broadcast address are not handed out
// when the prefix has room for more, and an address other than the
// network address is where the pool starts (10.3.200.100/24 leases
// .100 to .254).
func FromPrefix(name string, p netip.Prefix) (*Pool, error) {
	if !p.IsValid() {
		return nil, fmt.Errorf("pool %q: invalid prefix", name)
	}
	base := p.Addr().Unmap()
	net := p.Masked().Addr().Unmap()
	hostBits := base.BitLen() - p.Bits()
	last := lastOf(net, hostBits)
	if hostBits >= 2 {
		// A /30 and larger: leave out the network and the broadcast.
		if base == net {
			base = base.Next()
		}
		last = last.Prev()
	}
	pool, err := FromRange(name, base, last)
	if err == nil {
		pool.base = p.Addr().Unmap()
	}
	return pool, err
}

// FromRange makes a pool of the addresses from first to last, both
// included (addrs = 10.3.200.10-10.3.200.20).
func FromRange(name string, first, last netip.Addr) (*Pool, error) {
	first, last = first.Unmap(), last.Unmap()
	if !first.IsValid() || !last.IsValid() || first.Is4() != last.Is4() {
		return nil, fmt.Errorf("pool %q: %v-%v is not a range of one address family", name, first, last)
	}
	if last.Less(first) {
		return nil, fmt.Errorf("pool %q: %v-%v is empty (the end is before the start)", name, first, last)
	}
	d := new(big.Int).Sub(toInt(last), toInt(first))
	d.Add(d, big.NewInt(1))
	size := uint64(maxSize)
	if d.IsUint64() && d.Uint64() < maxSize {
		size = d.Uint64()
	}
	return &Pool{name: name, first: first, base: first, size: size, free: []span{{0, size}},
		byAddr: map[netip.Addr]*lease{}, byID: map[string][]*lease{}}, nil
}

// Name is the pool's name (pools.NAME).
func (p *Pool) Name() string { return p.name }

// Base is where the pool is written to start, as charon reports it: the
// address of its prefix as written (10.3.200.0 for 10.3.200.0/24, which
// hands out from .1), or the first of its range.
func (p *Pool) Base() netip.Addr { return p.base }

// Range is the first and the last address the pool hands out.
func (p *Pool) Range() (first, last netip.Addr) { return p.first, p.at(p.size - 1) }

// Is4 says whether the pool holds IPv4 addresses.
func (p *Pool) Is4() bool { return p.first.Is4() }

// Contains says whether the pool hands out a.
func (p *Pool) Contains(a netip.Addr) bool {
	_, ok := p.offset(a.Unmap())
	return ok
}

// Acquire leases an address to identity id: its offline lease, or the
// requested address when it is one of its leases, or an address never
// handed out, or the offline lease of another identity released longest
// ago. reused says the address was id's before.
func (p *Pool) Acquire(id string, requested netip.Addr) (addr netip.Addr, reused bool, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	requested = requested.Unmap()
	if p.arb != nil {
		return p.acquireFleet(id, requested)
	}
	mine := p.byID[id]
	// The address the client asks for, if it is its own (a reconnect or a
	// reauthentication that keeps its address).
	for _, l := range mine {
		if l.addr == requested {
			p.use(l)
			return l.addr, true, nil
		}
	}
	for _, l := range mine {
		if l.online == 0 {
			p.use(l)
			return l.addr, true, nil
		}
	}
	if len(p.free) > 0 {
		a := p.at(p.free[0].lo)
		p.take(p.free[0].lo)
		l := &lease{addr: a, id: id}
		p.byAddr[a] = l
		p.byID[id] = append(p.byID[id], l)
		p.use(l)
		p.note(a)
		return a, false, nil
	}
	if l := p.offHead; l != nil {
		p.forgetID(l)
		l.id = id
		p.byID[id] = append(p.byID[id], l)
		p.use(l)
		p.note(l.addr)
		return l.addr, false, nil
	}
	return netip.Addr{}, false, fmt.Errorf("pool %q: %w (%d addresses online)", p.name, ErrExhausted, p.online)
}

// AcquireAddr leases exactly a to identity id: an address chosen
// elsewhere (a RADIUS server's Framed-IP-Address) that the pool must not
// give anyone else while id has it. An offline lease of another identity
// on a is taken over; one online is ErrInUse, and an address outside the
// pool an error too.
func (p *Pool) AcquireAddr(id string, a netip.Addr) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	a = a.Unmap()
	off, ok := p.offset(a)
	if !ok {
		return fmt.Errorf("pool %q: %v is not in the pool", p.name, a)
	}
	l := p.byAddr[a]
	if p.arb != nil && (l == nil || l.online == 0 || l.id == id) {
		prev := ""
		if l != nil && l.id != id {
			prev = l.id
		}
		if l == nil || l.online == 0 {
			ok, holder, err := p.arb.Claim(p.name, a, id, prev)
			if err != nil {
				return fmt.Errorf("pool %q: %v: %w", p.name, a, err)
			}
			if !ok {
				return fmt.Errorf("pool %q: %v: %w by %q in the fleet", p.name, a, ErrInUse, holder)
			}
		}
	}
	switch {
	case l == nil:
		l = &lease{addr: a, id: id}
		p.byAddr[a] = l
		p.byID[id] = append(p.byID[id], l)
		p.take(off)
		p.note(a)
	case l.id != id && l.online > 0:
		return fmt.Errorf("pool %q: %v: %w by %q", p.name, a, ErrInUse, l.id)
	case l.id != id:
		p.forgetID(l)
		l.id = id
		p.byID[id] = append(p.byID[id], l)
		p.note(a)
	}
	p.use(l)
	return nil
}

// Release ends one use of id's lease of addr; with the last use the
// lease goes offline, still bound to id. It says whether there was such
// a lease.
func (p *Pool) Release(id string, addr netip.Addr) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	l := p.byAddr[addr.Unmap()]
	if l == nil || l.id != id || l.online == 0 {
		return false
	}
	l.online--
	if l.online == 0 {
		p.online--
		p.pushOffline(l)
		if p.arb != nil {
			p.arb.Released(p.name, l.addr, id)
		}
	}
	return true
}

// Stats are the pool's size and its online and offline leases, as
// swanctl --list-pools shows them.
func (p *Pool) Stats() (size uint64, online, offline int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.size, p.online, len(p.byAddr) - p.online
}

// Leases lists the leases, by address.
func (p *Pool) Leases() []Lease {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]Lease, 0, len(p.byAddr))
	for _, l := range p.byAddr {
		out = append(out, Lease{Addr: l.addr, Identity: l.id, Online: l.online > 0})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Addr.Less(out[j].Addr) })
	return out
}

// Restore takes back saved leases into an empty pool (a restart): every
// lease goes in offline, bound to its identity, and goes online again
// when Acquire is called for it (a taken-back IKE SA, or the client
// coming back). Leases outside the pool (its range changed) or given
// twice are refused one by one, named in the error; the rest are taken.
func (p *Pool) Restore(leases []Lease) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.byAddr) != 0 {
		return fmt.Errorf("pool %q: restore into a pool that has leases", p.name)
	}
	sorted := append([]Lease(nil), leases...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Addr.Less(sorted[j].Addr) })
	var errs []error
	for _, s := range sorted {
		a := s.Addr.Unmap()
		off, ok := p.offset(a)
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("lease %v of %q is not in the pool", s.Addr, s.Identity))
			continue
		case p.byAddr[a] != nil:
			errs = append(errs, fmt.Errorf("lease %v given twice", s.Addr))
			continue
		case s.Identity == "":
			errs = append(errs, fmt.Errorf("lease %v has no identity", s.Addr))
			continue
		}
		l := &lease{addr: a, id: s.Identity}
		p.byAddr[a] = l
		p.byID[l.id] = append(p.byID[l.id], l)
		p.pushOffline(l)
		p.take(off)
	}
	if len(errs) > 0 {
		return fmt.Errorf("pool %q: %w", p.name, errors.Join(errs...))
	}
	return nil
}

// TrackChanges makes the pool note the addresses whose identity changes
// (a lease made or given to another identity), for TakeChanges: what a
// journal of the leases must write. Whether a lease is online is not a
// change: a restart restores every lease offline.
func (p *Pool) TrackChanges() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.changes == nil {
		p.changes = map[netip.Addr]struct{}{}
	}
}

// TakeChanges lists the leases of the addresses noted since the last
// call, as they are now, by address, and forgets them.
func (p *Pool) TakeChanges() []Lease {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.changes) == 0 {
		return nil
	}
	out := make([]Lease, 0, len(p.changes))
	for a := range p.changes {
		if l := p.byAddr[a]; l != nil {
			out = append(out, Lease{Addr: l.addr, Identity: l.id, Online: l.online > 0})
		}
	}
	clear(p.changes)
	sort.Slice(out, func(i, j int) bool { return out[i].Addr.Less(out[j].Addr) })
	return out
}

// Unsaved notes the addresses of leases TakeChanges gave that could not
// be saved, for the next TakeChanges.
func (p *Pool) Unsaved(leases []Lease) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range leases {
		p.note(l.Addr)
	}
}

func (p *Pool) note(a netip.Addr) {
	if p.changes != nil {
		p.changes[a] = struct{}{}
	}
}

// take removes an offset from the free ranges.
func (p *Pool) take(off uint64) {
	i := sort.Search(len(p.free), func(i int) bool { return p.free[i].hi > off })
	if i == len(p.free) || p.free[i].lo > off {
		return
	}
	r := p.free[i]
	switch {
	case r.lo == off && r.hi == off+1:
		p.free = append(p.free[:i], p.free[i+1:]...)
	case r.lo == off:
		p.free[i].lo++
	case r.hi == off+1:
		p.free[i].hi--
	default:
		p.free = append(p.free[:i+1], p.free[i:]...)
		p.free[i] = span{r.lo, off}
		p.free[i+1] = span{off + 1, r.hi}
	}
}

func (p *Pool) use(l *lease) {
	if l.online == 0 {
		p.unlinkOffline(l)
		p.online++
	}
	l.online++
}

func (p *Pool) forgetID(l *lease) {
	list := p.byID[l.id]
	for i, x := range list {
		if x == l {
			list = append(list[:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(p.byID, l.id)
	} else {
		p.byID[l.id] = list
	}
}

func (p *Pool) pushOffline(l *lease) {
	l.prev, l.next = p.offTail, nil
	if p.offTail != nil {
		p.offTail.next = l
	} else {
		p.offHead = l
	}
	p.offTail = l
}

func (p *Pool) unlinkOffline(l *lease) {
	if l.prev != nil {
		l.prev.next = l.next
	} else if p.offHead == l {
		p.offHead = l.next
	}
	if l.next != nil {
		l.next.prev = l.prev
	} else if p.offTail == l {
		p.offTail = l.prev
	}
	l.prev, l.next = nil, nil
}

// at is the address off addresses after the first.
func (p *Pool) at(off uint64) netip.Addr {
	v := new(big.Int).Add(toInt(p.first), new(big.Int).SetUint64(off))
	return fromInt(v, p.first.Is4())
}

func (p *Pool) offset(a netip.Addr) (uint64, bool) {
	if !a.IsValid() || a.Is4() != p.first.Is4() || a.Less(p.first) {
		return 0, false
	}
	d := new(big.Int).Sub(toInt(a), toInt(p.first))
	if !d.IsUint64() || d.Uint64() >= p.size {
		return 0, false
	}
	return d.Uint64(), true
}

func toInt(a netip.Addr) *big.Int { return new(big.Int).SetBytes(a.AsSlice()) }

func fromInt(v *big.Int, is4 bool) netip.Addr {
	n := 16
	if is4 {
		n = 4
	}
	b := v.FillBytes(make([]byte, n))
	a, _ := netip.AddrFromSlice(b)
	return a
}

// lastOf is the last address of the prefix of net with hostBits host bits.
func lastOf(net netip.Addr, hostBits int) netip.Addr {
	v := toInt(net)
	v.Or(v, new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), uint(hostBits)), big.NewInt(1)))
	return fromInt(v, net.Is4())
}
