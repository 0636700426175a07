package ike

import (
	"fmt"

	"github.com/xdpsec/xdpsec/ike/message"
)

// childDelete closes CHILD_SAs with an INFORMATIONAL exchange (RFC 7296
// section 1.4.1):
//
//	Initiator                         Responder
//	-------------------------------------------------------------------
//	HDR, SK {D(ESP, SPI_i)}  -->
//	                             <--  HDR, SK {D(ESP, SPI_r)}
//
// Our inbound SPI names the CHILD_SA; the peer answers with its own.
type childDelete struct {
	sa        *ikeSA
	initiator bool
	child     *childSA
	spis      []uint32 // inbound SPIs of CHILD_SAs we no longer have
}

func newChildDelete(sa *ikeSA, initiator bool, child *childSA) *childDelete {
	return &childDelete{sa: sa, initiator: initiator, child: child}
}

// forSPI deletes the peer's half of a CHILD_SA we failed to install.
func (t *childDelete) forSPI(c *childSA) *childDelete {
	t.child = nil
	t.spis = []uint32{c.spiIn}
	return t
}

func (t *childDelete) kind() taskKind                 { return taskChildDelete }
func (t *childDelete) exchange() message.ExchangeType { return message.INFORMATIONAL }

func (t *childDelete) build(m *message.Message) error {
	sa := t.sa
	spis := t.spis
	if c := t.child; c != nil {
		if c.state == ChildSADestroying || sa.childByID(c.id) == nil {
			return fmt.Errorf("CHILD_SA %s already gone", c.name())
		}
		sa.log.Info(fmt.Sprintf("closing CHILD_SA %s with SPIs %.8x_i %.8x_o and TS %s === %s",
			c.name(), c.spiIn, c.spiOut, formatTS(c.localTS), formatTS(c.remoteTS)))
		c.setState(ChildSADeleting)
		spis = append(spis, c.spiIn)
	}
	for _, spi := range spis {
		sa.log.Info(fmt.Sprintf("sending DELETE for ESP CHILD_SA with SPI %.8x", spi))
	}
	m.Payloads = append(m.Payloads, &message.Delete{Protocol: message.ProtocolESP, SPIs: spis})
	return nil
}

func (t *childDelete) process(m *message.Message) error {
	if c := t.child; c != nil {
		c.destroy()
		t.sa.log.Info(fmt.Sprintf("CHILD_SA %s closed", c.name()))
	}
	return nil
}

func (t *childDelete) failed() {
	if t.child != nil {
		t.child.destroy()
	}
}

// ikeDelete closes the IKE SA and with it all its CHILD_SAs (RFC 7296
// section 1.4.1):
//
//	HDR, SK {D(IKE)}  -->
//	                             <--  HDR, SK {}
type ikeDelete struct {
	sa *ikeSA
}

func newIKEDelete(sa *ikeSA) *ikeDelete { return &ikeDelete{sa: sa} }

func (t *ikeDelete) kind() taskKind                 { return taskIKEDelete }
func (t *ikeDelete) exchange() message.ExchangeType { return message.INFORMATIONAL }

func (t *ikeDelete) build(m *message.Message) error {
	sa := t.sa
	sa.log.Info(fmt.Sprintf("deleting IKE_SA %s between %s[%s]...%s[%s]", sa.name(), sa.local.Addr(), sa.localID, sa.remote.Addr(), sa.remoteID))
	sa.log.Info(fmt.Sprintf("sending DELETE for IKE_SA %s", sa.name()))
	sa.setState(IKESADeleting)
	m.Payloads = append(m.Payloads, &message.Delete{Protocol: message.ProtocolIKE})
	return nil
}

func (t *ikeDelete) process(m *message.Message) error {
	t.sa.log.Info(fmt.Sprintf("IKE_SA %s deleted", t.sa.name()))
	return errDestroy
}

// informational answers the peer's INFORMATIONAL requests: deletes,
// liveness checks (empty) and notifies.
type informational struct {
	sa        *ikeSA
	deleteIKE bool
	deleted   []uint32 // our inbound SPIs of the CHILD_SAs the peer closed
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
				sa.log.Info(fmt.Sprintf("received DELETE for IKE_SA %s", sa.name()))
				t.deleteIKE = true
			case message.ProtocolESP, message.ProtocolAH:
				for _, spi := range p.SPIs {
					t.deleteChild(spi)
				}
			}
		case *message.Notify:
			if p.NotifyType.IsError() {
				sa.log.Info(fmt.Sprintf("received %v error notify", p.NotifyType))
				if p.NotifyType == message.AUTHENTICATION_FAILED && sa.state < IKESAEstablished {
					t.deleteIKE = true
				}
			}
		}
	}
	if t.deleteIKE {
		sa.setState(IKESADeleting)
	}
	return nil
}

func (t *informational) deleteChild(spi uint32) {
	sa := t.sa
	c := sa.childByOutboundSPI(spi)
	if c == nil {
		sa.log.Info(fmt.Sprintf("received DELETE for ESP CHILD_SA with SPI %.8x, but no such SA", spi))
		return
	}
	sa.log.Info(fmt.Sprintf("received DELETE for ESP CHILD_SA with SPI %.8x", spi))
	// Both ends deleting at once: the responses carry no Delete for the
	// crossing CHILD_SAs (RFC 7296 section 1.4.1).
	if c.state != ChildSADeleting {
		t.deleted = append(t.deleted, c.spiIn)
	}
	sa.log.Info(fmt.Sprintf("closing CHILD_SA %s with SPIs %.8x_i %.8x_o and TS %s === %s",
		c.name(), c.spiIn, c.spiOut, formatTS(c.localTS), formatTS(c.remoteTS)))
	c.destroy()
	sa.log.Info(fmt.Sprintf("CHILD_SA %s closed", c.name()))
	if r := sa.rekeyFor(c); r != nil {
		r.oldGone = true
	}
}

func (t *informational) build(m *message.Message) error {
	if t.deleteIKE {
		t.sa.log.Info(fmt.Sprintf("IKE_SA %s deleted", t.sa.name()))
		return errDestroy
	}
	if len(t.deleted) > 0 {
		m.Payloads = append(m.Payloads, &message.Delete{Protocol: message.ProtocolESP, SPIs: t.deleted})
	}
	return nil
}

// dpd is a liveness check (RFC 7296 section 2.4): an empty INFORMATIONAL
// request that the peer must answer.
type dpd struct {
	sa *ikeSA
}

func newDPD(sa *ikeSA, _ bool) *dpd { return &dpd{sa: sa} }

func (t *dpd) kind() taskKind                   { return taskDPD }
func (t *dpd) exchange() message.ExchangeType   { return message.INFORMATIONAL }
func (t *dpd) build(m *message.Message) error   { return nil }
func (t *dpd) process(m *message.Message) error { return nil }
