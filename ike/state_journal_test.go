package ike_test

import (
	"encoding/json"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/xdpsec/xdpsec/ike"
	"github.com/xdpsec/xdpsec/ike/pool"
)

// replaySink is a StateSink that replays every delta over a state, as
// the daemon's journal does when it is read back.
type replaySink struct {
	t      *testing.T
	st     ike.EngineState
	writes int
}

func (r *replaySink) SaveState(d *ike.StateDelta) error {
	// A deep copy: the engine zeroes d's keys when this returns.
	b, err := json.Marshal(d)
	if err != nil {
		r.t.Fatal(err)
	}
	var c ike.StateDelta
	if err := json.Unmarshal(b, &c); err != nil {
		r.t.Fatal(err)
	}
	r.st.Apply(&c)
	r.writes++
	return nil
}

// has says whether the replayed state holds the SA.
func (r *replaySink) has(id ike.SAID) bool {
	for i := range r.st.SAs {
		if slices.Contains(r.st.SAs[i].SAIDs(), id) {
			return true
		}
	}
	for i := range r.st.V1 {
		if slices.Contains(r.st.V1[i].SAIDs(), id) {
			return true
		}
	}
	return false
}

// orderedDataplane fails the test when an SA leaves the dataplane while
// the journal still has it: a restart would take back an SA that is gone.
type orderedDataplane struct {
	ike.Dataplane
	t    *testing.T
	sink *replaySink
}

func (d orderedDataplane) DeleteSA(id ike.SAID) error {
	if d.sink.has(id) {
		d.t.Errorf("SA %.8x dst %s deleted while the journal still has it", id.SPI, id.Dst)
	}
	return d.Dataplane.DeleteSA(id)
}

