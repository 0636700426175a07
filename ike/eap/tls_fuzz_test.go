package eap

import (
	"crypto/tls"
	"testing"
)

// The EAP-TLS fuzz targets feed one side the Type-Data of the other
// side's packets (framed as in fuzz_test.go, after a configuration
// octet: bit 0 caps TLS at 1.2, bit 1 uses 64-octet fragments). The
// seeds are a conversation recorded between our two sides; TLS's own
// randomness makes a replay fail at the Finished messages at the latest,
// so the framing, reassembly and the first handshake messages are what
// the fuzzer explores. Each input must end without a panic, within the
// limits, and leave nothing running after Wipe.

func fuzzTLSConfig(c TLSConfig, b byte) TLSConfig {
	if b&1 != 0 {
		c.MaxVersion = tls.VersionTLS12
	}
	if b&2 != 0 {
		c.FragmentSize = 64
		c.MaxPackets = 200
	}
	return c
}

// recordTLS runs a conversation between our two sides and returns the
// Type-Data of the peer's Responses and of the server's Requests.
func recordTLS(t testing.TB, w *tlsWorld, cfg byte) (fromPeer, fromServer [][]byte) {
	s, err := NewTLSServer(fuzzTLSConfig(w.serverConfig(), cfg))
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewTLSPeer(fuzzTLSConfig(w.peerConfig(), cfg))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Wipe()
	defer p.Wipe()
	req, err := s.Begin(1)
	if err != nil {
		t.Fatal(err)
	}
	for range 300 {
		fromServer = append(fromServer, req.Data)
		resp, st, _ := p.Process(req)
		if st == Failed {
			return
		}
		fromPeer = append(fromPeer, resp.Data)
		var sst Status
		req, sst, _ = s.Process(*resp)
		if sst != Continue {
			return
		}
	}
	return
}

func FuzzTLSServer(f *testing.F) {
	w := newTLSWorld(f)
	for _, c := range []byte{0, 1, 2, 3} {
		fromPeer, _ := recordTLS(f, w, c)
		f.Add(joinMessages(c, fromPeer))
	}
	f.Add(joinMessages(0, [][]byte{tlsData(0xc0, 100, make([]byte, 60)), tlsData(0, -1, make([]byte, 60))}))
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) == 0 {
			return
		}
		s, err := NewTLSServer(fuzzTLSConfig(w.serverConfig(), in[0]))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Wipe()
		req, err := s.Begin(1)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range splitMessages(in[1:]) {
			out, st, err := s.Process(Packet{Code: CodeResponse, Identifier: req.Identifier, Type: TypeTLS, Data: m})
			if st == Failed {
				if err == nil {
					t.Fatal("failed without an error")
				}
				return
			}
			if st == Succeeded {
				if len(s.MSK()) != 64 {
					t.Fatal("success without an MSK")
				}
				return
			}
			if out.Len() > s.core.cfg.FragmentSize {
				t.Fatalf("request of %d octets", out.Len())
			}
			if len(s.core.reasm.buf) > s.core.cfg.MaxMessage {
				t.Fatal("reassembly past its limit")
			}
			req = out
		}
	})
}

func FuzzTLSPeer(f *testing.F) {
	w := newTLSWorld(f)
	for _, c := range []byte{0, 1, 2, 3} {
		_, fromServer := recordTLS(f, w, c)
		f.Add(joinMessages(c, fromServer))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) == 0 {
			return
		}
		p, err := NewTLSPeer(fuzzTLSConfig(w.peerConfig(), in[0]))
		if err != nil {
			t.Fatal(err)
		}
		defer p.Wipe()
		for i, m := range splitMessages(in[1:]) {
			resp, st, err := p.Process(Packet{Code: CodeRequest, Identifier: uint8(i), Type: TypeTLS, Data: m})
			if st == Failed {
				if err == nil {
					t.Fatal("failed without an error")
				}
				return
			}
			if resp == nil || resp.Len() > p.core.cfg.FragmentSize {
				t.Fatal("no response, or one too long")
			}
			if st == Succeeded {
				return
			}
		}
	})
}
