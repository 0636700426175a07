package main

import (
	"bytes"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/xdpsec/xdpsec/bench"
)

// The post-quantum establishment section of bench/README.md sits between
// these markers, so that `mkreport -pq-only` can rewrite it alone.
const (
	pqBegin = "<!-- pq-establish: written by make bench or make bench-pq -->"
	pqEnd   = "<!-- /pq-establish -->"
)

// pqReport is what the post-quantum comparison measured.
type pqReport struct {
	sas     int
	results []bench.IKEResult
	skipped []string
	when    time.Time
	took    time.Duration
	charon6 string
	load    string // the machine's load average before the runs
	// profiles are our responder's CPU profiles, one run per proposal
	// after the measured ones; profErr says why there are none.
	profiles []pqProfile
	profErr  error
}

// runPQ runs the post-quantum comparison with sas IKE SAs per run.
func runPQ(bin string, sas int) (pqReport, error) {
	r := pqReport{sas: sas, when: time.Now(), charon6: bench.Charon6Version(), load: loadAvg()}
	o := bench.DefaultPQOptions
	o.Bin, o.SAs = bin, sas
	var err error
	progress := func(s string) { log.Print(s) }
	if r.results, r.skipped, err = bench.PQ(o, progress); err != nil {
		return r, err
	}
	r.took = time.Since(r.when)
	if r.profiles, r.profErr = profilePQ(bin, sas, progress); r.profErr != nil {
		log.Printf("profiling our responder: %v", r.profErr)
	}
	return r, nil
}

func writePQSection(b *bytes.Buffer, r pqReport, m bench.Machine) {
	p := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	o := bench.DefaultPQOptions
	p("%s\n", pqBegin)
	p("## Post-quantum IKE: hybrid key exchanges against X25519, ours and charon 6's\n\n")
	p("Measured %s on %s, in %s", r.when.UTC().Format("2006-01-02 15:04 MST"), m, r.took.Round(time.Second))
	if r.load != "" {
		p("; the machine is shared, its load average before the runs %s", r.load)
	}
	p(". `make bench-pq` rewrites this section alone (`BENCH_PQ_SAS=N` sets the IKE SAs per run);\n")
	p("`go test -run TestPQCompare ./bench/` runs it with 100 IKE SAs.\n\n")
	p("Issue 21's benchmark: what RFC 9370's additional key exchange costs an\n")
	p("establishment. The same generator as in the IKE comparison above (our engines,\n")
	p("`loadgen.go`, one per CPU, each IKE SA from an address of its own with one\n")
	p("CHILD_SA, PSK) drives, one after the other and each run against a fresh\n")
	p("responder, our daemon (`xdpsec daemon --dataplane=dry-run --log any=0`) and\n")
	charon6 := "strongSwan 6's charon"
	if r.charon6 != "" {
		charon6 += " (`" + r.charon6 + "`)"
	}
	p("%s from the Debian trixie chroot that `make sw6` makes\n", charon6)
	p("(`interop/strongswan6.sh`, with strongSwan's ml plugin for ML-KEM built from\n")
	p("Debian's source of the same version), run as `interop/sw6_test.go` runs it:\n")
	p("chrooted in a mount namespace of its own with the responder namespace's\n")
	p("`/proc` and `/sys`, kernel-libipsec (ESP in userspace), the settings of the\n")
	p("charon (kernel-libipsec) rows above and the plugins drbg and ml besides.\n")
	p("Both load the same swanctl.conf with one proposal, offered alone by the\n")
	p("initiators: X25519; X25519 with ML-KEM-768 as the additional exchange\n")
	p("(`ke1_mlkem768`); the classical hybrid X25519 with ECP-384 (`ke1_ecp384`).\n")
	p("The hybrids run IKE_SA_INIT, one IKE_INTERMEDIATE exchange for the\n")
	p("additional key exchange, then IKE_AUTH (with the IntAuth values of RFC 9242);\n")
	p("ESP `aes128gcm16` throughout (IKE_AUTH's CHILD_SA has no key exchange of its\n")
	p("own). Each run checks from the initiators' selected proposals that every IKE\n")
	p("SA ran the additional exchange (none with X25519 alone). %s IKE SAs per run,\n", fmtInt(r.sas))
	p("at most %d in flight, as fast as the responder takes them; %d rounds of all the\n", o.Window, o.Rounds)
	p("runs, one after the other, and each row is its fastest round. Responder CPU is\n")
	p("utime + stime of all its threads over the run; memory per SA (\"KiB/SA\") is\n")
	p("peak RSS (VmHWM) after the run minus RSS before it, per IKE SA. \"x x25519\"\n")
	p("divides by the same responder's figure with X25519 alone in this run. \"10-30%%\"\n")
	p("is the rate and the responder's CPU per SA from the moment 10%% of the SAs are\n")
	p("done to the moment 30%% are (its CPU read from /proc then, in 10 ms ticks; about\n")
	p("as many SAs in flight at both ends): charon with kernel-libipsec slows down as\n")
	p("its CHILD_SAs accumulate (most of its time then goes to libipsec's SA and\n")
	p("policy lists, see charon 5.9's first and last tenth above), which dilutes what\n")
	p("the key exchanges cost in its whole-run figures; early in the run they show\n")
	p("with few CHILD_SAs. The generator shares the machine's %d CPUs with the\n", m.CPUs)
	p("responder: its own CPU per SA (the initiator's side of every key exchange) is\n")
	p("in the last column.\n\n")
	if len(r.results) > 0 {
		bench.WritePQTable(b, r.results)
		p("\nOurs against charon 6, with the same proposal:\n\n")
		bench.WritePQRatioTable(b, r.results)
		p("\n%s\n\n", bench.PQWords(r.results))
	}
	for _, s := range r.skipped {
		p("Left out: %s.\n\n", strings.TrimSuffix(s, "."))
	}
	p("Where our responder's CPU goes: one more run of %s IKE SAs per proposal with\n", fmtInt(r.sas))
	p("the daemon's CPU profile on (`--cpuprofile`), split by pprof's `-focus` (samples\n")
	p("with such a function on their stack), in microseconds per IKE SA:\n\n")
	if r.profErr != nil || len(r.profiles) == 0 {
		p("Not profiled: %v.\n\n", r.profErr)
	} else {
		writePQProfile(b, r.profiles)
		p("\n%s\n\n", pqProfileWords(r.profiles))
	}
	p("Read with care: on a shared machine the rates depend on the CPU the other\n")
	p("work leaves to generator and responder together; the CPU per SA, counted by\n")
	p("the kernel per process, is the steadier figure. The initiators pay their side\n")
	p("of each hybrid too (ML-KEM key generation and decapsulation, a second ECDH;\n")
	p("last column), so the rate falls further than the responder's CPU per SA\n")
	p("rises. charon's figures include its userspace ESP backend (kernel-libipsec\n")
	p("installs each CHILD_SA in charon's process) while our daemon in dry-run\n")
	p("installs nothing, so ours against charon 6 flatters us; within one responder\n")
	p("(hybrid against X25519) that work is the same in every run and only dilutes\n")
	p("the ratio. The in-process view,\n")
	p("both ends our engines over an in-memory pipe, is `BenchmarkPQEstablish`\n")
	p("(`go test -run '^$' -bench PQEstablish -benchtime 2000x ./bench/`), which\n")
	p("adds ML-KEM-768 alone.\n\n")
	p("%s\n", pqEnd)
}

