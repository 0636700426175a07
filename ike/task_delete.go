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
	proto     SAProto  // of spis
	expired   bool     // the CHILD_SA reached its hard lifetime
}

func newChildDelete(sa *ikeSA, initiator bool, child *childSA) *childDelete {
	return &childDelete{sa: sa, initiator: initiator, child: child}
}

// forSPI deletes the peer's half of a CHILD_SA we failed to install.
func (t *childDelete) forSPI(c *childSA) *childDelete {
	t.child = nil
	t.spis, t.proto = []uint32{c.spiIn}, c.proto()
	return t
}

func (t *childDelete) kind() taskKind                 { return taskChildDelete }
func (t *childDelete) exchange() message.ExchangeType { return message.INFORMATIONAL }

func (t *childDelete) build(m *message.Message) error {
	sa := t.sa
	spis, proto := t.spis, t.proto
	if c := t.child; c != nil {
		proto = c.proto()
		if c.state == ChildSADestroying || sa.childByID(c.id) == nil {
			return fmt.Errorf("CHILD_SA %s already gone", c.name())
		}
		closing := "closing"
		if t.expired {
			closing = "closing expired"
		}
		infof(sa.log, "%s CHILD_SA %s with SPIs %.8x_i %.8x_o and TS %s === %s",
			closing, c.name(), c.spiIn, c.spiOut, formatTS(c.localTS), formatTS(c.remoteTS))

		c.setState(ChildSADeleting)
		spis = append(spis, c.spiIn)
	}
	for _, spi := range spis {
		infof(sa.log, "sending DELETE for %v CHILD_SA with SPI %.8x", proto, spi)
	}
	m.Payloads = append(m.Payloads, &message.Delete{Protocol: wireProto(proto), SPIs: spis})
	return nil
}

func (t *childDelete) process(m *message.Message) error {
	if c := t.child; c != nil {
		c.destroy()
		infof(t.sa.log, "CHILD_SA %s closed", c.name())
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
	infof(sa.log, "deleting IKE_SA %s between %s", sa.name(), sa.ends())
	infof(sa.log, "sending DELETE for IKE_SA %s", sa.name())
	sa.setState(IKESADeleting)
	m.Payloads = append(m.Payloads, &message.Delete{Protocol: message.ProtocolIKE})
	return nil
}

func (t *ikeDelete) process(m *message.Message) error {
	infof(t.sa.log, "IKE_SA %s deleted", t.sa.name())
	return errDestroy
}
