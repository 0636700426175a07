package eap

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestConversations(t *testing.T) {
	type outcome struct {
		transcript string
		serverOK   bool
		serverWhy  Reason
		peerOK     bool
		peerWhy    Reason
		mskLen     int
	}
	for _, c := range []struct {
		name     string
		server   ServerConfig
		identity string
		password string
		methods  []Type
		want     outcome
	}{
		{
			name:     "mschapv2 right password",
			server:   ServerConfig{Methods: []Type{TypeMSCHAPv2}},
			identity: testUser, password: testPassword, methods: []Type{TypeMSCHAPv2},
			want: outcome{
				transcript: "REQ/IDENTITY RES/IDENTITY REQ/MSCHAPV2:CHAL RES/MSCHAPV2:RESP REQ/MSCHAPV2:SUCC RES/MSCHAPV2:SUCC SUC",
				serverOK:   true, peerOK: true, mskLen: 64,
			},
		},
		{
			name:     "mschapv2 wrong password",
			server:   ServerConfig{Methods: []Type{TypeMSCHAPv2}},
			identity: testUser, password: "guess", methods: []Type{TypeMSCHAPv2},
			want: outcome{
				transcript: "REQ/IDENTITY RES/IDENTITY REQ/MSCHAPV2:CHAL RES/MSCHAPV2:RESP FAI",
				serverWhy:  ReasonWrongPassword, peerWhy: ReasonRejected,
			},
		},
		{
			name:     "mschapv2 unknown user",
			server:   ServerConfig{Methods: []Type{TypeMSCHAPv2}},
			identity: "mallory", password: testPassword, methods: []Type{TypeMSCHAPv2},
			want: outcome{
				transcript: "REQ/IDENTITY RES/IDENTITY REQ/MSCHAPV2:CHAL RES/MSCHAPV2:RESP FAI",
				serverWhy:  ReasonUnknownUser, peerWhy: ReasonRejected,
			},
		},
		{
			name:     "mschapv2 wrong password with a retry: E=691 and the peer's acknowledgement",
			server:   ServerConfig{Methods: []Type{TypeMSCHAPv2}, MSCHAPv2Retries: 1},
			identity: testUser, password: "guess", methods: []Type{TypeMSCHAPv2},
			want: outcome{
				transcript: "REQ/IDENTITY RES/IDENTITY REQ/MSCHAPV2:CHAL RES/MSCHAPV2:RESP REQ/MSCHAPV2:FAIL RES/MSCHAPV2:FAIL FAI",
				serverWhy:  ReasonWrongPassword, peerWhy: ReasonRejected,
			},
		},
		{
			name:     "mschapv2 unknown user with a retry",
			server:   ServerConfig{Methods: []Type{TypeMSCHAPv2}, MSCHAPv2Retries: 1},
			identity: "mallory", password: "guess", methods: []Type{TypeMSCHAPv2},
			want: outcome{
				transcript: "REQ/IDENTITY RES/IDENTITY REQ/MSCHAPV2:CHAL RES/MSCHAPV2:RESP REQ/MSCHAPV2:FAIL RES/MSCHAPV2:FAIL FAI",
				serverWhy:  ReasonUnknownUser, peerWhy: ReasonRejected,
			},
		},
		{
			name:     "mschapv2 with the identity configured",
			server:   ServerConfig{Methods: []Type{TypeMSCHAPv2}, Identity: testUser},
			identity: testUser, password: testPassword, methods: []Type{TypeMSCHAPv2},
			want: outcome{
				transcript: "REQ/MSCHAPV2:CHAL RES/MSCHAPV2:RESP REQ/MSCHAPV2:SUCC RES/MSCHAPV2:SUCC SUC",
				serverOK:   true, peerOK: true, mskLen: 64,
			},
		},
		{
			name:     "mschapv2 with a domain in the name",
			server:   ServerConfig{Methods: []Type{TypeMSCHAPv2}, Credentials: users{`CORP\carol`: testPassword}},
			identity: `CORP\carol`, password: testPassword, methods: []Type{TypeMSCHAPv2},
			want: outcome{
				transcript: "REQ/IDENTITY RES/IDENTITY REQ/MSCHAPV2:CHAL RES/MSCHAPV2:RESP REQ/MSCHAPV2:SUCC RES/MSCHAPV2:SUCC SUC",
				serverOK:   true, peerOK: true, mskLen: 64,
			},
		},
		{
			name:     "md5 right password",
			server:   ServerConfig{Methods: []Type{TypeMD5}},
			identity: testUser, password: testPassword, methods: []Type{TypeMD5},
			want: outcome{
				transcript: "REQ/IDENTITY RES/IDENTITY REQ/MD5 RES/MD5 SUC",
				serverOK:   true, peerOK: true,
			},
		},
		{
			name:     "md5 wrong password",
			server:   ServerConfig{Methods: []Type{TypeMD5}},
			identity: testUser, password: "guess", methods: []Type{TypeMD5},
			want: outcome{
				transcript: "REQ/IDENTITY RES/IDENTITY REQ/MD5 RES/MD5 FAI",
				serverWhy:  ReasonWrongPassword, peerWhy: ReasonRejected,
			},
		},
		{
			name:     "md5 unknown user",
			server:   ServerConfig{Methods: []Type{TypeMD5}},
			identity: "mallory", password: testPassword, methods: []Type{TypeMD5},
			want: outcome{
				transcript: "REQ/IDENTITY RES/IDENTITY REQ/MD5 RES/MD5 FAI",
				serverWhy:  ReasonUnknownUser, peerWhy: ReasonRejected,
			},
		},
		{
			name:     "md5 offered first, the peer's Nak picks mschapv2",
			server:   ServerConfig{Methods: []Type{TypeMD5, TypeMSCHAPv2}},
			identity: testUser, password: testPassword, methods: []Type{TypeMSCHAPv2},
			want: outcome{
				transcript: "REQ/IDENTITY RES/IDENTITY REQ/MD5 RES/NAK REQ/MSCHAPV2:CHAL RES/MSCHAPV2:RESP REQ/MSCHAPV2:SUCC RES/MSCHAPV2:SUCC SUC",
				serverOK:   true, peerOK: true, mskLen: 64,
			},
		},
		{
			name:     "no method in common",
			server:   ServerConfig{Methods: []Type{TypeMD5}},
			identity: testUser, password: testPassword, methods: []Type{TypeMSCHAPv2},
			want: outcome{
				transcript: "REQ/IDENTITY RES/IDENTITY REQ/MD5 RES/NAK FAI",
				serverWhy:  ReasonNak, peerWhy: ReasonRejected,
			},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := newTestServer(t, c.server)
			p := newTestPeer(t, PeerConfig{Identity: c.identity, Secret: PasswordSecret([]byte(c.password)), Methods: c.methods})
			log := converse(t, s, p)
			if got := codes(log); got != c.want.transcript {
				t.Errorf("transcript\n got %s\nwant %s", got, c.want.transcript)
			}
			if !s.Done() || !p.Done() {
				t.Fatalf("done: server %v, peer %v", s.Done(), p.Done())
			}
			sr, pr := s.Result(), p.Result()
			if (sr.Err == nil) != c.want.serverOK || reasonOf(sr.Err) != c.want.serverWhy {
				t.Errorf("server result %v, want ok %v reason %v", sr.Err, c.want.serverOK, c.want.serverWhy)
			}
			if (pr.Err == nil) != c.want.peerOK || reasonOf(pr.Err) != c.want.peerWhy {
				t.Errorf("peer result %v, want ok %v reason %v", pr.Err, c.want.peerOK, c.want.peerWhy)
			}
			if len(sr.MSK) != c.want.mskLen || !bytes.Equal(sr.MSK, pr.MSK) {
				t.Errorf("MSK: server %x, peer %x, want %d octets on both", sr.MSK, pr.MSK, c.want.mskLen)
			}
			if c.want.serverOK && sr.Identity != c.identity {
				t.Errorf("server authenticated %q, want %q", sr.Identity, c.identity)
			}
			for _, r := range []Result{sr, pr} {
				if r.Err != nil && strings.Contains(r.Err.Error(), c.password) {
					t.Errorf("error %q shows the password", r.Err)
				}
			}
		})
	}
}

