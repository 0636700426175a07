package bench

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/xdpsec/xdpsec/internal/testenv"
)

// The dataplane benchmarks call the measurement functions the CLI calls
// (`xdpsec bench xdp|policy`) and report each case as a sub-benchmark:
//
//	go test -run '^$' -bench . -benchtime 1x ./bench/
//
// b.N repeats the whole measurement; each figure is already the fastest
// of Options.Rounds kernel-timed rounds.

func report(b *testing.B, r Result) {
	name := strings.NewReplacer(" ", "_", ",", "", "(", "", ")", "").Replace(r.Case)
	if r.SAs > 0 {
		name += fmt.Sprintf("/sas=%d", r.SAs)
	}
	if r.Policies > 0 {
		name += fmt.Sprintf("/policies=%d", r.Policies)
	}
	b.Run(name, func(b *testing.B) {
		b.ReportMetric(0, "ns/op")
		b.ReportMetric(r.Ns, "ns/pkt")
		b.ReportMetric(r.FloorNs, "floor-ns/pkt")
		b.ReportMetric(r.XFloor(), "x-floor")
		if r.BaseNs > 0 {
			b.ReportMetric(r.Ns/r.BaseNs, "x-smallest-set")
		}
	})
}

func skipWithoutBPF(b *testing.B, err error) {
	b.Helper()
	if errors.Is(err, ErrNoBPF) {
		b.Skipf("skipped: %v", err)
	}
	if err != nil {
		b.Fatal(err)
	}
}

func BenchmarkXDPWan(b *testing.B) {
	testenv.RequireBPF(b)
	for range b.N {
		rs, err := XDPWan(DefaultOptions, nil)
		skipWithoutBPF(b, err)
		for _, r := range rs {
			report(b, r)
		}
	}
}

func BenchmarkTCLan(b *testing.B) {
	testenv.RequireBPF(b)
	for range b.N {
		rs, err := TCLan(DefaultOptions, nil)
		skipWithoutBPF(b, err)
		for _, r := range rs {
			report(b, r)
		}
	}
}

// BenchmarkPolicyLookup compares tc_lan's lookup (above the floor) with
// the kernel's XFRM policy lookup on the same set, default hash
// thresholds.
func BenchmarkPolicyLookup(b *testing.B) {
	testenv.RequireBPF(b)
	for range b.N {
		rs, err := PolicyLookup(DefaultOptions, DefaultPolicyOptions, nil)
		skipWithoutBPF(b, err)
		for _, r := range rs {
			b.Run(fmt.Sprintf("policies=%d", r.Policies), func(b *testing.B) {
				b.ReportMetric(0, "ns/op")
				b.ReportMetric(r.KernelLookupNs(), "kernel-ns/pkt")
				b.ReportMetric(r.TCLookupNs(), "tc_lan-ns/pkt")
			})
		}
		if n, ok := Crossover(rs); ok {
			b.Logf("tc_lan is cheaper from %d policies", n)
		} else {
			b.Log("tc_lan is not cheaper at any count measured")
		}
	}
}
