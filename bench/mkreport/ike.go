package main

import (
	"bytes"
	"cmp"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/xdpsec/xdpsec/bench"
)

// The IKE sections of bench/README.md run from ikeBegin up to raBegin
// (the remote-access section), or to the end.
const ikeBegin = "## IKE: establishments per second and heap per IKE SA\n"

// ikeReport is what the responder comparisons and the flood measured.
type ikeReport struct {
	ran       bool
	sas       int
	raClients int // remote-access clients per responder (ra.go)
	rekeySAs  int // SAs of the rekey runs (rekey.go), 0 if not run
	pqSAs     int // SAs per run of the post-quantum comparison (pq.go), 0 if not run
	results   []bench.IKEResult
	loads     []bench.LoadPoint
	flood     []bench.FloodResult
	capacity  float64
	// largeSAs is the count of the large run (0: not run), large its
	// rounds' results (ours with the state file, charon with
	// load-tester), largeRounds of them.
	largeSAs  int
	large     [][]bench.IKEResult
	largeTook time.Duration
	// daemon is pprof's view of our responder daemon (state file on)
	// under the load generator, from a run of its own.
	daemon   daemonProfile
	took     time.Duration
	charon   string // Debian's charon package
	charonLT string // the Debian source version charon-lt.sh built
	load     string // the machine's load average before the runs
	skipped  []string
}

// available keeps the kinds that can run here, noting the others.
func (r *ikeReport) available(kinds []bench.ResponderKind) []bench.ResponderKind {
	var out []bench.ResponderKind
	for _, k := range kinds {
		if err := bench.RequireIKE([]bench.ResponderKind{k}); err != nil {
			log.Printf("%s left out: %v", bench.ResponderLabel(k), err)
			r.skipped = append(r.skipped, fmt.Sprintf("%s: %v", bench.ResponderLabel(k), err))
			continue
		}
		out = append(out, k)
	}
	return out
}

func runIKE(bin string, sas, largeSAs int) (ikeReport, error) {
	r := ikeReport{ran: true, sas: sas, largeSAs: largeSAs, charon: bench.CharonVersion(), charonLT: bench.CharonLTVersion(), load: loadAvg()}
	start := time.Now()
	o := bench.DefaultIKEOptions
	o.Bin, o.SAs = bin, sas
	o.Responders = r.available(o.Responders)
	progress := func(s string) { log.Print(s) }
	var err error
	if r.results, r.loads, err = bench.IKE(o, progress); err != nil {
		return r, err
	}
	if largeSAs > 0 {
		lo := bench.IKEOptions{Bin: bin, SAs: largeSAs, Window: o.Window, Proposals: bench.BenchProposals[:1],
			Responders: r.available([]bench.ResponderKind{bench.OursState, bench.CharonLT})}
		t := time.Now()
		for range largeRounds {
			rs, _, err := bench.IKE(lo, progress)
			if err != nil {
				return r, err
			}
			r.large = append(r.large, rs)
		}
		r.largeTook = time.Since(t)
	}
	if r.daemon, err = profileDaemon(bin, sas, progress); err != nil {
		log.Printf("profiling the daemon: %v", err)
		r.daemon = daemonProfile{err: err}
	}
	fo := bench.DefaultFloodOptions
	fo.Bin = bin
	fo.Responders = r.available(fo.Responders)
	for _, x := range r.results {
		if x.Responder == bench.Ours && x.Proposal == fo.Proposal {
			fo.Capacity = x.Rate()
		}
	}
	if r.flood, r.capacity, err = bench.Flood(fo, progress); err != nil {
		return r, err
	}
	r.took = time.Since(start)
	return r, nil
}

// daemonProfile is pprof's top of our responder daemon (the state file
// on) over a run of its own: CPU (flat) and the heap in use when it was
// told to stop, with every SA still up.
type daemonProfile struct {
	sas       int
	result    bench.IKEResult
	cpu, heap string
	cpuAll    string // every row, for the shares by kind
	err       error
}