// A wrong password and an unknown user must look the same on the wire:
// same packets, same lengths, only the random challenges differ.
func TestWrongPasswordAndUnknownUserLookAlike(t *testing.T) {
	for _, retries := range []int{0, 1} {
		run := func(identity, password string) []exchange {
			s := newTestServer(t, ServerConfig{Methods: []Type{TypeMSCHAPv2}, MSCHAPv2Retries: retries, Credentials: users{"known": testPassword, "other": "x"}})
			p := newTestPeer(t, PeerConfig{Identity: identity, Secret: PasswordSecret([]byte(password)), Methods: []Type{TypeMSCHAPv2}})
			return converse(t, s, p)
		}
		wrong := run("known", "guess")
		unknown := run("nobdy", "guess")
		if len(wrong) != len(unknown) {
			t.Fatalf("retries %d: %d messages for a wrong password, %d for an unknown user", retries, len(wrong), len(unknown))
		}
		for i := range wrong {
			if !wrong[i].fromServer {
				continue
			}
			if !bytes.Equal(wrong[i].msg, unknown[i].msg) {
				t.Errorf("retries %d: server message %d differs:\n%x\n%x", retries, i, wrong[i].msg, unknown[i].msg)
			}
		}
	}
}

func TestMSCHAPv2WithNTHashSecrets(t *testing.T) {
	var hash [16]byte
	ntPasswordHash([]byte(testPassword), &hash)
	creds := CredentialsFunc(func(id string) (Secret, error) {
		if id != testUser {
			return Secret{}, ErrUnknownUser
		}
		return NTHashSecret(hash), nil
	})
	s := newTestServer(t, ServerConfig{Methods: []Type{TypeMSCHAPv2}, Credentials: creds})
	p := newTestPeer(t, PeerConfig{Identity: testUser, Secret: NTHashSecret(hash), Methods: []Type{TypeMSCHAPv2}})
	converse(t, s, p)
	if s.Result().Err != nil || p.Result().Err != nil {
		t.Fatalf("server %v, peer %v", s.Result().Err, p.Result().Err)
	}
	if !bytes.Equal(s.Result().MSK, p.Result().MSK) {
		t.Fatal("MSKs differ")
	}
}

