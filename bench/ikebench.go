package bench

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/xdpsec/xdpsec/maps"
)

// IKE establishment rate, CPU and memory per SA of our responder against
// charon's, and legitimate establishments under an IKE_SA_INIT flood.
//
// Each run builds its own network (ikenet.go), starts one responder in
// the responder namespace and the load generator (loadgen.go) in this
// process. Responder CPU (utime + stime of all its threads) and memory
// (VmRSS, VmHWM) come from /proc.

// IKEOptions tune the IKE comparison.
type IKEOptions struct {
	// Bin is the xdpsec binary our responder runs as.
	Bin string
	// SAs is how many IKE SAs (one CHILD_SA each) a run opens.
	SAs int
	// Window is how many establishments the generator keeps in flight.
	Window int
	// Responders and Proposals to run; each pair is a run.
	Responders []ResponderKind
	Proposals  []Proposal
	// Loads are the offered loads (IKE SAs initiated per second) of the
	// rate-vs-load curve, each offered for LoadDuration, with the first
	// proposal; none skips the curve.
	Loads        []float64
	LoadDuration time.Duration
}

// DefaultIKEOptions are what `make bench` uses.
var DefaultIKEOptions = IKEOptions{
	SAs: 10_000, Window: 64,
	Responders: []ResponderKind{Ours, Charon}, Proposals: BenchProposals,
	Loads:        []float64{100, 200, 400, 800, 1600},
	LoadDuration: 3 * time.Second,
}

// IKEResult is one responder's run with one proposal.
type IKEResult struct {
	Responder ResponderKind
	Proposal  Proposal
	SAs       int
	Elapsed   time.Duration
	// CPU is the responder's CPU time (user + system) over the run.
	CPU time.Duration
	// IdleRSS is its resident memory before the run, HWM its peak
	// resident memory after it.
	IdleRSS, HWM int64
	// GenCPU is the load generator's CPU time (this process) over the
	// run: it shares the machine with the responder.
	GenCPU time.Duration
	// Tenths are the times from the start at which each further tenth
	// of the SAs was established.
	Tenths []time.Duration
}

// TenthRate is the establishment rate over the i-th tenth of the SAs
// (0: the first, 9: the last), 0 if not measured.
func (r IKEResult) TenthRate(i int) float64 {
	if i < 0 || i >= len(r.Tenths) {
		return 0
	}
	d := r.Tenths[i]
	if i > 0 {
		d -= r.Tenths[i-1]
	}
	if d <= 0 {
		return 0
	}
	return float64(r.SAs) / 10 / d.Seconds()
}

// GenCPUPerSA is the generator's CPU milliseconds per IKE SA.
func (r IKEResult) GenCPUPerSA() float64 { return r.GenCPU.Seconds() * 1000 / float64(r.SAs) }

// Rate is IKE SAs (with their CHILD_SA) established per second.
func (r IKEResult) Rate() float64 { return float64(r.SAs) / r.Elapsed.Seconds() }

// CPUPerSA is the responder's CPU milliseconds per IKE SA.
func (r IKEResult) CPUPerSA() float64 { return r.CPU.Seconds() * 1000 / float64(r.SAs) }

// RSSPer10k is the peak resident memory the SAs added, per 10,000 IKE SAs, in MiB.
func (r IKEResult) RSSPer10k() float64 {
	return float64(r.HWM-r.IdleRSS) / float64(r.SAs) * 10_000 / (1 << 20)
}

// LoadPoint is one offered load of the rate-vs-load curve.
type LoadPoint struct {
	Responder ResponderKind
	// Offered is the load asked for, Initiated what the generator managed
	// (IKE SAs initiated per second).
	Offered, Initiated float64
	// Established is IKE SAs established per second during the window.
	Established float64
}