// profileDaemon runs our responder with the state file on, its CPU and
// heap profiled (the daemon's hidden --cpuprofile and --memprofile,
// which bench passes when XDPSEC_BENCH_CPUPROFILE names a directory),
// apart from the measured runs: profiling costs a little CPU.
func profileDaemon(bin string, sas int, progress func(string)) (daemonProfile, error) {
	dp := daemonProfile{sas: sas}
	dir, err := os.MkdirTemp("", "xdpsec-prof-")
	if err != nil {
		return dp, err
	}
	defer os.RemoveAll(dir)
	os.Setenv("XDPSEC_BENCH_CPUPROFILE", dir)
	defer os.Unsetenv("XDPSEC_BENCH_CPUPROFILE")
	o := bench.IKEOptions{Bin: bin, SAs: sas, Window: bench.DefaultIKEOptions.Window, Proposals: bench.BenchProposals[:1],
		Responders: []bench.ResponderKind{bench.OursState}}
	rs, _, err := bench.IKE(o, progress)
	if err != nil {
		return dp, err
	}
	if len(rs) == 1 {
		dp.result = rs[0]
	}
	profs, _ := filepath.Glob(filepath.Join(dir, "*.prof"))
	heaps, _ := filepath.Glob(filepath.Join(dir, "*.heap"))
	if len(profs) != 1 || len(heaps) != 1 {
		return dp, fmt.Errorf("%d CPU and %d heap profiles written, want one each", len(profs), len(heaps))
	}
	pprof := func(args ...string) (string, error) {
		out, err := exec.Command("go", append([]string{"tool", "pprof"}, args...)...).Output()
		return string(out), err
	}
	if dp.cpu, err = pprof("-top", "-nodecount=30", bin, profs[0]); err != nil {
		return dp, err
	}
	if dp.cpuAll, err = pprof("-top", "-nodecount=100000", bin, profs[0]); err != nil {
		return dp, err
	}
	if dp.heap, err = pprof("-top", "-nodecount=20", "-sample_index=inuse_space", bin, heaps[0]); err != nil {
		return dp, err
	}
	return dp, nil
}

// isX25519 says whether a profile row is X25519's arithmetic: the shared
// secret's ladder (CIRCL, ike/transform's x25519Ladder), the public
// value's fixed-base multiplication (edwards25519), or crypto/ecdh's.
func isX25519(n string) bool {
	return strings.Contains(n, "edwards25519") || strings.Contains(n, "ecdh") ||
		strings.Contains(n, "circl/dh/x25519") || strings.Contains(n, "circl/math/fp25519")
}

// cpuShares sums the profile's own time by kind of work.
func (dp daemonProfile) cpuShares() []struct {
	kind  string
	share float64
} {
	kinds := []struct {
		kind  string
		match func(string) bool
	}{
		{"key exchange (X25519: CIRCL's ladder, edwards25519's fixed base)", isX25519},
		{"other cryptography (SHA-256, HMAC, AES-GCM)", func(n string) bool {
			return strings.HasPrefix(n, "sha256") || strings.HasPrefix(n, "hmac") || strings.HasPrefix(n, "aes") || strings.HasPrefix(n, "crypto/")
		}},
		{"system calls (sendmsg, recvmsg, the state file's writes)", func(n string) bool {
			return strings.Contains(n, "syscall")
		}},
		{"Go runtime (allocation, garbage collection, scheduling)", func(n string) bool {
			return strings.HasPrefix(n, "runtime.") || strings.HasPrefix(n, "internal/runtime") || strings.HasPrefix(n, "aeshash")
		}},
		{"JSON encoding's own code (the state file's records; what it allocates counts as the runtime's)", func(n string) bool { return strings.HasPrefix(n, "encoding/json") }},
		{"our code and the rest", func(string) bool { return true }},
	}
	out := make([]struct {
		kind  string
		share float64
	}, len(kinds))
	for i, k := range kinds {
		out[i].kind = k.kind
	}
	for _, r := range pprofRows(dp.cpuAll) {
		for i, k := range kinds {
			if k.match(r.name) {
				out[i].share += r.flat
				break
			}
		}
	}
	return out
}

