package ike

import (
	"fmt"
	"net/netip"
	"runtime/debug"
)

// The panic safety net. A bug met while handling one datagram or timer
// must not take the daemon and every other IKE SA down with it, nor leave
// the SA it happened in half-changed: recoverPanic logs the panic with its
// stack, counts it, destroys that IKE SA with its CHILD_SAs, and then
// takes out of the dataplane what this handling had added and no live
// CHILD_SA owns (a CHILD_SA being made when the panic came is in no list
// destroy walks). The reqid table (with its policies) is recounted from the
// CHILD_SAs that are left.

// dataplaneJournal is the engine's Dataplane: it passes every call on
// and notes the SAs and policies added since the current datagram or
// timer began (handle).
type dataplaneJournal struct {
	Dataplane
	sas      []SAID
	policies []*Policy
}

func (j *dataplaneJournal) AddSA(sa *SA) error {
	err := j.Dataplane.AddSA(sa)
	if err == nil {
		j.sas = append(j.sas, sa.SAID)
	}
	return err
}

func (j *dataplaneJournal) AddPolicy(p *Policy) error {
	err := j.Dataplane.AddPolicy(p)
	if err == nil {
		j.policies = append(j.policies, p)
	}
	return err
}

// handle starts the handling of a datagram or timer of sa (nil: not yet
// known; the dispatch sets it), under the engine lock.
func (e *Engine) handle(sa panicScope) {
	e.handling = sa
	e.dpJournal.sas = e.dpJournal.sas[:0]
	clear(e.dpJournal.policies)
	e.dpJournal.policies = e.dpJournal.policies[:0]
}

// recoverPanic ends the handling of a datagram from a peer (a timer's
// when from is the zero AddrPort); deferred under the engine lock, it is
// the safety net described above. It costs nothing while nothing panics.
func (e *Engine) recoverPanic(from netip.AddrPort) {
	sa := e.handling
	e.handling = nil
	r := recover()
	if r == nil {
		return
	}
	what := "a timer"
	if from.IsValid() {
		what = "a datagram from " + from.String()
	}
	e.stats.Panics++
	where := "no IKE_SA"
	if sa != nil {
		where = "IKE_SA " + sa.name()
	}
	e.log.Error(fmt.Sprintf("BUG: panic while handling %s (%s): %v", what, where, r), "stack", string(debug.Stack()))
	if e.cfg.OnPanic != nil {
		e.cfg.OnPanic(r)
	}
	defer func() {
		if r := recover(); r != nil {
			e.stats.Panics++
			e.log.Error(fmt.Sprintf("BUG: panic while cleaning up after a panic: %v", r), "stack", string(debug.Stack()))
		}
	}()
	if sa != nil {
		e.log.Error(fmt.Sprintf("deleting IKE_SA %s and its CHILD_SAs after the panic", sa.name()))
		sa.destroy()
	}
	e.sweepAfterPanic()
}

// sweepAfterPanic recounts the users of every reqid from the live
// CHILD_SAs of both versions, removes the reqids and policies nobody uses
// any more, and deletes the SAs and policies the interrupted handling
// added that no live CHILD_SA owns.
func (e *Engine) sweepAfterPanic() {
	dp := e.dpJournal.Dataplane
	owned := map[SAID]bool{}
	users := map[*reqidEntry]int{}
	for _, sa := range e.allSAs() {
		for _, c := range sa.children {
			c.noteOwned(owned, users)
		}
	}
	for _, sa := range e.allV1SAs() {
		for _, c := range sa.children {
			c.noteOwned(owned, users)
		}
		for _, q := range sa.quicks {
			owned[SAID{Dst: sa.local.Addr(), SPI: q.spiIn, Proto: q.cfg.proto()}] = true
			if q.child != nil && !q.installed && q.child.reqid != nil {
				users[q.child.reqid]++
			}
		}
	}
	ownedPolicy := map[Policy]bool{}
	for key, r := range e.reqids.byKey {
		r.refs = users[r]
		for _, p := range r.policyList() {
			if r.refs > 0 {
				ownedPolicy[*p] = true
			} else {
				_ = dp.DeletePolicy(p)
			}
		}
		if r.refs == 0 {
			delete(e.reqids.byKey, key)
		}
	}
	for id := range e.retired {
		owned[id] = true
	}
	for _, id := range e.dpJournal.sas {
		if !owned[id] {
			_ = dp.DeleteSA(id)
		}
	}
	for _, p := range e.dpJournal.policies {
		if !ownedPolicy[*p] {
			_ = dp.DeletePolicy(p)
		}
	}
}