// RequireIKE says why the IKE benchmarks cannot run here, or nil.
func RequireIKE(kinds []ResponderKind) error {
	if os.Geteuid() != 0 {
		return errors.New("needs root")
	}
	for _, c := range []string{"ip", "nsenter", "unshare"} {
		if _, err := exec.LookPath(c); err != nil {
			return fmt.Errorf("needs %s: %w", c, err)
		}
	}
	for _, k := range kinds {
		if k != Charon {
			continue
		}
		for _, p := range []string{CharonPath, SwanctlPath, "/dev/net/tun"} {
			if _, err := os.Stat(p); err != nil {
				return fmt.Errorf("charon needs %s (`make deps` installs strongSwan): %w", p, err)
			}
		}
	}
	return nil
}

// startResponder starts a responder of the kind in the network's
// responder namespace.
func startResponder(kind ResponderKind, bin string, n *ikeNet, s respSettings) (*responder, error) {
	if kind == Charon {
		return startCharon(n.resp, s)
	}
	return startOurs(bin, n.resp, s)
}

// IKE runs the comparison: for each responder and proposal, SAs IKE SAs
// as fast as the responder takes them, then (first proposal) the offered
// loads. progress, if set, is told about each step.
func IKE(o IKEOptions, progress func(string)) ([]IKEResult, []LoadPoint, error) {
	if progress == nil {
		progress = func(string) {}
	}
	if err := RequireIKE(o.Responders); err != nil {
		return nil, nil, fmt.Errorf("bench ike: %w", err)
	}
	var rs []IKEResult
	var ls []LoadPoint
	for _, kind := range o.Responders {
		for i, p := range o.Proposals {
			r, l, err := ikeRun(o, kind, p, i == 0, progress)
			if err != nil {
				return rs, ls, fmt.Errorf("bench ike: %s, %s: %w", kind, p.IKE, err)
			}
			rs = append(rs, r)
			ls = append(ls, l...)
		}
	}
	return rs, ls, nil
}

func ikeRun(o IKEOptions, kind ResponderKind, p Proposal, curve bool, progress func(string)) (IKEResult, []LoadPoint, error) {
	res := IKEResult{Responder: kind, Proposal: p, SAs: o.SAs}
	n, err := newIKENet()
	if err != nil {
		return res, nil, err
	}
	defer n.close()
	resp, err := startResponder(kind, o.Bin, n, respSettings{proposal: p, cookieThreshold: -1})
	if err != nil {
		return res, nil, err
	}
	defer resp.stop()
	g, err := newLoadGen(n.gen)
	if err != nil {
		return res, nil, err
	}
	defer g.close()
	before, err := readProc(resp.pid)
	if err != nil {
		return res, nil, err
	}
	genBefore, err := readProc(os.Getpid())
	if err != nil {
		return res, nil, err
	}
	res.Elapsed, err = g.closedLoop(p, o.SAs, o.Window, 15*time.Second, &res.Tenths)
	if err != nil {
		return res, nil, fmt.Errorf("%w; %s's log ends:\n%s", err, kind, resp.logTail())
	}
	after, err := readProc(resp.pid)
	if err != nil {
		return res, nil, err
	}
	genAfter, err := readProc(os.Getpid())
	if err != nil {
		return res, nil, err
	}
	res.GenCPU = genAfter.CPU - genBefore.CPU
	if f := g.failed.Load(); f > 0 {
		return res, nil, fmt.Errorf("%d of %d IKE SAs failed", f, o.SAs)
	}
	res.CPU, res.IdleRSS, res.HWM = after.CPU-before.CPU, before.RSS, after.HWM
	progress(fmt.Sprintf("%s, %s: %d IKE SAs in %s, %.0f/s, %.2f CPU-ms/SA, %.1f MiB per 10k SAs",
		kind, p.IKE, o.SAs, res.Elapsed.Round(time.Millisecond), res.Rate(), res.CPUPerSA(), res.RSSPer10k()))
	if !curve {
		return res, nil, nil
	}
	var ls []LoadPoint
	for _, load := range o.Loads {
		base := g.established.Load() + g.failed.Load()
		init, est, err := g.openLoop(p, load, o.LoadDuration)
		if err != nil {
			return res, ls, err
		}
		pt := LoadPoint{Responder: kind, Offered: load, Initiated: float64(init) / o.LoadDuration.Seconds(),
			Established: float64(est) / o.LoadDuration.Seconds()}
		ls = append(ls, pt)
		progress(fmt.Sprintf("%s, offered %.0f/s (initiated %.0f/s): %.0f established/s", kind, load, pt.Initiated, pt.Established))
		g.settle(init, base, 5*time.Second)
	}
	return res, ls, nil
}

