package ike

import (
	"github.com/xdpsec/xdpsec/ike/message"
)

// informational answers the peer's INFORMATIONAL requests: deletes,
// liveness checks (empty) and notifies.
type informational struct {
	sa        *ikeSA
	deleteIKE bool
	deleted   []uint32 // our inbound SPIs of the ESP CHILD_SAs the peer closed
	deletedAH []uint32 // and of the AH ones
	// MOBIKE (mobike.go): the peer's COOKIE2 to echo, and the path of an
	// UPDATE_SA_ADDRESSES to answer with NAT detection for.
	cookie2 []byte
	update  *Datagram
}

func newInformational(sa *ikeSA) *informational { return &informational{sa: sa} }

func (t *informational) kind() taskKind                 { return taskInformational }
func (t *informational) exchange() message.ExchangeType { return message.INFORMATIONAL }

func (t *informational) process(m *message.Message) error {
	sa := t.sa
	for _, p := range m.Payloads {
		switch p := p.(type) {
		case *message.Delete:
			switch p.Protocol {
			case message.ProtocolIKE:
				infof(sa.log, "received DELETE for IKE_SA %s", sa.name())
				t.deleteIKE = true
				sa.ending(EndPeerDeleted)
				var cfgs []*childConfig
				for _, c := range sa.children {
					if c.state == ChildSAInstalled || c.state == ChildSARekeying {
						cfgs = append(cfgs, c.cfg)
					}
				}
				sa.e.trapChildren(sa.conn, cfgs, closeAction, sa.log)
			case message.ProtocolESP, message.ProtocolAH:
				proto, _ := saProtoOfWire(p.Protocol)
				for _, spi := range p.SPIs {
					t.deleteChild(proto, spi)
				}
			}
		case *message.Notify:
			if p.NotifyType == message.REDIRECT {
				t.redirect(p)
				continue
			}
			if p.NotifyType == message.COOKIE2 {
				if len(p.Data) < 8 || len(p.Data) > 64 {
					sa.e.stats.DroppedMOBIKE++
					infof(sa.log, "received COOKIE2 of %d bytes, ignored", len(p.Data))
				} else {
					t.cookie2 = append([]byte(nil), p.Data...)
				}
			}
			if p.NotifyType.IsError() {
				infof(sa.log, "received %v error notify", p.NotifyType)
				if p.NotifyType == message.AUTHENTICATION_FAILED {
					// The initiator refused our authentication.
					t.deleteIKE = true
				}
			}
		}
	}
	if sa.mobike {
		sa.processAddressList(m)
	}
	if findNotify(m, message.UPDATE_SA_ADDRESSES) != nil && !t.deleteIKE {
		d := sa.tm.reqFrom()
		sa.processUpdate(m, d)
		if sa.mobike && !sa.originalInitiator {
			t.update = &d
		}
	}
	if t.deleteIKE {
		// The peer won a rekey collision and deletes the old IKE SA
		// before our rekey was answered: its new IKE SA takes the
		// CHILD_SAs (RFC 7296 section 2.8.2).
		if r, ok := sa.tm.active.(*ikeRekey); ok && r.initiator && r.collision != nil && r.collision.newSA != nil &&
			r.collision.newSA.state == IKESAEstablished {
			sa.moveChildren(r.collision.newSA)
		}
		sa.setState(IKESADeleting)
	}
	return nil
}

func (t *informational) deleteChild(proto SAProto, spi uint32) {
	sa := t.sa
	c := sa.childByOutboundSPI(proto, spi)
	if old := sa.rekeyOf; c == nil && old != nil && old.state != IKESADestroying {
		// The peer's rekey of the old IKE SA won a collision with ours:
		// for the peer, the CHILD_SAs are here already (RFC 7296 section
		// 2.8.2); ours move when the old IKE SA's DELETE comes.
		c = old.childByOutboundSPI(proto, spi)
	}
	if c == nil {
		infof(sa.log, "received DELETE for %v CHILD_SA with SPI %.8x, but no such SA", proto, spi)
		sa.noteDeletedEarly(spi)
		return
	}
	infof(sa.log, "received DELETE for %v CHILD_SA with SPI %.8x", proto, spi)
	// Both ends deleting at once: the responses carry no Delete for the
	// crossing CHILD_SAs (RFC 7296 section 1.4.1).
	if c.state != ChildSADeleting && proto == SAProtoAH {
		t.deletedAH = append(t.deletedAH, c.spiIn)
	} else if c.state != ChildSADeleting {
		t.deleted = append(t.deleted, c.spiIn)
	}
	infof(sa.log, "closing CHILD_SA %s with SPIs %.8x_i %.8x_o and TS %s === %s",
		c.name(), c.spiIn, c.spiOut, formatTS(c.localTS), formatTS(c.remoteTS))

	if c.state == ChildSAInstalled || c.state == ChildSARekeying {
		// Not one the peer's rekey replaced: close_action applies.
		sa.e.trapChildren(sa.conn, []*childConfig{c.cfg}, closeAction, sa.log)
	}
	c.destroy()
	infof(sa.log, "CHILD_SA %s closed", c.name())
	if r := sa.rekeyFor(c); r != nil {
		r.oldGone = true
	}
}

func (t *informational) build(m *message.Message) error {
	if t.deleteIKE {
		infof(t.sa.log, "IKE_SA %s deleted", t.sa.name())
		return errDestroy
	}
	if len(t.deleted) > 0 {
		m.Payloads = append(m.Payloads, &message.Delete{Protocol: message.ProtocolESP, SPIs: t.deleted})
	}
	if len(t.deletedAH) > 0 {
		m.Payloads = append(m.Payloads, &message.Delete{Protocol: message.ProtocolAH, SPIs: t.deletedAH})
	}
	if t.update != nil {
		m.Payloads = append(m.Payloads, t.sa.natdPayloadsFor(t.update.Local, t.update.Remote)...)
	}
	if t.cookie2 != nil {
		m.Payloads = append(m.Payloads, notify(message.COOKIE2, t.cookie2))
	}
	return nil
}

// redirect follows a gateway's REDIRECT of the established IKE SA (RFC
// 5685 section 6): the answer goes out empty, and a new IKE SA is set up
// with the new gateway.
func (t *informational) redirect(n *message.Notify) {
	sa := t.sa
	r, err := message.UnmarshalRedirect(n.Data)
	if err != nil || len(r.Nonce) > 0 {
		sa.log.Info("received invalid REDIRECT notify")
		return
	}
	if sa.state != IKESAEstablished && sa.state != IKESARekeying {
		infof(sa.log, "unable to handle redirect for IKE_SA in state %s", sa.state)
		return
	}
	sa.redirectEstablished(r.Gateway, nil)
}
