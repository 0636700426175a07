package bench

import (
	"fmt"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/xdpsec/xdpsec/ike"
)

// Rekey spread: SAs IKE SAs (one CHILD_SA each) established as fast as
// our dry-run responder takes them (a gateway all of whose peers come
// back at once: the worst case for bursts), then a window in which the
// responder rekeys its CHILD_SAs (and, if asked, its IKE SAs) with short
// lifetimes and rand_time jitter. The generator's initiators never rekey
// (their lifetimes are a day): every rekey in the window is the
// responder's, counted as the generator's engines complete it (the
// Observer's ChildRekey and IKERekey), per second. Each second the
// responder's CPU (utime + stime), RSS and state file size are sampled
// from /proc and the file system.

// RekeyOptions tune a rekey spread run.
type RekeyOptions struct {
	Bin string
	SAs int
	// ChildRekey and ChildRand are the responder's CHILD_SA rekey_time
	// and rand_time (life_time is rekey_time * 1.1, swanctl's default);
	// IKERekey and IKERand the IKE SA's, none if IKERekey is 0.
	ChildRekey, ChildRand time.Duration
	IKERekey, IKERand     time.Duration
	// Window is how long rekeys are counted after the last IKE SA is
	// established; Bucket the histogram's bucket.
	Window, Bucket time.Duration
	// State runs the responder with its state file on.
	State bool
}

// DefaultRekeyOptions are the run with jitter of `make bench`:
// swanctl.conf's `rekey_time = 5m`, `rand_time = 2m` on the children,
// with the IKE SAs rekeyed too (5m, 2m), for one rekey interval and 20 s
// (the rekeys of the last SAs established, without jitter, fall at its
// end).
var DefaultRekeyOptions = RekeyOptions{
	SAs: 100_000, ChildRekey: 5 * time.Minute, ChildRand: 2 * time.Minute,
	IKERekey: 5 * time.Minute, IKERand: 2 * time.Minute,
	Window: 5*time.Minute + 20*time.Second, Bucket: 5 * time.Second, State: true,
}

// DefaultSteadyOptions are the steady-state run of `make bench`: a tenth
// of the SAs with lifetimes of a minute (`rekey_time = 60s`, `rand_time =
// 24s`, the same ratio), CHILD_SAs and IKE SAs, counted for 8 minutes:
// every SA rekeys about ten times, so the rekeys after a mass
// establishment spread as far as jitter takes them, and RSS and the state
// file show whether they keep growing.
var DefaultSteadyOptions = RekeyOptions{
	SAs: 10_000, ChildRekey: time.Minute, ChildRand: 24 * time.Second,
	IKERekey: time.Minute, IKERand: 24 * time.Second,
	Window: 8 * time.Minute, Bucket: 5 * time.Second, State: true,
}

// RekeySample is one second of the run.
type RekeySample struct {
	// At is the time since the first IKE SA was initiated.
	At time.Duration
	// Established, ChildRekeys, IKERekeys are cumulative counts.
	Established, ChildRekeys, IKERekeys int64
	// CPU is the responder's cumulative CPU time; RSS its resident
	// memory; State its state file's size.
	CPU        time.Duration
	RSS, State int64
}

// RekeyResult is a run's samples and what they say.
type RekeyResult struct {
	Options RekeyOptions
	// Established is how long the SAs took to establish.
	Established time.Duration
	Samples     []RekeySample
	// WindowStart is the index of the sample at which the window starts.
	WindowStart int
	// Lost counts CHILD_SAs and IKE SAs that went down (not rekeyed)
	// on the generator's side; Failed establishments.
	LostChildren, LostIKE, Failed int64
	// Left is the generator's IKE SAs with an installed CHILD_SA at the
	// end.
	Left int
	// GenCPU is the generator's CPU time over the window.
	GenCPU time.Duration
}

// window is the samples of the window.
func (r RekeyResult) window() []RekeySample {
	if r.WindowStart >= len(r.Samples) {
		return nil
	}
	return r.Samples[r.WindowStart:]
}

