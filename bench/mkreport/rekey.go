package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"

	"github.com/xdpsec/xdpsec/bench"
)

// The rekey section of bench/README.md (rekey spread at 100,000 SAs and
// the checkpoint cost per SA change) sits between these markers, after
// the remote-access section, so that `mkreport -rekey-only` rewrites it
// alone and `-ike-only` (which rewrites up to the remote-access section)
// leaves it.
const (
	rekeyBegin = "<!-- rekey-spread: written by make bench or make bench-rekey -->"
	rekeyEnd   = "<!-- /rekey-spread -->"
)

// rekeyReport is what the rekey runs and the checkpoint measured.
type rekeyReport struct {
	sas        int
	runs       []bench.RekeyResult
	steady     []bench.RekeyResult
	checkpoint []bench.CheckpointResult
	when       time.Time
	took       time.Duration
	load       string
}

// rekeyRuns are the runs of def: the configuration with jitter, then the
// same without (rand_time = 0 on the children and the IKE SAs). A scale
// above 1 divides the times (lifetimes, window, bucket: at least a
// second) for a quick look at the report.
func rekeyRuns(def bench.RekeyOptions, bin string, sas int, scale float64, withoutToo bool) []bench.RekeyOptions {
	with := def
	with.Bin, with.SAs = bin, sas
	if scale > 1 {
		for _, d := range []*time.Duration{&with.ChildRekey, &with.ChildRand, &with.IKERekey, &with.IKERand, &with.Window, &with.Bucket} {
			*d = max(time.Duration(float64(*d)/scale).Round(time.Second), time.Second)
		}
	}
	if !withoutToo {
		return []bench.RekeyOptions{with}
	}
	without := with
	without.ChildRand, without.IKERand = 0, 0
	return []bench.RekeyOptions{with, without}
}

func runRekey(bin string, sas int, scale float64) (rekeyReport, error) {
	r := rekeyReport{sas: sas, when: time.Now(), load: loadAvg()}
	progress := func(s string) { log.Print(s) }
	steadySAs := max(sas*bench.DefaultSteadyOptions.SAs/bench.DefaultRekeyOptions.SAs, 1)
	for _, set := range []struct {
		def     bench.RekeyOptions
		sas     int
		runs    *[]bench.RekeyResult
		without bool
	}{{bench.DefaultRekeyOptions, sas, &r.runs, true}, {bench.DefaultSteadyOptions, steadySAs, &r.steady, false}} {
		for _, o := range rekeyRuns(set.def, bin, set.sas, scale, set.without) {
			res, err := bench.RekeySpread(o, progress)
			if err != nil {
				return r, err
			}
			b, m, ratio := bench.Spread(res.Buckets())
			progress(fmt.Sprintf("rekey spread, %d SAs, rand_time %s: max %d, mean %.0f CHILD_SA rekeys per %s bucket: max/mean %.2f (the model: %.2f)",
				o.SAs, o.ChildRand, b, m, o.Bucket, ratio, res.ExpectedSpread()))
			*set.runs = append(*set.runs, res)
			saveRekey(r)
		}
	}
	dir, err := os.MkdirTemp("", "xdpsec-checkpoint")
	if err != nil {
		return r, err
	}
	defer os.RemoveAll(dir)
	var counts []int
	for _, n := range bench.DefaultCheckpointSAs {
		if n <= max(sas, bench.DefaultCheckpointSAs[0]) {
			counts = append(counts, n)
		}
	}
	if r.checkpoint, err = bench.Checkpoint(counts, bench.DefaultCheckpointChanges, dir, progress); err != nil {
		return r, err
	}
	r.took = time.Since(r.when)
	saveRekey(r)
	return r, nil
}

// savedRekey is a rekeyReport as JSON, so that the section can be
// written again from a run (-rekey-from) without measuring again.
type savedRekey struct {
	SAs        int
	Runs       []bench.RekeyResult
	Steady     []bench.RekeyResult
	Checkpoint []bench.CheckpointResult
	When       time.Time
	Took       time.Duration
	Load       string
}

// saveRekey keeps the run's results in the temporary directory.
func saveRekey(r rekeyReport) {
	b, err := json.Marshal(savedRekey{r.sas, r.runs, r.steady, r.checkpoint, r.when, r.took, r.load})
	if err != nil {
		return
	}
	path := filepath.Join(os.TempDir(), "xdpsec-rekey-results.json")
	if os.WriteFile(path, b, 0o644) == nil {
		log.Printf("rekey results saved in %s (-rekey-from writes the section from them)", path)
	}
}

