package eap

import (
	"crypto/sha1"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func marshal(t testing.TB, p Packet) []byte {
	t.Helper()
	b, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// serverAwaiting returns a Server that has sent its MS-CHAPv2 Challenge,
// and that Challenge.
func serverAwaiting(t *testing.T) (*Server, Packet, mschapPacket) {
	s := newTestServer(t, ServerConfig{Methods: []Type{TypeMSCHAPv2}, Identity: testUser})
	b, err := s.Start()
	if err != nil {
		t.Fatal(err)
	}
	req, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	m, err := parseMSCHAP(req.Data)
	if err != nil {
		t.Fatal(err)
	}
	return s, req, m
}

// goodResponse is the right answer of testUser to req.
func goodResponse(t *testing.T, req Packet) Packet {
	p := newTestPeer(t, PeerConfig{Identity: testUser, Secret: PasswordSecret([]byte(testPassword)), Methods: []Type{TypeMSCHAPv2}})
	b, err := p.Process(marshal(t, req))
	if err != nil || b == nil {
		t.Fatalf("peer: %v", err)
	}
	resp, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func TestServerRefusesHostileResponses(t *testing.T) {
	for _, c := range []struct {
		name   string
		mangle func(req Packet, good Packet) []byte
		want   Reason
		is     error
	}{
		{"truncated", func(_, g Packet) []byte { return marshal(t, g)[:3] }, ReasonMalformed, ErrTruncated},
		{"EAP length lies", func(_, g Packet) []byte {
			b := marshal(t, g)
			b[3]++
			return b
		}, ReasonMalformed, ErrTruncated},
		{"wrong identifier", func(_, g Packet) []byte { g.Identifier++; return marshal(t, g) }, ReasonUnexpected, ErrUnexpected},
		{"request code", func(_, g Packet) []byte { g.Code = CodeRequest; return marshal(t, g) }, ReasonUnexpected, ErrUnexpected},
		{"success code", func(r, _ Packet) []byte { return marshal(t, Packet{Code: CodeSuccess, Identifier: r.Identifier}) }, ReasonUnexpected, ErrUnexpected},
		{"other type", func(_, g Packet) []byte { g.Type = TypeMD5; return marshal(t, g) }, ReasonUnexpected, ErrUnexpected},
		{"expanded type", func(r, _ Packet) []byte {
			return []byte{2, r.Identifier, 0, 12, 254, 0, 0, 0, 0, 0, 0, 26}
		}, ReasonMalformed, ErrExpandedType},
		{"wrong OpCode", func(_, g Packet) []byte { g.Data[0] = opChallenge; return marshal(t, g) }, ReasonUnexpected, ErrUnexpected},
		{"change password", func(_, g Packet) []byte { g.Data[0] = opChangePassword; return marshal(t, g) }, ReasonUnexpected, ErrUnexpected},
		{"success acknowledgement before the success", func(_, g Packet) []byte { g.Data = []byte{opSuccess}; return marshal(t, g) }, ReasonUnexpected, ErrUnexpected},
		{"MS-Length lies", func(_, g Packet) []byte { g.Data[3]--; return marshal(t, g) }, ReasonMalformed, ErrBadLength},
		{"MS-CHAPv2 header cut", func(_, g Packet) []byte { g.Data = g.Data[:3]; return marshal(t, g) }, ReasonMalformed, ErrTruncated},
		{"response cut", func(_, g Packet) []byte {
			g.Data = g.Data[:30]
			g.Data[2], g.Data[3] = 0, 30
			return marshal(t, g)
		}, ReasonMalformed, ErrTruncated},
		{"Value-Size not 49", func(_, g Packet) []byte { g.Data[4] = 48; return marshal(t, g) }, ReasonMalformed, ErrMalformed},
		{"wrong MS-CHAPv2-ID", func(_, g Packet) []byte { g.Data[1]++; return marshal(t, g) }, ReasonUnexpected, ErrUnexpected},
		{"no name", func(_, g Packet) []byte {
			g.Data = g.Data[:4+50]
			g.Data[2], g.Data[3] = 0, 54
			return marshal(t, g)
		}, ReasonMalformed, ErrMalformed},
		{"name with a control character", func(_, g Packet) []byte { g.Data[len(g.Data)-1] = '\n'; return marshal(t, g) }, ReasonMalformed, ErrMalformed},
		{"flipped NT-Response", func(_, g Packet) []byte { g.Data[4+1+30] ^= 1; return marshal(t, g) }, ReasonWrongPassword, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, req, _ := serverAwaiting(t)
			good := goodResponse(t, req)
			good.Data = append([]byte(nil), good.Data...)
			out, err := s.Process(c.mangle(req, good))
			if err != nil {
				t.Fatal(err)
			}
			p, perr := Parse(out)
			if perr != nil || p.Code != CodeFailure || !s.Done() {
				t.Fatalf("answer %x (%v), done %v; want EAP-Failure", out, perr, s.Done())
			}
			err = s.Result().Err
			if reasonOf(err) != c.want || (c.is != nil && !errors.Is(err, c.is)) {
				t.Fatalf("result %v, want %v %v", err, c.want, c.is)
			}
			if _, err := s.Process(out); !errors.Is(err, ErrFinished) {
				t.Fatalf("Process after the end: %v", err)
			}
		})
	}
}

// A Nak to the first Request of a method is a Nak; to any later one it is
// not allowed. The server offers only MS-CHAPv2 here, so a Nak asking for
// MD5 fails the conversation with ReasonNak.
func TestServerNakToTheFirstRequest(t *testing.T) {
	s, req, _ := serverAwaiting(t)
	out, _ := s.Process(marshal(t, Packet{Code: CodeResponse, Identifier: req.Identifier, Type: TypeNak, Data: []byte{byte(TypeMD5)}}))
	if p, _ := Parse(out); p.Code != CodeFailure || reasonOf(s.Result().Err) != ReasonNak {
		t.Fatalf("answer %x, result %v", out, s.Result().Err)
	}
	if !strings.Contains(s.Result().Err.Error(), "EAP_MD5") {
		t.Fatalf("the Nak's wish is not in %q", s.Result().Err)
	}
}

func TestServerRefusesBadIdentity(t *testing.T) {
	for _, id := range [][]byte{nil, []byte("a\x00b"), []byte{0xff, 0xfe}, []byte(strings.Repeat("x", MaxIdentityLen+1))} {
		s := newTestServer(t, ServerConfig{Methods: []Type{TypeMSCHAPv2}})
		b, _ := s.Start()
		req, _ := Parse(b)
		out, _ := s.Process(marshal(t, Packet{Code: CodeResponse, Identifier: req.Identifier, Type: TypeIdentity, Data: id}))
		if p, _ := Parse(out); p.Code != CodeFailure || reasonOf(s.Result().Err) != ReasonMalformed {
			t.Errorf("identity %q: answer %x, result %v", id, out, s.Result().Err)
		}
	}
}

func TestServerBrokenRandomness(t *testing.T) {
	s, err := NewServer(ServerConfig{Methods: []Type{TypeMSCHAPv2}, Credentials: testUsers, Rand: failingReader{}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Start(); err == nil {
		t.Fatal("Start without randomness succeeded")
	}
}

func TestNewServerRefuses(t *testing.T) {
	for _, cfg := range []ServerConfig{
		{Credentials: testUsers},
		{Methods: []Type{TypeTLS}, Credentials: testUsers},
		{Methods: []Type{TypeIdentity}, Credentials: testUsers},
		{Methods: []Type{TypeMSCHAPv2}},
		{Methods: []Type{TypeMSCHAPv2}, Credentials: testUsers, MSCHAPv2Retries: -1},
		{Methods: []Type{TypeMSCHAPv2}, Credentials: testUsers, Name: "gw\n"},
		{Methods: []Type{TypeNak}, Credentials: testUsers, NewMethod: func(Type, string) ServerMethod { return nil }},
	} {
		if _, err := NewServer(cfg); err == nil {
			t.Errorf("NewServer(%+v) succeeded", cfg)
		}
	}
}

// charonServer plays charon's EAP-MSCHAPv2 server on the wire as its
// source describes it: MS-CHAPv2-ID equal to the EAP Identifier, the name
// "strongSwan", and a Success Request whose message ends in a NUL octet.
type charonServer struct {
	id        uint8
	challenge [16]byte
}

func (c *charonServer) challengeRequest() []byte {
	data := appendMSCHAP(opChallenge, c.id, []byte{16}, c.challenge[:], []byte("strongSwan"))
	return mustMarshal(Packet{Code: CodeRequest, Identifier: c.id, Type: TypeMSCHAPv2, Data: data})
}

func (c *charonServer) successRequest(t *testing.T, resp []byte, password string, sAlter func(string) string) []byte {
	p, err := Parse(resp)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := parseMSCHAP(p.Data)
	peerChallenge, nt, name, err := parseResponse(m.Body)
	if err != nil {
		t.Fatal(err)
	}
	var hash [16]byte
	ntPasswordHash([]byte(password), &hash)
	var ar [sha1.Size]byte
	generateAuthenticatorResponse(&hash, &nt, &peerChallenge, &c.challenge, string(name), &ar)
	s := sAlter(fmt.Sprintf("S=%X", ar[:]))
	data := appendMSCHAP(opSuccess, c.id, []byte(s+" M=Welcome2strongSwan\x00"))
	return mustMarshal(Packet{Code: CodeRequest, Identifier: c.id + 1, Type: TypeMSCHAPv2, Data: data})
}

func mustMarshal(p Packet) []byte {
	b, err := p.Marshal()
	if err != nil {
		panic(err)
	}
	return b
}

func TestPeerAgainstCharonsWireFormat(t *testing.T) {
	for _, c := range []struct {
		name   string
		alter  func(string) string
		want   Reason
		expect bool // an acknowledgement is sent
	}{
		{"as sent", func(s string) string { return s }, 0, true},
		{"lower-case hex", func(s string) string { return "S=" + strings.ToLower(s[2:]) }, 0, true},
		{"wrong authenticator response", func(s string) string { return s[:len(s)-1] + "0" }, ReasonServerNotAuthenticated, false},
		{"S= cut short", func(s string) string { return s[:20] }, ReasonMalformed, false},
		{"S= not hex", func(s string) string { return "S=" + strings.Repeat("zz", 20) }, ReasonMalformed, false},
		{"no S=", func(string) string { return "X=1" }, ReasonMalformed, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			cs := &charonServer{id: 0x2a, challenge: [16]byte{9, 8, 7}}
			p := newTestPeer(t, PeerConfig{Identity: testUser, Secret: PasswordSecret([]byte(testPassword)), Methods: []Type{TypeMSCHAPv2}})
			resp, err := p.Process(cs.challengeRequest())
			if err != nil || resp == nil {
				t.Fatalf("response: %v", err)
			}
			r, _ := Parse(resp)
			if r.Identifier != cs.id || r.Data[1] != cs.id {
				t.Fatalf("identifier %d, MS-CHAPv2-ID %d, want %d", r.Identifier, r.Data[1], cs.id)
			}
			ack, err := p.Process(cs.successRequest(t, resp, testPassword, c.alter))
			if err != nil {
				t.Fatal(err)
			}
			if (ack != nil) != c.expect {
				t.Fatalf("acknowledgement %x, want one: %v", ack, c.expect)
			}
			if !c.expect {
				if reasonOf(p.Result().Err) != c.want || !p.Done() {
					t.Fatalf("result %v, want %v", p.Result().Err, c.want)
				}
				return
			}
			if a, _ := Parse(ack); a.Identifier != cs.id+1 || string(a.Data) != "\x03" {
				t.Fatalf("acknowledgement %x", ack)
			}
			if _, err := p.Process(mustMarshal(Packet{Code: CodeSuccess, Identifier: cs.id + 1})); err != nil {
				t.Fatal(err)
			}
			if !p.Done() || p.Result().Err != nil || len(p.Result().MSK) != 64 {
				t.Fatalf("done %v, result %+v", p.Done(), p.Result())
			}
		})
	}
}

func TestPeerRefusesHostileRequests(t *testing.T) {
	challenge := func(mangle func(d []byte) []byte) []byte {
		d := appendMSCHAP(opChallenge, 5, []byte{16}, make([]byte, 16), []byte("gw"))
		return mustMarshal(Packet{Code: CodeRequest, Identifier: 5, Type: TypeMSCHAPv2, Data: mangle(d)})
	}
	same := func(d []byte) []byte { return d }
	for _, c := range []struct {
		name string
		msgs [][]byte // the last one must end the conversation
		want Reason
	}{
		{"success first", [][]byte{mustMarshal(Packet{Code: CodeSuccess, Identifier: 1})}, ReasonUnexpected},
		{"success after the response, wrong identifier", [][]byte{challenge(same), mustMarshal(Packet{Code: CodeSuccess, Identifier: 9})}, ReasonUnexpected},
		{"success after the response, before the server's proof", [][]byte{challenge(same), mustMarshal(Packet{Code: CodeSuccess, Identifier: 5})}, ReasonUnexpected},
		{"failure", [][]byte{mustMarshal(Packet{Code: CodeFailure, Identifier: 1})}, ReasonRejected},
		{"response code", [][]byte{mustMarshal(Packet{Code: CodeResponse, Identifier: 1, Type: TypeIdentity})}, ReasonUnexpected},
		{"truncated", [][]byte{{1, 1, 0}}, ReasonMalformed},
		{"length lies", [][]byte{{1, 1, 0, 200, 1}}, ReasonMalformed},
		{"expanded request", [][]byte{{1, 1, 0, 12, 254, 0, 0, 0, 0, 0, 0, 26}}, ReasonUnsupported},
		{"nak request", [][]byte{mustMarshal(Packet{Code: CodeRequest, Identifier: 1, Type: TypeNak, Data: []byte{4}})}, ReasonMalformed},
		{"challenge Value-Size 8", [][]byte{challenge(func(d []byte) []byte { d[4] = 8; return d })}, ReasonMalformed},
		{"challenge cut", [][]byte{challenge(func(d []byte) []byte { d = d[:12]; d[3] = 12; return d })}, ReasonMalformed},
		{"MS-Length lies", [][]byte{challenge(func(d []byte) []byte { d[3] += 3; return d })}, ReasonMalformed},
		{"one-octet request", [][]byte{challenge(func([]byte) []byte { return []byte{opSuccess} })}, ReasonMalformed},
		{"change password", [][]byte{challenge(func(d []byte) []byte { d[0] = opChangePassword; return d })}, ReasonUnsupported},
		{"success request first", [][]byte{challenge(func(d []byte) []byte { d[0] = opSuccess; return d })}, ReasonUnexpected},
		{"two challenges", [][]byte{challenge(same), challenge(same)}, ReasonUnexpected},
		{"identity during the method", [][]byte{challenge(same), mustMarshal(Packet{Code: CodeRequest, Identifier: 6, Type: TypeIdentity})}, ReasonUnexpected},
		{"other method during the method", [][]byte{challenge(same), mustMarshal(Packet{Code: CodeRequest, Identifier: 6, Type: TypeMD5, Data: []byte{1, 1}})}, ReasonUnexpected},
		{"md5 Value-Size past the end", [][]byte{mustMarshal(Packet{Code: CodeRequest, Identifier: 1, Type: TypeMD5, Data: []byte{17, 1}})}, ReasonMalformed},
		{"md5 Value-Size 0", [][]byte{mustMarshal(Packet{Code: CodeRequest, Identifier: 1, Type: TypeMD5, Data: []byte{0}})}, ReasonMalformed},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := newTestPeer(t, PeerConfig{Identity: testUser, Secret: PasswordSecret([]byte(testPassword)), Methods: []Type{TypeMSCHAPv2, TypeMD5}})
			for i, m := range c.msgs {
				out, err := p.Process(m)
				if err != nil {
					t.Fatalf("message %d: %v", i, err)
				}
				last := i == len(c.msgs)-1
				if last != p.Done() {
					t.Fatalf("message %d: done %v", i, p.Done())
				}
				if last && out != nil {
					t.Fatalf("answer %x to a bad request", out)
				}
			}
			if reasonOf(p.Result().Err) != c.want {
				t.Fatalf("result %v, want %v", p.Result().Err, c.want)
			}
			if _, err := p.Process(challenge(same)); !errors.Is(err, ErrFinished) {
				t.Fatalf("Process after the end: %v", err)
			}
		})
	}
}

func TestPeerFailureRequest(t *testing.T) {
	p := newTestPeer(t, PeerConfig{Identity: testUser, Secret: PasswordSecret([]byte(testPassword)), Methods: []Type{TypeMSCHAPv2}})
	d := appendMSCHAP(opChallenge, 5, []byte{16}, make([]byte, 16), []byte("gw"))
	if _, err := p.Process(mustMarshal(Packet{Code: CodeRequest, Identifier: 5, Type: TypeMSCHAPv2, Data: d})); err != nil {
		t.Fatal(err)
	}
	d = appendMSCHAP(opFailure, 5, []byte("E=691 R=0 C=00000000000000000000000000000000 V=3 M=go away\x1b[2J"))
	ack, err := p.Process(mustMarshal(Packet{Code: CodeRequest, Identifier: 6, Type: TypeMSCHAPv2, Data: d}))
	if err != nil {
		t.Fatal(err)
	}
	if a, _ := Parse(ack); a.Identifier != 6 || string(a.Data) != "\x04" {
		t.Fatalf("acknowledgement %x", ack)
	}
	e := p.Result().Err
	if reasonOf(e) != ReasonRejected || !strings.Contains(e.Error(), "E=691 ERROR_AUTHENTICATION_FAILURE") {
		t.Fatalf("result %v", e)
	}
	if strings.ContainsRune(e.Error(), 0x1b) {
		t.Fatalf("the server's message reaches the log raw: %q", e)
	}
	// The EAP-Failure that follows is taken quietly.
	if out, err := p.Process(mustMarshal(Packet{Code: CodeFailure, Identifier: 6})); err != nil || out != nil {
		t.Fatalf("final EAP-Failure: %x %v", out, err)
	}
}

func TestPeerAnswersNotificationAndIdentity(t *testing.T) {
	p := newTestPeer(t, PeerConfig{Identity: testUser, Secret: PasswordSecret([]byte(testPassword)), Methods: []Type{TypeMSCHAPv2}})
	out, _ := p.Process(mustMarshal(Packet{Code: CodeRequest, Identifier: 1, Type: TypeNotification, Data: []byte("hello")}))
	if r, _ := Parse(out); r.Type != TypeNotification || r.Identifier != 1 || len(r.Data) != 0 {
		t.Fatalf("notification answer %x", out)
	}
	out, _ = p.Process(mustMarshal(Packet{Code: CodeRequest, Identifier: 2, Type: TypeIdentity}))
	if r, _ := Parse(out); r.Type != TypeIdentity || r.Identifier != 2 || string(r.Data) != testUser {
		t.Fatalf("identity answer %x", out)
	}
	out, _ = p.Process(mustMarshal(Packet{Code: CodeRequest, Identifier: 3, Type: TypeTLS, Data: []byte{0x20}}))
	if r, _ := Parse(out); r.Type != TypeNak || string(r.Data) != "\x1a" {
		t.Fatalf("nak %x", out)
	}
	if p.Done() {
		t.Fatal("done after a Nak")
	}
}

func TestNewPeerRefuses(t *testing.T) {
	good := PasswordSecret([]byte("x"))
	for _, cfg := range []PeerConfig{
		{Secret: good, Methods: []Type{TypeMSCHAPv2}},
		{Identity: "a\x00", Secret: good, Methods: []Type{TypeMSCHAPv2}},
		{Identity: "carol", Secret: good},
		{Identity: "carol", Secret: good, Methods: []Type{TypeTLS}},
		{Identity: "carol", Methods: []Type{TypeMSCHAPv2}},
	} {
		if _, err := NewPeer(cfg); err == nil {
			t.Errorf("NewPeer(%+v) succeeded", cfg)
		}
	}
}

// A Nak is an answer to a method's first Request only (RFC 3748 section
// 5.3.1); later in the method it is out of place.
func TestServerNakLaterInTheMethod(t *testing.T) {
	s := newTestServer(t, ServerConfig{Methods: []Type{TypeMSCHAPv2, TypeMD5}, Identity: testUser, MSCHAPv2Retries: 1})
	b, _ := s.Start()
	req, _ := Parse(b)
	bad := goodResponse(t, req)
	bad.Data = append([]byte(nil), bad.Data...)
	bad.Data[4+1+30] ^= 1
	b, _ = s.Process(marshal(t, bad))
	req, _ = Parse(b)
	if req.Code != CodeRequest {
		t.Fatalf("no Failure Request: %x", b)
	}
	out, _ := s.Process(marshal(t, Packet{Code: CodeResponse, Identifier: req.Identifier, Type: TypeNak, Data: []byte{byte(TypeMD5)}}))
	if p, _ := Parse(out); p.Code != CodeFailure || reasonOf(s.Result().Err) != ReasonUnexpected {
		t.Fatalf("answer %x, result %v", out, s.Result().Err)
	}
}
