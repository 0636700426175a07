package daemon

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/xdpsec/xdpsec/ike"
)

// The state file is a journal: a snapshot of the engine's state followed
// by the changes since (ike.StateDelta, one record per change the engine
// hands over, state_journal.go in package ike). One change costs one
// append of the records of the IKE SAs it touched, whatever the number of
// SAs; when the appended records outgrow the snapshot, the file is
// rewritten from a new snapshot (compact), which keeps the cost per change
// bounded: on average, and, since a compaction keeps pace with the changes
// appended while it runs (snapshotWriter.pacer), at every moment.
//
// Appends are not synced to disk: the file must outlive the daemon's
// process (SIGKILL, a crash), which the page cache does, not the machine,
// whose kernel SAs a reboot loses anyway. A record is written with one
// write(2), so a daemon killed mid-record leaves at most a short record
// at the end, which a reader drops (the change it carried was not
// reported yet: the engine hands a change over before it reports it).
//
// Format, version 2: records of
//
//	length (uint32, big endian) | CRC-32C of the body (uint32) | body
//
// whose bodies are JSON: first a stateHeader, then an ike.StateDelta
// holding the whole state (the snapshot), then deltas. Version 1 was one
// JSON document (stateFile); it is still read.

const journalVersion = 2

// stateHeader is a journal's first record, and the head of a version 1
// file. NetNS and Config say where the file was written: the network
// namespace (/proc/self/ns/net) and the configuration file (absolute
// path). A daemon in another namespace or with another configuration
// does not take it back (stateOwner).
type stateHeader struct {
	Format    string    `json:"format"`
	Version   int       `json:"version"`
	Saved     time.Time `json:"saved"`
	Dataplane string    `json:"dataplane"`
	NetNS     string    `json:"netns,omitempty"`
	Config    string    `json:"config,omitempty"`
}

// maxRecord caps a record's length: a bigger one is corruption (a
// snapshot of 100,000 IKE SAs is about 160 MB).
const maxRecord = 1 << 30

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// journal appends the engine's changes to the state file. It is the
// engine's StateSink: SaveState runs under the engine's lock.
type journal struct {
	mu     sync.Mutex
	path   string
	header stateHeader
	f      *os.File
	size   int64     // bytes in the file
	base   int64     // bytes of header and snapshot
	rec    recordBuf // encodes every record
	// next is the file a compaction is writing, nil if none: deltas go
	// to it as well as to f until it replaces f.
	next *snapshotWriter
	// bufs are a compaction's two buffers (snapshotWriter's pending and
	// spare), cleared, kept for the next: grown again from nothing, they
	// were a twentieth of what a responder allocated while SAs came up.
	bufs   [2][]byte
	closed bool
	// failed is the last write error, logged once.
	failed error
}

func newJournal(path string, h stateHeader) *journal {
	h.Format, h.Version = stateFormat, journalVersion
	return &journal{path: path, header: h}
}

// SaveState appends one delta.
func (j *journal) SaveState(d *ike.StateDelta) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed || j.f == nil && j.next == nil {
		// Not started yet (the snapshot after the restore has all), or
		// an append failed: the next snapshot (compact) has all then.
		return nil
	}
	rec, err := j.rec.encode(d)
	if err != nil {
		return err
	}
	defer j.rec.wipe()
	if j.next != nil {
		// A failed write there aborts the compaction when it commits.
		j.next.write(rec)
		j.next.changes += int64(len(rec))
	}
	if j.f == nil {
		return nil
	}
	n, err := j.f.Write(rec)
	j.size += int64(n)
	if err != nil {
		// A short record at the end is dropped by readers; what follows
		// it would not be read, so the next record starts a new file.
		j.f.Close()
		j.f = nil
		return fmt.Errorf("appending to %s: %w", j.path, err)
	}
	return nil
}

// recordBuf encodes framed records into one buffer, reused from record
// to record: a record is a few KB (an IKE SA's, keys included), written
// several times per establishment and once per SA by a compaction, and a
// fresh body and frame for each were a fifth of all the bytes a
// responder allocated. Deltas are encoded by ike.StateDelta.AppendJSON,
// the same JSON as encoding/json's without its reflection and
// allocations. The journal's lock guards it.
type recordBuf struct {
	buf []byte
}