// normalized is a state's JSON with its records in unique-ID order.
func normalized(t *testing.T, st ike.EngineState) string {
	t.Helper()
	if len(st.SAs) == 0 {
		st.SAs = nil
	}
	if len(st.V1) == 0 {
		st.V1 = nil
	}
	slices.SortFunc(st.SAs, func(a, b ike.ExportedIKESA) int { return int(a.ID) - int(b.ID) })
	slices.SortFunc(st.V1, func(a, b ike.ExportedISAKMPSA) int { return int(a.ID) - int(b.ID) })
	for name := range st.Pools {
		slices.SortFunc(st.Pools[name], func(a, b pool.Lease) int { return a.Addr.Compare(b.Addr) })
	}
	b, err := json.MarshalIndent(st, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// journaled sets a peer up with a replaySink behind an orderedDataplane.
func journaled(t *testing.T, sink *replaySink) func(*ike.Config) {
	return func(c *ike.Config) {
		c.StateSink = sink
		c.Dataplane = orderedDataplane{Dataplane: c.Dataplane, t: t, sink: sink}
	}
}

// checkJournal compares what the journal replays to with the engine's
// export, after a FlushState (message IDs are handed over lazily).
func checkJournal(t *testing.T, step string, e *ike.Engine, sink *replaySink) {
	t.Helper()
	e.FlushState()
	st := e.Export()
	defer st.Zero()
	// Online is not journaled: a restart restores every lease offline.
	for _, leases := range st.Pools {
		for i := range leases {
			leases[i].Online = false
		}
	}
	got := sink.st
	for _, leases := range got.Pools {
		for i := range leases {
			leases[i].Online = false
		}
	}
	if a, b := normalized(t, got), normalized(t, st); a != b {
		t.Fatalf("%s: the journal replays to\n%s\nthe engine exports\n%s", step, a, b)
	}
}

func TestStateJournalFollowsExport(t *testing.T) {
	for _, version := range []int{1, 2} {
		t.Run("IKEv"+string(rune('0'+version)), func(t *testing.T) {
			sink := &replaySink{t: t}
			o := bedOptions{cfgB: journaled(t, sink)}
			if version == 1 {
				o.connA = v1("aes128-sha256-modp2048", "aes128-sha256")
				o.connB = v1("aes128-sha256-modp2048", "aes128-sha256")
			}
			tb := newTestbed(t, o)
			tb.establish()
			b := tb.b.e
			if sink.writes == 0 || len(sink.st.SAs)+len(sink.st.V1) != 1 {
				t.Fatalf("after establishment: %d writes, state %+v", sink.writes, sink.st)
			}
			checkJournal(t, "established", b, sink)

			sa := tb.established(tb.b)
			if err := b.RekeyChildSA(sa.Children[0].ID); err != nil {
				t.Fatal(err)
			}
			tb.advance(time.Minute)
			checkJournal(t, "CHILD_SA rekeyed", b, sink)

			if version == 2 {
				if err := b.RekeyIKESA(sa.ID); err != nil {
					t.Fatal(err)
				}
				tb.advance(time.Minute)
				checkJournal(t, "IKE_SA rekeyed", b, sink)
				if got := tb.established(tb.b); got.ID == sa.ID {
					t.Fatal("IKE_SA not rekeyed")
				}
			}
			// DPD: only message IDs change, handed over with FlushState.
			tb.advance(10 * time.Minute)
			checkJournal(t, "later", b, sink)

			// What the journal holds takes the SA back in a new engine.
			st := sink.st
			sink.st = ike.EngineState{}
			c := baseConn(addrB, addrA, "sun.example.org", "moon.example.org", "10.2.0.0/16", "10.1.0.0/16")
			if version == 1 {
				v1("aes128-sha256-modp2048", "aes128-sha256")(c)
			}
			before := tb.established(tb.b)
			tb.b.e.Detach()
			tb.b = tb.restartPeer(tb.b, st, c, 0xc4000000)
			after := tb.established(tb.b)
			if after.ID != before.ID || after.SPIi != before.SPIi || len(after.Children) != len(before.Children) ||
				after.Children[0].SPIIn != before.Children[0].SPIIn || after.Established.IsZero() ||
				!after.Established.Equal(before.Established) || !after.Children[0].InstalledAt.Equal(before.Children[0].InstalledAt) {
				t.Fatalf("taken back from the journal:\n%+v\nbefore:\n%+v", after, before)
			}
		})
	}
}

func TestStateJournalDelete(t *testing.T) {
	sink := &replaySink{t: t}
	tb := newTestbed(t, bedOptions{cfgB: journaled(t, sink)})
	tb.establish()
	sa := tb.established(tb.b)
	if err := tb.b.e.DeleteChildSA(sa.Children[0].ID); err != nil {
		t.Fatal(err)
	}
	tb.net.Flush()
	checkJournal(t, "CHILD_SA deleted", tb.b.e, sink)
	if len(sink.st.SAs) != 1 || len(sink.st.SAs[0].Children) != 0 {
		t.Fatalf("journal after the CHILD_SA went: %+v", sink.st.SAs)
	}
	if err := tb.a.e.DeleteIKESA(tb.established(tb.a).ID); err != nil {
		t.Fatal(err)
	}
	tb.net.Flush()
	if len(sink.st.SAs) != 0 {
		t.Fatalf("journal after the IKE_SA went: %+v", sink.st.SAs)
	}
	checkJournal(t, "IKE_SA deleted", tb.b.e, sink)
}

// A half-open IKE SA that never gets established writes nothing.
func TestStateJournalHalfOpenWritesNothing(t *testing.T) {
	sink := &replaySink{t: t}
	tb := newTestbed(t, bedOptions{pskB: "another secret", cfgB: journaled(t, sink)})
	if _, err := tb.a.e.Initiate("gw"); err != nil {
		t.Fatal(err)
	}
	tb.advance(time.Minute)
	tb.b.e.FlushState()
	if sink.writes != 0 {
		t.Fatalf("%d writes for an IKE SA never established: %+v", sink.writes, sink.st)
	}
}

func TestStateDeltaApplyLeases(t *testing.T) {
	a, b := netip.MustParseAddr("10.3.0.1"), netip.MustParseAddr("10.3.0.2")
	var st ike.EngineState
	st.Apply(&ike.StateDelta{Leases: map[string][]pool.Lease{"p": {{Addr: a, Identity: "alice"}, {Addr: b, Identity: "bob"}}}})
	st.Apply(&ike.StateDelta{Leases: map[string][]pool.Lease{"p": {{Addr: a, Identity: "carol"}}}, NextIKEID: 7})
	want := []pool.Lease{{Addr: a, Identity: "carol"}, {Addr: b, Identity: "bob"}}
	if !slices.Equal(st.Pools["p"], want) || st.NextIKEID != 7 {
		t.Fatalf("leases %+v next %d", st.Pools["p"], st.NextIKEID)
	}
}

// A rekey's responder holds its new outbound SA back until the peer
// deletes the old CHILD_SA, but reports the CHILD_SA established at once:
// the journal keeps the held keys, and a restart from it installs the
// outbound SA.
func TestStateJournalHeldOutbound(t *testing.T) {
	sink := &replaySink{t: t}
	tb := newTestbed(t, bedOptions{cfgB: journaled(t, sink)})
	tb.establish()
	old := tb.established(tb.a).Children[0]
	if err := tb.a.e.RekeyChildSA(old.ID); err != nil {
		t.Fatal(err)
	}
	if !tb.net.Deliver() { // the CREATE_CHILD_SA request to b
		t.Fatal("no rekey request")
	}
	var held *ike.ExportedChildSA
	for i, c := range sink.st.SAs[0].Children {
		if c.HeldOut != nil {
			held = &sink.st.SAs[0].Children[i]
		}
	}
	if held == nil || len(sink.st.SAs[0].Children) != 2 {
		t.Fatalf("journal after b answered the rekey: %+v", sink.st.SAs[0].Children)
	}
	if tb.b.dp.SA(held.SPIOut) != nil {
		t.Fatalf("outbound SA %.8x installed before the old CHILD_SA went", held.SPIOut)
	}
	// b is killed now: what its journal has is all a restart gets.
	st := sink.st
	sink.st = ike.EngineState{}
	c := baseConn(addrB, addrA, "sun.example.org", "moon.example.org", "10.2.0.0/16", "10.1.0.0/16")
	tb.b.e.Detach()
	tb.b = tb.restartPeer(tb.b, st, c, 0xc4000000)
	if tb.b.dp.SA(held.SPIOut) == nil {
		t.Fatalf("outbound SA %.8x held back before the restart not installed after it", held.SPIOut)
	}
	tb.net.Flush()
	ch := tb.children(tb.b)
	if len(ch) != 1 || ch[0].SPIOut != held.SPIOut {
		t.Fatalf("b's CHILD_SAs after the rekey completed: %+v", ch)
	}
	// b's outbound SA is a's inbound one, keys and all.
	out, in := tb.b.dp.SA(held.SPIOut), tb.a.dp.SA(held.SPIOut)
	if out == nil || in == nil || string(out.EncrKey) != string(in.EncrKey) || len(out.EncrKey) == 0 {
		t.Fatalf("b's outbound SA %+v, a's inbound %+v", out, in)
	}
}

// XAuth and Mode Config, push and pull: both ends' journals follow what
// they export (the XAuth user, the virtual IP and DNS server, the pool's
// lease), also for a push that comes after phase 1.
func TestStateJournalXAuth(t *testing.T) {
	for _, push := range []bool{false, true} {
		sa, sb := &replaySink{t: t}, &replaySink{t: t}
		tb := newXAuthBed(t, xauthOptions{user: "alice", password: "alice's password", push: push, sinkA: sa, sinkB: sb})
		tb.establish()
		checkJournal(t, "client", tb.a.e, sa)
		checkJournal(t, "gateway", tb.b.e, sb)
		if len(sa.st.V1) != 1 || len(sa.st.V1[0].LocalVIPs) != 1 || len(sb.st.Pools["rw"]) != 1 || sb.st.Pools["rw"][0].Identity != "alice" {
			t.Fatalf("push %v: client's journal %+v, gateway's leases %+v", push, sa.st.V1, sb.st.Pools)
		}
	}
}

// Every release of the engine's lock goes through unlock, which hands
// urgent changes to the StateSink first: a change made under a lock
// released with e.mu.Unlock would wait for the next FlushState, and a
// daemon killed meanwhile would not take back an SA it reported.
func TestStateJournalUnlock(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") || f == "state_journal.go" {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(b), "\n") {
			if strings.Contains(line, "e.mu.Unlock()") {
				t.Errorf("%s:%d: %s: release the engine's lock with e.unlock()", f, i+1, strings.TrimSpace(line))
			}
		}
	}
}

