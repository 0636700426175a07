package ike

import (
	"time"
)

// NAT-T keepalives (RFC 3948 section 4): while we are behind a NAT, a
// one-octet 0xFF datagram goes to the peer's NAT-T port whenever nothing
// else was sent to it for KeepAlive, so that the NAT keeps its mapping.
// As charon's send_keepalive(), outbound ESP counts as something sent.

// scheduleKeepAlive arms the keepalive timer d from now (0: a full
// interval), if keepalives are due for this IKE SA.
func (sa *ikeSA) scheduleKeepAlive(d time.Duration) {
	interval := sa.e.cfg.KeepAlive
	if !sa.natLocal || interval < 0 {
		return
	}
	if sa.keepAliveTimer != nil {
		sa.keepAliveTimer.Stop()
	}
	if d <= 0 {
		d = interval
	}
	sa.keepAliveTimer = sa.e.afterFunc(d, sa.keepAlive)
}

func (sa *ikeSA) keepAlive() {
	if sa.state == IKESADestroying || sa.state == IKESARekeyed {
		return
	}
	e := sa.e
	last := sa.lastOutbound
	for _, c := range sa.children {
		if !c.outInstalled {
			continue
		}
		if t := c.lastUsed(false); t.After(last) {
			last = t
		}
	}
	now := e.clock.Now()
	if idle := now.Sub(last); idle < e.cfg.KeepAlive {
		sa.scheduleKeepAlive(e.cfg.KeepAlive - idle)
		return
	}
	debugf(sa.log, "sending keep alive to %s", fmtAddr(sa.remote))
	// Without the non-ESP marker: the peer's NAT-T socket takes it apart
	// from ESP and IKE by its length.
	if err := e.cfg.Sender.Send(Datagram{Local: sa.local, Remote: sa.remote, Data: []byte{0xff}}); err != nil {
		sa.log.Debug("sending keep alive failed", "err", err)
	} else {
		e.stats.KeepAlivesSent++
	}
	sa.lastOutbound = now
	sa.scheduleKeepAlive(0)
}
