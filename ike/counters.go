package ike

import "github.com/xdpsec/xdpsec/ike/message"

// Counter is one of the IKE event counters of charon's counters plugin
// (swanctl --counters), by the same names.
type Counter int

const (
	CounterIKERekeyInit Counter = iota
	CounterIKERekeyResp
	CounterChildRekey
	CounterInvalid
	CounterInvalidSPI
	CounterIKEInitInReq
	CounterIKEInitInResp
	CounterIKEInitOutReq
	CounterIKEInitOutResp
	CounterIKEAuthInReq
	CounterIKEAuthInResp
	CounterIKEAuthOutReq
	CounterIKEAuthOutResp
	CounterCreateChildInReq
	CounterCreateChildInResp
	CounterCreateChildOutReq
	CounterCreateChildOutResp
	CounterInfoInReq
	CounterInfoInResp
	CounterInfoOutReq
	CounterInfoOutResp
	NumCounters
)

var counterNames = [NumCounters]string{
	"ike-rekey-init", "ike-rekey-resp", "child-rekey", "invalid", "invalid-spi",
	"ike-init-in-req", "ike-init-in-resp", "ike-init-out-req", "ike-init-out-resp",
	"ike-auth-in-req", "ike-auth-in-resp", "ike-auth-out-req", "ike-auth-out-resp",
	"create-child-in-req", "create-child-in-resp", "create-child-out-req", "create-child-out-resp",
	"info-in-req", "info-in-resp", "info-out-req", "info-out-resp",
}

func (c Counter) String() string {
	if c < 0 || c >= NumCounters {
		return "unknown"
	}
	return counterNames[c]
}

// Counters are the counts of each Counter. IKEv2 messages are counted;
// IKEv1 ones are not (yet).
type Counters [NumCounters]uint64

// counterSet holds the engine's counters, overall and per connection.
// invalid and invalid-spi are Stats' drops, taken relative to a baseline
// so that a reset resets them too.
type counterSet struct {
	all    Counters
	byConn map[string]*Counters
	// invalidBase, invalidSPIBase are the Stats drops at the last reset.
	invalidBase, invalidSPIBase uint64
}

func (e *Engine) count(conn string, c Counter) {
	e.counters.all[c]++
	if e.counters.byConn == nil {
		e.counters.byConn = map[string]*Counters{}
	}
	pc := e.counters.byConn[conn]
	if pc == nil {
		pc = &Counters{}
		e.counters.byConn[conn] = pc
	}
	pc[c]++
}

// countMessage counts an IKEv2 message received (in) or sent.
func (e *Engine) countMessage(conn string, h message.Header, in bool) {
	var base Counter
	switch h.ExchangeType {
	case message.IKE_SA_INIT:
		base = CounterIKEInitInReq
	case message.IKE_AUTH:
		base = CounterIKEAuthInReq
	case message.CREATE_CHILD_SA:
		base = CounterCreateChildInReq
	case message.INFORMATIONAL:
		base = CounterInfoInReq
	default:
		return
	}
	// in-req, in-resp, out-req, out-resp follow each other.
	if h.Flags&message.FlagResponse != 0 {
		base++
	}
	if !in {
		base += 2
	}
	if conn == "" {
		e.counters.all[base]++
		return
	}
	e.count(conn, base)
}

func (e *Engine) invalidCounts() (invalid, invalidSPI uint64) {
	return e.stats.DroppedMalformed + e.stats.DroppedAuthentication, e.stats.DroppedUnknownSA
}

// Counters returns the counters of a connection, or all of them for "".
// invalid and invalid-spi are counted for all only: a datagram that does
// not decode belongs to no connection.
func (e *Engine) Counters(conn string) Counters {
	e.mu.Lock()
	defer e.unlock()
	if conn != "" {
		if pc := e.counters.byConn[conn]; pc != nil {
			return *pc
		}
		return Counters{}
	}
	c := e.counters.all
	inv, spi := e.invalidCounts()
	c[CounterInvalid] = inv - e.counters.invalidBase
	c[CounterInvalidSPI] = spi - e.counters.invalidSPIBase
	return c
}

// CounterConns names the connections that have counters.
func (e *Engine) CounterConns() []string {
	e.mu.Lock()
	defer e.unlock()
	var out []string
	for name := range e.counters.byConn {
		out = append(out, name)
	}
	return out
}

// ResetCounters zeroes the counters of a connection, or all of them for
// "" (swanctl --counters --reset [--all]).
func (e *Engine) ResetCounters(conn string) {
	e.mu.Lock()
	defer e.unlock()
	if conn != "" {
		delete(e.counters.byConn, conn)
		return
	}
	e.counters.all = Counters{}
	e.counters.byConn = nil
	e.counters.invalidBase, e.counters.invalidSPIBase = e.invalidCounts()
}