// TestStateReplayOrder replays random deltas (new records, replaced
// ones, gone ones, message IDs) through StateReplay and through the
// order Apply is defined by (a replaced record goes last): the same IKE
// SAs in the same order, with the last message IDs, whatever the holes
// squeezed out on the way.
func TestStateReplayOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	r := ike.NewStateReplay(ike.EngineState{})
	var want []uint32
	mids := map[uint32]uint32{}
	for range 20000 {
		var d ike.StateDelta
		switch id := uint32(rng.IntN(3000) + 1); rng.IntN(4) {
		case 0, 1:
			d.SAs = []ike.ExportedIKESA{{ID: id}}
			want = slices.DeleteFunc(want, func(x uint32) bool { return x == id })
			want = append(want, id)
			delete(mids, id)
		case 2:
			d.Gone = []uint32{id}
			want = slices.DeleteFunc(want, func(x uint32) bool { return x == id })
			delete(mids, id)
		case 3:
			d.MessageIDs = []ike.ExportedMessageIDs{{ID: id, Next: uint32(rng.IntN(100) + 1)}}
			if slices.Contains(want, id) {
				mids[id] = d.MessageIDs[0].Next
			}
		}
		r.Add(&d)
	}
	st := r.State()
	var got []uint32
	for _, s := range st.SAs {
		got = append(got, s.ID)
		if s.NextMessageID != mids[s.ID] {
			t.Errorf("IKE SA %d: next message ID %d, want %d", s.ID, s.NextMessageID, mids[s.ID])
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("replayed %d IKE SAs %v..., want %d %v...", len(got), got[:min(10, len(got))], len(want), want[:min(10, len(want))])
	}
}