// writeDaemonProfile writes where the responder daemon's CPU and memory go.
func writeDaemonProfile(b *bytes.Buffer, dp daemonProfile) {
	p := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	p("### Where our responder daemon's CPU and memory go (state file on)\n\n")
	if dp.cpu == "" {
		p("Not profiled this time")
		if dp.err != nil {
			p(": %v", dp.err)
		}
		p(".\n\n")
		return
	}
	r := dp.result
	p("A run of its own, as the table's \"state file\" rows (%s IKE SAs, `%s`, the same\n", fmtInt(dp.sas), bench.BenchProposals[0].IKE)
	p("generator), with the daemon's CPU profiled over the run and its heap when told to stop,\n")
	p("every SA still up (`XDPSEC_BENCH_CPUPROFILE=DIR` makes package bench pass the daemon's\n")
	p("hidden `--cpuprofile` and `--memprofile`): %.2f CPU-ms per IKE SA, %.1f MiB per 10k SAs in this run.\n\n", r.CPUPerSA(), r.RSSPer10k())
	p("| own CPU time in | share |\n|---|---:|\n")
	for _, s := range dp.cpuShares() {
		p("| %s | %.0f%% |\n", s.kind, s.share)
	}
	p("\n")
	p("CPU (`go tool pprof -top`, first rows):\n\n```\n%s```\n\n", pprofTop(dp.cpu, 20))
	p("Heap in use with every SA up (`go tool pprof -sample_index=inuse_space -top`; sampled, so\n")
	p("small entries are approximate):\n\n```\n%s```\n\n", pprofTop(dp.heap, 16))
}

// profReport is pprof's top of BenchmarkIKEEstablish/memory: CPU, bytes
// and objects allocated, and the benchmark's own line.
type profReport struct {
	cpu, space, objects, bench string
}

// readProf reads what `make bench` left in dir: cpu.txt, alloc_space.txt,
// alloc_objects.txt and bench.txt.
func readProf(dir string) (profReport, error) {
	var pr profReport
	if dir == "" {
		return pr, nil
	}
	for name, dst := range map[string]*string{"cpu.txt": &pr.cpu, "alloc_space.txt": &pr.space, "alloc_objects.txt": &pr.objects, "bench.txt": &pr.bench} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return pr, fmt.Errorf("profile: %w", err)
		}
		*dst = string(b)
	}
	return pr, nil
}

// pprofTop keeps pprof -top's header lines and the first n rows.
func pprofTop(s string, n int) string {
	var out []string
	rows := -1
	for line := range strings.SplitSeq(strings.TrimRight(s, "\n"), "\n") {
		if strings.HasPrefix(line, "File:") || strings.HasPrefix(line, "Build ID:") || strings.HasPrefix(line, "Type:") || strings.HasPrefix(line, "Time:") {
			continue
		}
		if strings.Contains(line, "flat%") {
			rows = 0
		} else if rows >= 0 {
			rows++
		}
		if rows > n {
			break
		}
		out = append(out, line)
	}
	return strings.Join(out, "\n") + "\n"
}

// writeIKESections writes the IKE sections: the in-process benchmarks
// (go test output as is), the profile, the responder comparisons, the
// large run and the flood.
func writeIKESections(b *bytes.Buffer, m bench.Machine, ike []byte, prof profReport, ir ikeReport, took time.Duration) {
	p := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	p("%s\n", ikeBegin)
	p("Two of our engines in one process (see `bench/ike_test.go`): one initiates\n")
	p("IKE_SA_INIT + IKE_AUTH with one CHILD_SA (PSK, `aes128gcm16-prfsha256-x25519`,\n")
	p("ESP `aes128gcm16`) to the other, one after the other, keeping every IKE SA;\n")
	p("the dataplane is a no-op. `memory` delivers datagrams in-process, `udp` runs\n")
	p("each engine on its own IKE sockets in a throwaway namespace. Heap: `HeapAlloc`\n")
	p("after a GC before and after the SAs are established (`heap-B/pair` both ends,\n")
	p("`heap-B/SA` the responder alone). Wall-clock rates: they vary with the other load\n")
	p("on the machine. The comparison with strongSwan's charon is in the next section.\n\n")
	if len(ike) > 0 {
		p("```\ngo test -run '^$' -bench IKE -benchtime 2000x -count 3 ./bench/\n\n%s```\n\n", ike)
	} else {
		p("Not run this time.\n\n")
	}
	writeProfile(b, prof)
	writeIKE(b, m, ir, took)
}

