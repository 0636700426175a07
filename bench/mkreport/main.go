// Command mkreport runs the host benchmarks of package bench and rewrites
// bench/README.md with their tables, the machine and the command line,
// and SVG charts next to it. `make bench` runs it as root.
//
//	go run ./bench/mkreport -dir bench -ike bench/ike.txt -xdpsec bin/xdpsec
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"

	"github.com/xdpsec/xdpsec/bench"
)

func main() {
	dir := flag.String("dir", "bench", "where README.md and the SVGs go")
	ikeOut := flag.String("ike", "", "output of the IKE go test benchmarks to include")
	vmOut := flag.String("vm", "", "output of the VM transfer comparison (make bench-vm) to include")
	onlyVM := flag.Bool("vm-only", false, "rewrite only the VM section of README.md from -vm; run nothing")
	kscaleOut := flag.String("kscale", "", "output of the VM kernel bring-up comparison (make bench-kernel) to include")
	onlyKscale := flag.Bool("kscale-only", false, "rewrite only the kernel bring-up section of README.md from -kscale; run nothing")
	onlyClients := flag.Bool("clients-only", false, "measure the outbound lookup per remote-access client and rewrite only its section of README.md")
	xdpsecBin := flag.String("xdpsec", "", "xdpsec binary for the IKE responder comparison and the flood (none: not run)")
	sas := flag.Int("sas", bench.DefaultIKEOptions.SAs, "IKE SAs per responder and proposal")
	largeSAs := flag.Int("large-sas", 0, "IKE SAs of the large run (ours with the state file, charon with load-tester); 0: not run")
	profDir := flag.String("ike-prof", "", "directory with pprof -top output of BenchmarkIKEEstablish (cpu.txt, alloc_space.txt, alloc_objects.txt, bench.txt) to include")
	onlyIKE := flag.Bool("ike-only", false, "measure the IKE comparisons (needs -xdpsec) and rewrite only the IKE sections of README.md")
	onlyRA := flag.Bool("ra-only", false, "measure the remote-access establishments (needs -xdpsec) and rewrite only their section of README.md")
	defRA, err := bench.RAClientsFromEnv(bench.DefaultRAOptions.Clients)
	if err != nil {
		log.Fatal(err)
	}
	raClients := flag.Int("ra-clients", defRA, "remote-access clients per responder (default from "+bench.RAClientsEnv+")")
	rekeySAs := flag.Int("rekey-sas", 0, "IKE SAs of the rekey spread runs and the largest checkpoint count (needs -xdpsec); 0: not run")
	rekeyScale := flag.Float64("rekey-scale", 1, "divide the rekey runs' lifetimes and window by this (a quick look at the report; 1: as documented)")
	rekeyFrom := flag.String("rekey-from", "", "with -rekey-only: write the section from the results a run saved (its log names the file) instead of measuring")
	onlyRekey := flag.Bool("rekey-only", false, "measure the rekey spread and the checkpoint cost (needs -xdpsec, -rekey-sas) and rewrite only their section of README.md")
	pqSAs := flag.Int("pq-sas", 0, "IKE SAs per run of the post-quantum comparison (ours and charon 6, X25519 against the hybrids; needs -xdpsec); 0: not run")
	onlyPQ := flag.Bool("pq-only", false, "measure the post-quantum comparison (needs -xdpsec, -pq-sas) and rewrite only its section of README.md")
	flag.Parse()
	if *onlyVM {
		if *vmOut == "" {
			log.Fatal("-vm-only needs -vm")
		}
		if err := vmOnly(filepath.Join(*dir, "README.md"), *vmOut); err != nil {
			log.Fatal(err)
		}
		return
	}
	if *onlyKscale {
		if *kscaleOut == "" {
			log.Fatal("-kscale-only needs -kscale")
		}
		if err := kscaleOnly(filepath.Join(*dir, "README.md"), *kscaleOut); err != nil {
			log.Fatal(err)
		}
		return
	}
	if *onlyClients {
		if err := clientsOnly(filepath.Join(*dir, "README.md")); err != nil {
			log.Fatal(err)
		}
		return
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-sigs
		bench.Interrupted()
		os.Exit(130)
	}()
	if *onlyIKE {
		if *xdpsecBin == "" {
			log.Fatal("-ike-only needs -xdpsec")
		}
		bin, err := filepath.Abs(*xdpsecBin)
		if err != nil {
			log.Fatal(err)
		}
		if err := ikeOnly(filepath.Join(*dir, "README.md"), *ikeOut, *profDir, bin, *sas, *largeSAs); err != nil {
			log.Fatal(err)
		}
		return
	}
	if *onlyRekey {
		if *rekeyFrom == "" && (*xdpsecBin == "" || *rekeySAs <= 0) {
			log.Fatal("-rekey-only needs -xdpsec and -rekey-sas, or -rekey-from")
		}
		bin, err := filepath.Abs(*xdpsecBin)
		if err != nil {
			log.Fatal(err)
		}
		if err := rekeyOnly(filepath.Join(*dir, "README.md"), bin, *rekeySAs, *rekeyScale, *rekeyFrom); err != nil {
			log.Fatal(err)
		}
		return
	}
	if *onlyPQ {
		if *xdpsecBin == "" || *pqSAs <= 0 {
			log.Fatal("-pq-only needs -xdpsec and -pq-sas")
		}
		bin, err := filepath.Abs(*xdpsecBin)
		if err != nil {
			log.Fatal(err)
		}
		if err := pqOnly(filepath.Join(*dir, "README.md"), bin, *pqSAs); err != nil {
			log.Fatal(err)
		}
		return
	}
	if *onlyRA {
		if *xdpsecBin == "" {
			log.Fatal("-ra-only needs -xdpsec")
		}
		bin, err := filepath.Abs(*xdpsecBin)
		if err != nil {
			log.Fatal(err)
		}
		if err := raOnly(filepath.Join(*dir, "README.md"), bin, *raClients); err != nil {
			log.Fatal(err)
		}
		return
	}
	if err := run(*dir, *ikeOut, *vmOut, *profDir, *xdpsecBin, *sas, *largeSAs, *raClients, *rekeySAs, *pqSAs); err != nil {
		log.Fatal(err)
	}
}

