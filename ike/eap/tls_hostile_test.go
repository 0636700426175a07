package eap

import (
	"bytes"
	"encoding/binary"
	"errors"
	"runtime"
	"testing"
	"time"
)

// tlsData builds EAP-TLS Type-Data: flags, the Length if l >= 0, data.
func tlsData(flags byte, l int64, data []byte) []byte {
	b := []byte{flags}
	if l >= 0 {
		b = binary.BigEndian.AppendUint32(b, uint32(l))
	}
	return append(b, data...)
}

// hostileServer begins a TLS server method and returns it with the
// Identifier of its Start.
func hostileServer(t *testing.T, mod func(*TLSConfig)) (*TLSServer, uint8) {
	t.Helper()
	w := newTLSWorld(t)
	cfg := w.serverConfig()
	if mod != nil {
		mod(&cfg)
	}
	s, err := NewTLSServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	req, err := s.Begin(7)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(req.Data, []byte{tlsFlagStart}) {
		t.Fatalf("Start %x", req.Data)
	}
	t.Cleanup(s.Wipe)
	return s, req.Identifier
}

func respTLS(id uint8, data []byte) Packet {
	return Packet{Code: CodeResponse, Identifier: id, Type: TypeTLS, Data: data}
}

// expectFail sends the packets; every one but the last must be
// acknowledged, the last must fail with err.
func expectFail(t *testing.T, s *TLSServer, id uint8, pkts [][]byte, want error, reason Reason) {
	t.Helper()
	for i, d := range pkts {
		req, st, err := s.Process(respTLS(id, d))
		if i < len(pkts)-1 {
			if st != Continue || !bytes.Equal(req.Data, []byte{0}) {
				t.Fatalf("packet %d: %v %x %v, want an ACK", i, st, req.Data, err)
			}
			id = req.Identifier
			continue
		}
		var e *Error
		if st != Failed || !errors.As(err, &e) || e.Reason != reason || !errors.Is(err, want) {
			t.Fatalf("last packet: %v %v, want %v (%v)", st, err, want, reason)
		}
		if e.Method != TypeTLS {
			t.Errorf("method %v", e.Method)
		}
	}
}

