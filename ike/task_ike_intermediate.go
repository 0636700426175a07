package ike

import (
	"encoding/binary"
	"fmt"

	"github.com/xdpsec/xdpsec/ike/message"
	"github.com/xdpsec/xdpsec/ike/transform"
)

// ikeSetup is what an IKE SA keeps only until it is established
// (forgetInitMessages drops it): the IKE_SA_INIT messages that AUTH signs,
// and the state of the IKE_INTERMEDIATE exchanges (RFC 9242) that run
// the additional key exchanges of RFC 9370 between IKE_SA_INIT and
// IKE_AUTH. Behind a pointer, so that an established IKE SA does not pay
// for it.
type ikeSetup struct {
	initReq, initRes []byte // IKE_SA_INIT messages as sent, for AUTH

	// intermediate: both ends announced INTERMEDIATE_EXCHANGE_SUPPORTED.
	intermediate bool
	// addKEDone counts the additional key exchanges completed.
	addKEDone int
	// intAuthI and intAuthR are IntAuth_iN and IntAuth_rN of RFC 9242
	// section 3.3.2 over the IKE_INTERMEDIATE exchanges so far, nil
	// before the first; authMID is the message ID of the IKE_AUTH
	// request that follows them.
	intAuthI, intAuthR []byte
	authMID            uint32
	// prevIn is the responder's inbound protector before its last key
	// update: a retransmit of the IKE_INTERMEDIATE request it answered
	// is still protected with it (receiveStale).
	prevIn *transform.SKProtector
}

// setupState returns the SA's setup state, made on first use.
func (sa *ikeSA) setupState() *ikeSetup {
	if sa.setup == nil {
		sa.setup = &ikeSetup{}
	}
	return sa.setup
}

func (s *ikeSetup) initRequest() []byte {
	if s == nil {
		return nil
	}
	return s.initReq
}

func (s *ikeSetup) initResponse() []byte {
	if s == nil {
		return nil
	}
	return s.initRes
}

// drop closes what the setup holds.
func (s *ikeSetup) drop() {
	if s != nil && s.prevIn != nil {
		s.prevIn.Close()
		s.prevIn = nil
	}
}

// intAuthOctets appends IntAuth_iN | IntAuth_rN | IKE_AUTH_MID to the
// octets an AUTH payload covers once IKE_INTERMEDIATE exchanges took
// place (RFC 9242 section 3.3.2); without them the octets are RFC 7296's.
func (s *ikeSetup) intAuthOctets(octets []byte, err error) ([]byte, error) {
	if err != nil || s == nil || s.intAuthI == nil {
		return octets, err
	}
	octets = append(octets, s.intAuthI...)
	octets = append(octets, s.intAuthR...)
	return binary.BigEndian.AppendUint32(octets, s.authMID), nil
}

// pendingAddKE is the additional key exchange method the next
// IKE_INTERMEDIATE exchange runs, KE_NONE when none is left.
func (sa *ikeSA) pendingAddKE() transform.KEID {
	if sa.setup == nil || !sa.setup.intermediate {
		return transform.KE_NONE
	}
	adds := sa.proposal.AdditionalKEs()
	if sa.setup.addKEDone >= len(adds) {
		return transform.KE_NONE
	}
	return adds[sa.setup.addKEDone]
}

// intermediateSupported is INTERMEDIATE_EXCHANGE_SUPPORTED (RFC 9242
// section 3.1), which we announce when our proposals have additional key
// exchanges: without them we have no use for IKE_INTERMEDIATE.
func intermediateSupported(ps []transform.Proposal) bool {
	for _, p := range ps {
		if p.HasAdditionalKEs() {
			return true
		}
	}
	return false
}

