package bench

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/xdpsec/xdpsec/maps/xfrm"
)

// Policy lookup as policies grow: tc_lan's LPM lookup against the
// kernel's own XFRM policy lookup on the same policy set.
//
// The kernel side runs in throwaway network namespaces: one end of a veth
// pair holds the LAN address (172.16.1.1/16) and a route to the sites
// (10.0.0.0/7) through a next hop with a permanent neighbour entry (the
// other end, up, drops the frames as not its own: the cheapest way out
// the host's kernel offers without the dummy module), and N "allow" policies without templates (dir out, the
// site set's selectors) are installed through maps/xfrm. The output path
// of a UDP datagram from an unconnected socket (so that no route or
// bundle is cached in the socket) for the last-inserted policy's /24 is
// timed with the thread's CPU clock over a batch of sends, against the
// same in a namespace with no policies at all, where the kernel skips the
// policy lookup (policy_count is 0). The difference is the lookup.
//
// Selectors with prefixes shorter than the hash thresholds (hthresh4,
// by default 32/32: only /32-to-/32 policies are hashed) go to the
// inexact policies, which since Linux 5.0 are kept in trees of bins by
// destination and source prefix, each bin's list walked in order.
// HThresh sets `ip xfrm policy set hthresh4` to hash the set instead.

// PolicyOptions tune the policy lookup comparison.
type PolicyOptions struct {
	Counts  []int // policy counts, ascending
	Sends   int   // datagrams per timed batch
	Batches int   // batches per count, interleaved with the baseline's; the fastest is kept
	// HThresh, if set, is the (local, remote) prefix length threshold of
	// hthresh4 in the policy namespace: selectors at least that long are
	// hashed. Zero keeps the kernel's default (32, 32).
	HThresh [2]int
	// SetupBudget bounds the time spent installing policies; counts
	// past it are left out (and Skipped says so).
	SetupBudget time.Duration
}

// DefaultPolicyOptions are what `make bench` uses.
var DefaultPolicyOptions = PolicyOptions{
	Counts:      []int{10, 100, 1_000, 10_000, 100_000},
	Sends:       4_000,
	Batches:     25,
	SetupBudget: 5 * time.Minute,
}

// PolicyResult is one policy count's lookup cost in the kernel and in
// tc_lan.
type PolicyResult struct {
	Policies int
	// KernelNs is a datagram's output path with the policies installed,
	// KernelBaseNs without any (CPU ns per send, fastest batch).
	KernelNs, KernelBaseNs float64
	// KernelOtherNs is the same send in a namespace with one policy that
	// does not match it: the cost of the policy machinery being on at
	// all, apart from the search among many policies.
	KernelOtherNs float64
	// TCNs is tc_lan on a datagram for the last policy, TCFloorNs the
	// floor program on it (ns per run, fastest round).
	TCNs, TCFloorNs float64
	// Setup is how long installing the kernel policies took (cumulative).
	Setup time.Duration
}

// KernelLookupNs is what the policies add to the kernel's output path.
func (r PolicyResult) KernelLookupNs() float64 { return r.KernelNs - r.KernelBaseNs }

// TCLookupNs is tc_lan's cost above the floor.
func (r PolicyResult) TCLookupNs() float64 { return r.TCNs - r.TCFloorNs }

// Crossover is the smallest policy count from which tc_lan is cheaper
// than the kernel's lookup at every larger count measured; ok is false if
// it never is.
func Crossover(rs []PolicyResult) (n int, ok bool) {
	for i := len(rs) - 1; i >= 0; i-- {
		if rs[i].TCLookupNs() >= rs[i].KernelLookupNs() {
			break
		}
		n, ok = rs[i].Policies, true
	}
	return n, ok
}

// xfrmSite is a namespace with the dummy LAN interface and an
// unconnected UDP socket bound to the LAN address.
type xfrmSite struct {
	t    *nsThread
	fd   int
	conn *xfrm.Conn // nil in the baseline
	n    int        // policies installed
}

func newXFRMSite(withPolicies bool, hthresh [2]int) (*xfrmSite, error) {
	t, err := newNSThread()
	if err != nil {
		return nil, err
	}
	s := &xfrmSite{t: t, fd: -1}
	for _, args := range [][]string{
		{"ip", "link", "add", "xb0", "type", "veth", "peer", "name", "xb1"},
		{"sysctl", "-q", "-w", "net.ipv6.conf.xb0.disable_ipv6=1"},
		{"sysctl", "-q", "-w", "net.ipv6.conf.xb1.disable_ipv6=1"},
		{"ip", "addr", "add", lanHost.String() + "/16", "dev", "xb0"},
		{"ip", "link", "set", "xb0", "up"},
		{"ip", "link", "set", "xb1", "up"},
		{"ip", "neigh", "add", "172.16.0.254", "lladdr", "02:00:00:00:00:fe", "dev", "xb0", "nud", "permanent"},
		{"ip", "route", "add", "10.0.0.0/7", "via", "172.16.0.254", "dev", "xb0"},
	} {
		if err := t.run(args...); err != nil {
			s.close()
			return nil, err
		}
	}
	if withPolicies && hthresh != [2]int{} {
		if err := t.run("ip", "xfrm", "policy", "set", "hthresh4", strconv.Itoa(hthresh[0]), strconv.Itoa(hthresh[1])); err != nil {
			s.close()
			return nil, err
		}
	}
	err = t.do(func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		s.fd = fd
		if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: lanHost.As4()}); err != nil {
			return err
		}
		if withPolicies {
			s.conn, err = xfrm.Open()
		}
		return err
	})
	if err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