// FloodOptions tune the IKE_SA_INIT flood.
type FloodOptions struct {
	Bin      string
	Proposal Proposal
	// Capacity is our responder's establishment rate without a flood
	// (IKE SAs per second); zero measures it first, with CapacitySAs.
	Capacity    float64
	CapacitySAs int
	// Factor times Capacity is the flood's rate (spoofed IKE_SA_INIT
	// requests per second), from Sources spoofed addresses.
	Factor  float64
	Sources int
	// Legit times Capacity is the legitimate load offered during the
	// flood, each IKE SA from an address of its own, for Duration.
	Legit    float64
	Duration time.Duration
	// CookieThreshold is the daemon's cookie_threshold where cookies are
	// on (off: -1).
	CookieThreshold int
	// PolicerRate and PolicerBurst are xdp_wan's per-source limit where
	// the policer is on.
	PolicerRate, PolicerBurst uint
}

// DefaultFloodOptions are what `make bench` uses.
var DefaultFloodOptions = FloodOptions{
	Proposal: BenchProposals[0], CapacitySAs: 2000,
	Factor: 10, Sources: 64, Legit: 0.25, Duration: 5 * time.Second,
	CookieThreshold: 30, PolicerRate: 2, PolicerBurst: 4,
}

// FloodResult is one configuration under the flood.
type FloodResult struct {
	Name             string
	Flood            bool
	Cookies, Policer bool
	// FloodRate is the spoofed requests sent per second, LegitOffered the
	// legitimate IKE SAs initiated per second.
	FloodRate, LegitOffered float64
	// Established is legitimate IKE SAs established per second.
	Established float64
	// Challenges is COOKIE challenges the legitimate initiators got,
	// PolicerDrops the requests xdp_wan dropped over their source's rate.
	Challenges, PolicerDrops uint64
	// CPU is the responder's CPU time per second of the window.
	CPU float64
}

// Flood measures legitimate establishments per second with no flood (the
// reference), and under the flood with neither defence, cookies, the
// XDP policer, and both. It returns the capacity it used.
func Flood(o FloodOptions, progress func(string)) ([]FloodResult, float64, error) {
	if progress == nil {
		progress = func(string) {}
	}
	if err := RequireIKE(nil); err != nil {
		return nil, 0, fmt.Errorf("bench flood: %w", err)
	}
	if o.Capacity == 0 {
		r, _, err := ikeRun(IKEOptions{Bin: o.Bin, SAs: o.CapacitySAs, Window: 64}, Ours, o.Proposal, false, progress)
		if err != nil {
			return nil, 0, fmt.Errorf("bench flood: capacity: %w", err)
		}
		o.Capacity = r.Rate()
	}
	var rs []FloodResult
	for _, c := range []struct {
		name                    string
		flood, cookies, policer bool
	}{
		{"no flood (reference)", false, false, false},
		{"flood, no defence", true, false, false},
		{"flood, cookies", true, true, false},
		{"flood, XDP policer", true, false, true},
		{"flood, cookies + XDP policer", true, true, true},
	} {
		r := FloodResult{Name: c.name, Flood: c.flood, Cookies: c.cookies, Policer: c.policer}
		if err := floodRun(o, &r); err != nil {
			return rs, o.Capacity, fmt.Errorf("bench flood: %s: %w", c.name, err)
		}
		progress(fmt.Sprintf("%s: flood %.0f/s, legitimate offered %.0f/s, established %.0f/s, %d cookie challenges, %d policer drops",
			c.name, r.FloodRate, r.LegitOffered, r.Established, r.Challenges, r.PolicerDrops))
		rs = append(rs, r)
	}
	return rs, o.Capacity, nil
}