func run(dir, ikeOut, vmOut, profDir, xdpsecBin string, sas, largeSAs, raClients, rekeySAs, pqSAs int) error {
	start, load := time.Now(), loadAvg()
	var ikeRes ikeReport
	var raRes *raReport
	var pqRes *pqReport
	var rekeyRes *rekeyReport
	if xdpsecBin != "" {
		bin, err := filepath.Abs(xdpsecBin)
		if err != nil {
			return err
		}
		if ikeRes, err = runIKE(bin, sas, largeSAs); err != nil {
			return err
		}
		if err := plotLoad(filepath.Join(dir, "ike_load.svg"), ikeRes.loads); err != nil {
			return err
		}
		r, err := runRA(bin, raClients)
		if err != nil {
			return err
		}
		raRes = &r
		ikeRes.raClients = raClients
		ikeRes.rekeySAs = rekeySAs
		ikeRes.pqSAs = pqSAs
		if pqSAs > 0 {
			r, err := runPQ(bin, pqSAs)
			if err != nil {
				return err
			}
			pqRes = &r
		}
		if rekeySAs > 0 {
			rr, err := runRekey(bin, rekeySAs, 1)
			if err != nil {
				return err
			}
			if err := plotRekeys(filepath.Join(dir, "rekey_spread.svg"), rr.runs); err != nil {
				return err
			}
			if err := plotRekeys(filepath.Join(dir, "rekey_steady.svg"), rr.steady); err != nil {
				return err
			}
			rekeyRes = &rr
		}
	}
	m := bench.ThisMachine()
	o := bench.DefaultOptions
	logR := func(r bench.Result) {
		log.Printf("%s, %s, %d SAs, %d policies: %.0f ns/pkt (floor %.0f)", r.Program, r.Case, r.SAs, r.Policies, r.Ns, r.FloorNs)
	}
	xs, err := bench.XDPWan(o, logR)
	if err != nil {
		return err
	}
	ts, err := bench.TCLan(o, logR)
	if err != nil {
		return err
	}
	logP := func(r bench.PolicyResult) {
		log.Printf("%d policies: kernel lookup %.0f ns, tc_lan lookup %.0f ns (setup %s)", r.Policies, r.KernelLookupNs(), r.TCLookupNs(), r.Setup.Round(time.Millisecond))
	}
	po := bench.DefaultPolicyOptions
	ps, err := bench.PolicyLookup(o, po, logP)
	psNote := ""
	if errors.Is(err, bench.ErrSetupBudget) {
		psNote, err = fmt.Sprintf("Stopped early: %v.\n", err), nil
	}
	if err != nil {
		return err
	}
	po.HThresh = [2]int{24, 16}
	hs, err := bench.PolicyLookup(o, po, logP)
	hsNote := ""
	if errors.Is(err, bench.ErrSetupBudget) {
		hsNote, err = fmt.Sprintf("Stopped early: %v.\n", err), nil
	}
	if err != nil {
		return err
	}

	cs, csTook, err := runClients()
	if err != nil {
		return err
	}
	var clientsSec bytes.Buffer
	writeClientsSection(&clientsSec, cs, m, time.Now(), csTook)

	if err := plotSAs(filepath.Join(dir, "xdp_wan.svg"), xs); err != nil {
		return err
	}
	if err := plotPolicies(filepath.Join(dir, "policy_lookup.svg"), ps, hs, ts); err != nil {
		return err
	}
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
	// The VM section: new from -vm, else kept from the README as it was.
	old, _ := os.ReadFile(filepath.Join(dir, "README.md"))
	vmSec := vmSection(old)
	// The remote-access section: new if it ran, else kept.
	raSec := raSection(old)
	if raRes != nil {
		var rb bytes.Buffer
		writeRASection(&rb, *raRes, m)
		raSec = rb.String()
	}
	// The post-quantum section: new if it ran, else kept.
	pqSec := pqSection(old)
	if pqRes != nil {
		var pb bytes.Buffer
		writePQSection(&pb, *pqRes, m)
		pqSec = pb.String()
	}
	// The rekey section: new if it ran, else kept.
	rekeySec := rekeySection(old)
	if rekeyRes != nil {
		var rb bytes.Buffer
		writeRekeySection(&rb, *rekeyRes, m)
		rekeySec = rb.String()
	}
	if vmOut != "" {
		f, err := os.Open(vmOut)
		if err != nil {
			return err
		}
		v, err := parseVMTransfer(f)
		f.Close()
		if err != nil {
			return err
		}
		var vb bytes.Buffer
		writeVMSection(&vb, v, m, time.Now())
		vmSec = vb.String()
	}
	var b bytes.Buffer
	writeReadme(&b, dir, m, start, load, time.Since(start), xs, ts, ps, psNote, hs, hsNote, clientsSec.String(), ike, prof, ikeRes)
	if raSec != "" {
		b.WriteString("\n" + raSec)
	}
	if pqSec != "" {
		b.WriteString("\n" + pqSec)
	}
	if rekeySec != "" {
		b.WriteString("\n" + rekeySec)
	}
	if vmSec != "" {
		b.WriteString("\n" + vmSec)
	}
	// The kernel bring-up section (make bench-kernel, which make bench
	// runs after this) is kept as it was.
	if sec := kscaleSection(old); sec != "" {
		b.WriteString("\n" + sec)
	}
	return os.WriteFile(filepath.Join(dir, "README.md"), b.Bytes(), 0o644)
}