// encode returns v as a record: length (uint32, big endian) | CRC-32C of
// the body | body (JSON, ended by a newline as json.Encoder ends it). It
// is valid until the next encode; wipe clears it.
func (r *recordBuf) encode(v any) ([]byte, error) {
	r.buf = append(r.buf[:0], 0, 0, 0, 0, 0, 0, 0, 0) // length and checksum, filled in below
	var err error
	if d, ok := v.(*ike.StateDelta); ok {
		r.buf, err = d.AppendJSON(r.buf)
	} else {
		var b []byte
		if b, err = json.Marshal(v); err == nil {
			r.buf = append(r.buf, b...)
		}
	}
	if err != nil {
		r.wipe()
		return nil, err
	}
	r.buf = append(r.buf, '\n')
	body := r.buf[8:]
	binary.BigEndian.PutUint32(r.buf, uint32(len(body)))
	binary.BigEndian.PutUint32(r.buf[4:], crc32.Checksum(body, crcTable))
	return r.buf, nil
}

// wipe clears the record last encoded (keys go through it).
func (r *recordBuf) wipe() { clear(r.buf) }

// wantsCompaction says whether the records appended since the snapshot
// outgrew it (or the file could not be written to).
func (j *journal) wantsCompaction() bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return !j.closed && j.next == nil && (j.f == nil || j.size-j.base > max(j.base, 1<<20))
}

// rewrite replaces the file with a new one holding st alone (the last
// write of a daemon that stops), one record per IKE SA; sync also
// flushes it to disk.
func (j *journal) rewrite(st *ike.EngineState, sync bool) error {
	w, err := j.begin()
	if err != nil || w == nil {
		return err
	}
	for i := range st.SAs {
		if err := w.add(&ike.StateDelta{SAs: st.SAs[i : i+1]}); err != nil {
			return w.abort(err)
		}
		if i%256 == 255 {
			w.flush()
		}
	}
	for i := range st.V1 {
		if err := w.add(&ike.StateDelta{V1: st.V1[i : i+1]}); err != nil {
			return w.abort(err)
		}
	}
	if err := w.add(&ike.StateDelta{NextIKEID: st.NextIKEID, NextChildID: st.NextChildID, NextReqID: st.NextReqID, Leases: st.Pools}); err != nil {
		return w.abort(err)
	}
	return w.commit(sync)
}

// snapshotWriter writes a new state file: a header, then records as they
// come (a snapshot of 100,000 IKE SAs is never one buffer), into a
// temporary file renamed into place by commit. The engine hands its
// deltas over while the snapshot is under way (ike.Engine.Snapshot holds
// its lock for a piece at a time): until commit they go to the old file,
// which stays complete should the daemon be killed, and to the new one
// after the records written so far.
//
// Records are appended to pending, in memory, under the journal's lock
// (which SaveState takes under the engine's); flush writes them out
// between two pieces with neither lock held: a write(2) to a file on disk
// can wait for the kernel's writeback when the machine has many dirty
// pages (a compaction at 100,000 SAs makes 170 MB of them), and under the
// locks that wait would be the engine's. (The 300-650 ms engine stalls
// measured at 100,000 SAs came from collecting the SAs in SnapshotPaced's
// first hold of the lock, not from these writes; this keeps the writes
// from adding any.) Only the goroutine running the compaction calls
// flush, commit and abort, and only it touches tmp.
type snapshotWriter struct {
	j   *journal
	tmp *os.File
	// pending are the records not written yet, in order; spare is the
	// buffer flush wrote last, cleared, for the next swap. The
	// journal's lock guards pending (spare is the flushing goroutine's).
	pending, spare []byte
	size           int64 // bytes of records taken, written or pending
	err            error // the first write error (the journal's lock)
	// snapshot and changes count the bytes of the snapshot's records and
	// of the changes appended meanwhile, for pace; the journal's lock
	// guards them.
	snapshot, changes int64
}

// A compaction of a journal in use is paced: the snapshot may run ahead
// of compactPaceRatio times the bytes of the changes appended since it
// started only by what compactPaceFloor bytes per second allow. Exporting
// and encoding an IKE SA's record costs about as much CPU as a twentieth
// of an establishment; all at once, 100,000 of them held back the
// establishments for a second or more (the rate over the tenth of a
// 100,000-SA run where a compaction fell dropped to 0.64x the first
// tenth's). Paced, each change pays for compactPaceRatio times its own
// bytes of snapshot, so the cost per change is bounded at every moment,
// not only on average, and the file grows meanwhile by at most half the
// snapshot. The floor finishes a compaction of 100,000 SAs (about 180 MB)
// within a minute when nothing changes, at about 2% of a CPU.
const (
	compactPaceRatio = 2
	compactPaceFloor = 4 << 20
)

