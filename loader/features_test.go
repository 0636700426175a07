package loader

import (
	"errors"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"

	"github.com/xdpsec/xdpsec/bpf"
	"github.com/xdpsec/xdpsec/internal/testenv"
)

// TestEveryProgramLoads loads each BPF program xdpsec has (the daemon's
// xdp_wan, tc_lan and stash programs, and the benchmark's xdp_floor) alone
// on this kernel, so that one the verifier refuses is named with its own
// log, not hidden behind the first failure of a collection. The VM tests
// run it on each guest kernel (Debian 12's 6.1 and 6.12).
func TestEveryProgramLoads(t *testing.T) {
	testenv.RequireBPF(t)
	t.Logf("kernel %s", kernelRelease())
	for _, obj := range []struct {
		name string
		load func() (*ebpf.CollectionSpec, error)
	}{{"xdpsec", bpf.LoadXdpsec}, {"floor", bpf.LoadFloor}} {
		spec, err := obj.load()
		if err != nil {
			t.Fatal(err)
		}
		missingKfuncs, err := resolveKsymExists(spec)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range missingKfuncs {
			t.Logf("%s: kernel lacks kfunc %s: %s", obj.name, k, weakKfuncs[k].fallback)
		}
		if missing := missingHelpers(spec); len(missing) > 0 {
			t.Errorf("%s: kernel lacks helpers: %s", obj.name, strings.Join(missing, ", "))
		}
		for name := range spec.Programs {
			t.Run(name, func(t *testing.T) {
				one := spec.Copy()
				for other := range one.Programs {
					if other != name {
						delete(one.Programs, other)
					}
				}
				coll, err := ebpf.NewCollectionWithOptions(one, ebpf.CollectionOptions{
					Programs: ebpf.ProgramOptions{LogLevel: ebpf.LogLevelStats}})
				var ve *ebpf.VerifierError
				if errors.As(err, &ve) {
					log := ve.Log
					if len(log) > 40 {
						log = log[len(log)-40:]
					}
					t.Fatalf("the verifier refuses %s: %v\nlast lines of its log:\n%s", name, err, strings.Join(log, "\n"))
				}
				if err != nil {
					t.Fatal(err)
				}
				defer coll.Close()
				// The last line is the verifier's statistics: instructions
				// processed, states.
				stats := strings.TrimSpace(coll.Programs[name].VerifierLog)
				if i := strings.LastIndex(stats, "\n"); i >= 0 {
					stats = stats[i+1:]
				}
				t.Logf("%s: %s", name, stats)
			})
		}
	}
}

// TestMissingHelpers: a helper the kernel has is not reported, one it
// cannot have is, with its program.
func TestMissingHelpers(t *testing.T) {
	testenv.RequireBPF(t)
	ret := asm.Instructions{asm.Mov.Imm(asm.R0, 2), asm.Return()}
	spec := &ebpf.CollectionSpec{Programs: map[string]*ebpf.ProgramSpec{
		"has": {Type: ebpf.XDP, License: "GPL", Instructions: append(asm.Instructions{asm.FnKtimeGetNs.Call()}, ret...)},
		"lacks": {Type: ebpf.XDP, License: "GPL",
			Instructions: append(asm.Instructions{asm.FnKtimeGetNs.Call(), asm.BuiltinFunc(100000).Call()}, ret...)},
	}}
	got := missingHelpers(spec)
	if len(got) != 1 || got[0] != "helper #100000 (lacks)" {
		t.Errorf("missing helpers %q, want [helper #100000 (lacks)]", got)
	}
}

func TestHelperName(t *testing.T) {
	for fn, want := range map[asm.BuiltinFunc]string{
		asm.FnXdpLoadBytes: "bpf_xdp_load_bytes", asm.FnLoop: "bpf_loop", asm.FnJiffies64: "bpf_jiffies64",
		asm.FnL4CsumReplace: "bpf_l4_csum_replace", asm.FnKtimeGetCoarseNs: "bpf_ktime_get_coarse_ns",
	} {
		if got := helperName(fn); got != want {
			t.Errorf("helperName(%v) = %q, want %q", fn, got, want)
		}
	}
}
