package bench

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/xdpsec/xdpsec/internal/packet"
	"github.com/xdpsec/xdpsec/maps"
	"github.com/xdpsec/xdpsec/maps/xfrm"
)

// Outbound lookup per remote-access client: a gateway with one CHILD_SA
// per road warrior, each with the client's virtual IP (/32) as the remote
// selector and 0.0.0.0/0 as the local one, must find the client's tunnel
// for every packet to it. Measured at growing client counts, the packet
// always for the last client added:
//
//   - the kernel's XFRM policy lookup, with the out, in and fwd policies
//     the daemon installs per CHILD_SA in policy-based mode (tunnel-mode
//     template with the CHILD_SA's reqid), once with the kernel's default
//     hash thresholds (only /32-to-/32 selectors are hashed, so a
//     /0-to-/32 one goes to the inexact policies, found through a tree of
//     destination prefixes), once with hthresh4 0 32 (hashed by their /32);
//   - the kernel's lookup with one catch-all policy (0.0.0.0/0 both ways),
//     its part in route-based mode, where tc_lan picks the client;
//   - tc_lan with the same clients in its SPD, each PROTECT with an if_id
//     of its own.
//
// The host kernel has XFRM policies but no ESP transform, so no SA can be
// installed, and it refuses optional ("level use") tunnel-mode templates
// in outbound policies. With the daemon's template, the kernel finds the
// out policy, resolves the template, finds no SA (and no key manager to
// ask for one) and, as net.core.xfrm_larval_drop has it, sends the
// datagram into a blackhole: that leaves the device transmit out of the
// path, so the difference to a send without policies would no longer be
// the lookup (it can come out negative). The timed out policies are
// therefore "allow" without a template: the kernel searches its policies
// the same way (the templates are only read once the policy is found) and
// then sends the datagram out of the veth as the namespace without
// policies does, so the difference is the lookup. The in and fwd policies
// are the daemon's, templates included: they take no part in the outbound
// lookup, which searches the out direction only, but they are in the
// kernel's tables as they would be. A test checks that the datagrams match
// the last client's out policy with the daemon's template too (counted as
// XfrmOutNoStates). Timing as in PolicyLookup: the thread's CPU time per
// send over a batch of UDP datagrams from an unconnected socket, fastest
// batch, against the same sends in a namespace without policies.

// ClientOptions tune the remote-access lookup measurement.
type ClientOptions struct {
	Counts  []int // client counts, ascending; the first is the reference of the ratios
	Sends   int   // datagrams per timed batch
	Batches int   // batches per count, interleaved between the namespaces; the fastest is kept
	// HThresh is hthresh4 (local, remote prefix length) in the hashed
	// namespace: selectors at least that long are hashed.
	HThresh [2]int
}

// DefaultClientOptions are what `make bench` uses.
var DefaultClientOptions = ClientOptions{
	Counts:  []int{10, 1_000, 10_000, 100_000},
	Sends:   1_000,
	Batches: 60,
	HThresh: [2]int{0, 32},
}

// ClientTarget is the most the per-packet lookup may grow from the
// smallest client count to the largest the issue names (10,000).
const ClientTarget = 1.5

// ClientResult is the outbound lookup's cost at one client count.
type ClientResult struct {
	Clients int
	// KernelBaseNs is a datagram's output path without any XFRM policy,
	// KernelNs with the clients' policies and the default hash
	// thresholds, KernelHashedNs with hthresh4 set (CPU ns per send,
	// fastest batch).
	KernelBaseNs, KernelNs, KernelHashedNs float64
	// KernelSmallNs and KernelHashedSmallNs are the same sends with the
	// smallest client count's policies, in namespaces of their own,
	// measured in the same batches: the ratios compare like with like.
	KernelSmallNs, KernelHashedSmallNs float64
	// KernelCatchAllNs is the same send with a single out policy from
	// 0.0.0.0/0 to 0.0.0.0/0: the kernel's part of route-based mode,
	// where tc_lan picks the client and tags the packet with its if_id,
	// and one catch-all policy per if_id serves it. (The kernel finds an
	// if_id's policies by hashing the if_id; this host has no XFRM
	// interfaces to set one, so the catch-all here has none.)
	KernelCatchAllNs float64
	// TCNs is tc_lan on a packet to the last client, TCFloorNs the floor
	// program on it, TCSmallNs tc_lan with the smallest count in the same
	// rounds (ns per run, fastest round).
	TCNs, TCFloorNs, TCSmallNs float64
	// Setup is how long installing the kernel policies took in both
	// namespaces (three per client each, cumulative).
	Setup time.Duration
}

