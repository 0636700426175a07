package eap

import (
	"crypto/tls"
	"errors"
	"net"
	"time"
)

// tlsPipe runs crypto/tls, whose handshake blocks on a net.Conn, one EAP
// message at a time. The handshake runs in a goroutine on a pipeConn;
// when it wants input and none is left, the conn hands the driver what
// TLS wrote (a flight) and waits. Only one side runs at a time, so the
// buffers need no lock: each handover is a channel operation.
//
//	driver ── feed(msg) ──▶ conn.Read ... conn.Write ... conn.Read (empty)
//	driver ◀── event{out} ──────────────────────────────┘
//	driver ◀── event{out, done, state, err}  when the goroutine's work ends
type tlsPipe struct {
	in     chan []byte   // driver to conn.Read; closed to abandon
	ev     chan tlsEvent // conn and goroutine to driver
	conn   *pipeConn
	closed bool     // in is closed
	last   tlsEvent // the last event, once done
}

type tlsEvent struct {
	out   []byte // what TLS wrote since the last event
	done  bool   // the goroutine's work has returned
	err   error
	state tls.ConnectionState
	in    []byte // done: the octets fed and not read (should be none)
}

var errPipeClosed = errors.New("EAP-TLS conversation abandoned")

// startTLSPipe runs work (a handshake and what follows it) and returns
// the first event: the client's ClientHello, or the server waiting for it.
func startTLSPipe(work func(net.Conn) (tls.ConnectionState, error)) (*tlsPipe, tlsEvent) {
	p := &tlsPipe{in: make(chan []byte), ev: make(chan tlsEvent, 1)}
	p.conn = &pipeConn{p: p}
	go func() {
		st, err := work(p.conn)
		// The buffered channel takes this even when the driver is gone.
		p.ev <- tlsEvent{out: p.conn.take(), done: true, err: err, state: st, in: p.conn.pending}
	}()
	return p, p.wait()
}

func (p *tlsPipe) wait() tlsEvent {
	e := <-p.ev
	if e.done {
		p.last = e
	}
	return e
}

// feed hands TLS the other side's message and returns what it does next.
func (p *tlsPipe) feed(msg []byte) tlsEvent {
	if p.last.done || p.closed {
		return tlsEvent{done: true, err: errPipeClosed}
	}
	p.in <- msg
	return p.wait()
}

// close abandons a handshake still waiting for input; its goroutine ends.
func (p *tlsPipe) close() {
	if !p.closed {
		p.closed = true
		close(p.in)
	}
}

// pipeConn is the net.Conn crypto/tls talks to.
type pipeConn struct {
	p       *tlsPipe
	pending []byte // fed and not yet read
	out     []byte // written since the last event
}

func (c *pipeConn) take() []byte {
	b := c.out
	c.out = nil
	return b
}

func (c *pipeConn) Read(b []byte) (int, error) {
	if len(c.pending) == 0 {
		c.p.ev <- tlsEvent{out: c.take()}
		msg, ok := <-c.p.in
		if !ok {
			return 0, errPipeClosed
		}
		c.pending = msg
		if len(msg) == 0 {
			return 0, errPipeClosed
		}
	}
	n := copy(b, c.pending)
	c.pending = c.pending[n:]
	return n, nil
}

func (c *pipeConn) Write(b []byte) (int, error) {
	c.out = append(c.out, b...)
	return len(b), nil
}

func (c *pipeConn) Close() error                     { return nil }
func (c *pipeConn) LocalAddr() net.Addr              { return pipeAddr{} }
func (c *pipeConn) RemoteAddr() net.Addr             { return pipeAddr{} }
func (c *pipeConn) SetDeadline(time.Time) error      { return nil }
func (c *pipeConn) SetReadDeadline(time.Time) error  { return nil }
func (c *pipeConn) SetWriteDeadline(time.Time) error { return nil }

type pipeAddr struct{}

func (pipeAddr) Network() string { return "eap" }
func (pipeAddr) String() string  { return "eap-tls" }
