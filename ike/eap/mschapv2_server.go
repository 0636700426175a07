package eap

import (
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
)

// The authenticator side of EAP-MSCHAPv2:
//
//	Begin ──Challenge──▶ expectResponse ──Response, proof right──▶ Success Request ──▶ expectAck
//	                      │    ▲                                                          │
//	                      │    └── proof wrong, retries left: Failure Request E=691 R=1   │ Success Response
//	                      │                                                               ▼
//	                      └── proof wrong, no retry left ──▶ Failed              Succeeded (MSK)
//
// A Failure Response (the peer giving up) fails the method in either
// state. As charon's server does, the final failure is EAP-Failure rather
// than a Failure Request with R=0: strongSwan's source notes that Windows 7
// does not answer one with a Failure Response.
type mschapServerState uint8

const (
	mschapExpectResponse mschapServerState = iota + 1
	mschapExpectAck
)

const (
	mschapSuccessMessage = "M=Welcome"
	mschapFailureMessage = "M=Authentication failed"
)

type mschapv2Server struct {
	identity      string // the EAP identity, until a Response names the user
	name          string
	creds         Credentials
	rand          io.Reader
	retries       int // retriable Failure Requests left
	state         mschapServerState
	msID          uint8
	challenge     [challengeLen]byte
	authenticated string
	msk           []byte
	pending       *Error // the last wrong proof, reported if the peer gives up
}

func newMSCHAPv2Server(identity, name string, creds Credentials, retries int, rand io.Reader) *mschapv2Server {
	return &mschapv2Server{identity: identity, name: name, creds: creds, rand: rand, retries: retries}
}

func (*mschapv2Server) Type() Type { return TypeMSCHAPv2 }

func (m *mschapv2Server) Begin(id uint8) (Packet, error) {
	if _, err := io.ReadFull(m.rand, m.challenge[:]); err != nil {
		return Packet{}, fmt.Errorf("EAP-MSCHAPv2 challenge: %w", err)
	}
	m.msID = id // as charon does; the peer echoes it
	m.state = mschapExpectResponse
	data := appendMSCHAP(opChallenge, m.msID, []byte{challengeLen}, m.challenge[:], []byte(m.name))
	return Packet{Code: CodeRequest, Identifier: id, Type: TypeMSCHAPv2, Data: data}, nil
}

func (m *mschapv2Server) fail(reason Reason, err error) (Packet, Status, error) {
	return Packet{}, Failed, failure(TypeMSCHAPv2, reason, m.identity, err)
}

func (m *mschapv2Server) Process(resp Packet) (Packet, Status, error) {
	p, err := parseMSCHAP(resp.Data)
	if err != nil {
		return m.fail(ReasonMalformed, err)
	}
	switch {
	case p.OpCode == opFailure && p.Short:
		if m.pending != nil {
			return Packet{}, Failed, m.pending
		}
		return m.fail(ReasonRejected, fmt.Errorf("peer sent a Failure Response"))
	case m.state == mschapExpectResponse && p.OpCode == opResponse && !p.Short:
		return m.response(resp.Identifier, p)
	case m.state == mschapExpectAck && p.OpCode == opSuccess && p.Short:
		return Packet{}, Succeeded, nil
	}
	return m.fail(ReasonUnexpected, fmt.Errorf("EAP-MSCHAPv2 OpCode %d (short %v) in state %d: %w", p.OpCode, p.Short, m.state, ErrUnexpected))
}

func (m *mschapv2Server) response(id uint8, p mschapPacket) (Packet, Status, error) {
	if p.ID != m.msID {
		return m.fail(ReasonUnexpected, fmt.Errorf("EAP-MSCHAPv2-ID %d, expected %d: %w", p.ID, m.msID, ErrUnexpected))
	}
	peerChallenge, nt, nameBytes, err := parseResponse(p.Body)
	if err != nil {
		return m.fail(ReasonMalformed, err)
	}
	if err := checkIdentity(nameBytes); err != nil {
		return m.fail(ReasonMalformed, fmt.Errorf("EAP-MSCHAPv2 Name: %w", err))
	}
	name := string(nameBytes)
	// The Name is whom the peer claims to be; it is what strongSwan looks
	// up, and may differ from the EAP identity (Windows keeps the first
	// one typed).
	m.identity = name

	secret, lookupErr := m.creds.Secret(name)
	defer secret.Wipe()
	var want [ntResponseLen]byte
	// An unknown user costs what a known one does: the computation runs
	// on the zero hash of the failed lookup.
	generateNTResponse(&m.challenge, &peerChallenge, name, &secret.ntHash, &want)
	ok := equalConstantTime(want[:], nt[:])
	clear(want[:])
	switch {
	case lookupErr != nil:
		return m.wrong(id, failure(TypeMSCHAPv2, lookupReason(lookupErr), name, lookupErr))
	case !secret.Valid():
		return m.wrong(id, failure(TypeMSCHAPv2, ReasonNoSecret, name, fmt.Errorf("empty secret")))
	case !ok:
		return m.wrong(id, failure(TypeMSCHAPv2, ReasonWrongPassword, name, nil))
	}

	var ar [sha1.Size]byte
	generateAuthenticatorResponse(&secret.ntHash, &nt, &peerChallenge, &m.challenge, name, &ar)
	m.msk = mschapv2MSK(&secret.ntHash, &nt)
	m.authenticated = name
	m.pending = nil
	m.state = mschapExpectAck
	data := appendMSCHAP(opSuccess, m.msID, authResponseText(&ar), []byte(" "+mschapSuccessMessage))
	clear(ar[:])
	return Packet{Code: CodeRequest, Identifier: id + 1, Type: TypeMSCHAPv2, Data: data}, Continue, nil
}

// wrong answers a wrong proof or an unknown user alike: a retriable
// Failure Request while retries are left, else the end.
func (m *mschapv2Server) wrong(id uint8, e *Error) (Packet, Status, error) {
	if m.retries == 0 {
		return Packet{}, Failed, e
	}
	m.retries--
	m.pending = e
	if _, err := io.ReadFull(m.rand, m.challenge[:]); err != nil {
		return m.fail(ReasonInternal, fmt.Errorf("EAP-MSCHAPv2 challenge: %w", err))
	}
	// C= is the challenge of the next attempt, whose Response carries
	// this Failure's MS-CHAPv2-ID plus one (RFC 2759 section 6).
	text := fmt.Sprintf("E=%d R=1 C=%s V=3 %s", errAuthenticationFailure, strings.ToUpper(hex.EncodeToString(m.challenge[:])), mschapFailureMessage)
	data := appendMSCHAP(opFailure, m.msID, []byte(text))
	m.msID++
	return Packet{Code: CodeRequest, Identifier: id + 1, Type: TypeMSCHAPv2, Data: data}, Continue, nil
}

func (m *mschapv2Server) Identity() string { return m.authenticated }

func (m *mschapv2Server) MSK() []byte {
	if m.msk == nil {
		return nil
	}
	return append([]byte(nil), m.msk...)
}

func (m *mschapv2Server) Wipe() {
	clear(m.msk)
	m.msk = nil
	clear(m.challenge[:])
}