func floodRun(o FloodOptions, r *FloodResult) error {
	n, err := newIKENet()
	if err != nil {
		return err
	}
	defer n.close()
	threshold := -1
	if r.Cookies {
		threshold = o.CookieThreshold
	}
	resp, err := startResponder(Ours, o.Bin, n, respSettings{proposal: o.Proposal, cookieThreshold: threshold})
	if err != nil {
		return err
	}
	defer resp.stop()
	var pins string
	if r.Policer {
		// xdpsec load makes the directory, mounting bpffs first where a
		// fresh machine has none on /sys/fs/bpf yet.
		pins = fmt.Sprintf("/sys/fs/bpf/xdpsec-bench-%08x", rand.Uint32())
		leftovers.Store(pins, func() { os.RemoveAll(pins) })
		defer func() { os.RemoveAll(pins); leftovers.Delete(pins) }()
		if err := n.resp.run(o.Bin, "--pin-dir", pins, "load", "--wan", "resp0",
			"--ike-rate", strconv.FormatUint(uint64(o.PolicerRate), 10), "--ike-burst", strconv.FormatUint(uint64(o.PolicerBurst), 10)); err != nil {
			return fmt.Errorf("policer: %w", err)
		}
		defer n.resp.run(o.Bin, "--pin-dir", pins, "unload")
	}
	g, err := newLoadGen(n.gen)
	if err != nil {
		return err
	}
	defer g.close()
	var f *flooder
	if r.Flood {
		if f, err = newFlooder(n.gen, o.Proposal, o.Sources); err != nil {
			return err
		}
		defer f.close()
		f.start(o.Capacity * o.Factor)
		// Let the flood fill the responder's half-open table first.
		time.Sleep(time.Second)
	}
	sent0 := int64(0)
	if f != nil {
		sent0 = f.sent.Load()
	}
	before, err := readProc(resp.pid)
	if err != nil {
		return err
	}
	start := time.Now()
	init, est, err := g.openLoop(o.Proposal, o.Capacity*o.Legit, o.Duration)
	if err != nil {
		return err
	}
	el := time.Since(start)
	after, err := readProc(resp.pid)
	if err != nil {
		return err
	}
	if f != nil {
		r.FloodRate = float64(f.sent.Load()-sent0) / el.Seconds()
		f.halt()
	}
	r.LegitOffered = float64(init) / o.Duration.Seconds()
	r.Established = float64(est) / o.Duration.Seconds()
	r.Challenges = uint64(g.cookies.Load())
	r.CPU = (after.CPU - before.CPU).Seconds() / el.Seconds()
	if r.Policer {
		s, err := maps.OpenPinned(pins)
		if err != nil {
			return fmt.Errorf("policer counters: %w", err)
		}
		cs, err := s.Counters.Read()
		s.Close()
		if err != nil {
			return fmt.Errorf("policer counters: %w", err)
		}
		for _, c := range cs {
			if c.Name == "ike_ratelimit" {
				r.PolicerDrops = c.Packets
			}
		}
	}
	return nil
}

// ResponderLabel names a responder kind for tables.
func ResponderLabel(k ResponderKind) string {
	if k == Charon {
		return "charon 5.9 (kernel-libipsec)"
	}
	return "xdpsec daemon (dry-run)"
}

// CharonVersion is the installed strongswan-charon package's version,
// "" if dpkg does not know it.
func CharonVersion() string {
	out, err := exec.Command("dpkg-query", "-W", "-f=${Version}", "strongswan-charon").Output()
	if err != nil {
		return ""
	}
	return "strongswan-charon " + strings.TrimSpace(string(out))
}
