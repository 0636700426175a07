package ike

import (
	"net/netip"
	"slices"

	"github.com/xdpsec/xdpsec/ike/pool"
)

// The state journal: instead of exporting every IKE SA whenever one
// changes (Export, which costs O(SAs)), the engine hands a StateSink the
// records of the IKE SAs that changed, as they change. A change that
// decides what a restarted daemon must take back (an IKE SA or CHILD_SA
// established, rekeyed or going) is handed over before the engine's lock
// is released and before it is reported (the "established" log line, the
// observers, a listing); what changes without that (message IDs,
// retransmission caches, accounting counters) waits for the next
// FlushState. The order against the dataplane is what keeps a restarted
// daemon from taking back an SA the kernel does not have: a CHILD_SA's
// record goes out after its SAs are installed, and its removal before its
// SAs are deleted (kernel.go, removeSAs).

// StateSink keeps the engine's state across restarts (the daemon's
// journal file). SaveState is called with the engine's lock held, so it
// must not call the engine and should be quick (an append to a file); an
// error is logged and the records are handed over again with the next
// change. It must not keep or change d or anything d refers to: the IKEv2
// records share their keys, traffic selectors and buffers with the
// engine's SAs (copying them was a fifth of what the records allocated),
// and the engine zeroes the rest afterwards.
type StateSink interface {
	SaveState(d *StateDelta) error
}

// StateDelta is what changed since the last StateDelta: the records of
// IKE SAs that changed (the whole record, which replaces the one saved
// before), the unique IDs of IKE SAs that are no longer to be taken back,
// and the pool leases whose identity changed. Replaying the deltas in
// order over the last Export gives the engine's state.
type StateDelta struct {
	NextIKEID, NextChildID, NextReqID uint32
	SAs                               []ExportedIKESA    `json:",omitempty"`
	V1                                []ExportedISAKMPSA `json:",omitempty"`
	Gone                              []uint32           `json:",omitempty"`
	// MessageIDs are the IKEv2 message IDs of IKE SAs whose record did
	// not change otherwise (an exchange such as DPD completed).
	MessageIDs []ExportedMessageIDs    `json:",omitempty"`
	Leases     map[string][]pool.Lease `json:",omitempty"`
}

// ExportedMessageIDs are an IKEv2 SA's message IDs and its last
// response (ExportedIKESA's).
type ExportedMessageIDs struct {
	ID           uint32
	Next, Expect uint32
	LastResponse [][]byte `json:",omitempty"`
}

// Empty says the delta carries no record.
func (d *StateDelta) Empty() bool {
	return len(d.SAs) == 0 && len(d.V1) == 0 && len(d.Gone) == 0 && len(d.Leases) == 0 && len(d.MessageIDs) == 0
}

// Zero overwrites the keys.
func (d *StateDelta) Zero() {
	st := EngineState{SAs: d.SAs, V1: d.V1}
	st.Zero()
	for _, m := range d.MessageIDs {
		for _, r := range m.LastResponse {
			clear(r)
		}
	}
}

// Apply replays d over st (a saved state being read back): its records
// replace those of the same unique ID, its gone ones are removed, its
// leases replace those of the same address. st takes d's records over:
// zero st, not d, when done. Each call costs O(SAs in st): replay many
// deltas with a StateReplay.
func (st *EngineState) Apply(d *StateDelta) {
	r := NewStateReplay(*st)
	r.Add(d)
	*st = r.State()
}

// StateReplay replays deltas over a state at a cost per record that does
// not depend on the number of SAs (a journal of 100,000 IKE SAs holds
// hundreds of thousands of records): records are found by unique ID
// through an index, and removed ones leave holes that State squeezes
// out once, keeping the order Apply gives (a replaced record goes last).
type StateReplay struct {
	st            EngineState
	v2, v1        map[uint32]int // unique ID -> index in st.SAs, st.V1
	v2gone        []bool         // holes in st.SAs
	v1gone        []bool
	leases        map[string]map[netip.Addr]int // pool -> address -> index
	holes2, hole1 int
}

// NewStateReplay starts a replay over st, which it takes over.
func NewStateReplay(st EngineState) *StateReplay {
	r := &StateReplay{st: st, v2: make(map[uint32]int, len(st.SAs)), v1: make(map[uint32]int, len(st.V1)),
		v2gone: make([]bool, len(st.SAs)), v1gone: make([]bool, len(st.V1))}
	for i, s := range st.SAs {
		r.v2[s.ID] = i
	}
	for i, s := range st.V1 {
		r.v1[s.ID] = i
	}
	return r
}

