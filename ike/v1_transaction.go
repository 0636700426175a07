package ike

// The Transaction exchange (draft-dukes-ike-mode-cfg-02) carries XAuth
// (v1_xauth.go) and Mode Config (v1_modecfg.go) after phase 1: each
// request (CFG_REQUEST or CFG_SET) starts an exchange of its own random
// message ID and IV chain, answered (CFG_REPLY or CFG_ACK) under the same
// message ID, and is retransmitted until answered. Every message is
//
//	HASH ATTR    with HASH = prf(SKEYID_a, M-ID | ATTR)
//
// in both directions, as informational messages are.

import (
	"bytes"
	"encoding/binary"

	"github.com/xdpsec/xdpsec/ike/isakmp"
	"github.com/xdpsec/xdpsec/ike/transform"
)

// v1Txn is a Transaction exchange of an ISAKMP SA: one we started
// (initiator, waiting for onReply) or one the peer started that we
// answered.
type v1Txn struct {
	mid        uint32
	initiator  bool
	identifier uint16
	onReply    func(*isakmp.ConfigAttributes)
}

// maxV1Txns bounds the Transaction exchanges an ISAKMP SA keeps: XAuth and
// Mode Config take four at most; a peer that starts more is answered and
// the oldest it started forgotten.
const maxV1Txns = 8

// txnRequest sends a CFG_REQUEST or CFG_SET in a new Transaction exchange
// and calls onReply with the answer. Without one after the retransmits,
// the ISAKMP SA goes.
func (sa *v1SA) txnRequest(cp *isakmp.ConfigAttributes, what string, onReply func(*isakmp.ConfigAttributes)) {
	t := &v1Txn{initiator: true, identifier: cp.Identifier, onReply: onReply}
	for t.mid == 0 || sa.exchanges[t.mid] != nil || sa.quicks[t.mid] != nil || sa.txns[t.mid] != nil {
		t.mid = binary.BigEndian.Uint32(sa.e.randomBytes(4))
	}
	sa.keepTxn(t)
	sa.sendTxn(sa.exchange(t.mid), cp, true, func() {
		infof(sa.log, "%s got no answer, destroying IKE_SA %s", what, sa.name())
		sa.die()
	})
}

// keepTxn records a Transaction exchange, forgetting the oldest answered
// one of the peer's beyond maxV1Txns.
func (sa *v1SA) keepTxn(t *v1Txn) {
	if sa.txns == nil {
		sa.txns = map[uint32]*v1Txn{}
	}
	if len(sa.txns) >= maxV1Txns {
		for mid, o := range sa.txns {
			if !o.initiator {
				delete(sa.txns, mid)
				if ex := sa.exchanges[mid]; ex != nil {
					sa.forget(ex)
				}
				break
			}
		}
	}
	sa.txns[t.mid] = t
}

// sendTxn sends a Transaction message: HASH, then the attributes.
func (sa *v1SA) sendTxn(ex *v1Exchange, cp *isakmp.ConfigAttributes, await bool, onGiveUp func()) {
	_, rest, err := isakmp.MarshalPayloads([]isakmp.Payload{cp})
	if err != nil {
		infof(sa.log, "encoding %v failed: %v", cp.CfgType, err)
		return
	}
	h, err := transform.V1QuickHash1(sa.prf, sa.keys.SKEYIDa, ex.mid, rest)
	clear(rest) // it may hold an XAuth password
	if err != nil {
		return
	}
	sa.sendSealed(ex, sa.header(isakmp.ExchangeTransaction, ex.mid), []isakmp.Payload{&isakmp.Hash{Data: h}, cp}, await, onGiveUp)
}

