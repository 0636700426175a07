package bench

import (
	"fmt"
	"log/slog"
	"net/netip"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/xdpsec/xdpsec/ike"
	"github.com/xdpsec/xdpsec/ike/transform"
	"github.com/xdpsec/xdpsec/internal/daemon"
)

// Checkpoint cost per SA change: two of our engines in one process (an
// in-memory pipe between them, a no-op dataplane), the responder with
// the daemon's state journal as its StateSink. With n IKE SAs (one
// CHILD_SA each) established, the responder rekeys the CHILD_SA of one
// IKE SA after the other, and the journal appends what changed; the same
// is run without a journal, so that the difference is the state file's
// cost. A compaction (the file rewritten from a snapshot of the engine,
// which the daemon does when the appended records outgrow the snapshot)
// is measured apart: it is the one cost that grows with n, paid once per
// snapshot's worth of appended bytes, under the engine's lock.

var (
	ikeA = netip.MustParseAddr("127.0.0.1")
	ikeB = netip.MustParseAddr("127.0.0.2")
)

func ikeConn(local, remote netip.Addr, localID, remoteID, localNet, remoteNet string) *ike.Connection {
	return &ike.Connection{
		Name: "gw", LocalAddrs: []netip.Addr{local}, RemoteAddrs: []netip.Addr{remote},
		Proposals: transform.MustParseProposals(transform.ProtoIKE, "aes128gcm16-prfsha256-x25519"),
		Local:     []*ike.AuthConfig{{Auth: ike.AuthPSK, ID: ike.MustParseIdentity(localID)}},
		Remote:    []*ike.AuthConfig{{Auth: ike.AuthPSK, ID: ike.MustParseIdentity(remoteID)}},
		Children: []*ike.ChildConfig{{Name: "net", LocalTS: ike.MustParseTSSpecs(localNet), RemoteTS: ike.MustParseTSSpecs(remoteNet),
			ESPProposals: transform.MustParseProposals(transform.ProtoESP, "aes128gcm16")}},
	}
}

// pipe is an in-memory transport between engines: datagrams are queued
// by Send (under the sending engine's lock) and delivered by flush.
type pipe struct {
	mu    sync.Mutex // guards queue
	queue []ike.Datagram
	hosts map[netip.Addr]*ike.Engine
}

func (p *pipe) Send(d ike.Datagram) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.queue = append(p.queue, ike.Datagram{Local: d.Local, Remote: d.Remote, Data: slices.Clone(d.Data)})
	return nil
}

func (p *pipe) flush() {
	for {
		p.mu.Lock()
		if len(p.queue) == 0 {
			p.mu.Unlock()
			return
		}
		d := p.queue[0]
		p.queue = p.queue[1:]
		p.mu.Unlock()
		p.hosts[d.Remote.Addr()].HandleDatagram(ike.Datagram{Local: d.Remote, Remote: d.Local, Data: d.Data})
	}
}

// childIDs follows the current CHILD_SA of each IKE SA (observer).
type childIDs struct {
	mu sync.Mutex
	m  map[uint32]uint32 // IKE SA ID -> its CHILD_SA's
}

func (c *childIDs) IKEUpDown(ike.IKESAInfo, bool)                           {}
func (c *childIDs) IKERekey(old, new ike.IKESAInfo)                         {}
func (c *childIDs) IKEUpdate(ike.IKESAInfo, netip.AddrPort, netip.AddrPort) {}
func (c *childIDs) ChildUpDown(sa ike.IKESAInfo, ch ike.ChildSAInfo, up bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if up {
		c.m[sa.ID] = ch.ID
	}
}
func (c *childIDs) ChildRekey(sa ike.IKESAInfo, old, new ike.ChildSAInfo) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m[sa.ID] = new.ID
}

// processCPU is the CPU time the process has used, user and system.
func processCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// CheckpointResult is the cost of SA changes at one number of IKE SAs.
type CheckpointResult struct {
	SAs, Changes int
	// CPUOn and CPUOff are CPU time per change (both engines: the
	// rekey's initiator and responder), with and without the journal.
	CPUOn, CPUOff time.Duration
	// BytesPerChange is what the journal appended per change.
	BytesPerChange float64
	// P99ChangeOn and MaxChangeOn are the 99th percentile and the
	// longest of the single changes (wall clock) with the journal.
	P99ChangeOn, MaxChangeOn time.Duration
	// Snapshot is the size of a compacted file; CompactCPU and
	// CompactWall what one compaction costs. CompactStall is the longest
	// the engine kept another caller waiting meanwhile (it holds its
	// lock for a piece of the snapshot at a time).
	Snapshot                              int64
	CompactCPU, CompactWall, CompactStall time.Duration
}

