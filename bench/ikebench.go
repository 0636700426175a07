package bench

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
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
	// rate-vs-load curve, each offered for LoadDuration to a fresh
	// responder (Ours and Charon only), with the first proposal; none
	// skips the curve.
	Loads        []float64
	LoadDuration time.Duration
}

// DefaultIKEOptions are what `make bench` uses.
var DefaultIKEOptions = IKEOptions{
	SAs: 10_000, Window: 64,
	Responders: []ResponderKind{Ours, OursState, CharonLT, Charon}, Proposals: BenchProposals,
	Loads:        []float64{100, 200, 400, 800, 1600, 3200},
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
	// of the SAs was established, TenthCPU the responder's CPU time from
	// the start to each of them.
	Tenths, TenthCPU []time.Duration
	// StateBytes is the size of our state file after the run (0 where
	// there is none).
	StateBytes int64
	// FakeKernel says charon held no NETLINK_XFRM socket after the run:
	// its kernel-ipsec was load-tester's fake, not kernel-netlink's.
	FakeKernel bool
	// AdditionalKE is how many IKE SAs the initiators saw selected with
	// an additional key exchange (RFC 9370).
	AdditionalKE int
	// Retransmits is how many requests the initiators sent again.
	Retransmits int
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

// EarlyRate and EarlyCPUPerSA are the establishment rate and the
// responder's CPU milliseconds per IKE SA from the first tenth of the SAs
// done to the third (10% to 30%): early in the run, with few SAs held,
// but past the start, and with about as many SAs in flight at both ends
// (their partial work cancels out). 0 if not measured.
func (r IKEResult) EarlyRate() float64 {
	if len(r.Tenths) < 3 || r.Tenths[2] <= r.Tenths[0] {
		return 0
	}
	return float64(r.SAs) * 2 / 10 / (r.Tenths[2] - r.Tenths[0]).Seconds()
}

func (r IKEResult) EarlyCPUPerSA() float64 {
	if len(r.TenthCPU) < 3 || r.SAs < 10 {
		return 0
	}
	return (r.TenthCPU[2] - r.TenthCPU[0]).Seconds() * 1000 / (float64(r.SAs) * 2 / 10)
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
		if k == CharonLT {
			if err := requireCharonLT(); err != nil {
				return err
			}
			continue
		}
		if k == Charon6 {
			if err := requireCharon6(); err != nil {
				return err
			}
			continue
		}
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
	switch kind {
	case Charon, CharonLT:
		return startCharon(n.resp, s, kind == CharonLT)
	case Charon6:
		return startCharon6(n.resp, s)
	case OursState:
		s.stateOn = true
	}
	return startOurs(bin, n.resp, s)
}

// IKE runs the comparison: for each responder and proposal, SAs IKE SAs
// as fast as the responder takes them, then (first proposal) each of the
// offered loads on a responder of its own. progress, if set, is told
// about each step.
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
		for _, p := range o.Proposals {
			r, err := ikeRun(o, kind, p, progress)
			if err != nil {
				return rs, ls, fmt.Errorf("bench ike: %s, %s: %w", kind, p.IKE, err)
			}
			rs = append(rs, r)
		}
		if len(o.Proposals) == 0 || (kind != Ours && kind != Charon) {
			continue
		}
		for _, load := range o.Loads {
			pt, err := loadPoint(o, kind, o.Proposals[0], load)
			if err != nil {
				return rs, ls, fmt.Errorf("bench ike: %s, offered %.0f/s: %w", kind, load, err)
			}
			progress(fmt.Sprintf("%s, offered %.0f/s (initiated %.0f/s): %.0f established/s", kind, load, pt.Initiated, pt.Established))
			ls = append(ls, pt)
		}
	}
	return rs, ls, nil
}

// ikeBed is a fresh network with a responder in it and the load
// generator in front of it.
type ikeBed struct {
	n    *ikeNet
	resp *responder
	g    *loadGen
}

func newIKEBed(kind ResponderKind, bin string, s respSettings) (*ikeBed, error) {
	return newIKEBedGen(kind, bin, s, pskGen)
}