func (r *StateReplay) drop(id uint32) {
	if i, ok := r.v2[id]; ok {
		zeroV2(r.st.SAs[i : i+1])
		r.st.SAs[i] = ExportedIKESA{}
		r.v2gone[i] = true
		r.holes2++
		delete(r.v2, id)
	}
	if i, ok := r.v1[id]; ok {
		zeroV1(r.st.V1[i : i+1])
		r.st.V1[i] = ExportedISAKMPSA{}
		r.v1gone[i] = true
		r.hole1++
		delete(r.v1, id)
	}
}

// Add replays one delta; the state takes its records over.
func (r *StateReplay) Add(d *StateDelta) {
	st := &r.st
	st.NextIKEID = max(st.NextIKEID, d.NextIKEID)
	st.NextChildID = max(st.NextChildID, d.NextChildID)
	st.NextReqID = max(st.NextReqID, d.NextReqID)
	for _, id := range d.Gone {
		r.drop(id)
	}
	for _, s := range d.SAs {
		r.drop(s.ID)
		r.v2[s.ID] = len(st.SAs)
		st.SAs = append(st.SAs, s)
		r.v2gone = append(r.v2gone, false)
	}
	for _, s := range d.V1 {
		r.drop(s.ID)
		r.v1[s.ID] = len(st.V1)
		st.V1 = append(st.V1, s)
		r.v1gone = append(r.v1gone, false)
	}
	for _, m := range d.MessageIDs {
		if i, ok := r.v2[m.ID]; ok {
			s := &st.SAs[i]
			s.NextMessageID, s.ExpectMessageID = m.Next, m.Expect
			for _, resp := range s.LastResponse {
				clear(resp)
			}
			s.LastResponse = m.LastResponse
		}
	}
	for name, leases := range d.Leases {
		if st.Pools == nil {
			st.Pools = map[string][]pool.Lease{}
		}
		if r.leases == nil {
			r.leases = map[string]map[netip.Addr]int{}
		}
		idx := r.leases[name]
		if idx == nil {
			idx = map[netip.Addr]int{}
			for i, l := range st.Pools[name] {
				idx[l.Addr] = i
			}
			r.leases[name] = idx
		}
		list := st.Pools[name]
		for _, l := range leases {
			if i, ok := idx[l.Addr]; ok {
				list[i] = l
			} else {
				idx[l.Addr] = len(list)
				list = append(list, l)
			}
		}
		st.Pools[name] = list
	}
	// Squeeze the holes out once they are most of the slices, so that
	// memory stays in proportion to the SAs kept.
	if r.holes2 > 1024 && r.holes2 > len(st.SAs)/2 || r.hole1 > 1024 && r.hole1 > len(st.V1)/2 {
		r.squeeze()
	}
}

func (r *StateReplay) squeeze() {
	st := &r.st
	if r.holes2 > 0 {
		sas := st.SAs[:0]
		for i, s := range st.SAs {
			if !r.v2gone[i] {
				r.v2[s.ID] = len(sas)
				sas = append(sas, s)
			}
		}
		clear(st.SAs[len(sas):])
		st.SAs, r.v2gone, r.holes2 = sas, make([]bool, len(sas)), 0
	}
	if r.hole1 > 0 {
		v1 := st.V1[:0]
		for i, s := range st.V1 {
			if !r.v1gone[i] {
				r.v1[s.ID] = len(v1)
				v1 = append(v1, s)
			}
		}
		clear(st.V1[len(v1):])
		st.V1, r.v1gone, r.hole1 = v1, make([]bool, len(v1)), 0
	}
}

// State is the state replayed so far; the replay must not be used after.
func (r *StateReplay) State() EngineState {
	r.squeeze()
	return r.st
}

// Zero overwrites the keys of what was replayed so far.
func (r *StateReplay) Zero() {
	r.squeeze()
	r.st.Zero()
}

// journaled is an IKE SA of either version as the journal sees it.
type journaled interface {
	// journalTo adds the SA's record to d, or its unique ID to d.Gone if
	// a record of it was handed over before and it is no longer one to
	// take back.
	journalTo(d *StateDelta)
}

// stateJournal is the engine's part: the IKE SAs changed since the last
// delta, and whether one of the changes must be handed over before the
// lock is released.
type stateJournal struct {
	// delta and recs are the room for a delta and its records, reused
	// from delta to delta (recs with their Children).
	delta StateDelta
	recs  []ExportedIKESA
	dirty map[uint32]journaled
	// mids are the IKEv2 SAs whose message IDs changed: a small record
	// each, handed over with the next lock release, unless they are in
	// dirty.
	mids   map[uint32]*ikeSA
	urgent bool
}

