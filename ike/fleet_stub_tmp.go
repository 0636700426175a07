package ike

// TEMPORARY stub of helper B's engine API (fleet-spec.md), deleted before
// fleet-engine is merged.

import (
	"net/netip"
)

func (e *Engine) TakeOver(st EngineState, seq func(SAID) (out, in uint64)) []*ImportError { return nil }
func (e *Engine) Release(match func(local netip.Addr) bool) EngineState                   { return EngineState{} }
