package iketest

import (
	"net/netip"
	"slices"
	"sync"

	"github.com/xdpsec/xdpsec/ike"
)

// Receiver is what the network delivers to: an *ike.Engine.
type Receiver interface {
	HandleDatagram(d ike.Datagram)
}

// Network connects engines by address. Sent datagrams wait in a queue
// until Deliver or Flush, so a test decides when and in which order they
// arrive; Filter can drop, duplicate or rewrite each one.
type Network struct {
	mu    sync.Mutex // guards everything below
	hosts map[netip.Addr]Receiver
	queue []ike.Datagram
	nats  []*NAT
	// Filter, when set, sees each datagram as it is sent and returns what
	// to queue instead: nothing to drop it, two to duplicate it.
	Filter func(d ike.Datagram) []ike.Datagram
	// Log records every datagram sent (after NAT), for assertions.
	Log []ike.Datagram
}

// NewNetwork returns an empty network.
func NewNetwork() *Network { return &Network{hosts: map[netip.Addr]Receiver{}} }

// Attach makes r receive datagrams sent to addr.
func (n *Network) Attach(addr netip.Addr, r Receiver) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.hosts[addr] = r
}

// Sender returns the ike.Sender of a host.
func (n *Network) Sender() ike.Sender { return sender{n} }

type sender struct{ n *Network }

func (s sender) Send(d ike.Datagram) error {
	n := s.n
	n.mu.Lock()
	defer n.mu.Unlock()
	d.Data = slices.Clone(d.Data)
	for _, nat := range n.nats {
		d = nat.outbound(d)
	}
	n.Log = append(n.Log, d)
	out := []ike.Datagram{d}
	if n.Filter != nil {
		out = n.Filter(d)
	}
	n.queue = append(n.queue, out...)
	return nil
}

// Queued returns the datagrams waiting for delivery.
func (n *Network) Queued() []ike.Datagram {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.queue)
}

// DropAt removes the i-th queued datagram (oldest first): it is lost.
func (n *Network) DropAt(i int) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if i < 0 || i >= len(n.queue) {
		return false
	}
	n.queue = slices.Delete(n.queue, i, i+1)
	return true
}

// Drop removes every queued datagram.
func (n *Network) Drop() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.queue = nil
}

// Reverse reorders the queue, last sent first.
func (n *Network) Reverse() {
	n.mu.Lock()
	defer n.mu.Unlock()
	slices.Reverse(n.queue)
}

// Deliver hands the oldest queued datagram to its receiver; it reports
// whether there was one.
func (n *Network) Deliver() bool { return n.DeliverAt(0) }

// DeliverAt hands the i-th queued datagram (oldest first) to its receiver
// before the ones queued ahead of it; it reports whether there was one.
func (n *Network) DeliverAt(i int) bool {
	n.mu.Lock()
	if i < 0 || i >= len(n.queue) {
		n.mu.Unlock()
		return false
	}
	d := n.queue[i]
	n.queue = slices.Delete(n.queue, i, i+1)
	for _, nat := range n.nats {
		var ok bool
		if d, ok = nat.inbound(d); !ok {
			n.mu.Unlock()
			return true
		}
	}
	// The receiver sees the datagram from its side: local is where it was
	// sent to.
	in := ike.Datagram{Local: d.Remote, Remote: d.Local, Data: d.Data}
	r := n.hosts[in.Local.Addr()]
	n.mu.Unlock()
	if r != nil {
		r.HandleDatagram(in)
	}
	return true
}

// Flush delivers until the queue is empty (at most limit datagrams, to
// stop ping-pong bugs); it returns how many it delivered.
func (n *Network) Flush() int {
	const limit = 10000
	i := 0
	for ; i < limit && n.Deliver(); i++ {
	}
	return i
}

// NAT rewrites the source of datagrams from inside addresses to its public
// address, with a port per inside address and port, and back for replies.
type NAT struct {
	Inside   netip.Prefix
	Public   netip.Addr
	nextPort uint16
	out      map[netip.AddrPort]netip.AddrPort // inside -> public
	in       map[netip.AddrPort]netip.AddrPort // public -> inside
}

// AddNAT puts a NAT in front of the inside prefix. Ports are mapped from
// firstPort on.
func (n *Network) AddNAT(inside netip.Prefix, public netip.Addr, firstPort uint16) *NAT {
	n.mu.Lock()
	defer n.mu.Unlock()
	nat := &NAT{Inside: inside, Public: public, nextPort: firstPort,
		out: map[netip.AddrPort]netip.AddrPort{}, in: map[netip.AddrPort]netip.AddrPort{}}
	n.nats = append(n.nats, nat)
	return nat
}

// Remap forgets the NAT's mappings, as a NAT whose state timed out.
func (nat *NAT) Remap() {
	clear(nat.out)
	clear(nat.in)
}

func (nat *NAT) outbound(d ike.Datagram) ike.Datagram {
	if !nat.Inside.Contains(d.Local.Addr()) {
		return d
	}
	pub, ok := nat.out[d.Local]
	if !ok {
		pub = netip.AddrPortFrom(nat.Public, nat.nextPort)
		nat.nextPort++
		nat.out[d.Local] = pub
		nat.in[pub] = d.Local
	}
	d.Local = pub
	return d
}

// inbound translates a datagram sent to the public address; unknown
// mappings are dropped.
func (nat *NAT) inbound(d ike.Datagram) (ike.Datagram, bool) {
	if d.Remote.Addr() != nat.Public {
		return d, true
	}
	inside, ok := nat.in[d.Remote]
	if !ok {
		return d, false
	}
	d.Remote = inside
	return d, true
}
