package ike

import (
	"encoding/binary"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"time"

	"github.com/xdpsec/xdpsec/ike/transform"
)

// childSA is one CHILD_SA: a pair of ESP SAs and the policies that send
// traffic into them. Guarded by the engine lock.
type childSA struct {
	ike   *ikeSA
	cfg   *childConfig
	id    uint32 // unique ID, the {1} in logs
	state ChildSAState

	spiIn, spiOut uint32
	proposal      transform.Proposal
	suite         transform.ChildSuite
	mode          Mode
	localTS       []TrafficSelector
	remoteTS      []TrafficSelector
	reqid         *reqidEntry
	inInstalled   bool
	outInstalled  bool
	installedAt   time.Time
	// lifetime is what the SAs were installed with: the configured soft
	// limits minus their jitter, drawn once per CHILD_SA.
	lifetime Lifetime
	// rekeyed is set once another CHILD_SA replaced this one: its inbound
	// SA then outlives it by DeleteRekeyedDelay.
	rekeyed bool
	// replaces is, for the responder of a rekey, the CHILD_SA this one
	// replaces; pendingOut is our outbound SA, held back until the peer
	// deletes that one. Sending on it earlier would race the peer's
	// installation of its inbound SA, which happens only when our
	// response arrives (charon installs it at the same point).
	replaces   *childSA
	pendingOut *SA

	rekeyTimer, expireTimer Timer
}

func (sa *ikeSA) newChild(cfg *childConfig) *childSA {
	sa.e.nextChildID++
	return &childSA{ike: sa, cfg: cfg, id: sa.e.nextChildID, mode: cfg.Mode}
}

func (c *childSA) name() string { return fmt.Sprintf("%s{%d}", c.cfg.Name, c.id) }

func (c *childSA) setState(s ChildSAState) {
	if s == ChildSARekeyed {
		c.rekeyed = true
	}
	if c.state != s {
		c.ike.log.Debug(fmt.Sprintf("CHILD_SA %s state change: %s => %s", c.name(), c.state, s))
		c.state = s
	}
}

// allocateSPI reserves our inbound SPI.
func (c *childSA) allocateSPI() error {
	spi, err := c.ike.e.cfg.Dataplane.AllocateSPI(c.ike.remote.Addr(), c.ike.local.Addr())
	if err != nil {
		return fmt.Errorf("allocating SPI failed: %w", err)
	}
	c.spiIn = spi
	return nil
}

func (c *childSA) encap(inbound bool) *Encap {
	sa := c.ike
	if !sa.useNATT() {
		return nil
	}
	if inbound {
		return &Encap{SrcPort: sa.remote.Port(), DstPort: sa.local.Port()}
	}
	return &Encap{SrcPort: sa.local.Port(), DstPort: sa.remote.Port()}
}

func (c *childSA) esp(inbound bool, keys transform.SAKeys) *SA {
	sa := c.ike
	s := &SA{
		Inbound: inbound, Mode: c.mode, Encap: c.encap(inbound), ESN: c.suite.ESN == transform.ESN,
		Encr: c.suite.Encr, EncrBits: c.suite.EncrKeyBits, EncrKey: keys.Encr,
		Integ: c.suite.Integ, IntegKey: keys.Integ,
		Lifetime: c.lifetime,
		ReqID:    c.reqid.reqid,
	}
	if !inbound && c.cfg.RandTime == 0 {
		// Without jitter both directions would expire at once: the
		// inbound SA's soft expiry alone triggers the rekey (as charon).
		s.Lifetime.SoftTime = 0
	}
	if inbound {
		s.SAID = SAID{Dst: sa.local.Addr(), SPI: c.spiIn}
		s.Src = sa.remote.Addr()
		s.Replay = c.cfg.ReplayWindow
		s.IfID = c.cfg.IfIDIn
	} else {
		s.SAID = SAID{Dst: sa.remote.Addr(), SPI: c.spiOut}
		s.Src = sa.local.Addr()
		s.IfID = c.cfg.IfIDOut
	}
	if c.mode == ModeTransport {
		s.Selectors = append(append([]TrafficSelector(nil), c.localTS...), c.remoteTS...)
	}
	return s
}

// install puts both SAs and the policies into the dataplane and zeroes
// the keys. exchangeInitiator says whether we initiated the exchange that
// created the CHILD_SA, which orders its keys (RFC 7296 section 2.17).
func (c *childSA) install(keys *transform.ChildKeys, exchangeInitiator bool) error {
	defer keys.Zero()
	sa, dp := c.ike, c.ike.e.cfg.Dataplane
	c.setState(ChildSAInstalling)
	c.lifetime = c.cfg.lifetimeWithJitter(sa.e)
	c.reqid = sa.e.reqids.acquire(c)
	in, out := c.esp(true, keys.Inbound(exchangeInitiator)), c.esp(false, keys.Outbound(exchangeInitiator))
	if err := dp.AddSA(in); err != nil {
		return fmt.Errorf("unable to install inbound SA: %w", err)
	}
	c.inInstalled = true
	if c.replaces != nil {
		out.EncrKey, out.IntegKey = slices.Clone(out.EncrKey), slices.Clone(out.IntegKey)
		c.pendingOut = out
	} else {
		if err := dp.AddSA(out); err != nil {
			return fmt.Errorf("unable to install outbound SA: %w", err)
		}
		c.outInstalled = true
	}
	if err := sa.e.reqids.installPolicies(c); err != nil {
		return fmt.Errorf("unable to install policies: %w", err)
	}
	c.installedAt = sa.e.clock.Now()
	c.setState(ChildSAInstalled)
	c.scheduleRekey()
	return nil
}

