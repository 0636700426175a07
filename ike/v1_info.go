package ike

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/xdpsec/xdpsec/ike/isakmp"
	"github.com/xdpsec/xdpsec/ike/transform"
)

// Informational exchanges (RFC 2408 section 4.8, RFC 2409 section 5.7):
// one protected message, HASH(1) N/D, with its own message ID and IV,
// never answered (DPD answers R-U-THERE with its own informational).

// sendInformational sends a protected informational message.
func (sa *v1SA) sendInformational(ps []isakmp.Payload) {
	if sa.keys == nil {
		return
	}
	var mid uint32
	for mid == 0 || sa.exchanges[mid] != nil {
		mid = binary.BigEndian.Uint32(sa.e.randomBytes(4))
	}
	_, rest, err := isakmp.MarshalPayloads(ps)
	if err != nil {
		return
	}
	h, err := transform.V1QuickHash1(sa.prf, sa.keys.SKEYIDa, mid, rest)
	if err != nil {
		return
	}
	// An informational exchange is this one message: its IV chain is
	// not kept.
	ex := &v1Exchange{mid: mid}
	sa.sendSealed(ex, sa.header(isakmp.ExchangeInformational, mid), append([]isakmp.Payload{&isakmp.Hash{Data: h}}, ps...), false, nil)
}

// notifyQuick answers a Quick Mode request with an error notify.
func (sa *v1SA) notifyQuick(mid uint32, t isakmp.NotifyType, spi []byte) {
	sa.sendInformational([]isakmp.Payload{&isakmp.Notify{DOI: isakmp.DOIIPsec, Protocol: isakmp.ProtoESP, SPI: spi, NotifyType: t}})
}

// processInformational handles an informational exchange: one message,
// believed only once its HASH(1) verifies (or, unencrypted, before phase 1
// completes: what the peer says then is unauthenticated anyway).
func (sa *v1SA) processInformational(h isakmp.Header, data []byte) {
	if h.Flags&isakmp.FlagEncryption == 0 {
		m, err := isakmp.Unmarshal(data)
		if err != nil {
			sa.e.stats.DroppedMalformed++
			return
		}
		if sa.state == IKESAEstablished {
			sa.e.stats.DroppedUnexpected++
			sa.log.Info("ignoring unprotected informational message for an established IKE_SA")
			return
		}
		sa.accept()
		sa.log.Info("parsed " + v1Summary(h, true, m.Payloads))
		for _, n := range isakmp.All[*isakmp.Notify](m.Payloads) {
			infof(sa.log, "received %v error notify", n.NotifyType)
			if n.NotifyType < 16384 {
				sa.destroy()
			}
		}
		return
	}
	// Informational exchanges are one message each: the IV derives from
	// phase 1's and the message ID, and nothing of it is kept.
	ps, plain, _, err := sa.open(h, data, &v1Exchange{mid: h.MessageID})
	if err != nil {
		sa.e.stats.DroppedAuthentication++
		infof(sa.log, "could not decrypt informational message %d: %v", h.MessageID, err)
		return
	}
	hp, ok := ps[0].(*isakmp.Hash)
	if !ok {
		sa.e.stats.DroppedAuthentication++
		sa.log.Info("informational message without HASH first, ignored")
		return
	}
	want, _ := transform.V1QuickHash1(sa.prf, sa.keys.SKEYIDa, h.MessageID, plain[min(4+len(hp.Data), len(plain)):])
	if !bytes.Equal(want, hp.Data) {
		sa.e.stats.DroppedAuthentication++
		sa.log.Info("received HASH payload does not match, informational ignored")
		return
	}
	sa.accept()
	sa.log.Info("parsed " + v1Summary(h, true, ps))
	for _, p := range ps[1:] {
		switch p := p.(type) {
		case *isakmp.Notify:
			sa.processNotify(p)
		case *isakmp.Delete:
			sa.processDelete(p)
		}
		if sa.deleted {
			return
		}
	}
}

func (sa *v1SA) processNotify(n *isakmp.Notify) {
	switch n.NotifyType {
	case isakmp.DPDRUThere:
		if len(n.Data) == 4 {
			sa.sendInformational([]isakmp.Payload{&isakmp.Notify{DOI: isakmp.DOIIPsec, Protocol: isakmp.ProtoISAKMP,
				SPI: sa.cookies(), NotifyType: isakmp.DPDRUThereAck, Data: n.Data}})
		}
	case isakmp.DPDRUThereAck:
		if len(n.Data) == 4 && binary.BigEndian.Uint32(n.Data) == sa.dpdSeq {
			debugf(sa.log, "received DPD R_U_THERE_ACK %d", sa.dpdSeq)
		}
	case isakmp.InvalidIDInformation:
		for _, q := range sa.quicks {
			if q.initiator {
				infof(sa.log, "received INVALID_ID_INFORMATION error notify for CHILD_SA %s: proposed TS %s === %s not accepted by the peer",
					q.cfg.Name, q.localTS, q.remoteTS)

				sa.endQuick(q)
			}
		}
	default:
		if n.NotifyType < 16384 && sa.state != IKESAEstablished {
			// An error is fatal during phase 1 only (charon's
			// informational task), e.g. AUTHENTICATION_FAILED from a
			// responder whose unique = keep refused us.
			infof(sa.log, "received %v error notify", n.NotifyType)
			sa.destroy()
			return
		}
		infof(sa.log, "received %v notify", n.NotifyType)
		if n.NotifyType == isakmp.NoProposalChosen {
			for _, q := range sa.quicks {
				if q.initiator {
					sa.endQuick(q)
				}
			}
		}
	}
}

