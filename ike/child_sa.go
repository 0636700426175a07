package ike

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/xdpsec/xdpsec/ike/transform"
)

// childSA is one IKEv2 CHILD_SA: a pair of ESP SAs and the policies
// that send traffic into them (kernelChild). Guarded by the engine lock.
type childSA struct {
	kernelChild[*ikeSA]

	proposal transform.Proposal
	// replaces is, for the responder of a rekey, the CHILD_SA this one
	// replaces; until the peer deletes that one, our outbound SA is held
	// back (holdOutbound). Sending on it earlier would race the peer's
	// installation of its inbound SA, which happens only when our
	// response arrives (charon installs it at the same point).
	replaces *childSA
	// createdAt is when the exchange that negotiates the CHILD_SA began,
	// zero for one taken back (observeInstalled).
	createdAt time.Time

	rekeyTimer, expireTimer Timer
}

func (sa *ikeSA) newChild(cfg *childConfig) *childSA {
	sa.e.nextChildID++
	return &childSA{kernelChild: kernelChild[*ikeSA]{ike: sa, cfg: cfg, id: sa.e.nextChildID, mode: cfg.Mode},
		createdAt: sa.e.clock.Now()}
}

func (c *childSA) setState(s ChildSAState) {
	if s == ChildSARekeyed {
		c.rekeyed = true
	}
	if c.state != s {
		if debugOn(c.ike.log) {
			debugf(c.ike.log, "CHILD_SA %s state change: %s => %s", c.name(), c.state, s)
		}
		c.state = s
	}
}

// allocateSPI reserves our inbound SPI.
func (c *childSA) allocateSPI() error {
	spi, err := c.ike.allocateSPI(c.proto())
	if err != nil {
		return fmt.Errorf("allocating SPI failed: %w", err)
	}
	c.spiIn = spi
	return nil
}

// setSAOptions sets what the SAs are installed with besides keys and
// addresses: the limits, the configured ones with jitter
// (lifetimeWithJitter), and UDP encapsulation.
func (c *childSA) setSAOptions() {
	c.lifetime = c.cfg.lifetimeWithJitter(c.ike.e)
	// Without jitter both directions would expire at once: the inbound
	// SA's soft expiry alone triggers the rekey (as charon).
	c.outSoftTime = c.cfg.RandTime != 0
	c.encap = c.ike.useNATT()
}

// install puts both SAs and the policies into the dataplane and zeroes
// the keys; a rekey responder holds the outbound SA back (replaces).
// exchangeInitiator says whether we initiated the exchange that created
// the CHILD_SA, which orders its keys (RFC 7296 section 2.17).
func (c *childSA) install(keys *transform.ChildKeys, exchangeInitiator bool) error {
	defer keys.Zero()
	c.setState(ChildSAInstalling)
	c.setSAOptions()
	// As responder, a CHILD_SA whose policies another one already uses
	// (a make-before-break reauthentication, a duplicate) holds its
	// outbound SA back as a rekey's does: the kernel would send on the
	// newest SA of the reqid at once, before the peer has installed its
	// inbound SA on our response.
	overlap := !exchangeInitiator && c.replaces == nil && c.ike.e.reqids.users(c.reqidKey()) > 0
	holdOut := (c.replaces != nil && !c.ike.e.cfg.RekeyOutboundAtOnce) || overlap
	if part, err := c.installSAs(keys.Inbound(exchangeInitiator), keys.Outbound(exchangeInitiator), holdOut); err != nil {
		return fmt.Errorf("unable to install %s: %w", part, err)
	}
	c.installedAt = c.ike.e.clock.Now()
	c.setState(ChildSAInstalled)
	c.scheduleRekey()
	if overlap {
		c.holdUntilOverlapEnds()
	}
	return nil
}

// overlapHold is how long a responder's CHILD_SA that shares its
// policies with another holds its outbound SA back at most: the peer
// installs its inbound SA when our response arrives, and usually deletes
// the other CHILD_SA (its old IKE SA) right after.
const overlapHold = 2 * time.Second

// holdUntilOverlapEnds installs the held outbound SA when another user of
// the policies goes, or after overlapHold.
func (c *childSA) holdUntilOverlapEnds() {
	c.reqid.waiting = append(c.reqid.waiting, overlapWaiter{owner: &c.kernelChild, install: c.installOutbound})
	c.ike.e.afterFunc(overlapHold, func() {
		if c.state == ChildSAInstalled {
			c.installOutbound()
		}
	})
}

