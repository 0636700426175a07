package eap

import (
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"io"
	"strconv"
)

// The peer side of EAP-MSCHAPv2:
//
//	expectChallenge ──Challenge──▶ Response ──▶ expectResult
//	expectResult ──Success Request, S= right──▶ Success Response, Succeeded (MSK)
//	expectResult ──Success Request, S= wrong──▶ Failed, nothing sent
//	expectResult ──Failure Request (E=691 ...)──▶ Failure Response, Failed
//
// The peer does not retry after a Failure Request, even with R=1: its
// password would not be any different.
type mschapPeerState uint8

const (
	mschapExpectChallenge mschapPeerState = iota + 1
	mschapExpectResult
	mschapPeerDone
)

// mschapv2Peer borrows the Peer's secret; the Peer wipes it.
type mschapv2Peer struct {
	identity string
	secret   *Secret
	rand     io.Reader
	state    mschapPeerState
	msID     uint8
	authResp [sha1.Size]byte // what the server's S= must say
	msk      []byte
}

func newMSCHAPv2Peer(identity string, secret *Secret, rand io.Reader) *mschapv2Peer {
	return &mschapv2Peer{identity: identity, secret: secret, rand: rand, state: mschapExpectChallenge}
}

func (*mschapv2Peer) Type() Type { return TypeMSCHAPv2 }

func (m *mschapv2Peer) fail(reason Reason, err error) (*Packet, Status, error) {
	m.state = mschapPeerDone
	return nil, Failed, failure(TypeMSCHAPv2, reason, m.identity, err)
}

func (m *mschapv2Peer) Process(req Packet) (*Packet, Status, error) {
	p, err := parseMSCHAP(req.Data)
	if err != nil {
		return m.fail(ReasonMalformed, err)
	}
	if p.Short {
		return m.fail(ReasonMalformed, fmt.Errorf("EAP-MSCHAPv2 request of one octet: %w", ErrTruncated))
	}
	switch {
	case m.state == mschapExpectChallenge && p.OpCode == opChallenge:
		return m.challenge(req.Identifier, p)
	case m.state == mschapExpectResult && p.OpCode == opSuccess:
		return m.success(req.Identifier, p)
	case m.state == mschapExpectResult && p.OpCode == opFailure:
		return m.failureRequest(req.Identifier, p)
	case p.OpCode == opChangePassword:
		return m.fail(ReasonUnsupported, fmt.Errorf("EAP-MSCHAPv2 Change-Password"))
	}
	return m.fail(ReasonUnexpected, fmt.Errorf("EAP-MSCHAPv2 OpCode %d in state %d: %w", p.OpCode, m.state, ErrUnexpected))
}

func (m *mschapv2Peer) challenge(id uint8, p mschapPacket) (*Packet, Status, error) {
	authChallenge, _, err := parseChallenge(p.Body)
	if err != nil {
		return m.fail(ReasonMalformed, err)
	}
	if !m.secret.Valid() {
		return m.fail(ReasonNoSecret, fmt.Errorf("no secret configured"))
	}
	var peerChallenge [challengeLen]byte
	if _, err := io.ReadFull(m.rand, peerChallenge[:]); err != nil {
		return m.fail(ReasonInternal, fmt.Errorf("EAP-MSCHAPv2 peer challenge: %w", err))
	}
	var nt [ntResponseLen]byte
	generateNTResponse(&authChallenge, &peerChallenge, m.identity, &m.secret.ntHash, &nt)
	generateAuthenticatorResponse(&m.secret.ntHash, &nt, &peerChallenge, &authChallenge, m.identity, &m.authResp)
	m.msk = mschapv2MSK(&m.secret.ntHash, &nt)

	var value [1 + mschapResponseValue]byte
	value[0] = mschapResponseValue
	copy(value[1:17], peerChallenge[:])
	copy(value[25:49], nt[:]) // Reserved and Flags stay zero
	m.msID = p.ID
	data := appendMSCHAP(opResponse, m.msID, value[:], []byte(m.identity))
	m.state = mschapExpectResult
	return &Packet{Code: CodeResponse, Identifier: id, Type: TypeMSCHAPv2, Data: data}, Continue, nil
}

func (m *mschapv2Peer) success(id uint8, p mschapPacket) (*Packet, Status, error) {
	f := messageFields(p.Body)
	s, ok := f["S"]
	if !ok || len(s) != authResponseHexLen {
		return m.fail(ReasonMalformed, fmt.Errorf("EAP-MSCHAPv2 success without a valid S=: %w", ErrMalformed))
	}
	var got [sha1.Size]byte
	if _, err := hex.Decode(got[:], []byte(s)); err != nil {
		return m.fail(ReasonMalformed, fmt.Errorf("EAP-MSCHAPv2 S= is not hexadecimal: %w", ErrMalformed))
	}
	if !equalConstantTime(got[:], m.authResp[:]) {
		clear(m.msk)
		m.msk = nil
		return m.fail(ReasonServerNotAuthenticated, fmt.Errorf("authenticator response does not match"))
	}
	m.state = mschapPeerDone
	ack := &Packet{Code: CodeResponse, Identifier: id, Type: TypeMSCHAPv2, Data: []byte{opSuccess}}
	return ack, Succeeded, nil
}

func (m *mschapv2Peer) failureRequest(id uint8, p mschapPacket) (*Packet, Status, error) {
	clear(m.msk)
	m.msk = nil
	m.state = mschapPeerDone
	f := messageFields(p.Body)
	detail := "no error code"
	if e, ok := f["E"]; ok {
		if code, err := strconv.Atoi(e); err == nil {
			detail = fmt.Sprintf("E=%d %s", code, mschapError(code))
		} else {
			detail = "unreadable error code"
		}
	}
	if msg, ok := f["M"]; ok {
		detail += ": " + quote(msg)
	}
	ack := &Packet{Code: CodeResponse, Identifier: id, Type: TypeMSCHAPv2, Data: []byte{opFailure}}
	return ack, Failed, failure(TypeMSCHAPv2, ReasonRejected, m.identity, fmt.Errorf("%s", detail))
}

func (m *mschapv2Peer) MSK() []byte {
	if m.msk == nil {
		return nil
	}
	return append([]byte(nil), m.msk...)
}

func (m *mschapv2Peer) Wipe() {
	clear(m.msk)
	m.msk = nil
	clear(m.authResp[:])
}