// processTransaction takes a Transaction message: the peer's request, or
// the answer to ours. Nothing of it counts before its HASH verifies.
func (sa *v1SA) processTransaction(h isakmp.Header, data []byte) {
	if !sa.p1done || sa.keys == nil || h.Flags&isakmp.FlagEncryption == 0 {
		sa.e.stats.DroppedUnexpected++
		infof(sa.log, "ignoring %v message %d before phase 1 completed or unencrypted", h.Exchange, h.MessageID)
		return
	}
	// XAuth and Mode Config change what the ISAKMP SA's record holds
	// (the user, virtual IPs, DNS servers), also once it is established.
	defer sa.e.changed(&sa.ikeSACommon, true)
	t := sa.txns[h.MessageID]
	ex := sa.exchanges[h.MessageID]
	if ex == nil {
		ex = &v1Exchange{mid: h.MessageID}
	}
	ps, plain, commit, err := sa.open(h, data, ex)
	if err != nil {
		sa.e.stats.DroppedAuthentication++
		infof(sa.log, "could not decrypt %v message %d: %v", h.Exchange, h.MessageID, err)
		return
	}
	defer clear(plain) // it may hold an XAuth password
	hp, ok := ps[0].(*isakmp.Hash)
	if !ok {
		sa.e.stats.DroppedAuthentication++
		infof(sa.log, "%v message without HASH first, ignored", h.Exchange)
		return
	}
	want, _ := transform.V1QuickHash1(sa.prf, sa.keys.SKEYIDa, h.MessageID, plain[min(4+len(hp.Data), len(plain)):])
	if !bytes.Equal(want, hp.Data) {
		sa.e.stats.DroppedAuthentication++
		infof(sa.log, "received HASH payload does not match, %v message ignored", h.Exchange)
		return
	}
	sa.rx.ex, sa.rx.commit = ex, commit
	sa.accept()
	sa.log.Info("parsed " + v1Summary(h, t == nil || !t.initiator, ps))
	cp, ok := isakmp.Find[*isakmp.ConfigAttributes](ps)
	if !ok {
		sa.e.stats.DroppedUnexpected++
		sa.log.Info("configuration payload missing in TRANSACTION message, ignored")
		return
	}
	if t != nil && t.initiator {
		// The answer to our request: the exchange is done.
		ex.stop()
		if t.onReply == nil {
			return // answered already; a duplicate
		}
		f := t.onReply
		t.onReply = nil
		if cp.Identifier != t.identifier {
			debugf(sa.log, "%v with identifier %d answers %d", cp.CfgType, cp.Identifier, t.identifier)
		}
		f(cp)
		return
	}
	if t != nil {
		// A new request under the message ID of one we answered.
		sa.e.stats.DroppedUnexpected++
		infof(sa.log, "ignoring %v request with the message ID %d of an exchange done", cp.CfgType, h.MessageID)
		return
	}
	t = &v1Txn{mid: h.MessageID, identifier: cp.Identifier}
	sa.keepTxn(t)
	sa.processCfgRequest(ex, cp)
}

// answerTxn answers the peer's request in its exchange.
func (sa *v1SA) answerTxn(ex *v1Exchange, cp *isakmp.ConfigAttributes) {
	sa.sendTxn(ex, cp, false, nil)
}

// processCfgRequest dispatches a request of the peer: XAuth's (we are the
// client), or Mode Config's (pull as a gateway, push as a client).
func (sa *v1SA) processCfgRequest(ex *v1Exchange, cp *isakmp.ConfigAttributes) {
	xauth := false
	for _, a := range cp.Attributes {
		if t := isakmp.ModeCfgAttr(a.Type); t >= isakmp.XAuthType && t <= isakmp.XAuthAnswer {
			xauth = true
		}
	}
	switch {
	case xauth && sa.xauthClientRole() && sa.state == IKESAEstablished:
		// XAuth is done: a late retransmit, or a gateway starting over.
		sa.e.stats.DroppedUnexpected++
		infof(sa.log, "ignoring XAuth %v of the established IKE_SA %s", cp.CfgType, sa.name())
		t := isakmp.CfgReply
		if cp.CfgType == isakmp.CfgSet {
			t = isakmp.CfgAck
		}
		sa.answerTxn(ex, &isakmp.ConfigAttributes{CfgType: t, Identifier: cp.Identifier})
	case xauth && sa.xauthClientRole():
		sa.xauthClientRequest(ex, cp)
	case xauth:
		sa.e.stats.DroppedUnexpected++
		infof(sa.log, "ignoring XAuth %v: we are not an XAuth client of IKE_SA %s", cp.CfgType, sa.name())
		sa.answerTxn(ex, &isakmp.ConfigAttributes{CfgType: isakmp.CfgReply, Identifier: cp.Identifier})
	case sa.state != IKESAEstablished:
		// Mode Config overtook the end of XAuth: forgotten, so that its
		// retransmit is taken once we are established.
		sa.e.stats.DroppedUnexpected++
		infof(sa.log, "ignoring Mode Config %v before IKE_SA %s is established", cp.CfgType, sa.name())
		delete(sa.txns, ex.mid)
		sa.forget(ex)
	case cp.CfgType == isakmp.CfgRequest:
		sa.modeCfgRequest(ex, cp)
	case cp.CfgType == isakmp.CfgSet:
		sa.modeCfgSet(ex, cp)
	default:
		sa.e.stats.DroppedUnexpected++
		infof(sa.log, "ignoring %v config payload", cp.CfgType)
	}
}

// txnIdentifier is a fresh identifier for a request's Attribute payload.
func (sa *v1SA) txnIdentifier() uint16 {
	return binary.BigEndian.Uint16(sa.e.randomBytes(2))
}