func TestMD5NeedsThePassword(t *testing.T) {
	creds := CredentialsFunc(func(string) (Secret, error) { return NTHashSecret([16]byte{1}), nil })
	s := newTestServer(t, ServerConfig{Methods: []Type{TypeMD5}, Credentials: creds, Identity: testUser})
	p := newTestPeer(t, PeerConfig{Identity: testUser, Secret: PasswordSecret([]byte(testPassword)), Methods: []Type{TypeMD5}})
	converse(t, s, p)
	if r := reasonOf(s.Result().Err); r != ReasonNoSecret {
		t.Fatalf("server reason %v, want %v", r, ReasonNoSecret)
	}

	s = newTestServer(t, ServerConfig{Methods: []Type{TypeMD5}, Identity: testUser})
	p = newTestPeer(t, PeerConfig{Identity: testUser, Secret: NTHashSecret([16]byte{1}), Methods: []Type{TypeMD5}})
	converse(t, s, p)
	if r := reasonOf(p.Result().Err); r != ReasonNoSecret {
		t.Fatalf("peer reason %v, want %v", r, ReasonNoSecret)
	}
}

func TestLookupFailureIsNotUnknownUser(t *testing.T) {
	broken := errors.New("database down")
	creds := CredentialsFunc(func(string) (Secret, error) { return Secret{}, broken })
	s := newTestServer(t, ServerConfig{Methods: []Type{TypeMSCHAPv2}, Credentials: creds})
	p := newTestPeer(t, PeerConfig{Identity: testUser, Secret: PasswordSecret([]byte(testPassword)), Methods: []Type{TypeMSCHAPv2}})
	converse(t, s, p)
	err := s.Result().Err
	if reasonOf(err) != ReasonNoSecret || !errors.Is(err, broken) {
		t.Fatalf("server result %v, want %v wrapping the lookup error", err, ReasonNoSecret)
	}
}

