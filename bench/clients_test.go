package bench

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/xdpsec/xdpsec/internal/testenv"
)

// TestClientLookupSmall runs the remote-access comparison on small sets:
// namespaces, policies, sends and tc_lan work, and the figures are
// positive.
func TestClientLookupSmall(t *testing.T) {
	testenv.RequireBPF(t)
	rs, err := ClientLookup(Options{Repeats: 1000, Rounds: 1},
		ClientOptions{Counts: []int{1, 10}, Sends: 200, Batches: 3, HThresh: DefaultClientOptions.HThresh}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		t.Logf("%d clients: kernel %.0f ns, hashed %.0f ns (%.0f without), tc_lan %.0f ns (floor %.0f)",
			r.Clients, r.KernelNs, r.KernelHashedNs, r.KernelBaseNs, r.TCNs, r.TCFloorNs)
		if r.KernelNs <= 0 || r.KernelHashedNs <= 0 || r.KernelBaseNs <= 0 || r.KernelSmallNs <= 0 ||
			r.KernelHashedSmallNs <= 0 || r.KernelCatchAllNs <= 0 || r.TCNs <= 0 {
			t.Errorf("%d clients: non-positive figures %+v", r.Clients, r)
		}
	}
}

// TestClientLookupMatches checks, with the default and the changed hash
// thresholds, that the thresholds are what the namespace reports and that
// the timed datagrams hit the last client's out policy: with the daemon's
// template each is counted as XfrmOutNoStates (the template found no SA),
// and the timed policy (allow, no template) made a block policy refuses
// the send while the other clients' still pass.
func TestClientLookupMatches(t *testing.T) {
	testenv.RequireRoot(t)
	const n = 10
	for _, th := range [][2]int{{}, DefaultClientOptions.HThresh} {
		t.Run(fmt.Sprintf("hthresh4=%d,%d", th[0], th[1]), func(t *testing.T) {
			want := th
			if want == [2]int{} {
				want = [2]int{32, 32} // the kernel's default
			}
			t.Run("daemon templates", func(t *testing.T) {
				s := newTestClientSite(t, th, true, want)
				defer s.close()
				before := s.outNoStates(t)
				if _, err := s.batch(ClientVIP(n-1), 5); err != nil {
					t.Fatalf("send under the client's policy: %v", err)
				}
				if got := s.outNoStates(t) - before; got != 5 {
					t.Fatalf("5 sends counted %d times as XfrmOutNoStates, want 5", got)
				}
			})
			t.Run("timed policies", func(t *testing.T) {
				s := newTestClientSite(t, th, false, want)
				defer s.close()
				if _, err := s.batch(ClientVIP(n-1), 1); err != nil {
					t.Fatalf("send under an allow policy: %v", err)
				}
				p := clientXFRMPolicies(n-1, false)[0]
				p.Action = netlink.XFRM_POLICY_BLOCK
				if err := s.h.XfrmPolicyUpdate(&p); err != nil {
					t.Fatal(err)
				}
				if _, err := s.batch(ClientVIP(n-1), 1); !errors.Is(err, unix.EPERM) {
					t.Fatalf("send under a block policy: %v, want EPERM", err)
				}
				if _, err := s.batch(ClientVIP(n-2), 1); err != nil {
					t.Fatalf("send to another client: %v", err)
				}
			})
		})
	}
}

// newTestClientSite is a client site with 10 clients' policies whose
// namespace reports hthresh4 want.
func newTestClientSite(t *testing.T, hthresh [2]int, outTemplates bool, want [2]int) *clientSite {
	t.Helper()
	s, err := newClientSite(hthresh)
	if err != nil {
		t.Fatal(err)
	}
	s.outTemplates = outTemplates
	if err := s.t.do(func() error {
		si, err := getSPDInfo()
		if err == nil && [2]int{int(si.IPv4.Local), int(si.IPv4.Remote)} != want {
			err = fmt.Errorf("hthresh4 %d %d, want %d %d", si.IPv4.Local, si.IPv4.Remote, want[0], want[1])
		}
		return err
	}); err != nil {
		s.close()
		t.Fatal(err)
	}
	if err := s.grow(10); err != nil {
		s.close()
		t.Fatal(err)
	}
	return s
}

// outNoStates reads XfrmOutNoStates in the site's namespace: packets that
// matched an out policy whose template found no SA.
func (s *clientSite) outNoStates(t *testing.T) int {
	t.Helper()
	var n int
	err := s.t.do(func() error {
		b, err := os.ReadFile("/proc/thread-self/net/xfrm_stat")
		if err != nil {
			return err
		}
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) == 2 && f[0] == "XfrmOutNoStates" {
				n, err = strconv.Atoi(f[1])
				return err
			}
		}
		return errors.New("no XfrmOutNoStates in xfrm_stat")
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// BenchmarkClientLookup is the outbound lookup per remote-access client:
// the kernel's XFRM policy lookup (default hash thresholds and hthresh4
// 0 32) against tc_lan, at each client count, with the ratio to the
// smallest count.
//
//	go test -run '^$' -bench ClientLookup -benchtime 1x ./bench/
func BenchmarkClientLookup(b *testing.B) {
	testenv.RequireBPF(b)
	for range b.N {
		rs, err := ClientLookup(DefaultOptions, DefaultClientOptions, nil)
		skipWithoutBPF(b, err)
		for _, r := range rs {
			b.Run(fmt.Sprintf("clients=%d", r.Clients), func(b *testing.B) {
				b.ReportMetric(0, "ns/op")
				b.ReportMetric(r.KernelLookupNs(), "kernel-ns/pkt")
				b.ReportMetric(r.KernelHashedLookupNs(), "kernel-hthresh-ns/pkt")
				b.ReportMetric(r.TCLookupNs(), "tc_lan-ns/pkt")
				b.ReportMetric(r.KernelRatio(), "kernel-x-smallest")
				b.ReportMetric(r.KernelHashedRatio(), "kernel-hthresh-x-smallest")
				b.ReportMetric(r.TCRatio(), "tc_lan-x-smallest")
				b.ReportMetric(r.KernelCatchAllLookupNs(), "kernel-catch-all-ns/pkt")
			})
		}
	}
}