// xfrmPolicy is site policy i as a kernel policy: allow, no templates.
func xfrmPolicy(i int) xfrm.Policy {
	return xfrm.Policy{Selector: xfrm.Selector{Src: lanPrefix, Dst: siteDst(i)}, Dir: xfrm.DirOut, Action: xfrm.ActionAllow}
}

// grow installs site policies up to n.
func (s *xfrmSite) grow(n int) error {
	for ; s.n < n; s.n++ {
		if err := s.conn.AddPolicy(xfrmPolicy(s.n)); err != nil {
			return err
		}
	}
	return nil
}

// batch sends sends datagrams to dst and returns the thread's CPU ns per
// send.
func (s *xfrmSite) batch(dst netip.Addr, sends int) (float64, error) {
	var per float64
	err := s.t.do(func() error {
		payload := make([]byte, 64)
		to := &unix.SockaddrInet4{Port: 53, Addr: dst.As4()}
		var t0, t1 unix.Timespec
		if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &t0); err != nil {
			return err
		}
		for range sends {
			if err := unix.Sendto(s.fd, payload, 0, to); err != nil {
				return fmt.Errorf("sendto %s: %w", dst, err)
			}
		}
		if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &t1); err != nil {
			return err
		}
		per = float64(t1.Nano()-t0.Nano()) / float64(sends)
		return nil
	})
	return per, err
}

func (s *xfrmSite) close() {
	if s.conn != nil {
		s.conn.Close()
	}
	if s.fd >= 0 {
		s.t.do(func() error { return unix.Close(s.fd) })
	}
	s.t.close()
}

// ErrSetupBudget means installing the policies took longer than allowed;
// the counts measured so far are returned with it.
var ErrSetupBudget = errors.New("policy setup budget exceeded")

// PolicyLookup measures the kernel's lookup and tc_lan's at each count,
// calling progress (if not nil) with each result as it comes.
func PolicyLookup(o Options, po PolicyOptions, progress func(PolicyResult)) ([]PolicyResult, error) {
	base, err := newXFRMSite(false, [2]int{})
	if err != nil {
		return nil, err
	}
	defer base.close()
	pol, err := newXFRMSite(true, po.HThresh)
	if err != nil {
		return nil, err
	}
	defer pol.close()
	other, err := newXFRMSite(true, po.HThresh)
	if err != nil {
		return nil, err
	}
	defer other.close()
	if err := other.conn.AddPolicy(xfrm.Policy{Selector: xfrm.Selector{
		Src: netip.MustParsePrefix("192.168.0.0/16"), Dst: netip.MustParsePrefix("192.168.1.0/24")},
		Dir: xfrm.DirOut, Action: xfrm.ActionAllow}); err != nil {
		return nil, err
	}

	var out []PolicyResult
	var setup time.Duration
	for _, n := range po.Counts {
		t0 := time.Now()
		if err := pol.grow(n); err != nil {
			return out, fmt.Errorf("install %d XFRM policies: %w", n, err)
		}
		setup += time.Since(t0)
		r := PolicyResult{Policies: n, Setup: setup}
		dst := lastSiteHost(n)
		var kern, kbase, kother []float64
		for range po.Batches {
			b, err := base.batch(dst, po.Sends)
			if err != nil {
				return out, err
			}
			k, err := pol.batch(dst, po.Sends)
			if err != nil {
				return out, err
			}
			o, err := other.batch(dst, po.Sends)
			if err != nil {
				return out, err
			}
			kbase, kern, kother = append(kbase, b), append(kern, k), append(kother, o)
		}
		r.KernelNs, r.KernelBaseNs, r.KernelOtherNs = slices.Min(kern), slices.Min(kbase), slices.Min(kother)

		d, pkt, err := TCLanSetup(n)
		if err != nil {
			return out, err
		}
		ns, err := MeasureRounds(d.Floor.XdpFloor, o, Run{d.Objs.TcLan, pkt, tcActUnspec})
		d.Close()
		if err != nil {
			return out, fmt.Errorf("tc_lan, %d policies: %w", n, err)
		}
		r.TCNs, r.TCFloorNs = ns[0], ns[1]
		if progress != nil {
			progress(r)
		}
		out = append(out, r)
		if po.SetupBudget > 0 && setup > po.SetupBudget {
			return out, fmt.Errorf("%w: %d policies took %s", ErrSetupBudget, n, setup.Round(time.Second))
		}
	}
	return out, nil
}
