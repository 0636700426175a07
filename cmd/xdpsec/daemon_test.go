package main

import (
	"bufio"
	"bytes"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/urfave/cli/v2"

	"github.com/xdpsec/xdpsec/ike/iketest"
	"github.com/xdpsec/xdpsec/internal/daemon"
	"github.com/xdpsec/xdpsec/internal/testenv"
)

// TestMain lets the test binary run as xdpsec itself, so daemon tests
// start real daemon processes inside network namespaces without building
// the binary first.
func TestMain(m *testing.M) {
	if os.Getenv("XDPSEC_TEST_RUN_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// siteConf is one side of a net-to-net tunnel with a PSK.
func siteConf(local, remote, localID, remoteID, localNet, remoteNet, extraChild string) string {
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
%s      }
   }
}
secrets {
   ike-site {
      id-a = %s
      id-b = %s
      secret = "a shared secret for the test"
   }
}
`, local, remote, localID, remoteID, localNet, remoteNet, extraChild, localID, remoteID)
}

// site is one daemon in its own network namespace.
type site struct {
	t        *testing.T
	name     string
	ns       *testenv.Netns
	dir      string
	conf     string
	sock     string
	state    string
	logPath  string
	cmd      *exec.Cmd
	exited   chan error
	extraEnv []string
	// flags are added to the daemon's command line.
	flags []string
}

func newSite(t *testing.T, name string, ns *testenv.Netns, conf string) *site {
	dir := t.TempDir()
	s := &site{t: t, name: name, ns: ns, dir: dir, conf: filepath.Join(dir, "swanctl.conf"),
		sock: filepath.Join(dir, "xdpsec.sock"), state: filepath.Join(dir, "ike-state.json"), logPath: filepath.Join(dir, "daemon.log")}
	s.writeConf(conf)
	t.Cleanup(func() {
		s.stop()
		if t.Failed() {
			b, _ := os.ReadFile(s.logPath)
			t.Logf("%s daemon log:\n%s", s.name, b)
		}
	})
	return s
}

func (s *site) writeConf(conf string) {
	if err := os.WriteFile(s.conf, []byte(conf), 0o600); err != nil {
		s.t.Fatal(err)
	}
}

// start runs `xdpsec daemon --dataplane=dry-run` inside the namespace and
// waits for its control socket.
// metricsAddr is where each site's daemon serves metrics, in its own namespace.
const metricsAddr = "127.0.0.1:9901"

func (s *site) start() {
	s.t.Helper()
	logf, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		s.t.Fatal(err)
	}
	s.cmd = exec.Command("nsenter", "--net=/run/netns/"+s.ns.Name, os.Args[0], "daemon", "--dataplane=dry-run",
		"--config", s.conf, "--socket", s.sock, "--state", s.state, "--log", "ike=1,knl=1",
		"--metrics", metricsAddr)
	s.cmd.Args = append(s.cmd.Args, s.flags...)
	s.cmd.Env = append(os.Environ(), "XDPSEC_TEST_RUN_MAIN=1")
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	logf.Close()
	s.exited = make(chan error, 1)
	go func(c *exec.Cmd, ch chan error) { ch <- c.Wait() }(s.cmd, s.exited)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := daemon.Call(s.sock, daemon.Request{Command: daemon.CmdListConns}); err == nil {
			return
		}
		select {
		case err := <-s.exited:
			b, _ := os.ReadFile(s.logPath)
			s.t.Fatalf("%s daemon exited: %v\n%s", s.name, err, b)
		default:
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("%s daemon's control socket did not come up", s.name)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop sends SIGTERM to the daemon this test started and waits for it.
func (s *site) stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.exited:
		if err != nil {
			s.t.Errorf("%s daemon exited with %v", s.name, err)
		}
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill()
		<-s.exited
		s.t.Errorf("%s daemon did not stop on SIGTERM", s.name)
	}
	s.cmd = nil
}

// cli runs an xdpsec command in-process against the site's socket.
func (s *site) cli(args ...string) (string, error) {
	var out, errOut bytes.Buffer
	app := newApp()
	app.Writer, app.ErrWriter = &out, &errOut
	all := append([]string{"xdpsec"}, args[0])
	all = append(all, "--socket", s.sock)
	all = append(all, args[1:]...)
	if args[0] == "-o" {
		all = append([]string{"xdpsec", "-o", args[1], args[2], "--socket", s.sock}, args[3:]...)
	}
	err := app.Run(all)
	return out.String() + errOut.String(), err
}

func (s *site) ok(args ...string) string {
	s.t.Helper()
	out, err := s.cli(args...)
	if err != nil {
		s.t.Fatalf("%s: xdpsec %s: %v\n%s", s.name, strings.Join(args, " "), err, out)
	}
	return out
}

func (s *site) sas() []daemon.IKESA {
	s.t.Helper()
	var sas []daemon.IKESA
	out := s.ok("-o", "json", "list-sas")
	if err := json.Unmarshal([]byte(out), &sas); err != nil {
		s.t.Fatalf("list-sas -o json: %v\n%s", err, out)
	}
	return sas
}

// children maps CHILD_SA names to their SPIs (in, out) on one side.
func childSPIs(sas []daemon.IKESA) map[string][2]string {
	out := map[string][2]string{}
	for _, sa := range sas {
		for _, c := range sa.Children {
			if c.State == "INSTALLED" {
				out[c.Name] = [2]string{c.SPIIn, c.SPIOut}
			}
		}
	}
	return out
}

// waitSAs polls a site until cond holds.
func (s *site) waitSAs(what string, cond func([]daemon.IKESA) bool) []daemon.IKESA {
	s.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		sas := s.sas()
		if cond(sas) {
			return sas
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("%s: %s: SAs %+v", s.name, what, sas)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func checkTwins(t *testing.T, a, b []daemon.IKESA, names ...string) {
	t.Helper()
	ca, cb := childSPIs(a), childSPIs(b)
	for _, n := range names {
		x, y := ca[n], cb[n]
		if x[0] == "" || x[0] != y[1] || x[1] != y[0] {
			t.Errorf("CHILD_SA %s: a in/out %v, b in/out %v: our inbound must be their outbound", n, x, y)
		}
	}
}

// TestDaemonsDryRun runs two daemons against each other, each in its
// network namespace with the dry-run dataplane, through the CLI:
// initiate, list-sas on both, terminate, reload, restart.
func TestDaemonsDryRun(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireCommand(t, "nsenter")
	nsA := testenv.NewNetns(t, "xdpsec-da")
	nsB := testenv.NewNetns(t, "xdpsec-db")
	testenv.Veth(t, nsA, "wan0", "10.98.0.1/24", nsB, "wan0", "10.98.0.2/24")

	a := newSite(t, "a", nsA, siteConf("10.98.0.1", "10.98.0.2", "moon.example.org", "sun.example.org", "10.1.0.0/16", "10.2.0.0/16", ""))
	b := newSite(t, "b", nsB, siteConf("10.98.0.2", "10.98.0.1", "sun.example.org", "moon.example.org", "10.2.0.0/16", "10.1.0.0/16", ""))
	a.start()
	b.start()

	if out := a.ok("list-conns"); !strings.Contains(out, "site: IKEv2") || !strings.Contains(out, "10.1.0.0/16") {
		t.Errorf("list-conns:\n%s", out)
	}
	out := a.ok("initiate", "--child", "net")
	if !strings.Contains(out, "IKE_SA site[1] established") {
		t.Errorf("initiate said: %s", out)
	}
	sasA := a.sas()
	sasB := b.waitSAs("CHILD_SA net installed", func(s []daemon.IKESA) bool { return childSPIs(s)["net"][0] != "" })
	if len(sasA) != 1 || sasA[0].State != "ESTABLISHED" || len(sasA[0].Children) != 1 {
		t.Fatalf("a's SAs: %+v", sasA)
	}
	checkTwins(t, sasA, sasB, "net")
	if sasA[0].SPIi != sasB[0].SPIi || sasA[0].SPIr != sasB[0].SPIr || !sasA[0].Initiator || sasB[0].Initiator {
		t.Errorf("IKE SPIs: a %+v b %+v", sasA[0], sasB[0])
	}
	// Prometheus metrics, scraped over HTTP inside a's namespace.
	var metrics string
	if err := nsA.Do(func() error {
		// Dial on this goroutine: its thread is the one in the namespace
		// (http.Client would dial from another).
		conn, err := net.Dial("tcp", metricsAddr)
		if err != nil {
			return err
		}
		defer conn.Close()
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
		t.Fatalf("scrape metrics: %v", err)
	}
	for _, want := range []string{`xdpsec_ike_sas{state="ESTABLISHED"} 1`, `xdpsec_child_sas{state="INSTALLED"} 1`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q:\n%s", want, metrics)
		}
	}
	// Served by client_golang: it parses as Prometheus text, with the Go
	// and process collectors, and the establishment in the histograms.
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(strings.NewReader(metrics))
	if err != nil {
		t.Fatalf("parse metrics: %v\n%s", err, metrics)
	}
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes"} {
		if mfs[name] == nil {
			t.Errorf("metrics lack %s", name)
		}
	}
	for _, name := range []string{"xdpsec_ike_sa_establishment_seconds", "xdpsec_child_sa_establishment_seconds", "xdpsec_ike_sa_init_to_child_sa_seconds"} {
		if mf := mfs[name]; mf == nil || len(mf.Metric) != 1 || mf.Metric[0].GetHistogram().GetSampleCount() != 1 {
			t.Errorf("%s: %v", name, mf)
		}
	}

	table := a.ok("list-sas")
	for _, want := range []string{
		"site: #1, ESTABLISHED, IKEv2, " + sasA[0].SPIi + "_i* " + sasA[0].SPIr + "_r",
		// MOBIKE (on by default) moves the IKE SA to port 4500.
		"local  'moon.example.org' @ 10.98.0.1[4500]",
		"remote 'sun.example.org' @ 10.98.0.2[4500]",
		"net: #1, reqid 1, INSTALLED, TUNNEL, ESP:AES_GCM_16_128",
		"in  " + sasA[0].Children[0].SPIIn + ",",
		"rx_seen 0 packets",
		"local  10.1.0.0/16",
		"remote 10.2.0.0/16",
	} {
		if !strings.Contains(table, want) {
			t.Errorf("list-sas lacks %q:\n%s", want, table)
		}
	}

	// Rekey the CHILD_SA from a and the IKE SA from b through the CLI:
	// new SPIs on both sides, the CHILD_SA moved to the new IKE SA.
	if out := a.ok("rekey", "--child", "net"); !strings.Contains(out, "rekey completed successfully") {
		t.Errorf("rekey --child said: %s", out)
	}
	oldChild := childSPIs(sasA)["net"]
	sasB = b.waitSAs("CHILD_SA rekeyed", func(s []daemon.IKESA) bool {
		c := childSPIs(s)["net"]
		return len(s) == 1 && len(s[0].Children) == 1 && c[0] != "" && c[0] != oldChild[1]
	})
	checkTwins(t, a.sas(), sasB, "net")
	b.ok("rekey", "--ike", "site")
	sasA = a.waitSAs("IKE SA rekeyed", func(s []daemon.IKESA) bool {
		return len(s) == 1 && s[0].SPIi != sasB[0].SPIi && s[0].State == "ESTABLISHED" && len(s[0].Children) == 1
	})
	sasB = b.sas()
	if len(sasB) != 1 || sasB[0].SPIi != sasA[0].SPIi || sasB[0].SPIr != sasA[0].SPIr {
		t.Errorf("after the IKE rekey: a %+v b %+v", sasA, sasB)
	}
	checkTwins(t, sasA, sasB, "net")
	if _, err := a.cli("rekey", "--child", "nonesuch"); err == nil {
		t.Error("rekey of an unknown CHILD_SA succeeded")
	}

	// A trap for net while it is up: listed, and uninstalled again.
	if out := a.ok("install", "--child", "net"); !strings.Contains(out, "install completed successfully") {
		t.Errorf("install said:\n%s", out)
	}
	if out := a.ok("list-pols"); !strings.Contains(out, "site/net, TUNNEL, reqid ") || !strings.Contains(out, "  local:  10.1.0.0/16\n  remote: 10.2.0.0/16") {
		t.Errorf("list-pols:\n%s", out)
	}
	a.ok("uninstall", "--child", "net")
	if out := a.ok("list-pols"); strings.TrimSpace(out) != "" {
		t.Errorf("list-pols after uninstall:\n%s", out)
	}
	if _, err := a.cli("uninstall", "--child", "net"); err == nil {
		t.Error("uninstall of no trap succeeded")
	}

	// Terminate the CHILD_SA, then bring it back over the IKE SA.
	a.ok("terminate", "--child", "net")
	b.waitSAs("CHILD_SA gone", func(s []daemon.IKESA) bool { return len(s) == 1 && len(s[0].Children) == 0 })
	a.ok("initiate", "--child", "net")
	b.waitSAs("CHILD_SA back", func(s []daemon.IKESA) bool { return childSPIs(s)["net"][0] != "" })
	checkTwins(t, a.sas(), b.sas(), "net")

	// Reload with a second CHILD_SA on both sides: the connection changed,
	// so its IKE SA is replaced; start it again.
	extraA := "         web {\n            local_ts = 10.11.0.0/24\n            remote_ts = 10.12.0.0/24[tcp/443]\n            esp_proposals = aes256gcm16\n         }\n"
	extraB := "         web {\n            local_ts = 10.12.0.0/24[tcp/443]\n            remote_ts = 10.11.0.0/24\n            esp_proposals = aes256gcm16\n         }\n"
	a.writeConf(siteConf("10.98.0.1", "10.98.0.2", "moon.example.org", "sun.example.org", "10.1.0.0/16", "10.2.0.0/16", extraA))
	b.writeConf(siteConf("10.98.0.2", "10.98.0.1", "sun.example.org", "moon.example.org", "10.2.0.0/16", "10.1.0.0/16", extraB))
	if out := b.ok("reload"); !strings.Contains(out, "site") || !strings.Contains(out, "changed") {
		t.Errorf("reload said:\n%s", out)
	}
	var ch daemon.Changes
	if err := json.Unmarshal([]byte(a.ok("-o", "json", "reload")), &ch); err != nil || len(ch.Changed) != 1 {
		t.Errorf("reload -o json: %+v %v", ch, err)
	}
	a.waitSAs("old IKE SA gone", func(s []daemon.IKESA) bool { return len(s) == 0 })
	a.ok("initiate", "--ike", "site")
	sasB = b.waitSAs("both CHILD_SAs", func(s []daemon.IKESA) bool { c := childSPIs(s); return c["net"][0] != "" && c["web"][0] != "" })
	sasA = a.sas()
	checkTwins(t, sasA, sasB, "net", "web")

	// Restart a: its SAs survive, with the same IDs and SPIs, and can
	// still be used (a CHILD_SA rekey through CREATE_CHILD_SA) and terminated.
	a.stop()
	if fi, err := os.Stat(a.state); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("state file: %v %v", fi, err)
	}
	a.start()
	after := a.sas()
	if len(after) != 1 || after[0].SPIi != sasA[0].SPIi || after[0].UniqueID != sasA[0].UniqueID ||
		childSPIs(after)["net"] != childSPIs(sasA)["net"] || childSPIs(after)["web"] != childSPIs(sasA)["web"] {
		t.Fatalf("after restart:\n%+v\nbefore:\n%+v", after, sasA)
	}
	// net is installed: no duplicate over the taken-back IKE SA.
	if out, err := a.cli("initiate", "--child", "net"); err == nil || !strings.Contains(out+err.Error(), "existing duplicate net{") {
		t.Fatalf("initiate --child of an installed CHILD_SA: %v\n%s", err, out)
	}
	a.ok("terminate", "--child", "web")
	a.ok("initiate", "--child", "web") // web again over the taken-back IKE SA
	b.waitSAs("CHILD_SA over the taken-back IKE SA", func(s []daemon.IKESA) bool { return len(s) == 1 && len(s[0].Children) == 2 })
	a.ok("terminate", "--ike", "site")
	b.waitSAs("IKE SA deleted", func(s []daemon.IKESA) bool { return len(s) == 0 })
}

// TestDaemonInitiateChildFails checks that initiate --child fails when the
// IKE SA comes up without that CHILD_SA (here: selectors the responder
// does not accept), as swanctl --initiate does.
func TestDaemonInitiateChildFails(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireCommand(t, "nsenter")
	nsA := testenv.NewNetns(t, "xdpsec-dc")
	nsB := testenv.NewNetns(t, "xdpsec-dd")
	testenv.Veth(t, nsA, "wan0", "10.98.0.1/24", nsB, "wan0", "10.98.0.2/24")
	a := newSite(t, "a", nsA, siteConf("10.98.0.1", "10.98.0.2", "moon.example.org", "sun.example.org", "10.1.0.0/16", "10.3.0.0/16", ""))
	b := newSite(t, "b", nsB, siteConf("10.98.0.2", "10.98.0.1", "sun.example.org", "moon.example.org", "10.2.0.0/16", "10.1.0.0/16", ""))
	a.start()
	b.start()
	out, err := a.cli("initiate", "--child", "net")
	if err == nil || !strings.Contains(err.Error(), "IKE_SA site[1] established, but establishing CHILD_SA 'net' failed") {
		t.Errorf("initiate: %v\n%s", err, out)
	}
	if sas := a.sas(); len(sas) != 1 || len(sas[0].Children) != 0 {
		t.Errorf("a's SAs: %+v", sas)
	}
}

// TestDaemonStateRefused checks that a corrupt or foreign state file is
// refused with a message and the daemon starts clean.
func TestDaemonStateRefused(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireCommand(t, "nsenter")
	ns := testenv.NewNetns(t, "xdpsec-ds")
	s := newSite(t, "s", ns, siteConf("127.0.0.1", "127.0.0.2", "a", "b", "10.1.0.0/16", "10.2.0.0/16", ""))
	for _, tc := range []struct{ content, want string }{
		{"{not json", "is corrupt"},
		{`{"format":"xdpsec-ike-state","version":99}`, "is version 99, this daemon reads versions 1 and 2"},
	} {
		os.WriteFile(s.state, []byte(tc.content), 0o600)
		s.start()
		if len(s.sas()) != 0 {
			t.Error("SAs from a refused file")
		}
		s.stop()
		b, _ := os.ReadFile(s.logPath)
		if !strings.Contains(string(b), tc.want) || !strings.Contains(string(b), "starting without saved IKE_SAs") {
			t.Errorf("log lacks %q:\n%s", tc.want, b)
		}
	}
}

// TestDaemonCheck validates configurations without starting.
func TestDaemonCheck(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.conf")
	os.WriteFile(good, []byte(siteConf("192.0.2.1", "192.0.2.2", "a", "b", "10.1.0.0/16", "10.2.0.0/16", "")), 0o600)
	bad := filepath.Join(dir, "bad.conf")
	os.WriteFile(bad, []byte("connections { x { remote_addrs = 192.0.2.2\n frobnicate = yes } }"), 0o600)
	run := func(path string) (string, error) {
		var out bytes.Buffer
		app := newApp()
		app.Writer, app.ErrWriter = &out, &out
		err := app.Run([]string{"xdpsec", "daemon", "--check", "--config", path})
		return out.String(), err
	}
	if out, err := run(good); err != nil || !strings.Contains(out, "OK, 1 connections") {
		t.Errorf("good config: %v\n%s", err, out)
	}
	if _, err := run(bad); err == nil || !strings.Contains(err.Error(), "frobnicate") {
		t.Errorf("bad config: %v", err)
	}
	// A private file of another user's is refused, naming the owner and
	// the fix.
	if os.Geteuid() == 0 {
		theirs := filepath.Join(dir, "theirs.conf")
		os.WriteFile(theirs, []byte(siteConf("192.0.2.1", "192.0.2.2", "a", "b", "10.1.0.0/16", "10.2.0.0/16", "")), 0o600)
		if err := os.Chown(theirs, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		if out, err := run(theirs); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("%q belongs to uid 65534", theirs)) ||
			!strings.Contains(err.Error(), "chown root "+theirs) {
			t.Errorf("config of nobody's: %v\n%s", err, out)
		}
	}
	// The example shipped in dist/ (copied: the checkout's mode is 0644).
	example, err := os.ReadFile("../../dist/swanctl.conf")
	if err != nil {
		t.Fatal(err)
	}
	dist := filepath.Join(dir, "dist.conf")
	os.WriteFile(dist, example, 0o600)
	if out, err := run(dist); err != nil || !strings.Contains(out, "OK, 1 connections") {
		t.Errorf("dist/swanctl.conf: %v\n%s", err, out)
	}
	// The remote-access example, after the install step of the README:
	// the gateway's certificate in x509/, its key in private/.
	raDir := filepath.Join(dir, "ra")
	for _, sub := range []string{"x509", "private"} {
		os.MkdirAll(filepath.Join(raDir, sub), 0o700)
	}
	ca := iketest.NewCA(t, "example CA", nil)
	key := iketest.NewKey(t, "ecdsa")
	cert := ca.Issue(t, key, "vpn.example.org", []string{"vpn.example.org"}, nil, nil)
	os.WriteFile(filepath.Join(raDir, "x509", "gateway.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o600)
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(raDir, "private", "gateway.pem"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
	raExample, err := os.ReadFile("../../dist/swanctl-remote-access.conf")
	if err != nil {
		t.Fatal(err)
	}
	ra := filepath.Join(raDir, "swanctl.conf")
	os.WriteFile(ra, raExample, 0o600)
	if out, err := run(ra); err != nil || !strings.Contains(out, "OK, 1 connections") {
		t.Errorf("dist/swanctl-remote-access.conf: %v\n%s", err, out)
	}
}

// TestDaemonKilledTakesBack: a daemon killed with SIGKILL (its Stop never
// runs) right after `initiate` said the CHILD_SA is up still finds its
// IKE SA at the next start, from the checkpoint it wrote before
// answering, and can use it.
func TestDaemonKilledTakesBack(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireCommand(t, "nsenter")
	nsA := testenv.NewNetns(t, "xdpsec-ka")
	nsB := testenv.NewNetns(t, "xdpsec-kb")
	testenv.Veth(t, nsA, "wan0", "10.97.0.1/24", nsB, "wan0", "10.97.0.2/24")
	a := newSite(t, "a", nsA, siteConf("10.97.0.1", "10.97.0.2", "moon.example.org", "sun.example.org", "10.1.0.0/16", "10.2.0.0/16", ""))
	b := newSite(t, "b", nsB, siteConf("10.97.0.2", "10.97.0.1", "sun.example.org", "moon.example.org", "10.2.0.0/16", "10.1.0.0/16", ""))
	a.start()
	b.start()
	a.ok("initiate", "--child", "net")
	before := a.sas()
	a.cmd.Process.Kill()
	<-a.exited
	a.cmd = nil
	a.start()
	after := a.sas()
	if len(after) != 1 || after[0].SPIi != before[0].SPIi || childSPIs(after)["net"] != childSPIs(before)["net"] {
		t.Fatalf("after SIGKILL and restart:\n%+v\nbefore:\n%+v", after, before)
	}
	a.ok("terminate", "--child", "net")
	a.ok("initiate", "--child", "net")
	b.waitSAs("a new CHILD_SA over the taken-back IKE SA", func(s []daemon.IKESA) bool {
		return len(s) == 1 && len(s[0].Children) == 1 && s[0].Children[0].SPIOut != childSPIs(before)["net"][0]
	})
}

// TestDaemonInitiateChildFailsNoProposal: `initiate --child` fails when the IKE_SA
// comes up but the CHILD_SA asked for does not (here the peer accepts no
// ESP proposal of ours).
func TestDaemonInitiateChildFailsNoProposal(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireCommand(t, "nsenter")
	nsA := testenv.NewNetns(t, "xdpsec-fa")
	nsB := testenv.NewNetns(t, "xdpsec-fb")
	testenv.Veth(t, nsA, "wan0", "10.96.0.1/24", nsB, "wan0", "10.96.0.2/24")
	a := newSite(t, "a", nsA, siteConf("10.96.0.1", "10.96.0.2", "moon.example.org", "sun.example.org", "10.1.0.0/16", "10.2.0.0/16", ""))
	confB := siteConf("10.96.0.2", "10.96.0.1", "sun.example.org", "moon.example.org", "10.2.0.0/16", "10.1.0.0/16", "")
	b := newSite(t, "b", nsB, strings.Replace(confB, "esp_proposals = aes128gcm16", "esp_proposals = aes256gcm16", 1))
	a.start()
	b.start()
	out, err := a.cli("initiate", "--child", "net")
	if err == nil || !strings.Contains(out+err.Error(), "CHILD_SA 'net' failed") {
		t.Errorf("initiate --child net without an acceptable ESP proposal: %v\n%s", err, out)
	}
}

// v1SiteConf is siteConf as an IKEv1 connection (Main Mode, PSK).
func v1SiteConf(local, remote, localID, remoteID, localNet, remoteNet string) string {
	c := siteConf(local, remote, localID, remoteID, localNet, remoteNet, "")
	c = strings.Replace(c, "      proposals = aes128gcm16-prfsha256-x25519\n", "      version = 1\n      proposals = aes128-sha256-modp2048\n", 1)
	return strings.Replace(c, "esp_proposals = aes128gcm16", "esp_proposals = aes128-sha256", 1)
}

// TestDaemonsDryRunV1InitiateChild: `initiate --child` of an IKEv1
// connection brings phase 1 up and then the child when no ISAKMP SA is
// up, and otherwise runs a Quick Mode on the established ISAKMP SA,
// waiting for the IPsec SA and naming it, after `terminate --child`;
// while one is installed it runs none and fails naming it (as with
// IKEv2). A Quick Mode the peer refuses makes it fail at once.
func TestDaemonsDryRunV1InitiateChild(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireCommand(t, "nsenter")
	nsA := testenv.NewNetns(t, "xdpsec-v1a")
	nsB := testenv.NewNetns(t, "xdpsec-v1b")
	testenv.Veth(t, nsA, "wan0", "10.95.0.1/24", nsB, "wan0", "10.95.0.2/24")
	a := newSite(t, "a", nsA, v1SiteConf("10.95.0.1", "10.95.0.2", "moon.example.org", "sun.example.org", "10.1.0.0/16", "10.2.0.0/16"))
	confB := v1SiteConf("10.95.0.2", "10.95.0.1", "sun.example.org", "moon.example.org", "10.2.0.0/16", "10.1.0.0/16")
	b := newSite(t, "b", nsB, confB)
	a.start()
	b.start()

	// established checks the message of initiate against a's one
	// ISAKMP SA, which must be the first one, and returns the SAs of
	// both sides once b has installed as many IPsec SAs as a.
	established := func(out string, children int) (sasA, sasB []daemon.IKESA) {
		t.Helper()
		sasA = a.sas()
		if len(sasA) != 1 || sasA[0].Version != 1 || sasA[0].UniqueID != 1 || sasA[0].State != "ESTABLISHED" || len(sasA[0].Children) != children {
			t.Fatalf("a's SAs: %+v, want ISAKMP SA #1 with %d CHILD_SAs", sasA, children)
		}
		last := sasA[0].Children[children-1]
		if want := fmt.Sprintf("CHILD_SA net{%d} established with SPIs %s_i %s_o", last.UniqueID, last.SPIIn, last.SPIOut); !strings.Contains(out, want) {
			t.Errorf("initiate said %q, want %q", out, want)
		}
		sasB = b.waitSAs(fmt.Sprintf("%d IPsec SAs", children), func(s []daemon.IKESA) bool {
			return len(s) == 1 && len(s[0].Children) == children && s[0].Children[children-1].State == "INSTALLED"
		})
		if sasB[0].SPIi != sasA[0].SPIi || sasB[0].SPIr != sasA[0].SPIr {
			t.Fatalf("ISAKMP SAs differ: a %+v b %+v", sasA[0], sasB[0])
		}
		for i, ca := range sasA[0].Children {
			cb := sasB[0].Children[i]
			if ca.SPIIn != cb.SPIOut || ca.SPIOut != cb.SPIIn {
				t.Errorf("IPsec SA %d: a in/out %s/%s, b in/out %s/%s", i, ca.SPIIn, ca.SPIOut, cb.SPIIn, cb.SPIOut)
			}
		}
		return sasA, sasB
	}

	// No ISAKMP SA yet: Main Mode, then the Quick Mode.
	out := a.ok("initiate", "--child", "net")
	if !strings.Contains(out, "IKE_SA site[1] established") {
		t.Errorf("initiate said: %s", out)
	}
	sasA, _ := established(out, 1)
	first := sasA[0].Children[0]

	// Terminated, then initiated again over the same ISAKMP SA.
	a.ok("terminate", "--child", "net")
	b.waitSAs("IPsec SA gone", func(s []daemon.IKESA) bool { return len(s) == 1 && len(s[0].Children) == 0 })
	out = a.ok("initiate", "--child", "net")
	if strings.Contains(out, "IKE_SA") {
		t.Errorf("initiate over the established ISAKMP SA said: %s", out)
	}
	sasA, _ = established(out, 1)
	second := sasA[0].Children[0]
	if second.SPIIn == first.SPIIn || second.SPIOut == first.SPIOut || second.UniqueID == first.UniqueID {
		t.Errorf("the IPsec SA initiated again is the terminated one: %+v", second)
	}

	// Initiated while installed: no second Quick Mode, an error that
	// names the installed one (as charon's swanctl --initiate --child).
	if out, err := a.cli("initiate", "--child", "net"); err == nil || !strings.Contains(out+err.Error(), fmt.Sprintf("existing duplicate net{%d}", second.UniqueID)) {
		t.Errorf("initiate --child of an installed IPsec SA: %v\n%s", err, out)
	}
	if c := a.sas()[0].Children; len(c) != 1 || c[0].SPIIn != second.SPIIn {
		t.Errorf("after the second initiate: %+v", c)
	}

	// b no longer accepts our ESP proposal: the Quick Mode gets
	// NO_PROPOSAL_CHOSEN, and initiate says so without waiting out its
	// timeout.
	b.writeConf(strings.Replace(confB, "esp_proposals = aes128-sha256", "esp_proposals = aes256-sha384", 1))
	b.ok("reload")
	b.waitSAs("ISAKMP SA of the changed connection gone", func(s []daemon.IKESA) bool { return len(s) == 0 })
	a.waitSAs("ISAKMP SA deleted by b", func(s []daemon.IKESA) bool { return len(s) == 0 })
	a.ok("initiate", "--ike", "site") // the ISAKMP SA comes up, its Quick Mode does not
	a.waitSAs("ISAKMP SA without IPsec SAs", func(s []daemon.IKESA) bool {
		return len(s) == 1 && s[0].State == "ESTABLISHED" && len(s[0].Children) == 0
	})
	start := time.Now()
	out, err := a.cli("initiate", "--child", "net", "--timeout", "30s")
	if err == nil || !strings.Contains(err.Error(), "initiating CHILD_SA 'net' failed: its Quick Mode on IKE_SA site[") {
		t.Errorf("initiate of a refused CHILD_SA: %v\n%s", err, out)
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("initiate of a refused CHILD_SA took %v", d)
	}
}

// TestCLIControlSocketNotRoot runs the CLI as an unprivileged user
// (nobody) against a running daemon: it says that root is needed, both
// when the socket's directory keeps it out (EACCES at connect) and when
// it reaches the socket and the daemon refuses it (peer credentials),
// instead of a bare "broken pipe".
func TestCLIControlSocketNotRoot(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireCommand(t, "nsenter")
	const nobody = 65534
	ns := testenv.NewNetns(t, "xdpsec-nr")
	s := newSite(t, "s", ns, siteConf("127.0.0.1", "127.0.0.2", "a", "b", "10.1.0.0/16", "10.2.0.0/16", ""))
	s.start()

	// The test binary runs as xdpsec (TestMain); nobody needs a copy it
	// may execute, in a directory it may enter.
	binDir, err := os.MkdirTemp("", "xdpsec-nr-bin")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(binDir) })
	self, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(binDir, "xdpsec")
	if err := os.WriteFile(bin, self, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(binDir, 0o755)
	asNobody := func(sock string) (string, error) {
		cmd := exec.Command(bin, "list-sas", "--socket", sock)
		cmd.Env = append(os.Environ(), "XDPSEC_TEST_RUN_MAIN=1")
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}

	// The socket as the daemon made it: 0600 in a directory of root's.
	out, err := asNobody(s.sock)
	if err == nil || !strings.Contains(out, "permission denied: the daemon's control socket is root's only, run xdpsec as root") ||
		strings.Contains(out, "broken pipe") || strings.Count(strings.TrimSpace(out), "\n") != 0 {
		t.Errorf("list-sas as nobody: %v\n%s", err, out)
	}

	// Reachable: a link to the socket in an open directory, the socket
	// writable by all. The daemon's peer credential check refuses nobody.
	open, err := os.MkdirTemp("", "xdpsec-nr-sock")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(open) })
	os.Chmod(open, 0o755)
	link := filepath.Join(open, "xdpsec.sock")
	if err := os.Link(s.sock, link); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(link, 0o666); err != nil {
		t.Fatal(err)
	}
	out, err = asNobody(link)
	if err == nil || !strings.Contains(out, "run xdpsec as root (the daemon refused uid 65534: only root may use it)") ||
		strings.Contains(out, "broken pipe") {
		t.Errorf("list-sas as nobody through an open socket: %v\n%s", err, out)
	}
	s.ok("list-sas") // root still may
	s.stop()
	if b, _ := os.ReadFile(s.logPath); !strings.Contains(string(b), "control socket: refused uid 65534") {
		t.Errorf("the daemon did not log the refusal:\n%s", b)
	}
}

// TestDaemonBlockThresholdFlag: --block-threshold is charon's
// block_threshold, default 5 and 0 to disable, and reaches the daemon's
// options as the engine takes it (negative disables).
func TestDaemonBlockThresholdFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want int
	}{
		{nil, 5},
		{[]string{"--block-threshold", "20"}, 20},
		{[]string{"--block-threshold", "1"}, 1},
		{[]string{"--block-threshold", "0"}, -1},
		{[]string{"--block-threshold", "-3"}, -1},
	} {
		app := newApp()
		var got daemon.Options
		for _, cmd := range app.Commands {
			if cmd.Name == "daemon" {
				cmd.Action = func(c *cli.Context) error {
					var err error
					got, err = daemonOptions(c, nil)
					return err
				}
			}
		}
		var out bytes.Buffer
		app.Writer, app.ErrWriter = &out, &out
		if err := app.Run(append([]string{"xdpsec", "daemon", "--dataplane", "dry-run"}, tc.args...)); err != nil {
			t.Fatalf("%v: %v\n%s", tc.args, err, out.String())
		}
		if got.BlockThreshold != tc.want {
			t.Errorf("%v: BlockThreshold %d, want %d", tc.args, got.BlockThreshold, tc.want)
		}
	}
}

// TestDaemonMakeBeforeBreakFlag: --make-before-break is charon's
// make_before_break, default yes (strongSwan 6); anything but yes/no
// (true/false) is an error naming the flag.
func TestDaemonMakeBeforeBreakFlag(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		want    bool
		wantErr bool
	}{
		{nil, true, false},
		{[]string{"--make-before-break", "yes"}, true, false},
		{[]string{"--make-before-break=no"}, false, false},
		{[]string{"--make-before-break", "false"}, false, false},
		{[]string{"--make-before-break", "maybe"}, false, true},
	} {
		app := newApp()
		var got daemon.Options
		for _, cmd := range app.Commands {
			if cmd.Name == "daemon" {
				cmd.Action = func(c *cli.Context) error {
					var err error
					got, err = daemonOptions(c, nil)
					return err
				}
			}
		}
		var out bytes.Buffer
		app.Writer, app.ErrWriter = &out, &out
		err := app.Run(append([]string{"xdpsec", "daemon", "--dataplane", "dry-run"}, tc.args...))
		if tc.wantErr {
			if err == nil || !strings.Contains(err.Error(), "--make-before-break") {
				t.Errorf("%v: error %v, want one naming the flag", tc.args, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%v: %v\n%s", tc.args, err, out.String())
		}
		if got.MakeBeforeBreak != tc.want {
			t.Errorf("%v: MakeBeforeBreak %v, want %v", tc.args, got.MakeBeforeBreak, tc.want)
		}
	}
}

// TestDaemonStartActionStartsItsChildren: at start, a connection with one
// child of start_action=start and one without brings up the first alone
// (charon initiates each start_action=start child, not the connection);
// the other comes when asked for.
func TestDaemonStartActionStartsItsChildren(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireCommand(t, "nsenter")
	nsA := testenv.NewNetns(t, "xdpsec-sa")
	nsB := testenv.NewNetns(t, "xdpsec-sb")
	testenv.Veth(t, nsA, "wan0", "10.97.0.1/24", nsB, "wan0", "10.97.0.2/24")
	webA := "         web {\n            local_ts = 10.11.0.0/24\n            remote_ts = 10.12.0.0/24\n            esp_proposals = aes256gcm16\n         }\n"
	webB := "         web {\n            local_ts = 10.12.0.0/24\n            remote_ts = 10.11.0.0/24\n            esp_proposals = aes256gcm16\n         }\n"
	confA := strings.Replace(siteConf("10.97.0.1", "10.97.0.2", "moon.example.org", "sun.example.org", "10.1.0.0/16", "10.2.0.0/16", webA),
		"esp_proposals = aes128gcm16\n", "esp_proposals = aes128gcm16\n            start_action = start\n", 1)
	a := newSite(t, "a", nsA, confA)
	b := newSite(t, "b", nsB, siteConf("10.97.0.2", "10.97.0.1", "sun.example.org", "moon.example.org", "10.2.0.0/16", "10.1.0.0/16", webB))
	b.start()
	a.start()
	b.waitSAs("net started by its start_action", func(s []daemon.IKESA) bool { return childSPIs(s)["net"][0] != "" })
	time.Sleep(300 * time.Millisecond)
	if s := b.sas(); len(s) != 1 || len(s[0].Children) != 1 {
		t.Fatalf("b has %+v, want net alone", s)
	}
	a.ok("initiate", "--child", "web")
	b.waitSAs("web as asked for", func(s []daemon.IKESA) bool {
		c := childSPIs(s)
		return len(s) == 1 && c["net"][0] != "" && c["web"][0] != ""
	})
}