// Buckets are the CHILD_SA rekeys per bucket over the window.
func (r RekeyResult) Buckets() []int64 {
	return r.buckets(func(s RekeySample) int64 { return s.ChildRekeys })
}

// IKEBuckets are the IKE SA rekeys per bucket over the window.
func (r RekeyResult) IKEBuckets() []int64 {
	return r.buckets(func(s RekeySample) int64 { return s.IKERekeys })
}

func (r RekeyResult) buckets(v func(RekeySample) int64) []int64 {
	w := r.window()
	per := max(int(r.Options.Bucket/time.Second), 1)
	var out []int64
	for i := 0; i+per < len(w); i += per {
		out = append(out, v(w[i+per])-v(w[i]))
	}
	return out
}

// Spread is max/mean of the buckets (1: even; 0 if none).
func Spread(b []int64) (maxB int64, mean, ratio float64) {
	var sum int64
	for _, x := range b {
		sum += x
		maxB = max(maxB, x)
	}
	if len(b) == 0 || sum == 0 {
		return 0, 0, 0
	}
	mean = float64(sum) / float64(len(b))
	return maxB, mean, float64(maxB) / mean
}

// Expected are the CHILD_SA rekeys per bucket over the window that the
// establishment times and the lifetimes alone predict: each CHILD_SA
// established in second t rekeys first at t + rekey_time − k, k whole
// seconds uniform in [0, rand_time] (lifetimeWithJitter in package ike),
// again rekey_time − k' after that, and so on. The measured buckets
// against these show whether the scheduling adds bursts of its own.
func (r RekeyResult) Expected() []float64 {
	n := len(r.Samples)
	if n == 0 {
		return nil
	}
	R := int(r.Options.ChildRekey / time.Second)
	J := int(min(r.Options.ChildRand, r.Options.ChildRekey) / time.Second)
	if R <= 0 {
		return nil
	}
	// est[t] is what was established in second t; rekeys[t] the expected
	// rekeys in second t, each of which schedules the next.
	est := make([]float64, n)
	prev := int64(0)
	for i, s := range r.Samples {
		est[i] = float64(s.Established - prev)
		prev = s.Established
	}
	rekeys := make([]float64, n)
	src := est
	for range n/max(R-J, 1) + 1 {
		next := make([]float64, n)
		any := false
		for t, x := range src {
			if x == 0 {
				continue
			}
			p := x / float64(J+1)
			for k := 0; k <= J; k++ {
				if u := t + R - k; u < n {
					next[u] += p
					any = true
				}
			}
		}
		if !any {
			break
		}
		for t := range next {
			rekeys[t] += next[t]
		}
		src = next
	}
	per := max(int(r.Options.Bucket/time.Second), 1)
	var out []float64
	for i := r.WindowStart; i+per < n; i += per {
		sum := 0.0
		// Samples are cumulative at their second: bucket i counts
		// seconds (i, i+per].
		for t := i + 1; t <= i+per; t++ {
			sum += rekeys[t]
		}
		out = append(out, sum)
	}
	return out
}

// ExpectedSpread is max/mean of Expected.
func (r RekeyResult) ExpectedSpread() float64 {
	e := r.Expected()
	m, sum := 0.0, 0.0
	for _, x := range e {
		m = math.Max(m, x)
		sum += x
	}
	if sum == 0 {
		return 0
	}
	return m / (sum / float64(len(e)))
}

// Rekeys is the CHILD_SA and IKE SA rekeys in the window.
func (r RekeyResult) Rekeys() (child, ikeSA int64) {
	w := r.window()
	if len(w) < 2 {
		return 0, 0
	}
	return w[len(w)-1].ChildRekeys - w[0].ChildRekeys, w[len(w)-1].IKERekeys - w[0].IKERekeys
}

// WindowCPU is the responder's CPU time over the window and the window's length.
func (r RekeyResult) WindowCPU() (cpu, d time.Duration) {
	w := r.window()
	if len(w) < 2 {
		return 0, 0
	}
	return w[len(w)-1].CPU - w[0].CPU, w[len(w)-1].At - w[0].At
}