// newIKEBedGen is newIKEBed with the generator's initiators as go says.
func newIKEBedGen(kind ResponderKind, bin string, s respSettings, gen genOptions) (*ikeBed, error) {
	n, err := newIKENet()
	if err != nil {
		return nil, err
	}
	resp, err := startResponder(kind, bin, n, s)
	if err != nil {
		n.close()
		return nil, err
	}
	g, err := newLoadGen(n.gen, gen)
	if err != nil {
		resp.stop()
		n.close()
		return nil, err
	}
	return &ikeBed{n: n, resp: resp, g: g}, nil
}

func (b *ikeBed) close() {
	b.g.close()
	b.resp.stop()
	b.n.close()
}

func ikeRun(o IKEOptions, kind ResponderKind, p Proposal, progress func(string)) (IKEResult, error) {
	res := IKEResult{Responder: kind, Proposal: p, SAs: o.SAs}
	b, err := newIKEBed(kind, o.Bin, respSettings{proposal: p, cookieThreshold: -1})
	if err != nil {
		return res, err
	}
	defer b.close()
	before, err := readProc(b.resp.pid)
	if err != nil {
		return res, err
	}
	genBefore, err := readProc(os.Getpid())
	if err != nil {
		return res, err
	}
	b.g.atMark = func() {
		if u, err := readProc(b.resp.pid); err == nil {
			res.TenthCPU = append(res.TenthCPU, u.CPU-before.CPU)
		}
	}
	res.Elapsed, err = b.g.closedLoop(p, o.SAs, o.Window, 15*time.Second, &res.Tenths)
	if err != nil {
		return res, fmt.Errorf("%w; %s's log ends:\n%s", err, kind, b.resp.logTail())
	}
	after, err := readProc(b.resp.pid)
	if err != nil {
		return res, err
	}
	genAfter, err := readProc(os.Getpid())
	if err != nil {
		return res, err
	}
	res.GenCPU = genAfter.CPU - genBefore.CPU
	if f := b.g.failed.Load(); f > 0 {
		return res, fmt.Errorf("%d of %d IKE SAs failed; %s's log ends:\n%s", f, o.SAs, kind, b.resp.logTail())
	}
	res.CPU, res.IdleRSS, res.HWM = after.CPU-before.CPU, before.RSS, after.HWM
	// Every IKE SA ran the proposal's additional key exchanges, or none
	// did: the generator offers that one proposal only.
	res.AdditionalKE = int(b.g.additionalKE.Load())
	res.Retransmits = int(b.g.retransmits.Load())
	if want := hasAdditionalKE(p); (want && res.AdditionalKE != o.SAs) || (!want && res.AdditionalKE != 0) {
		return res, fmt.Errorf("%d of %d IKE SAs selected a proposal with an additional key exchange, offered %s", res.AdditionalKE, o.SAs, p.IKE)
	}
	if fi, err := os.Stat(filepath.Join(b.resp.dir, "state")); err == nil && kind == OursState {
		res.StateBytes = fi.Size()
	}
	if kind.IsCharon() {
		xfrm, err := holdsXFRMSocket(b.resp.pid)
		if err != nil {
			return res, err
		}
		res.FakeKernel = !xfrm
	}
	progress(fmt.Sprintf("%s, %s: %d IKE SAs in %s, %.0f/s, %.2f CPU-ms/SA, %.1f MiB per 10k SAs, %d retransmits",
		kind, p.IKE, o.SAs, res.Elapsed.Round(time.Millisecond), res.Rate(), res.CPUPerSA(), res.RSSPer10k(), res.Retransmits))
	return res, nil
}

// loadPoint offers load IKE SAs per second for o.LoadDuration to a
// responder of its own, which starts with no SAs: each point of the
// curve is the responder's answer to that load alone, not to it on top
// of what earlier runs left.
func loadPoint(o IKEOptions, kind ResponderKind, p Proposal, load float64) (LoadPoint, error) {
	pt := LoadPoint{Responder: kind, Offered: load}
	b, err := newIKEBed(kind, o.Bin, respSettings{proposal: p, cookieThreshold: -1})
	if err != nil {
		return pt, err
	}
	defer b.close()
	init, est, err := b.g.openLoop(p, load, o.LoadDuration)
	if err != nil {
		return pt, err
	}
	pt.Initiated, pt.Established = float64(init)/o.LoadDuration.Seconds(), float64(est)/o.LoadDuration.Seconds()
	return pt, nil
}

