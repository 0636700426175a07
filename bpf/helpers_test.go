package bpf_test

import (
	"net/netip"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/xdpsec/xdpsec/bpf"
	"github.com/xdpsec/xdpsec/internal/testenv"
	"github.com/xdpsec/xdpsec/maps"
)

// XDP action codes (linux/bpf.h).
const (
	xdpDrop     = 1
	xdpPass     = 2
	xdpRedirect = 4
)

var (
	peer4  = netip.MustParseAddr("198.51.100.7")
	peer4b = netip.MustParseAddr("198.51.100.8")
	us4    = netip.MustParseAddr("192.0.2.1")
	us4b   = netip.MustParseAddr("192.0.2.2")
	peer6  = netip.MustParseAddr("2001:db8:1::7")
	us6    = netip.MustParseAddr("2001:db8:2::1")
)

// slotBase starts the allocated SPI range in tests: SPIs from it are found
// by index (sa_slot), others by hash (sa_in).
const slotBase = 0xc0000000

// loadObjects loads the programs and fresh, unpinned maps for one test.
func loadObjects(t testing.TB) (*bpf.XdpsecObjects, *maps.Set) {
	t.Helper()
	return loadObjectsSized(t, 1024)
}

// loadObjectsSized is loadObjects with room for that many policies.
func loadObjectsSized(t testing.TB, policies uint32) (*bpf.XdpsecObjects, *maps.Set) {
	t.Helper()
	testenv.RequireBPF(t)
	spec, err := bpf.LoadXdpsec()
	if err != nil {
		t.Fatal(err)
	}
	// Small tables: fixtures need few entries, and preallocating the
	// default sizes for every fixture costs seconds.
	p := policies
	for name, n := range map[string]uint32{"sa_in": 256, "sa_slot": 256, "sa_slot_stats": 256, "sa_foreign": 512, "sa_foreign_stats": 512, "spd_out": p,
		"spd_stats": p + 1, "spd_prefix4": 2 * p, "spd_prefix6": 2 * p, "spd_dst": 2 * p, "spd_src": 2 * p, "spd_node": 2 * p, "spd_rule": 2 * p,
		"stash": stashTestSize} {
		spec.Maps[name].MaxEntries = n
	}
	var objs bpf.XdpsecObjects
	if err := spec.LoadAndAssign(&objs, nil); err != nil {
		t.Fatalf("load objects: %v", err)
	}
	t.Cleanup(func() { objs.Close() })
	s := maps.New(&objs.XdpsecMaps)
	if err := s.Config.SetSPIRange(maps.SPIRange{Base: slotBase, Count: 256}, 256); err != nil {
		t.Fatal(err)
	}
	return &objs, s
}

// checkCounters asserts that the named counters have exactly these packet
// counts and every other counter is zero.
func checkCounters(t *testing.T, s *maps.Set, want map[string]uint64) {
	t.Helper()
	got, err := s.Counters.Read()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, c := range got {
		seen[c.Name] = true
		if c.Packets != want[c.Name] {
			t.Errorf("counter %s = %d packets, want %d", c.Name, c.Packets, want[c.Name])
		}
		if c.Packets == 0 && c.Bytes != 0 {
			t.Errorf("counter %s has %d bytes but no packets", c.Name, c.Bytes)
		}
	}
	for name := range want {
		if !seen[name] {
			t.Errorf("no counter named %s", name)
		}
	}
}

func run(t *testing.T, prog *ebpf.Program, pkt []byte) uint32 {
	t.Helper()
	ret, err := prog.Run(&ebpf.RunOptions{Data: pkt})
	if err != nil {
		t.Fatalf("run %s: %v", prog, err)
	}
	return ret
}