// installOutbound installs the outbound SA a rekey responder held back:
// the peer deletes the CHILD_SA this one replaces, so it has installed
// its inbound SA for ours.
func (c *childSA) installOutbound() {
	out := c.pendingOut
	if out == nil {
		return
	}
	c.pendingOut = nil
	c.replaces = nil
	defer zeroSAKeys(out)
	if err := c.ike.e.cfg.Dataplane.AddSA(out); err != nil {
		c.ike.log.Info(fmt.Sprintf("unable to install outbound SA of CHILD_SA %s: %v", c.name(), err))
		return
	}
	c.outInstalled = true
	c.ike.log.Debug(fmt.Sprintf("outbound SA %.8x of CHILD_SA %s installed", c.spiOut, c.name()))
}

func zeroSAKeys(s *SA) {
	clear(s.EncrKey)
	clear(s.IntegKey)
}

func (c *childSA) logEstablished() {
	c.ike.log.Info(fmt.Sprintf("CHILD_SA %s established with SPIs %.8x_i %.8x_o and TS %s === %s",
		c.name(), c.spiIn, c.spiOut, formatTS(c.localTS), formatTS(c.remoteTS)))
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
		if c.state == ChildSAInstalled && c.ike.state == IKESAEstablished {
			c.ike.tm.queue(newChildRekey(c.ike, true, c))
			c.ike.tm.initiate()
		}
	})
	c.expireTimer = c.ike.e.afterFunc(c.cfg.LifeTime, func() {
		if c.state != ChildSADestroying && c.ike.state != IKESADestroying {
			c.ike.log.Info(fmt.Sprintf("CHILD_SA %s expired, deleting", c.name()))
			c.expire()
		}
	})
}

// updateAddresses follows a changed NAT mapping in the installed SAs.
func (c *childSA) updateAddresses() {
	if c.state != ChildSAInstalled && c.state != ChildSARekeying {
		return
	}
	dp := c.ike.e.cfg.Dataplane
	in, out := c.esp(true, transform.SAKeys{}), c.esp(false, transform.SAKeys{})
	if err := dp.UpdateSA(in); err != nil {
		c.ike.log.Info(fmt.Sprintf("updating inbound SA of CHILD_SA %s failed: %v", c.name(), err))
	}
	if p := c.pendingOut; p != nil {
		p.SAID, p.Src, p.Encap = out.SAID, out.Src, out.Encap
		return
	}
	if err := dp.UpdateSA(out); err != nil {
		c.ike.log.Info(fmt.Sprintf("updating outbound SA of CHILD_SA %s failed: %v", c.name(), err))
	}
}

// destroy removes the SAs from the dataplane, releases the policies if no
// other CHILD_SA uses them, and forgets the CHILD_SA.
func (c *childSA) destroy() {
	if c.state == ChildSADestroying {
		return
	}
	c.setState(ChildSADestroying)
	sa, dp := c.ike, c.ike.e.cfg.Dataplane
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
	if c.pendingOut != nil {
		zeroSAKeys(c.pendingOut)
		c.pendingOut = nil
	}
	c.replaces = nil
	if c.spiIn != 0 {
		id := SAID{Dst: sa.local.Addr(), SPI: c.spiIn}
		if c.rekeyed && c.inInstalled && sa.state != IKESADestroying && sa.e.cfg.DeleteRekeyedDelay > 0 {
			sa.e.retire(id, sa.log)
		} else if err := dp.DeleteSA(id); err != nil && c.inInstalled {
			// Also releases an SPI allocated for a CHILD_SA never installed.
			sa.log.Info(fmt.Sprintf("unable to delete inbound SA %.8x: %v", c.spiIn, err))
		}
	}
	if c.outInstalled {
		if err := dp.DeleteSA(SAID{Dst: sa.remote.Addr(), SPI: c.spiOut}); err != nil {
			sa.log.Info(fmt.Sprintf("unable to delete outbound SA %.8x: %v", c.spiOut, err))
		}
	}
	if c.reqid != nil {
		sa.e.reqids.release(c)
		c.reqid = nil
	}
	sa.removeChild(c)
}

// retire removes an inbound SA of a deleted rekeyed CHILD_SA after
// DeleteRekeyedDelay: the peer may have sent on it until it received our
// DELETE (or sent its own), and those packets are still on their way.
func (e *Engine) retire(id SAID, log *slog.Logger) {
	if t := e.retired[id]; t != nil {
		t.Stop()
	}
	e.retired[id] = e.afterFunc(e.cfg.DeleteRekeyedDelay, func() {
		delete(e.retired, id)
		if err := e.cfg.Dataplane.DeleteSA(id); err != nil {
			log.Info(fmt.Sprintf("unable to delete inbound SA %.8x: %v", id.SPI, err))
		}
	})
}

// removeRetired removes the retired inbound SAs at once (the engine
// stops).
func (e *Engine) removeRetired() {
	for id, t := range e.retired {
		t.Stop()
		delete(e.retired, id)
		if err := e.cfg.Dataplane.DeleteSA(id); err != nil {
			e.log.Info(fmt.Sprintf("unable to delete inbound SA %.8x: %v", id.SPI, err))
		}
	}
}