// pacer returns the pause between two pieces of a paced snapshot: it
// waits while the snapshot is ahead of its pace, and no longer once stop
// is closed (the daemon stops: what is left goes at full speed).
func (s *snapshotWriter) pacer(stop <-chan struct{}) func() {
	start := time.Now()
	return func() {
		for {
			s.j.mu.Lock()
			ahead := s.snapshot - compactPaceRatio*s.changes
			s.j.mu.Unlock()
			ahead -= int64(time.Since(start).Seconds() * compactPaceFloor)
			if ahead <= 0 {
				return
			}
			wait := min(max(time.Duration(float64(ahead)/compactPaceFloor*float64(time.Second)), time.Millisecond), 20*time.Millisecond)
			t := time.NewTimer(wait)
			select {
			case <-stop:
				t.Stop()
				return
			case <-t.C:
			}
		}
	}
}

// begin starts a new file; nil, nil if the journal is closed.
func (j *journal) begin() (*snapshotWriter, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed {
		return nil, nil
	}
	if j.next != nil {
		return nil, errors.New("a compaction is under way")
	}
	if err := ensureDir(j.path, 0o700); err != nil {
		return nil, err
	}
	tmp, err := os.CreateTemp(filepath.Dir(j.path), j.tmpPattern())
	if err != nil {
		return nil, err
	}
	// The buffers go back to the journal with wipe, whatever the end.
	s := &snapshotWriter{j: j, tmp: tmp, pending: j.bufs[0], spare: j.bufs[1]}
	j.bufs = [2][]byte{}
	if err := tmp.Chmod(0o600); err != nil {
		return nil, s.drop(err)
	}
	h := j.header
	h.Saved = time.Now().UTC()
	rec, err := j.rec.encode(&h)
	if err == nil {
		err = s.write(rec)
		j.rec.wipe()
	}
	if err != nil {
		return nil, s.drop(err)
	}
	j.next = s
	return s, nil
}

// write appends a framed record to pending; the journal's lock is held.
func (s *snapshotWriter) write(rec []byte) error {
	if s.err != nil {
		return s.err
	}
	s.pending = append(s.pending, rec...)
	s.size += int64(len(rec))
	return nil
}

// flush writes the pending records to the file without the journal's
// lock held (see snapshotWriter); a write error is kept for commit.
func (s *snapshotWriter) flush() {
	s.j.mu.Lock()
	out := s.pending
	s.pending = s.spare[:0]
	failed := s.err != nil
	s.j.mu.Unlock()
	var err error
	if !failed && len(out) > 0 {
		_, err = s.tmp.Write(out)
	}
	clear(out) // keys go through it
	s.spare = out[:0]
	if err != nil {
		s.j.mu.Lock()
		if s.err == nil {
			s.err = err
		}
		s.j.mu.Unlock()
	}
}

// add appends one record of the snapshot.
func (s *snapshotWriter) add(d *ike.StateDelta) error {
	s.j.mu.Lock()
	defer s.j.mu.Unlock()
	rec, err := s.j.rec.encode(d)
	if err != nil {
		return err
	}
	defer s.j.rec.wipe()
	s.snapshot += int64(len(rec))
	return s.write(rec)
}

// commit puts the new file in place of the old one; appends go on at its
// end.
func (s *snapshotWriter) commit(sync bool) error {
	s.flush() // the last piece, outside the lock
	s.j.mu.Lock()
	defer s.j.mu.Unlock()
	err := s.err
	if err == nil && len(s.pending) > 0 {
		// What was handed over since the flush: a few records.
		_, err = s.tmp.Write(s.pending)
	}
	s.wipe()
	if err == nil && sync {
		err = s.tmp.Sync()
	}
	if err == nil && s.j.closed {
		err = errJournalClosed
	}
	if err == nil {
		err = os.Rename(s.tmp.Name(), s.j.path)
	}
	if err != nil {
		return s.abortLocked(err)
	}
	if s.j.f != nil {
		s.j.f.Close()
	}
	s.j.f = s.tmp // O_RDWR at its end
	s.j.size, s.j.base = s.size, s.size
	s.j.next = nil
	return nil
}

// abort drops the new file; the journal has none until the next
// compaction (SaveState drops deltas meanwhile: the next snapshot has
// them), since the old one may lack what the engine handed over only to
// the snapshot (its last piece's leases).
func (s *snapshotWriter) abort(err error) error {
	s.j.mu.Lock()
	defer s.j.mu.Unlock()
	return s.abortLocked(err)
}

func (s *snapshotWriter) abortLocked(err error) error {
	if s.j.f != nil {
		s.j.f.Close()
		s.j.f = nil
	}
	s.j.next = nil
	return s.drop(err)
}

// drop removes the new file.
func (s *snapshotWriter) drop(err error) error {
	s.wipe()
	s.tmp.Close()
	os.Remove(s.tmp.Name())
	return err
}

