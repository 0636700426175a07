// Package radiustest is an in-process RADIUS server for tests: it checks
// what a client sends (Request Authenticator of accounting, the
// Message-Authenticator of Access-Requests), hands each request to a
// test's handler, and signs the handler's reply as a real server would,
// or with another secret, or not at all, or sends raw bytes.
package radiustest

import (
	"crypto/hmac"
	"crypto/md5"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"sync"
	"testing"

	"layeh.com/radius"
	"layeh.com/radius/rfc2869"
)

// Request is one datagram the server received.
type Request struct {
	*radius.Packet
	Wire []byte
	// Authentic: an Access-Request's Message-Authenticator, or an
	// Accounting-Request's Request Authenticator, verified with the
	// server's secret.
	Authentic bool
	// Seq counts the datagrams received before this one (0 first),
	// retransmissions included.
	Seq int
}

// Reply is what a handler answers. Nil: stay silent.
type Reply struct {
	Code       radius.Code
	Attributes radius.Attributes
	// Secret, when set, signs the reply instead of the server's secret
	// (a server configured with another shared secret).
	Secret []byte
	// NoMessageAuthenticator leaves the Message-Authenticator out;
	// BadMessageAuthenticator puts a wrong one in, under a correct
	// Response Authenticator.
	NoMessageAuthenticator  bool
	BadMessageAuthenticator bool
	// Identifier, when set, replaces the request's.
	Identifier *byte
	// Raw, when set, is sent as it is, nothing else applies.
	Raw []byte
	// Before are sent ahead of this reply, in order (hostile or stale
	// replies to see dropped).
	Before []*Reply
}

// Handler answers a request; it runs on the server's goroutine.
type Handler func(req *Request) *Reply

// Server listens on a UDP port of 127.0.0.1.
type Server struct {
	Secret []byte
	conn   *net.UDPConn

	mu       sync.Mutex
	handler  Handler
	requests []*Request
}

// NewServer starts a server, stopped at the end of the test.
func NewServer(t testing.TB, secret string, h Handler) *Server {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Secret: []byte(secret), conn: conn, handler: h}
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.serve()
	}()
	t.Cleanup(func() {
		conn.Close()
		<-done
	})
	return s
}

// AddrPort is where the server listens.
func (s *Server) AddrPort() netip.AddrPort { return s.conn.LocalAddr().(*net.UDPAddr).AddrPort() }

// Port is the server's port.
func (s *Server) Port() uint16 { return s.AddrPort().Port() }

// SetHandler replaces the handler.
func (s *Server) SetHandler(h Handler) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.handler = h
}

// Requests are the datagrams received so far.
func (s *Server) Requests() []*Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*Request(nil), s.requests...)
}

func (s *Server) serve() {
	buf := make([]byte, 65536)
	for {
		n, from, err := s.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		wire := append([]byte(nil), buf[:n]...)
		p, err := radius.Parse(wire, s.Secret)
		if err != nil {
			continue
		}
		s.mu.Lock()
		req := &Request{Packet: p, Wire: wire, Authentic: authentic(wire, s.Secret), Seq: len(s.requests)}
		s.requests = append(s.requests, req)
		h := s.handler
		s.mu.Unlock()
		if h == nil {
			continue
		}
		r := h(req)
		if r == nil {
			continue
		}
		for _, b := range append(append([]*Reply(nil), r.Before...), r) {
			out, err := s.encode(req, b)
			if err == nil {
				s.conn.WriteToUDPAddrPort(out, from)
			}
		}
	}
}

// authentic checks a request the way a server does.
func authentic(wire, secret []byte) bool {
	switch radius.Code(wire[0]) {
	case radius.CodeAccountingRequest:
		return radius.IsAuthenticRequest(wire, secret)
	case radius.CodeAccessRequest:
		off := messageAuthenticator(wire)
		if off < 0 {
			return false
		}
		c := append([]byte(nil), wire...)
		clear(c[off : off+16])
		m := hmac.New(md5.New, secret)
		m.Write(c)
		return hmac.Equal(m.Sum(nil), wire[off:off+16])
	}
	return false
}

func messageAuthenticator(b []byte) int {
	for i := 20; i+2 <= len(b); {
		l := int(b[i+1])
		if l < 2 || i+l > len(b) {
			return -1
		}
		if radius.Type(b[i]) == rfc2869.MessageAuthenticator_Type && l == 18 {
			return i + 2
		}
		i += l
	}
	return -1
}

// encode signs a reply to req: Message-Authenticator (RFC 3579 §3.2)
// first, then the Response Authenticator over the result (RFC 2865 §3).
func (s *Server) encode(req *Request, r *Reply) ([]byte, error) {
	if r.Raw != nil {
		return r.Raw, nil
	}
	secret := s.Secret
	if r.Secret != nil {
		secret = r.Secret
	}
	p := req.Response(r.Code)
	p.Secret = secret
	if r.Identifier != nil {
		p.Identifier = *r.Identifier
	}
	p.Attributes = append(radius.Attributes(nil), r.Attributes...)
	withMA := !r.NoMessageAuthenticator && r.Code != radius.CodeAccountingResponse
	if withMA {
		p.Attributes.Add(rfc2869.MessageAuthenticator_Type, make(radius.Attribute, 16))
	}
	b, err := p.MarshalBinary()
	if err != nil {
		return nil, err
	}
	if withMA {
		off := messageAuthenticator(b)
		if off < 0 {
			return nil, errors.New("radiustest: Message-Authenticator lost")
		}
		key := secret
		if r.BadMessageAuthenticator {
			key = []byte("not the secret")
		}
		m := hmac.New(md5.New, key)
		m.Write(b)
		m.Sum(b[off:off])
	}
	binary.BigEndian.PutUint16(b[2:4], uint16(len(b)))
	h := md5.New()
	h.Write(b[:4])
	h.Write(req.Authenticator[:])
	h.Write(b[20:])
	h.Write(secret)
	h.Sum(b[4:4])
	return b, nil
}
