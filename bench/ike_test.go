package bench

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xdpsec/xdpsec/ike"
	"github.com/xdpsec/xdpsec/ike/udptest"
	"github.com/xdpsec/xdpsec/internal/daemon"
	"github.com/xdpsec/xdpsec/internal/ikesocket"
	"github.com/xdpsec/xdpsec/internal/testenv"
)

// IKE benchmarks: two engines in one process, one initiating IKE_SA_INIT +
// IKE_AUTH with one CHILD_SA (PSK, x25519, aes128gcm16) to the other, over
// an in-memory transport or UDP on loopback. The dataplane is a no-op, so
// that memory and time are the engines' own.
//
//	go test -run '^$' -bench IKE -benchtime 2000x ./bench/

// childCounter is a slog handler that counts "CHILD_SA ... established"
// lines (Info and above only, as a daemon would log).
type childCounter struct{ n *atomic.Int64 }

func (h childCounter) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelInfo }
func (h childCounter) Handle(_ context.Context, r slog.Record) error {
	if strings.HasPrefix(r.Message, "CHILD_SA ") && strings.Contains(r.Message, " established with SPIs") {
		h.n.Add(1)
	}
	return nil
}
func (h childCounter) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h childCounter) WithGroup(string) slog.Handler      { return h }

type ikePair struct {
	a, b             *ike.Engine
	aDone, bDone     *atomic.Int64 // CHILD_SAs established
	pipe             *pipe         // memoryPair's
	initiate         func(b *testing.B)
	closeA, closeAll func()
}

func newEngine(b *testing.B, s ike.Sender, local, remote netip.Addr, ids [2]string, nets [2]string, done *atomic.Int64, mod ...func(*ike.Config)) *ike.Engine {
	cfg := ike.Config{
		Logger: slog.New(childCounter{done}), Sender: s, Dataplane: &nullDataplane{},
		Credentials: ike.Credentials{Shared: []ike.SharedKey{{Secret: []byte("this is a shared secret")}}},
	}
	for _, m := range mod {
		m(&cfg)
	}
	e, err := ike.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	if err := e.AddConnection(ikeConn(local, remote, ids[0], ids[1], nets[0], nets[1])); err != nil {
		b.Fatal(err)
	}
	return e
}

// memoryPair runs two engines over an in-memory pipe; modB changes the
// responder's configuration.
func memoryPair(b *testing.B, modB ...func(*ike.Config)) *ikePair {
	p := &pipe{hosts: map[netip.Addr]*ike.Engine{}}
	pr := &ikePair{aDone: &atomic.Int64{}, bDone: &atomic.Int64{}, pipe: p}
	pr.a = newEngine(b, p, ikeA, ikeB, [2]string{"moon.example.org", "sun.example.org"}, [2]string{"10.1.0.0/16", "10.2.0.0/16"}, pr.aDone)
	pr.b = newEngine(b, p, ikeB, ikeA, [2]string{"sun.example.org", "moon.example.org"}, [2]string{"10.2.0.0/16", "10.1.0.0/16"}, pr.bDone, modB...)
	p.hosts[ikeA], p.hosts[ikeB] = pr.a, pr.b
	pr.initiate = func(b *testing.B) {
		if _, err := pr.a.Initiate("gw"); err != nil {
			b.Fatal(err)
		}
		p.flush()
	}
	pr.closeA = pr.a.Close
	pr.closeAll = func() { pr.a.Close(); pr.b.Close() }
	return pr
}

// udpPair runs the engines on IKE sockets in a throwaway network
// namespace; initiate waits for the CHILD_SA on both ends.
func udpPair(b *testing.B) *ikePair {
	ns := testenv.NewNetns(b, "xdpsec-bench") // skips without root
	ns.MustRun(b, "ip", "addr", "add", "127.0.0.2/8", "dev", "lo")
	var sa, sb *ikesocket.Sockets
	if err := ns.Do(func() (err error) {
		if sa, err = ikesocket.Listen(ikesocket.Config{Addrs: []netip.Addr{ikeA}}); err != nil {
			return err
		}
		sb, err = ikesocket.Listen(ikesocket.Config{Addrs: []netip.Addr{ikeB}})
		return err
	}); err != nil {
		b.Fatal(err)
	}
	pr := &ikePair{aDone: &atomic.Int64{}, bDone: &atomic.Int64{}}
	pr.a = newEngine(b, udptest.Sender{Sockets: sa}, ikeA, ikeB, [2]string{"moon.example.org", "sun.example.org"}, [2]string{"10.1.0.0/16", "10.2.0.0/16"}, pr.aDone)
	pr.b = newEngine(b, udptest.Sender{Sockets: sb}, ikeB, ikeA, [2]string{"sun.example.org", "moon.example.org"}, [2]string{"10.2.0.0/16", "10.1.0.0/16"}, pr.bDone)
	udptest.Serve(sa, pr.a)
	udptest.Serve(sb, pr.b)
	pr.initiate = func(b *testing.B) {
		want := pr.aDone.Load() + 1
		if _, err := pr.a.Initiate("gw"); err != nil {
			b.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for pr.aDone.Load() < want || pr.bDone.Load() < want {
			if time.Now().After(deadline) {
				b.Fatal("establishment over UDP timed out")
			}
			time.Sleep(20 * time.Microsecond)
		}
	}
	pr.closeA = pr.a.Close
	pr.closeAll = func() {
		sa.Close()
		sb.Close()
		pr.a.Close()
		pr.b.Close()
	}
	return pr
}

// BenchmarkIKEEstablish measures IKE_SA_INIT + IKE_AUTH with one CHILD_SA,
// one after the other, both ends' work in one process; the IKE SAs stay.
func BenchmarkIKEEstablish(b *testing.B) {
	for _, tc := range []struct {
		name string
		pair func(*testing.B) *ikePair
	}{{"memory", func(b *testing.B) *ikePair { return memoryPair(b) }}, {"udp", udpPair}} {
		b.Run(tc.name, func(b *testing.B) {
			p := tc.pair(b)
			defer p.closeAll()
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				p.initiate(b)
			}
			b.StopTimer()
			if n := p.bDone.Load(); n != int64(b.N) || p.aDone.Load() != int64(b.N) {
				b.Fatalf("%d/%d CHILD_SAs established, want %d", p.aDone.Load(), n, b.N)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "established/s")
		})
	}
}