// pqMarks: the section goes after the remote-access one, in front of the
// rekey or the VM section where it is new.
var pqMarks = readmeSection{begin: pqBegin, end: pqEnd, before: []string{rekeyBegin, vmBegin}}

// pqSection returns the section of an existing README ("" if none).
func pqSection(readme []byte) string { return pqMarks.in(readme) }

// pqOnly measures and rewrites the section of dir/README.md alone.
func pqOnly(readmePath, bin string, sas int) error {
	readme, err := os.ReadFile(readmePath)
	if err != nil {
		return err
	}
	r, err := runPQ(bin, sas)
	if err != nil {
		return err
	}
	var b bytes.Buffer
	writePQSection(&b, r, bench.ThisMachine())
	return os.WriteFile(readmePath, pqMarks.replace(readme, b.String()), 0o644)
}

// pqProfile is where our responder's CPU went in a profiled run of one
// proposal, apart from the measured runs (profiling costs a little CPU).
type pqProfile struct {
	proposal bench.Proposal
	sas      int
	total    time.Duration
	// parts are the samples below each of pqParts' functions.
	parts []time.Duration
}

// pqParts are the kinds of work the profile is split into: pprof's
// samples whose stack holds a function the regexp matches.
var pqParts = []struct{ name, focus string }{
	{"X25519 (key generation, shared secret)", `transform\.(newX25519|\(\*x25519KE\))`},
	{"additional exchange (ML-KEM-768 encapsulation, ECP-384)", `transform\.(newECP|newMLKEM|\(\*mlkemKE\)|\(\*ecpKE\))`},
	{"garbage collection (background mark workers)", `runtime\.gcBgMarkWorker`},
	{"socket I/O (sendmsg, recvmsg)", `internal/poll\.`},
}

// profilePQ runs our responder with each proposal once more, its CPU
// profiled (bench passes the daemon's hidden --cpuprofile when
// XDPSEC_BENCH_CPUPROFILE names a directory), and splits each profile
// by pqParts.
func profilePQ(bin string, sas int, progress func(string)) ([]pqProfile, error) {
	var out []pqProfile
	for _, p := range bench.PQProposals {
		pp, err := profilePQOne(bin, sas, p, progress)
		if err != nil {
			return out, fmt.Errorf("profile %s: %w", p.IKE, err)
		}
		out = append(out, pp)
	}
	return out, nil
}