// writeProfile writes where an establishment's CPU and allocations go.
func writeProfile(b *bytes.Buffer, prof profReport) {
	p := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	p("### Where an establishment's CPU and memory go\n\n")
	if prof.cpu == "" {
		p("Not profiled this time.\n\n")
		return
	}
	p("`BenchmarkIKEEstablish/memory` profiled (both ends in one process: the\n")
	p("initiator's work is in the figures too, about as much as the responder's):\n\n")
	p("```\ngo test -run '^$' -bench 'IKEEstablish/memory' -benchtime 5000x -benchmem -cpuprofile cpu.prof -memprofile mem.prof ./bench/\n\n%s```\n\n", prof.bench)
	p("%s\n\n", profileNotes(prof))
	p("CPU (`go tool pprof -top cpu.prof`, first rows):\n\n```\n%s```\n\n", pprofTop(prof.cpu, 25))
	p("Bytes allocated (`go tool pprof -sample_index=alloc_space -top mem.prof`):\n\n```\n%s```\n\n", pprofTop(prof.space, 20))
	p("Objects allocated (`go tool pprof -sample_index=alloc_objects -top mem.prof`):\n\n```\n%s```\n\n", pprofTop(prof.objects, 20))
}

// pprofRow is one row of pprof -top: flat and cumulative percentages.
type pprofRow struct {
	name      string
	flat, cum float64
}

func pprofRows(s string) []pprofRow {
	var rows []pprofRow
	for line := range strings.SplitSeq(s, "\n") {
		f := strings.Fields(line)
		if len(f) < 6 || !strings.HasSuffix(f[1], "%") || !strings.HasSuffix(f[4], "%") {
			continue
		}
		var r pprofRow
		if _, err := fmt.Sscanf(f[1]+" "+f[4], "%f%% %f%%", &r.flat, &r.cum); err != nil {
			continue
		}
		r.name = strings.Join(f[5:], " ")
		// Short names: no module or FIPS module path, no generic shapes.
		r.name = strings.TrimPrefix(r.name, "github.com/xdpsec/xdpsec/")
		r.name = strings.TrimPrefix(r.name, "crypto/internal/fips140/")
		if i := strings.Index(r.name, "[go.shape"); i >= 0 {
			r.name = r.name[:i]
		}
		r.name = strings.TrimSuffix(r.name, " (inline)")
		rows = append(rows, r)
	}
	return rows
}

// profileNotes says in words what the profile's top rows hold.
func profileNotes(prof profReport) string {
	cpu, space, objs := pprofRows(prof.cpu), pprofRows(prof.space), pprofRows(prof.objects)
	sum := func(rs []pprofRow, match func(string) bool) float64 {
		t := 0.0
		for _, r := range rs {
			if match(r.name) {
				t += r.flat
			}
		}
		return t
	}
	cum := func(rs []pprofRow, name string) float64 {
		for _, r := range rs {
			if r.name == name {
				return r.cum
			}
		}
		return 0
	}
	top := func(rs []pprofRow, n int) string {
		var out []string
		for _, r := range rs[:min(n, len(rs))] {
			out = append(out, fmt.Sprintf("`%s` %.0f%%", r.name, r.flat))
		}
		return strings.Join(out, ", ")
	}
	var b strings.Builder
	fmt.Fprintf(&b, "In words: CPU, first rows by own time: %s. Among the rows shown, the key exchange (X25519: CIRCL's ladder, `edwards25519`'s fixed base) takes %.0f%% and the Go runtime (allocation, GC) %.0f%%. ",
		top(cpu, 4), sum(cpu, isX25519), sum(cpu, func(n string) bool { return strings.HasPrefix(n, "runtime.") }))
	fmt.Fprintf(&b, "Bytes allocated: %s. Objects allocated: %s (`fmt.Sprintf` builds log lines and map keys as strings; HMAC and SHA-256 states are allocated per use).", top(space, 3), top(objs, 4))
	if d := cum(cpu, "ike.(*Engine).duplicatesOf"); d > 0 {
		fmt.Fprintf(&b, " `(*Engine).duplicatesOf` (ike/unique.go) holds %.0f%% of the CPU and %.0f%% of the bytes: every establishment asks whether an IKE SA with the same peer exists (`hasContact` for INITIAL_CONTACT, the unique check), and it collects and sorts all IKE SAs with that peer; the benchmark's IKE SAs all share one peer, so this grows with the SAs kept (O(n log n) per establishment). In the responder runs below each IKE SA has a peer of its own and it costs little, but a peer with many IKE SAs (`unique = no`) pays it there too.",
			d, cum(space, "ike.(*Engine).duplicatesOf"))
	}
	return b.String()
}