// FloodOptions tune the IKE_SA_INIT flood.
type FloodOptions struct {
	Bin      string
	Proposal Proposal
	// Responders are flooded one after the other, each with the same
	// flood and legitimate load.
	Responders []ResponderKind
	// Capacity is our responder's establishment rate without a flood
	// (IKE SAs per second); zero measures it first, with CapacitySAs.
	// It sets the loads for every responder.
	Capacity    float64
	CapacitySAs int
	// Factor times Capacity is the flood's rate (spoofed IKE_SA_INIT
	// requests per second), from Sources spoofed addresses, or from
	// WideSources in the wide flood, which spreads it so thin that each
	// source stays under the policer's rate.
	Factor               float64
	Sources, WideSources int
	// Legit times Capacity is the legitimate load offered during the
	// flood, each IKE SA from an address of its own, for Duration.
	Legit    float64
	Duration time.Duration
	// CookieThreshold is the responder's cookie_threshold where cookies
	// are on (off: -1).
	CookieThreshold int
	// CharonBlockThreshold is the block_threshold (half-open IKE SAs
	// per source address) in the rows that turn it on, charon's only;
	// otherwise both responders run with 1000 where cookies are on, and
	// with none where they are off (respSettings.block).
	CharonBlockThreshold int
	// PolicerRate and PolicerBurst are xdp_wan's per-source limit where
	// the policer is on.
	PolicerRate, PolicerBurst uint
}

// DefaultFloodOptions are what `make bench` uses.
var DefaultFloodOptions = FloodOptions{
	Proposal: BenchProposals[0], Responders: []ResponderKind{Ours, Charon}, CapacitySAs: 2000,
	Factor: 10, Sources: 64, WideSources: 65_000, Legit: 0.25, Duration: 5 * time.Second,
	CookieThreshold: 30, CharonBlockThreshold: 5, PolicerRate: 2, PolicerBurst: 4,
}

