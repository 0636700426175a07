package daemon

import (
	"encoding/json"
	"net/netip"
	"testing"
	"time"

	"github.com/xdpsec/xdpsec/ike"
	"github.com/xdpsec/xdpsec/ike/swanctl"
)

func testFleet(leading bool) (*fleetState, *sharedAddr) {
	sh := swanctl.FleetShared{Name: "wan", Address: netip.MustParseAddr("192.0.2.1")}
	s := &sharedAddr{cfg: sh, kick: make(chan struct{}, 1), wake: make(chan struct{}, 1), pending: map[string][]byte{}, keys: map[uint32]string{}, seqs: map[string]*seqRecord{}}
	s.leading.Store(leading)
	f := &fleetState{name: "gw1", shared: map[string]*sharedAddr{"wan": s}, byAddr: map[netip.Addr]*sharedAddr{sh.Address: s}}
	return f, s
}

func exported(id uint32, spii, spir uint64, local string) ike.ExportedIKESA {
	return ike.ExportedIKESA{ID: id, Conn: "rw", SPIi: spii, SPIr: spir, NextMessageID: 2, ExpectMessageID: 3,
		Local: netip.AddrPortFrom(netip.MustParseAddr(local), 500), Remote: netip.MustParseAddrPort("198.51.100.7:500")}
}

// TestFleetSinkRecords: the engine's deltas become records keyed by the
// IKE SPIs, for IKE SAs on a shared address this member leads only;
// message IDs, removal and an IKE rekey (new SPIs, same unique ID) follow.
func TestFleetSinkRecords(t *testing.T) {
	f, s := testFleet(true)
	d := &ike.StateDelta{SAs: []ike.ExportedIKESA{exported(7, 0x1111, 0x2222, "192.0.2.1"), exported(8, 0x3333, 0x4444, "192.0.2.11")}}
	if err := f.SaveState(d); err != nil {
		t.Fatal(err)
	}
	k := recordKey(0x1111, 0x2222)
	if k != "0000000000001111_0000000000002222" {
		t.Fatalf("record key %s", k)
	}
	if len(s.pending) != 2 || s.pending["ike/"+k] == nil || s.pending["mid/"+k] != nil {
		t.Fatalf("pending %v", keysOf(s.pending))
	}
	if _, ok := s.pending["ike/"+recordKey(0x3333, 0x4444)]; ok {
		t.Fatal("an IKE SA on this member's own address went to the fleet")
	}
	f.SaveState(&ike.StateDelta{MessageIDs: []ike.ExportedMessageIDs{{ID: 7, Next: 5, Expect: 9}, {ID: 99, Next: 1}}})
	var m ike.ExportedMessageIDs
	if err := json.Unmarshal(s.pending["mid/"+k], &m); err != nil || m.Next != 5 || m.Expect != 9 {
		t.Fatalf("message IDs %+v %v", m, err)
	}
	// The records decode into what TakeOver takes, the newer message
	// IDs applied.
	st, _, bad := decodeRecords(s.pending)
	if len(bad) != 0 || len(st.SAs) != 1 || st.SAs[0].SPIi != 0x1111 || st.SAs[0].NextMessageID != 5 || st.SAs[0].ExpectMessageID != 9 {
		t.Fatalf("decoded %+v, bad %v", st.SAs, bad)
	}
	// An IKE rekey: new SPIs under the same unique ID.
	s.pending = map[string][]byte{}
	f.SaveState(&ike.StateDelta{SAs: []ike.ExportedIKESA{exported(7, 0x5555, 0x6666, "192.0.2.1")}})
	k2 := recordKey(0x5555, 0x6666)
	if v, ok := s.pending["ike/"+k]; !ok || v != nil {
		t.Errorf("the old SPIs' record is not deleted: %v", keysOf(s.pending))
	}
	if s.pending["ike/"+k2] == nil || s.keys[7] != k2 {
		t.Errorf("the new record: %v, keys %v", keysOf(s.pending), s.keys)
	}
	// Gone: the records go.
	s.pending = map[string][]byte{}
	f.SaveState(&ike.StateDelta{Gone: []uint32{7}})
	for _, kind := range []string{"ike/", "mid/", "seq/"} {
		if v, ok := s.pending[kind+k2]; !ok || v != nil {
			t.Errorf("%s%s not deleted: %v", kind, k2, keysOf(s.pending))
		}
	}
	if len(s.keys) != 0 {
		t.Errorf("keys %v", s.keys)
	}

	// A member that does not lead saves nothing.
	f, s = testFleet(false)
	f.SaveState(&ike.StateDelta{SAs: []ike.ExportedIKESA{exported(7, 0x1111, 0x2222, "192.0.2.1")}})
	if len(s.pending) != 0 {
		t.Errorf("a standby queued %v", keysOf(s.pending))
	}
}