// ikeIntermediate is one additional key exchange of RFC 9370 in an
// IKE_INTERMEDIATE exchange (RFC 9242), protected with the keys derived
// so far:
//
//	Initiator                         Responder
//	-------------------------------------------------------------------
//	HDR, SK {KEi(n)}  -->
//	                             <--  HDR, SK {KEr(n)}
//
// Both ends then derive the IKE SA's keys again (RFC 9370 section 2.2.2):
//
//	SKEYSEED(n) = prf(SK_d(n-1), SK(n) | Ni | Nr)
//	{SK_d(n) | SK_ai(n) | ... | SK_pr(n)} = prf+(SKEYSEED(n), Ni | Nr | SPIi | SPIr)
//
// and fold the exchange into IntAuth (RFC 9242 section 3.3.2), which the
// AUTH payloads of IKE_AUTH cover. The responder takes the new keys after
// its response went out, protected with the old ones.
type ikeIntermediate struct {
	sa        *ikeSA
	initiator bool
	method    transform.KEID
	ke        transform.KeyExchange
	secret    []byte // responder: SK(n) until the response is sent
	fail      *message.Notify
}

func newIKEIntermediate(sa *ikeSA, initiator bool, method transform.KEID) *ikeIntermediate {
	return &ikeIntermediate{sa: sa, initiator: initiator, method: method}
}

func (t *ikeIntermediate) kind() taskKind                 { return taskIKEIntermediate }
func (t *ikeIntermediate) exchange() message.ExchangeType { return message.IKE_INTERMEDIATE }

func (t *ikeIntermediate) build(m *message.Message) error {
	sa := t.sa
	if t.initiator {
		if t.ke == nil {
			ke, err := transform.NewKeyExchange(t.method, sa.e.rand)
			if err != nil {
				return fmt.Errorf("%w: key exchange %v: %v", errDestroy, t.method, err)
			}
			t.ke = ke
		}
		m.Payloads = append(m.Payloads, &message.KeyExchange{Group: uint16(t.method), Data: t.ke.PublicValue()})
		return t.foldIntAuth(m, true)
	}
	if t.fail != nil {
		m.Payloads = []message.Payload{t.fail}
		return errDestroy
	}
	m.Payloads = append(m.Payloads, &message.KeyExchange{Group: uint16(t.method), Data: t.ke.PublicValue()})
	t.ke.Close()
	return t.foldIntAuth(m, false)
}

// foldIntAuth computes IntAuth_[i|r]n = prf(SK_p[i|r](n-1), IntAuth_[i|r](n-1) |
// IntAuth_A | IntAuth_P) over message m, from the initiator or the
// responder, with the keys that protect it.
func (t *ikeIntermediate) foldIntAuth(m *message.Message, fromInitiator bool) error {
	sa, s := t.sa, t.sa.setupState()
	octets, err := message.IntAuthOctets(m)
	if err != nil {
		return fmt.Errorf("%w: IntAuth: %v", errDestroy, err)
	}
	key, prev := sa.keys.PI, s.intAuthI
	if !fromInitiator {
		key, prev = sa.keys.PR, s.intAuthR
	}
	ia, err := sa.suite.PRF.Compute(key, prev, octets)
	if err != nil {
		return fmt.Errorf("%w: IntAuth: %v", errDestroy, err)
	}
	if fromInitiator {
		s.intAuthI = ia
	} else {
		s.intAuthR = ia
	}
	s.authMID = m.Header.MessageID + 1
	return nil
}

func (t *ikeIntermediate) process(m *message.Message) error {
	sa := t.sa
	if !t.initiator {
		if err := t.foldIntAuth(m, true); err != nil {
			t.fail = notify(message.INVALID_SYNTAX, nil)
			return nil
		}
		kep, ok := find[*message.KeyExchange](m)
		if !ok || transform.KEID(kep.Group) != t.method {
			// RFC 9370 section 2.2.2: a KE of another method, or none.
			infof(sa.log, "additional key exchange %v expected in IKE_INTERMEDIATE request", t.method)
			t.fail = notify(message.INVALID_SYNTAX, nil)
			return nil
		}
		ke, err := transform.NewKeyExchange(t.method, sa.e.rand)
		if err == nil {
			t.ke = ke
			t.secret, err = ke.SharedSecret(kep.Data)
		}
		if err != nil {
			infof(sa.log, "applying %v key exchange data failed: %v", t.method, err)
			t.fail = notify(message.INVALID_SYNTAX, nil)
		}
		return nil
	}
	defer t.ke.Close()
	if nt, ok := notifyErr(m); ok {
		infof(sa.log, "received %v notify error", nt)
		return errDestroy
	}
	if err := t.foldIntAuth(m, false); err != nil {
		return err
	}
	kep, ok := find[*message.KeyExchange](m)
	if !ok || transform.KEID(kep.Group) != t.method {
		infof(sa.log, "additional key exchange %v missing in IKE_INTERMEDIATE response", t.method)
		return errDestroy
	}
	secret, err := t.ke.SharedSecret(kep.Data)
	if err != nil {
		infof(sa.log, "applying %v key exchange data failed: %v", t.method, err)
		return errDestroy
	}
	defer clear(secret)
	if err := sa.updateKeys(secret, t.method); err != nil {
		infof(sa.log, "key derivation for additional key exchange failed: %v", err)
		return errDestroy
	}
	return nil
}

