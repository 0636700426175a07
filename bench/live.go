package bench

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/xdpsec/xdpsec/bpf"
	"github.com/xdpsec/xdpsec/loader"
	"github.com/xdpsec/xdpsec/maps"
)

// Live measurement: the attached programs under the operator's own
// traffic, read from the per-CPU counters and, where the kernel gives
// them, the programs' run time statistics (kernel.bpf_stats_enabled,
// turned on through BPF_ENABLE_STATS for as long as the measurement
// holds its file descriptor).

// subCounters are counted in addition to a packet's verdict counter, so
// they are left out of the packet totals.
var subCounters = map[string]bool{"ike_sa_init": true, "redirect_cpu": true, "mss_clamp": true}

// LiveProgram is one attached program's traffic over the interval.
type LiveProgram struct {
	Name    string
	Packets uint64 // from the verdict and drop counters
	// RunCount and RunTime come from the kernel's program statistics;
	// HaveRunTime is false where the kernel does not keep them.
	RunCount    uint64
	RunTime     time.Duration
	HaveRunTime bool
}

// LiveResult is what the attached programs did over an interval.
type LiveResult struct {
	Interval time.Duration
	Programs []LiveProgram
	Counters []maps.CounterValue // per counter, the interval's increase
	StatsErr error               // why run times are missing, if they are
}

// Mpps is a program's packet rate over the interval.
func (r LiveResult) Mpps(p LiveProgram) float64 {
	n := p.Packets
	if p.HaveRunTime {
		n = p.RunCount
	}
	return float64(n) / r.Interval.Seconds() / 1e6
}

// NsPerPacket is a program's own run time per packet, where known.
func (r LiveResult) NsPerPacket(p LiveProgram) (float64, bool) {
	if !p.HaveRunTime || p.RunCount == 0 {
		return 0, false
	}
	return float64(p.RunTime.Nanoseconds()) / float64(p.RunCount), true
}

// Live reads the programs pinned under pinDir over interval.
func Live(pinDir string, interval time.Duration) (LiveResult, error) {
	res := LiveResult{Interval: interval}
	s, err := maps.OpenPinned(pinDir)
	if err != nil {
		return res, err
	}
	defer s.Close()

	stats, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
	if err != nil {
		res.StatsErr = fmt.Errorf("enable BPF run time statistics: %w", err)
	} else {
		defer stats.Close()
	}
	names := []string{bpf.XdpsecProgXdpWan, bpf.XdpsecProgTcLan}
	progs := make(map[string]*ebpf.Program)
	for _, name := range names {
		p, err := ebpf.LoadPinnedProgram(loader.ProgPath(pinDir, name), nil)
		if err != nil {
			if res.StatsErr == nil {
				res.StatsErr = fmt.Errorf("open program %s: %w", name, err)
			}
			continue
		}
		defer p.Close()
		progs[name] = p
	}

	type runStats struct {
		cnt uint64
		t   time.Duration
		ok  bool
	}
	read := func() (map[string]runStats, []maps.CounterValue, error) {
		rs := make(map[string]runStats)
		for name, p := range progs {
			st, err := p.Stats()
			if err != nil {
				continue
			}
			rs[name] = runStats{st.RunCount, st.Runtime, stats != nil}
		}
		cs, err := s.Counters.Read()
		return rs, cs, err
	}
	r0, c0, err := read()
	if err != nil {
		return res, err
	}
	time.Sleep(interval)
	r1, c1, err := read()
	if err != nil {
		return res, err
	}
	if len(c0) != len(c1) {
		return res, errors.New("counters changed shape during the interval")
	}
	packets := make(map[string]uint64)
	for i := range c1 {
		d := c1[i]
		d.Packets -= c0[i].Packets
		d.Bytes -= c0[i].Bytes
		res.Counters = append(res.Counters, d)
		if !subCounters[d.Name] {
			packets[d.Program] += d.Packets
		}
	}
	for _, name := range names {
		p := LiveProgram{Name: name, Packets: packets[name]}
		if a, b := r0[name], r1[name]; a.ok && b.ok {
			p.RunCount, p.RunTime, p.HaveRunTime = b.cnt-a.cnt, b.t-a.t, true
		}
		res.Programs = append(res.Programs, p)
	}
	return res, nil
}

// WriteLive writes a live measurement as Markdown tables.
func WriteLive(w io.Writer, r LiveResult) {
	fmt.Fprintf(w, "Interval: %s\n\n", r.Interval)
	fmt.Fprintln(w, "| program | packets (counters) | runs (kernel stats) | Mpps | ns/packet (program run time) |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|")
	for _, p := range r.Programs {
		runs, ns := "n/a", "n/a"
		if p.HaveRunTime {
			runs = fmt.Sprint(p.RunCount)
		}
		if v, ok := r.NsPerPacket(p); ok {
			ns = fmt.Sprintf("%.1f", v)
		}
		fmt.Fprintf(w, "| %s | %d | %s | %.3f | %s |\n", p.Name, p.Packets, runs, r.Mpps(p), ns)
	}
	if r.StatsErr != nil {
		fmt.Fprintf(w, "\nNo program run times: %v\n", r.StatsErr)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| program | counter | packets | pps |")
	fmt.Fprintln(w, "|---|---|---:|---:|")
	for _, c := range r.Counters {
		if c.Packets == 0 {
			continue
		}
		fmt.Fprintf(w, "| %s | %s | %d | %.0f |\n", c.Program, c.Name, c.Packets, float64(c.Packets)/r.Interval.Seconds())
	}
}
