package daemon

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"time"

	"github.com/xdpsec/xdpsec/ike"
	"github.com/xdpsec/xdpsec/internal/dataplane"
)

// The state file keeps the IKE SAs, keys included, from one daemon run to
// the next: a journal (journal.go). Its format is versioned; a daemon
// refuses a file of another version, a corrupt one, or one others could
// read, and starts clean. Version 1 files (one JSON document, written
// whole after every change) are still read.
const (
	stateFormat  = "xdpsec-ike-state"
	stateVersion = 1
)

// stateFile is a version 1 state file.
type stateFile struct {
	stateHeader
	Established map[string]time.Time `json:"established,omitempty"`
	Engine      ike.EngineState      `json:"engine"`
}

// ErrState is wrapped by every reason a state file is refused.
var ErrState = errors.New("IKE state file refused")

func (d *Daemon) dataplaneName() string {
	if d.opts.DryRun {
		return "dry-run"
	}
	return "kernel"
}

// openJournal makes the engine's StateSink, if the daemon keeps state.
func (d *Daemon) openJournal() {
	if d.opts.StatePath == "-" {
		return
	}
	netns, config := d.stateOwner()
	d.journal = newJournal(d.opts.StatePath, stateHeader{Dataplane: d.dataplaneName(), NetNS: netns, Config: config})
	removed, err := d.journal.removeStale()
	for _, f := range removed {
		d.log.Info(fmt.Sprintf("removed %s, left by a compaction of the state file that did not finish", f))
	}
	if err != nil {
		d.log.Warn(fmt.Sprintf("removing what an unfinished compaction of %s left: %v", d.opts.StatePath, err))
	}
}

// compact rewrites the state file from a snapshot of the engine: after
// the restore at once, and whenever the changes appended outgrew the
// snapshot at the pace of the changes (paced): until the daemon stops,
// when what is left of the snapshot goes at full speed.
func (d *Daemon) compact(paced bool) {
	if d.journal == nil {
		return
	}
	var stop <-chan struct{}
	if paced {
		stop = d.stop
	}
	err := compactFrom(d.journal, d.engine, stop)
	if err != nil && !errors.Is(err, ike.ErrClosed) {
		d.log.Warn(fmt.Sprintf("writing the IKE state to %s failed: %v", d.opts.StatePath, err))
	}
}

// compactFrom rewrites the journal from a snapshot of the engine. The new
// file is started first, so that every delta the engine hands over while
// it exports its SAs piece by piece (ike.Engine.Snapshot) goes into it
// too; the engine's lock is taken first, the journal's then, as when the
// engine hands a delta over: never the other way round.
//
// With a stop channel the snapshot is paced (snapshotWriter.pace) until
// stop is closed; without one it goes as fast as it can.
func compactFrom(j *journal, e *ike.Engine, stop <-chan struct{}) error {
	w, err := j.begin()
	if err != nil || w == nil {
		return err
	}
	// Between two pieces, with no lock held: the piece goes to the file,
	// then the pace is kept.
	var pace func()
	if stop != nil {
		pace = w.pacer(stop)
	}
	pause := func() {
		w.flush()
		if pace != nil {
			pace()
		}
	}
	if err := e.SnapshotPaced(w.add, pause); err != nil {
		w.abort(err)
		if errors.Is(err, ike.ErrClosed) {
			return nil
		}
		return err
	}
	err = w.commit(false)
	if errors.Is(err, errJournalClosed) {
		return nil
	}
	return err
}

var errJournalClosed = errors.New("state journal closed")

// loadedState is what a state file of either version holds.
type loadedState struct {
	stateHeader
	Engine ike.EngineState
	Torn   bool // a short record at the end was dropped
}

