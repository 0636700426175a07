package eap

import (
	"bytes"
	"testing"
)

// A method of several round trips with a 64-octet MSK, as EAP-TLS will
// be, plugged into both runners from outside. The server sends rounds
// Requests numbered 1..n; the peer echoes each number; the MSK is the
// same 64 octets on both sides.
const fakeType Type = 13 // EAP-TLS's number, for the Type checks

type fakeServer struct {
	rounds, sent int
	id           uint8
}

func (*fakeServer) Type() Type { return fakeType }
func (m *fakeServer) Begin(id uint8) (Packet, error) {
	m.id, m.sent = id, 1
	return Packet{Code: CodeRequest, Identifier: id, Type: fakeType, Data: []byte{1}}, nil
}
func (m *fakeServer) Process(resp Packet) (Packet, Status, error) {
	if len(resp.Data) != 1 || int(resp.Data[0]) != m.sent {
		return Packet{}, Failed, failure(fakeType, ReasonMalformed, "", nil)
	}
	if m.sent == m.rounds {
		return Packet{}, Succeeded, nil
	}
	m.sent++
	m.id++
	return Packet{Code: CodeRequest, Identifier: m.id, Type: fakeType, Data: []byte{byte(m.sent)}}, Continue, nil
}
func (*fakeServer) Identity() string { return testUser }
func (*fakeServer) MSK() []byte      { return bytes.Repeat([]byte{0xab}, 64) }
func (*fakeServer) Wipe()            {}

type fakePeer struct{ rounds int }

func (*fakePeer) Type() Type { return fakeType }
func (m *fakePeer) Process(req Packet) (*Packet, Status, error) {
	st := Continue
	if len(req.Data) == 1 && int(req.Data[0]) == m.rounds {
		st = Succeeded
	}
	return &Packet{Code: CodeResponse, Identifier: req.Identifier, Type: fakeType, Data: req.Data}, st, nil
}
func (*fakePeer) MSK() []byte { return bytes.Repeat([]byte{0xab}, 64) }
func (*fakePeer) Wipe()       {}

func TestPluggedMethodOfManyRounds(t *testing.T) {
	s := newTestServer(t, ServerConfig{
		Methods:   []Type{TypeMSCHAPv2, fakeType},
		NewMethod: func(ty Type, _ string) ServerMethod { return &fakeServer{rounds: 5} },
	})
	p := newTestPeer(t, PeerConfig{
		Identity: testUser, Secret: PasswordSecret([]byte(testPassword)), Methods: []Type{fakeType},
		NewMethod: func(Type) PeerMethod { return &fakePeer{rounds: 5} },
	})
	log := converse(t, s, p)
	want := "REQ/IDENTITY RES/IDENTITY REQ/MSCHAPV2:CHAL RES/NAK" +
		" REQ/TLS RES/TLS REQ/TLS RES/TLS REQ/TLS RES/TLS REQ/TLS RES/TLS REQ/TLS RES/TLS SUC"
	if got := codes(log); got != want {
		t.Fatalf("transcript\n got %s\nwant %s", got, want)
	}
	if s.Result().Err != nil || p.Result().Err != nil || len(s.Result().MSK) != 64 || !bytes.Equal(s.Result().MSK, p.Result().MSK) {
		t.Fatalf("server %+v\npeer %+v", s.Result(), p.Result())
	}
}

func TestPluggedMethodMissing(t *testing.T) {
	s := newTestServer(t, ServerConfig{
		Methods: []Type{fakeType}, Identity: testUser,
		NewMethod: func(Type, string) ServerMethod { return nil },
	})
	out, err := s.Start()
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := Parse(out); p.Code != CodeFailure || reasonOf(s.Result().Err) != ReasonInternal || s.Result().Err.(*Error).Method != fakeType {
		t.Fatalf("answer %x, result %v", out, s.Result().Err)
	}
}

// A peer whose only method is plugged in (EAP-TLS proves itself with a
// certificate) needs no password; the built-in methods do.
func TestPeerSecretOnlyForPasswordMethods(t *testing.T) {
	hook := func(Type) PeerMethod { return &fakePeer{rounds: 1} }
	if _, err := NewPeer(PeerConfig{Identity: testUser, Methods: []Type{fakeType}, NewMethod: hook}); err != nil {
		t.Fatalf("plugged method without a password: %v", err)
	}
	if _, err := NewPeer(PeerConfig{Identity: testUser, Methods: []Type{fakeType, TypeMSCHAPv2}, NewMethod: hook}); err == nil {
		t.Fatal("EAP-MSCHAPv2 without a password accepted")
	}
	for _, ty := range []Type{0, TypeIdentity, TypeNotification, TypeNak, TypeExpanded} {
		if _, err := NewPeer(PeerConfig{Identity: testUser, Methods: []Type{ty}, NewMethod: hook}); err == nil {
			t.Errorf("%s accepted as a method", ty)
		}
	}
}