// BenchmarkIKEHeap measures the heap an established IKE SA (with its
// CHILD_SA) holds: b.N are established and kept, the heap compared after
// a GC. heap-B/SA is the responder's share alone (the initiator's engine
// closed before the last measurement), heap-B/pair both ends'.
func BenchmarkIKEHeap(b *testing.B) {
	p := memoryPair(b)
	defer p.closeAll()
	var m0, m1, m2 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	for range b.N {
		p.initiate(b)
	}
	b.StopTimer()
	if n := len(p.b.IKESAs()); n != b.N {
		b.Fatalf("%d IKE SAs, want %d", n, b.N)
	}
	runtime.GC()
	runtime.ReadMemStats(&m1)
	p.closeA()
	runtime.GC()
	runtime.ReadMemStats(&m2)
	pair := float64(int64(m1.HeapAlloc)-int64(m0.HeapAlloc)) / float64(b.N)
	one := float64(int64(m2.HeapAlloc)-int64(m0.HeapAlloc)) / float64(b.N)
	b.ReportMetric(one, "heap-B/SA")
	b.ReportMetric(pair, "heap-B/pair")
	runtime.KeepAlive(p)
	if testing.Verbose() {
		fmt.Printf("heap: %d SAs, %.0f B per responder IKE_SA, %.0f B per pair\n", b.N, one, pair)
	}
}

// BenchmarkStateCheckpoint measures what one checkpoint of the daemon's
// state costs with 10,000 IKE SAs (each with its CHILD_SA) in the
// responder: the export of every SA under the engine's lock and its JSON
// encoding (the state file's write is left out: it happens only when
// something changed). The daemon spaces checkpoints by this cost
// (internal/daemon: watch).
func BenchmarkStateCheckpoint(b *testing.B) {
	const sas = 10_000
	p := memoryPair(b)
	defer p.closeAll()
	for range sas {
		p.initiate(b)
	}
	if n := len(p.b.IKESAs()); n != sas {
		b.Fatalf("%d IKE SAs, want %d", n, sas)
	}
	b.ResetTimer()
	var size int
	for range b.N {
		st := p.b.Export()
		out, err := json.Marshal(&st)
		st.Zero()
		if err != nil {
			b.Fatal(err)
		}
		size = len(out)
	}
	b.ReportMetric(float64(size)/sas, "state-B/SA")
}

// stateSAs are the IKE SA counts of BenchmarkStateChange: `-state-sas
// 1000,10000,100000` (100,000 takes a few minutes to set up).
var stateSAs = flag.String("state-sas", "1000,10000", "IKE SA counts of BenchmarkStateChange")

// BenchmarkStateChange measures what one SA change costs the responder
// with its state file (journal=on) and without (journal=off), at several
// numbers of IKE SAs: the responder rekeys the CHILD_SA of one IKE SA
// after the other, and the journal appends the IKE SA's new record
// (journal-B/change). The difference between on and off is the state
// file's cost, which must not grow with the SAs; BenchmarkStateCheckpoint
// is what a checkpoint of the whole state costs (what the daemon wrote
// after each change before the journal).
func BenchmarkStateChange(b *testing.B) {
	for _, f := range strings.Split(*stateSAs, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			b.Fatalf("-state-sas: %q", f)
		}
		for _, on := range []bool{false, true} {
			name := fmt.Sprintf("SAs=%d/journal=off", n)
			if on {
				name = fmt.Sprintf("SAs=%d/journal=on", n)
			}
			b.Run(name, func(b *testing.B) {
				ids := &childIDs{m: map[uint32]uint32{}}
				var j *daemon.StateJournal
				mod := func(c *ike.Config) {}
				if on {
					j = daemon.NewStateJournal(filepath.Join(b.TempDir(), "ike-state"))
					defer j.Close()
					mod = func(c *ike.Config) { c.StateSink = j }
				}
				p := memoryPair(b, mod)
				defer p.closeAll()
				p.b.SetObserver(ids)
				if on {
					if err := j.Snapshot(p.b); err != nil {
						b.Fatal(err)
					}
				}
				for range n {
					p.initiate(b)
				}
				list := make([]uint32, 0, n)
				for id := range ids.m {
					list = append(list, id)
				}
				if len(list) != n {
					b.Fatalf("%d IKE SAs with a CHILD_SA, want %d", len(list), n)
				}
				var size int64
				if on {
					size = j.Size()
				}
				cpu0 := processCPU()
				b.ResetTimer()
				for i := range b.N {
					ids.mu.Lock()
					child := ids.m[list[i%n]]
					ids.mu.Unlock()
					if err := p.b.RekeyChildSA(child); err != nil {
						b.Fatal(err)
					}
					p.pipe.flush()
				}
				b.StopTimer()
				// CPU time, not wall time: the appends wait for the disk
				// when the machine writes a lot (dirty page throttling).
				b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/change")
				if on {
					b.ReportMetric(float64(j.Size()-size)/float64(b.N), "journal-B/change")
				}
			})
		}
	}
}
