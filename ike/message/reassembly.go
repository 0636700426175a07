package message

import (
	"errors"
	"fmt"
)

// Errors of Reassembler.Add. The fragment is dropped; what was collected
// before stays unless the error says otherwise.
var (
	// ErrFragmentDuplicate: this fragment number was already received
	// (a retransmission); harmless.
	ErrFragmentDuplicate = errors.New("duplicate fragment")
	// ErrFragmentStale: the fragment announces fewer Total Fragments than
	// those already collected, so it belongs to an older, larger-sized
	// transmission (RFC 7383 section 2.5.2).
	ErrFragmentStale = errors.New("fragment from an earlier fragmentation")
	// ErrFragmentMismatch: the fragment's header disagrees with the other
	// fragments of its message (exchange type, flags).
	ErrFragmentMismatch = errors.New("fragment header mismatch")
	// ErrFragmentLimit: the fragment exceeds ReassemblyLimits; for the
	// byte limit the whole message is dropped.
	ErrFragmentLimit = errors.New("fragment over reassembly limit")
)

// ReassemblyLimits bound the memory of a Reassembler: at most MaxMessages
// messages of at most MaxBytes plaintext in at most MaxFragments pieces.
// Zero fields take the defaults.
type ReassemblyLimits struct {
	// MaxFragments is the highest Total Fragments accepted. Default 256:
	// a 64 KiB message cut for 576-octet IPv4 datagrams needs about 130.
	MaxFragments int
	// MaxBytes bounds the plaintext of one message. Default 64 KiB, what
	// an unfragmented message could carry.
	MaxBytes int
	// MaxMessages bounds the messages being reassembled at once; the
	// oldest is dropped to make room. Default 4: an IKE SA has one
	// request of the peer and responses to its own requests in flight.
	MaxMessages int
}

func (l ReassemblyLimits) withDefaults() ReassemblyLimits {
	if l.MaxFragments <= 0 {
		l.MaxFragments = 256
	}
	if l.MaxBytes <= 0 {
		l.MaxBytes = 64 << 10
	}
	if l.MaxMessages <= 0 {
		l.MaxMessages = 4
	}
	return l
}

// Reassembler collects verified fragments (RFC 7383 section 2.6) per
// message, keyed by IKE SPIs, message ID and the R flag, and returns the
// inner payloads once every fragment is in. One Reassembler serves one IKE
// SA. It is not safe for concurrent use.
type Reassembler struct {
	limits  ReassemblyLimits
	pending map[reassemblyKey]*partialMessage
	serial  uint64 // orders partialMessage.started
}

type reassemblyKey struct {
	initiatorSPI, responderSPI uint64
	messageID                  uint32
	response                   bool
}

type partialMessage struct {
	header   Header // of the first fragment received, then of fragment 1
	total    uint16
	first    PayloadType // from fragment 1
	parts    [][]byte    // by Fragment Number - 1
	have     []bool
	received int
	bytes    int
	started  uint64
}

// NewReassembler returns an empty Reassembler with limits l.
func NewReassembler(l ReassemblyLimits) *Reassembler {
	return &Reassembler{limits: l.withDefaults(), pending: make(map[reassemblyKey]*partialMessage)}
}

func keyOf(h *Header) reassemblyKey {
	return reassemblyKey{h.InitiatorSPI, h.ResponderSPI, h.MessageID, h.IsResponse()}
}

// Add stores f, whose Plaintext the Reassembler keeps. It returns the
// message once its last fragment arrives (nil, nil before), with the header
// of fragment 1 and the decoded inner payloads. A fragment with more Total
// Fragments than those collected replaces them: the sender has cut the
// message smaller (RFC 7383 section 2.5.2). An error decoding the
// reassembled inner payloads wraps ErrVerifiedContent; the others are
// about this fragment alone.
func (r *Reassembler) Add(f *Fragment) (*Message, error) {
	if err := checkFragmentNumber(f.Number, f.Total); err != nil {
		return nil, fmt.Errorf("reassemble message %d: %w", f.Header.MessageID, err)
	}
	if int(f.Total) > r.limits.MaxFragments {
		return nil, fmt.Errorf("reassemble message %d: %d fragments, at most %d: %w", f.Header.MessageID, f.Total, r.limits.MaxFragments, ErrFragmentLimit)
	}
	key := keyOf(&f.Header)
	m := r.pending[key]
	if m != nil {
		switch {
		case f.Total > m.total:
			delete(r.pending, key)
			m = nil
		case f.Total < m.total:
			return nil, fmt.Errorf("reassemble message %d: fragment %d/%d after %d fragments announced: %w", f.Header.MessageID, f.Number, f.Total, m.total, ErrFragmentStale)
		case f.Header.ExchangeType != m.header.ExchangeType || f.Header.Flags != m.header.Flags:
			return nil, fmt.Errorf("reassemble message %d: fragment %d is %v %v, others %v %v: %w", f.Header.MessageID, f.Number, f.Header.ExchangeType, f.Header.Flags, m.header.ExchangeType, m.header.Flags, ErrFragmentMismatch)
		case m.have[f.Number-1]:
			return nil, fmt.Errorf("reassemble message %d: fragment %d/%d: %w", f.Header.MessageID, f.Number, f.Total, ErrFragmentDuplicate)
		}
	}
	if m == nil {
		if len(r.pending) >= r.limits.MaxMessages {
			r.dropOldest()
		}
		r.serial++
		m = &partialMessage{
			header:  f.Header,
			total:   f.Total,
			parts:   make([][]byte, f.Total),
			have:    make([]bool, f.Total),
			started: r.serial,
		}
		r.pending[key] = m
	}
	if m.bytes+len(f.Plaintext) > r.limits.MaxBytes {
		delete(r.pending, key)
		return nil, fmt.Errorf("reassemble message %d: more than %d octets: %w", f.Header.MessageID, r.limits.MaxBytes, ErrFragmentLimit)
	}
	i := f.Number - 1
	m.parts[i], m.have[i] = f.Plaintext, true
	m.received++
	m.bytes += len(f.Plaintext)
	if f.Number == 1 {
		m.header, m.first = f.Header, f.NextPayload
	}
	if m.received < int(m.total) {
		return nil, nil
	}

	delete(r.pending, key)
	plaintext := make([]byte, 0, m.bytes)
	for _, part := range m.parts {
		plaintext = append(plaintext, part...)
	}
	ps, err := decodeChain(plaintext, m.first, true)
	if err != nil {
		return nil, fmt.Errorf("reassembled %v message %d: %w: %w", m.header.ExchangeType, m.header.MessageID, ErrVerifiedContent, err)
	}
	return &Message{Header: m.header, Payloads: ps}, nil
}

func (r *Reassembler) dropOldest() {
	var oldest reassemblyKey
	var started uint64
	for k, m := range r.pending {
		if started == 0 || m.started < started {
			oldest, started = k, m.started
		}
	}
	delete(r.pending, oldest)
}

// Discard drops what was collected for the message with header h, for
// instance when its exchange is abandoned.
func (r *Reassembler) Discard(h *Header) { delete(r.pending, keyOf(h)) }

// Pending is the number of messages being reassembled.
func (r *Reassembler) Pending() int { return len(r.pending) }
