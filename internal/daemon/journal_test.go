package daemon

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xdpsec/xdpsec/ike"
	"github.com/xdpsec/xdpsec/ike/pool"
)

func testRecord(id uint32, spi uint32) ike.ExportedIKESA {
	return ike.ExportedIKESA{ID: id, Conn: "site", SPIi: uint64(id) << 8, SPIr: uint64(id),
		Local: netip.MustParseAddrPort("192.0.2.1:500"), Remote: netip.MustParseAddrPort("192.0.2.2:500"),
		Children: []ike.ExportedChildSA{{ID: id, Name: "net", SPIIn: spi, SPIOut: spi + 1}}}
}

func newTestJournal(t *testing.T) (*journal, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "state", "ike-state")
	j := newJournal(path, stateHeader{Dataplane: "dry-run", NetNS: "net:[1]", Config: "/etc/swanctl/swanctl.conf"})
	if err := j.rewrite(&ike.EngineState{SAs: []ike.ExportedIKESA{testRecord(1, 0xc0000001)}, NextIKEID: 1}, false); err != nil {
		t.Fatal(err)
	}
	return j, path
}

func TestJournalReplays(t *testing.T) {
	j, path := newTestJournal(t)
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("state file: %v, mode %v", err, fi.Mode())
	}
	a := netip.MustParseAddr("10.3.0.1")
	for _, d := range []ike.StateDelta{
		{NextIKEID: 2, SAs: []ike.ExportedIKESA{testRecord(2, 0xc0000002)}},
		{NextIKEID: 3, SAs: []ike.ExportedIKESA{testRecord(3, 0xc0000003)}, Gone: []uint32{1}},
		{NextIKEID: 3, SAs: []ike.ExportedIKESA{testRecord(2, 0xc0000022)}, Leases: map[string][]pool.Lease{"p": {{Addr: a, Identity: "alice"}}}},
	} {
		if err := j.SaveState(&d); err != nil {
			t.Fatal(err)
		}
	}
	l, err := readState(path)
	if err != nil {
		t.Fatal(err)
	}
	if l.Torn || l.NetNS != "net:[1]" || l.Config != "/etc/swanctl/swanctl.conf" || l.Dataplane != "dry-run" || l.Engine.NextIKEID != 3 {
		t.Fatalf("read back %+v", l)
	}
	got := map[uint32]uint32{}
	for _, sa := range l.Engine.SAs {
		got[sa.ID] = sa.Children[0].SPIIn
	}
	if len(got) != 2 || got[2] != 0xc0000022 || got[3] != 0xc0000003 {
		t.Fatalf("records replayed to %v, want 2: c0000022 and 3: c0000003", got)
	}
	if leases := l.Engine.Pools["p"]; len(leases) != 1 || leases[0].Identity != "alice" {
		t.Fatalf("leases %+v", l.Engine.Pools)
	}

	// Compaction: a snapshot of what is, the appended records gone.
	before, _ := os.Stat(path)
	if err := j.rewrite(&l.Engine, true); err != nil {
		t.Fatal(err)
	}
	after, _ := os.Stat(path)
	if after.Size() >= before.Size() {
		t.Errorf("compacted file %d bytes, before %d", after.Size(), before.Size())
	}
	l2, err := readState(path)
	if err != nil || len(l2.Engine.SAs) != 2 {
		t.Fatalf("after compaction: %v %+v", err, l2)
	}
	// Appends go on after the snapshot.
	if err := j.SaveState(&ike.StateDelta{Gone: []uint32{2}}); err != nil {
		t.Fatal(err)
	}
	if l3, err := readState(path); err != nil || len(l3.Engine.SAs) != 1 || l3.Engine.SAs[0].ID != 3 {
		t.Fatalf("after an append to the compacted file: %v %+v", err, l3)
	}
	j.close()
	if err := j.SaveState(&ike.StateDelta{Gone: []uint32{3}}); err != nil {
		t.Fatal(err)
	}
	if l4, _ := readState(path); len(l4.Engine.SAs) != 1 {
		t.Fatal("a closed journal wrote")
	}
}

