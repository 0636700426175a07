package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/xdpsec/xdpsec/ike"
	"github.com/xdpsec/xdpsec/internal/fleet"
)

// Records of a shared address, sealed by internal/fleet:
//
//	ike/<SPIi>_<SPIr>   an IKE SA's record (ike.ExportedIKESA, JSON)
//	mid/<SPIi>_<SPIr>   its message IDs when only they changed (ike.ExportedMessageIDs)
//	seq/<SPIi>_<SPIr>   its CHILD_SAs' ESP sequence numbers (seqRecord)
//	checkpoint          the leader's mark of each checkpoint_interval
//
// They are keyed by the IKE SPIs, which the peer knows the SA by, not by
// the unique ID, which is each engine's own.

// seqMargin is added to the outbound sequence numbers of a takeover on
// top of what the rates say the old leader can have sent (nextOutSeq), so
// that a peer's replay window never sees a number twice.
const seqMargin = 1024

// checkpointRecord is the leader's mark of each checkpoint_interval.
type checkpointRecord struct {
	Member string    `json:"member"`
	At     time.Time `json:"at"`
}

// seqRecord is the ESP sequence numbers of an IKE SA's CHILD_SAs.
type seqRecord struct {
	At       time.Time  `json:"at"`
	Children []childSeq `json:"children"`
}

// follow fills in the rates of r, read after prev (the record written
// last, nil if none), and says whether r is to be written: the numbers or
// the rate moved.
func (r *seqRecord) follow(prev *seqRecord) bool {
	if prev == nil {
		return true
	}
	changed := len(prev.Children) != len(r.Children)
	for i := range r.Children {
		c := &r.Children[i]
		found := false
		for _, p := range prev.Children {
			if p.SPIOut != c.SPIOut {
				continue
			}
			found = true
			if dt := r.At.Sub(prev.At).Seconds(); dt > 0 && c.OutSeq >= p.OutSeq {
				c.OutRate = float64(c.OutSeq-p.OutSeq) / dt
			}
			c.PeakRate = max(p.PeakRate, c.OutRate)
			// An SA gone idle is written once more, with rate 0: else
			// the old rate times a long age would jump far.
			changed = changed || p.OutSeq != c.OutSeq || p.InSeq != c.InSeq || p.OutRate != c.OutRate
		}
		changed = changed || !found
	}
	return changed
}

type childSeq struct {
	SPIIn  uint32 `json:"spi_in"`
	SPIOut uint32 `json:"spi_out"`
	OutSeq uint64 `json:"out_seq"`
	InSeq  uint64 `json:"in_seq"`
	// OutRate is packets per second sent since the record before;
	// PeakRate the highest OutRate of the CHILD_SA, which the margin for
	// a burst right after the last read takes.
	OutRate  float64 `json:"out_rate,omitempty"`
	PeakRate float64 `json:"peak_rate,omitempty"`
}

func recordKey(spii, spir uint64) string { return fmt.Sprintf("%016x_%016x", spii, spir) }

// SaveState is the fleet's part of the engine's StateSink: the records of
// IKE SAs on led shared addresses are queued for etcd. It runs under the
// engine's lock: it encodes and queues, the writers write.
func (f *fleetState) SaveState(d *ike.StateDelta) error {
	touched := map[*sharedAddr]bool{}
	for _, id := range d.Gone {
		for _, s := range f.shared {
			s.mu.Lock()
			if k, ok := s.keys[id]; ok {
				delete(s.keys, id)
				delete(s.seqs, k)
				s.drop(k)
				touched[s] = true
			}
			s.mu.Unlock()
		}
	}
	for i := range d.SAs {
		r := &d.SAs[i]
		s := f.byAddr[r.Local.Addr().Unmap()]
		if s == nil || !s.leading.Load() {
			continue
		}
		b, err := json.Marshal(r)
		if err != nil {
			return err
		}
		k := recordKey(r.SPIi, r.SPIr)
		s.mu.Lock()
		// A rekeyed IKE SA gets new SPIs under the same unique ID.
		if old, ok := s.keys[r.ID]; ok && old != k {
			s.drop(old)
			delete(s.seqs, old)
		}
		s.keys[r.ID] = k
		s.set("ike/"+k, b)
		s.set("mid/"+k, nil)
		s.mu.Unlock()
		touched[s] = true
	}
	for i := range d.MessageIDs {
		m := &d.MessageIDs[i]
		for _, s := range f.shared {
			s.mu.Lock()
			if k, ok := s.keys[m.ID]; ok {
				b, err := json.Marshal(m)
				if err == nil {
					s.set("mid/"+k, b)
					touched[s] = true
				}
			}
			s.mu.Unlock()
		}
	}
	for s := range touched {
		s.kickNow()
	}
	return nil
}

