package ike

import (
	"bytes"
	"errors"
	"slices"
	"time"

	"github.com/xdpsec/xdpsec/ike/message"
	"github.com/xdpsec/xdpsec/ike/transform"
)

// childFollowup runs the additional key exchanges that a CREATE_CHILD_SA
// exchange negotiated (RFC 9370 section 2.2.4), for a new or rekeyed
// CHILD_SA, one IKE_FOLLOWUP_KE exchange each:
//
//	Initiator                         Responder
//	-------------------------------------------------------------------
//	HDR(CREATE_CHILD_SA), SK {SA, Ni, KEi, TSi, TSr}  -->
//	                   <--  HDR(CREATE_CHILD_SA), SK {SA, Nr, KEr,
//	                                 N(ADDITIONAL_KEY_EXCHANGE)(link1), TSi, TSr}
//	HDR(IKE_FOLLOWUP_KE), SK {KEi(1), N(ADDITIONAL_KEY_EXCHANGE)(link1)}  -->
//	                   <--  HDR(IKE_FOLLOWUP_KE), SK {KEr(1), [N(ADDITIONAL_KEY_EXCHANGE)(link2)]}
//	...
//
// The CHILD_SA is installed when the last exchange is done, its keys from
// prf+(SK_d, g^ir (new) | SK(1) | ... | SK(n) | Ni | Nr). The responder
// keeps the pending CHILD_SA in Engine.followups, found again by its IKE
// SA and checked against the link data; a request for none gets
// STATE_NOT_FOUND.
type childFollowup struct {
	create *childCreate
	// rekey, instead of create: the additional key exchanges of an IKE
	// SA rekey (RFC 9370 section 2.2.4), the new IKE SA keyed with
	// SKEYSEED = prf(SK_d (old), g^ir (new) | SK(1) | ... | SK(n) | Ni | Nr).
	rekey     *ikeRekey
	initiator bool
	adds      []transform.KEID // the additional methods, in order
	secrets   [][]byte         // g^ir and SK(1)... so far
	link      []byte           // the responder's link data for the next exchange
	ke        transform.KeyExchange
	fail      *message.Notify // responder: the answer instead of KEr
	// onDone continues a CHILD_SA rekey once the CHILD_SA is installed
	// (ok) or given up.
	onDone func(ok bool)
}

func (t *childFollowup) kind() taskKind                 { return taskFollowupKE }
func (t *childFollowup) exchange() message.ExchangeType { return message.IKE_FOLLOWUP_KE }

// method is the additional key exchange the next exchange runs.
func (t *childFollowup) method() transform.KEID { return t.adds[len(t.secrets)-1] }

func (t *childFollowup) ikeSA() *ikeSA {
	if t.rekey != nil {
		return t.rekey.sa
	}
	return t.create.sa
}

// finished reports whether the last exchange installed the SA.
func (t *childFollowup) finished() bool {
	if t.rekey != nil {
		return t.rekey.newSA != nil && t.rekey.newSA.state >= IKESAEstablished
	}
	return t.create.done
}

// install derives and installs the SA from all the secrets.
func (t *childFollowup) install(all []byte) error {
	if t.rekey != nil {
		return t.rekey.finish(all)
	}
	if t.initiator {
		return t.create.installInitiator(all, t.create.ni, t.create.nr)
	}
	return t.create.installResponder(all, t.create.ni, t.create.nr)
}

// deleteHalf asks the peer, which installed its CHILD_SA, to delete it.
func (t *childFollowup) deleteHalf() {
	if t.create != nil {
		sa := t.create.sa
		sa.tm.queue(newChildDelete(sa, true, nil).forSPI(t.create.child))
	}
}

func (t *childFollowup) abortOwner() {
	if t.rekey != nil {
		t.rekey.abort()
		return
	}
	t.create.abort()
}

func (t *childFollowup) build(m *message.Message) error {
	sa := t.ikeSA()
	if t.initiator {
		ke, err := transform.NewKeyExchange(t.method(), sa.e.rand)
		if err != nil {
			return err
		}
		t.ke = ke
		m.Payloads = append(m.Payloads, &message.KeyExchange{Group: uint16(t.method()), Data: ke.PublicValue()},
			notify(message.ADDITIONAL_KEY_EXCHANGE, t.link))
		return nil
	}
	if t.fail != nil {
		m.Payloads = append(m.Payloads, t.fail)
		return nil
	}
	m.Payloads = append(m.Payloads, &message.KeyExchange{Group: uint16(t.ke.Method()), Data: t.ke.PublicValue()})
	t.ke.Close()
	if !t.finished() {
		m.Payloads = append(m.Payloads, notify(message.ADDITIONAL_KEY_EXCHANGE, t.link))
		return nil
	}
	if t.create != nil {
		t.create.child.logEstablished()
		sa.childUp()
	}
	if t.onDone != nil {
		t.onDone(true)
	}
	return nil
}

