package bpf_test

import (
	"os"
	"reflect"
	"regexp"
	"strconv"
	"testing"

	"github.com/cilium/ebpf/btf"

	"github.com/xdpsec/xdpsec/bpf"
	"github.com/xdpsec/xdpsec/maps"
)

// TestGeneratedTypeSizes checks that each Go type bpf2go generated from
// xdpsec.h has the size and field offsets the C compiler gave the struct,
// as the object's BTF records them, and that map specs agree with them.
func TestGeneratedTypeSizes(t *testing.T) {
	spec, err := bpf.LoadXdpsec()
	if err != nil {
		t.Fatal(err)
	}
	types := map[string]any{
		"xs_sa_key":          bpf.XdpsecXsSaKey{},
		"xs_sa_entry":        bpf.XdpsecXsSaEntry{},
		"xs_sa_slot":         bpf.XdpsecXsSaSlot{},
		"xs_config":          bpf.XdpsecXsConfig{},
		"xs_counter_value":   bpf.XdpsecXsCounterValue{},
		"xs_policy":          bpf.XdpsecXsPolicy{},
		"xs_spd_dst_key":     bpf.XdpsecXsSpdDstKey{},
		"xs_spd_prefix4_key": bpf.XdpsecXsSpdPrefix4Key{},
		"xs_spd_prefix6_key": bpf.XdpsecXsSpdPrefix6Key{},
		"xs_spd_lens":        bpf.XdpsecXsSpdLens{},
		"xs_spd_src_key":     bpf.XdpsecXsSpdSrcKey{},
		"xs_spd_node":        bpf.XdpsecXsSpdNode{},
		"xs_spd_rule":        bpf.XdpsecXsSpdRule{},
		"xs_stash_entry":     bpf.XdpsecXsStashEntry{},
	}
	for name, goVal := range types {
		var st *btf.Struct
		if err := spec.Types.TypeByName(name, &st); err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		gt := reflect.TypeOf(goVal)
		if int(gt.Size()) != int(st.Size) {
			t.Errorf("%s: Go size %d, C size %d", name, gt.Size(), st.Size)
		}
		// Field by field: offsets in bytes, skipping the Go-only HostLayout marker.
		fi := 0
		for i := 0; i < gt.NumField(); i++ {
			f := gt.Field(i)
			if f.Name == "_" {
				continue
			}
			if fi >= len(st.Members) {
				t.Errorf("%s: Go has more fields than C", name)
				break
			}
			if off := st.Members[fi].Offset.Bytes(); uint32(f.Offset) != off {
				t.Errorf("%s.%s: Go offset %d, C offset %d", name, f.Name, f.Offset, off)
			}
			fi++
		}
		if fi != len(st.Members) {
			t.Errorf("%s: C has %d fields, Go %d", name, len(st.Members), fi)
		}
	}

	mapTypes := map[string][2]any{
		"sa_in":            {bpf.XdpsecXsSaKey{}, bpf.XdpsecXsSaEntry{}},
		"sa_slot":          {uint32(0), bpf.XdpsecXsSaSlot{}},
		"sa_slot_stats":    {uint32(0), bpf.XdpsecXsCounterValue{}},
		"sa_foreign":       {uint32(0), bpf.XdpsecXsSaSlot{}},
		"sa_foreign_stats": {uint32(0), bpf.XdpsecXsCounterValue{}},
		"ike_bucket":       {uint32(0), uint64(0)},
		"config":           {uint32(0), bpf.XdpsecXsConfig{}},
		"stats":            {uint32(0), bpf.XdpsecXsCounterValue{}},
		"spd_out":          {uint32(0), bpf.XdpsecXsPolicy{}},
		"spd_stats":        {uint32(0), bpf.XdpsecXsCounterValue{}},
		"spd_prefix4":      {bpf.XdpsecXsSpdPrefix4Key{}, uint32(0)},
		"spd_prefix6":      {bpf.XdpsecXsSpdPrefix6Key{}, uint32(0)},
		"spd_dst":          {bpf.XdpsecXsSpdDstKey{}, uint32(0)},
		"spd_node":         {uint32(0), bpf.XdpsecXsSpdNode{}},
		"spd_src":          {bpf.XdpsecXsSpdSrcKey{}, uint32(0)},
		"spd_rule":         {uint32(0), bpf.XdpsecXsSpdRule{}},
		"cpu_map":          {uint32(0), bpf.XdpsecBpfCpumapVal{}},
		"stash":            {struct{}{}, bpf.XdpsecXsStashEntry{}}, // a queue: no key
		"stash_scratch":    {uint32(0), bpf.XdpsecXsStashEntry{}},
	}
	if len(mapTypes) != len(spec.Maps) {
		t.Errorf("object has %d maps, the test knows %d", len(spec.Maps), len(mapTypes))
	}
	for name, kv := range mapTypes {
		m, ok := spec.Maps[name]
		if !ok {
			t.Errorf("no map %s", name)
			continue
		}
		if k := reflect.TypeOf(kv[0]).Size(); uint32(k) != m.KeySize {
			t.Errorf("map %s: Go key size %d, C %d", name, k, m.KeySize)
		}
		if v := reflect.TypeOf(kv[1]).Size(); uint32(v) != m.ValueSize {
			t.Errorf("map %s: Go value size %d, C %d", name, v, m.ValueSize)
		}
	}
}

// TestCounterNames checks that every enumerator of enum xs_counter has a
// name on the Go side, and that the names are unique.
func TestCounterNames(t *testing.T) {
	spec, err := bpf.LoadXdpsec()
	if err != nil {
		t.Fatal(err)
	}
	var e *btf.Enum
	if err := spec.Types.TypeByName("xs_counter", &e); err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, v := range e.Values {
		if v.Name == "XS_CNT_MAX" {
			if v.Value != uint64(bpf.XdpsecXsCounterXS_CNT_MAX) {
				t.Errorf("XS_CNT_MAX is %d in C, %d in Go", v.Value, bpf.XdpsecXsCounterXS_CNT_MAX)
			}
			continue
		}
		info := maps.Info(maps.Counter(v.Value))
		if info.Program == "" {
			t.Errorf("counter %s (%d) has no name in maps/counters.go", v.Name, v.Value)
		}
		if names[info.Name] {
			t.Errorf("counter name %s used twice", info.Name)
		}
		names[info.Name] = true
	}
}

// TestHeaderConstants checks the #defines Go mirrors by hand.
func TestHeaderConstants(t *testing.T) {
	h, err := os.ReadFile("xdpsec.h")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]uint64{
		"XS_NONE":            0xffffffff,
		"XS_SPD_MAX_STEPS":   maps.MaxLookupSteps,
		"XS_CB_POLICY_ID":    0,
		"XS_CB_ACTION":       1,
		"XS_CB_PROBE":        2,
		"XS_PROBE_MAGIC":     0x70726f62,
		"XS_SPD_INLINE_SRC":  2,
		"XS_CFG_FOREIGN_SAS": 1,
		"XS_SPD_SRC_TRIE":    0xff,
	}
	for name, v := range want {
		m := regexp.MustCompile(`#define ` + name + `\s+(0x[0-9a-fA-F]+|\d+)U?`).FindSubmatch(h)
		if m == nil {
			t.Errorf("%s not defined in xdpsec.h", name)
			continue
		}
		got, err := strconv.ParseUint(string(m[1]), 0, 64)
		if err != nil || got != v {
			t.Errorf("%s = %s in xdpsec.h, Go expects %d", name, m[1], v)
		}
	}
}
