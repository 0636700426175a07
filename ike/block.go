package ike

import (
	"fmt"
	"net/netip"
	"time"
)

// Per-source limit of half-open IKE SAs (charon's block_threshold): a
// source address that holds Config.BlockThreshold responder IKE SAs not
// yet established gets no new one; its requests for more (IKEv2
// IKE_SA_INIT, IKEv1 Main and Aggressive Mode first messages) are dropped
// before any state is made, counted in Stats.DroppedBlocked. The count is
// kept per address as SAs come and go (a map lookup per request, not a
// walk of the SAs), and an address leaves the map with its last half-open
// SA, so that a flood from spoofed sources leaves nothing behind.
//
// This is the daemon's own defence: xdp_wan's per-source policer limits
// the rate of such requests, not how many SAs they hold, and is not there
// at all in dry-run or without `xdpsec load`.

// DefaultBlockThreshold is charon's default block_threshold.
const DefaultBlockThreshold = 5

// halfOpenSource is the address a half-open IKE SA is counted under: the
// request's source, IPv4-mapped IPv6 addresses taken as IPv4.
func halfOpenSource(remote netip.AddrPort) netip.Addr { return remote.Addr().Unmap() }

// blocked reports whether src already holds as many half-open IKE SAs as
// it may; if so the request is counted and logged (as charon does, at
// most once a second: a flood would otherwise log each of its datagrams).
func (e *Engine) blocked(src netip.Addr) bool {
	if e.cfg.BlockThreshold < 0 || e.halfOpenBySource[src] < e.cfg.BlockThreshold {
		return false
	}
	e.stats.DroppedBlocked++
	now := e.clock.Now()
	if !e.lastBlockLog.IsZero() && now.Sub(e.lastBlockLog) < time.Second {
		e.blockLogSuppressed++
		return true
	}
	e.lastBlockLog = now
	msg := fmt.Sprintf("ignoring IKE_SA setup from %s, per-IP half-open IKE_SA limit of %d reached", src, e.cfg.BlockThreshold)
	if n := e.blockLogSuppressed; n > 0 {
		e.blockLogSuppressed = 0
		e.log.Info(msg, "suppressed", n)
	} else {
		e.log.Info(msg)
	}
	return true
}

// enterHalfOpenSource counts a new half-open responder IKE SA of src.
func (e *Engine) enterHalfOpenSource(src netip.Addr) {
	e.halfOpenBySource[src]++
}

// leaveHalfOpenSource uncounts one, when it is established or destroyed.
func (e *Engine) leaveHalfOpenSource(src netip.Addr) {
	if n := e.halfOpenBySource[src]; n > 1 {
		e.halfOpenBySource[src] = n - 1
	} else {
		delete(e.halfOpenBySource, src)
	}
}
