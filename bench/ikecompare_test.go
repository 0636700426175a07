package bench

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// xdpsecBinary builds cmd/xdpsec for the responder, or skips.
func xdpsecBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "xdpsec")
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(gobin); err != nil {
		gobin = "go"
	}
	if out, err := exec.Command(gobin, "build", "-o", bin, "../cmd/xdpsec").CombinedOutput(); err != nil {
		t.Fatalf("go build ../cmd/xdpsec: %v\n%s", err, out)
	}
	return bin
}

// TestIKECompare runs a small version of `xdpsec bench ike`: 200 IKE SAs
// against our daemon and against charon, each with the first proposal,
// and checks that every one was established and that /proc moved. Rates
// are not checked: the benchmark reports them.
func TestIKECompare(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped: starts daemons (-short)")
	}
	if err := RequireIKE([]ResponderKind{Ours, Charon}); err != nil {
		t.Skipf("skipped: %v", err)
	}
	o := IKEOptions{Bin: xdpsecBinary(t), SAs: 200, Window: 16, Responders: []ResponderKind{Ours, Charon},
		Proposals: BenchProposals[:1], Loads: []float64{100}, LoadDuration: time.Second}
	rs, ls, err := IKE(o, func(s string) { t.Log(s) })
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 2 || len(ls) != 2 {
		t.Fatalf("%d results and %d load points, want 2 and 2", len(rs), len(ls))
	}
	for _, r := range rs {
		if r.CPU <= 0 || r.HWM <= 0 || r.IdleRSS <= 0 || r.Rate() <= 0 {
			t.Errorf("%s: CPU %s, idle RSS %d, peak RSS %d, rate %.0f/s: want all above zero", r.Responder, r.CPU, r.IdleRSS, r.HWM, r.Rate())
		}
	}
	for _, l := range ls {
		if l.Established <= 0 {
			t.Errorf("%s at %.0f/s offered: nothing established", l.Responder, l.Offered)
		}
	}
}

// TestFlood runs a short flood against our daemon: legitimate
// establishments must go on under it with the policer, which must have
// dropped spoofed requests, and the cookie configuration must have sent
// challenges.
func TestFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped: starts daemons (-short)")
	}
	if err := RequireIKE(nil); err != nil {
		t.Skipf("skipped: %v", err)
	}
	o := DefaultFloodOptions
	o.Bin, o.Capacity, o.Duration = xdpsecBinary(t), 300, 2*time.Second
	rs, _, err := Flood(o, func(s string) { t.Log(s) })
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if r.Flood && r.FloodRate < 0.5*o.Capacity*o.Factor {
			t.Errorf("%s: flood sent %.0f/s, want about %.0f/s", r.Name, r.FloodRate, o.Capacity*o.Factor)
		}
		if r.Cookies && r.Challenges == 0 {
			t.Errorf("%s: no COOKIE challenges", r.Name)
		}
		if r.Policer {
			if r.PolicerDrops == 0 {
				t.Errorf("%s: the policer dropped nothing", r.Name)
			}
			if r.Established <= 0 {
				t.Errorf("%s: no legitimate establishments", r.Name)
			}
		}
		if !r.Flood && r.Established <= 0 {
			t.Errorf("%s: no establishments without a flood", r.Name)
		}
	}
}
