package ike

// TEMPORARY stub of helper B's engine API (fleet-spec.md), deleted before
// fleet-engine is merged.

import (
	"net/netip"

	"github.com/xdpsec/xdpsec/ike/pool"
)

func (e *Engine) TakeOver(st EngineState, seq func(SAID) (out, in uint64)) []*ImportError { return nil }
func (e *Engine) Release(match func(local netip.Addr) bool) EngineState                   { return EngineState{} }

// StubArbiter stands for pool.Arbiter.
type StubArbiter interface {
	Claim(pool string, addr netip.Addr, id, prev string) (ok bool, holder string, err error)
	Known(pool, id string) (netip.Addr, bool)
}

func StubSetArbiter(p *pool.Pool, a StubArbiter) {}
