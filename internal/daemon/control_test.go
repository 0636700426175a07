package daemon

import (
	"fmt"
	"github.com/xdpsec/xdpsec/internal/testenv"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xdpsec/xdpsec/ike"
	"github.com/xdpsec/xdpsec/ike/iketest"
	"github.com/xdpsec/xdpsec/internal/dataplane"
)

// pairConf is one side of a PSK tunnel between 192.0.2.1 and 192.0.2.2.
func pairConf(local, remote, localID, remoteID, localTS, remoteTS string) string {
	return fmt.Sprintf(`
connections {
   site {
      local_addrs = %s
      remote_addrs = %s
      proposals = aes128gcm16-prfsha256-x25519
      local {
         auth = psk
         id = %s
      }
      remote {
         auth = psk
         id = %s
      }
      children {
         net {
            local_ts = %s
            remote_ts = %s
            esp_proposals = aes128gcm16
         }
      }
   }
}
secrets {
   ike-site {
      id-a = %s
      id-b = %s
      secret = "a shared secret for the test"
   }
}
`, local, remote, localID, remoteID, localTS, remoteTS, localID, remoteID)
}

// enginePair establishes n IKE SAs between two engines on the in-memory
// network and returns a daemon around the initiator's engine.
func enginePair(t *testing.T, n int) (*Daemon, *ike.Engine, *iketest.Network) {
	t.Helper()
	return enginePairWith(t, n, nil)
}

// enginePairWith is enginePair with the daemon's engine reporting its SAs'
// set-up times to h (none if nil).
func enginePairWith(t *testing.T, n int, h *saHistograms) (*Daemon, *ike.Engine, *iketest.Network) {
	t.Helper()
	return enginePairConfig(t, n, func(i int, cfg *ike.Config) {
		if i == 0 && h != nil {
			h.observe(cfg)
		}
	}, h)
}

// enginePairConfig is enginePairWith with mod changing each engine's
// configuration (i: 0 the initiator, 1 the responder).
func enginePairConfig(t *testing.T, n int, mod func(i int, cfg *ike.Config), h *saHistograms) (*Daemon, *ike.Engine, *iketest.Network) {
	t.Helper()
	quiet := slog.New(slog.DiscardHandler)
	if testing.Verbose() && n == 1 {
		quiet = testenv.Logger(t)
	}
	net := iketest.NewNetwork()
	var engines [2]*ike.Engine
	var loaded [2]*Loaded
	for i, conf := range []string{
		pairConf("192.0.2.1", "192.0.2.2", "moon.example.org", "sun.example.org", "10.1.0.0/16", "10.2.0.0/16"),
		pairConf("192.0.2.2", "192.0.2.1", "sun.example.org", "moon.example.org", "10.2.0.0/16", "10.1.0.0/16"),
	} {
		l, err := LoadConfig(writeConfig(t, map[string]string{"swanctl.conf": conf}))
		if err != nil {
			t.Fatal(err)
		}
		cfg := ike.Config{Logger: quiet, Sender: net.Sender(), Dataplane: dataplane.NewDryRunDataplane(quiet, spiRangeZero),
			Credentials: l.Credentials, CookieThreshold: -1}
		mod(i, &cfg)
		e, err := ike.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e.Close() })
		for _, c := range l.Connections {
			if err := e.AddConnection(c); err != nil {
				t.Fatal(err)
			}
		}
		engines[i], loaded[i] = e, l
	}
	net.Attach(netipAddr("192.0.2.1"), engines[0])
	net.Attach(netipAddr("192.0.2.2"), engines[1])
	for range n {
		if _, err := engines[0].Initiate("site"); err != nil {
			t.Fatal(err)
		}
		net.Flush()
	}
	up := 0
	for _, sa := range engines[0].IKESAs() {
		if sa.State == ike.IKESAEstablished && len(sa.Children) == 1 {
			up++
		}
	}
	if up != n || len(engines[1].IKESAs()) != n {
		t.Fatalf("%d of %d IKE SAs established (responder has %d): %+v", up, n, len(engines[1].IKESAs()), engines[0].IKESAs()[0])
	}
	d := &Daemon{engine: engines[0], loaded: loaded[0], stop: make(chan struct{}), histograms: h}
	t.Cleanup(func() { close(d.stop); d.wg.Wait() })
	return d, engines[1], net
}

