package bench

import (
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xdpsec/xdpsec/ike"
	"github.com/xdpsec/xdpsec/internal/daemon"
)

// BenchmarkRAEstablish is the remote-access run of ra.go in one process,
// for profiling (-cpuprofile, -memprofile): the gateway is an engine
// loaded from the same swanctl.conf and credentials through the daemon's
// loader, the client an engine as the generator runs it, over the
// in-memory transport, one client after the other, every IKE SA kept.
// heap-B/client is the gateway's HeapAlloc growth (after a GC) per
// client; the gateway holds b.N users. With XDPSEC_BENCH_RA_HEAP=FILE,
// the heap profile of what the gateway holds then (the client's IKE SAs
// gone) is written to FILE.
//
//	go test -run '^$' -bench RAEstablish -benchtime 5000x ./bench/
func BenchmarkRAEstablish(b *testing.B) {
	heapProfile := os.Getenv("XDPSEC_BENCH_RA_HEAP")
	if heapProfile != "" {
		defer func(r int) { runtime.MemProfileRate = r }(runtime.MemProfileRate)
		runtime.MemProfileRate = 4096
	}
	creds, err := newRACredentials()
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	s := respSettings{conf: raConf(b.N, RAProposal), files: creds.files}
	if err := os.WriteFile(filepath.Join(dir, "swanctl.conf"), []byte(s.swanctlConf()), 0o600); err != nil {
		b.Fatal(err)
	}
	if err := s.writeFiles(dir); err != nil {
		b.Fatal(err)
	}
	l, err := daemon.LoadConfig(filepath.Join(dir, "swanctl.conf"))
	if err != nil {
		b.Fatal(err)
	}
	p := &pipe{hosts: map[netip.Addr]*ike.Engine{}}
	var gwDone, clientDone atomic.Int64
	gw, err := ike.New(ike.Config{Logger: slog.New(childCounter{&gwDone}), Sender: p, Dataplane: &nullDataplane{},
		Credentials: l.Credentials, Pools: l.Pools, CookieThreshold: -1, BlockThreshold: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer gw.Close()
	for _, c := range l.Connections {
		if err := gw.AddConnection(c); err != nil {
			b.Fatal(err)
		}
	}
	g := raGen(b.N, creds.ca)
	client, err := ike.New(ike.Config{Logger: slog.New(childCounter{&clientDone}), Sender: p, Dataplane: &nullDataplane{},
		Credentials: g.credentials})
	if err != nil {
		b.Fatal(err)
	}
	p.hosts[respAddr] = gw
	var heap0, heap1 runtime.MemStats
	defer client.Close()
	runtime.GC()
	runtime.ReadMemStats(&heap0)
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		if err := client.AddConnection(g.connFor(RAProposal, legitAddr(uint32(i)))); err != nil {
			b.Fatal(err)
		}
		p.hosts[legitAddr(uint32(i))] = client
		if _, err := client.Initiate(genConn); err != nil {
			b.Fatal(err)
		}
		p.flush()
	}
	el := time.Since(start)
	b.StopTimer()
	if n := gwDone.Load(); n != int64(b.N) {
		b.Fatalf("%d of %d clients established", n, b.N)
	}
	// The client's IKE SAs go (their deletes are not delivered): what
	// stays is the gateway's.
	client.Close()
	p.queue = nil
	runtime.GC()
	runtime.ReadMemStats(&heap1)
	if heapProfile != "" {
		f, err := os.Create(heapProfile)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		if err := pprof.WriteHeapProfile(f); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/el.Seconds(), "established/s")
	b.ReportMetric(float64(int64(heap1.HeapAlloc)-int64(heap0.HeapAlloc))/float64(b.N), "heap-B/client")
}
