package fleettest

import (
	"strings"
	"testing"
	"time"

	"github.com/xdpsec/xdpsec/internal/testenv"
)

func TestFleetEtcdOnLoopback(t *testing.T) {
	ep := Start(t)
	if !strings.HasPrefix(ep, "http://127.0.0.1:") || !answers(ep, nil) {
		t.Fatalf("etcd at %q does not answer", ep)
	}
}

// etcd in a test's network namespace answers there, not in ours.
func TestFleetEtcdInNetns(t *testing.T) {
	ns := testenv.NewNetns(t, "fltest")
	ep := StartWith(t, Options{Netns: ns, Port: 2379})
	if ep != "http://127.0.0.1:2379" {
		t.Fatalf("endpoint %q", ep)
	}
	var inside bool
	ns.Do(func() error { inside = answers(ep, nil); return nil })
	if !inside {
		t.Fatal("etcd does not answer in its namespace")
	}
	// It outlives the thread that started it: still there a moment later,
	// after other namespace switches ended their threads.
	for range 5 {
		ns.Do(func() error { return nil })
	}
	time.Sleep(200 * time.Millisecond)
	ns.Do(func() error { inside = answers(ep, nil); return nil })
	if !inside {
		t.Fatal("etcd died with the thread that started it")
	}
}