func writeIKE(b *bytes.Buffer, m bench.Machine, ir ikeReport, took time.Duration) {
	p := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	p("## IKE: our responder against charon's\n\n")
	if !ir.ran {
		p("Not run this time (`-xdpsec` not given).\n")
		return
	}
	lt := ir.charonLT
	if lt == "" {
		lt = "not built"
	}
	p("Measured %s on %s, in %s", time.Now().UTC().Format("2006-01-02 15:04 MST"), m, ir.took.Round(time.Second))
	if ir.load != "" {
		// Rates and CPU per SA move with the other load on a shared
		// machine; the ratios to charon in the same run less so.
		p("; the machine is shared, its load average before the runs %s", ir.load)
	}
	p(" (`make bench-ike` rewrites the IKE sections alone). charon with load-tester: built by `bench/charon-lt.sh`\n")
	p("(`make charon-lt`, cached in `.cache/charon-lt/`) from Debian's strongswan source `%s`;\n", lt)
	p("charon with kernel-libipsec: Debian's package (`%s`).\n\n", ir.charon)
	for _, s := range ir.skipped {
		p("Left out: %s.\n\n", s)
	}
	p("All responders run in a network namespace of their own, loaded with the same\n")
	p("swanctl.conf (PSK, any remote address, one CHILD_SA from %s to a /32 of the\n", "10.2.0.0/16")
	p("peer's). Ours: `xdpsec daemon --dataplane=dry-run --log any=0` (installs nothing),\n")
	p("with %s;\n", bench.OursSettings)
	p("\"state file\" rows run it with `--state FILE` (the saved state on: a journal\n")
	p("appended as SAs change), the others with `--state -`. charon (load-tester,\n")
	p("fake_kernel): charon with `load-tester { enable = yes; fake_kernel = yes;\n")
	p("initiators = 0 }`, a passive responder whose kernel interface is load-tester's\n")
	p("fake (it installs nothing either; the run checks that charon holds no\n")
	p("NETLINK_XFRM socket), the plugins random, nonce, openssl, kdf, load-tester,\n")
	p("kernel-netlink (for the kernel-net interface load-tester depends on),\n")
	p("socket-default and vici; load-tester's own credential set adds a CERTREQ to its\n")
	p("IKE_SA_INIT responses. charon (kernel-libipsec): Debian's charon with ESP in\n")
	p("userspace (the host kernel has none). Both charons with\n")
	p("%s. The initiators are ours for every responder\n", bench.CharonSettings)
	p("(package `bench`, `loadgen.go`; chosen over charon's load-tester as initiator so\n")
	p("that every responder, ours and both charons, faces the very same initiator\n")
	p("and its cost is measured apart, in the last column): one engine per CPU in this\n")
	p("process, with a null dataplane, each IKE SA with one CHILD_SA from a source\n")
	p("address of its own out of 10.200.0.0/14 (one AnyIP route in the generator's\n")
	p("namespace), which the responder reaches through a next hop on a veth.\n")
	p("Initiators retransmit after 1 s, three times. Responder CPU is utime + stime of\n")
	p("all its threads from `/proc/PID/stat` over the run, memory VmRSS before and\n")
	p("VmHWM after from `/proc/PID/status`; \"MiB per 10k SAs\" is (peak − idle) scaled\n")
	p("to 10,000 IKE SAs. Cookies are off for this part. Generator and responder share\n")
	p("the machine's %d CPUs: the generator's own CPU per SA is in the last column.\n\n", m.CPUs)
	p("Our daemon runs with its default `--gc-percent 50` (GOGC; Go's own default is\n")
	p("100): between collections its heap may grow to 1.5 times what is live instead\n")
	p("of twice, and the peak RSS follows the heap's peak. Measured A/B on 2026-12-07\n")
	p("(10,000 IKE SAs, state file on, three interleaved rounds each, same machine\n")
	p("and generator): before the memory work of that day 84-88 MiB per 10k SAs and\n")
	p("0.35-0.39 CPU-ms per SA; after it, with GOGC 100, 70-72 MiB and 0.31-0.33 ms;\n")
	p("with the default of 50, 61-65 MiB and 0.33-0.35 ms. In runs with charon\n")
	p("(load-tester, fake_kernel) alongside: 59-66 against 137 MiB (0.43-0.48x),\n")
	p("where the day's first build had 87 (0.64x). `GOGC=100` in the daemon's\n")
	p("environment (or `--gc-percent 100`) gives Go's default back.\n\n")

	p("### Against charon with load-tester (fake_kernel): the like-for-like baseline\n\n")
	p("%s IKE SAs per run, at most %d in flight, established as fast as the responder\n", fmtInt(ir.sas), bench.DefaultIKEOptions.Window)
	p("takes them. \"x charon\" divides by charon's (load-tester, fake_kernel) figure with\n")
	p("the same proposal in this run; \"first tenth\" and \"last tenth\" are the rates over\n")
	p("the first and the last 10%% of the SAs, which show whether a responder slows down\n")
	p("as its SAs accumulate.\n\n")
	bench.WriteIKETable(b, ir.results, bench.CharonLT, bench.Ours, bench.OursState, bench.CharonLT)
	p("\n%s\n\n", verdict(ir.results, bench.CharonLT))

	if ir.largeSAs > 0 {
		p("### %s IKE SAs on one responder\n\n", fmtInt(ir.largeSAs))
		p("Ours with the state file on and charon (load-tester, fake_kernel), each with\n")
		p("%s IKE SAs (one CHILD_SA each, `%s`), in the same run as the tables around\n", fmtInt(ir.largeSAs), bench.BenchProposals[0].IKE)
		p("(`make bench BENCH_LARGE_SAS=%d`, %s for this part). charon runs at the same\n", ir.largeSAs, ir.largeTook.Round(time.Second))
		p("count: its %s SAs fit this machine's memory many times over.\n\n", fmtInt(ir.largeSAs))
		p("The run is made %d times, ours then charon each time. On this shared machine the\n", len(ir.large))
		p("rate over one tenth of a run swings by a fifth from one run to the next, so a\n")
		p("single run's last tenth against its first says little: the table is the round\n")
		p("whose last / first ratio for ours is the median, and the line under it lists\n")
		p("every round.\n\n")
		med := medianRound(ir.large)
		bench.WriteIKETable(b, ir.large[med], bench.CharonLT, bench.OursState, bench.CharonLT)
		p("\n%s\n\n", largeRoundsLine(ir.large, med))
		p("%s\n\n", largeVerdict(ir.large[med]))
		for _, r := range ir.large[med] {
			if r.Responder == bench.OursState {
				p("Our state file after the run: %.1f MiB (%.0f bytes per IKE SA).\n\n", float64(r.StateBytes)/(1<<20), float64(r.StateBytes)/float64(r.SAs))
			}
		}
	}
	writeDaemonProfile(b, ir.daemon)

	p("### Against charon with kernel-libipsec (secondary: charon does userspace ESP work ours does not)\n\n")
	p("The same runs, our responder without the state file against Debian's charon\n")
	p("with kernel-libipsec. This flatters us: charon's rate falls as SAs accumulate\n")
	p("(compare its first and last tenth); `perf record` on charon during a 10,000-SA\n")
	p("run on a machine of this kind (by hand, not part of `make bench`) put about 65%%\n")
	p("of its samples in `libipsec` and the `kernel-libipsec` plugin (userspace ESP's SA\n")
	p("and policy managers, which keep lists, and the route it installs per CHILD_SA),\n")
	p("work our dry-run does not do. The table above is the fair comparison.\n\n")
	bench.WriteIKETable(b, ir.results, bench.Charon, bench.Ours, bench.Charon)
	p("\n")

	p("### Established per second against offered load (ours against charon with kernel-libipsec)\n\n")
	p("The generator initiates at a fixed rate for %s per point, proposal `%s`, each\n", bench.DefaultIKEOptions.LoadDuration, bench.BenchProposals[0].IKE)
	p("point against a responder started for it (in a network of its own, with no SAs\n")
	p("from earlier runs); \"established/s\" counts CHILD_SAs established within the\n")
	p("window. Where the generator could not initiate as fast as asked, \"initiated/s\"\n")
	p("says so. charon here is the kernel-libipsec one.\n\n")
	p("![established vs offered load](ike_load.svg)\n\n")
	bench.WriteLoadTable(b, ir.loads)
	p("\n")
	writeFlood(b, ir)
	p("\n")
	p("With %s SAs per run (and %s in the large run), the IKE part of `make bench`\n", fmtInt(ir.sas), fmtInt(ir.largeSAs))
	p("(`make bench-ike`) takes about %s on this machine; `BENCH_IKE_SAS=2000\n", took.Round(time.Minute))
	p("BENCH_LARGE_SAS=0` is quicker.\n")
}