func (sa *v1SA) processDelete(d *isakmp.Delete) {
	switch d.Protocol {
	case isakmp.ProtoISAKMP:
		infof(sa.log, "received DELETE for IKE_SA %s", sa.name())
		if next := sa.findSuccessor(); next != nil {
			next.adoptChildren(sa)
		}
		infof(sa.log, "deleting IKE_SA %s between %s", sa.name(), sa.ends())
		sa.destroy()
	case isakmp.ProtoESP, isakmp.ProtoAH:
		for _, spi := range d.SPIs {
			if len(spi) != 4 {
				continue
			}
			out := binary.BigEndian.Uint32(spi)
			for _, c := range sa.children {
				if c.spiOut == out && isakmp.ProtocolID(c.proto().Protocol()) == d.Protocol {
					infof(sa.log, "received DELETE for %v CHILD_SA with SPI %.8x", c.proto(), out)
					infof(sa.log, "closing CHILD_SA %s with SPIs %.8x_i %.8x_o and TS %s === %s", c.name(), c.spiIn, c.spiOut,
						formatTS(c.localTS), formatTS(c.remoteTS))

					c.destroy()
					break
				}
			}
		}
	}
}

// deleteChild tells the peer and removes an IPsec SA.
func (sa *v1SA) deleteChild(c *v1Child) {
	infof(sa.log, "closing CHILD_SA %s with SPIs %.8x_i %.8x_o and TS %s === %s", c.name(), c.spiIn, c.spiOut,
		formatTS(c.localTS), formatTS(c.remoteTS))

	sa.sendInformational([]isakmp.Payload{&isakmp.Delete{DOI: isakmp.DOIIPsec, Protocol: isakmp.ProtocolID(c.proto().Protocol()), SPISize: 4,
		SPIs: [][]byte{binary.BigEndian.AppendUint32(nil, c.spiIn)}}})
	c.destroy()
}

// delete deletes the ISAKMP SA and its IPsec SAs, telling the peer.
func (sa *v1SA) delete() {
	if sa.deleted {
		return
	}
	for _, c := range sa.children {
		sa.sendInformational([]isakmp.Payload{&isakmp.Delete{DOI: isakmp.DOIIPsec, Protocol: isakmp.ProtocolID(c.proto().Protocol()), SPISize: 4,
			SPIs: [][]byte{binary.BigEndian.AppendUint32(nil, c.spiIn)}}})
	}
	infof(sa.log, "deleting IKE_SA %s between %s", sa.name(), sa.ends())
	sa.sendInformational([]isakmp.Payload{&isakmp.Delete{DOI: isakmp.DOIIPsec, Protocol: isakmp.ProtoISAKMP, SPISize: 16,
		SPIs: [][]byte{sa.cookies()}}})
	sa.destroy()
}

// scheduleDPD checks liveness every dpd_delay (RFC 3706): without
// inbound traffic for that long, R-U-THERE; without any for dpd_timeout
// (default 150s), the peer is dead and dpd_action applies.
func (sa *v1SA) scheduleDPD() {
	delay := sa.conn.DPDDelay
	timeout := sa.conn.DPDTimeout
	if timeout == 0 {
		timeout = 150 * 1e9
	}
	sa.after(delay, func() {
		if sa.state != IKESAEstablished {
			return
		}
		idle := sa.e.clock.Now().Sub(sa.lastInbound)
		if idle >= timeout {
			sa.log.Info(fmt.Sprintf("DPD check timed out, enforcing DPD action"))
			sa.die()
			return
		}
		if idle >= delay {
			if sa.dpdSeq == 0 {
				sa.dpdSeq = binary.BigEndian.Uint32(sa.e.randomBytes(4)) & 0x7fffffff
			}
			sa.dpdSeq++
			sa.e.changed(&sa.ikeSACommon, false)
			sa.sendInformational([]isakmp.Payload{&isakmp.Notify{DOI: isakmp.DOIIPsec, Protocol: isakmp.ProtoISAKMP,
				SPI: sa.cookies(), NotifyType: isakmp.DPDRUThere, Data: binary.BigEndian.AppendUint32(nil, sa.dpdSeq)}})
		}
		sa.scheduleDPD()
	})
}

// v1SAByID finds an ISAKMP SA by its unique ID.
func (e *Engine) v1SAByID(id uint32) *v1SA {
	for _, sa := range e.allV1SAs() {
		if sa.id == id {
			return sa
		}
	}
	return nil
}