// KernelLookupNs is what the clients' policies add to a send, default
// hash thresholds.
func (r ClientResult) KernelLookupNs() float64 { return r.KernelNs - r.KernelBaseNs }

// KernelHashedLookupNs is the same with hthresh4 set.
func (r ClientResult) KernelHashedLookupNs() float64 { return r.KernelHashedNs - r.KernelBaseNs }

// KernelRatio is KernelLookupNs as a multiple of the same with the
// smallest client count, measured in the same batches.
func (r ClientResult) KernelRatio() float64 {
	return r.KernelLookupNs() / (r.KernelSmallNs - r.KernelBaseNs)
}

// KernelHashedRatio is the same with hthresh4 set.
func (r ClientResult) KernelHashedRatio() float64 {
	return r.KernelHashedLookupNs() / (r.KernelHashedSmallNs - r.KernelBaseNs)
}

// TCLookupNs is tc_lan's cost above the floor: what the program adds to
// a packet, its parsing, lookup and counters.
func (r ClientResult) TCLookupNs() float64 { return r.TCNs - r.TCFloorNs }

// TCRatio is TCLookupNs as a multiple of the same with the smallest
// client count, measured in the same rounds.
func (r ClientResult) TCRatio() float64 { return r.TCLookupNs() / (r.TCSmallNs - r.TCFloorNs) }

// KernelCatchAllLookupNs is what one catch-all policy adds to a send.
func (r ClientResult) KernelCatchAllLookupNs() float64 { return r.KernelCatchAllNs - r.KernelBaseNs }

// RouteBasedNs is the per-packet cost of route-based mode's lookup:
// tc_lan's, plus the kernel's of one catch-all policy.
func (r ClientResult) RouteBasedNs() float64 { return r.TCLookupNs() + r.KernelCatchAllLookupNs() }

var (
	// clientPool holds the clients' virtual IPs: client i has the
	// (i+1)th address.
	clientPool = netip.MustParsePrefix("10.64.0.0/10")
	// clientOuter holds their outer (IKE and ESP) addresses.
	clientOuter = netip.MustParsePrefix("198.18.0.0/15")
	// anyV4 is the clients' local selector: all traffic through the tunnel.
	anyV4 = netip.MustParsePrefix("0.0.0.0/0")
)

func nthAddr(p netip.Prefix, i int) netip.Addr {
	a := p.Addr().As4()
	binary.BigEndian.PutUint32(a[:], binary.BigEndian.Uint32(a[:])+uint32(i)+1)
	return netip.AddrFrom4(a)
}

// ClientVIP is client i's virtual IP.
func ClientVIP(i int) netip.Addr { return nthAddr(clientPool, i) }