func writeFlood(b *bytes.Buffer, ir ikeReport) {
	p := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	p("### Under an IKE_SA_INIT flood\n\n")
	fo := bench.DefaultFloodOptions
	p("Proposal `%s`; \"capacity\" is our responder's rate above, %.0f IKE SAs/s, and\n", fo.Proposal.IKE, ir.capacity)
	p("sets the loads for both responders, so that each faces the same attack and the\n")
	p("same legitimate demand. charon here is Debian's (kernel-libipsec). The generator\n")
	p("sends copies of a real IKE_SA_INIT request\n")
	p("(new SPI each: the responder does the same Diffie-Hellman work for it) from %d\n", fo.Sources)
	p("spoofed addresses at %.0fx the capacity, while legitimate initiators offer %.0f%% of\n", fo.Factor, fo.Legit*100)
	p("the capacity for %s, each from an address of its own; the wide flood comes from\n", fo.Duration)
	p("%s spoofed addresses instead, each under the policer's rate. Each row starts a\n", fmtInt(fo.WideSources))
	p("fresh responder. Cookies: `cookie_threshold` %d on both, charon with its default\n", fo.CookieThreshold)
	p("`cookie_threshold_ip`; without cookies, charon's DoS protection is off as a whole\n")
	p("(`dos_protection = no`). block_threshold: the per-source limit of half-open IKE\n")
	p("SAs (charon's, and ours with `--block-threshold`), at the default of %d in the\n", fo.CharonBlockThreshold)
	p("rows that name it (in the other cookie rows 1000 on both, which never blocks; none\n")
	p("without cookies).\n")
	p("XDP policer: `xdpsec load --wan` on the responder's veth with `--ike-rate %d --ike-burst %d`\n", fo.PolicerRate, fo.PolicerBurst)
	p("(per source address: a legitimate peer sends one or two IKE_SA_INITs); it needs\n")
	p("nothing from the daemon behind it, so it is measured in front of charon too. Each\n")
	p("responder's first row, without a flood, is its reference (\"x no flood\").\n")
	p("The policer only helps against sources that each send more than their rate: a\n")
	p("flood spread so thin over spoofed addresses that each stays under it is the\n")
	p("cookies' job.\n\n")
	bench.WriteFloodTable(b, ir.flood, ir.capacity)
}