func TestTLSHostileFragments(t *testing.T) {
	kb := bytes.Repeat([]byte{0x16}, 1000)
	t.Run("length-overrun", func(t *testing.T) {
		s, id := hostileServer(t, nil)
		expectFail(t, s, id, [][]byte{tlsData(0xc0, 1500, kb), tlsData(0x00, -1, kb)}, ErrBadLength, ReasonMalformed)
	})
	t.Run("length-short", func(t *testing.T) {
		s, id := hostileServer(t, nil)
		expectFail(t, s, id, [][]byte{tlsData(0xc0, 3000, kb), tlsData(0x00, -1, kb)}, ErrBadLength, ReasonMalformed)
	})
	t.Run("length-changes", func(t *testing.T) {
		s, id := hostileServer(t, nil)
		expectFail(t, s, id, [][]byte{tlsData(0xc0, 3000, kb), tlsData(0xc0, 4000, kb)}, ErrBadLength, ReasonMalformed)
	})
	t.Run("length-huge", func(t *testing.T) {
		s, id := hostileServer(t, nil)
		expectFail(t, s, id, [][]byte{tlsData(0xc0, 0xffffffff, kb)}, ErrTooLarge, ReasonMalformed)
	})
	t.Run("oversize-without-length", func(t *testing.T) {
		s, id := hostileServer(t, func(c *TLSConfig) { c.MaxMessage = 8000; c.MaxPackets = 1000 })
		var pkts [][]byte
		for range 9 {
			pkts = append(pkts, tlsData(tlsFlagMore, -1, kb))
		}
		expectFail(t, s, id, pkts, ErrTooLarge, ReasonMalformed)
		if cap(s.core.reasm.buf) > 16000 {
			t.Errorf("reassembly grew to %d", cap(s.core.reasm.buf))
		}
	})
	t.Run("too-many-fragments", func(t *testing.T) {
		s, id := hostileServer(t, nil)
		var pkts [][]byte
		for range DefaultTLSMaxPackets + 1 {
			pkts = append(pkts, tlsData(tlsFlagMore, -1, []byte{0x16}))
		}
		expectFail(t, s, id, pkts, ErrTooLarge, ReasonMalformed)
	})
	t.Run("empty-more", func(t *testing.T) {
		s, id := hostileServer(t, nil)
		expectFail(t, s, id, [][]byte{tlsData(tlsFlagMore, -1, nil)}, ErrMalformed, ReasonMalformed)
	})
	t.Run("truncated-length", func(t *testing.T) {
		s, id := hostileServer(t, nil)
		expectFail(t, s, id, [][]byte{{0x80, 0, 0}}, ErrTruncated, ReasonMalformed)
	})
	t.Run("no-flags", func(t *testing.T) {
		s, id := hostileServer(t, nil)
		expectFail(t, s, id, [][]byte{{}}, ErrTruncated, ReasonMalformed)
	})
	t.Run("ack-of-nothing", func(t *testing.T) {
		s, id := hostileServer(t, nil)
		expectFail(t, s, id, [][]byte{{0}}, ErrUnexpected, ReasonUnexpected)
	})
	t.Run("ack-ending-fragments", func(t *testing.T) {
		s, id := hostileServer(t, nil)
		expectFail(t, s, id, [][]byte{tlsData(tlsFlagMore, -1, []byte{0x16}), {0}}, ErrTruncated, ReasonMalformed)
	})
	t.Run("start-from-peer", func(t *testing.T) {
		s, id := hostileServer(t, nil)
		expectFail(t, s, id, [][]byte{{tlsFlagStart}}, ErrUnexpected, ReasonUnexpected)
	})
	t.Run("not-tls", func(t *testing.T) {
		s, id := hostileServer(t, nil)
		_, st, err := s.Process(respTLS(id, tlsData(0, -1, []byte("GET / HTTP/1.1\r\n\r\n"))))
		var e *Error
		if st != Failed || !errors.As(err, &e) || e.Reason != ReasonTLS {
			t.Fatalf("%v %v", st, err)
		}
	})
}

// TestTLSPeerHostile: the peer refuses what a server must not send.
func TestTLSPeerHostile(t *testing.T) {
	w := newTLSWorld(t)
	newPeer := func() *TLSPeer {
		p, err := NewTLSPeer(w.peerConfig())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.Wipe)
		return p
	}
	req := func(data []byte) Packet { return Packet{Code: CodeRequest, Identifier: 1, Type: TypeTLS, Data: data} }
	if _, st, _ := newPeer().Process(req(tlsData(0, -1, []byte{0x16}))); st != Failed {
		t.Error("a first request without Start was taken")
	}
	p := newPeer()
	resp, st, err := p.Process(req([]byte{tlsFlagStart}))
	if st != Continue || err != nil || resp.Data[0]&tlsFlagLength == 0 {
		t.Fatalf("Start: %v %v", st, err)
	}
	if _, st, _ := p.Process(req(tlsData(0xc0, 1<<30, []byte{0x16}))); st != Failed {
		t.Error("a 1 GiB TLS Message Length was taken")
	}
}

// TestTLSAbandoned: a conversation dropped half-way (the IKE SA gone)
// leaves no goroutine behind once wiped.
func TestTLSAbandoned(t *testing.T) {
	before := runtime.NumGoroutine()
	for range 20 {
		s, id := hostileServer(t, nil)
		s.Process(respTLS(id, tlsData(tlsFlagMore|tlsFlagLength, 5000, []byte{0x16})))
		s.Wipe()
		p, err := NewTLSPeer(newTLSWorld(t).peerConfig())
		if err != nil {
			t.Fatal(err)
		}
		p.Process(Packet{Code: CodeRequest, Identifier: 1, Type: TypeTLS, Data: []byte{tlsFlagStart}})
		p.Wipe()
	}
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before+2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before+2 {
		t.Errorf("%d goroutines, %d before", n, before)
	}
}