var (
	pprofTotal = regexp.MustCompile(`Total samples = (\S+)`)
	pprofShown = regexp.MustCompile(`Showing nodes accounting for (\S+),`)
)

func profilePQOne(bin string, sas int, p bench.Proposal, progress func(string)) (pqProfile, error) {
	pp := pqProfile{proposal: p, sas: sas}
	dir, err := os.MkdirTemp("", "xdpsec-pqprof-")
	if err != nil {
		return pp, err
	}
	defer os.RemoveAll(dir)
	os.Setenv("XDPSEC_BENCH_CPUPROFILE", dir)
	defer os.Unsetenv("XDPSEC_BENCH_CPUPROFILE")
	o := bench.IKEOptions{Bin: bin, SAs: sas, Window: bench.DefaultPQOptions.Window, Proposals: []bench.Proposal{p},
		Responders: []bench.ResponderKind{bench.Ours}}
	if _, _, err := bench.IKE(o, progress); err != nil {
		return pp, err
	}
	profs, _ := filepath.Glob(filepath.Join(dir, "*.prof"))
	if len(profs) != 1 {
		return pp, fmt.Errorf("%d CPU profiles written, want one", len(profs))
	}
	pprof := func(args ...string) (string, error) {
		out, err := exec.Command("go", append([]string{"tool", "pprof", "-top", "-nodecount=100000"}, append(args, bin, profs[0])...)...).CombinedOutput()
		return string(out), err
	}
	top, err := pprof()
	if err != nil {
		return pp, fmt.Errorf("pprof: %w: %s", err, top)
	}
	m := pprofTotal.FindStringSubmatch(top)
	if m == nil {
		return pp, fmt.Errorf("pprof: no total in %q", top)
	}
	if pp.total, err = time.ParseDuration(m[1]); err != nil {
		return pp, fmt.Errorf("pprof: total: %w", err)
	}
	for _, part := range pqParts {
		var d time.Duration
		// pprof fails where nothing matches the focus: none of that work.
		if out, err := pprof("-focus", part.focus); err == nil {
			if m := pprofShown.FindStringSubmatch(out); m != nil {
				d, _ = time.ParseDuration(m[1])
			}
		}
		pp.parts = append(pp.parts, d)
	}
	return pp, nil
}

// writePQProfile writes the profiles as a table of microseconds per IKE SA.
func writePQProfile(b *bytes.Buffer, ps []pqProfile) {
	p := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	us := func(d time.Duration, sas int) float64 { return float64(d.Microseconds()) / float64(sas) }
	p("| proposal | profiled CPU µs/SA |")
	for _, part := range pqParts {
		p(" %s |", part.name)
	}
	p(" rest (IKE processing, PRF+, AEAD, allocation) |\n|---|---:|")
	for range pqParts {
		p("---:|")
	}
	p("---:|\n")
	for _, pp := range ps {
		p("| `%s` | %.0f |", pp.proposal.IKE, us(pp.total, pp.sas))
		rest := pp.total
		for _, d := range pp.parts {
			p(" %.0f |", us(d, pp.sas))
			rest -= d
		}
		p(" %.0f |\n", us(rest, pp.sas))
	}
}

// pqProfileWords says where each hybrid's extra CPU per SA over X25519
// alone went, by pqParts.
func pqProfileWords(ps []pqProfile) string {
	if len(ps) < 2 || ps[0].proposal != bench.PQProposals[0] {
		return ""
	}
	ref := ps[0]
	us := func(d time.Duration, sas int) float64 { return float64(d.Microseconds()) / float64(sas) }
	short := []string{"X25519", "the additional exchange", "garbage collection", "socket I/O"}
	var out []string
	for _, pp := range ps[1:] {
		var parts []string
		rest, refRest := pp.total, ref.total
		for i, d := range pp.parts {
			parts = append(parts, fmt.Sprintf("%s %+.0f", short[i], us(d, pp.sas)-us(ref.parts[i], ref.sas)))
			rest -= d
			refRest -= ref.parts[i]
		}
		parts = append(parts, fmt.Sprintf("the rest %+.0f", us(rest, pp.sas)-us(refRest, ref.sas)))
		out = append(out, fmt.Sprintf("`%s` takes %+.0f µs per SA over X25519 alone: %s.",
			pp.proposal.IKE, us(pp.total, pp.sas)-us(ref.total, ref.sas), strings.Join(parts, ", ")))
	}
	return "In words: " + strings.Join(out, " ") +
		fmt.Sprintf(" One profile sample (10 ms) is %.1f µs per SA here: differences of a few samples are noise.", 10_000/float64(ref.sas))
}