// wipe clears the buffers records with keys went through and gives them
// back to the journal for the next compaction (up to maxKeptBuf bytes
// each); the journal's lock is held.
func (s *snapshotWriter) wipe() {
	clear(s.pending[:cap(s.pending)])
	clear(s.spare[:cap(s.spare)])
	for i, b := range [2][]byte{s.pending, s.spare} {
		if cap(b) <= maxKeptBuf {
			s.j.bufs[i] = b[:0]
		}
	}
	s.pending, s.spare = nil, nil
}

// maxKeptBuf bounds the buffers a journal keeps between compactions: a
// piece of a snapshot (256 records of about 2 KB) and the changes
// handed over meanwhile fit.
const maxKeptBuf = 4 << 20

// tmpPattern names the files compactions write (os.CreateTemp's pattern):
// after the state file's own name, so that removeStale takes only its own.
func (j *journal) tmpPattern() string { return "." + filepath.Base(j.path) + ".compact-*" }

// removeStale removes what compactions of a daemon killed while they ran
// left beside the state file (a paced compaction of many SAs takes a
// while), and returns their names. The state file itself has every change
// (deltas go to both files until the new one replaces it).
func (j *journal) removeStale() ([]string, error) {
	matches, err := filepath.Glob(filepath.Join(filepath.Dir(j.path), j.tmpPattern()))
	if err != nil {
		return nil, err
	}
	var removed []string
	for _, m := range matches {
		if err := os.Remove(m); err != nil && !errors.Is(err, os.ErrNotExist) {
			return removed, err
		}
		removed = append(removed, m)
	}
	return removed, nil
}

// close stops the journal: nothing is written any more.
func (j *journal) close() {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.closed = true
	if j.f != nil {
		j.f.Close()
		j.f = nil
	}
	// A compaction under way fails at its commit and removes its file.
}

// readJournal reads a version 2 state file: its header and the state its
// records replay to. A short record at the end (a daemon killed while
// writing it) is dropped and said in torn; a damaged record anywhere is
// an error.
func readJournal(path string, b []byte) (h stateHeader, st ike.EngineState, torn bool, err error) {
	corrupt := func(off int, format string, a ...any) error {
		st.Zero()
		return fmt.Errorf("%w: %s is corrupt at offset %d: %s", ErrState, path, off, fmt.Sprintf(format, a...))
	}
	var r *ike.StateReplay
	defer func() {
		if r != nil {
			if err != nil {
				r.Zero()
			} else {
				st = r.State()
			}
		}
	}()
	off, n := 0, 0
	for off < len(b) {
		if len(b)-off < 8 {
			torn = true
			break
		}
		length := binary.BigEndian.Uint32(b[off:])
		sum := binary.BigEndian.Uint32(b[off+4:])
		if length > maxRecord {
			return h, st, false, corrupt(off, "record of %d bytes", length)
		}
		if uint64(len(b)-off-8) < uint64(length) {
			torn = true
			break
		}
		body := b[off+8 : off+8+int(length)]
		if crc32.Checksum(body, crcTable) != sum {
			return h, st, false, corrupt(off, "checksum mismatch")
		}
		switch n {
		case 0:
			if err := json.Unmarshal(body, &h); err != nil {
				return h, st, false, corrupt(off, "header: %v", err)
			}
		default:
			var d ike.StateDelta
			if err := json.Unmarshal(body, &d); err != nil {
				d.Zero()
				return h, st, false, corrupt(off, "record %d: %v", n, err)
			}
			if r == nil {
				r = ike.NewStateReplay(ike.EngineState{})
			}
			r.Add(&d)
		}
		off += 8 + int(length)
		n++
	}
	if n < 2 {
		st.Zero()
		return h, st, torn, fmt.Errorf("%w: %s is corrupt: it ends before its snapshot", ErrState, path)
	}
	return h, st, torn, nil
}

// isJournal says whether a state file's content is a journal (version 2)
// rather than one JSON document (version 1, which starts with '{').
func isJournal(b []byte) bool {
	return len(b) > 0 && b[0] != '{' && b[0] != ' ' && b[0] != '\n'
}

// StateJournal is the daemon's state file for a benchmark: the engine's
// StateSink, and Snapshot to start it (and compact it) from the engine's
// state.
type StateJournal struct{ j *journal }

// NewStateJournal opens a journal at path; Snapshot must be called
// before it keeps anything.
func NewStateJournal(path string) *StateJournal {
	return &StateJournal{newJournal(path, stateHeader{Dataplane: "benchmark"})}
}

func (s *StateJournal) SaveState(d *ike.StateDelta) error { return s.j.SaveState(d) }
func (s *StateJournal) Snapshot(e *ike.Engine) error      { return compactFrom(s.j, e, nil) }

// Size is the file's length in bytes.
func (s *StateJournal) Size() int64 {
	s.j.mu.Lock()
	defer s.j.mu.Unlock()
	return s.j.size
}

func (s *StateJournal) Close() { s.j.close() }