// TestFleetDecodeRecords: undecodable records and records under the
// wrong key are named, not taken over; sequence numbers are found by SPI.
func TestFleetDecodeRecords(t *testing.T) {
	good, _ := json.Marshal(exported(1, 0xa, 0xb, "192.0.2.1"))
	at := time.Now().Add(-2 * time.Second)
	seq, _ := json.Marshal(seqRecord{At: at, Children: []childSeq{{SPIIn: 0xc1, SPIOut: 0xc2, OutSeq: 1000, InSeq: 700, OutRate: 100, PeakRate: 400}}})
	recs := map[string][]byte{
		"ike/" + recordKey(0xa, 0xb): good,
		"ike/" + recordKey(0xa, 0xc): good, // moved under another key
		"ike/" + recordKey(0xd, 0xe): []byte("{"),
		"seq/" + recordKey(0xa, 0xb): seq,
		"checkpoint":                 []byte(`{"member":"gw1"}`),
		"other":                      []byte("x"),
	}
	st, seqs, bad := decodeRecords(recs)
	if len(st.SAs) != 1 || len(bad) != 3 {
		t.Fatalf("SAs %d, bad %v", len(st.SAs), bad)
	}
	now := at.Add(2 * time.Second)
	fn := seqFunc(seqs, time.Second, now)
	out, in := fn(ike.SAID{SPI: 0xc2})
	// 1000 saved + 100/s over 2s (age) + the peak 400/s over 1s
	// (interval) + margin 1024.
	if want := uint64(1000 + 200 + 400 + seqMargin); out != want || in != 700 {
		t.Errorf("seq = %d, %d; want %d, 700", out, in, want)
	}
	if out, in := fn(ike.SAID{SPI: 0x99}); out != 0 || in != 0 {
		t.Errorf("unknown SPI: %d %d", out, in)
	}
}

func keysOf(m map[string][]byte) []string {
	var out []string
	for k, v := range m {
		if v == nil {
			k += "(del)"
		}
		out = append(out, k)
	}
	return out
}

// TestSameFleet: a reload warns only when the fleet section changed, not
// when it moved in the file.
func TestSameFleet(t *testing.T) {
	a := &swanctl.FleetSettings{Pos: swanctl.Pos{Line: 1}, Member: "gw1", Endpoints: []string{"http://127.0.0.1:2379"}, LeaseTTL: 3 * time.Second,
		Shared: []swanctl.FleetShared{{Name: "wan", Pos: swanctl.Pos{Line: 4}, Address: netip.MustParseAddr("192.0.2.1")}}}
	b := *a
	b.Pos = swanctl.Pos{Line: 9}
	b.Shared = []swanctl.FleetShared{a.Shared[0]}
	b.Shared[0].Pos = swanctl.Pos{Line: 12}
	if !sameFleet(a, &b) || !sameFleet(nil, nil) || sameFleet(a, nil) {
		t.Error("moved section differs")
	}
	b.Shared[0].Follow = swanctl.FollowKeepalived
	if sameFleet(a, &b) {
		t.Error("follow change not seen")
	}
	c := *a
	c.LeaseTTL = 4 * time.Second
	if sameFleet(a, &c) {
		t.Error("lease_ttl change not seen")
	}
}

// TestFleetSeqRates: a read is written when the sequence numbers move,
// with the rate since the last written record and the peak; an SA gone
// idle once more with rate 0, then not again.
func TestFleetSeqRates(t *testing.T) {
	t0 := time.Now()
	rec := func(at time.Duration, out, in uint64) *seqRecord {
		return &seqRecord{At: t0.Add(at), Children: []childSeq{{SPIIn: 1, SPIOut: 2, OutSeq: out, InSeq: in}}}
	}
	r1 := rec(0, 100, 50)
	if !r1.follow(nil) {
		t.Fatal("first read not written")
	}
	r2 := rec(time.Second, 1100, 60)
	if !r2.follow(r1) || r2.Children[0].OutRate != 1000 || r2.Children[0].PeakRate != 1000 {
		t.Fatalf("after 1000 packets in 1s: %+v", r2.Children[0])
	}
	r3 := rec(2*time.Second, 1100, 60)
	if !r3.follow(r2) || r3.Children[0].OutRate != 0 || r3.Children[0].PeakRate != 1000 {
		t.Fatalf("gone idle: %+v", r3.Children[0])
	}
	if r4 := rec(3*time.Second, 1100, 60); r4.follow(r3) {
		t.Fatalf("idle again written: %+v", r4.Children[0])
	}
	// Long idle: only the peak over one interval and the margin.
	if got, want := nextOutSeq(r3.Children[0], time.Hour, time.Second), uint64(1100+1000+seqMargin); got != want {
		t.Errorf("after an hour idle: %d, want %d", got, want)
	}
	// A rekeyed CHILD_SA (new SPIs) is written.
	r5 := &seqRecord{At: t0.Add(4 * time.Second), Children: []childSeq{{SPIIn: 3, SPIOut: 4}}}
	if !r5.follow(r3) {
		t.Error("new CHILD_SA not written")
	}
}