func newPlot(title, x, y string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = x
	p.Y.Label.Text = y
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Legend.Top = true
	p.Legend.Left = true
	return p
}

func plotSAs(path string, xs []bench.Result) error {
	p := newPlot("xdp_wan cost vs SAs loaded (BPF_PROG_TEST_RUN, fastest round)", "SAs", "ns per packet")
	var cases []string
	byCase := map[string]plotter.XYs{}
	floor := plotter.XYs{}
	for _, r := range xs {
		if _, ok := byCase[r.Case]; !ok {
			cases = append(cases, r.Case)
		}
		byCase[r.Case] = append(byCase[r.Case], plotter.XY{X: float64(r.SAs), Y: r.Ns})
		if r.Case == xs[0].Case {
			floor = append(floor, plotter.XY{X: float64(r.SAs), Y: r.FloorNs})
		}
	}
	var args []any
	for _, c := range cases {
		args = append(args, c, byCase[c])
	}
	args = append(args, "floor (xdp_floor)", floor)
	if err := plotutil.AddLinePoints(p, args...); err != nil {
		return err
	}
	p.Y.Min = 0
	return p.Save(9*vg.Inch, 5*vg.Inch, path)
}

func plotPolicies(path string, def, hashed []bench.PolicyResult, tc []bench.Result) error {
	p := newPlot("Policy lookup cost vs policies (same policy set)", "policies", "ns per packet")
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	var k, h, t, tAll plotter.XYs
	for _, r := range def {
		k = append(k, plotter.XY{X: float64(r.Policies), Y: max(r.KernelLookupNs(), 1)})
		t = append(t, plotter.XY{X: float64(r.Policies), Y: max(r.TCLookupNs(), 1)})
	}
	for _, r := range hashed {
		h = append(h, plotter.XY{X: float64(r.Policies), Y: max(r.KernelLookupNs(), 1)})
	}
	for _, r := range tc {
		tAll = append(tAll, plotter.XY{X: float64(r.Policies), Y: r.Ns})
	}
	if err := plotutil.AddLinePoints(p,
		"kernel XFRM lookup (send with policies - without), hthresh4 32 32 (default)", k,
		"kernel XFRM lookup, hthresh4 24 16 (set hashed)", h,
		"tc_lan lookup (tc_lan - floor)", t,
		"tc_lan whole program", tAll); err != nil {
		return err
	}
	return p.Save(9*vg.Inch, 5*vg.Inch, path)
}