// JournalCPU is the journal's CPU time per change (on − off).
func (r CheckpointResult) JournalCPU() time.Duration { return r.CPUOn - r.CPUOff }

// ChangesPerCompaction is how many changes a compaction comes after: the
// daemon compacts when the appended records exceed the snapshot, at
// least 1 MiB (internal/daemon: journal.wantsCompaction).
func (r CheckpointResult) ChangesPerCompaction() float64 {
	if r.BytesPerChange <= 0 {
		return 0
	}
	return float64(max(r.Snapshot, 1<<20)) / r.BytesPerChange
}

// CompactionPerChange is a compaction's CPU time spread over the
// changes between two compactions.
func (r CheckpointResult) CompactionPerChange() time.Duration {
	if n := r.ChangesPerCompaction(); n > 0 {
		return time.Duration(float64(r.CompactCPU) / n)
	}
	return 0
}

// DefaultCheckpointSAs are the IKE SA counts `make bench` measures.
var DefaultCheckpointSAs = []int{1_000, 10_000, 100_000}

// DefaultCheckpointChanges is the changes measured at each count.
const DefaultCheckpointChanges = 20_000

// memPair is two engines over a pipe: a initiates, b responds.
type memPair struct {
	a, b *ike.Engine
	pipe *pipe
	ids  *childIDs // b's current CHILD_SA per IKE SA
}

func newMemPair(sink ike.StateSink) (*memPair, error) {
	p := &pipe{hosts: map[netip.Addr]*ike.Engine{}}
	mk := func(local, remote netip.Addr, ids, nets [2]string, sink ike.StateSink) (*ike.Engine, error) {
		e, err := ike.New(ike.Config{Logger: slog.New(slog.DiscardHandler), Sender: p, Dataplane: &nullDataplane{},
			Credentials: ike.Credentials{Shared: []ike.SharedKey{{Secret: []byte("this is a shared secret")}}}, StateSink: sink})
		if err != nil {
			return nil, err
		}
		if err := e.AddConnection(ikeConn(local, remote, ids[0], ids[1], nets[0], nets[1])); err != nil {
			e.Close()
			return nil, err
		}
		return e, nil
	}
	a, err := mk(ikeA, ikeB, [2]string{"moon.example.org", "sun.example.org"}, [2]string{"10.1.0.0/16", "10.2.0.0/16"}, nil)
	if err != nil {
		return nil, err
	}
	b, err := mk(ikeB, ikeA, [2]string{"sun.example.org", "moon.example.org"}, [2]string{"10.2.0.0/16", "10.1.0.0/16"}, sink)
	if err != nil {
		a.Close()
		return nil, err
	}
	p.hosts[ikeA], p.hosts[ikeB] = a, b
	mp := &memPair{a: a, b: b, pipe: p, ids: &childIDs{m: map[uint32]uint32{}}}
	b.SetObserver(mp.ids)
	return mp, nil
}

func (p *memPair) close() { p.a.Close(); p.b.Close() }

// establish opens n IKE SAs one after the other.
func (p *memPair) establish(n int) error {
	for range n {
		if _, err := p.a.Initiate("gw"); err != nil {
			return err
		}
		p.pipe.flush()
	}
	p.ids.mu.Lock()
	got := len(p.ids.m)
	p.ids.mu.Unlock()
	if got != n {
		return fmt.Errorf("%d IKE SAs with a CHILD_SA, want %d", got, n)
	}
	return nil
}