// CPUPerSecond is the responder's CPU seconds per second in each bucket
// of the window.
func (r RekeyResult) CPUPerSecond() []float64 {
	w := r.window()
	per := max(int(r.Options.Bucket/time.Second), 1)
	var out []float64
	for i := 0; i+per < len(w); i += per {
		d := w[i+per].At - w[i].At
		if d > 0 {
			out = append(out, (w[i+per].CPU-w[i].CPU).Seconds()/d.Seconds())
		}
	}
	return out
}

// Compactions counts the state file's rewrites in the window (its size
// falling between two samples).
func (r RekeyResult) Compactions() int {
	w := r.window()
	n := 0
	for i := 1; i < len(w); i++ {
		if w[i].State < w[i-1].State {
			n++
		}
	}
	return n
}

// rekeyObserver counts, on the generator's engines, the rekeys the
// responder completed and the SAs that went down.
type rekeyObserver struct {
	childRekeys, ikeRekeys, childDown, ikeDown atomic.Int64
}

func (o *rekeyObserver) IKEUpDown(_ ike.IKESAInfo, up bool) {
	if !up {
		o.ikeDown.Add(1)
	}
}
func (o *rekeyObserver) IKERekey(old, new ike.IKESAInfo) { o.ikeRekeys.Add(1) }
func (o *rekeyObserver) ChildUpDown(_ ike.IKESAInfo, _ ike.ChildSAInfo, up bool) {
	if !up {
		o.childDown.Add(1)
	}
}
func (o *rekeyObserver) ChildRekey(ike.IKESAInfo, ike.ChildSAInfo, ike.ChildSAInfo) {
	o.childRekeys.Add(1)
}
func (o *rekeyObserver) IKEUpdate(ike.IKESAInfo, netip.AddrPort, netip.AddrPort) {}

// neverRekey is the initiators' lifetime: longer than any run.
const neverRekey = 24 * time.Hour

// rekeyConf is the responder's swanctl.conf: responderConf's with the
// run's lifetimes.
func rekeyConf(p Proposal, o RekeyOptions) string {
	ikeTimes := "rekey_time = 0\n\t\treauth_time = 0"
	if o.IKERekey > 0 {
		ikeTimes = fmt.Sprintf("rekey_time = %ds\n\t\trand_time = %ds", int(o.IKERekey/time.Second), int(o.IKERand/time.Second))
	}
	c := responderConf(p)
	c = strings.Replace(c, "\t\tproposals = ", "\t\t"+ikeTimes+"\n\t\tproposals = ", 1)
	// life_time as swanctl's default (rekey_time * 1.1), in whole
	// seconds after rekey_time even for the smoke test's few seconds.
	r := int(o.ChildRekey / time.Second)
	return strings.Replace(c, "\t\t\t\tesp_proposals = ", fmt.Sprintf("\t\t\t\trekey_time = %ds\n\t\t\t\tlife_time = %ds\n\t\t\t\trand_time = %ds\n\t\t\t\tesp_proposals = ",
		r, r+max((r+9)/10, 1), int(o.ChildRand/time.Second)), 1)
}