// loadRekey reads what saveRekey saved.
func loadRekey(path string) (rekeyReport, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return rekeyReport{}, err
	}
	var s savedRekey
	if err := json.Unmarshal(b, &s); err != nil {
		return rekeyReport{}, fmt.Errorf("%s: %w", path, err)
	}
	return rekeyReport{sas: s.SAs, runs: s.Runs, steady: s.Steady, checkpoint: s.Checkpoint, when: s.When, took: s.Took, load: s.Load}, nil
}

var rekeyMarks = readmeSection{begin: rekeyBegin, end: rekeyEnd, before: []string{vmBegin}}

// rekeySection returns the section of an existing README ("" if none).
func rekeySection(readme []byte) string { return rekeyMarks.in(readme) }

// replaceRekeySection puts section in place of the README's, or in
// front of the VM section, or at the end.
func replaceRekeySection(readme []byte, section string) []byte {
	return rekeyMarks.replace(readme, section)
}

// rekeyOnly measures and rewrites the section of dir/README.md alone.
func rekeyOnly(readmePath, bin string, sas int, scale float64, from string) error {
	readme, err := os.ReadFile(readmePath)
	if err != nil {
		return err
	}
	var r rekeyReport
	if from != "" {
		r, err = loadRekey(from)
	} else {
		r, err = runRekey(bin, sas, scale)
	}
	if err != nil {
		return err
	}
	if err := plotRekeys(filepath.Join(filepath.Dir(readmePath), "rekey_spread.svg"), r.runs); err != nil {
		return err
	}
	if err := plotRekeys(filepath.Join(filepath.Dir(readmePath), "rekey_steady.svg"), r.steady); err != nil {
		return err
	}
	var b bytes.Buffer
	writeRekeySection(&b, r, bench.ThisMachine())
	return os.WriteFile(readmePath, replaceRekeySection(readme, b.String()), 0o644)
}

