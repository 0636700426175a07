package main

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/xdpsec/xdpsec/internal/daemon"
	"github.com/xdpsec/xdpsec/internal/fleet/fleettest"
	"github.com/xdpsec/xdpsec/internal/testenv"
)

// The fleet's host tests: our daemons (dry-run dataplane) as members of
// a fleet sharing one etcd (Debian's etcd-server), each in a network
// namespace, against client daemons.

// startEtcdIn runs etcd inside a namespace, its clients reaching it at
// addr:2379, until the test ends (skipped without etcd).
func startEtcdIn(t *testing.T, ns *testenv.Netns, addr string) string {
	t.Helper()
	return fleettest.StartWith(t, fleettest.Options{Netns: ns, Host: addr, Port: 2379})
}

// fleetKey writes a fleet key file (64 hex digits, 0600).
func fleetKey(t *testing.T) string {
	t.Helper()
	var k [32]byte
	rand.Read(k[:])
	p := filepath.Join(t.TempDir(), "fleet.key")
	if err := os.WriteFile(p, []byte(hex.EncodeToString(k[:])+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// fleetSettings is a member's xdpsec.conf.
func fleetSettings(member, endpoint, keyFile, address, extra string) string {
	return fmt.Sprintf(`fleet {
   member = %s
   endpoints = %s
   key_file = %s
   lease_ttl = 2s
   checkpoint_interval = 200ms
   address = %s
%s}
`, member, endpoint, keyFile, address, extra)
}

// withSettings has a site's daemon read an xdpsec.conf.
func (s *site) withSettings(conf string) {
	s.t.Helper()
	p := filepath.Join(s.dir, "xdpsec.conf")
	if err := os.WriteFile(p, []byte(conf), 0o600); err != nil {
		s.t.Fatal(err)
	}
	s.flags = append(s.flags, "--settings", p)
}

func (s *site) fleetStatus() (*daemon.FleetStatus, error) {
	resp, err := daemon.Call(s.sock, daemon.Request{Command: daemon.CmdFleetStatus})
	if err != nil {
		return nil, err
	}
	return resp.Fleet, nil
}

// waitLeading waits until the site's daemon leads (or not) the shared
// address.
func (s *site) waitLeading(shared string, leading bool, within time.Duration) time.Duration {
	s.t.Helper()
	start := time.Now()
	for {
		st, err := s.fleetStatus()
		if err == nil {
			for _, a := range st.Shared {
				if a.Name == shared && a.Leading == leading {
					return time.Since(start)
				}
			}
		}
		if time.Since(start) > within {
			s.t.Fatalf("%s: leading %s is not %v after %v (%+v, %v)", s.name, shared, leading, within, st, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// holdersWatch polls fleet status on the sites and fails the test if two
// members ever say they hold the shared address in one reading, or two
// sites lead it at once.
type holdersWatch struct {
	t     *testing.T
	stop  chan struct{}
	done  chan struct{}
	mu    sync.Mutex
	sites []*site
	polls int
	bad   []string
}

func watchHolders(t *testing.T, shared string, sites ...*site) *holdersWatch {
	w := &holdersWatch{t: t, stop: make(chan struct{}), done: make(chan struct{}), sites: sites}
	go func() {
		defer close(w.done)
		for {
			select {
			case <-w.stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			w.mu.Lock()
			sites := slices.Clone(w.sites)
			w.mu.Unlock()
			var leading []string
			for _, s := range sites {
				st, err := s.fleetStatus()
				if err != nil {
					continue
				}
				var holding []string
				for _, m := range st.Members {
					if slices.Contains(m.Holds, shared) {
						holding = append(holding, m.Name)
					}
				}
				if len(holding) > 1 {
					w.note(fmt.Sprintf("%s's view: %v all hold %s", s.name, holding, shared))
				}
				for _, a := range st.Shared {
					if a.Name == shared && a.Leading {
						leading = append(leading, s.name)
					}
				}
			}
			if len(leading) > 1 {
				w.note(fmt.Sprintf("%v all lead %s", leading, shared))
			}
			w.mu.Lock()
			w.polls++
			w.mu.Unlock()
		}
	}()
	return w
}

func (w *holdersWatch) note(s string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.bad = append(w.bad, s)
}

// only polls these sites from now on (a stopped daemon would not answer).
func (w *holdersWatch) only(sites ...*site) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.sites = sites
}

func (w *holdersWatch) end() {
	close(w.stop)
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	w.t.Logf("fleet status polled %d times", w.polls)
	if len(w.bad) > 0 {
		w.t.Errorf("two holders seen: %s", strings.Join(w.bad, "; "))
	}
}

// fleetPair is two gateways, gwa and gwb, sharing 10.98.0.1 (the
// client's peer), each in its namespace behind a bridge in the client's,
// where etcd runs; gwa holds the address first. The test moves it as
// keepalived would.
type fleetPair struct {
	t              *testing.T
	nsA, nsB, nsC  *testenv.Netns
	gwa, gwb, cl   *site
	clientSPIs     [2]string
	clientUniqueID uint32
}

const fleetShared = "10.98.0.1"

func newFleetPair(t *testing.T) *fleetPair { return newFleetPairWith(t, "always", "") }

func newFleetPairFollow(t *testing.T, follow string) *fleetPair {
	return newFleetPairWith(t, follow, "")
}

// newFleetPairWith: iface set, the daemons hold the address on it
// themselves (gwa's is not added by the test).
func newFleetPairWith(t *testing.T, follow, iface string) *fleetPair {
	testenv.RequireRoot(t)
	testenv.RequireCommand(t, "nsenter")
	p := &fleetPair{t: t}
	p.nsA, p.nsB, p.nsC = testenv.NewNetns(t, "xdpsec-fa"), testenv.NewNetns(t, "xdpsec-fb"), testenv.NewNetns(t, "xdpsec-fc")
	p.nsC.MustRun(t, "ip", "link", "add", "br0", "type", "bridge")
	p.nsC.MustRun(t, "ip", "addr", "add", "10.98.0.100/24", "dev", "br0")
	p.nsC.MustRun(t, "ip", "link", "set", "br0", "up")
	testenv.Veth(t, p.nsC, "va", "", p.nsA, "wan0", "10.98.0.11/24")
	testenv.Veth(t, p.nsC, "vb", "", p.nsB, "wan0", "10.98.0.12/24")
	p.nsC.MustRun(t, "ip", "link", "set", "va", "master", "br0")
	p.nsC.MustRun(t, "ip", "link", "set", "vb", "master", "br0")
	if iface == "" {
		p.nsA.MustRun(t, "ip", "addr", "add", fleetShared+"/24", "dev", "wan0")
	}
	endpoint := startEtcdIn(t, p.nsC, "10.98.0.100")
	key := fleetKey(t)
	held := ""
	if iface != "" {
		held = "         interface = " + iface + "\n"
	}
	shared := "   shared {\n      wan {\n         address = " + fleetShared + "\n         follow = " + follow + "\n" + held + "      }\n   }\n"
	gw := func(name string, ns *testenv.Netns, own string) *site {
		conf := siteConf(fleetShared, "10.98.0.100", "gw.fleet.test", "client.fleet.test", "10.1.0.0/16", "10.2.0.0/16", "")
		s := newSite(t, name, ns, conf)
		s.withSettings(fleetSettings(name, endpoint, key, own, shared))
		s.flags = append(s.flags, "--log", "ike=1,knl=1,dmn=1")
		return s
	}
	p.gwa = gw("gwa", p.nsA, "10.98.0.11")
	p.gwb = gw("gwb", p.nsB, "10.98.0.12")
	clientConf := siteConf("10.98.0.100", fleetShared, "client.fleet.test", "gw.fleet.test", "10.2.0.0/16", "10.1.0.0/16", "")
	clientConf = strings.Replace(clientConf, "      proposals = aes128gcm16-prfsha256-x25519\n", "      proposals = aes128gcm16-prfsha256-x25519\n      dpd_delay = 1s\n", 1)
	p.cl = newSite(t, "client", p.nsC, clientConf)
	// DPD fails within about 3.5s of a gateway gone silent.
	p.cl.flags = []string{"--retransmit-timeout", "500ms", "--retransmit-tries", "2", "--log", "ike=1"}
	return p
}

// connect starts gwa (the leader), gwb (the standby) and the client,
// and waits until gwa saved the client's IKE SA with its sequence
// numbers.
func (p *fleetPair) connect() {
	t := p.t
	p.gwa.start()
	p.gwa.waitLeading("wan", true, 10*time.Second)
	p.gwb.start()
	p.gwb.waitLeading("wan", false, time.Second)
	p.cl.start()
	if out := p.cl.ok("initiate", "--child", "net"); !strings.Contains(out, "established") {
		t.Fatalf("client initiate: %s", out)
	}
	sas := p.cl.sas()
	if len(sas) != 1 {
		t.Fatalf("client SAs %+v", sas)
	}
	p.clientSPIs, p.clientUniqueID = [2]string{sas[0].SPIi, sas[0].SPIr}, sas[0].UniqueID
	p.gwa.waitSAs("the client's IKE SA", func(s []daemon.IKESA) bool { return len(s) == 1 && s[0].SPIi == p.clientSPIs[0] })
	// Saved: the record and at least one round of sequence numbers.
	waitLogLines(t, p.gwa, "fleet: elected for wan")
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, err := p.gwb.fleetStatus()
		if err == nil {
			for _, m := range st.Members {
				if m.Name == "gwa" && m.CheckpointAge != nil && m.IKESAs == 1 {
					return
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("gwa never published a checkpoint with the client's SA: %+v %v", st, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// moveShared moves the shared address to gwb, as keepalived does when
// gwa stops answering VRRP.
func (p *fleetPair) moveShared() {
	p.nsA.MustRun(p.t, "ip", "addr", "del", fleetShared+"/24", "dev", "wan0")
	p.nsB.MustRun(p.t, "ip", "addr", "add", fleetShared+"/24", "dev", "wan0")
	p.nsB.Run("arping", "-U", "-c", "1", "-I", "wan0", fleetShared)
	p.nsC.MustRun(p.t, "ip", "neigh", "flush", "dev", "br0")
}

// checkSameSA checks, for a few DPD rounds, that the client keeps the
// IKE SA it had (same unique ID and SPIs: no new IKE_SA_INIT) and that
// gwb serves it.
func (p *fleetPair) checkSameSA(rounds time.Duration) {
	t := p.t
	// RFC 6311: the new leader moved both message ID windows on.
	waitLogLines(t, p.gwb, "message IDs of IKE_SA site[1] synchronised")
	time.Sleep(rounds)
	sas := p.cl.sas()
	if len(sas) != 1 || sas[0].UniqueID != p.clientUniqueID || sas[0].SPIi != p.clientSPIs[0] || sas[0].SPIr != p.clientSPIs[1] || sas[0].State != "ESTABLISHED" {
		t.Fatalf("the client's IKE SA changed: %+v, had [%d] %v", sas, p.clientUniqueID, p.clientSPIs)
	}
	b := p.gwb.sas()
	if len(b) != 1 || b[0].SPIi != p.clientSPIs[0] || b[0].SPIr != p.clientSPIs[1] {
		t.Fatalf("gwb serves %+v, want the client's IKE SA %v", b, p.clientSPIs)
	}
	logb, _ := os.ReadFile(p.cl.logPath)
	if n := strings.Count(string(logb), "initiating IKE_SA"); n != 1 {
		t.Errorf("the client initiated %d IKE SAs, want 1", n)
	}
	if strings.Contains(string(logb), "deleting IKE_SA") || strings.Contains(string(logb), "giving up") {
		t.Errorf("the client gave its IKE SA up:\n%s", logb)
	}
	// DPD answered by the new leader after the synchronisation.
	logg, _ := os.ReadFile(p.gwb.logPath)
	if _, after, ok := strings.Cut(string(logg), "synchronised"); !ok || !strings.Contains(after, "generating INFORMATIONAL response") {
		t.Errorf("gwb answered no DPD after the MID sync")
	}
}

// TestFleetFailover: two gateways share an address (follow = always); a
// client connects to the leader; the leader is SIGKILLed; the standby
// takes over within the lease TTL and a bit, the client's IKE SA stays
// the same one (same SPIs, DPD answered, no new IKE_SA_INIT), and fleet
// status never shows two holders.
func TestFleetFailover(t *testing.T) {
	p := newFleetPair(t)
	p.connect()
	w := watchHolders(t, "wan", p.gwa, p.gwb)
	defer w.end()
	time.Sleep(300 * time.Millisecond)

	killed := time.Now()
	p.gwa.cmd.Process.Kill()
	<-p.gwa.exited
	p.gwa.cmd = nil
	w.only(p.gwb)
	p.moveShared()
	took := p.gwb.waitLeading("wan", true, 6*time.Second)
	took = time.Since(killed)
	t.Logf("gwb leads %s %v after gwa was killed (lease TTL 2s)", fleetShared, took.Round(time.Millisecond))
	if took > 4*time.Second {
		t.Errorf("takeover took %v, want within the TTL (2s) and a bit", took)
	}
	waitLogLines(t, p.gwb, "took over 1 of 1 IKE_SAs")
	p.checkSameSA(4 * time.Second)
	metrics := scrapeMetrics(t, p.gwb)
	for _, m := range []string{`xdpsec_fleet_leader{shared="wan"} 1`, "xdpsec_fleet_takeovers_total 1", "xdpsec_fleet_members 1", "xdpsec_fleet_joined 1"} {
		if !strings.Contains(metrics, m+"\n") {
			t.Errorf("gwb's metrics lack %q", m)
		}
	}
}

// TestFleetFailoverHeldAddress: the members hold the shared address
// themselves (interface = wan0) while they lead: gwa adds it when
// elected; gwa's box dies (SIGKILL, its link down); gwb adds the address,
// its gratuitous ARP moves the client's neighbour entry to gwb's MAC with
// no help, and the client's IKE SA stays the same one. gwa restarted
// removes the address its killed daemon left and stays a standby.
func TestFleetFailoverHeldAddress(t *testing.T) {
	p := newFleetPairWith(t, "always", "wan0")
	p.connect()
	if out := p.nsA.MustRun(t, "ip", "-br", "addr", "show", "dev", "wan0"); !strings.Contains(out, fleetShared+"/32") {
		t.Fatalf("gwa leads but does not hold %s: %s", fleetShared, out)
	}
	if out := p.nsB.MustRun(t, "ip", "-br", "addr", "show", "dev", "wan0"); strings.Contains(out, fleetShared+"/") {
		t.Fatalf("gwb holds %s as a standby: %s", fleetShared, out)
	}
	macB := strings.TrimSpace(p.nsB.MustRun(t, "cat", "/sys/class/net/wan0/address"))
	w := watchHolders(t, "wan", p.gwa, p.gwb)
	defer w.end()
	killed := time.Now()
	p.gwa.cmd.Process.Kill()
	<-p.gwa.exited
	p.gwa.cmd = nil
	w.only(p.gwb)
	p.nsA.MustRun(t, "ip", "link", "set", "wan0", "down")
	p.gwb.waitLeading("wan", true, 6*time.Second)
	t.Logf("gwb leads %s %v after gwa was killed", fleetShared, time.Since(killed).Round(time.Millisecond))
	waitLogLines(t, p.gwb, "fleet: holding "+fleetShared+" on wan0", "took over 1 of 1 IKE_SAs")
	deadline := time.Now().Add(2 * time.Second)
	for {
		out := p.nsC.MustRun(t, "ip", "neigh", "show", fleetShared, "dev", "br0")
		if strings.Contains(out, macB) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the client's neighbour entry for %s is not gwb's %s: %s", fleetShared, macB, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.checkSameSA(3 * time.Second)

	// gwa's box comes back: its daemon removes the address the killed
	// one left and stands by.
	p.nsA.MustRun(t, "ip", "link", "set", "wan0", "up")
	p.gwa.start()
	w.only(p.gwa, p.gwb)
	p.gwa.waitLeading("wan", false, time.Second)
	if out := p.nsA.MustRun(t, "ip", "-br", "addr", "show", "dev", "wan0"); strings.Contains(out, fleetShared+"/") {
		t.Errorf("gwa restarted still holds %s: %s", fleetShared, out)
	}
	p.checkSameSA(2 * time.Second)
}

// TestFleetStaleMember: the leader is paused (SIGSTOP) past its lease
// TTL; the standby takes over; when the old leader goes on (SIGCONT) it
// finds its leadership gone (its writes refused, or the lost election
// key), releases the client's SAs and stops serving the address.
func TestFleetStaleMember(t *testing.T) {
	p := newFleetPair(t)
	p.connect()
	w := watchHolders(t, "wan", p.gwa, p.gwb)
	defer w.end()
	w.only(p.gwb)
	p.gwa.cmd.Process.Signal(syscall.SIGSTOP)
	p.moveShared()
	p.gwb.waitLeading("wan", true, 6*time.Second)
	waitLogLines(t, p.gwb, "took over 1 of 1 IKE_SAs")
	// The client's DPD reached gwb before it led the address: dropped,
	// counted.
	if n := metricValue(scrapeMetrics(t, p.gwb), "xdpsec_fleet_ike_dropped_total"); n < 1 {
		t.Errorf("gwb dropped %v IKE datagrams as a standby, want some (the client's DPD)", n)
	}
	p.gwa.cmd.Process.Signal(syscall.SIGCONT)
	p.gwa.waitLeading("wan", false, 5*time.Second)
	w.only(p.gwa, p.gwb)
	waitLogLines(t, p.gwa, "fleet: no longer leading wan", "released 1 IKE_SAs")
	logb, _ := os.ReadFile(p.gwa.logPath)
	switch {
	case strings.Contains(string(logb), "our view is stale"):
		t.Log("gwa's write was refused as stale")
		if m := scrapeMetrics(t, p.gwa); !strings.Contains(m, "xdpsec_fleet_stale_writes_total 1\n") {
			t.Errorf("gwa's metrics lack the stale write")
		}
	case strings.Contains(string(logb), "leadership lost") || strings.Contains(string(logb), "etcd session expired"):
		t.Log("gwa saw its leadership gone before writing")
	default:
		t.Errorf("gwa's log does not say why it stopped serving:\n%s", logb)
	}
	if sas := p.gwa.sas(); len(sas) != 0 {
		t.Errorf("gwa still has %+v", sas)
	}
	// gwa stays a standby (follow = always campaigns again). Its status
	// may fail for a moment while it joins etcd again after its session
	// expired ("the client connection is closing"): up to 5 s.
	p.gwa.waitLeading("wan", false, 5*time.Second)
	p.checkSameSA(3 * time.Second)
}

// metricValue is the value of a sample without labels, -1 if missing.
func metricValue(metrics, name string) float64 {
	for _, l := range strings.Split(metrics, "\n") {
		if v, ok := strings.CutPrefix(l, name+" "); ok {
			var f float64
			if _, err := fmt.Sscan(v, &f); err == nil {
				return f
			}
		}
	}
	return -1
}

// scrapeMetrics reads a site's metrics in its namespace.
func scrapeMetrics(t *testing.T, s *site) string {
	t.Helper()
	var metrics string
	if err := s.ns.Do(func() error {
		// Dial on this goroutine: its thread is the one in the
		// namespace (http.Client would dial from another).
		conn, err := net.DialTimeout("tcp", metricsAddr, 2*time.Second)
		if err != nil {
			return err
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(3 * time.Second))
		req, _ := http.NewRequest("GET", "http://"+metricsAddr+"/metrics", nil)
		if err := req.Write(conn); err != nil {
			return err
		}
		resp, err := http.ReadResponse(bufio.NewReader(conn), req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		metrics = string(body)
		return err
	}); err != nil {
		t.Fatalf("%s: scrape metrics: %v", s.name, err)
	}
	return metrics
}

// poolGatewayConf is a remote-access gateway handing out virtual IPs
// from vpool to the clients c0..c(n-1)@fleet.test.
func poolGatewayConf(addr string, n int) string {
	var b strings.Builder
	fmt.Fprintf(&b, `connections {
   rw {
      local_addrs = %s
      pools = vpool
      proposals = aes128gcm16-prfsha256-x25519
      local {
         auth = psk
         id = gw.fleet.test
      }
      remote {
         auth = psk
      }
      children {
         net {
            local_ts = 10.1.0.0/16
            esp_proposals = aes128gcm16
         }
      }
   }
}
pools {
   vpool {
      addrs = 10.50.0.0/27
   }
}
secrets {
`, addr)
	for i := range n {
		fmt.Fprintf(&b, "   ike-c%d {\n      id-a = gw.fleet.test\n      id-b = c%d@fleet.test\n      secret = \"client %d's secret\"\n   }\n", i, i, i)
	}
	b.WriteString("}\n")
	return b.String()
}

// poolClientConf is one client daemon with n connections, each its own
// identity asking for a virtual IP, to the gateway gws[i] says.
func poolClientConf(gws []string) string {
	var b strings.Builder
	b.WriteString("connections {\n")
	for i, gw := range gws {
		fmt.Fprintf(&b, `   c%[1]d {
      local_addrs = 10.96.0.100
      remote_addrs = %[2]s
      vips = 0.0.0.0
      proposals = aes128gcm16-prfsha256-x25519
      local {
         auth = psk
         id = c%[1]d@fleet.test
      }
      remote {
         auth = psk
         id = gw.fleet.test
      }
      children {
         net {
            remote_ts = 10.1.0.0/16
            esp_proposals = aes128gcm16
            start_action = start
         }
      }
   }
`, i, gw)
	}
	b.WriteString("}\nsecrets {\n")
	for i := range gws {
		fmt.Fprintf(&b, "   ike-c%d {\n      id-a = gw.fleet.test\n      id-b = c%d@fleet.test\n      secret = \"client %d's secret\"\n   }\n", i, i, i)
	}
	b.WriteString("}\n")
	return b.String()
}

// TestFleetPoolsNoCollision: three gateways share one etcd and a pool of
// the same name (pools = yes); one client daemon brings up many IKE SAs
// to the three at once, each a user asking for a virtual IP. No address
// is leased twice in the fleet; a user who reconnects through another
// gateway keeps their address.
func TestFleetPoolsNoCollision(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireCommand(t, "nsenter")
	const clients = 24
	nsG, nsC := testenv.NewNetns(t, "xdpsec-pg"), testenv.NewNetns(t, "xdpsec-pc")
	testenv.Veth(t, nsG, "wan0", "10.96.0.1/24", nsC, "wan0", "10.96.0.100/24")
	for _, a := range []string{"10.96.0.2", "10.96.0.3"} {
		nsG.MustRun(t, "ip", "addr", "add", a+"/24", "dev", "wan0")
	}
	endpoint := startEtcdIn(t, nsG, "127.0.0.1")
	key := fleetKey(t)
	gwAddrs := []string{"10.96.0.1", "10.96.0.2", "10.96.0.3"}
	var gws []*site
	for i, addr := range gwAddrs {
		name := fmt.Sprintf("gw%d", i+1)
		s := newSite(t, name, nsG, poolGatewayConf(addr, clients))
		s.withSettings(fleetSettings(name, endpoint, key, addr, "   pools = yes\n"))
		s.flags = append(s.flags, "--listen", addr, "--metrics", addr+":9901")
		s.start()
		gws = append(gws, s)
	}
	targets := make([]string, clients)
	for i := range targets {
		targets[i] = gwAddrs[i%len(gwAddrs)]
	}
	cl := newSite(t, "client", nsC, poolClientConf(targets))
	cl.flags = []string{"--log", "ike=0"}
	start := time.Now()
	cl.start()
	var sas []daemon.IKESA
	deadline := time.Now().Add(60 * time.Second)
	for {
		sas = cl.sas()
		up := 0
		for _, sa := range sas {
			if sa.State == "ESTABLISHED" && len(sa.LocalVIPs) == 1 {
				up++
			}
		}
		if up == clients {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d clients up with a virtual IP after 60s: %+v", up, clients, sas)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("%d clients up with virtual IPs through 3 gateways in %v", clients, time.Since(start).Round(time.Millisecond))
	vipOf := map[string]string{} // connection -> VIP
	byVIP := map[string]string{}
	for _, sa := range sas {
		v := sa.LocalVIPs[0]
		if other, dup := byVIP[v]; dup {
			t.Errorf("%s and %s both have %s", other, sa.Name, v)
		}
		byVIP[v], vipOf[sa.Name] = sa.Name, v
	}
	// The gateways agree: each address online on one gateway only.
	online := map[string]string{}
	for _, g := range gws {
		for _, sa := range g.sas() {
			for _, v := range sa.RemoteVIPs {
				if other, dup := online[v]; dup {
					t.Errorf("%s assigned on %s and %s", v, other, g.name)
				}
				online[v] = g.name
			}
		}
	}
	if len(online) != clients {
		t.Errorf("the gateways assigned %d addresses, want %d", len(online), clients)
	}

	// c0 reconnects through gw2: same address.
	before := vipOf["c0"]
	cl.ok("terminate", "--ike", "c0")
	gws[0].waitSAs("c0 gone", func(s []daemon.IKESA) bool {
		for _, sa := range s {
			if sa.RemoteID == "c0@fleet.test" {
				return false
			}
		}
		return true
	})
	targets[0] = gwAddrs[1]
	cl.writeConf(poolClientConf(targets))
	cl.ok("reload")
	got := cl.waitSAs("c0 through gw2", func(s []daemon.IKESA) bool {
		for _, sa := range s {
			if sa.Name == "c0" && sa.State == "ESTABLISHED" && len(sa.LocalVIPs) == 1 {
				return true
			}
		}
		return false
	})
	for _, sa := range got {
		if sa.Name != "c0" {
			continue
		}
		if sa.RemoteHost != gwAddrs[1] {
			t.Errorf("c0 went to %s, want gw2", sa.RemoteHost)
		}
		if sa.LocalVIPs[0] != before {
			t.Errorf("c0 got %s through gw2, had %s through gw1", sa.LocalVIPs[0], before)
		} else {
			t.Logf("c0 keeps %s through gw2", before)
		}
	}
}

// TestFleetRedirectByLoad: a front gateway with redirect { gateways =
// fleet } sends a new client to the least loaded other member, the loads
// read from the members' statuses in etcd, never to itself. etcd is
// reached over TLS with client certificates (etcd_ca, etcd_cert,
// etcd_key).
func TestFleetRedirectByLoad(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireCommand(t, "nsenter")
	nsG := testenv.NewNetns(t, "xdpsec-frg")
	nsC := testenv.NewNetns(t, "xdpsec-frc")
	testenv.Veth(t, nsG, "wan0", "10.95.0.1/24", nsC, "wan0", "10.95.0.11/24")
	for _, a := range []string{"10.95.0.2", "10.95.0.3"} {
		nsG.MustRun(t, "ip", "addr", "add", a+"/24", "dev", "wan0")
	}
	nsC.MustRun(t, "ip", "addr", "add", "10.95.0.12/24", "dev", "wan0")
	// etcd over TLS with client certificates, as a fleet should run it.
	etcdDir := t.TempDir()
	endpoint := fleettest.StartWith(t, fleettest.Options{Netns: nsG, Host: "127.0.0.1", Port: 2379, TLS: true, Dir: etcdDir})
	if !strings.HasPrefix(endpoint, "https://") {
		t.Fatalf("etcd at %s", endpoint)
	}
	ca, cert, ckey := fleettest.TLSFiles(etcdDir)
	tlsConf := fmt.Sprintf("   etcd_ca = %s\n   etcd_cert = %s\n   etcd_key = %s\n", ca, cert, ckey)
	key := fleetKey(t)
	gateway := func(name, addr, extra string) *site {
		conf := siteConf(addr, "%any", "sun.example.org", "moon.example.org", "10.2.0.0/16", "10.0.0.0/8", "")
		conf = strings.Replace(conf, "      proposals = aes128gcm16-prfsha256-x25519\n", "      proposals = aes128gcm16-prfsha256-x25519\n      unique = never\n"+extra, 1)
		s := newSite(t, name, nsG, conf)
		s.withSettings(fleetSettings(name, endpoint, key, addr, tlsConf))
		s.flags = append(s.flags, "--listen", addr, "--metrics", addr+":9901", "--log", "ike=1,cfg=1")
		s.start()
		return s
	}
	client := func(name, addr, gw, net string) *site {
		s := newSite(t, name, nsC, siteConf(addr, gw, "moon.example.org", "sun.example.org", net, "10.2.0.0/16", ""))
		s.flags = []string{"--listen", addr, "--metrics", addr + ":9901"}
		s.start()
		return s
	}
	gw2 := gateway("gw2", "10.95.0.2", "")
	gw3 := gateway("gw3", "10.95.0.3", "")
	front := gateway("front", "10.95.0.1", "      redirect {\n         choose = load\n         gateways = fleet\n      }\n")
	// gw2 serves a client; its status says so within a publish round.
	c1 := client("c1", "10.95.0.11", "10.95.0.2", "10.11.0.0/16")
	c1.ok("initiate", "--child", "net")
	deadline := time.Now().Add(5 * time.Second)
	for {
		out := front.ok("list-conns")
		if strings.Contains(out, "gw2: 10.95.0.2, load 1\n") && strings.Contains(out, "gw3: 10.95.0.3, load 0\n") {
			if strings.Contains(out, "front: 10.95.0.1") {
				t.Fatalf("the front lists itself as a gateway:\n%s", out)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("front's list-conns never showed the members' loads:\n%s", out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	c2 := client("c2", "10.95.0.12", "10.95.0.1", "10.12.0.0/16")
	if out := c2.ok("initiate", "--child", "net"); !strings.Contains(out, "established") {
		t.Fatalf("c2 initiate: %s", out)
	}
	if sas := c2.sas(); len(sas) != 1 || sas[0].RemoteHost != "10.95.0.3" {
		t.Fatalf("c2 went to %+v, want gw3 (the least loaded member)", sas)
	}
	gw3.waitSAs("c2's IKE SA", func(s []daemon.IKESA) bool { return len(s) == 1 && s[0].RemoteHost == "10.95.0.12" })
	if sas := front.sas(); len(sas) != 0 {
		t.Fatalf("front kept %+v", sas)
	}
	_ = gw2
}

// TestFleetKeepalivedNotify: with follow = keepalived a member campaigns
// only once `xdpsec fleet notify` says MASTER (keepalived's argument
// order), and resigns on BACKUP: the other member, told MASTER, takes the
// client's IKE SA over. fleet status (the CLI's table) says who holds it.
func TestFleetKeepalivedNotify(t *testing.T) {
	p := newFleetPairFollow(t, "keepalived")
	// keepalived has not made anyone MASTER yet.
	p.nsA.MustRun(t, "ip", "addr", "del", fleetShared+"/24", "dev", "wan0")
	p.gwa.start()
	p.gwb.start()
	time.Sleep(500 * time.Millisecond)
	for _, s := range []*site{p.gwa, p.gwb} {
		st, err := s.fleetStatus()
		if err != nil || len(st.Shared) != 1 || st.Shared[0].Holder != "" || st.Shared[0].Wanted || st.Shared[0].Leading {
			t.Fatalf("%s before any notify: %+v %v", s.name, st, err)
		}
	}
	p.nsA.MustRun(t, "ip", "addr", "add", fleetShared+"/24", "dev", "wan0")
	if out := p.gwa.ok("fleet", "notify", "INSTANCE", "wan", "MASTER", "100"); !strings.Contains(out, "campaigning for wan") {
		t.Fatalf("notify: %s", out)
	}
	p.gwa.waitLeading("wan", true, 5*time.Second)
	out := p.gwb.ok("fleet", "status")
	for _, want := range []string{"this member: gwb", "gwa     10.98.0.11", "wan     10.98.0.1", "keepalived  gwa     no"} {
		if !strings.Contains(out, want) {
			t.Errorf("gwb's fleet status lacks %q:\n%s", want, out)
		}
	}
	p.gwb.ok("fleet", "notify", "backup", "wan")
	if _, err := p.gwb.cli("fleet", "notify", "master", "lan"); err == nil || !strings.Contains(err.Error(), `no shared address "lan"`) {
		t.Errorf("notify of an unknown shared address: %v", err)
	}
	p.cl.start()
	p.cl.ok("initiate", "--child", "net")
	p.gwa.waitSAs("the client", func(s []daemon.IKESA) bool { return len(s) == 1 })
	sas := p.cl.sas()
	p.clientSPIs, p.clientUniqueID = [2]string{sas[0].SPIi, sas[0].SPIr}, sas[0].UniqueID
	time.Sleep(500 * time.Millisecond) // a checkpoint
	// keepalived moves the address: BACKUP on gwa, MASTER on gwb.
	p.moveShared()
	p.gwa.ok("fleet", "notify", "INSTANCE", "wan", "BACKUP", "100")
	p.gwb.ok("fleet", "notify", "INSTANCE", "wan", "MASTER", "100")
	p.gwb.waitLeading("wan", true, 3*time.Second)
	p.gwa.waitLeading("wan", false, time.Second)
	waitLogLines(t, p.gwa, "fleet: keepalived says BACKUP for wan, resigning", "released 1 IKE_SAs")
	waitLogLines(t, p.gwb, "took over 1 of 1 IKE_SAs")
	p.checkSameSA(2 * time.Second)
	t.Logf("gwb's fleet status after the move:\n%s", p.gwb.ok("fleet", "status"))
	var st daemon.FleetStatus
	if out := p.gwb.ok("-o", "json", "fleet", "status"); json.Unmarshal([]byte(out), &st) != nil || len(st.Members) != 2 || st.Shared[0].Holder != "gwb" || !st.Shared[0].Leading {
		t.Errorf("fleet status -o json: %s", out)
	}
	if st, _ := p.gwa.fleetStatus(); st == nil || st.Shared[0].Wanted || st.Shared[0].Holder != "gwb" {
		t.Errorf("gwa after BACKUP: %+v", st)
	}

	// gwb's daemon restarts while keepalived keeps the address there (no
	// new notify): it resigns on the way out, finds the address on its
	// box at start, campaigns and takes the client's IKE SA back from
	// etcd.
	p.gwb.stop()
	p.gwb.start()
	p.gwb.waitLeading("wan", true, 5*time.Second)
	waitLogLines(t, p.gwb, "fleet: 10.98.0.1 of wan is on this box (keepalived MASTER before we started), campaigning")
	p.gwb.waitSAs("the client's IKE SA back", func(s []daemon.IKESA) bool { return len(s) == 1 && s[0].SPIi == p.clientSPIs[0] })
	p.checkSameSA(2 * time.Second)
}