// rekeyAll has the responder rekey changes CHILD_SAs, one IKE SA after
// the other, and returns the CPU time they took and the 99th percentile
// and longest of their wall times.
func (p *memPair) rekeyAll(changes int) (cpu, p99, longest time.Duration, err error) {
	p.ids.mu.Lock()
	list := make([]uint32, 0, len(p.ids.m))
	for id := range p.ids.m {
		list = append(list, id)
	}
	p.ids.mu.Unlock()
	slices.Sort(list)
	walls := make([]time.Duration, 0, changes)
	cpu0 := processCPU()
	for i := range changes {
		p.ids.mu.Lock()
		child := p.ids.m[list[i%len(list)]]
		p.ids.mu.Unlock()
		t := time.Now()
		if err := p.b.RekeyChildSA(child); err != nil {
			return 0, 0, 0, err
		}
		p.pipe.flush()
		walls = append(walls, time.Since(t))
	}
	cpu = processCPU() - cpu0
	slices.Sort(walls)
	if len(walls) > 0 {
		p99, longest = walls[len(walls)*99/100], walls[len(walls)-1]
	}
	return cpu, p99, longest, nil
}

// Checkpoint measures the cost of an SA change with and without the
// state journal at each count of IKE SAs; dir holds the journal files.
func Checkpoint(counts []int, changes int, dir string, progress func(string)) ([]CheckpointResult, error) {
	if progress == nil {
		progress = func(string) {}
	}
	var out []CheckpointResult
	for _, n := range counts {
		r := CheckpointResult{SAs: n, Changes: changes}
		off, err := newMemPair(nil)
		if err != nil {
			return out, err
		}
		if err = off.establish(n); err == nil {
			var cpu time.Duration
			cpu, _, _, err = off.rekeyAll(changes)
			r.CPUOff = cpu / time.Duration(changes)
		}
		off.close()
		if err != nil {
			return out, fmt.Errorf("checkpoint, %d SAs, no journal: %w", n, err)
		}
		if err := checkpointOn(&r, filepath.Join(dir, fmt.Sprintf("state-%d", n))); err != nil {
			return out, fmt.Errorf("checkpoint, %d SAs, journal: %w", n, err)
		}
		progress(fmt.Sprintf("checkpoint, %d IKE SAs: %.1f µs CPU per change with the journal, %.1f µs without, %.0f B appended per change; compaction %.0f ms CPU, %.0f ms wall, the engine stalled %.1f ms at most, %.2f µs per change amortised",
			n, usOf(r.CPUOn), usOf(r.CPUOff), r.BytesPerChange, msOf(r.CompactCPU), msOf(r.CompactWall), msOf(r.CompactStall), usOf(r.CompactionPerChange())))
		out = append(out, r)
	}
	return out, nil
}

func usOf(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
func msOf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func checkpointOn(r *CheckpointResult, path string) error {
	j := daemon.NewStateJournal(path)
	defer j.Close()
	p, err := newMemPair(j)
	if err != nil {
		return err
	}
	defer p.close()
	if err := j.Snapshot(p.b); err != nil {
		return err
	}
	if err := p.establish(r.SAs); err != nil {
		return err
	}
	// Two compactions, the second measured: the first follows the
	// establishments (whose records would otherwise be in the file).
	for range 2 {
		// A prober takes the engine's lock over and over (FlushState,
		// which has nothing to flush) and keeps the longest wait: what
		// an IKE message or a timer would wait for meanwhile. Its own
		// CPU is in CompactCPU too (small: it mostly waits).
		stop, stall := make(chan struct{}), make(chan time.Duration)
		go func() {
			var longest time.Duration
			for {
				select {
				case <-stop:
					stall <- longest
					return
				default:
				}
				t := time.Now()
				p.b.FlushState()
				longest = max(longest, time.Since(t))
				time.Sleep(100 * time.Microsecond)
			}
		}()
		cpu0, t := processCPU(), time.Now()
		err := j.Snapshot(p.b)
		r.CompactWall, r.CompactCPU = time.Since(t), processCPU()-cpu0
		close(stop)
		r.CompactStall = <-stall
		if err != nil {
			return err
		}
	}
	r.Snapshot = j.Size()
	cpu, p99, longest, err := p.rekeyAll(r.Changes)
	if err != nil {
		return err
	}
	r.CPUOn, r.P99ChangeOn, r.MaxChangeOn = cpu/time.Duration(r.Changes), p99, longest
	r.BytesPerChange = float64(j.Size()-r.Snapshot) / float64(r.Changes)
	return nil
}
