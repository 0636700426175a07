package pool

import (
	"errors"
	"fmt"
	"net/netip"
	"sort"
)

// Arbiter makes a pool's leases unique across several pools of the same
// name on several gateways (a fleet). The pool asks it before handing out
// an address, under the pool's lock: its calls must be quick.
type Arbiter interface {
	// Claim leases addr to id fleet-wide, online on this gateway. prev is
	// the identity the address was leased to before (an offline lease
	// taken back), "" for an address never used here or id's own. It
	// returns ok false and the holder (!= "") when another identity holds
	// the address, or id holds it online on another gateway.
	Claim(pool string, addr netip.Addr, id, prev string) (ok bool, holder string, err error)
	// Known is the address id holds in the fleet's pool, if any (a user
	// keeps their address on whichever gateway they land). It must not
	// wait for the network.
	Known(pool, id string) (netip.Addr, bool)
	// Released says id's lease of addr went offline on this gateway: it
	// stays id's, but another gateway may take it back for another
	// identity now.
	Released(pool string, addr netip.Addr, id string)
}

// SetArbiter makes a asked before every lease the pool hands out (nil:
// the pool alone decides). The leases online already (IKE SAs taken back
// before the arbiter was set, or a new arbiter after the old one's etcd
// session expired) are claimed with it at once; the error lists those it
// refuses or could not ask about (they stay online here: their IKE SAs
// exist).
func (p *Pool) SetArbiter(a Arbiter) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.arb = a
	if a == nil {
		return nil
	}
	var online []*lease
	for _, l := range p.byAddr {
		if l.online > 0 {
			online = append(online, l)
		}
	}
	sort.Slice(online, func(i, j int) bool { return online[i].addr.Less(online[j].addr) })
	var errs []error
	for _, l := range online {
		ok, holder, err := a.Claim(p.name, l.addr, l.id, "")
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("%v of %q: %w", l.addr, l.id, err))
		case !ok:
			errs = append(errs, fmt.Errorf("%v online here for %q is %q's in the fleet", l.addr, l.id, holder))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("pool %q: %w", p.name, errors.Join(errs...))
	}
	return nil
}

// acquireFleet is Acquire with an arbiter: the same order of preference
// (the requested address if it is id's, the fleet's address of id, id's
// offline leases, addresses never handed out, offline leases of others
// released longest ago), each one claimed fleet-wide first. An address
// the fleet refuses is recorded as leased (offline) to its holder and the
// next is tried; an arbiter error fails the Acquire.
func (p *Pool) acquireFleet(id string, requested netip.Addr) (netip.Addr, bool, error) {
	// claim asks the arbiter for l's address for id; a refusal gives l
	// to its holder.
	claim := func(l *lease, prev string) (bool, error) {
		ok, holder, err := p.arb.Claim(p.name, l.addr, id, prev)
		if err != nil {
			return false, fmt.Errorf("pool %q: %v: %w", p.name, l.addr, err)
		}
		if !ok && holder != "" && holder != l.id {
			p.reassign(l, holder)
		}
		return ok, nil
	}
	for _, l := range p.byID[id] {
		if l.addr != requested {
			continue
		}
		if l.online > 0 {
			// A reauthentication keeping its address: it is online
			// here, claimed already.
			p.use(l)
			return l.addr, true, nil
		}
		if ok, err := claim(l, ""); err != nil {
			return netip.Addr{}, false, err
		} else if ok {
			p.use(l)
			return l.addr, true, nil
		}
		break
	}
	if a, ok := p.arb.Known(p.name, id); ok {
		if off, in := p.offset(a); in {
			l := p.byAddr[a]
			switch {
			case l == nil:
				ok, holder, err := p.arb.Claim(p.name, a, id, "")
				if err != nil {
					return netip.Addr{}, false, fmt.Errorf("pool %q: %v: %w", p.name, a, err)
				}
				l = &lease{addr: a, id: id}
				if !ok {
					l.id = holder
				}
				p.take(off)
				p.byAddr[a] = l
				p.byID[l.id] = append(p.byID[l.id], l)
				p.note(a)
				if ok {
					p.use(l)
					return a, true, nil
				}
				p.pushOffline(l)
			case l.online == 0:
				prev := ""
				if l.id != id {
					prev = l.id
				}
				ok, err := claim(l, prev)
				if err != nil {
					return netip.Addr{}, false, err
				}
				if ok {
					if l.id != id {
						p.reassign(l, id)
					}
					p.use(l)
					return a, true, nil
				}
			}
		}
	}
	// A copy: a refused claim gives the lease to its holder.
	for _, l := range append([]*lease(nil), p.byID[id]...) {
		if l.online > 0 {
			continue
		}
		if ok, err := claim(l, ""); err != nil {
			return netip.Addr{}, false, err
		} else if ok {
			p.use(l)
			return l.addr, true, nil
		}
	}
	for len(p.free) > 0 {
		off := p.free[0].lo
		a := p.at(off)
		ok, holder, err := p.arb.Claim(p.name, a, id, "")
		if err != nil {
			return netip.Addr{}, false, fmt.Errorf("pool %q: %v: %w", p.name, a, err)
		}
		owner := id
		if !ok {
			if holder == "" {
				return netip.Addr{}, false, fmt.Errorf("pool %q: %v: refused without a holder", p.name, a)
			}
			owner = holder
		}
		p.take(off)
		l := &lease{addr: a, id: owner}
		p.byAddr[a] = l
		p.byID[owner] = append(p.byID[owner], l)
		p.note(a)
		if ok {
			p.use(l)
			return a, false, nil
		}
		// Leased in the fleet: offline here, taken back in turn
		// when the fleet lets go of it.
		p.pushOffline(l)
	}
	var offline []*lease
	for l := p.offHead; l != nil; l = l.next {
		offline = append(offline, l)
	}
	for _, l := range offline {
		if l.online > 0 {
			continue
		}
		prev := l.id
		if prev == id {
			prev = ""
		}
		ok, err := claim(l, prev)
		if err == nil && !ok && l.id != prev && l.id != id {
			// Our record was behind: another gateway gave the address
			// to l.id since. Offline everywhere, it can still be
			// taken back from l.id.
			ok, err = claim(l, l.id)
		}
		if err != nil {
			return netip.Addr{}, false, err
		}
		if ok {
			reused := l.id == id
			if !reused {
				p.reassign(l, id)
			}
			p.use(l)
			return l.addr, reused, nil
		}
	}
	return netip.Addr{}, false, fmt.Errorf("pool %q: %w (%d addresses online here, the rest held in the fleet)", p.name, ErrExhausted, p.online)
}

// reassign gives lease l to identity id.
func (p *Pool) reassign(l *lease, id string) {
	p.forgetID(l)
	l.id = id
	p.byID[id] = append(p.byID[id], l)
	p.note(l.addr)
}
