package radius

import "sync/atomic"

// Stats counts what a Client sent and what came back, across all
// servers.
type Stats struct {
	Requests    uint64 // requests sent, retransmissions not included
	Retransmits uint64 // retransmissions after a timeout
	Timeouts    uint64 // servers given up on for one request
	Challenges  uint64
	Accepts     uint64
	Rejects     uint64
	AcctReplies uint64 // verified Accounting-Responses
	// Dropped counts replies that failed a check, by reason.
	Dropped map[DropReason]uint64
}

// DroppedTotal is the sum over the reasons.
func (s Stats) DroppedTotal() uint64 {
	var n uint64
	for _, v := range s.Dropped {
		n += v
	}
	return n
}

type counters struct {
	requests, retransmits, timeouts       atomic.Uint64
	challenges, accepts, rejects, acctRes atomic.Uint64
	dropped                               [numDropReasons]atomic.Uint64
}

func (c *counters) snapshot() Stats {
	s := Stats{
		Requests:    c.requests.Load(),
		Retransmits: c.retransmits.Load(),
		Timeouts:    c.timeouts.Load(),
		Challenges:  c.challenges.Load(),
		Accepts:     c.accepts.Load(),
		Rejects:     c.rejects.Load(),
		AcctReplies: c.acctRes.Load(),
		Dropped:     map[DropReason]uint64{},
	}
	for r := DropMalformed; r < numDropReasons; r++ {
		if n := c.dropped[r].Load(); n > 0 {
			s.Dropped[r] = n
		}
	}
	return s
}
