// Package udptest runs IKE engines over real UDP sockets
// (internal/ikesocket) for tests: an ike.Sender on the sockets, the
// receive loop feeding an engine, and Sender wrappers that lose,
// duplicate or hold datagrams. Package ike itself knows no sockets; its
// tests use the in-memory network of ike/iketest, these run the same
// exchanges through the kernel's UDP.
package udptest

import (
	"encoding/binary"
	"math/rand/v2"
	"slices"
	"sync"

	"github.com/xdpsec/xdpsec/ike"
	"github.com/xdpsec/xdpsec/ike/message"
	"github.com/xdpsec/xdpsec/internal/ikesocket"
)

// Sender sends an engine's datagrams through IKE sockets.
type Sender struct{ Sockets *ikesocket.Sockets }

func (s Sender) Send(d ike.Datagram) error {
	return s.Sockets.Send(ikesocket.Datagram{Local: d.Local, Remote: d.Remote, Data: d.Data})
}

// Serve hands every datagram the sockets receive to the engine, until the
// sockets are closed.
func Serve(s *ikesocket.Sockets, e *ike.Engine) {
	s.Run(func(d ikesocket.Datagram) {
		// The engine keeps some messages (IKE_SA_INIT for AUTH, fragments):
		// the sockets reuse their buffer.
		e.HandleDatagram(ike.Datagram{Local: d.Local, Remote: d.Remote, Data: slices.Clone(d.Data)})
	})
}

// Lossy drops and duplicates datagrams at random, from a fixed seed so a
// failing run can be repeated.
type Lossy struct {
	Next ike.Sender
	// Drop and Dup are probabilities in [0, 1].
	Drop, Dup float64

	mu                  sync.Mutex // guards rng and the counters
	rng                 *rand.Rand
	Dropped, Duplicated int
}

// NewLossy wraps next.
func NewLossy(next ike.Sender, seed uint64, drop, dup float64) *Lossy {
	return &Lossy{Next: next, Drop: drop, Dup: dup, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

func (l *Lossy) Send(d ike.Datagram) error {
	l.mu.Lock()
	drop, dup := l.rng.Float64() < l.Drop, l.rng.Float64() < l.Dup
	if drop {
		l.Dropped++
	} else if dup {
		l.Duplicated++
	}
	l.mu.Unlock()
	if drop {
		return nil // lost on the way: the engine does not know
	}
	if err := l.Next.Send(d); err != nil {
		return err
	}
	if dup {
		return l.Next.Send(ike.Datagram{Local: d.Local, Remote: d.Remote, Data: slices.Clone(d.Data)})
	}
	return nil
}

// Gate holds the requests of one exchange type sent through any of its
// Senders until N of them are held, then sends them all at once: both
// ends' requests are on the wire before either is answered, as in a
// simultaneous rekey.
type Gate struct {
	mu       sync.Mutex // guards everything below
	exchange message.ExchangeType
	n        int
	held     []held
}

type held struct {
	next ike.Sender
	d    ike.Datagram
}

// Arm makes the gate hold the next n requests of this exchange type.
func (g *Gate) Arm(exchange message.ExchangeType, n int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.exchange, g.n = exchange, n
}

// Sender returns a Sender through the gate to next.
func (g *Gate) Sender(next ike.Sender) ike.Sender { return gateSender{g, next} }

type gateSender struct {
	g    *Gate
	next ike.Sender
}

func (s gateSender) Send(d ike.Datagram) error {
	g := s.g
	g.mu.Lock()
	if g.n == 0 || !isRequest(d.Data, g.exchange) {
		g.mu.Unlock()
		return s.next.Send(d)
	}
	g.held = append(g.held, held{s.next, ike.Datagram{Local: d.Local, Remote: d.Remote, Data: slices.Clone(d.Data)}})
	if len(g.held) < g.n {
		g.mu.Unlock()
		return nil
	}
	release := g.held
	g.held, g.n = nil, 0
	g.mu.Unlock()
	for _, h := range release {
		if err := h.next.Send(h.d); err != nil {
			return err
		}
	}
	return nil
}

// isRequest reports whether data is a request of this exchange, with or
// without the non-ESP marker.
func isRequest(data []byte, exchange message.ExchangeType) bool {
	if len(data) >= 4 && binary.BigEndian.Uint32(data) == 0 {
		data = data[4:]
	}
	h, err := message.UnmarshalHeader(data)
	return err == nil && h.ExchangeType == exchange && !h.IsResponse()
}
