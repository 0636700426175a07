package ike

import (
	"fmt"
)

// Expire takes an SA lifetime expiry reported by the dataplane (the
// kernel's XFRM_MSG_EXPIRE, for byte, packet and time limits alike).
//
// A soft expiry rekeys the CHILD_SA the SA belongs to, unless it is being
// rekeyed or deleted already. A hard expiry means the dataplane has
// removed the SA: the CHILD_SA is deleted, and the peer told with a
// DELETE, as charon does. SAs of no CHILD_SA (one just replaced, say)
// give ErrUnknownSA.
func (e *Engine) Expire(id SAID, hard bool) error {
	e.mu.Lock()
	defer e.unlock()
	if e.closed {
		return ErrClosed
	}
	c, inbound := e.childBySAID(id)
	if c == nil {
		return fmt.Errorf("%w: %v SA %.8x to %s", ErrUnknownSA, id.Proto, id.SPI, id.Dst)
	}
	sa := c.ike
	if !hard {
		infof(sa.log, "creating rekey job for CHILD_SA %v/0x%08x/%s", id.Proto, id.SPI, id.Dst)
		switch {
		case c.state != ChildSAInstalled:
			debugf(sa.log, "CHILD_SA %s is %s, not rekeying it", c.name(), c.state)
		case sa.state != IKESAEstablished && sa.state != IKESARekeying:
			debugf(sa.log, "IKE_SA %s is %s, not rekeying CHILD_SA %s", sa.name(), sa.state, c.name())
		case sa.rekeyQueued(c):
			debugf(sa.log, "CHILD_SA %s is already queued for rekeying", c.name())
		default:
			sa.tm.queue(newChildRekey(sa, true, c))
			sa.tm.initiate()
		}
		return nil
	}
	infof(sa.log, "creating delete job for CHILD_SA %v/0x%08x/%s", id.Proto, id.SPI, id.Dst)
	// The dataplane removed the SA itself.
	if inbound {
		c.inInstalled = false
	} else {
		c.outInstalled = false
	}
	c.expire()
	return nil
}

// childBySAID finds the CHILD_SA one of whose SAs this is.
func (e *Engine) childBySAID(id SAID) (c *childSA, inbound bool) {
	for _, c := range e.spiIdx[id.SPI] {
		sa := c.ike
		if sa.childByID(c.id) != c {
			continue
		}
		if c.spiIn == id.SPI && sa.local.Addr() == id.Dst && c.proto() == id.Proto {
			return c, true
		}
		if c.spiOut == id.SPI && sa.remote.Addr() == id.Dst && c.proto() == id.Proto {
			return c, false
		}
	}
	return nil, false
}

// rekeyQueued reports whether a rekey of c is queued or in flight.
func (sa *ikeSA) rekeyQueued(c *childSA) bool {
	if sa.rekeyFor(c) != nil {
		return true
	}
	for _, t := range sa.tm.queued {
		if r, ok := t.(*childRekey); ok && r.old == c {
			return true
		}
	}
	return false
}

// expire deletes a CHILD_SA that reached its hard lifetime: with an
// INFORMATIONAL DELETE when the IKE SA can still run one, else at once.
func (c *childSA) expire() {
	sa := c.ike
	c.stopTimers()
	switch {
	case c.state == ChildSADeleting || c.state == ChildSADestroying:
		return // a DELETE is under way
	case sa.state == IKESAEstablished || sa.state == IKESARekeying:
		for _, t := range sa.tm.queued {
			if d, ok := t.(*childDelete); ok && d.child == c {
				d.expired = true
				return
			}
		}
		d := newChildDelete(sa, true, c)
		d.expired = true
		sa.tm.queue(d)
		sa.tm.initiate()
	default:
		infof(sa.log, "closing expired CHILD_SA %s with SPIs %.8x_i %.8x_o and TS %s === %s",
			c.name(), c.spiIn, c.spiOut, formatTS(c.localTS), formatTS(c.remoteTS))

		c.destroy()
	}
}
