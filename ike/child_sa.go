package ike

import (
	"fmt"
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

	rekeyTimer, expireTimer Timer
}

func (sa *ikeSA) newChild(cfg *childConfig) *childSA {
	sa.e.nextChildID++
	return &childSA{ike: sa, cfg: cfg, id: sa.e.nextChildID, mode: cfg.mode}
}

func (c *childSA) name() string { return fmt.Sprintf("%s{%d}", c.cfg.cfg.Name, c.id) }

func (c *childSA) setState(s ChildSAState) {
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
		Lifetime: Lifetime{HardTime: c.cfg.lifeTime, SoftTime: c.cfg.rekeyTime},
		ReqID:    c.reqid.reqid,
	}
	if inbound {
		s.SAID = SAID{Dst: sa.local.Addr(), SPI: c.spiIn}
		s.Src = sa.remote.Addr()
		s.Replay = c.cfg.replayWindow
		s.IfID = c.cfg.cfg.IfIDIn
	} else {
		s.SAID = SAID{Dst: sa.remote.Addr(), SPI: c.spiOut}
		s.Src = sa.local.Addr()
		s.IfID = c.cfg.cfg.IfIDOut
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
	c.reqid = sa.e.reqids.acquire(c)
	in, out := c.esp(true, keys.Inbound(exchangeInitiator)), c.esp(false, keys.Outbound(exchangeInitiator))
	if err := dp.AddSA(in); err != nil {
		return fmt.Errorf("unable to install inbound SA: %w", err)
	}
	c.inInstalled = true
	if err := dp.AddSA(out); err != nil {
		return fmt.Errorf("unable to install outbound SA: %w", err)
	}
	c.outInstalled = true
	if err := sa.e.reqids.installPolicies(c); err != nil {
		return fmt.Errorf("unable to install policies: %w", err)
	}
	c.installedAt = sa.e.clock.Now()
	c.setState(ChildSAInstalled)
	c.scheduleRekey()
	return nil
}

func (c *childSA) logEstablished() {
	c.ike.log.Info(fmt.Sprintf("CHILD_SA %s established with SPIs %.8x_i %.8x_o and TS %s === %s",
		c.name(), c.spiIn, c.spiOut, formatTS(c.localTS), formatTS(c.remoteTS)))
}

func (c *childSA) scheduleRekey() {
	rekey := c.cfg.rekeyTime
	if r := c.cfg.randTime; r > 0 {
		rekey -= time.Duration(randUint32(c.ike.e)%uint32(r/time.Second+1)) * time.Second
	}
	c.rekeyTimer = c.ike.e.afterFunc(rekey, func() {
		if c.state == ChildSAInstalled && c.ike.state == IKESAEstablished {
			c.ike.tm.queue(newChildRekey(c.ike, true, c))
			c.ike.tm.initiate()
		}
	})
	c.expireTimer = c.ike.e.afterFunc(c.cfg.lifeTime, func() {
		if c.state != ChildSADestroying && c.ike.state != IKESADestroying {
			c.ike.log.Info(fmt.Sprintf("CHILD_SA %s expired, deleting", c.name()))
			c.ike.tm.queue(newChildDelete(c.ike, true, c))
			c.ike.tm.initiate()
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
	for _, t := range []Timer{c.rekeyTimer, c.expireTimer} {
		if t != nil {
			t.Stop()
		}
	}
	if c.spiIn != 0 {
		// Also releases an SPI allocated for a CHILD_SA never installed.
		if err := dp.DeleteSA(SAID{Dst: sa.local.Addr(), SPI: c.spiIn}); err != nil && c.inInstalled {
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
