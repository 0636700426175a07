// Package dataplanetest is an in-memory ike.Dataplane that records what
// the engine installs, for assertions in exchange tests.
package dataplanetest

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"

	"github.com/xdpsec/xdpsec/ike"
)

// ErrNotFound is returned for SAs and policies not installed.
var ErrNotFound = errors.New("dataplanetest: not found")

// Dataplane records SAs and policies. Its zero value is not usable; call New.
type Dataplane struct {
	mu       sync.Mutex // guards everything below
	nextSPI  uint32
	spis     map[uint32]bool // allocated, not yet installed or installed
	sas      map[ike.SAID]*ike.SA
	policies []*ike.Policy
	stats    map[ike.SAID]ike.SAStats
	vips     map[netip.Addr]ike.VirtualIP
	softDone map[ike.SAID]bool // soft expiry reported
	// Events are the calls in order, for logs of failing tests.
	events     []string
	fault      func(op string)
	migrations int
}

// SetFault makes every later AddSA, UpdateSA and DeleteSA call f with the
// method's name first: tests panic there to see the engine's safety net.
func (d *Dataplane) SetFault(f func(op string)) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.fault = f
}

func (d *Dataplane) injectFault(op string) {
	d.mu.Lock()
	f := d.fault
	d.mu.Unlock()
	if f != nil {
		f(op)
	}
}

// New returns an empty dataplane whose SPIs start at base (so two of them
// in one test hand out recognisable SPIs).
func New(base uint32) *Dataplane {
	return &Dataplane{nextSPI: base, spis: map[uint32]bool{}, sas: map[ike.SAID]*ike.SA{}, stats: map[ike.SAID]ike.SAStats{}, vips: map[netip.Addr]ike.VirtualIP{}, softDone: map[ike.SAID]bool{}}
}

func (d *Dataplane) AllocateSPI(proto ike.SAProto, src, dst netip.Addr) (uint32, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.nextSPI++
	d.spis[d.nextSPI] = true
	if proto == ike.SAProtoAH {
		d.events = append(d.events, fmt.Sprintf("allocate AH %08x", d.nextSPI))
	} else {
		d.events = append(d.events, fmt.Sprintf("allocate %08x", d.nextSPI))
	}
	return d.nextSPI, nil
}

func clone(sa *ike.SA) *ike.SA {
	c := *sa
	c.EncrKey = slices.Clone(sa.EncrKey)
	c.IntegKey = slices.Clone(sa.IntegKey)
	c.Selectors = slices.Clone(sa.Selectors)
	if sa.Encap != nil {
		e := *sa.Encap
		c.Encap = &e
	}
	return &c
}

func (d *Dataplane) AddSA(sa *ike.SA) error {
	d.injectFault("AddSA")
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, dup := d.sas[sa.SAID]; dup {
		return fmt.Errorf("SA %08x exists", sa.SPI)
	}
	d.sas[sa.SAID] = clone(sa)
	d.events = append(d.events, fmt.Sprintf("add SA %08x in=%v", sa.SPI, sa.Inbound))
	return nil
}

func (d *Dataplane) UpdateSA(sa *ike.SA) error {
	d.injectFault("UpdateSA")
	d.mu.Lock()
	defer d.mu.Unlock()
	old, ok := d.sas[sa.SAID]
	if !ok {
		return ErrNotFound
	}
	n := clone(sa)
	n.EncrKey, n.IntegKey = old.EncrKey, old.IntegKey
	d.sas[sa.SAID] = n
	d.events = append(d.events, fmt.Sprintf("update SA %08x", sa.SPI))
	return nil
}

// MigrateSA moves an SA to new addresses, keeping its keys and the
// counters SetStats gave it.
func (d *Dataplane) MigrateSA(from ike.SAID, sa *ike.SA) error {
	d.injectFault("MigrateSA")
	d.mu.Lock()
	defer d.mu.Unlock()
	old, ok := d.sas[from]
	if !ok {
		return ErrNotFound
	}
	if _, taken := d.sas[sa.SAID]; taken && sa.SAID != from {
		return fmt.Errorf("SA %08x exists at %s", sa.SPI, sa.Dst)
	}
	n := clone(sa)
	n.EncrKey, n.IntegKey = old.EncrKey, old.IntegKey
	delete(d.sas, from)
	d.sas[sa.SAID] = n
	if st, ok := d.stats[from]; ok {
		delete(d.stats, from)
		d.stats[sa.SAID] = st
	}
	d.migrations++
	d.events = append(d.events, fmt.Sprintf("migrate SA %08x %s -> %s", sa.SPI, from.Dst, sa.Dst))
	return nil
}

// Migrations counts the MigrateSA calls that moved an SA.
func (d *Dataplane) Migrations() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.migrations
}

func (d *Dataplane) DeleteSA(id ike.SAID) error {
	d.injectFault("DeleteSA")
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.spis, id.SPI)
	sa, ok := d.sas[id]
	if !ok {
		return ErrNotFound
	}
	clear(sa.EncrKey)
	clear(sa.IntegKey)
	delete(d.sas, id)
	d.events = append(d.events, fmt.Sprintf("delete SA %08x", id.SPI))
	return nil
}

func (d *Dataplane) AddPolicy(p *ike.Policy) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	c := *p
	d.policies = append(d.policies, &c)
	d.events = append(d.events, fmt.Sprintf("add policy %s === %s %s", p.Src, p.Dst, p.Dir))
	return nil
}

