package eap

import (
	"encoding/binary"
	"testing"
)

// The fuzz targets feed a Server or a Peer a sequence of messages. The
// input is one configuration octet, then messages, each with a two-octet
// length in front. Randomness is deterministic, so the recorded
// conversations of the seed corpus replay in full and the fuzzer starts
// from every state, success included.

func splitMessages(b []byte) [][]byte {
	var msgs [][]byte
	for len(b) >= 2 {
		n := int(binary.BigEndian.Uint16(b))
		b = b[2:]
		if n > len(b) {
			n = len(b)
		}
		msgs = append(msgs, b[:n])
		b = b[n:]
	}
	return msgs
}

func joinMessages(cfg byte, msgs [][]byte) []byte {
	out := []byte{cfg}
	for _, m := range msgs {
		out = binary.BigEndian.AppendUint16(out, uint16(len(m)))
		out = append(out, m...)
	}
	return out
}

// fuzzServerConfig decodes the configuration octet: bit 0 offers MD5
// first, bit 1 configures the identity, bits 2-3 are the retries.
func fuzzServerConfig(c byte) ServerConfig {
	cfg := ServerConfig{Methods: []Type{TypeMSCHAPv2, TypeMD5}, Credentials: testUsers, Rand: &countingReader{next: 0x40}}
	if c&1 != 0 {
		cfg.Methods = []Type{TypeMD5, TypeMSCHAPv2}
	}
	if c&2 != 0 {
		cfg.Identity = testUser
	}
	cfg.MSCHAPv2Retries = int(c>>2) & 3
	return cfg
}

// fuzzPeerConfig: bit 0 prefers MD5, bit 1 uses the wrong password.
func fuzzPeerConfig(c byte) PeerConfig {
	cfg := PeerConfig{Identity: testUser, Secret: PasswordSecret([]byte(testPassword)), Methods: []Type{TypeMSCHAPv2, TypeMD5}, Rand: &countingReader{next: 0x90}}
	if c&1 != 0 {
		cfg.Methods = []Type{TypeMD5, TypeMSCHAPv2}
	}
	if c&2 != 0 {
		cfg.Secret = PasswordSecret([]byte("guess"))
	}
	return cfg
}

// seedConversations records real conversations: for each pair of
// configuration octets, what the server sent and what the peer sent.
func seedConversations(f *testing.F) (server, peer [][]byte) {
	for sc := byte(0); sc < 8; sc++ {
		for pc := byte(0); pc < 4; pc++ {
			s, err := NewServer(fuzzServerConfig(sc))
			if err != nil {
				f.Fatal(err)
			}
			p, err := NewPeer(fuzzPeerConfig(pc))
			if err != nil {
				f.Fatal(err)
			}
			var fromServer, fromPeer [][]byte
			for _, e := range converse(f, s, p) {
				if e.fromServer {
					fromServer = append(fromServer, e.msg)
				} else {
					fromPeer = append(fromPeer, e.msg)
				}
			}
			server = append(server, joinMessages(sc, fromPeer))
			peer = append(peer, joinMessages(pc, fromServer))
		}
	}
	return server, peer
}

func FuzzParse(f *testing.F) {
	f.Add([]byte{1, 1, 0, 5, 1})
	f.Add([]byte{3, 1, 0, 4})
	f.Add([]byte{2, 9, 0, 10, 26, 2, 9, 0, 5, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := Parse(b)
		if err != nil {
			return
		}
		out, err := p.Marshal()
		if err != nil {
			t.Fatalf("Marshal of a parsed packet: %v", err)
		}
		q, err := Parse(out)
		if err != nil || q.Code != p.Code || q.Identifier != p.Identifier || q.Type != p.Type || string(q.Data) != string(p.Data) {
			t.Fatalf("round trip %x -> %x: %v", b, out, err)
		}
	})
}

func FuzzEAPServer(f *testing.F) {
	seeds, _ := seedConversations(f)
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) == 0 {
			return
		}
		s, err := NewServer(fuzzServerConfig(in[0]))
		if err != nil {
			t.Fatal(err)
		}
		out, err := s.Start()
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range splitMessages(in[1:]) {
			if s.Done() {
				if _, err := s.Process(m); err != ErrFinished {
					t.Fatalf("Process after the end: %v", err)
				}
				break
			}
			if out, err = s.Process(m); err != nil {
				t.Fatalf("Process: %v", err)
			}
			p, err := Parse(out)
			if err != nil || p.Code == CodeResponse {
				t.Fatalf("server sends %x (%v)", out, err)
			}
			if s.Done() != (p.Code == CodeSuccess || p.Code == CodeFailure) {
				t.Fatalf("server sends %s, done %v", p.Code, s.Done())
			}
		}
		if !s.Done() {
			return
		}
		r := s.Result()
		if r.Err == nil {
			if _, known := testUsers[r.Identity]; !known {
				t.Fatalf("authenticated %q, who has no secret", r.Identity)
			}
			if r.Method == TypeMSCHAPv2 && len(r.MSK) != MSCHAPv2MSKLen {
				t.Fatalf("MSK of %d octets", len(r.MSK))
			}
		} else if _, ok := r.Err.(*Error); !ok {
			t.Fatalf("result error %T", r.Err)
		}
	})
}

func FuzzEAPPeer(f *testing.F) {
	_, seeds := seedConversations(f)
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) == 0 {
			return
		}
		p, err := NewPeer(fuzzPeerConfig(in[0]))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range splitMessages(in[1:]) {
			wasDone := p.Done()
			out, err := p.Process(m)
			if wasDone {
				if out != nil {
					t.Fatalf("answer %x after the end", out)
				}
				continue
			}
			if err != nil {
				t.Fatalf("Process: %v", err)
			}
			if out == nil {
				continue
			}
			if r, err := Parse(out); err != nil || r.Code != CodeResponse {
				t.Fatalf("peer sends %x (%v)", out, err)
			}
		}
		if p.Done() {
			r := p.Result()
			if r.Err == nil && r.Method == TypeMSCHAPv2 && len(r.MSK) != MSCHAPv2MSKLen {
				t.Fatalf("MSK of %d octets", len(r.MSK))
			}
		}
	})
}