// FloodResult is one configuration under the flood.
type FloodResult struct {
	Responder ResponderKind
	Name      string
	Flood     bool
	// Sources is how many spoofed addresses the flood came from; Wide
	// says the wide flood.
	Sources          int
	Wide             bool
	Cookies, Policer bool
	// Blocking is charon's block_threshold on.
	Blocking bool
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

// floodConfigs are the configurations each responder is flooded in:
// first without a flood (the reference), then with none, each and all of
// its defences. xdp_wan's policer sits in front of charon as it does in
// front of ours: it needs nothing from the IKE daemon behind it.
func floodConfigs(kind ResponderKind) []FloodResult {
	if kind == Charon {
		return []FloodResult{
			{Name: "no flood (reference)"},
			{Name: "flood, no defence", Flood: true},
			{Name: "flood, cookies", Flood: true, Cookies: true},
			{Name: "flood, cookies + block_threshold", Flood: true, Cookies: true, Blocking: true},
			{Name: "flood, cookies + block_threshold + XDP policer", Flood: true, Cookies: true, Blocking: true, Policer: true},
			{Name: "wide flood, cookies + block_threshold", Flood: true, Wide: true, Cookies: true, Blocking: true},
		}
	}
	return []FloodResult{
		{Name: "no flood (reference)"},
		{Name: "flood, no defence", Flood: true},
		{Name: "flood, cookies", Flood: true, Cookies: true},
		{Name: "flood, XDP policer", Flood: true, Policer: true},
		{Name: "flood, cookies + XDP policer", Flood: true, Cookies: true, Policer: true},
		{Name: "wide flood, XDP policer", Flood: true, Wide: true, Policer: true},
		{Name: "wide flood, cookies + XDP policer", Flood: true, Wide: true, Cookies: true, Policer: true},
	}
}

// Flood measures, for each responder, legitimate establishments per
// second with no flood (the reference) and under the flood with its
// defences off and on. It returns the capacity it used.
func Flood(o FloodOptions, progress func(string)) ([]FloodResult, float64, error) {
	if progress == nil {
		progress = func(string) {}
	}
	if err := RequireIKE(o.Responders); err != nil {
		return nil, 0, fmt.Errorf("bench flood: %w", err)
	}
	if o.Capacity == 0 {
		r, err := ikeRun(IKEOptions{Bin: o.Bin, SAs: o.CapacitySAs, Window: 64}, Ours, o.Proposal, progress)
		if err != nil {
			return nil, 0, fmt.Errorf("bench flood: capacity: %w", err)
		}
		o.Capacity = r.Rate()
	}
	var rs []FloodResult
	for _, kind := range o.Responders {
		for _, r := range floodConfigs(kind) {
			r.Responder = kind
			if err := floodRun(o, &r); err != nil {
				return rs, o.Capacity, fmt.Errorf("bench flood: %s, %s: %w", kind, r.Name, err)
			}
			progress(fmt.Sprintf("%s, %s: flood %.0f/s, legitimate offered %.0f/s, established %.0f/s, %d cookie challenges, %d policer drops",
				kind, r.Name, r.FloodRate, r.LegitOffered, r.Established, r.Challenges, r.PolicerDrops))
			rs = append(rs, r)
		}
	}
	return rs, o.Capacity, nil
}

func floodRun(o FloodOptions, r *FloodResult) error {
	s := respSettings{proposal: o.Proposal, cookieThreshold: -1}
	if r.Cookies {
		s.cookieThreshold = o.CookieThreshold
	}
	if r.Blocking {
		s.blockThreshold = o.CharonBlockThreshold
	}
	b, err := newIKEBed(r.Responder, o.Bin, s)
	if err != nil {
		return err
	}
	defer b.close()
	n, resp, g := b.n, b.resp, b.g
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
	var f *flooder
	if r.Flood {
		r.Sources = o.Sources
		if r.Wide {
			r.Sources = o.WideSources
		}
		if f, err = newFlooder(n.gen, o.Proposal, r.Sources); err != nil {
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
	switch k {
	case Charon:
		return "charon 5.9 (kernel-libipsec)"
	case CharonLT:
		return "charon 5.9 (load-tester, fake_kernel)"
	case Charon6:
		return "charon 6 (kernel-libipsec)"
	case OursState:
		return "xdpsec daemon (dry-run, state file)"
	}
	return "xdpsec daemon (dry-run)"
}

// holdsXFRMSocket says whether the process has a NETLINK_XFRM socket
// open: /proc/PID/net/netlink gives each netlink socket's protocol by
// inode, /proc/PID/fd which inodes the process holds.
func holdsXFRMSocket(pid int) (bool, error) {
	const netlinkXFRM = "6"
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/netlink", pid))
	if err != nil {
		return false, fmt.Errorf("proc: %w", err)
	}
	xfrm := map[string]bool{}
	for line := range strings.SplitSeq(string(b), "\n") {
		f := strings.Fields(line)
		// sk Eth Pid Groups Rmem Wmem Dump Locks Drops Inode
		if len(f) >= 10 && f[1] == netlinkXFRM {
			xfrm[f[9]] = true
		}
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return false, fmt.Errorf("proc: %w", err)
	}
	for _, fd := range fds {
		l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if err != nil {
			continue
		}
		if ino, ok := strings.CutPrefix(l, "socket:["); ok && xfrm[strings.TrimSuffix(ino, "]")] {
			return true, nil
		}
	}
	return false, nil
}

// IsCharon says whether the kind is one of charon's.
func (k ResponderKind) IsCharon() bool { return k == Charon || k == CharonLT || k == Charon6 }

// CharonVersion is the installed strongswan-charon package's version,
// "" if dpkg does not know it.
func CharonVersion() string {
	out, err := exec.Command("dpkg-query", "-W", "-f=${Version}", "strongswan-charon").Output()
	if err != nil {
		return ""
	}
	return "strongswan-charon " + strings.TrimSpace(string(out))
}