// A record cut short by a kill is dropped; the ones before it count.
func TestJournalTornRecord(t *testing.T) {
	j, path := newTestJournal(t)
	if err := j.SaveState(&ike.StateDelta{SAs: []ike.ExportedIKESA{testRecord(2, 0xc0000002)}}); err != nil {
		t.Fatal(err)
	}
	whole, _ := os.ReadFile(path)
	if err := j.SaveState(&ike.StateDelta{Gone: []uint32{1, 2}}); err != nil {
		t.Fatal(err)
	}
	full, _ := os.ReadFile(path)
	for cut := len(whole) + 1; cut < len(full); cut += 3 {
		os.WriteFile(path, full[:cut], 0o600)
		l, err := readState(path)
		if err != nil || !l.Torn || len(l.Engine.SAs) != 2 {
			t.Fatalf("cut at %d of %d: %v, %+v", cut, len(full), err, l)
		}
	}
}

func TestJournalCorrupt(t *testing.T) {
	j, path := newTestJournal(t)
	j.SaveState(&ike.StateDelta{SAs: []ike.ExportedIKESA{testRecord(2, 0xc0000002)}})
	full, _ := os.ReadFile(path)
	for name, mangle := range map[string]func([]byte) []byte{
		"flipped byte": func(b []byte) []byte { b[len(b)-10] ^= 0x40; return b },
		"huge length":  func(b []byte) []byte { b[0] = 0x7f; return b },
		"no snapshot": func(b []byte) []byte {
			n := int(b[3]) | int(b[2])<<8
			return b[:8+n]
		},
		"bad header": func(b []byte) []byte {
			return append(frame([]byte(`{"format":"something else","version":2}`)), b[8+int(b[3])|int(b[2])<<8:]...)
		},
		"future version": func(b []byte) []byte {
			return append(frame([]byte(`{"format":"xdpsec-ike-state","version":3}`)), b[8+int(b[3])|int(b[2])<<8:]...)
		},
	} {
		t.Run(name, func(t *testing.T) {
			os.WriteFile(path, mangle(bytes.Clone(full)), 0o600)
			_, err := readState(path)
			if !errors.Is(err, ErrState) {
				t.Fatalf("want ErrState, got %v", err)
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error does not name the file: %v", err)
			}
		})
	}
	os.WriteFile(path, full, 0o600)
	os.Chmod(path, 0o644)
	if _, err := readState(path); err == nil || !strings.Contains(err.Error(), "must be 0600") {
		t.Errorf("a file others can read: %v", err)
	}
}

// The journal asks for compaction once its appends outgrow the snapshot
// (at least 1 MiB of them).
func TestJournalWantsCompaction(t *testing.T) {
	j, _ := newTestJournal(t)
	if j.wantsCompaction() {
		t.Fatal("a fresh snapshot wants compaction")
	}
	d := ike.StateDelta{SAs: []ike.ExportedIKESA{testRecord(2, 0xc0000002)}}
	for i := 0; !j.wantsCompaction(); i++ {
		if i > 10000 {
			t.Fatal("no compaction asked for after 10,000 records")
		}
		if err := j.SaveState(&d); err != nil {
			t.Fatal(err)
		}
	}
	if j.size-j.base < 1<<20 {
		t.Errorf("compaction asked for at %d bytes of records", j.size-j.base)
	}
}