func (d *Dataplane) DeletePolicy(p *ike.Policy) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	for i, q := range d.policies {
		if *q == *p {
			d.policies = slices.Delete(d.policies, i, i+1)
			d.events = append(d.events, fmt.Sprintf("delete policy %s === %s %s", p.Src, p.Dst, p.Dir))
			return nil
		}
	}
	return ErrNotFound
}

func (d *Dataplane) MigratePolicy(from, to *ike.Policy) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	for i, q := range d.policies {
		if *q == *from {
			c := *to
			d.policies[i] = &c
			d.events = append(d.events, fmt.Sprintf("migrate policy %s === %s %s to %s - %s", to.Src, to.Dst, to.Dir, to.TmplSrc, to.TmplDst))
			return nil
		}
	}
	return ErrNotFound
}

// AddVirtualIP records a virtual IP; adding one there already is no
// error, as in the kernel dataplane.
func (d *Dataplane) AddVirtualIP(v *ike.VirtualIP) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !v.Addr.IsValid() {
		return fmt.Errorf("invalid virtual IP")
	}
	d.vips[v.Addr] = *v
	d.events = append(d.events, fmt.Sprintf("add virtual IP %s", v.Addr))
	return nil
}

func (d *Dataplane) DeleteVirtualIP(v *ike.VirtualIP) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.vips[v.Addr]; !ok {
		return ErrNotFound
	}
	delete(d.vips, v.Addr)
	d.events = append(d.events, fmt.Sprintf("delete virtual IP %s", v.Addr))
	return nil
}

// VirtualIPs returns the installed virtual IPs, sorted.
func (d *Dataplane) VirtualIPs() []netip.Addr {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []netip.Addr
	for a := range d.vips {
		out = append(out, a)
	}
	slices.SortFunc(out, func(a, b netip.Addr) int { return a.Compare(b) })
	return out
}

func (d *Dataplane) QuerySA(id ike.SAID) (ike.SAStats, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.sas[id]; !ok {
		return ike.SAStats{}, ErrNotFound
	}
	return d.stats[id], nil
}

// SetStats sets what QuerySA returns for an SA (traffic in a test).
func (d *Dataplane) SetStats(id ike.SAID, s ike.SAStats) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stats[id] = s
}

// Traffic counts bytes and packets through an installed SA and enforces
// its byte and packet limits as the kernel does: it reports a soft expiry
// the first time a soft limit is reached, and a hard expiry (removing the
// SA) when a hard one is. The caller passes expiries on to the engine
// (Engine.Expire), as the daemon does with XFRM_MSG_EXPIRE.
func (d *Dataplane) Traffic(id ike.SAID, bytes, packets uint64) (soft, hard bool, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	sa, ok := d.sas[id]
	if !ok {
		return false, false, ErrNotFound
	}
	st := d.stats[id]
	st.Bytes += bytes
	st.Packets += packets
	d.stats[id] = st
	lt := sa.Lifetime
	reached := func(v, limit uint64) bool { return limit != 0 && v >= limit }
	if reached(st.Bytes, lt.HardBytes) || reached(st.Packets, lt.HardPackets) {
		clear(sa.EncrKey)
		clear(sa.IntegKey)
		delete(d.sas, id)
		delete(d.spis, id.SPI)
		d.events = append(d.events, fmt.Sprintf("hard expire SA %08x", id.SPI))
		return false, true, nil
	}
	if !d.softDone[id] && (reached(st.Bytes, lt.SoftBytes) || reached(st.Packets, lt.SoftPackets)) {
		d.softDone[id] = true
		d.events = append(d.events, fmt.Sprintf("soft expire SA %08x", id.SPI))
		return true, false, nil
	}
	return false, false, nil
}

// SAs returns copies of the installed SAs, sorted by SPI.
func (d *Dataplane) SAs() []*ike.SA {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []*ike.SA
	for _, sa := range d.sas {
		out = append(out, clone(sa))
	}
	slices.SortFunc(out, func(a, b *ike.SA) int { return int(int64(a.SPI) - int64(b.SPI)) })
	return out
}

// SA returns a copy of the SA with this SPI, or nil.
func (d *Dataplane) SA(spi uint32) *ike.SA {
	for _, sa := range d.SAs() {
		if sa.SPI == spi {
			return sa
		}
	}
	return nil
}

// Policies returns copies of the installed policies.
func (d *Dataplane) Policies() []ike.Policy {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]ike.Policy, len(d.policies))
	for i, p := range d.policies {
		out[i] = *p
	}
	return out
}

// AllocatedSPIs is the number of SPIs allocated and not released.
func (d *Dataplane) AllocatedSPIs() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.spis)
}

// Events returns the calls made so far.
func (d *Dataplane) Events() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.events)
}

// TakeSAs gives d the SAs, SPIs, SPI counter and virtual IPs of from,
// not its policies: the dataplane a restarted engine finds, whose Import
// adds the policies again.
func (d *Dataplane) TakeSAs(from *Dataplane) {
	from.mu.Lock()
	defer from.mu.Unlock()
	d.mu.Lock()
	defer d.mu.Unlock()
	d.nextSPI = from.nextSPI
	for spi := range from.spis {
		d.spis[spi] = true
	}
	for id, sa := range from.sas {
		d.sas[id] = clone(sa)
	}
	for id, st := range from.stats {
		d.stats[id] = st
	}
	for a, v := range from.vips {
		d.vips[a] = v
	}
}