// readState reads and checks a state file.
func readState(path string) (*loadedState, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s has permissions %04o, it holds keys and must be 0600", ErrState, path, uint32(perm))
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
		return nil, fmt.Errorf("%w: %s belongs to uid %d, not to us (uid %d)", ErrState, path, st.Uid, os.Geteuid())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	defer clear(b)
	if isJournal(b) {
		h, st, torn, err := readJournal(path, b)
		if err != nil {
			return nil, err
		}
		if h.Format != stateFormat {
			st.Zero()
			return nil, fmt.Errorf("%w: %s is not an xdpsec IKE state file (format %q)", ErrState, path, h.Format)
		}
		if h.Version != journalVersion {
			st.Zero()
			return nil, fmt.Errorf("%w: %s is version %d, this daemon reads versions %d and %d", ErrState, path, h.Version, stateVersion, journalVersion)
		}
		l := &loadedState{stateHeader: h, Engine: st, Torn: torn}
		return l, nil
	}
	var head stateHeader
	if err := json.Unmarshal(b, &head); err != nil {
		return nil, fmt.Errorf("%w: %s is corrupt: %v", ErrState, path, err)
	}
	if head.Format != stateFormat {
		return nil, fmt.Errorf("%w: %s is not an xdpsec IKE state file (format %q)", ErrState, path, head.Format)
	}
	if head.Version != stateVersion {
		return nil, fmt.Errorf("%w: %s is version %d, this daemon reads versions %d and %d", ErrState, path, head.Version, stateVersion, journalVersion)
	}
	var f stateFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("%w: %s is corrupt: %v", ErrState, path, err)
	}
	l := &loadedState{stateHeader: f.stateHeader, Engine: f.Engine}
	// Version 1 kept the times beside the records.
	for i := range l.Engine.SAs {
		sa := &l.Engine.SAs[i]
		if t, ok := f.Established[strconv.FormatUint(uint64(sa.ID), 10)]; ok && sa.EstablishedAt.IsZero() {
			sa.EstablishedAt = t
		}
	}
	return l, nil
}

// restore takes back the IKE SAs a previous run saved. The file is
// removed once read: after this run rekeys, what it holds is stale.
func (d *Daemon) restore() {
	if d.opts.StatePath == "-" {
		return
	}
	f, err := readState(d.opts.StatePath)
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	if err != nil {
		d.log.Warn(fmt.Sprintf("%v; starting without saved IKE_SAs", err))
		if errors.Is(err, ErrState) {
			// Kept for inspection, out of the way of the next start.
			os.Rename(d.opts.StatePath, d.opts.StatePath+".rejected")
		}
		return
	}
	defer f.Engine.Zero()
	netns, config := d.stateOwner()
	if (f.NetNS != "" && f.NetNS != netns) || (f.Config != "" && f.Config != config) {
		// Another daemon's: its SAs live in another namespace's kernel or
		// belong to another configuration's peers. Left in place for it,
		// untouched.
		d.log.Warn(fmt.Sprintf("%s was written by a daemon in network namespace %s with configuration %s, this one runs in %s with %s; not taking it back (give each daemon its own --state)",
			d.opts.StatePath, orUnknown(f.NetNS), orUnknown(f.Config), netns, config))
		return
	}
	if f.Torn {
		d.log.Info(fmt.Sprintf("%s ends in a record the previous daemon did not finish writing (it was killed); dropped", d.opts.StatePath))
	}
	if f.Dataplane != d.dataplaneName() {
		d.log.Warn(fmt.Sprintf("%s was saved with the %s dataplane, this run uses %s", d.opts.StatePath, f.Dataplane, d.dataplaneName()))
	}
	if dr, ok := d.dp.(*dataplane.DryRunDataplane); ok {
		var ids []ike.SAID
		for i := range f.Engine.SAs {
			ids = append(ids, f.Engine.SAs[i].SAIDs()...)
		}
		for i := range f.Engine.V1 {
			ids = append(ids, f.Engine.V1[i].SAIDs()...)
		}
		dr.Adopt(ids)
	}
	// The engine checks every record before it takes any back; a bad one
	// is refused alone (see ike/state_check.go), and only SAs no taken
	// back SA uses are removed.
	errs := d.engine.Import(f.Engine)
	for _, e := range errs {
		msg := fmt.Sprintf("not taking back %s %v; removing %d of its SAs", d.opts.StatePath, e, len(e.Remove))
		if errors.Is(e.Err, ike.ErrBadRecord) {
			d.log.Error(msg)
		} else {
			d.log.Warn(msg)
		}
		for _, id := range e.Remove {
			if err := d.dp.DeleteSA(id); err != nil {
				d.knlLog.Warn(fmt.Sprintf("deleting SA %.8x failed: %v", id.SPI, err))
			}
		}
	}
	saved := len(f.Engine.SAs) + len(f.Engine.V1)
	d.log.Info(fmt.Sprintf("took back %d of %d IKE_SAs saved %s", saved-len(errs), saved, f.Saved.Format(time.RFC3339)))
}

// stateOwner names where this daemon runs, as a state file records it:
// its network namespace and its configuration file's absolute path.
func (d *Daemon) stateOwner() (netns, config string) {
	config, err := filepath.Abs(d.opts.ConfigPath)
	if err != nil {
		config = d.opts.ConfigPath
	}
	return d.netns, config
}

// currentNetNS names the calling thread's network namespace
// ("net:[4026531840]"), "" if it cannot be read.
func currentNetNS() string {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	ns, err := os.Readlink("/proc/thread-self/ns/net")
	if err != nil {
		return ""
	}
	return ns
}

func orUnknown(s string) string {
	if s == "" {
		return "(unknown)"
	}
	return s
}
