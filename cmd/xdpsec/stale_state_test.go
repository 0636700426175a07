package main

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/xdpsec/xdpsec/internal/daemon"
	"github.com/xdpsec/xdpsec/internal/testenv"
)

// TestDaemonStaleState is issue 14's stale-state scenario: a daemon whose
// connection `site` leads to one peer establishes and stops (SIGTERM);
// started again with `site` leading to another peer, on the same state
// file, it does not take the old IKE SA back (it is deleted, with a line
// that says why) and its `initiate --child` comes up with its own peer. A
// daemon of another network namespace started on that state file then
// leaves it alone, saying so.
func TestDaemonStaleState(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireCommand(t, "nsenter")
	nsA := testenv.NewNetns(t, "xdpsec-sa")
	nsB := testenv.NewNetns(t, "xdpsec-sb")
	nsC := testenv.NewNetns(t, "xdpsec-sc")
	testenv.Veth(t, nsA, "wan0", "10.99.4.1/24", nsB, "wan0", "10.99.4.2/24")
	testenv.Veth(t, nsA, "wan1", "10.99.5.2/24", nsC, "wan0", "10.99.5.1/24")
	a := newSite(t, "a", nsA, siteConf("10.99.4.1", "10.99.4.2", "moon.example.org", "sun.example.org", "10.1.0.0/16", "10.2.0.0/16", ""))
	b := newSite(t, "b", nsB, siteConf("10.99.4.2", "10.99.4.1", "sun.example.org", "moon.example.org", "10.2.0.0/16", "10.1.0.0/16", ""))
	c := newSite(t, "c", nsC, siteConf("10.99.5.1", "10.99.5.2", "sun.example.org", "moon.example.org", "10.2.0.0/16", "10.1.0.0/16", ""))
	a.start()
	b.start()
	c.start()
	a.ok("initiate", "--child", "net")
	old := a.sas()
	a.stop()

	// The same connection name, another peer.
	a.writeConf(siteConf("10.99.5.2", "10.99.5.1", "moon.example.org", "sun.example.org", "10.1.0.0/16", "10.2.0.0/16", ""))
	a.start()
	if s := a.sas(); len(s) != 0 {
		t.Fatalf("the IKE SA to the old peer was taken back: %+v", s)
	}
	log, _ := os.ReadFile(a.logPath)
	if !strings.Contains(string(log), "no longer allowed by its connection: peer 10.99.4.2 is not among the remote_addrs of connection \"site\"") {
		t.Fatalf("no line saying why the old IKE SA went:\n%s", log)
	}
	a.ok("initiate", "--child", "net")
	now := a.waitSAs("an IKE SA with the new peer", func(s []daemon.IKESA) bool {
		return len(s) == 1 && s[0].State == "ESTABLISHED" && s[0].RemoteHost == "10.99.5.1"
	})
	if now[0].SPIi == old[0].SPIi {
		t.Fatalf("the old IKE SA is in use: %+v", now)
	}
	c.waitSAs("c has the IKE SA", func(s []daemon.IKESA) bool { return len(s) == 1 })
	a.stop()

	// Another namespace, the same configuration and state file.
	x := newSite(t, "x", nsB, "")
	x.conf, x.state = a.conf, a.state
	b.stop()
	x.start()
	if s := x.sas(); len(s) != 0 {
		t.Fatalf("a daemon in another namespace took the state back: %+v", s)
	}
	time.Sleep(100 * time.Millisecond)
	log, _ = os.ReadFile(x.logPath)
	if !strings.Contains(string(log), "was written by a daemon in network namespace net:[") || !strings.Contains(string(log), "not taking it back") {
		t.Fatalf("no line saying why the state file was left alone:\n%s", log)
	}
	if _, err := os.Stat(a.state); err != nil {
		t.Fatalf("the other namespace's state file is gone: %v", err)
	}
}