// dualSink is the daemon's journal during a compaction: deltas go to the
// old state and, once a snapshot has started, to the new one after the
// pieces given so far.
type dualSink struct {
	old, new *replaySink
	started  bool
}

func (d *dualSink) SaveState(delta *ike.StateDelta) error {
	if d.started {
		d.new.SaveState(delta)
	}
	return d.old.SaveState(delta)
}

// TestSnapshotInPieces: a snapshot releases the engine's lock between
// pieces, and what changes meanwhile (CHILD_SAs rekeyed and IKE SAs
// deleted on either side of the piece being written, a new IKE SA) goes
// into the new state as a delta: the pieces and the deltas, replayed in
// the order they were saved, equal the engine's export, and so does the
// old state, which got every delta too.
func TestSnapshotInPieces(t *testing.T) {
	sink := &dualSink{old: &replaySink{t: t}, new: &replaySink{t: t}}
	tb := newTestbed(t, bedOptions{cfgB: func(c *ike.Config) { c.StateSink = sink }})
	chunk := ike.SetBetweenPieces(nil)
	n := chunk + chunk/2
	for range n {
		tb.establish()
	}
	sas := tb.b.sas()
	if len(sas) != n {
		t.Fatalf("%d IKE SAs, want %d", len(sas), n)
	}
	slices.SortFunc(sas, func(a, b ike.IKESAInfo) int { return int(a.ID) - int(b.ID) })
	pieces := 0
	ike.SetBetweenPieces(func() {
		pieces++
		if pieces != 1 {
			return
		}
		// The first piece holds the lowest IDs: one of each kind of
		// change before it, one after.
		for _, sa := range []ike.IKESAInfo{sas[1], sas[n-2]} {
			if err := tb.b.e.RekeyChildSA(sa.Children[0].ID); err != nil {
				t.Fatal(err)
			}
		}
		for _, sa := range []ike.IKESAInfo{sas[2], sas[n-3]} {
			if err := tb.b.e.DeleteIKESA(sa.ID); err != nil {
				t.Fatal(err)
			}
		}
		tb.establish()
		tb.net.Flush()
	})
	defer ike.SetBetweenPieces(nil)
	sink.started = true
	if err := tb.b.e.Snapshot(func(d *ike.StateDelta) error { return sink.new.SaveState(d) }); err != nil {
		t.Fatal(err)
	}
	if pieces < 1 {
		t.Fatalf("%d pauses between pieces for %d IKE SAs (pieces of %d)", pieces, n, chunk)
	}
	if got := len(tb.b.sas()); got != n-1 {
		t.Fatalf("%d IKE SAs after the changes, want %d", got, n-1)
	}
	checkJournal(t, "new state", tb.b.e, sink.new)
	checkJournal(t, "old state", tb.b.e, sink.old)
}
