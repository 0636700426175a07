package bench

import (
	"log/slog"
	"net/netip"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/xdpsec/xdpsec/ike"
	"github.com/xdpsec/xdpsec/ike/transform"
)

// BenchmarkPQEstablish compares establishments (IKE_SA_INIT, the
// IKE_INTERMEDIATE exchanges of RFC 9370 if any, IKE_AUTH with one
// CHILD_SA) with a classical proposal and with hybrid ones, both ends in
// one process over the in-memory pipe: established/s and the CPU time
// of both ends per IKE SA.
//
//	go test -run '^$' -bench PQEstablish -benchtime 2000x ./bench/
func BenchmarkPQEstablish(b *testing.B) {
	for _, prop := range []string{
		"aes128gcm16-prfsha256-x25519",
		"aes128gcm16-prfsha256-x25519-ke1_mlkem768",
		"aes128gcm16-prfsha256-x25519-ke1_ecp384",
		"aes128gcm16-prfsha256-mlkem768",
	} {
		b.Run(prop, func(b *testing.B) {
			ps := transform.MustParseProposals(transform.ProtoIKE, prop)
			p := &pipe{hosts: map[netip.Addr]*ike.Engine{}}
			var aDone, bDone atomic.Int64
			engine := func(local, remote netip.Addr, ids, nets [2]string, done *atomic.Int64) *ike.Engine {
				e, err := ike.New(ike.Config{
					Logger: slog.New(childCounter{done}), Sender: p, Dataplane: &nullDataplane{},
					Credentials: ike.Credentials{Shared: []ike.SharedKey{{Secret: []byte("this is a shared secret")}}},
				})
				if err != nil {
					b.Fatal(err)
				}
				c := ikeConn(local, remote, ids[0], ids[1], nets[0], nets[1])
				c.Proposals = ps
				if err := e.AddConnection(c); err != nil {
					b.Fatal(err)
				}
				return e
			}
			ea := engine(ikeA, ikeB, [2]string{"moon.example.org", "sun.example.org"}, [2]string{"10.1.0.0/16", "10.2.0.0/16"}, &aDone)
			eb := engine(ikeB, ikeA, [2]string{"sun.example.org", "moon.example.org"}, [2]string{"10.2.0.0/16", "10.1.0.0/16"}, &bDone)
			defer ea.Close()
			defer eb.Close()
			p.hosts[ikeA], p.hosts[ikeB] = ea, eb
			cpu0 := processCPU()
			b.ResetTimer()
			for range b.N {
				if _, err := ea.Initiate("gw"); err != nil {
					b.Fatal(err)
				}
				p.flush()
			}
			b.StopTimer()
			if aDone.Load() != int64(b.N) || bDone.Load() != int64(b.N) {
				b.Fatalf("%d/%d CHILD_SAs established, want %d", aDone.Load(), bDone.Load(), b.N)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "established/s")
			b.ReportMetric(float64((processCPU()-cpu0).Microseconds())/float64(b.N), "cpu-µs/SA")
			runtime.GC()
		})
	}
}