// writeLoop writes a shared address's queued records under its
// leadership.
func (f *fleetState) writeLoop(s *sharedAddr) {
	defer f.d.wg.Done()
	for {
		select {
		case <-f.ctx.Done():
			return
		case <-s.kick:
		case <-time.After(200 * time.Millisecond):
		}
		if !s.leading.Load() {
			continue
		}
		s.mu.Lock()
		lead := s.lead
		if lead == nil || len(s.pending) == 0 {
			s.mu.Unlock()
			continue
		}
		put := map[string][]byte{}
		var del []string
		for k, v := range s.pending {
			if v == nil {
				del = append(del, k)
			} else {
				put[k] = v
			}
		}
		s.pending = map[string][]byte{}
		s.mu.Unlock()
		ctx, cancel := context.WithTimeout(f.ctx, 2*time.Second)
		err := lead.Save(ctx, put, del)
		cancel()
		switch {
		case err == nil:
			now := time.Now()
			f.mu.Lock()
			f.checkpoint = now
			f.mu.Unlock()
			for _, v := range put {
				clear(v)
			}
		case errors.Is(err, fleet.ErrStale):
			for _, v := range put {
				clear(v)
			}
			s.mu.Lock()
			ours := s.lead == lead
			s.mu.Unlock()
			if ours && s.leading.Load() {
				f.stale(s)
			} // else we resigned meanwhile: not a stale view

		default:
			if f.ctx.Err() != nil {
				return
			}
			f.log.Warn(fmt.Sprintf("fleet: saving %d records of %s failed, again shortly: %v", len(put)+len(del), s.cfg.Name, err))
			// Back into the queue, behind what changed meanwhile.
			s.mu.Lock()
			for k, v := range put {
				if _, newer := s.pending[k]; !newer {
					s.pending[k] = v
				} else {
					clear(v)
				}
			}
			for _, k := range del {
				if _, newer := s.pending[k]; !newer {
					s.pending[k] = nil
				}
			}
			s.mu.Unlock()
			select {
			case <-f.ctx.Done():
				return
			case <-time.After(500 * time.Millisecond):
			}
		}
	}
}

// seqLoop reads the ESP sequence numbers of the CHILD_SAs on led shared
// addresses every checkpoint_interval and queues those that moved.
func (f *fleetState) seqLoop() {
	defer f.d.wg.Done()
	t := time.NewTicker(f.cfg.CheckpointInterval)
	defer t.Stop()
	for {
		select {
		case <-f.ctx.Done():
			return
		case <-t.C:
		}
		f.readSeqs()
	}
}

func (f *fleetState) readSeqs() {
	now := time.Now()
	// A small record each interval says when the leader last looked
	// (the age fleet status shows), and has a leader that was paused
	// past its lease find out at its first write.
	for _, s := range f.shared {
		if s.leading.Load() {
			b, _ := json.Marshal(checkpointRecord{Member: f.name, At: now})
			s.mu.Lock()
			s.set("checkpoint", b)
			s.mu.Unlock()
			s.kickNow()
		}
	}
	for _, sa := range f.d.engine.IKESAs() {
		s := f.byAddr[sa.Local.Addr().Unmap()]
		if s == nil || !s.leading.Load() || sa.Version != 2 {
			continue
		}
		k := recordKey(sa.SPIi, sa.SPIr)
		rec := &seqRecord{At: now}
		for _, c := range sa.Children {
			if c.State != ike.ChildSAInstalled && c.State != ike.ChildSARekeying && c.State != ike.ChildSARekeyed {
				continue
			}
			cs := childSeq{SPIIn: c.SPIIn, SPIOut: c.SPIOut}
			if st, err := f.d.dp.QuerySA(ike.SAID{Dst: sa.Remote.Addr(), SPI: c.SPIOut, Proto: c.Protocol}); err == nil {
				cs.OutSeq = st.OutSeq
			}
			if st, err := f.d.dp.QuerySA(ike.SAID{Dst: sa.Local.Addr(), SPI: c.SPIIn, Proto: c.Protocol}); err == nil {
				cs.InSeq = st.InSeq
			}
			rec.Children = append(rec.Children, cs)
		}
		s.mu.Lock()
		if _, ours := s.keys[sa.ID]; !ours {
			s.mu.Unlock()
			continue
		}
		if rec.follow(s.seqs[k]) {
			if b, err := json.Marshal(rec); err == nil {
				s.seqs[k] = rec
				s.set("seq/"+k, b)
				s.kickNow()
			}
		}
		s.mu.Unlock()
	}
}

