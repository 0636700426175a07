package testenv

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/xdpsec/xdpsec/internal/nsutil"
)

// Netns is a network namespace a test made; it is deleted when the test ends.
type Netns struct{ *nsutil.Namespace }

// NewNetns makes a named network namespace (visible to `ip netns`) with
// loopback up, removed at cleanup even if the test fails.
func NewNetns(t testing.TB, prefix string) *Netns {
	t.Helper()
	RequireRoot(t)
	RequireCommand(t, "ip")
	ns, err := nsutil.New(prefix)
	if err != nil {
		t.Skipf("skipped: cannot make a network namespace: %v", err)
	}
	t.Cleanup(ns.Close)
	return &Netns{ns}
}

// Run runs a command inside the namespace.
func (n *Netns) Run(args ...string) (string, error) {
	out, err := exec.Command("ip", append([]string{"netns", "exec", n.Name}, args...)...).CombinedOutput()
	return string(out), err
}

// MustRun runs a command inside the namespace and fails the test on error.
func (n *Netns) MustRun(t testing.TB, args ...string) string {
	t.Helper()
	out, err := n.Run(args...)
	if err != nil {
		t.Fatalf("in %s: %s: %v\n%s", n.Name, strings.Join(args, " "), err, out)
	}
	return out
}

// Veth makes a veth pair with one end in each namespace, addresses them
// (CIDR strings, "" for none) and brings them up. IPv6 is turned off on
// both ends so router solicitations do not add stray packets.
func Veth(t testing.TB, a *Netns, aName, aAddr string, b *Netns, bName, bAddr string) {
	t.Helper()
	a.MustRun(t, "ip", "link", "add", aName, "type", "veth", "peer", "name", bName, "netns", b.Name)
	for _, side := range []struct {
		ns         *Netns
		name, addr string
	}{{a, aName, aAddr}, {b, bName, bAddr}} {
		side.ns.MustRun(t, "sysctl", "-q", "-w", "net.ipv6.conf."+side.name+".disable_ipv6=1")
		if side.addr != "" {
			side.ns.MustRun(t, "ip", "addr", "add", side.addr, "dev", side.name)
		}
		side.ns.MustRun(t, "ip", "link", "set", side.name, "up")
	}
}
