package demo

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xdpsec/xdpsec/dist"
	"github.com/xdpsec/xdpsec/ike/swanctl"
)

// TestSiteConfs: both gateways' configurations, derived from the shipped
// example, load without warnings and are each other's mirror image; A's
// differs from the example only in its secret.
func TestSiteConfs(t *testing.T) {
	const secret = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3I="
	a, b, err := SiteConfs(dist.SwanctlConf, secret)
	if err != nil {
		t.Fatal(err)
	}
	if diff := lineDiff(dist.SwanctlConf, a); len(diff) != 1 || !strings.Contains(diff[0], "0s"+secret) {
		t.Errorf("A's configuration differs from the example in %q, want only the secret", diff)
	}
	load := func(name, conf string) *swanctl.Connection {
		t.Helper()
		p := filepath.Join(t.TempDir(), "swanctl.conf")
		if err := os.WriteFile(p, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := swanctl.Load(p)
		if err != nil {
			t.Fatalf("site %s: %v\n%s", name, err, conf)
		}
		for _, w := range c.Warnings {
			t.Errorf("site %s: %v", name, w)
		}
		if len(c.Connections) != 1 || len(c.Connections[0].Children) != 1 {
			t.Fatalf("site %s: want one connection with one CHILD_SA", name)
		}
		return c.Connections[0]
	}
	ca, cb := load("A", a), load("B", b)
	str := func(v any) string { return fmt.Sprint(v) }
	for _, x := range []struct{ what, a, b string }{
		{"local_addrs/remote_addrs", str(ca.LocalAddrs), str(cb.RemoteAddrs)},
		{"remote_addrs/local_addrs", str(ca.RemoteAddrs), str(cb.LocalAddrs)},
		{"local.id/remote.id", ca.Local[0].IDSpec, cb.Remote[0].IDSpec},
		{"remote.id/local.id", ca.Remote[0].IDSpec, cb.Local[0].IDSpec},
		{"local_ts/remote_ts", str(ca.Children[0].LocalTS), str(cb.Children[0].RemoteTS)},
		{"remote_ts/local_ts", str(ca.Children[0].RemoteTS), str(cb.Children[0].LocalTS)},
		{"proposals", str(ca.Proposals), str(cb.Proposals)},
	} {
		if x.a != x.b {
			t.Errorf("%s: A %s, B %s", x.what, x.a, x.b)
		}
	}
	if ca.Local[0].IDSpec == cb.Local[0].IDSpec {
		t.Errorf("both gateways are %s", ca.Local[0].IDSpec)
	}
	if got := cb.Children[0].StartAction.String(); got != "none" {
		t.Errorf("B's start_action is %s, want none (A initiates)", got)
	}
	if got := ca.Children[0].StartAction.String(); got != "start" {
		t.Errorf("A's start_action is %s, want the example's start", got)
	}

	s, err := exampleSites(a)
	if err != nil {
		t.Fatal(err)
	}
	if s.outerA.String() != "192.0.2.1" || s.outerB.String() != "198.51.100.7" || s.innerA.String() != "10.1.0.0/16" || s.innerB.String() != "10.2.0.0/16" {
		t.Errorf("example sites: %+v", s)
	}
}

// TestSiteConfsRefuses: what the demo cannot mirror is an error naming it.
func TestSiteConfsRefuses(t *testing.T) {
	for _, c := range []struct{ name, conf, want string }{
		{"no placeholder", strings.Replace(dist.SwanctlConf, "0sREPLACE", "0sXX", 1), "placeholder"},
		{"no local_ts", strings.Replace(dist.SwanctlConf, "local_ts", "# local_ts", 1), "no local_ts"},
		{"two children", strings.Replace(dist.SwanctlConf, "children {", "children {\nx {\nlocal_ts = 10.9.0.0/16\n}", 1), "twice"},
	} {
		if _, _, err := SiteConfs(c.conf, "c2VjcmV0"); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error with %q", c.name, err, c.want)
		}
	}
}

// lineDiff is the lines of b that differ from a's at the same place.
func lineDiff(a, b string) []string {
	la, lb := strings.Split(a, "\n"), strings.Split(b, "\n")
	var d []string
	for i := range lb {
		if i >= len(la) || la[i] != lb[i] {
			d = append(d, lb[i])
		}
	}
	return d
}
