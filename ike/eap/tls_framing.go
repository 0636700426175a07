package eap

import (
	"encoding/binary"
	"fmt"
)

// The Type-Data of an EAP-TLS packet (RFC 5216 section 3.1):
//
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|     Flags     |      TLS Message Length (if L)
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|     TLS Message Length        |       TLS Data...
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// Flags: L (TLS Message Length present, on the first fragment of a
// fragmented message), M (more fragments follow), S (EAP-TLS Start, from
// the server only). A fragment is acknowledged by a packet of the same
// Type with no TLS data.
const (
	tlsFlagLength = 0x80
	tlsFlagMore   = 0x40
	tlsFlagStart  = 0x20

	// tlsHeaderLen is what an EAP-TLS packet carries before its TLS data
	// at most: EAP header, Type, Flags and TLS Message Length.
	tlsHeaderLen = headerLen + 1 + 1 + 4

	// DefaultTLSFragmentSize is the largest EAP-TLS packet sent, as
	// strongSwan's eap-tls fragment_size: it leaves an IKE message
	// carrying it well below 1280 octets.
	DefaultTLSFragmentSize = 1024
	// DefaultTLSMaxMessage bounds a reassembled TLS message (a flight of
	// handshake messages): certificate chains of a few kilobytes fit many
	// times over.
	DefaultTLSMaxMessage = 64 << 10
	// DefaultTLSMaxPackets bounds the EAP-TLS packets one side processes
	// in a conversation (strongSwan's max_message_count is 32 with
	// 1024-octet fragments).
	DefaultTLSMaxPackets = 64
	minTLSFragmentSize   = tlsHeaderLen + 1
)

// tlsPacket is the decoded Type-Data of an EAP-TLS packet. Data aliases
// the packet.
type tlsPacket struct {
	flags     byte
	length    uint32 // TLS Message Length, when flags has L
	hasLength bool
	data      []byte
}

func (p tlsPacket) more() bool  { return p.flags&tlsFlagMore != 0 }
func (p tlsPacket) start() bool { return p.flags&tlsFlagStart != 0 }

// ack reports an acknowledgement: no TLS data and no fragment to come.
func (p tlsPacket) ack() bool { return len(p.data) == 0 && !p.more() && !p.start() }

func parseTLSPacket(b []byte) (tlsPacket, error) {
	if len(b) < 1 {
		return tlsPacket{}, fmt.Errorf("EAP-TLS packet without flags: %w", ErrTruncated)
	}
	p := tlsPacket{flags: b[0], data: b[1:]}
	if p.flags&tlsFlagLength != 0 {
		if len(b) < 5 {
			return tlsPacket{}, fmt.Errorf("EAP-TLS packet with L and %d octets: %w", len(b), ErrTruncated)
		}
		p.hasLength = true
		p.length = binary.BigEndian.Uint32(b[1:5])
		p.data = b[5:]
	}
	return p, nil
}

func (p tlsPacket) marshal() []byte {
	b := []byte{p.flags}
	if p.hasLength {
		b = binary.BigEndian.AppendUint32(b, p.length)
	}
	return append(b, p.data...)
}

// tlsReassembly collects the fragments of the other side's TLS message.
// Its limits hold whatever the Length fields say: a peer never makes it
// hold more than max octets.
type tlsReassembly struct {
	buf     []byte
	want    int  // the announced TLS Message Length, -1 without
	started bool // a fragmented message is being collected
	max     int
}

// add takes one packet; complete reports that buf holds a whole message.
func (r *tlsReassembly) add(p tlsPacket) (complete bool, err error) {
	if !r.started {
		r.want = -1
		if p.hasLength {
			if int64(p.length) > int64(r.max) {
				return false, fmt.Errorf("TLS Message Length %d exceeds the limit of %d: %w", p.length, r.max, ErrTooLarge)
			}
			r.want = int(p.length)
		}
		r.started = true
	} else if p.hasLength && int(p.length) != r.want {
		return false, fmt.Errorf("TLS Message Length %d in a later fragment, %d announced: %w", p.length, r.want, ErrBadLength)
	}
	if len(p.data) == 0 && p.more() {
		return false, fmt.Errorf("empty fragment with M: %w", ErrMalformed)
	}
	n := len(r.buf) + len(p.data)
	if n > r.max {
		return false, fmt.Errorf("TLS message of more than %d octets: %w", r.max, ErrTooLarge)
	}
	if r.want >= 0 && n > r.want {
		return false, fmt.Errorf("%d octets of a TLS message of announced length %d: %w", n, r.want, ErrBadLength)
	}
	r.buf = append(r.buf, p.data...)
	if p.more() {
		return false, nil
	}
	if r.want >= 0 && n != r.want {
		return false, fmt.Errorf("TLS message of %d octets, %d announced: %w", n, r.want, ErrBadLength)
	}
	return true, nil
}

// take returns the message and resets for the next one.
func (r *tlsReassembly) take() []byte {
	b := r.buf
	r.buf, r.started, r.want = nil, false, -1
	return b
}

// tlsFragmenter cuts our TLS message into packets of at most size octets.
type tlsFragmenter struct {
	msg  []byte
	off  int
	size int // largest EAP packet
}

func (f *tlsFragmenter) pending() bool { return f.off < len(f.msg) }

func (f *tlsFragmenter) load(msg []byte) { f.msg, f.off = msg, 0 }

// next is the Type-Data of the next fragment: the first carries L (charon
// includes it in unfragmented messages too), every one but the last M.
func (f *tlsFragmenter) next() []byte {
	room := f.size - tlsHeaderLen
	p := tlsPacket{}
	if f.off == 0 {
		p.flags |= tlsFlagLength
		p.hasLength = true
		p.length = uint32(len(f.msg))
	}
	end := min(f.off+room, len(f.msg))
	p.data = f.msg[f.off:end]
	f.off = end
	if f.pending() {
		p.flags |= tlsFlagMore
	}
	return p.marshal()
}