func (t *childFollowup) process(m *message.Message) error {
	if !t.initiator {
		t.processRequest(m)
		return nil
	}
	sa := t.ikeSA()
	defer t.ke.Close()
	if nt, ok := notifyErr(m); ok {
		infof(sa.log, "received %v notify in %v, no CHILD_SA built", nt, message.IKE_FOLLOWUP_KE)
		t.giveUp()
		return nil
	}
	kep, ok := find[*message.KeyExchange](m)
	if !ok || transform.KEID(kep.Group) != t.method() {
		infof(sa.log, "additional key exchange %v missing in %v response, no CHILD_SA built", t.method(), message.IKE_FOLLOWUP_KE)
		t.giveUp()
		t.deleteHalf()
		return nil
	}
	secret, err := t.ke.SharedSecret(kep.Data)
	if err != nil {
		infof(sa.log, "applying %v key exchange data failed: %v, no CHILD_SA built", t.method(), err)
		t.giveUp()
		t.deleteHalf()
		return nil
	}
	t.secrets = append(t.secrets, secret)
	if len(t.secrets) <= len(t.adds) {
		n := findNotify(m, message.ADDITIONAL_KEY_EXCHANGE)
		if n == nil || len(n.Data) == 0 {
			infof(sa.log, "%v notify missing, no CHILD_SA built", message.ADDITIONAL_KEY_EXCHANGE)
			t.giveUp()
			return nil
		}
		t.link = slices.Clone(n.Data)
		sa.tm.queued = append([]task{t}, sa.tm.queued...) // the next one, a new exchange
		return nil
	}
	all := t.concat()
	defer clear(all)
	if err := t.install(all); err != nil {
		infof(sa.log, "%v, no SA built", err)
		t.giveUp()
		t.deleteHalf()
		return nil
	}
	t.wipe()
	if t.onDone != nil {
		t.onDone(true)
	}
	return nil
}

// processRequest is the responder's side of one exchange.
func (t *childFollowup) processRequest(m *message.Message) {
	sa := t.ikeSA()
	if sa.state == IKESADeleting {
		// Our DELETE of the IKE SA is on its way: an IKE SA (or
		// CHILD_SA) completed now would outlive, on our side only, the
		// IKE SA the peer is about to delete.
		infof(sa.log, "peer continued rekeying, but we are deleting")
		t.fail = notify(message.TEMPORARY_FAILURE, nil)
		t.abandon()
		return
	}
	n := findNotify(m, message.ADDITIONAL_KEY_EXCHANGE)
	if n == nil || !bytes.Equal(n.Data, t.link) {
		infof(sa.log, "%v notify missing or not ours in %v request", message.ADDITIONAL_KEY_EXCHANGE, message.IKE_FOLLOWUP_KE)
		t.fail = notify(message.STATE_NOT_FOUND, nil)
		t.abandon()
		return
	}
	kep, ok := find[*message.KeyExchange](m)
	if !ok || transform.KEID(kep.Group) != t.method() {
		infof(sa.log, "additional key exchange %v expected in %v request", t.method(), message.IKE_FOLLOWUP_KE)
		t.fail = notify(message.INVALID_SYNTAX, nil)
		t.abandon()
		return
	}
	ke, err := transform.NewKeyExchange(t.method(), sa.e.rand)
	var secret []byte
	if err == nil {
		t.ke = ke
		secret, err = ke.SharedSecret(kep.Data)
	}
	if err != nil {
		// Key exchange data of the wrong length (or an ML-KEM
		// encapsulation key that fails its modulus check) is malformed,
		// as in IKE_INTERMEDIATE.
		infof(sa.log, "applying %v key exchange data failed: %v", t.method(), err)
		t.fail = notify(message.NO_PROPOSAL_CHOSEN, nil)
		if errors.Is(err, transform.ErrInvalidPublicValue) {
			t.fail = notify(message.INVALID_SYNTAX, nil)
		}
		t.abandon()
		return
	}
	t.secrets = append(t.secrets, secret)
	if len(t.secrets) <= len(t.adds) {
		t.link = sa.e.randomBytes(8)
		return
	}
	delete(sa.e.followups, sa)
	all := t.concat()
	defer clear(all)
	if err := t.install(all); err != nil {
		t.fail = notify(message.NO_PROPOSAL_CHOSEN, nil)
		t.abandon()
		return
	}
	t.wipe()
}

