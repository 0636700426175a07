package bench

import (
	"fmt"
	"net/netip"
	"strings"
	"sync"

	"github.com/xdpsec/xdpsec/internal/nsutil"
)

// The IKE benchmarks' network: a generator namespace and a responder
// namespace joined by a veth pair. The responder reaches the generator's
// source addresses through a next hop (the generator's end of the veth);
// the generator answers for a whole /14 of them with one AnyIP route
// (`ip route add local 10.200.0.0/14 dev lo`), so each IKE SA (up to
// 262,142, enough for the 100,000-SA run) can come from an address of its
// own without configuring them. Spoofed flood sources come from
// 10.204.0.0/16, which the responder
// routes to the generator too; the answers to them arrive at a socket
// nobody reads and are dropped there: the flood's answers cost the
// responder what they would on a real network.
var (
	respAddr     = netip.MustParseAddr("10.99.0.1")
	genHopAddr   = netip.MustParseAddr("10.99.0.2")
	legitPrefix  = netip.MustParsePrefix("10.200.0.0/14") // 262,142 initiators: the 100,000-SA run
	spoofPrefix  = netip.MustParsePrefix("10.204.0.0/16")
	innerPrefix  = netip.MustParsePrefix("10.208.0.0/14") // the initiators' traffic selectors
	respLAN      = "10.2.0.0/16"
	ikeWANPrefix = "/24"
)

// leftovers are the namespaces and pin directories a run has made and not
// yet removed, for Interrupted.
var leftovers sync.Map // path or netns name -> removal

// Interrupted removes what the IKE benchmarks running in this process
// made (namespaces, BPF pins): for a signal handler, since deferred
// cleanups do not run when the process is killed. The responders go
// with the process (their parent death signal).
func Interrupted() {
	leftovers.Range(func(k, v any) bool {
		v.(func())()
		leftovers.Delete(k)
		return true
	})
}

// namedNetns is a network namespace visible to `ip netns` (so that
// nsenter can start the responders in it), deleted by close.
type namedNetns struct{ *nsutil.Namespace }

func newNamedNetns(prefix string) (*namedNetns, error) {
	ns, err := nsutil.New(prefix)
	if err != nil {
		return nil, err
	}
	leftovers.Store(ns.Name, ns.Close)
	return &namedNetns{ns}, nil
}

func (n *namedNetns) path() string { return "/run/netns/" + n.Name }

// run runs a command in the namespace.
func (n *namedNetns) run(args ...string) error {
	if out, err := n.Command(nil, args...); err != nil {
		return fmt.Errorf("in %s: %s: %w: %s", n.Name, strings.Join(args, " "), err, strings.TrimSpace(out))
	}
	return nil
}

func (n *namedNetns) close() {
	n.Close()
	leftovers.Delete(n.Name)
}

// ikeNet is the generator and responder namespaces and the veth between
// them (resp0 on the responder's side: the WAN where xdp_wan attaches).
type ikeNet struct {
	gen, resp *namedNetns
}

func newIKENet() (*ikeNet, error) {
	gen, err := newNamedNetns("xb-gen")
	if err != nil {
		return nil, err
	}
	resp, err := newNamedNetns("xb-resp")
	if err != nil {
		gen.close()
		return nil, err
	}
	n := &ikeNet{gen: gen, resp: resp}
	steps := []struct {
		ns   *namedNetns
		args []string
	}{
		{gen, []string{"ip", "link", "add", "gen0", "type", "veth", "peer", "name", "resp0", "netns", resp.Name}},
		{gen, []string{"sysctl", "-q", "-w", "net.ipv6.conf.gen0.disable_ipv6=1"}},
		{resp, []string{"sysctl", "-q", "-w", "net.ipv6.conf.resp0.disable_ipv6=1"}},
		{gen, []string{"ip", "addr", "add", genHopAddr.String() + ikeWANPrefix, "dev", "gen0"}},
		{resp, []string{"ip", "addr", "add", respAddr.String() + ikeWANPrefix, "dev", "resp0"}},
		{gen, []string{"ip", "link", "set", "gen0", "up"}},
		{resp, []string{"ip", "link", "set", "resp0", "up"}},
		{gen, []string{"ip", "route", "add", "local", legitPrefix.String(), "dev", "lo"}},
		{gen, []string{"ip", "route", "add", "local", spoofPrefix.String(), "dev", "lo"}},
		{resp, []string{"ip", "route", "add", legitPrefix.String(), "via", genHopAddr.String()}},
		{resp, []string{"ip", "route", "add", spoofPrefix.String(), "via", genHopAddr.String()}},
		// kernel-libipsec routes the remote subnets with a source address
		// from charon's local_ts: one of its LAN's addresses is local.
		{resp, []string{"ip", "addr", "add", "10.2.0.1/32", "dev", "lo"}},
	}
	for _, s := range steps {
		if err := s.ns.run(s.args...); err != nil {
			n.close()
			return nil, err
		}
	}
	return n, nil
}

func (n *ikeNet) close() {
	n.resp.close()
	n.gen.close()
}