// installOutbound installs the outbound SA a rekey responder held back:
// the peer deletes the CHILD_SA this one replaces, so it has installed
// its inbound SA for ours.
func (c *childSA) installOutbound() {
	if c.heldOut == nil {
		return
	}
	c.replaces = nil
	if err := c.addHeldOutbound(); err != nil {
		infof(c.ike.log, "unable to install outbound SA of CHILD_SA %s: %v", c.name(), err)
		return
	}
	if debugOn(c.ike.log) {
		debugf(c.ike.log, "outbound SA %.8x of CHILD_SA %s installed", c.spiOut, c.name())
	}
}

func (c *childSA) logEstablished() {
	// Saved before it is said: a restart takes back every CHILD_SA
	// reported established.
	c.ike.e.saveNow(&c.ike.ikeSACommon)
	if c.ike.log.Enabled(context.Background(), slog.LevelInfo) {
		infof(c.ike.log, "CHILD_SA %s established with SPIs %.8x_i %.8x_o and TS %s === %s",
			c.name(), c.spiIn, c.spiOut, formatTS(c.localTS), formatTS(c.remoteTS))
	}

}

// lifetimeWithJitter draws the soft limits of a new CHILD_SA: each
// configured rekey limit minus a random part of at most its rand_* value,
// as charon's child_cfg get_lifetime() does, so that both ends do not
// rekey at once. Times are drawn in whole seconds.
func (cc *childConfig) lifetimeWithJitter(e *Engine) Lifetime {
	secs := jitter(e, uint64(cc.RekeyTime/time.Second), uint64(min(cc.RandTime, cc.RekeyTime)/time.Second))
	return Lifetime{
		SoftTime:  cc.RekeyTime - time.Duration(uint64(cc.RekeyTime/time.Second)-secs)*time.Second,
		HardTime:  cc.LifeTime,
		SoftBytes: jitter(e, cc.bytes.rekey, cc.bytes.jitter), HardBytes: cc.bytes.life,
		SoftPackets: jitter(e, cc.packets.rekey, cc.packets.jitter), HardPackets: cc.packets.life,
	}
}

// jitter returns rekey minus a random value in [0, j].
func jitter(e *Engine, rekey, j uint64) uint64 {
	if j == 0 {
		return rekey
	}
	b := e.randomBytes(8)
	r := binary.BigEndian.Uint64(b)
	if j == math.MaxUint64 {
		return rekey - r
	}
	return rekey - r%(j+1)
}

func (c *childSA) scheduleRekey() {
	c.rekeyTimer = c.ike.e.afterFunc(c.lifetime.SoftTime, func() {
		// An IKE SA being rekeyed takes the CHILD_SA's rekey into its
		// queue, which the IKE rekey hands to the new IKE SA
		// (moveChildren), as a soft expiry from the kernel does (Expire).
		// Dropped, the CHILD_SA would reach its hard lifetime without a
		// successor: with rand_time, IKE and CHILD_SA rekeys meet often.
		sa := c.ike
		if c.state == ChildSAInstalled && (sa.state == IKESAEstablished || sa.state == IKESARekeying) && !sa.rekeyQueued(c) {
			sa.tm.queue(newChildRekey(sa, true, c))
			sa.tm.initiate()
		}
	})
	c.expireTimer = c.ike.e.afterFunc(c.cfg.LifeTime, func() {
		if c.state != ChildSADestroying && c.ike.state != IKESADestroying {
			infof(c.ike.log, "CHILD_SA %s expired, deleting", c.name())
			c.expire()
		}
	})
}

// destroy removes the SAs from the dataplane, releases the policies if no
// other CHILD_SA uses them, and forgets the CHILD_SA.
func (c *childSA) destroy() {
	if c.state == ChildSADestroying {
		return
	}
	c.notifyDown()
	c.setState(ChildSADestroying)
	sa := c.ike
	c.stopTimers()
	if sa.state != IKESADestroying {
		// The peer deleted (or we delete) the CHILD_SA a rekey we
		// answered replaces: the peer sends on the new one now.
		for _, n := range sa.children {
			if n.replaces == c {
				n.installOutbound()
			}
		}
	}
	c.replaces = nil
	sa.countChild(c)
	c.removeSAs(c.rekeyed)
	sa.removeChild(c)
}