func writeReadme(b *bytes.Buffer, dir string, m bench.Machine, start time.Time, load string, took time.Duration,
	xs, ts []bench.Result, ps []bench.PolicyResult, psNote string, hs []bench.PolicyResult, hsNote string, clientsSec string, ike []byte, prof profReport, ir ikeReport) {
	p := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	p("# Benchmarks\n\n")
	cmd := "go run ./bench/mkreport -dir " + dir
	if len(ike) > 0 {
		cmd += " -ike <IKE go test output>"
	}
	if ir.ran {
		cmd += fmt.Sprintf(" -xdpsec bin/xdpsec -sas %d -large-sas %d -ra-clients %d -rekey-sas %d -pq-sas %d", ir.sas, ir.largeSAs, ir.raClients, ir.rekeySAs, ir.pqSAs)
	}
	p("Generated by `make bench` (`%s`), %s, in %s.\n\n", cmd, start.UTC().Format("2006-01-02 15:04 MST"), took.Round(time.Second))
	p("Machine: %s.", m)
	if load != "" {
		p(" Load average at the start (other work shares the machine): %s.", load)
	}
	p("\n\n")
	p("The same measurements print as tables with `xdpsec bench [xdp|policy|clients|ike|ra|flood|all]`; with\n")
	p("`--wan IF` it instead reads the programs attached to IF under your own traffic\n")
	p("generator (counters and `kernel.bpf_stats_enabled` run times) and prints Mpps and\n")
	p("ns/packet. The go test benchmarks (`go test -run '^$' -bench . -benchtime 1x ./bench/`)\n")
	p("call the same functions (package `bench`).\n\n")
	p("On a shared machine, every figure is the fastest of several rounds, and the\n")
	p("BPF figures are timed by the kernel (`BPF_PROG_TEST_RUN`: setup excluded, the\n")
	p("clock stopped while the thread is scheduled away).\n\n")

	p("## Dataplane: per-packet cost of the BPF programs\n\n")
	p("Each program runs through `BPF_PROG_TEST_RUN` with %s repeats, the kernel\n", fmtInt(bench.DefaultOptions.Repeats))
	p("reporting whole nanoseconds per run. In the same rounds, the same packet goes\n")
	p("through `xdp_floor`, a bare count-and-pass XDP program: the floor any XDP program\n")
	p("pays in this harness. Each figure is the fastest of %d interleaved rounds.\n\n", bench.DefaultOptions.Rounds)
	p("![xdp_wan cost vs SAs](xdp_wan.svg)\n\n")
	bench.WriteXDPTable(b, xs)
	p("\n")
	bench.WriteTCTable(b, ts)
	p("\n")
	p("What the cases are:\n")
	p("- SA hit: ESP to our address with the SPI of the last SA loaded. SAs the daemon\n")
	p("  creates get SPIs from the allocated range (`--spi-base`, by default 0xc0000000\n")
	p("  like strongSwan's `spi_min`), so `xdp_wan` finds them by array index.\n")
	p("- SA miss: an SPI inside the allocated range whose slot is empty (the range has\n")
	p("  16 slots more than SAs loaded); SPI outside the range: dropped without a lookup\n")
	p("  when no foreign SAs are loaded.\n")
	p("- Foreign SPI: SAs added with SPIs outside the range (by hand, or by another IKE\n")
	p("  daemon) are found in a window of 4 slots of an array indexed by a hash of the\n")
	p("  SPI (`sa_foreign`); here all n SAs are foreign. The miss is an SPI none has.\n")
	p("- IKE_SA_INIT: a request to port 500, with the per-source policer off and on\n")
	p("  (admitting: bucket by source hash, jiffies, compare-and-swap). The SA count\n")
	p("  does not enter.\n")
	p("- tc_lan policies: a hub's set, its LAN (172.16.0.0/16) to n remote /24s, each\n")
	p("  PROTECT with its own if_id; the packet is for the last policy added. The last\n")
	p("  column compares with the smallest set, measured in the same rounds.\n\n")

	p("## Policy lookup: tc_lan against the kernel's XFRM policy lookup\n\n")
	p("The same policy set as above (172.16.0.0/16 to n /24s) is installed as kernel\n")
	p("XFRM policies (dir out, action allow, no templates) in a throwaway network\n")
	p("namespace. A UDP socket, unconnected so that nothing is cached in it, sends\n")
	p("%s datagrams per batch to the last-inserted policy's /24, routed out of a veth;\n", fmtInt(bench.DefaultPolicyOptions.Sends))
	p("the thread's CPU time per send is taken over the batch, fastest of %d batches,\n", bench.DefaultPolicyOptions.Batches)
	p("interleaved with the same sends in a namespace with no XFRM policy at all\n")
	p("(where the kernel skips the policy lookup), and with one policy that does not\n")
	p("match. The difference to no policies is what the kernel's policy lookup costs\n")
	p("(\"kernel lookup\"); the difference to one other policy (\"of which search\")\n")
	p("leaves out what turning the policy machinery on costs whatever the policies.\n")
	p("A test checks that the datagrams do hit the\n")
	p("last policy (made a block policy, it refuses the send). tc_lan's lookup is its\n")
	p("`BPF_PROG_TEST_RUN` cost minus the floor's, on the same set.\n\n")
	p("![policy lookup cost vs policies](policy_lookup.svg)\n\n")
	p("Kernel defaults (`hthresh4 32 32`): only /32-to-/32 selectors are hashed; these\n")
	p("/16-to-/24 selectors are inexact policies, which Linux (since 5.0) keeps in\n")
	p("trees of bins by destination and source prefix, walking each candidate bin's\n")
	p("list:\n\n")
	bench.WritePolicyTable(b, ps)
	p("%s\n", psNote)
	p("With `ip xfrm policy set hthresh4 24 16` (selectors at least /24 to /16 are\n")
	p("hashed, so this whole set goes into the hash table):\n\n")
	bench.WritePolicyTable(b, hs)
	p("%s\n", hsNote)
	p("Setup (installing the kernel policies one netlink request each, cumulative): ")
	for i, r := range ps {
		if i > 0 {
			p(", ")
		}
		p("%s in %s", fmtInt(r.Policies), r.Setup.Round(time.Millisecond))
	}
	p(".\n\n")
	p("%s\n", clientsSec)

	writeIKESections(b, m, ike, prof, ir, took)
}

func fmtInt(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func plotLoad(path string, ls []bench.LoadPoint) error {
	p := newPlot("IKE SAs established per second vs offered load (same machine, same initiators)", "offered IKE SAs per second", "established per second")
	var ours, charon, offered plotter.XYs
	for _, l := range ls {
		pt := plotter.XY{X: l.Offered, Y: l.Established}
		if l.Responder == bench.Charon {
			charon = append(charon, pt)
		} else {
			ours = append(ours, pt)
			offered = append(offered, plotter.XY{X: l.Offered, Y: l.Offered})
		}
	}
	if err := plotutil.AddLinePoints(p, "xdpsec daemon (dry-run)", ours, "charon (kernel-libipsec)", charon, "offered", offered); err != nil {
		return err
	}
	p.Y.Min = 0
	return p.Save(9*vg.Inch, 5*vg.Inch, path)
}
