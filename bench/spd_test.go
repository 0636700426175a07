package bench

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/xdpsec/xdpsec/internal/testenv"
	"github.com/xdpsec/xdpsec/maps"
)

// BenchmarkSPDInstall: the cost of putting N tunnels' PROTECT policies into
// the SPD, one change per tunnel (maps.SPD.Add, which compiles the whole
// set each time: O(N²)) against one batch (maps.SPD.Apply, what the
// daemon's SPD writer does with the changes that queue up while it
// writes). Reported per policy.
//
//	go test -run '^$' -bench SPDInstall -benchtime 1x ./bench/
func BenchmarkSPDInstall(b *testing.B) {
	testenv.RequireBPF(b)
	for _, n := range []int{100, 1000} {
		for _, mode := range []string{"one-by-one", "batched"} {
			b.Run(fmt.Sprintf("%s/%d", mode, n), func(b *testing.B) {
				ps := make([]maps.Policy, n)
				for i := range ps {
					ps[i] = maps.Policy{Src: netip.MustParsePrefix("10.0.0.0/16"),
						Dst:     netip.PrefixFrom(netip.AddrFrom4([4]byte{172, byte(16 + i>>16), byte(i >> 8), byte(i)}), 32),
						DportHi: 0xffff, Action: maps.ActionProtect, IfID: uint32(i + 1)}
				}
				for range b.N {
					b.StopTimer()
					d, err := LoadDataplane(1024, uint32(n+16))
					skipWithoutBPF(b, err)
					b.StartTimer()
					if mode == "batched" {
						if _, err := d.Maps.SPD.Apply(ps, nil); err != nil {
							b.Fatal(err)
						}
					} else {
						for _, p := range ps {
							if _, err := d.Maps.SPD.Add(p); err != nil {
								b.Fatal(err)
							}
						}
					}
					b.StopTimer()
					d.Close()
					b.StartTimer()
				}
				b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*n), "µs/policy")
			})
		}
	}
}