// concat is g^ir | SK(1) | ... | SK(n), the secrets in the order of
// their exchanges.
func (t *childFollowup) concat() []byte {
	var all []byte
	for _, s := range t.secrets {
		all = append(all, s...)
	}
	return all
}

func (t *childFollowup) wipe() {
	for _, s := range t.secrets {
		clear(s)
	}
	t.secrets = t.secrets[:0:0]
}

// giveUp ends the initiator's CHILD_SA or IKE SA rekey without
// installing it; an IKE SA rekey is tried again later, as after an error
// notify to its CREATE_CHILD_SA.
func (t *childFollowup) giveUp() {
	t.wipe()
	if t.ke != nil {
		t.ke.Close()
	}
	t.abortOwner()
	if sa := t.ikeSA(); t.rekey != nil && sa.state == IKESAEstablished {
		sa.scheduleRekeyRetry()
	}
	if t.onDone != nil {
		t.onDone(false)
	}
}

// abandon ends the responder's pending CHILD_SA.
func (t *childFollowup) abandon() {
	sa := t.ikeSA()
	if sa.e.followups[sa] == t {
		delete(sa.e.followups, sa)
	}
	t.wipe()
	if t.ke != nil {
		t.ke.Close()
		t.ke = nil
	}
	t.abortOwner()
	if t.onDone != nil {
		t.onDone(false)
	}
}

func (t *childFollowup) failed() { t.giveUp() }

// followupTask answers an IKE_FOLLOWUP_KE request: the pending CHILD_SA's
// next exchange, or STATE_NOT_FOUND.
func (sa *ikeSA) followupTask() task {
	if t := sa.e.followups[sa]; t != nil {
		t.fail = nil
		return t
	}
	infof(sa.log, "no CHILD_SA waits for %v", message.IKE_FOLLOWUP_KE)
	return &refuse{notify(message.STATE_NOT_FOUND, nil)}
}

// dropFollowup releases the CHILD_SA whose additional key exchanges the
// peer did not finish before the IKE SA went.
func (sa *ikeSA) dropFollowup() {
	if t := sa.e.followups[sa]; t != nil {
		t.abandon()
	}
}

// retryRekey rekeys the CHILD_SA again after TEMPORARY_FAILURE (a
// collision declined, or the peer busy with IKE_FOLLOWUP_KE): after four
// retransmit timeouts and a random part of as much again, so that two
// ends that declined each other do not meet again.
func (c *childSA) retryRekey() {
	e := c.ike.e
	base := e.cfg.RetransmitTimeout * 4
	b := e.randomBytes(2)
	delay := base + time.Duration(int64(base)*int64(int(b[0])<<8|int(b[1]))>>16)
	e.afterFunc(delay, func() {
		sa := c.ike // an IKE rekey may have moved it meanwhile
		if c.state == ChildSAInstalled && sa.state == IKESAEstablished && sa.childByID(c.id) == c && !sa.rekeyQueued(c) {
			sa.tm.queue(newChildRekey(sa, true, c))
			sa.tm.initiate()
		}
	})
}

// expire gives the responder's pending SA up when the peer's next
// IKE_FOLLOWUP_KE request does not come within its whole retransmission
// budget (and as much again): an initiator gone or stuck must not hold
// the SPI, nor block the IKE SA's rekeys, until the IKE SA goes.
func (t *childFollowup) expire() {
	sa := t.ikeSA()
	var wait time.Duration
	for i := 0; i <= sa.e.cfg.RetransmitTries; i++ {
		wait += sa.e.retransmitTimeout(i)
	}
	exchanges := len(t.adds) - len(t.secrets) + 1
	sa.e.afterFuncFor(sa, 2*wait*time.Duration(exchanges), func() {
		if sa.e.followups[sa] == t && sa.state != IKESADestroying {
			infof(sa.log, "%v exchanges not completed by the peer, dropping the SA they were for", message.IKE_FOLLOWUP_KE)
			t.abandon()
		}
	})
}
