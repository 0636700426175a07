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
