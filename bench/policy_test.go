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
