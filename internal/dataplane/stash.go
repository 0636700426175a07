package dataplane

import (
	"errors"
	"fmt"
	"time"

	"golang.org/x/sys/unix"

	"github.com/xdpsec/xdpsec/ike"
	"github.com/xdpsec/xdpsec/maps"
	"github.com/xdpsec/xdpsec/maps/xfrm"
)

// Stash is xdp_wan's stash of packets for pending SPIs: the queue
// (maps.Stash) and the kernel's way to take a frame back (loader's
// StashRunner). PinnedStash is the real one, tests fake it.
type Stash interface {
	// Drain pops up to max frames, oldest first.
	Drain(max int) ([]maps.StashedFrame, error)
	// Push puts a frame back (its SA is still pending).
	Push(f maps.StashedFrame) error
	// Capacity is how many frames the queue holds.
	Capacity() int
	// Inject hands a frame to the stack as received where it was.
	Inject(f maps.StashedFrame) error
	// Expire drops a frame, counted.
	Expire(f maps.StashedFrame) error
}

// StashRunner is what PinnedStash needs of the loader's StashRunner.
type StashRunner interface {
	Inject(ifindex, rxQueue uint32, frame []byte) error
	Expire(frame []byte) error
}

// PinnedStash adapts the pinned stash map and the loader's stash
// programs to Stash.
type PinnedStash struct {
	Set    *maps.Set
	Runner StashRunner
}

func (s PinnedStash) Drain(max int) ([]maps.StashedFrame, error) { return s.Set.Stash.Drain(max) }
func (s PinnedStash) Push(f maps.StashedFrame) error             { return s.Set.Stash.Push(f) }
func (s PinnedStash) Capacity() int                              { return s.Set.Stash.Capacity() }
func (s PinnedStash) Inject(f maps.StashedFrame) error {
	return s.Runner.Inject(f.Ifindex, f.RxQueue, f.Frame)
}
func (s PinnedStash) Expire(f maps.StashedFrame) error { return s.Runner.Expire(f.Frame) }

const (
	// stashMaxAge is how long a stashed packet waits for its SA. A peer
	// that sends on a new CHILD_SA at once does so a round trip before
	// its response can have been processed here. That is milliseconds on
	// an idle gateway, but a loaded one (a burst of establishments queued
	// ahead of the response, a slow CPU) takes seconds to verify an
	// IKE_AUTH and install: a stashed echo lost after 1 s was seen on a
	// one-CPU guest. Three seconds keeps such packets; one older than
	// that its sender has most likely sent again.
	stashMaxAge = 3 * time.Second
	// pendingMaxAge is when an SPI allocated and neither installed nor
	// given back is looked at again: the kernel's larval SA of
	// XFRM_MSG_ALLOCSPI lives net.core.xfrm_acq_expires (30 s by
	// default), and once it is gone the SPI's pending entry goes too.
	pendingMaxAge = time.Minute
	// sweepEvery bounds how often sweepPending walks the pending SPIs.
	sweepEvery = 10 * time.Second
	// redrainAfter is when the stash is drained again after an inbound SA
	// came in.
	redrainAfter = 50 * time.Millisecond
)

// monotonic is CLOCK_MONOTONIC, the clock of bpf_ktime_get_ns.
func monotonic() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}

// ikeProto is the engine's name for a BPF SA table protocol.
func ikeProto(p maps.SAProto) ike.SAProto {
	if p == maps.SAProtoAH {
		return ike.SAProtoAH
	}
	return ike.SAProtoESP
}

// drainStash empties the stash: packets of SAs that are in now go to the
// stack, those of SPIs still pending and younger than stashMaxAge go
// back, the rest are dropped, counted as stash_expired. Called with d.mu
// held, after an inbound SA became active.
func (d *KernelDataplane) drainStash() {
	frames, err := d.stash.Drain(d.stash.Capacity())
	if err != nil {
		d.log.Warn(fmt.Sprintf("reading the stash failed: %v", err))
	}
	if len(frames) == 0 {
		return
	}
	now := monotonic()
	var injected, held, expired, failed int
	var firstErr error
	for _, f := range frames {
		id := ike.SAID{Dst: f.Dst, SPI: f.SPI, Proto: ikeProto(f.Proto)}
		if inst := d.sas[id]; inst != nil && inst.inbound {
			if err := d.stash.Inject(f); err != nil {
				failed++
				firstErr = firstOf(firstErr, err)
				d.stash.Expire(f)
				continue
			}
			injected++
			continue
		}
		if _, ok := d.pending[id]; ok && now-f.Stashed < stashMaxAge {
			if err := d.stash.Push(f); err == nil {
				held++
				continue
			} else if !errors.Is(err, maps.ErrStashFull) {
				firstErr = firstOf(firstErr, err)
			}
		}
		if err := d.stash.Expire(f); err != nil {
			firstErr = firstOf(firstErr, err)
		}
		expired++
	}
	d.log.Debug(fmt.Sprintf("stash: %d packets handed to the stack, %d held for pending SPIs, %d dropped (SA not in within %v)",
		injected, held, expired, stashMaxAge))
	if firstErr != nil {
		d.log.Warn(fmt.Sprintf("stash: %d packets could not be handed to the stack (dropped, counted as stash_expired): %v", failed, firstErr))
	}
}

