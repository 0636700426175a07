package bench

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
)

// Machine names the machine measurements were taken on.
type Machine struct {
	Kernel string
	CPU    string
	CPUs   int
	Go     string
}

// ThisMachine describes the machine this process runs on.
func ThisMachine() Machine {
	m := Machine{CPU: "unknown CPU", CPUs: runtime.NumCPU(), Go: runtime.Version()}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		m.Kernel = unix.ByteSliceToString(u.Release[:])
	}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	return m
}

func (m Machine) String() string {
	return fmt.Sprintf("%d x %s, Linux %s, %s", m.CPUs, m.CPU, m.Kernel, m.Go)
}

// count prints n with thousands separators.
func count(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// WriteXDPTable writes xdp_wan results as a Markdown table.
func WriteXDPTable(w io.Writer, rs []Result) {
	fmt.Fprintln(w, "| program | case | SAs | ns/pkt | floor ns/pkt | x floor |")
	fmt.Fprintln(w, "|---|---|---:|---:|---:|---:|")
	for _, r := range rs {
		fmt.Fprintf(w, "| %s | %s | %s | %.0f | %.0f | %.2f |\n", r.Program, r.Case, count(r.SAs), r.Ns, r.FloorNs, r.XFloor())
	}
}

// WriteTCTable writes tc_lan results as a Markdown table.
func WriteTCTable(w io.Writer, rs []Result) {
	if len(rs) == 0 {
		return
	}
	fmt.Fprintf(w, "| program | policies | ns/pkt | floor ns/pkt | x floor | x %s policies |\n", count(rs[0].Policies))
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|")
	for _, r := range rs {
		fmt.Fprintf(w, "| %s | %s | %.0f | %.0f | %.2f | %.2f |\n", r.Program, count(r.Policies), r.Ns, r.FloorNs, r.XFloor(), r.Ns/r.BaseNs)
	}
}

// WritePolicyTable writes the policy lookup comparison as a Markdown
// table, followed by the crossover.
func WritePolicyTable(w io.Writer, rs []PolicyResult) {
	fmt.Fprintln(w, "| policies | kernel send ns | no policies | 1 other policy | kernel lookup ns | of which search | tc_lan ns/pkt | floor ns/pkt | tc_lan lookup ns | kernel / tc_lan |")
	fmt.Fprintln(w, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, r := range rs {
		fmt.Fprintf(w, "| %s | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %.1f |\n", count(r.Policies),
			r.KernelNs, r.KernelBaseNs, r.KernelOtherNs, r.KernelLookupNs(), r.KernelNs-r.KernelOtherNs,
			r.TCNs, r.TCFloorNs, r.TCLookupNs(), r.KernelLookupNs()/r.TCLookupNs())
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, CrossoverText(rs))
}

// CrossoverText says from which policy count tc_lan is cheaper.
func CrossoverText(rs []PolicyResult) string {
	n, ok := Crossover(rs)
	switch {
	case len(rs) == 0:
		return "No policy counts measured."
	case !ok:
		return "Crossover: none; the kernel's lookup is cheaper than tc_lan's at every count measured."
	case n == rs[0].Policies:
		return fmt.Sprintf("Crossover: tc_lan is cheaper at every count measured, from %s policies (the smallest) up.", count(n))
	}
	return fmt.Sprintf("Crossover: tc_lan is cheaper from %s policies up.", count(n))
}

// WriteIKETable writes the establishment comparison as a Markdown table:
// the results of the kinds given, in that order, each figure also as a
// ratio to ref's with the same proposal in the same run.
func WriteIKETable(w io.Writer, rs []IKEResult, ref ResponderKind, kinds ...ResponderKind) {
	fmt.Fprintf(w, "| responder | proposal | IKE SAs | established/s | x charon | first tenth /s | last tenth /s | last / first | CPU-ms/SA | x charon | idle RSS MiB | peak RSS MiB | MiB per 10k SAs | x charon | generator CPU-ms/SA |\n")
	fmt.Fprintln(w, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	refs := map[string]IKEResult{}
	for _, r := range rs {
		if r.Responder == ref {
			refs[r.Proposal.IKE] = r
		}
	}
	ratio := func(a, b float64, ok bool) string {
		if !ok || b == 0 {
			return "–"
		}
		return fmt.Sprintf("%.2f", a/b)
	}
	for _, k := range kinds {
		for _, r := range rs {
			if r.Responder != k {
				continue
			}
			c, ok := refs[r.Proposal.IKE]
			fmt.Fprintf(w, "| %s | `%s` | %s | %.0f | %s | %.0f | %.0f | %s | %.2f | %s | %.1f | %.1f | %.1f | %s | %.2f |\n",
				ResponderLabel(r.Responder), r.Proposal.IKE, count(r.SAs), r.Rate(), ratio(r.Rate(), c.Rate(), ok), r.TenthRate(0), r.TenthRate(9),
				ratio(r.TenthRate(9), r.TenthRate(0), true), r.CPUPerSA(), ratio(r.CPUPerSA(), c.CPUPerSA(), ok),
				float64(r.IdleRSS)/(1<<20), float64(r.HWM)/(1<<20), r.RSSPer10k(), ratio(r.RSSPer10k(), c.RSSPer10k(), ok), r.GenCPUPerSA())
		}
	}
}

// WriteLoadTable writes the rate-vs-offered-load points, ours and
// charon's side by side.
func WriteLoadTable(w io.Writer, ls []LoadPoint) {
	type pair struct{ ours, charon *LoadPoint }
	var loads []float64
	by := map[float64]*pair{}
	for i := range ls {
		l := &ls[i]
		p := by[l.Offered]
		if p == nil {
			p = &pair{}
			by[l.Offered] = p
			loads = append(loads, l.Offered)
		}
		if l.Responder == Charon {
			p.charon = l
		} else {
			p.ours = l
		}
	}
	fmt.Fprintln(w, "| offered IKE SAs/s | xdpsec: initiated/s | xdpsec: established/s | charon: initiated/s | charon: established/s | xdpsec / charon |")
	fmt.Fprintln(w, "|---:|---:|---:|---:|---:|---:|")
	cell := func(l *LoadPoint) (string, string) {
		if l == nil {
			return "–", "–"
		}
		return fmt.Sprintf("%.0f", l.Initiated), fmt.Sprintf("%.0f", l.Established)
	}
	for _, o := range loads {
		p := by[o]
		oi, oe := cell(p.ours)
		ci, ce := cell(p.charon)
		r := "–"
		if p.ours != nil && p.charon != nil && p.charon.Established > 0 {
			r = fmt.Sprintf("%.2f", p.ours.Established/p.charon.Established)
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s |\n", count(int(o)), oi, oe, ci, ce, r)
	}
}

// WriteFloodTable writes the flood results; the ratio is to the same
// responder's run without a flood, the flood's rate a multiple of our
// capacity.
func WriteFloodTable(w io.Writer, rs []FloodResult, capacity float64) {
	fmt.Fprintln(w, "| responder | configuration | spoofed sources | spoofed IKE_SA_INIT/s | x capacity | legitimate offered/s | legitimate established/s | x no flood | COOKIE challenges | policer drops | responder CPU |")
	fmt.Fprintln(w, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	ref := map[ResponderKind]float64{}
	for _, r := range rs {
		if !r.Flood {
			ref[r.Responder] = r.Established
		}
	}
	for _, r := range rs {
		x := "–"
		if ref[r.Responder] > 0 {
			x = fmt.Sprintf("%.2f", r.Established/ref[r.Responder])
		}
		fmt.Fprintf(w, "| %s | %s | %s | %.0f | %.1f | %.0f | %.0f | %s | %s | %s | %.0f%% |\n", ResponderLabel(r.Responder), r.Name, count(r.Sources), r.FloodRate, r.FloodRate/capacity,
			r.LegitOffered, r.Established, x, count(int(r.Challenges)), count(int(r.PolicerDrops)), r.CPU*100)
	}
}

// clientRef is the result the ratios of the client table compare with:
// the smallest client count measured.
func clientRef(rs []ClientResult) ClientResult { return rs[0] }

// WriteClientTable writes the outbound lookup per remote-access client as
// a Markdown table: what the kernel's policies add to a send (default
// hash thresholds, hthresh4 set, one catch-all policy) and tc_lan's cost,
// each with its ratio to the smallest client count.
func WriteClientTable(w io.Writer, rs []ClientResult) {
	if len(rs) == 0 {
		return
	}
	ref := clientRef(rs)
	n := count(ref.Clients)
	fmt.Fprintf(w, "| clients | kernel, default thresholds: lookup ns | x %s | kernel, hthresh4 %d %d: lookup ns | x %s | kernel, one catch-all policy: lookup ns | tc_lan ns/pkt | floor ns/pkt | tc_lan above floor ns | x %s | no policies: send ns |\n",
		n, DefaultClientOptions.HThresh[0], DefaultClientOptions.HThresh[1], n, n)
	fmt.Fprintln(w, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, r := range rs {
		fmt.Fprintf(w, "| %s | %.0f | %.2f | %.0f | %.2f | %.0f | %.0f | %.0f | %.0f | %.2f | %.0f |\n", count(r.Clients),
			r.KernelLookupNs(), r.KernelRatio(),
			r.KernelHashedLookupNs(), r.KernelHashedRatio(),
			r.KernelCatchAllLookupNs(), r.TCNs, r.TCFloorNs, r.TCLookupNs(), r.TCRatio(), r.KernelBaseNs)
	}
}

// ClientTargetText says, for each way of looking clients up, whether its
// cost at every count up to 10,000 clients is within ClientTarget of its
// cost at the smallest count, naming the worst.
func ClientTargetText(rs []ClientResult) string {
	var in []ClientResult
	for _, r := range rs[min(1, len(rs)):] {
		if r.Clients <= 10_000 {
			in = append(in, r)
		}
	}
	if len(in) == 0 {
		return "Target not checked: fewer than two client counts up to 10,000 measured."
	}
	ref := clientRef(rs)
	worst := func(ratio func(ClientResult) float64) string {
		w := in[0]
		for _, r := range in {
			if ratio(r) > ratio(w) {
				w = r
			}
		}
		verdict := "met"
		if ratio(w) > ClientTarget {
			verdict = "not met"
		}
		return fmt.Sprintf("%.2fx at %s clients (%s)", ratio(w), count(w.Clients), verdict)
	}
	return fmt.Sprintf("Target (issue 15): each lookup within %.1fx of its cost at %s clients, up to %s clients. Worst ratio: kernel, default thresholds: %s; kernel, hthresh4 %d %d: %s; tc_lan above its floor: %s; tc_lan, whole program: %s.",
		ClientTarget, count(ref.Clients), count(in[len(in)-1].Clients),
		worst(ClientResult.KernelRatio),
		DefaultClientOptions.HThresh[0], DefaultClientOptions.HThresh[1],
		worst(ClientResult.KernelHashedRatio),
		worst(ClientResult.TCRatio),
		worst(func(r ClientResult) float64 { return r.TCNs / r.TCSmallNs }))
}

// RATargetRate and RATargetMemory are issue 15's target for remote-access
// establishments: at least this multiple of charon's rate, at most this
// fraction of its memory per client.
const (
	RATargetRate   = 3.0
	RATargetMemory = 0.5
)

// raCharon is charon's result among rs, if it ran.
func raCharon(rs []RAResult) (RAResult, bool) {
	for _, r := range rs {
		if r.Responder == Charon {
			return r, true
		}
	}
	return RAResult{}, false
}

// WriteRATable writes the remote-access comparison as a Markdown table,
// each of our figures also as a ratio to charon's in the same run.
func WriteRATable(w io.Writer, rs []RAResult) {
	fmt.Fprintln(w, "| responder | clients with virtual IP | established/s | x charon | first tenth /s | last tenth /s | CPU-ms/client | x charon | idle RSS MiB | peak RSS MiB | MiB per 10k clients | x charon | generator CPU-ms/client |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	c, ok := raCharon(rs)
	ratio := func(a, b float64) string {
		if !ok || b == 0 {
			return "–"
		}
		return fmt.Sprintf("%.2f", a/b)
	}
	for _, r := range rs {
		fmt.Fprintf(w, "| %s | %s | %.0f | %s | %.0f | %.0f | %.2f | %s | %.1f | %.1f | %.1f | %s | %.2f |\n",
			ResponderLabel(r.Responder), count(r.SAs), r.Rate(), ratio(r.Rate(), c.Rate()), r.TenthRate(0), r.TenthRate(9),
			r.CPUPerSA(), ratio(r.CPUPerSA(), c.CPUPerSA()),
			float64(r.IdleRSS)/(1<<20), float64(r.HWM)/(1<<20), r.RSSPer10k(), ratio(r.RSSPer10k(), c.RSSPer10k()), r.GenCPUPerSA())
	}
}

// RATargetText says whether our responder met issue 15's target.
func RATargetText(rs []RAResult) string {
	c, ok := raCharon(rs)
	var ours *RAResult
	for i := range rs {
		if rs[i].Responder == Ours {
			ours = &rs[i]
		}
	}
	if !ok || ours == nil || c.Rate() == 0 || c.RSSPer10k() <= 0 {
		return fmt.Sprintf("Target (issue 15): at least %.0fx charon's rate and at most %.1fx its memory per client. Not compared: both responders must run.", RATargetRate, RATargetMemory)
	}
	met := func(b bool) string {
		if b {
			return "met"
		}
		return "not met"
	}
	rate, mem := ours.Rate()/c.Rate(), ours.RSSPer10k()/c.RSSPer10k()
	return fmt.Sprintf("Target (issue 15): at least %.0fx charon's rate and at most %.1fx its memory per client, at %s clients. Rate %.2fx (%s), memory per client %.2fx (%s).",
		RATargetRate, RATargetMemory, count(ours.SAs), rate, met(rate >= RATargetRate), mem, met(mem <= RATargetMemory))
}

// pqRatio is a/b with two decimals, "–" where there is no b.
func pqRatio(a, b float64, ok bool) string {
	if !ok || b == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f", a/b)
}

// WritePQTable writes the post-quantum runs as a Markdown table, each
// responder's figures also as a ratio to its own with X25519 alone
// (PQProposals[0]) in the same run.
func WritePQTable(w io.Writer, rs []IKEResult) {
	fmt.Fprintln(w, "| responder | proposal | IKE SAs | established/s | x x25519 | CPU-ms/SA | x x25519 | 10-30%: established/s | x x25519 | CPU-ms/SA | x x25519 | idle RSS MiB | peak RSS MiB | KiB/SA | x x25519 | generator CPU-ms/SA |")
	fmt.Fprintln(w, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, r := range rs {
		ref, ok := PQRef(rs, r.Responder)
		fmt.Fprintf(w, "| %s | `%s` | %s | %.0f | %s | %.2f | %s | %.0f | %s | %.2f | %s | %.1f | %.1f | %.1f | %s | %.2f |\n",
			ResponderLabel(r.Responder), r.Proposal.IKE, count(r.SAs), r.Rate(), pqRatio(r.Rate(), ref.Rate(), ok),
			r.CPUPerSA(), pqRatio(r.CPUPerSA(), ref.CPUPerSA(), ok),
			r.EarlyRate(), pqRatio(r.EarlyRate(), ref.EarlyRate(), ok), r.EarlyCPUPerSA(), pqRatio(r.EarlyCPUPerSA(), ref.EarlyCPUPerSA(), ok),
			float64(r.IdleRSS)/(1<<20), float64(r.HWM)/(1<<20), r.KiBPerSA(), pqRatio(r.KiBPerSA(), ref.KiBPerSA(), ok), r.GenCPUPerSA())
	}
}

// WritePQRatioTable writes, for each proposal both responders ran, our
// daemon's figures against charon 6's.
func WritePQRatioTable(w io.Writer, rs []IKEResult) {
	fmt.Fprintln(w, "| proposal | established/s: xdpsec | charon 6 | xdpsec / charon 6 | CPU-ms/SA: xdpsec | charon 6 | xdpsec / charon 6 | 10-30% CPU-ms/SA: xdpsec | charon 6 | xdpsec / charon 6 | KiB/SA: xdpsec | charon 6 | xdpsec / charon 6 |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, p := range PQProposals {
		o, c, ok := PQPair(rs, p)
		if !ok {
			continue
		}
		fmt.Fprintf(w, "| `%s` | %.0f | %.0f | %s | %.2f | %.2f | %s | %.2f | %.2f | %s | %.1f | %.1f | %s |\n", p.IKE,
			o.Rate(), c.Rate(), pqRatio(o.Rate(), c.Rate(), true),
			o.CPUPerSA(), c.CPUPerSA(), pqRatio(o.CPUPerSA(), c.CPUPerSA(), true),
			o.EarlyCPUPerSA(), c.EarlyCPUPerSA(), pqRatio(o.EarlyCPUPerSA(), c.EarlyCPUPerSA(), true),
			o.KiBPerSA(), c.KiBPerSA(), pqRatio(o.KiBPerSA(), c.KiBPerSA(), true))
	}
}

// PQWords says the post-quantum runs' ratios in a few sentences: each
// hybrid against X25519 alone for each responder, then ours against
// charon 6 for each proposal.
func PQWords(rs []IKEResult) string {
	var out []string
	for _, p := range PQProposals[1:] {
		var parts []string
		for _, k := range []ResponderKind{Ours, Charon6} {
			ref, ok := PQRef(rs, k)
			var r *IKEResult
			for i := range rs {
				if rs[i].Responder == k && rs[i].Proposal == p {
					r = &rs[i]
				}
			}
			if !ok || r == nil {
				continue
			}
			parts = append(parts, fmt.Sprintf("%s spends %sx the CPU per IKE SA of X25519 alone (%.2f against %.2f ms; %sx over 10-30%% of the SAs), establishes %sx as many per second and holds %sx the memory per SA",
				pqWho(k), pqRatio(r.CPUPerSA(), ref.CPUPerSA(), true), r.CPUPerSA(), ref.CPUPerSA(), pqRatio(r.EarlyCPUPerSA(), ref.EarlyCPUPerSA(), true),
				pqRatio(r.Rate(), ref.Rate(), true), pqRatio(r.KiBPerSA(), ref.KiBPerSA(), true)))
		}
		if len(parts) > 0 {
			out = append(out, fmt.Sprintf("With %s added, %s.", strings.TrimPrefix(pqKE(p), "X25519 + "), strings.Join(parts, "; ")))
		}
	}
	var names, rate, cpu, early, mem []string
	for _, p := range PQProposals {
		o, c, ok := PQPair(rs, p)
		if !ok {
			continue
		}
		names = append(names, pqKE(p))
		rate = append(rate, pqRatio(o.Rate(), c.Rate(), true)+"x")
		cpu = append(cpu, pqRatio(o.CPUPerSA(), c.CPUPerSA(), true)+"x")
		early = append(early, pqRatio(o.EarlyCPUPerSA(), c.EarlyCPUPerSA(), true)+"x")
		mem = append(mem, pqRatio(o.KiBPerSA(), c.KiBPerSA(), true)+"x")
	}
	if len(names) > 0 {
		out = append(out, fmt.Sprintf("Ours against charon 6 (%s): CPU per SA %s (%s over 10-30%% of the SAs), rate %s, memory per SA %s.",
			strings.Join(names, " / "), strings.Join(cpu, " / "), strings.Join(early, " / "), strings.Join(rate, " / "), strings.Join(mem, " / ")))
	}
	if len(out) == 0 {
		return "Nothing to compare."
	}
	return "In words: " + strings.Join(out, " ")
}

// pqWho names a responder in a sentence.
func pqWho(k ResponderKind) string {
	if k == Charon6 {
		return "charon 6"
	}
	return "our responder"
}

// pqKE names a proposal of PQProposals by its key exchanges.
func pqKE(p Proposal) string {
	switch {
	case strings.Contains(p.IKE, "ke1_mlkem768"):
		return "X25519 + ML-KEM-768"
	case strings.Contains(p.IKE, "ke1_ecp384"):
		return "X25519 + ECP-384"
	case strings.HasSuffix(p.IKE, "-x25519"):
		return "X25519"
	}
	return "`" + p.IKE + "`"
}