// ClientPolicies are n road warriors' outbound SPD entries in tc_lan:
// 0.0.0.0/0 to each client's virtual IP, PROTECT with the client's own
// if_id. The first k of ClientPolicies(n) are ClientPolicies(k).
func ClientPolicies(n int) []maps.Policy {
	ps := make([]maps.Policy, n)
	for i := range ps {
		ps[i] = maps.Policy{
			Src: anyV4, Dst: netip.PrefixFrom(ClientVIP(i), 32),
			DportHi: 0xffff, Action: maps.ActionProtect, IfID: uint32(i + 1),
		}
	}
	return ps
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// clientXFRMPolicies are client i's kernel policies as the daemon
// installs them in policy-based mode (internal/dataplane addClassic):
// out 0.0.0.0/0 -> VIP/32, in and fwd VIP/32 -> 0.0.0.0/0, each with a
// tunnel-mode ESP template between us and the client's outer address,
// carrying the CHILD_SA's reqid, and the daemon's priority for these
// prefix lengths. Without outTemplate, the out policy has none (the
// timed policies, see above).
func clientXFRMPolicies(i int, outTemplate bool) []netlink.XfrmPolicy {
	vip := ipNet(netip.PrefixFrom(ClientVIP(i), 32))
	outer := nthAddr(clientOuter, i).AsSlice()
	const priority = 200000 - 100*(0+32)
	tmpl := func(src, dst net.IP) []netlink.XfrmPolicyTmpl {
		return []netlink.XfrmPolicyTmpl{{Src: src, Dst: dst, Proto: netlink.XFRM_PROTO_ESP,
			Mode: netlink.XFRM_MODE_TUNNEL, Reqid: i + 1}}
	}
	out := netlink.XfrmPolicy{Src: ipNet(anyV4), Dst: vip, Dir: netlink.XFRM_DIR_OUT, Priority: priority}
	if outTemplate {
		out.Tmpls = tmpl(us.AsSlice(), outer)
	}
	return []netlink.XfrmPolicy{
		out,
		{Src: vip, Dst: ipNet(anyV4), Dir: netlink.XFRM_DIR_IN, Priority: priority, Tmpls: tmpl(outer, us.AsSlice())},
		{Src: vip, Dst: ipNet(anyV4), Dir: netlink.XFRM_DIR_FWD, Priority: priority, Tmpls: tmpl(outer, us.AsSlice())},
	}
}

// clientSite is a namespace whose LAN side (a veth holding 172.16.1.1/16)
// routes the client pool through a next hop with a permanent neighbour
// entry, with an unconnected UDP socket bound to the LAN address and, in
// the measured namespaces, the clients' policies.
type clientSite struct {
	t  *nsThread
	h  *netlink.Handle
	fd int
	n  int // clients whose policies are installed
	// outTemplates gives the out policies the daemon's template.
	outTemplates bool
}

func newClientSite(hthresh [2]int) (*clientSite, error) {
	t, err := newNSThread()
	if err != nil {
		return nil, err
	}
	s := &clientSite{t: t, fd: -1}
	if err := t.do(func() error { return s.setup(hthresh) }); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

// setup runs on the namespace's thread.
func (s *clientSite) setup(hthresh [2]int) error {
	h, err := netlink.NewHandle()
	if err != nil {
		return fmt.Errorf("netlink: %w", err)
	}
	s.h = h
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "cb0"}, PeerName: "cb1"}
	if err := h.LinkAdd(veth); err != nil {
		return fmt.Errorf("add veth: %w", err)
	}
	for _, name := range []string{"cb0", "cb1"} {
		// No router solicitations or DAD on the veth while timing.
		if err := os.WriteFile("/proc/sys/net/ipv6/conf/"+name+"/disable_ipv6", []byte("1"), 0); err != nil {
			return err
		}
	}
	lan, err := h.LinkByName("cb0")
	if err != nil {
		return err
	}
	peerLink, err := h.LinkByName("cb1")
	if err != nil {
		return err
	}
	if err := h.AddrAdd(lan, &netlink.Addr{IPNet: ipNet(netip.PrefixFrom(lanHost, lanPrefix.Bits()))}); err != nil {
		return fmt.Errorf("address the veth: %w", err)
	}
	for _, l := range []netlink.Link{lan, peerLink} {
		if err := h.LinkSetUp(l); err != nil {
			return err
		}
	}
	// The other end, up, drops the frames as not its own.
	nextHop := netip.MustParseAddr("172.16.0.254")
	if err := h.NeighAdd(&netlink.Neigh{LinkIndex: lan.Attrs().Index, Family: unix.AF_INET, State: netlink.NUD_PERMANENT,
		IP: nextHop.AsSlice(), HardwareAddr: net.HardwareAddr{0x02, 0, 0, 0, 0, 0xfe}}); err != nil {
		return fmt.Errorf("neighbour: %w", err)
	}
	if err := h.RouteAdd(&netlink.Route{LinkIndex: lan.Attrs().Index, Dst: ipNet(clientPool), Gw: nextHop.AsSlice()}); err != nil {
		return fmt.Errorf("route the pool: %w", err)
	}
	if hthresh != [2]int{} {
		if err := setHThresh4(hthresh[0], hthresh[1]); err != nil {
			return err
		}
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	s.fd = fd
	return unix.Bind(fd, &unix.SockaddrInet4{Addr: lanHost.As4()})
}

// setHThresh4 sets the IPv4 policy hash thresholds of the calling
// thread's namespace (`ip xfrm policy set hthresh4 LBITS RBITS`).
func setHThresh4(lbits, rbits int) error {
	c, err := xfrm.Open()
	if err != nil {
		return err
	}
	defer c.Close()
	return c.SetHashThresholds(false, xfrm.HashThresholds{Local: uint8(lbits), Remote: uint8(rbits)})
}

// getSPDInfo reads the calling thread's namespace's SPD information.
func getSPDInfo() (xfrm.SPDInfo, error) {
	c, err := xfrm.Open()
	if err != nil {
		return xfrm.SPDInfo{}, err
	}
	defer c.Close()
	return c.SPDInfo()
}

// grow installs clients' policies up to n.
func (s *clientSite) grow(n int) error {
	for ; s.n < n; s.n++ {
		for _, p := range clientXFRMPolicies(s.n, s.outTemplates) {
			if err := s.h.XfrmPolicyAdd(&p); err != nil {
				return fmt.Errorf("add policy %s for client %d: %w", p.Dir, s.n, err)
			}
		}
	}
	return nil
}

// settle lets the kernel's policy hash tables catch up with a burst of
// inserts. The kernel doubles a direction's hash table in deferred work
// that an insert schedules when the direction holds more policies than
// buckets, one doubling per run, each run waiting for an RCU grace period;
// after a burst of inserts the tables are left far smaller than their
// policies, with long chains, until later inserts come. A gateway whose
// clients arrive over time does not see that, so each round here adds and
// deletes one more out policy and gives the work time to run, until the
// out table has a bucket per policy. That table's size is not reported,
// but the same runs double the policy index table, which GETSPDINFO
// reports: both start at 8 buckets and, as long as the out direction
// needs it (here in and fwd hold as many policies as out), grow together.
func (s *clientSite) settle() error {
	probe := clientXFRMPolicies(1<<21, false)[0]
	for range 2000 {
		var info xfrm.SPDInfo
		err := s.t.do(func() error {
			var err error
			info, err = getSPDInfo()
			return err
		})
		if err != nil {
			return err
		}
		if info.HashBuckets >= info.Out || info.HashBuckets >= info.HashBucketsMax-1 {
			return nil
		}
		if err := s.h.XfrmPolicyAdd(&probe); err != nil {
			return fmt.Errorf("settle: %w", err)
		}
		if err := s.h.XfrmPolicyDel(&probe); err != nil {
			return fmt.Errorf("settle: %w", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return errors.New("settle: the kernel's policy hash tables did not grow in 10s")
}

// batch sends sends datagrams to dst and returns the thread's CPU ns per
// send.
func (s *clientSite) batch(dst netip.Addr, sends int) (float64, error) {
	var per float64
	err := s.t.do(func() error {
		var err error
		per, err = timeSends(s.fd, dst, sends)
		return err
	})
	return per, err
}

// timeSends sends datagrams from fd to dst and returns the calling
// thread's CPU ns per send.
func timeSends(fd int, dst netip.Addr, sends int) (float64, error) {
	payload := make([]byte, 64)
	to := &unix.SockaddrInet4{Port: 53, Addr: dst.As4()}
	var t0, t1 unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &t0); err != nil {
		return 0, err
	}
	for range sends {
		if err := unix.Sendto(fd, payload, 0, to); err != nil {
			return 0, fmt.Errorf("sendto %s: %w", dst, err)
		}
	}
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &t1); err != nil {
		return 0, err
	}
	return float64(t1.Nano()-t0.Nano()) / float64(sends), nil
}

func (s *clientSite) close() {
	if s.h != nil {
		s.h.Close()
	}
	if s.fd >= 0 {
		s.t.do(func() error { return unix.Close(s.fd) })
	}
	s.t.close()
}

// TCLanClientSetup loads a dataplane with n clients in the SPD and returns
// it with a UDP packet from the LAN to the last client.
func TCLanClientSetup(n int) (*Dataplane, []byte, error) {
	d, err := LoadDataplane(1024, uint32(n))
	if err != nil {
		return nil, nil, err
	}
	if _, err := d.Maps.SPD.Replace(ClientPolicies(n)); err != nil {
		d.Close()
		return nil, nil, fmt.Errorf("load %d client policies: %w", n, err)
	}
	dst := ClientVIP(n - 1)
	return d, packet.Build(packet.Spec{Src: lanHost, Dst: dst, Proto: packet.ProtoUDP,
		Payload: packet.UDP(lanHost, dst, 4000, 53, make([]byte, 1000))}), nil
}

// policyTimerDelay is how long after its insertion a policy's timer runs
// (a second) and a little more.
const policyTimerDelay = 1100 * time.Millisecond

// ClientLookup measures the outbound lookup to the last client at each
// client count, in the kernel (default and hashed) and in tc_lan, calling
// progress (if not nil) with each result as it comes.
func ClientLookup(o Options, co ClientOptions, progress func(ClientResult)) ([]ClientResult, error) {
	if len(co.Counts) == 0 {
		return nil, nil
	}
	// Sites: without policies; the clients' policies, default and hashed;
	// the smallest count's, default and hashed, which stay as they are and
	// are measured in the same batches as each larger count; one
	// catch-all policy.
	hthresh := [][2]int{{}, {}, co.HThresh, {}, co.HThresh, {}}
	sites := make([]*clientSite, len(hthresh))
	for i, th := range hthresh {
		s, err := newClientSite(th)
		if err != nil {
			return nil, err
		}
		defer s.close()
		sites[i] = s
	}
	base, def, hashed, smallDef, smallHashed, catchAll := sites[0], sites[1], sites[2], sites[3], sites[4], sites[5]
	all := netlink.XfrmPolicy{Src: ipNet(anyV4), Dst: ipNet(anyV4), Dir: netlink.XFRM_DIR_OUT}
	if err := catchAll.h.XfrmPolicyAdd(&all); err != nil {
		return nil, fmt.Errorf("add the catch-all policy: %w", err)
	}
	for _, s := range []*clientSite{smallDef, smallHashed} {
		if err := s.grow(co.Counts[0]); err != nil {
			return nil, err
		}
		if err := s.settle(); err != nil {
			return nil, err
		}
	}
	smallDst := ClientVIP(co.Counts[0] - 1)
	// tc_lan with the smallest count stays loaded too.
	small, smallPkt, err := TCLanClientSetup(co.Counts[0])
	if err != nil {
		return nil, err
	}
	defer small.Close()

	var out []ClientResult
	var setup time.Duration
	for _, n := range co.Counts {
		t0 := time.Now()
		for _, s := range []*clientSite{def, hashed} {
			if err := s.grow(n); err != nil {
				return out, err
			}
			if err := s.settle(); err != nil {
				return out, err
			}
		}
		setup += time.Since(t0)
		// Each new policy arms a timer that fires a second later (its
		// lifetime check): let them pass before timing.
		time.Sleep(policyTimerDelay)
		r := ClientResult{Clients: n, Setup: setup}
		dst := ClientVIP(n - 1)
		timed := []struct {
			s   *clientSite
			dst netip.Addr
			min *float64
		}{
			{base, dst, &r.KernelBaseNs}, {def, dst, &r.KernelNs}, {hashed, dst, &r.KernelHashedNs},
			{smallDef, smallDst, &r.KernelSmallNs}, {smallHashed, smallDst, &r.KernelHashedSmallNs},
			{catchAll, dst, &r.KernelCatchAllNs},
		}
		// A few batches first, not kept: the first sends after a pause
		// are slower.
		for b := range co.Batches + clientWarmup {
			for _, m := range timed {
				v, err := m.s.batch(m.dst, co.Sends)
				if err != nil {
					return out, err
				}
				if b >= clientWarmup && (*m.min == 0 || v < *m.min) {
					*m.min = v
				}
			}
		}

		d, pkt, err := TCLanClientSetup(n)
		if err != nil {
			return out, err
		}
		ns, err := MeasureRounds(d.Floor.XdpFloor, o, Run{d.Objs.TcLan, pkt, tcActUnspec}, Run{small.Objs.TcLan, smallPkt, tcActUnspec})
		d.Close()
		if err != nil {
			return out, fmt.Errorf("tc_lan, %d clients: %w", n, err)
		}
		r.TCNs, r.TCSmallNs, r.TCFloorNs = ns[0], ns[1], ns[2]
		if progress != nil {
			progress(r)
		}
		out = append(out, r)
	}
	return out, nil
}

// clientWarmup is how many batches per count and namespace are sent
// before the timed ones.
const clientWarmup = 3