// against prints a ratio checked against a target with two decimals, or
// as many more (up to six) as it takes for the printed figure to meet the
// target exactly when the ratio does: 0.7987 against "at least 0.8" is
// 0.799, not 0.80.
func against(x float64, meets func(float64) bool) string {
	for prec := 2; ; prec++ {
		f := strconv.FormatFloat(x, 'f', prec, 64)
		if v, err := strconv.ParseFloat(f, 64); prec == 6 || err == nil && meets(v) == meets(x) {
			return f
		}
	}
}

func met(ok bool) string {
	if ok {
		return "met"
	}
	return "not met"
}

// verdict compares ours (without and with the state file) with ref.
func verdict(rs []bench.IKEResult, ref bench.ResponderKind) string {
	refs := map[string]bench.IKEResult{}
	for _, r := range rs {
		if r.Responder == ref {
			refs[r.Proposal.IKE] = r
		}
	}
	var out []string
	for _, r := range rs {
		c, ok := refs[r.Proposal.IKE]
		if r.Responder.IsCharon() || !ok || c.CPUPerSA() == 0 || c.RSSPer10k() == 0 {
			continue
		}
		out = append(out, fmt.Sprintf("%s, `%s`: rate %.2fx, CPU per SA %.2fx, memory per SA %.2fx charon's.",
			bench.ResponderLabel(r.Responder), r.Proposal.IKE, r.Rate()/c.Rate(), r.CPUPerSA()/c.CPUPerSA(), r.RSSPer10k()/c.RSSPer10k()))
	}
	if len(out) == 0 {
		return "Not compared: charon did not run."
	}
	return "In words: " + strings.Join(out, " ")
}

// largeRounds is how many times the large run is made.
const largeRounds = 3

// flatness is a run's rate over its last tenth against its first.
func flatness(r *bench.IKEResult) float64 {
	if r.TenthRate(0) == 0 {
		return 0
	}
	return r.TenthRate(9) / r.TenthRate(0)
}

// largeOf picks the results of kind k from a round, nil if it did not run.
func largeOf(rs []bench.IKEResult, k bench.ResponderKind) *bench.IKEResult {
	for i := range rs {
		if rs[i].Responder == k {
			return &rs[i]
		}
	}
	return nil
}