// Compactions while the engine hands deltas over: no deadlock (the
// engine's lock comes first in both), and the file replays to what the
// engine has.
func TestJournalCompactUnderLoad(t *testing.T) {
	j, path := newTestJournal(t)
	_, responder, net := enginePairConfig(t, 300, func(i int, cfg *ike.Config) {
		if i == 1 {
			cfg.StateSink = j
		}
	}, nil)
	if err := compactFrom(j, responder, nil); err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() {
		for range 30 {
			if err := compactFrom(j, responder, nil); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	// Rekey the responder's CHILD_SAs meanwhile: each rekey hands
	// deltas over.
	for _, sa := range responder.IKESAs() {
		if err := responder.RekeyChildSA(sa.Children[0].ID); err != nil {
			t.Fatal(err)
		}
		net.Flush()
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	responder.FlushState()
	l, err := readState(path)
	if err != nil {
		t.Fatal(err)
	}
	want := responder.Export()
	defer want.Zero()
	got := map[uint32]uint32{}
	for _, sa := range l.Engine.SAs {
		if len(sa.Children) > 0 {
			got[sa.ID] = sa.Children[0].SPIIn
		}
	}
	if len(want.SAs) != 300 || len(got) != len(want.SAs) {
		t.Fatalf("state file has %d IKE SAs with a CHILD_SA, the engine %d", len(got), len(want.SAs))
	}
	for _, sa := range want.SAs {
		if len(sa.Children) != 1 || got[sa.ID] != sa.Children[0].SPIIn {
			t.Errorf("IKE_SA %d: state file CHILD_SA %.8x, engine %+v", sa.ID, got[sa.ID], sa.Children)
		}
	}
}

// A delta handed over while a compaction writes its new file goes to the
// old file, which a daemon killed before the new one is renamed into
// place reads back, and to the new file after the snapshot's records.
func TestJournalDeltaDuringCompaction(t *testing.T) {
	j, path := newTestJournal(t)
	w, err := j.begin()
	if err != nil || w == nil {
		t.Fatalf("begin: %v", err)
	}
	if j.wantsCompaction() {
		t.Error("a second compaction asked for while one is under way")
	}
	if err := w.add(&ike.StateDelta{NextIKEID: 1, SAs: []ike.ExportedIKESA{testRecord(1, 0xc0000001)}}); err != nil {
		t.Fatal(err)
	}
	if err := j.SaveState(&ike.StateDelta{NextIKEID: 2, SAs: []ike.ExportedIKESA{testRecord(2, 0xc0000002)}}); err != nil {
		t.Fatal(err)
	}
	spis := func(step string) map[uint32]uint32 {
		t.Helper()
		l, err := readState(path)
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		got := map[uint32]uint32{}
		for _, sa := range l.Engine.SAs {
			got[sa.ID] = sa.Children[0].SPIIn
		}
		return got
	}
	if got := spis("killed before the rename"); len(got) != 2 || got[2] != 0xc0000002 {
		t.Fatalf("old file during the compaction replays to %v, want IKE SAs 1 and 2", got)
	}
	if err := w.commit(false); err != nil {
		t.Fatal(err)
	}
	if got := spis("after the rename"); len(got) != 2 || got[1] != 0xc0000001 || got[2] != 0xc0000002 {
		t.Fatalf("new file replays to %v, want IKE SAs 1 and 2", got)
	}
	if err := j.SaveState(&ike.StateDelta{Gone: []uint32{1}}); err != nil {
		t.Fatal(err)
	}
	if got := spis("appended"); len(got) != 1 || got[2] != 0xc0000002 {
		t.Fatalf("after an append the file replays to %v, want IKE SA 2", got)
	}
}

// frame prefixes a record's body with its length and checksum, as the
// journal writes records.
func frame(body []byte) []byte {
	rec := make([]byte, 8+len(body))
	binary.BigEndian.PutUint32(rec, uint32(len(body)))
	binary.BigEndian.PutUint32(rec[4:], crc32.Checksum(body, crcTable))
	copy(rec[8:], body)
	return rec
}

// A paced compaction (the daemon's periodic one, not the one after the
// restore) does not run ahead
// of its floor while nothing changes, runs faster as changes are appended,
// goes at full speed once the daemon stops, and its file replays to what
// the engine has.
func TestJournalCompactPaced(t *testing.T) {
	j, path := newTestJournal(t)
	_, responder, _ := enginePairConfig(t, 3000, func(i int, cfg *ike.Config) {
		if i == 1 {
			cfg.StateSink = j
		}
	}, nil)
	if err := compactFrom(j, responder, nil); err != nil {
		t.Fatal(err)
	}
	full := j.base
	if full < 3<<20 {
		t.Fatalf("a snapshot of 3000 IKE SAs is %d bytes: too small to see the pace", full)
	}
	progress := func() (snapshot, changes int64) {
		j.mu.Lock()
		defer j.mu.Unlock()
		if j.next == nil {
			return -1, -1
		}
		return j.next.snapshot, j.next.changes
	}
	// What the engine has not handed over yet would go to the new file
	// as changes, and let the snapshot run ahead by twice as much.
	responder.FlushState()
	stop := make(chan struct{})
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- compactFrom(j, responder, stop) }()
	// A piece is 256 records; the pacer is asked between pieces.
	piece := full / 3000 * 256
	for time.Since(start) < 300*time.Millisecond {
		time.Sleep(20 * time.Millisecond)
		s, changed := progress()
		allowed := int64(time.Since(start).Seconds()*compactPaceFloor) + compactPaceRatio*changed + 2*piece
		if s < 0 {
			t.Fatalf("the compaction finished after %s, with nothing changing: not paced", time.Since(start))
		}
		if s > allowed {
			t.Fatalf("after %s the snapshot wrote %d bytes, its pace allows %d (%d bytes of changes)", time.Since(start), s, allowed, changed)
		}
	}
	// Changes let it go faster: compactPaceRatio bytes per byte changed.
	before, _ := progress()
	d := ike.StateDelta{SAs: []ike.ExportedIKESA{testRecord(1, 0xc0000001)}}
	var changed int64
	for changed < 2*piece {
		if err := j.SaveState(&d); err != nil {
			t.Fatal(err)
		}
		_, changed = progress()
	}
	deadline := time.Now().Add(2 * time.Second)
	for s, _ := progress(); s >= 0 && s < before+compactPaceRatio*changed-piece; s, _ = progress() {
		if time.Now().After(deadline) {
			t.Fatalf("%d bytes of changes appended, the snapshot moved from %d to %d bytes in 2s", changed, before, s)
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(stop)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the compaction did not finish within 10s of the daemon's stop")
	}
	l, err := readState(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Engine.SAs) != 3000 {
		t.Errorf("the compacted file holds %d IKE SAs, want 3000", len(l.Engine.SAs))
	}
}

// A compaction cut short (the daemon killed while it wrote) leaves its
// file beside the state file: the next daemon removes it, and only the
// files of its own state file's compactions.
func TestJournalRemovesStaleCompaction(t *testing.T) {
	j, path := newTestJournal(t)
	w, err := j.begin()
	if err != nil || w == nil {
		t.Fatalf("begin: %v", err)
	}
	if err := w.add(&ike.StateDelta{NextIKEID: 1, SAs: []ike.ExportedIKESA{testRecord(1, 0xc0000001)}}); err != nil {
		t.Fatal(err)
	}
	w.flush()
	left := w.tmp.Name()
	other := filepath.Join(filepath.Dir(path), ".other-state.compact-1")
	if err := os.WriteFile(other, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The killed daemon's files stay as they are; a new one opens the
	// journal.
	j2 := newJournal(path, j.header)
	removed, err := j2.removeStale()
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 1 || removed[0] != left {
		t.Errorf("removed %v, want [%s]", removed, left)
	}
	if _, err := os.Stat(left); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s still there: %v", left, err)
	}
	if _, err := os.Stat(other); err != nil {
		t.Errorf("another state file's compaction was removed: %v", err)
	}
	if _, err := readState(path); err != nil {
		t.Errorf("the state file: %v", err)
	}
}

// A compaction writes its file with neither the journal's lock nor the
// engine's held: a write that waits (here a pipe nobody reads yet; on a
// machine with many dirty pages, the kernel's writeback) does not hold
// up the deltas the engine hands over meanwhile, and they land after the
// records written before them.
func TestSnapshotFlushWithoutLock(t *testing.T) {
	j, path := newTestJournal(t)
	w, err := j.begin()
	if err != nil || w == nil {
		t.Fatalf("begin: %v", err)
	}
	const n = 300 // well over a pipe's 64 KiB
	for i := range n {
		id := uint32(i + 1)
		if err := w.add(&ike.StateDelta{NextIKEID: id, SAs: []ike.ExportedIKESA{testRecord(id, 0xc0000000+id)}}); err != nil {
			t.Fatal(err)
		}
	}
	file := w.tmp
	r, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	w.tmp = pw
	flushed := make(chan struct{})
	go func() {
		w.flush()
		close(flushed)
	}()
	time.Sleep(100 * time.Millisecond)
	select {
	case <-flushed:
		t.Fatal("the flush did not wait for the pipe's reader")
	default:
	}
	// Record 1 replaced: its new record goes after the snapshot's.
	saved := make(chan error, 1)
	go func() {
		saved <- j.SaveState(&ike.StateDelta{NextIKEID: n, SAs: []ike.ExportedIKESA{testRecord(1, 0xc1000001)}})
	}()
	select {
	case err := <-saved:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("SaveState waited for the compaction's write")
	}
	copied := make(chan error, 1)
	go func() {
		_, err := io.Copy(file, r)
		copied <- err
	}()
	<-flushed
	pw.Close()
	if err := <-copied; err != nil {
		t.Fatal(err)
	}
	w.tmp = file
	if err := w.commit(false); err != nil {
		t.Fatal(err)
	}
	l, err := readState(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Engine.SAs) != n {
		t.Fatalf("the compacted file holds %d IKE SAs, want %d", len(l.Engine.SAs), n)
	}
	for _, sa := range l.Engine.SAs {
		if sa.ID == 1 && sa.Children[0].SPIIn != 0xc1000001 {
			t.Errorf("IKE SA 1 has SPI %.8x, want the delta's c1000001", sa.Children[0].SPIIn)
		}
	}
}