// responseSent takes the responder's new keys once its response, under
// the old ones, is out.
func (t *ikeIntermediate) responseSent() {
	if t.secret == nil {
		return
	}
	defer clear(t.secret)
	if err := t.sa.updateKeys(t.secret, t.method); err != nil {
		infof(t.sa.log, "key derivation for additional key exchange failed: %v", err)
		t.sa.destroy()
	}
}

func (t *ikeIntermediate) failed() {
	if t.ke != nil {
		t.ke.Close()
	}
	clear(t.secret)
}

// updateKeys derives the IKE SA's keys after additional key exchange n
// (RFC 9370 section 2.2.2) and puts them in place of the old ones, which
// are zeroed; a responder keeps its old inbound protector for a
// retransmitted request (ikeSetup.prevIn).
func (sa *ikeSA) updateKeys(secret []byte, method transform.KEID) error {
	keys, err := transform.RekeyIKEKeys(sa.suite, sa.suite.PRF, sa.keys.D, secret, sa.ni, sa.nr, sa.spiI, sa.spiR)
	if err != nil {
		return err
	}
	oldKeys, oldI, oldR := sa.keys, sa.protI, sa.protR
	if err := sa.installKeys(keys); err != nil {
		return err
	}
	oldKeys.Zero()
	s := sa.setupState()
	s.addKEDone++
	infof(sa.log, "additional key exchange %d (%v) done, IKE_SA keys derived again", s.addKEDone, method)
	if sa.initiator {
		oldI.Close()
		oldR.Close()
		return nil
	}
	oldR.Close()
	s.drop()
	s.prevIn = oldI
	return nil
}

func (s *ikeSetup) intermediateOn() bool { return s != nil && s.intermediate }

// receiveStale answers a retransmitted IKE_INTERMEDIATE request that the
// keys taken after our response cannot open: the initiator did not get
// that response, so it still protects the request with the keys before
// the update. Only the request we answered last qualifies, and only if
// the old keys verify it.
func (sa *ikeSA) receiveStale(h message.Header, data []byte, d Datagram) bool {
	s := sa.setup
	if s == nil || s.prevIn == nil || h.IsResponse() || h.ExchangeType != message.IKE_INTERMEDIATE ||
		h.MessageID+1 != sa.tm.expectID || sa.tm.response == nil {
		return false
	}
	switch h.NextPayload {
	case message.PayloadSK:
		if _, err := message.UnmarshalEncrypted(data, s.prevIn); err != nil {
			return false
		}
	case message.PayloadSKF:
		f, err := message.UnmarshalFragment(data, s.prevIn)
		if err != nil {
			return false
		}
		if f.Number != 1 {
			return true // answered on the first fragment
		}
	default:
		return false
	}
	infof(sa.log, "received retransmit of request with ID %d, retransmitting response", h.MessageID)
	sa.tm.resendResponse(d)
	return true
}

// firstAuthMID is the message ID of the first IKE_AUTH request: 1, or the
// one after the last IKE_INTERMEDIATE exchange.
func (s *ikeSetup) firstAuthMID() uint32 {
	if s == nil || s.intAuthI == nil {
		return 1
	}
	return s.authMID
}