// RekeySpread runs one rekey spread run: establish, then count for the
// window. progress, if set, hears about each phase.
func RekeySpread(o RekeyOptions, progress func(string)) (RekeyResult, error) {
	if progress == nil {
		progress = func(string) {}
	}
	res := RekeyResult{Options: o}
	if err := RequireIKE([]ResponderKind{Ours}); err != nil {
		return res, fmt.Errorf("bench rekey: %w", err)
	}
	p := BenchProposals[0]
	gen := pskGen
	gen.connFor = func(p Proposal, src netip.Addr) *ike.Connection {
		c := genConnection(p, src)
		c.RekeyTime = neverRekey
		for _, ch := range c.Children {
			ch.RekeyTime = neverRekey
		}
		return c
	}
	b, err := newIKEBedGen(Ours, o.Bin, respSettings{proposal: p, cookieThreshold: -1, conf: rekeyConf(p, o), stateOn: o.State, logs: os.Getenv("XDPSEC_REKEY_LOG")}, gen)
	if err != nil {
		return res, fmt.Errorf("bench rekey: %w", err)
	}
	defer b.close()
	obs := &rekeyObserver{}
	for _, ge := range b.g.engines {
		ge.e.SetObserver(obs)
	}
	statePath := filepath.Join(b.resp.dir, "state")
	start := time.Now()
	var mu sync.Mutex // guards res.Samples
	var sampleErr error
	sample := func() {
		u, err := readProc(b.resp.pid)
		if err != nil {
			sampleErr = err
			return
		}
		// The generator's count goes on with the rekeys (each logs a
		// CHILD_SA established): past SAs, they are not new IKE SAs.
		s := RekeySample{At: time.Since(start), Established: min(b.g.established.Load(), int64(o.SAs)),
			ChildRekeys: obs.childRekeys.Load(), IKERekeys: obs.ikeRekeys.Load(), CPU: u.CPU, RSS: u.RSS}
		if fi, err := os.Stat(statePath); err == nil {
			s.State = fi.Size()
		}
		mu.Lock()
		res.Samples = append(res.Samples, s)
		mu.Unlock()
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	sample()
	go func() {
		defer close(done)
		// Whole seconds from the start, not a second after each sample:
		// the buckets stay aligned however long a sample takes.
		for i := 1; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(time.Until(start.Add(time.Duration(i) * time.Second))):
				sample()
			}
		}
	}()
	halt := func() {
		select {
		case <-stop:
		default:
			close(stop)
			<-done
		}
	}
	defer halt()
	res.Established, err = b.g.closedLoop(p, o.SAs, 64, 15*time.Second, nil)
	if err != nil {
		return res, fmt.Errorf("bench rekey: %w; the responder's log ends:\n%s", err, b.resp.logTail())
	}
	res.Failed = b.g.failed.Load()
	progress(fmt.Sprintf("rekey spread (rand_time %s): %d IKE SAs established in %s, %d failed; counting rekeys for %s",
		o.ChildRand, o.SAs, res.Established.Round(time.Millisecond), res.Failed, o.Window))
	gen0, err := readProc(os.Getpid())
	if err != nil {
		return res, err
	}
	// The window starts at the next whole-second sample.
	mu.Lock()
	res.WindowStart = len(res.Samples)
	mu.Unlock()
	for end := time.Now().Add(o.Window + time.Second); time.Now().Before(end); {
		time.Sleep(min(10*time.Second, time.Until(end)))
		mu.Lock()
		s := res.Samples[len(res.Samples)-1]
		mu.Unlock()
		progress(fmt.Sprintf("rekey spread: %s: %d CHILD_SA and %d IKE SA rekeys, responder CPU %s, RSS %.0f MiB, state file %.0f MiB",
			s.At.Round(time.Second), s.ChildRekeys, s.IKERekeys, s.CPU.Round(time.Millisecond), float64(s.RSS)/(1<<20), float64(s.State)/(1<<20)))
	}
	halt()
	if sampleErr != nil {
		return res, fmt.Errorf("bench rekey: %w", sampleErr)
	}
	gen1, err := readProc(os.Getpid())
	if err != nil {
		return res, err
	}
	res.GenCPU = gen1.CPU - gen0.CPU
	res.LostChildren, res.LostIKE = obs.childDown.Load(), obs.ikeDown.Load()
	if os.Getenv("XDPSEC_REKEY_LOG") != "" {
		b, _ := os.ReadFile(filepath.Join(b.resp.dir, "daemon.log"))
		os.WriteFile("/tmp/rekey-daemon.log", b, 0o644)
	}
	for _, ge := range b.g.engines {
		for _, sa := range ge.e.IKESAs() {
			if slices.ContainsFunc(sa.Children, func(c ike.ChildSAInfo) bool { return c.State == ike.ChildSAInstalled }) {
				res.Left++
			}
		}
	}
	return res, nil
}
