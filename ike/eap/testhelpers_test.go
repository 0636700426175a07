package eap

import (
	"bytes"
	"errors"
	"testing"
)

// countingReader is a deterministic Rand: 0, 1, 2, ... from seed on.
type countingReader struct{ next byte }

func (r *countingReader) Read(b []byte) (int, error) {
	for i := range b {
		b[i] = r.next
		r.next++
	}
	return len(b), nil
}

// failingReader fails every read, as a broken random source would.
type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("no entropy") }

// users is a Credentials of cleartext passwords.
type users map[string]string

func (u users) Secret(identity string) (Secret, error) {
	p, ok := u[identity]
	if !ok {
		return Secret{}, ErrUnknownUser
	}
	return PasswordSecret([]byte(p)), nil
}

const (
	testUser     = "carol@example.org"
	testPassword = "Ar3allyg00dsecret"
)

var testUsers = users{testUser: testPassword, "dave": "daves-password"}

func newTestServer(t testing.TB, cfg ServerConfig) *Server {
	t.Helper()
	if cfg.Credentials == nil {
		cfg.Credentials = testUsers
	}
	if cfg.Rand == nil {
		cfg.Rand = &countingReader{next: 0x40}
	}
	s, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newTestPeer(t testing.TB, cfg PeerConfig) *Peer {
	t.Helper()
	if cfg.Rand == nil {
		cfg.Rand = &countingReader{next: 0x90}
	}
	p, err := NewPeer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// exchange is one message of a conversation, as the wire saw it.
type exchange struct {
	fromServer bool
	msg        []byte
}

// converse runs server and peer against each other until both are done
// or one has nothing to send, and returns the transcript.
func converse(t testing.TB, s *Server, p *Peer) []exchange {
	t.Helper()
	var log []exchange
	msg, err := s.Start()
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		log = append(log, exchange{true, msg})
		resp, err := p.Process(msg)
		if err != nil {
			t.Fatalf("peer: %v", err)
		}
		if resp == nil {
			return log
		}
		log = append(log, exchange{false, resp})
		if msg, err = s.Process(resp); err != nil {
			t.Fatalf("server: %v", err)
		}
		if s.Done() {
			log = append(log, exchange{true, msg})
			if _, err := p.Process(msg); err != nil {
				t.Fatalf("peer on the last message: %v", err)
			}
			return log
		}
	}
	t.Fatal("conversation does not end")
	return nil
}

// codes renders a transcript as "REQ/ID RES/ID REQ/MSCHAPV2 ...".
func codes(log []exchange) string {
	var b bytes.Buffer
	for i, e := range log {
		if i > 0 {
			b.WriteByte(' ')
		}
		p, err := Parse(e.msg)
		if err != nil {
			b.WriteString("BAD")
			continue
		}
		b.WriteString(p.Code.String()[4:7])
		if p.Type != 0 {
			b.WriteString("/" + p.Type.String()[4:])
		}
		if p.Type == TypeMSCHAPv2 && len(p.Data) > 0 {
			b.WriteString(":" + []string{"?", "CHAL", "RESP", "SUCC", "FAIL"}[min(int(p.Data[0]), 4)])
		}
	}
	return b.String()
}

func reasonOf(err error) Reason {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return 0
}
