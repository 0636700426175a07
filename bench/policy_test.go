package bench

import (
	"errors"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/xdpsec/xdpsec/internal/testenv"
	"github.com/xdpsec/xdpsec/maps/xfrm"
)

// TestPolicyLookupSmall runs the policy comparison on small sets: the
// kernel side's namespaces, policies and sends work, and the numbers are
// positive.
func TestPolicyLookupSmall(t *testing.T) {
	testenv.RequireBPF(t)
	testenv.RequireCommand(t, "ip")
	rs, err := PolicyLookup(Options{Repeats: 1000, Rounds: 1},
		PolicyOptions{Counts: []int{1, 10}, Sends: 200, Batches: 3}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		t.Logf("%d policies: kernel %.0f ns (%.0f without), tc_lan %.0f ns (floor %.0f)", r.Policies, r.KernelNs, r.KernelBaseNs, r.TCNs, r.TCFloorNs)
		if r.KernelNs <= 0 || r.KernelBaseNs <= 0 || r.TCNs <= 0 {
			t.Errorf("%d policies: non-positive figures %+v", r.Policies, r)
		}
	}
}

// TestPolicyLookupMatches checks that the timed datagrams do hit the
// last-inserted policy: made a block policy, it refuses the send.
func TestPolicyLookupMatches(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireCommand(t, "ip")
	s, err := newXFRMSite(true, [2]int{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	if err := s.grow(10); err != nil {
		t.Fatal(err)
	}
	if _, err := s.batch(lastSiteHost(10), 1); err != nil {
		t.Fatalf("allow policies: %v", err)
	}
	p := xfrmPolicy(9)
	p.Action = xfrm.ActionBlock
	if err := s.conn.UpdatePolicy(p); err != nil {
		t.Fatal(err)
	}
	if _, err := s.batch(lastSiteHost(10), 1); !errors.Is(err, unix.EPERM) {
		t.Fatalf("send under a block policy: %v, want EPERM", err)
	}
}

func TestCrossover(t *testing.T) {
	pr := func(n int, kernel, tc float64) PolicyResult {
		return PolicyResult{Policies: n, KernelNs: kernel, TCNs: tc}
	}
	for _, tc := range []struct {
		name string
		rs   []PolicyResult
		n    int
		ok   bool
	}{
		{"never", []PolicyResult{pr(10, 10, 50), pr(100, 20, 50)}, 0, false},
		{"always", []PolicyResult{pr(10, 60, 50), pr(100, 70, 50)}, 10, true},
		{"from 100", []PolicyResult{pr(10, 40, 50), pr(100, 60, 50), pr(1000, 90, 55)}, 100, true},
		{"back and forth", []PolicyResult{pr(10, 60, 50), pr(100, 40, 50), pr(1000, 90, 55)}, 1000, true},
	} {
		if n, ok := Crossover(tc.rs); n != tc.n || ok != tc.ok {
			t.Errorf("%s: Crossover = %d, %v; want %d, %v", tc.name, n, ok, tc.n, tc.ok)
		}
	}
}