// plotRekeys draws the CHILD_SA rekeys per bucket over the window of
// each run, with the model's.
func plotRekeys(path string, runs []bench.RekeyResult) error {
	if len(runs) == 0 {
		return nil
	}
	p := plot.New()
	p.Title.Text = fmt.Sprintf("CHILD_SA rekeys of %s SAs after their establishment", fmtInt(runs[0].Options.SAs))
	p.X.Label.Text = "seconds since the last IKE SA was established"
	p.Y.Label.Text = fmt.Sprintf("rekeys per %s", runs[0].Options.Bucket)
	p.Legend.Top = true
	var args []any
	for _, r := range runs {
		per := r.Options.Bucket.Seconds()
		var got, want plotter.XYs
		for i, x := range r.Buckets() {
			got = append(got, plotter.XY{X: float64(i) * per, Y: float64(x)})
		}
		for i, x := range r.Expected() {
			want = append(want, plotter.XY{X: float64(i) * per, Y: x})
		}
		args = append(args, fmt.Sprintf("rand_time %s: measured", r.Options.ChildRand), got,
			fmt.Sprintf("rand_time %s: model", r.Options.ChildRand), want)
	}
	if err := plotutil.AddLines(p, args...); err != nil {
		return err
	}
	p.Y.Min = 0
	return p.Save(9*vg.Inch, 5*vg.Inch, path)
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

func writeRekeySection(b *bytes.Buffer, r rekeyReport, m bench.Machine) {
	p := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	p("%s\n", rekeyBegin)
	p("## Rekeys at %s SAs: spread over time, steady-state cost, checkpoint cost per change\n\n", fmtInt(r.sas))
	p("Measured %s on %s, in %s", r.when.UTC().Format("2006-01-02 15:04 MST"), m, r.took.Round(time.Second))
	if r.load != "" {
		p("; the machine is shared, its load average before the runs %s", r.load)
	}
	p(". `make bench-rekey` rewrites this section alone (`BENCH_REKEY_SAS=N` sets the\n")
	p("SAs); `make bench` runs it too. Code: `bench/rekey.go`, `bench/checkpoint.go`.\n\n")
	if len(r.runs) > 0 {
		writeRekeySpread(b, r)
	}
	writeCheckpoint(b, r.checkpoint)
	p("%s\n", rekeyEnd)
}

func writeRekeySpread(b *bytes.Buffer, r rekeyReport) {
	p := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	o := r.runs[0].Options
	p("### Rekey spread at %s SAs\n\n", fmtInt(r.sas))
	p("Our responder (`xdpsec daemon --dataplane=dry-run --log any=0`, state file on)\n")
	p("and the load generator as in the IKE comparison above (same namespaces, proposal\n")
	p("`%s`). The responder's swanctl.conf gives the CHILD_SAs `rekey_time = %s`\n", bench.BenchProposals[0].IKE, o.ChildRekey)
	p("(`life_time` 10%% more) and the IKE SAs `rekey_time = %s`, with `rand_time` as\n", o.IKERekey)
	p("in the table for both; the initiators' lifetimes are a day, so every rekey is\n")
	p("the responder's, counted as the initiators complete it (their engines'\n")
	p("Observer). The %s IKE SAs are first established as fast as the responder\n", fmtInt(r.sas))
	p("takes them: all peers at once, as after a restart or an outage, the worst\n")
	p("case for bursts. Then rekeys are counted per second for %s (the window,\n", o.Window)
	p("from the last establishment); the responder's CPU (utime + stime), RSS and\n")
	p("state file size are sampled each second.\n\n")
	p("Spread is max/mean of the CHILD_SA rekeys per %s bucket over the window (1:\n", o.Bucket)
	p("even). \"Model\" is the same ratio for the rekeys the establishment times and\n")
	p("the lifetimes alone predict (each CHILD_SA rekeyed `rekey_time` − k after its\n")
	p("establishment or previous rekey, k whole seconds uniform in [0, `rand_time`],\n")
	p("as charon draws it): the measured ratio near the model's says the scheduling\n")
	p("adds no bursts of its own; the model's says what jitter can do after an\n")
	p("establishment of this length at all. CPU-ms per rekey divides the\n")
	p("responder's CPU in the window by the CHILD_SA and IKE SA rekeys together\n")
	p("(state file and its compactions included).\n\n")
	p("![CHILD_SA rekeys per bucket](rekey_spread.svg)\n\n")
	writeRekeyTable(b, r.runs)
	p("\n%s\n\n", rekeyVerdict(r.runs))
	if len(r.steady) == 0 {
		return
	}
	s := r.steady[0].Options
	p("### The steady state: every SA rekeyed again and again\n\n")
	p("The first round after a mass establishment is as spread as `rand_time` and\n")
	p("the establishment's length allow; each rekey draws its jitter anew, so the\n")
	p("rounds after it spread further. To see that within minutes, %s IKE SAs with\n", fmtInt(s.SAs))
	p("`rekey_time = %s` and `rand_time = %s` (the same ratio) for the CHILD_SAs\n", s.ChildRekey, s.ChildRand)
	p("and the IKE SAs, counted for %s after their establishment: each SA is\n", s.Window)
	p("rekeyed about %.0f times (the run without jitter above shows what the\n", s.Window.Seconds()/(s.ChildRekey-s.ChildRand/2).Seconds())
	p("rounds are without it: the same burst each time). The same columns:\n\n")
	p("![CHILD_SA rekeys per bucket, steady state](rekey_steady.svg)\n\n")
	writeRekeyTable(b, r.steady)
	p("\n%s\n\n", steadyVerdict(r.steady))
}

// writeRekeyTable writes one row per run.
func writeRekeyTable(b *bytes.Buffer, runs []bench.RekeyResult) {
	p := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	o := runs[0].Options
	p("| IKE SAs | rand_time | established in | CHILD_SA rekeys | IKE SA rekeys | max / %s | mean / %s | max/mean | model max/mean | IKE SA max/mean | CPU s/s mean | CPU s/s max bucket | CPU-ms per rekey | RSS MiB start → middle → end | state file MiB start → end | compactions | SAs lost |\n", o.Bucket, o.Bucket)
	p("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, x := range runs {
		maxB, mean, ratio := bench.Spread(x.Buckets())
		child, ikeSA := x.Rekeys()
		cpu, d := x.WindowCPU()
		cpuMax := 0.0
		for _, c := range x.CPUPerSecond() {
			cpuMax = max(cpuMax, c)
		}
		perRekey, cpuMean := 0.0, 0.0
		if child+ikeSA > 0 {
			perRekey = cpu.Seconds() * 1000 / float64(child+ikeSA)
		}
		if d > 0 {
			cpuMean = cpu.Seconds() / d.Seconds()
		}
		w := x.Samples[x.WindowStart:]
		first, mid, last := w[0], w[len(w)/2], w[len(w)-1]
		_, _, ikeRatio := bench.Spread(x.IKEBuckets())
		lost := fmt.Sprintf("%d CHILD_SAs, %d IKE SAs; %s of %s with a CHILD_SA", x.LostChildren, x.LostIKE, fmtInt(x.Left), fmtInt(x.Options.SAs))
		p("| %s | %s | %s | %s | %s | %d | %.0f | %.2f | %.2f | %.2f | %.2f | %.2f | %.3f | %.0f → %.0f → %.0f | %.0f → %.0f | %d | %s |\n",
			fmtInt(x.Options.SAs), x.Options.ChildRand, x.Established.Round(time.Second), fmtInt(int(child)), fmtInt(int(ikeSA)), maxB, mean, ratio,
			x.ExpectedSpread(), ikeRatio, cpuMean, cpuMax, perRekey, mib(first.RSS), mib(mid.RSS), mib(last.RSS), mib(first.State), mib(last.State),
			x.Compactions(), lost)
	}
}

// floatSpread is max/mean of the model's buckets.
func floatSpread(b []float64) float64 {
	m, sum := 0.0, 0.0
	for _, x := range b {
		m = max(m, x)
		sum += x
	}
	if sum == 0 {
		return 0
	}
	return m / (sum / float64(len(b)))
}

// steadyVerdict says in words what the steady-state runs show.
func steadyVerdict(runs []bench.RekeyResult) string {
	var out []string
	for _, x := range runs {
		_, _, ratio := bench.Spread(x.Buckets())
		b, e := x.Buckets(), x.Expected()
		_, _, late := bench.Spread(b[len(b)/2:])
		w := x.Samples[x.WindowStart:]
		mid, last := w[len(w)/2], w[len(w)-1]
		out = append(out, fmt.Sprintf("with `rand_time = %s` max/mean %.2f over the whole window (model %.2f), %.2f over its second half (model %.2f), "+
			"where the rounds have spread; RSS %.0f MiB halfway and %.0f MiB at the end (%+.0f%%), the state file %.0f and %.0f MiB",
			x.Options.ChildRand, ratio, x.ExpectedSpread(), late, floatSpread(e[len(e)/2:]), mib(mid.RSS), mib(last.RSS),
			100*(float64(last.RSS)/float64(max(mid.RSS, 1))-1), mib(mid.State), mib(last.State)))
	}
	return "In words: " + strings.Join(out, "; ") + "."
}

// rekeyVerdict says in words what the runs show.
func rekeyVerdict(runs []bench.RekeyResult) string {
	var with, without *bench.RekeyResult
	for i := range runs {
		if runs[i].Options.ChildRand > 0 {
			with = &runs[i]
		} else {
			without = &runs[i]
		}
	}
	if with == nil || without == nil {
		return ""
	}
	_, _, rw := bench.Spread(with.Buckets())
	mw, _, r0 := bench.Spread(without.Buckets())
	m1, _, _ := bench.Spread(with.Buckets())
	c0, i0 := without.Rekeys()
	c1, i1 := with.Rekeys()
	var s strings.Builder
	fmt.Fprintf(&s, "In words: with `rand_time = %s` the busiest %s holds %d CHILD_SA rekeys, %.1fx the mean, where the establishment times and the lifetimes predict %.1fx; "+
		"%s CHILD_SA and %s IKE SA rekeys in the window. ",
		with.Options.ChildRand, with.Options.Bucket, m1, rw, with.ExpectedSpread(), fmtInt(int(c1)), fmtInt(int(i1)))
	fmt.Fprintf(&s, "Without jitter the rekeys come as the establishments came, %s after them: the busiest %s holds %d, %.1fx the mean (model %.1fx), "+
		"and only %s CHILD_SA rekeys (against %s IKE SA rekeys) were done in the window: each IKE SA's rekey and its CHILD_SA's were due in the same second, "+
		"the CHILD_SA's rekey waits in its IKE SA's queue behind the IKE SA's, and most had not completed when the window ended. "+
		"A run of 5,000 SAs with 20 s lifetimes and the responder's log on shows why: the burst overflows the load generator (one process plays every peer, on the same CPUs), "+
		"requests are lost and retransmitted after 4 s, 7 s, 13 s (the daemon's defaults), and there IKE SAs even reached their hard lifetime (`over_time`) first. ",
		without.Options.ChildRekey, without.Options.Bucket, mw, r0, without.ExpectedSpread(), fmtInt(int(c0)), fmtInt(int(i0)))
	fmt.Fprintf(&s, "Each rekey draws its jitter anew, so later rounds spread further, towards max/mean 1 (the model's curve in the chart, and the steady state below); "+
		"the first round after a mass establishment cannot spread over more than `rand_time` plus the establishment's length. ")
	if with.LostChildren+without.LostChildren+with.LostIKE+without.LostIKE == 0 {
		fmt.Fprintf(&s, "No SA went down in either window.")
	} else {
		fmt.Fprintf(&s, "SAs went down (see the last column): rekeys came too late for the hard lifetime.")
	}
	return s.String()
}

func writeCheckpoint(b *bytes.Buffer, rs []bench.CheckpointResult) {
	p := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	p("### Checkpoint cost per SA change\n\n")
	if len(rs) == 0 {
		p("Not run this time.\n\n")
		return
	}
	p("Two of our engines in one process (`bench/checkpoint.go`, an in-memory pipe, a\n")
	p("no-op dataplane), the responder with the daemon's state journal\n")
	p("(`internal/daemon/journal.go`) as its StateSink, and the same without it. With\n")
	p("n IKE SAs established (one CHILD_SA each), the responder rekeys the CHILD_SA of\n")
	p("one IKE SA after the other, %s times; a change is one such rekey (the\n", fmtInt(rs[0].Changes))
	p("journal appends the IKE SA's record as the rekey starts, completes and the\n")
	p("old CHILD_SA goes). CPU is the process's (both engines: the rekey's initiator\n")
	p("and responder) per change; \"journal\" is the difference with and without.\n")
	p("A compaction rewrites the file from a snapshot of the engine when the\n")
	p("appended records outgrow the snapshot (at least 1 MiB; the daemon checks twice\n")
	p("a second): its CPU and wall time are measured once at each n, and its CPU\n")
	p("spread over the changes between two compactions is the amortised cost. The\n")
	p("engine's lock is held for a piece of %d IKE SAs at a time (`ike.Engine.Snapshot`);\n", 256)
	p("\"engine stall\" is the longest a prober that takes the lock over and over\n")
	p("waited during the compaction: what an IKE message or a rekey timer waits.\n")
	p("\"p99 / longest change\" are the 99th\n")
	p("percentile and the slowest single rekey with the journal (wall clock, on a\n")
	p("shared machine: the appends are write(2)s under the engine's lock, which the\n")
	p("kernel may hold up when the machine writes a lot).\n\n")
	p("| IKE SAs | CPU µs/change, journal on | off | journal µs/change | bytes appended/change | snapshot MiB | compaction CPU ms | compaction wall ms | engine stall ms | changes between compactions | compaction µs/change amortised | p99 / longest change ms |\n")
	p("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range rs {
		p("| %s | %.1f | %.1f | %.1f | %.0f | %.1f | %.0f | %.0f | %.1f | %s | %.2f | %.2f / %.1f |\n",
			fmtInt(r.SAs), usf(r.CPUOn), usf(r.CPUOff), usf(r.JournalCPU()), r.BytesPerChange, mib(r.Snapshot),
			msf(r.CompactCPU), msf(r.CompactWall), msf(r.CompactStall), fmtInt(int(r.ChangesPerCompaction())), usf(r.CompactionPerChange()), msf(r.P99ChangeOn), msf(r.MaxChangeOn))
	}
	first, last := rs[0], rs[len(rs)-1]
	p("\nIn words: from %s to %s IKE SAs, the bytes appended per change go from %.0f to %.0f (%.2fx) and the\n",
		fmtInt(first.SAs), fmtInt(last.SAs), first.BytesPerChange, last.BytesPerChange, last.BytesPerChange/first.BytesPerChange)
	p("journal's CPU per change from %.1f to %.1f µs: one change costs a bounded write,\n", usf(first.JournalCPU()), usf(last.JournalCPU()))
	p("whatever the number of SAs. The compaction is the part that grows with the SAs\n")
	p("(%.0f ms of CPU at %s), but it comes after a snapshot's worth of changes, so its\n", msf(last.CompactCPU), fmtInt(last.SAs))
	p("amortised share stays at %.2f µs per change; it holds the engine's lock a\n", usf(last.CompactionPerChange()))
	p("piece at a time, so the longest stall it caused at %s SAs was %.1f ms (the\n", fmtInt(last.SAs), msf(last.CompactStall))
	p("compaction's wall time, %.0f ms, was the stall when the whole snapshot was\n", msf(last.CompactWall))
	p("taken under one hold of the lock).\n\n")
}

func usf(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
func msf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