// medianRound is the index of the round whose flatness for ours is the
// median (the lower of the two middle ones for an even count).
func medianRound(rounds [][]bench.IKEResult) int {
	idx := make([]int, len(rounds))
	for i := range idx {
		idx[i] = i
	}
	f := func(i int) float64 {
		if o := largeOf(rounds[i], bench.OursState); o != nil {
			return flatness(o)
		}
		return 0
	}
	slices.SortStableFunc(idx, func(a, b int) int { return cmp.Compare(f(a), f(b)) })
	return idx[(len(idx)-1)/2]
}

// largeRoundsLine lists every round's last / first, CPU per SA and memory
// per 10k SAs, ours and charon's.
func largeRoundsLine(rounds [][]bench.IKEResult, med int) string {
	var parts []string
	for i, rs := range rounds {
		var cs []string
		for _, k := range []bench.ResponderKind{bench.OursState, bench.CharonLT} {
			if r := largeOf(rs, k); r != nil {
				cs = append(cs, fmt.Sprintf("%s %.2f, %.2f ms, %.1f MiB", shortLabel(k), flatness(r), r.CPUPerSA(), r.RSSPer10k()))
			}
		}
		tag := ""
		if i == med {
			tag = " (the table)"
		}
		parts = append(parts, fmt.Sprintf("round %d%s: %s", i+1, tag, strings.Join(cs, "; ")))
	}
	return "Every round (last / first tenth, CPU-ms per IKE SA, MiB per 10k SAs): " + strings.Join(parts, " · ") + "."
}

// shortLabel names a responder of the large run in a line of figures.
func shortLabel(k bench.ResponderKind) string {
	if k == bench.CharonLT {
		return "charon"
	}
	return "ours"
}

// largeVerdict checks issue 19's targets on the large run.
func largeVerdict(rs []bench.IKEResult) string {
	var ours, c *bench.IKEResult
	for i := range rs {
		switch rs[i].Responder {
		case bench.OursState:
			ours = &rs[i]
		case bench.CharonLT:
			c = &rs[i]
		}
	}
	if ours == nil {
		return "Ours did not run."
	}
	flat := ours.TenthRate(9) / ours.TenthRate(0)
	flatOK := func(x float64) bool { return x >= 0.8 }
	s := fmt.Sprintf("Targets (issue 19): last tenth's rate at least 0.8x the first's: %sx (%s)", against(flat, flatOK), met(flatOK(flat)))
	if c == nil || c.CPUPerSA() == 0 || c.RSSPer10k() == 0 {
		return s + "; charon did not run, so CPU and memory are not compared."
	}
	cpu, mem := ours.CPUPerSA()/c.CPUPerSA(), ours.RSSPer10k()/c.RSSPer10k()
	cpuOK, memOK := func(x float64) bool { return x <= 1.0/3 }, func(x float64) bool { return x <= 0.5 }
	return s + fmt.Sprintf("; CPU per IKE SA at most 1/3 of charon's: %sx (%s); memory per IKE SA at most half of charon's, state file on: %sx (%s).",
		against(cpu, cpuOK), met(cpuOK(cpu)), against(mem, memOK), met(memOK(mem)))
}

// ikeOnly measures the IKE comparisons and rewrites their sections of
// the README alone.
func ikeOnly(readmePath, ikeOut, profDir, bin string, sas, largeSAs int) error {
	readme, err := os.ReadFile(readmePath)
	if err != nil {
		return err
	}
	start := time.Now()
	var ike []byte
	if ikeOut != "" {
		if ike, err = os.ReadFile(ikeOut); err != nil {
			return err
		}
	}
	prof, err := readProf(profDir)
	if err != nil {
		return err
	}
	ir, err := runIKE(bin, sas, largeSAs)
	if err != nil {
		return err
	}
	if err := plotLoad(filepath.Join(filepath.Dir(readmePath), "ike_load.svg"), ir.loads); err != nil {
		return err
	}
	var b bytes.Buffer
	writeIKESections(&b, bench.ThisMachine(), ike, prof, ir, time.Since(start))
	s := string(readme)
	i := strings.Index(s, ikeBegin)
	if i < 0 {
		return fmt.Errorf("%s: no section %q", readmePath, strings.TrimSpace(ikeBegin))
	}
	j := len(s)
	if k := strings.Index(s[i:], raBegin); k >= 0 {
		j = i + k
	}
	return os.WriteFile(readmePath, []byte(s[:i]+b.String()+"\n"+s[j:]), 0o644)
}
