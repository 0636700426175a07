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

// TestIKECompareLoadTester runs the like-for-like comparison small: 200
// IKE SAs against our daemon with its state file on and against charon
// with load-tester's fake kernel (charon-lt.sh's build), and checks that
// every one was established (ikeRun fails otherwise), that /proc moved,
// that our state file holds records and that charon ran with load-tester's
// kernel-ipsec, not kernel-netlink's. Skips where the build is missing:
// `make charon-lt` (run by `make test` and `make bench`) makes it.
func TestIKECompareLoadTester(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped: starts daemons (-short)")
	}
	if err := RequireIKE([]ResponderKind{OursState, CharonLT}); err != nil {
		t.Skipf("skipped: %v", err)
	}
	o := IKEOptions{Bin: xdpsecBinary(t), SAs: 200, Window: 16, Responders: []ResponderKind{OursState, CharonLT},
		Proposals: BenchProposals[:1]}
	rs, _, err := IKE(o, func(s string) { t.Log(s) })
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 2 {
		t.Fatalf("%d results, want 2", len(rs))
	}
	for _, r := range rs {
		if r.SAs != 200 || r.CPU <= 0 || r.HWM <= 0 || r.IdleRSS <= 0 || r.Rate() <= 0 {
			t.Errorf("%s: %d SAs, CPU %s, idle RSS %d, peak RSS %d, rate %.0f/s: want 200 and all above zero", r.Responder, r.SAs, r.CPU, r.IdleRSS, r.HWM, r.Rate())
		}
		if r.StateBytes < 0 || (r.Responder == OursState) != (r.StateBytes > 0) {
			t.Errorf("%s: state file of %d bytes after the run", r.Responder, r.StateBytes)
		}
		if r.Responder == CharonLT && !r.FakeKernel {
			t.Errorf("%s: charon's log does not show load-tester's fake kernel-ipsec", r.Responder)
		}
	}
}

// TestFlood runs a short flood against our daemon and charon: legitimate
// establishments must go on under it with the policer, which must have
// dropped spoofed requests, and the cookie configurations must have sent
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
	if err := RequireIKE([]ResponderKind{Charon}); err != nil {
		t.Logf("charon not flooded: %v", err)
		o.Responders = []ResponderKind{Ours}
	}
	rs, _, err := Flood(o, func(s string) { t.Log(s) })
	if err != nil {
		t.Fatal(err)
	}
	want := 0
	for _, k := range o.Responders {
		want += len(floodConfigs(k))
	}
	if len(rs) != want {
		t.Fatalf("%d results, want %d", len(rs), want)
	}
	for _, r := range rs {
		if r.Flood && r.FloodRate < 0.5*o.Capacity*o.Factor {
			t.Errorf("%s, %s: flood sent %.0f/s, want about %.0f/s", r.Responder, r.Name, r.FloodRate, o.Capacity*o.Factor)
		}
		if r.Cookies && r.Challenges == 0 {
			t.Errorf("%s, %s: no COOKIE challenges", r.Responder, r.Name)
		}
		if !r.Cookies && r.Challenges != 0 {
			t.Errorf("%s, %s: %d COOKIE challenges with cookies off", r.Responder, r.Name, r.Challenges)
		}
		if r.Policer {
			// The wide flood is spread so thin that each source stays
			// under the policer's rate: it must pass, the narrow one not.
			sent := r.FloodRate * o.Duration.Seconds()
			if r.Wide && float64(r.PolicerDrops) > 0.05*sent {
				t.Errorf("%s, %s: the policer dropped %d of about %.0f spoofed requests from %d sources", r.Responder, r.Name, r.PolicerDrops, sent, r.Sources)
			}
			if !r.Wide && r.PolicerDrops == 0 {
				t.Errorf("%s, %s: the policer dropped nothing", r.Responder, r.Name)
			}
			if r.Established <= 0 {
				t.Errorf("%s, %s: no legitimate establishments", r.Responder, r.Name)
			}
		}
		if !r.Flood && r.Established <= 0 {
			t.Errorf("%s, %s: no establishments without a flood", r.Responder, r.Name)
		}
	}
}