// decodeRecords makes the engine state of a shared address's records:
// the IKE SAs, with the newer message IDs applied, and the CHILD_SAs'
// sequence numbers by SPI. bad are keys that would not decode.
func decodeRecords(recs map[string][]byte) (st ike.EngineState, seqs map[uint32]childSeqAt, bad []string) {
	mids := map[string]ike.ExportedMessageIDs{}
	seqs = map[uint32]childSeqAt{}
	for k, v := range recs {
		kind, key, _ := strings.Cut(k, "/")
		switch kind {
		case "checkpoint":
		case "ike":
			var r ike.ExportedIKESA
			if err := json.Unmarshal(v, &r); err != nil || recordKey(r.SPIi, r.SPIr) != key {
				bad = append(bad, k)
				continue
			}
			st.SAs = append(st.SAs, r)
		case "mid":
			var m ike.ExportedMessageIDs
			if err := json.Unmarshal(v, &m); err != nil {
				bad = append(bad, k)
				continue
			}
			mids[key] = m
		case "seq":
			var r seqRecord
			if err := json.Unmarshal(v, &r); err != nil {
				bad = append(bad, k)
				continue
			}
			for _, c := range r.Children {
				seqs[c.SPIOut] = childSeqAt{c, r.At}
				seqs[c.SPIIn] = childSeqAt{c, r.At}
			}
		default:
			bad = append(bad, k)
		}
	}
	for i := range st.SAs {
		r := &st.SAs[i]
		if m, ok := mids[recordKey(r.SPIi, r.SPIr)]; ok && m.Next >= r.NextMessageID && m.Expect >= r.ExpectMessageID {
			r.NextMessageID, r.ExpectMessageID = m.Next, m.Expect
			for _, resp := range r.LastResponse {
				clear(resp)
			}
			r.LastResponse = m.LastResponse
		}
	}
	// The oldest first, as the engine listed them.
	slices.SortFunc(st.SAs, func(a, b ike.ExportedIKESA) int { return a.EstablishedAt.Compare(b.EstablishedAt) })
	return st, seqs, bad
}

type childSeqAt struct {
	childSeq
	at time.Time
}

// seqFunc is TakeOver's sequence numbers: outbound past what the old
// leader can have sent (nextOutSeq); inbound the last seen (the replay
// window accepts what the peer sends after).
func seqFunc(seqs map[uint32]childSeqAt, interval time.Duration, now time.Time) func(ike.SAID) (uint64, uint64) {
	return func(id ike.SAID) (uint64, uint64) {
		c, ok := seqs[id.SPI]
		if !ok {
			return 0, 0
		}
		return nextOutSeq(c.childSeq, now.Sub(c.at), interval), c.InSeq
	}
}

// nextOutSeq is the first outbound sequence number that the old leader
// cannot have sent: the last saved, plus the rate of the record over its
// age (a record is written whenever the numbers move, so the rate holds
// until the next read), plus the peak rate over one interval (a burst
// after the last read) and seqMargin.
func nextOutSeq(c childSeq, age, interval time.Duration) uint64 {
	add := c.OutRate*max(age, 0).Seconds() + c.PeakRate*interval.Seconds() + seqMargin
	if add > math.MaxUint32 {
		add = math.MaxUint32
	}
	return c.OutSeq + uint64(add)
}

// teeSink hands the engine's deltas to the journal and the fleet.
type teeSink struct {
	journal ike.StateSink // nil: none
	fleet   *fleetState
}

func (t teeSink) SaveState(d *ike.StateDelta) error {
	var errs []error
	if t.journal != nil {
		errs = append(errs, t.journal.SaveState(d))
	}
	errs = append(errs, t.fleet.SaveState(d))
	return errors.Join(errs...)
}