// changed notes that sa's record changed; urgent ones are handed over
// when the engine's lock is released (unlock), the others with the next
// FlushState or urgent change.
func (e *Engine) changed(sa *ikeSACommon, urgent bool) {
	if e.cfg.StateSink == nil || sa == nil || sa.outer == nil {
		return
	}
	j, ok := sa.outer.(journaled)
	if !ok {
		return
	}
	if e.journal.dirty == nil {
		e.journal.dirty = map[uint32]journaled{}
	}
	e.journal.dirty[sa.id] = j
	e.journal.urgent = e.journal.urgent || urgent
}

// midsChanged notes that an IKEv2 SA's message IDs changed: handed over
// when the lock is released, so that a restarted daemon answers the
// peer's next request and sends its own with the next ID.
func (e *Engine) midsChanged(sa *ikeSA) {
	if e.cfg.StateSink == nil {
		return
	}
	if e.journal.mids == nil {
		e.journal.mids = map[uint32]*ikeSA{}
	}
	e.journal.mids[sa.id] = sa
	e.journal.urgent = true
}

// saveNow hands the changes over at once: before a report (a log line
// that says an SA is up) or before SAs leave the dataplane.
func (e *Engine) saveNow(sa *ikeSACommon) {
	e.changed(sa, true)
	e.flushState()
	// What the operation changes after the report (the response's
	// message ID) goes when the lock is released.
	e.journal.urgent = e.cfg.StateSink != nil
}

// unlock releases the engine's lock after handing urgent changes over.
func (e *Engine) unlock() {
	if e.journal.urgent {
		e.flushState()
	}
	e.mu.Unlock()
}

// flushState hands every noted change over to the StateSink.
func (e *Engine) flushState() {
	e.journal.urgent = false
	sink := e.cfg.StateSink
	if sink == nil || e.closed {
		return
	}
	d := &e.journal.delta
	*d = StateDelta{NextIKEID: e.nextIKEID, NextChildID: e.nextChildID, NextReqID: e.reqids.next, SAs: e.journal.recs[:0]}
	defer func() { *d = StateDelta{} }()
	for _, j := range e.journal.dirty {
		j.journalTo(d)
	}
	for id, sa := range e.journal.mids {
		if _, full := e.journal.dirty[id]; !full && sa.journaled && sa.exportable() {
			// The last response shared, as the records' (StateSink).
			d.MessageIDs = append(d.MessageIDs, ExportedMessageIDs{ID: id, Next: sa.tm.nextID, Expect: sa.tm.expectID, LastResponse: sa.tm.response})
		}
	}
	for _, p := range e.cfg.Pools {
		if ch := p.Leases.TakeChanges(); len(ch) > 0 {
			if d.Leases == nil {
				d.Leases = map[string][]pool.Lease{}
			}
			d.Leases[p.Name()] = ch
		}
	}
	if d.Empty() {
		clear(e.journal.dirty)
		clear(e.journal.mids)
		return
	}
	err := sink.SaveState(d)
	// The IKEv2 records and message IDs are the SAs' own memory: forgot,
	// not zeroed. The IKEv1 records are copies.
	for i := range d.SAs {
		d.SAs[i].clearShared()
	}
	e.journal.recs = d.SAs[:0]
	zeroV1(d.V1)
	if err != nil {
		e.log.Warn("saving the IKE state failed: " + err.Error())
		e.journal.urgent = true // again with the next change
		for name, leases := range d.Leases {
			if p := e.pool(name); p != nil {
				p.Leases.Unsaved(leases)
			}
		}
		return
	}
	for _, j := range e.journal.dirty {
		if sa, ok := j.(interface{ common() *ikeSACommon }); ok {
			c := sa.common()
			c.journaled = c.journalPending
		}
	}
	clear(e.journal.dirty)
	clear(e.journal.mids)
}

// FlushState hands the changes not handed over yet (message IDs and the
// like) to the StateSink; the daemon calls it now and then.
func (e *Engine) FlushState() {
	e.mu.Lock()
	defer e.unlock()
	e.flushState()
}

func (sa *ikeSA) journalTo(d *StateDelta) {
	if sa.exportable() {
		// Into the room of the engine's delta (flushState), shared.
		d.SAs = slices.Grow(d.SAs, 1)[:len(d.SAs)+1]
		sa.exportTo(&d.SAs[len(d.SAs)-1], true)
		sa.journalPending = true
	} else if sa.journaled {
		d.Gone = append(d.Gone, sa.id)
		sa.journalPending = false
	}
}

func (sa *v1SA) journalTo(d *StateDelta) {
	if s, ok := sa.export(); ok {
		d.V1 = append(d.V1, s)
		sa.journalPending = true
	} else if sa.journaled {
		d.Gone = append(d.Gone, sa.id)
		sa.journalPending = false
	}
}

// snapshotChunk is how many IKE SAs Snapshot exports per hold of the
// engine's lock: a few milliseconds, however many SAs there are.
const snapshotChunk = 256