// The retry: after E=691 R=1 a peer that tries again with the right
// password (as a user retyping it would) gets in, and its Response must
// carry the Failure's MS-CHAPv2-ID plus one and use the challenge of C=.
func TestMSCHAPv2RetryWithTheRightPassword(t *testing.T) {
	s := newTestServer(t, ServerConfig{Methods: []Type{TypeMSCHAPv2}, Identity: testUser, MSCHAPv2Retries: 2})
	msg, err := s.Start()
	if err != nil {
		t.Fatal(err)
	}
	wrong := newTestPeer(t, PeerConfig{Identity: testUser, Secret: PasswordSecret([]byte("guess")), Methods: []Type{TypeMSCHAPv2}})
	resp, _ := wrong.Process(msg)
	if msg, err = s.Process(resp); err != nil || s.Done() {
		t.Fatalf("after a wrong password: %v, done %v", err, s.Done())
	}
	req, err := Parse(msg)
	if err != nil {
		t.Fatal(err)
	}
	f, _ := parseMSCHAP(req.Data)
	if f.OpCode != opFailure || !strings.HasPrefix(string(f.Body), "E=691 R=1 C=") {
		t.Fatalf("failure request %q", f.Body)
	}
	fields := messageFields(f.Body)
	// Rewrite the Failure Request as the Challenge a retrying peer works
	// from: same identifier, the MS-CHAPv2-ID plus one, C= as challenge.
	c := mustHex(t, fields["C"])
	challengeData := appendMSCHAP(opChallenge, f.ID+1, []byte{16}, c, []byte("xdpsec"))
	retry := newTestPeer(t, PeerConfig{Identity: testUser, Secret: PasswordSecret([]byte(testPassword)), Methods: []Type{TypeMSCHAPv2}})
	in, _ := Packet{Code: CodeRequest, Identifier: req.Identifier, Type: TypeMSCHAPv2, Data: challengeData}.Marshal()
	resp, _ = retry.Process(in)
	if msg, err = s.Process(resp); err != nil {
		t.Fatal(err)
	}
	resp, _ = retry.Process(msg)
	if msg, err = s.Process(resp); err != nil || !s.Done() || s.Result().Err != nil {
		t.Fatalf("after the retry: %v, done %v, result %v", err, s.Done(), s.Result().Err)
	}
	if _, err := retry.Process(msg); err != nil || retry.Result().Err != nil {
		t.Fatalf("peer: %v %v", err, retry.Result().Err)
	}
	if !bytes.Equal(s.Result().MSK, retry.Result().MSK) {
		t.Fatal("MSKs differ")
	}
}

// After the retries are used up the conversation ends with EAP-Failure.
func TestMSCHAPv2RetriesRunOut(t *testing.T) {
	s := newTestServer(t, ServerConfig{Methods: []Type{TypeMSCHAPv2}, Identity: testUser, MSCHAPv2Retries: 1})
	msg, _ := s.Start()
	for round := 0; ; round++ {
		req, err := Parse(msg)
		if err != nil {
			t.Fatal(err)
		}
		if req.Code == CodeFailure {
			if round != 2 {
				t.Fatalf("EAP-Failure after %d rounds, want 2", round)
			}
			break
		}
		f, _ := parseMSCHAP(req.Data)
		challenge, _, _ := parseChallenge(f.Body)
		id := f.ID
		if f.OpCode == opFailure {
			challenge = [16]byte(mustHex(t, messageFields(f.Body)["C"]))
			id++
		}
		var peerChallenge [16]byte
		var nt [24]byte
		var hash [16]byte
		ntPasswordHash([]byte("guess"), &hash)
		generateNTResponse(&challenge, &peerChallenge, testUser, &hash, &nt)
		value := append([]byte{49}, make([]byte, 49)...)
		copy(value[25:49], nt[:])
		data := appendMSCHAP(opResponse, id, value, []byte(testUser))
		in, _ := Packet{Code: CodeResponse, Identifier: req.Identifier, Type: TypeMSCHAPv2, Data: data}.Marshal()
		if msg, err = s.Process(in); err != nil {
			t.Fatal(err)
		}
	}
	if reasonOf(s.Result().Err) != ReasonWrongPassword {
		t.Fatalf("result %v", s.Result().Err)
	}
}