// pump delivers the network's datagrams once no new one has been sent
// for a few milliseconds: a request starts all the exchanges it will
// before the first answers arrive, as on a network whose round trip is
// longer than a burst of requests takes. It runs until stopped.
func pump(net *iketest.Network) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		last := 0
		stable := time.Now()
		for {
			select {
			case <-done:
				return
			case <-time.After(3 * time.Millisecond):
			}
			// A full window goes at once; a smaller burst once it has
			// not grown for a while (longer than a loaded machine may
			// keep the requesting goroutine off a CPU).
			n := len(net.Queued())
			if n < maxOutstandingSAOps && n != last {
				stable = time.Now()
			}
			if n >= maxOutstandingSAOps || (n > 0 && time.Since(stable) > 30*time.Millisecond) {
				net.Flush()
				last = 0
			} else {
				last = n
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// TestTerminatePaced terminates many IKE SAs in one request: every one is
// deleted on both sides, the response names each, and no more than
// maxOutstandingSAOps deletes are outstanding at any time, as the
// engine's own listing (IKE SAs in DELETING) shows at each start.
func TestTerminatePaced(t *testing.T) {
	const n = 300
	d, peer, net := enginePair(t, n)
	defer pump(net)()
	var mu sync.Mutex
	peak, calls := 0, 0
	deleteIKESA := func(id uint32) error {
		deleting := 0
		for _, sa := range d.engine.IKESAs() {
			if sa.State == ike.IKESADeleting {
				deleting++
			}
		}
		mu.Lock()
		peak = max(peak, deleting+1)
		calls++
		mu.Unlock()
		return d.engine.DeleteIKESA(id)
	}
	ids := map[uint32]bool{}
	for _, sa := range d.engine.IKESAs() {
		ids[sa.ID] = true
	}
	start := time.Now()
	resp, err := d.actOnSAs(Request{Command: CmdTerminate, IKE: "site", TimeoutMS: 60000}, "terminate", "terminated", false,
		deleteIKESA, d.engine.DeleteChildSA)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("terminated %d IKE SAs in %v, at most %d outstanding", n, time.Since(start), peak)
	if left := d.engine.IKESAs(); len(left) != 0 {
		t.Errorf("%d IKE SAs left after terminate, e.g. %+v", len(left), left[0])
	}
	if left := peer.IKESAs(); len(left) != 0 {
		t.Errorf("%d IKE SAs left on the peer", len(left))
	}
	if calls != n {
		t.Errorf("%d deletes started, want %d", calls, n)
	}
	if peak > maxOutstandingSAOps {
		t.Errorf("%d deletes outstanding at once, want at most %d", peak, maxOutstandingSAOps)
	}
	if peak < maxOutstandingSAOps {
		t.Errorf("at most %d deletes outstanding: the window of %d was never filled, the test proves nothing", peak, maxOutstandingSAOps)
	}
	for id := range ids {
		if !strings.Contains(resp.Message+",", fmt.Sprintf("IKE_SA [%d] terminated,", id)) {
			t.Errorf("response does not list IKE_SA [%d]", id)
		}
	}
}

// TestTerminatePacedTimeout: a request whose deletes cannot complete (the
// peer never answers) times out saying how far it got, with no more than
// the window started; the rest is started in the background as the first
// ones give up.
func TestTerminatePacedTimeout(t *testing.T) {
	const n = maxOutstandingSAOps + 10
	d, _, net := enginePair(t, n)
	net.Filter = func(ike.Datagram) []ike.Datagram { return nil } // the peer is gone
	_, err := d.actOnSAs(Request{Command: CmdTerminate, IKE: "site", TimeoutMS: 200}, "terminate", "terminated", false,
		d.engine.DeleteIKESA, d.engine.DeleteChildSA)
	want := fmt.Sprintf("timed out with 0 of %d SAs terminated, %d in progress and 10 waiting to start", n, maxOutstandingSAOps)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("got %v, want %q", err, want)
	}
	deleting := 0
	for _, sa := range d.engine.IKESAs() {
		if sa.State == ike.IKESADeleting {
			deleting++
		}
	}
	if deleting != maxOutstandingSAOps {
		t.Errorf("%d IKE SAs in DELETING, want the window, %d", deleting, maxOutstandingSAOps)
	}
}

func TestUsedAgo(t *testing.T) {
	now := time.Unix(1_700_000_100, 0)
	if got := usedAgo(now, time.Time{}); got != nil {
		t.Errorf("never used: %d, want nil", *got)
	}
	if got := usedAgo(now, time.Unix(1_700_000_097, 0)); got == nil || *got != 3 {
		t.Errorf("used 3 s ago: %v", got)
	}
	// A clock step back never gives a negative age.
	if got := usedAgo(now, now.Add(time.Minute)); got == nil || *got != 0 {
		t.Errorf("used in the future: %v", got)
	}
}