// betweenPieces, if set (tests), runs between two pieces of a Snapshot,
// without the engine's lock.
var betweenPieces func()

// Snapshot hands the whole state to save, for a StateSink's compaction,
// which replaces what it saved with what save is given. The state comes in
// pieces, to be saved in order: one delta per IKE SA (its record) and a
// last one with the counters and every pool lease, so that neither the
// engine nor save holds all of it at once.
//
// The engine's lock is held for snapshotChunk IKE SAs at a time, not for
// the whole state: with 100,000 SAs that would stop every exchange for
// seconds, and their timers would fire together afterwards (a burst of
// rekeys). Between the pieces the engine goes on and hands its changes to
// the StateSink as usual, so the sink must save them after the pieces
// given so far, in the new state as well as in the old (whose file stays
// the state until the new one replaces it): each piece and each change is
// the record as it is when saved, and replayed in the order they were
// saved they give the engine's state. An IKE SA that comes up after the
// snapshot started is in a change; one that goes, in a change's Gone.
func (e *Engine) Snapshot(save func(d *StateDelta) error) error {
	return e.SnapshotPaced(save, nil)
}

// SnapshotPaced is Snapshot with pause called between two pieces, without
// the engine's lock: a sink that must not spend its CPU on the whole state
// in one burst waits there (the daemon's compaction keeps pace with the
// changes it is handed, so that establishments go on at an even rate while
// it runs).
func (e *Engine) SnapshotPaced(save func(d *StateDelta) error, pause func()) error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return ErrClosed
	}
	// What is not handed over yet goes to the old state now; from here on
	// changes are handed over as they come.
	e.flushState()
	// The IKE SAs by unique ID alone, sorted outside the lock: at 100,000
	// SAs, collecting and sorting the SAs themselves held the lock for
	// 100-650 ms (each a cache miss while the GC was busy), which is what
	// an IKE message waited for at the start of every compaction. Each
	// SA is looked up again in its piece; one gone meanwhile is skipped,
	// and one made meanwhile is handed over as a change.
	v2 := make([]uint32, 0, len(e.byID))
	for id := range e.byID {
		v2 = append(v2, id)
	}
	v1 := e.allV1SAs()
	e.unlock()
	slices.Sort(v2)
	one := func(d *StateDelta) error {
		defer d.Zero()
		return save(d)
	}
	// The IKEv2 pieces: one record each, shared with its SA (StateSink),
	// in the same room from piece to piece.
	var (
		rec [1]ExportedIKESA
		pd  StateDelta
	)
	piece := func(sa *ikeSA) error {
		sa.exportTo(&rec[0], true)
		defer rec[0].clearShared()
		pd = StateDelta{SAs: rec[:]}
		return save(&pd)
	}
	for len(v2) > 0 || len(v1) > 0 {
		err := func() error {
			e.mu.Lock()
			defer e.unlock()
			if e.closed {
				return ErrClosed
			}
			for n := 0; n < snapshotChunk && len(v2) > 0; n++ {
				sa := e.byID[v2[0]]
				v2 = v2[1:]
				// Gone meanwhile (its removal was handed over as a
				// change), or not exportable.
				if sa == nil || !sa.exportable() {
					continue
				}
				if err := piece(sa); err != nil {
					return err
				}
				// Only ever set: an SA whose record went to the new state
				// in a change before this piece must have its removal
				// handed over too.
				sa.journaled = true
			}
			for n := 0; n < snapshotChunk && len(v2) == 0 && len(v1) > 0; n++ {
				sa := v1[0]
				v1 = v1[1:]
				if s, ok := sa.export(); ok {
					if err := one(&StateDelta{V1: []ExportedISAKMPSA{s}}); err != nil {
						return err
					}
					sa.journaled = true
				}
			}
			return nil
		}()
		if err != nil {
			return err
		}
		if betweenPieces != nil {
			betweenPieces()
		}
		if pause != nil && (len(v2) > 0 || len(v1) > 0) {
			pause()
		}
	}
	e.mu.Lock()
	defer e.unlock()
	if e.closed {
		return ErrClosed
	}
	last := StateDelta{NextIKEID: e.nextIKEID, NextChildID: e.nextChildID, NextReqID: e.reqids.next}
	for _, p := range e.cfg.Pools {
		if leases := p.Leases.Leases(); len(leases) > 0 {
			if last.Leases == nil {
				last.Leases = map[string][]pool.Lease{}
			}
			last.Leases[p.Name()] = leases
		}
	}
	if err := save(&last); err != nil {
		return err
	}
	// The leases' changes are in the last piece.
	for _, p := range e.cfg.Pools {
		p.Leases.TakeChanges()
	}
	return nil
}