// drainAgainSoon drains the stash once more redrainAfter from now: a
// packet xdp_wan found pending just before the slot became active may be
// pushed after the drain that followed. Called with d.mu held.
func (d *KernelDataplane) drainAgainSoon() {
	if d.redrain != nil {
		d.redrain.Reset(redrainAfter)
		return
	}
	d.redrain = time.AfterFunc(redrainAfter, func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		if !d.closed {
			d.drainStash()
		}
	})
}

func firstOf(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

// sweepPending forgets SPIs allocated long ago and never installed nor
// given back whose larval kernel SA has expired: their pending entry
// leaves the BPF SA table with it. Called with d.mu held.
func (d *KernelDataplane) sweepPending() {
	now := time.Now()
	if now.Sub(d.lastSweep) < sweepEvery {
		return
	}
	d.lastSweep = now
	for id, p := range d.pending {
		if now.Sub(p.at) < pendingMaxAge {
			continue
		}
		if _, err := d.kernel.GetState(xfrm.SAID{Dst: id.Dst, SPI: id.SPI, Proto: xfrmProto(id.Proto)}); !errors.Is(err, xfrm.ErrNoSA) {
			continue
		}
		if p.slot {
			if err := d.bpf.DeleteSA(mapsProto(id.Proto), id.SPI, id.Dst); err != nil && !errors.Is(err, maps.ErrNoSA) {
				d.log.Warn(fmt.Sprintf("removing pending SPI %.8x from the BPF SA table failed: %v", id.SPI, err))
				continue
			}
		}
		d.log.Debug(fmt.Sprintf("SPI %.8x was allocated %v ago and never installed; its larval SA is gone, releasing it", id.SPI, now.Sub(p.at).Round(time.Second)))
		delete(d.pending, id)
	}
	if d.stash != nil {
		// Packets for SPIs that never came in would otherwise wait for
		// the next SA to be installed.
		d.drainStash()
	}
}

// AdoptPending takes over the pending SPIs a previous daemon left in the
// BPF SA table (it was killed between allocating an SPI and installing
// its SA): one whose kernel SA is gone leaves the table, one whose larval
// SA is still there is released with it (sweepPending), and one whose
// kernel SA is complete (killed between the two steps of AddSA) is made
// active, so that its packets reach that SA.
func (d *KernelDataplane) AdoptPending() error {
	sas, err := d.bpf.PendingSAs()
	if err != nil {
		return fmt.Errorf("BPF SA table: %w", err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	var gone, larval, active int
	var errs []error
	for _, sa := range sas {
		id := ike.SAID{Dst: sa.Dst, SPI: sa.SPI, Proto: ikeProto(sa.Proto)}
		if _, ok := d.pending[id]; ok {
			continue
		}
		info, err := d.kernel.GetState(xfrm.SAID{Dst: sa.Dst, SPI: sa.SPI, Proto: xfrmProto(id.Proto)})
		switch {
		case errors.Is(err, xfrm.ErrNoSA):
			if err := d.bpf.DeleteSA(sa.Proto, sa.SPI, sa.Dst); err != nil && !errors.Is(err, maps.ErrNoSA) {
				errs = append(errs, err)
			}
			gone++
		case err != nil:
			errs = append(errs, err)
		case info.Larval:
			d.pending[id] = pendingSPI{cpu: sa.CPU, at: time.Now(), slot: true}
			larval++
		default:
			sa.Pending = false
			if err := d.bpf.PutSA(sa); err != nil {
				errs = append(errs, err)
			}
			active++
		}
	}
	if len(sas) > 0 {
		d.log.Info(fmt.Sprintf("%d SPIs left pending by a previous daemon: %d released, %d still larval (released when their kernel SA expires), %d made active",
			len(sas), gone, larval, active))
	}
	return errors.Join(errs...)
}
