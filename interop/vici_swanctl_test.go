package interop

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	govici "github.com/strongswan/govici/vici"

	"github.com/xdpsec/xdpsec/ike/iketest"
)

// swanctlOurs runs Debian's swanctl against our daemon's VICI socket,
// with its swanctl directory (for --load-all) at dir.
func (o *ours) swanctlRun(dir string, args ...string) (string, error) {
	c := &charon{uri: "unix://" + o.vici, swanDir: dir}
	return c.swanctlRun(args...)
}

func (o *ours) swanctl(dir string, args ...string) string {
	o.t.Helper()
	out, err := o.swanctlRun(dir, args...)
	if err != nil {
		o.t.Fatalf("swanctl %s (xdpsec): %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// swanctlDir writes a swanctl directory holding conf.
func swanctlDir(t *testing.T, conf string) string {
	t.Helper()
	dir := t.TempDir()
	for _, sub := range []string{"x509", "x509ca", "private"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "swanctl.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

func wantLines(t *testing.T, what, out string, patterns ...string) {
	t.Helper()
	for _, p := range patterns {
		if !regexp.MustCompile(p).MatchString(out) {
			t.Errorf("%s: no line matches %q in\n%s", what, p, out)
		}
	}
}

// listSAsPretty is one side's IKE SAs as swanctl --list-sas --pretty
// prints them.
func listSAsPretty(out string) []*section {
	var sas []*section
	for _, ev := range parsePretty(out) {
		if ev.name == "list-sa event" {
			sas = append(sas, ev.sections...)
		}
	}
	return sas
}

func events(secs []*section, name string) []*section {
	var out []*section
	for _, s := range secs {
		if s.name == name {
			out = append(out, s)
		}
	}
	return out
}

func onlyChild(sa *section) *section {
	if cs := sa.sub("child-sas"); cs != nil && len(cs.sections) == 1 {
		return cs.sections[0]
	}
	return nil
}

// compareSAs checks, field by field, that our IKE SA and charon's are the
// two ends of the same SA.
func compareSAs(t *testing.T, ours, theirs *section) {
	t.Helper()
	same := []string{"version", "state", "initiator-spi", "responder-spi", "encr-alg", "encr-keysize", "integ-alg", "prf-alg", "dh-group"}
	for _, k := range same {
		if ours.get(k) != theirs.get(k) {
			t.Errorf("IKE SA %s: ours %q, charon's %q", k, ours.get(k), theirs.get(k))
		}
	}
	for _, p := range [][2]string{{"local-host", "remote-host"}, {"local-id", "remote-id"}, {"remote-host", "local-host"}, {"remote-id", "local-id"},
		{"local-port", "remote-port"}, {"remote-port", "local-port"}, {"nat-local", "nat-remote"}, {"nat-any", "nat-any"}} {
		if ours.get(p[0]) != theirs.get(p[1]) {
			t.Errorf("IKE SA: our %s %q, charon's %s %q", p[0], ours.get(p[0]), p[1], theirs.get(p[1]))
		}
	}
	// kernel-libipsec needs UDP encapsulation: charon fakes a NAT (nat-fake),
	// which we see as the remote behind one.
	if ours.get("nat-remote") != "yes" && (theirs.get("nat-local") == "yes" || theirs.get("nat-fake") == "yes") ||
		ours.get("nat-remote") == "yes" && theirs.get("nat-local") != "yes" && theirs.get("nat-fake") != "yes" {
		t.Errorf("IKE SA: our nat-remote %q, charon's nat-local %q, nat-fake %q", ours.get("nat-remote"), theirs.get("nat-local"), theirs.get("nat-fake"))
	}
	if (ours.get("initiator") == "yes") == (theirs.get("initiator") == "yes") {
		t.Errorf("IKE SA: initiator %q on both sides", ours.get("initiator"))
	}
	oc, tc := onlyChild(ours), onlyChild(theirs)
	if oc == nil || tc == nil {
		t.Fatalf("CHILD_SAs: ours %+v, charon's %+v", ours.sub("child-sas"), theirs.sub("child-sas"))
	}
	for _, k := range []string{"name", "state", "mode", "protocol", "encap", "encr-alg", "encr-keysize", "integ-alg", "integ-keysize", "dh-group", "esn"} {
		if oc.get(k) != tc.get(k) {
			t.Errorf("CHILD_SA %s: ours %q, charon's %q", k, oc.get(k), tc.get(k))
		}
	}
	if oc.get("spi-in") != tc.get("spi-out") || oc.get("spi-out") != tc.get("spi-in") {
		t.Errorf("CHILD_SA SPIs: ours in %s out %s, charon's in %s out %s", oc.get("spi-in"), oc.get("spi-out"), tc.get("spi-in"), tc.get("spi-out"))
	}
	if strings.Join(oc.lists["local-ts"], " ") != strings.Join(tc.lists["remote-ts"], " ") ||
		strings.Join(oc.lists["remote-ts"], " ") != strings.Join(tc.lists["local-ts"], " ") {
		t.Errorf("CHILD_SA TS: ours %v === %v, charon's %v === %v", oc.lists["local-ts"], oc.lists["remote-ts"], tc.lists["local-ts"], tc.lists["remote-ts"])
	}
}

// TestVICISwanctl drives our daemon with Debian's swanctl only: the
// configuration comes by --load-all, the tunnel is initiated, listed,
// rekeyed and terminated with swanctl, and what it prints is compared
// with what swanctl prints for charon, the peer.
func TestVICISwanctl(t *testing.T) {
	e := newEnv(t, envOptions{})
	charonSide, oursSide := pskPeers("aes128gcm16-prfsha256-x25519", "aes128gcm16")
	e.charon.load(charonSide.conf(), nil)
	const poolConf = "pools {\n  rw {\n    addrs = 10.9.0.0/24\n    dns = 10.9.0.53\n  }\n}\n"
	dir := swanctlDir(t, oursSide.conf()+poolConf)
	o := e.ours

	out := o.swanctl(dir, "--load-all")
	wantLines(t, "--load-all", out, `(?m)^loaded ike secret 'ike-c'$`, `(?m)^loaded pool 'rw'$`, `(?m)^successfully loaded 1 pools, 0 unloaded$`,
		`(?m)^loaded connection 'c'$`, `(?m)^successfully loaded 1 connections, 0 unloaded$`)
	// Loaded again: nothing changes, nothing fails.
	o.swanctl(dir, "--load-all")
	if strings.Contains(o.log(), oursSide.psk) {
		t.Error("the PSK is in our daemon's log")
	}

	out = o.swanctl(dir, "--list-conns")
	wantLines(t, "--list-conns", out, `(?m)^c: IKEv2, no reauthentication, rekeying every 14400s$`, `(?m)^  local:  10\.99\.0\.2$`,
		`(?m)^  remote: 10\.99\.0\.1$`, `(?m)^  local pre-shared key authentication:$`, `(?m)^    id: sun\.example\.org$`,
		`(?m)^  remote pre-shared key authentication:$`, `(?m)^    id: moon\.example\.org$`, `(?m)^  net: TUNNEL, rekeying every 3600s$`,
		`(?m)^    local:  10\.2\.0\.0/16$`, `(?m)^    remote: 10\.1\.0\.0/16$`)
	// Our list-conns against charon's, mirrored.
	oc := events(parsePretty(o.swanctl(dir, "--list-conns", "--pretty")), "list-conn event")
	cc := events(parsePretty(e.charon.swanctl("--list-conns", "--pretty")), "list-conn event")
	if len(oc) != 1 || len(cc) != 1 {
		t.Fatalf("list-conn events: ours %d, charon's %d", len(oc), len(cc))
	}
	ocn, ccn := oc[0].sub("c"), cc[0].sub("c")
	// version differs on purpose: without a version charon answers
	// IKEv1 too (IKEv1/2), our daemon IKEv2 only.
	if ocn.get("version") != "IKEv2" {
		t.Errorf("list-conns version: %q", ocn.get("version"))
	}
	for _, p := range [][2]string{{"rekey_time", "rekey_time"}, {"reauth_time", "reauth_time"}} {
		if ocn.get(p[0]) != ccn.get(p[1]) {
			t.Errorf("list-conns %s: ours %q, charon's %q", p[0], ocn.get(p[0]), ccn.get(p[1]))
		}
	}
	if strings.Join(ocn.lists["local_addrs"], " ") != strings.Join(ccn.lists["remote_addrs"], " ") {
		t.Errorf("list-conns addrs: ours %v, charon's %v", ocn.lists["local_addrs"], ccn.lists["remote_addrs"])
	}
	if ocn.sub("local-1").get("class") != ccn.sub("remote-1").get("class") || ocn.sub("local-1").get("id") != ccn.sub("remote-1").get("id") {
		t.Errorf("list-conns auth: ours %+v, charon's %+v", ocn.sub("local-1"), ccn.sub("remote-1"))
	}
	och, cch := ocn.sub("children").sub("net"), ccn.sub("children").sub("net")
	if och.get("mode") != cch.get("mode") || och.get("rekey_time") != cch.get("rekey_time") ||
		strings.Join(och.lists["local-ts"], " ") != strings.Join(cch.lists["remote-ts"], " ") {
		t.Errorf("list-conns child: ours %+v, charon's %+v", och, cch)
	}
	if got := o.swanctl(dir, "--list-pools"); !regexp.MustCompile(`(?m)^rw +10\.9\.0\.\d+ +0 / 0 / 254$`).MatchString(got) {
		t.Errorf("--list-pools:\n%s", got)
	}
	// The same pool in charon prints the same.
	if out, err := e.charon.swanctlRun("--load-pools", "--file", confFile(t, poolConf)); err != nil {
		t.Fatalf("charon --load-pools: %v\n%s", err, out)
	}
	if ours, theirs := o.swanctl(dir, "--list-pools"), e.charon.swanctl("--list-pools"); ours != theirs {
		t.Errorf("--list-pools: ours\n%s\ncharon's\n%s", ours, theirs)
	}

	// swanctl --log follows the daemon's log meanwhile.
	logCmd := exec.Command(swanctlBin, "--log", "--uri", "unix://"+o.vici)
	var logOut bytes.Buffer
	logCmd.Stdout, logCmd.Stderr = &logOut, &logOut
	if err := logCmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Its registration: swanctl loads its plugins first, and what is
	// logged before it registers is not sent to it.
	time.Sleep(2 * time.Second)
	out = o.swanctl(dir, "--initiate", "--child", "net", "--timeout", "30")
	wantLines(t, "--initiate", out, `(?m)^\[IKE\] .*IKE_SA c\[\d+\] established between 10\.99\.0\.2\[sun\.example\.org\]\.\.\.10\.99\.0\.1\[moon\.example\.org\]$`,
		`(?m)^\[IKE\] .*CHILD_SA net\{\d+\} established with SPIs`, `(?m)^initiate completed successfully$`)
	time.Sleep(time.Second) // the last lines on their way
	logCmd.Process.Signal(syscall.SIGINT)
	logCmd.Wait()
	wantLines(t, "--log", logOut.String(), `(?m)^\d\d\[IKE\] IKE_SA c\[\d+\] established between`, `(?m)^\d\d\[IKE\] initiating IKE_SA c\[\d+\] to 10\.99\.0\.1$`,
		`(?m)^\d\d\[KNL\] `)
	ours := listSAsPretty(o.swanctl(dir, "--list-sas", "--pretty"))
	theirs := listSAsPretty(e.charon.swanctl("--list-sas", "--pretty"))
	if len(ours) != 1 || len(theirs) != 1 {
		t.Fatalf("IKE SAs: ours %d, charon's %d", len(ours), len(theirs))
	}
	compareSAs(t, ours[0], theirs[0])
	out = o.swanctl(dir, "--list-sas")
	wantLines(t, "--list-sas", out,
		`(?m)^c: #\d+, ESTABLISHED, IKEv2, [0-9a-f]{16}_i\* [0-9a-f]{16}_r$`,
		`(?m)^  local  'sun\.example\.org' @ 10\.99\.0\.2\[(500|4500)\]$`,
		`(?m)^  remote 'moon\.example\.org' @ 10\.99\.0\.1\[(500|4500)\]$`,
		`(?m)^  AES_GCM_16-128/PRF_HMAC_SHA2_256/CURVE_25519$`,
		`(?m)^  established \d+s ago, rekeying in \d+s$`,
		`(?m)^  net: #\d+, reqid \d+, INSTALLED, TUNNEL(-in-UDP)?, ESP:AES_GCM_16-128$`,
		`(?m)^    installed \d+s ago, rekeying in \d+s, expires in \d+s$`,
		`(?m)^    in  [0-9a-f]{8}, +\d+ bytes, +\d+ packets$`,
		`(?m)^    local  10\.2\.0\.0/16$`, `(?m)^    remote 10\.1\.0\.0/16$`)
	wantLines(t, "--version --daemon", o.swanctl(dir, "--version", "--daemon"), `(?m)^strongSwan \S+ xdpsec \(Linux, \S+, \S+\)$`)
	out = o.swanctl(dir, "--stats")
	wantLines(t, "--stats", out, `(?m)^uptime: \d+ seconds?, since `, `(?m)^IKE_SAs: 1 total, 0 half-open$`)

	before := onlyChild(ours[0]).get("spi-in")
	out = o.swanctl(dir, "--rekey", "--child", "net")
	wantLines(t, "--rekey", out, `(?m)^rekey completed successfully$`)
	waitFor(t, 20*time.Second, "the rekeyed CHILD_SA on both sides", func() error {
		ours := listSAsPretty(o.swanctl(dir, "--list-sas", "--pretty"))
		theirs := listSAsPretty(e.charon.swanctl("--list-sas", "--pretty"))
		if len(ours) != 1 || len(theirs) != 1 || onlyChild(ours[0]) == nil || onlyChild(theirs[0]) == nil {
			return errNotYet
		}
		if onlyChild(ours[0]).get("spi-in") == before || onlyChild(theirs[0]).get("spi-out") != onlyChild(ours[0]).get("spi-in") {
			return fmt.Errorf("ours %+v, charon's %+v", onlyChild(ours[0]), onlyChild(theirs[0]))
		}
		return nil
	})

	// --list-algs: charon's groups, our algorithms.
	out = o.swanctl(dir, "--list-algs")
	wantLines(t, "--list-algs", out, `(?m)^aead:$`, `(?m)^  AES_GCM_16\[xdpsec\]$`, `(?m)^dh:$`, `(?m)^  CURVE_25519\[xdpsec\]$`,
		`(?m)^prf:$`, `(?m)^  PRF_HMAC_SHA2_256\[xdpsec\]$`)
	charonGroups := regexp.MustCompile(`(?m)^[a-z-]+:$`).FindAllString(e.charon.swanctl("--list-algs"), -1)
	for _, g := range regexp.MustCompile(`(?m)^[a-z-]+:$`).FindAllString(out, -1) {
		if !slices.Contains(charonGroups, g) {
			t.Errorf("--list-algs group %s is not one of charon's %v", g, charonGroups)
		}
	}

	// --counters, as charon's counters plugin: we initiated and rekeyed
	// the CHILD_SA once (charon here has no counters plugin to compare).
	counts := []string{`(?m)^  ike-init-out-req +: 1$`, `(?m)^  ike-init-in-resp +: 1$`, `(?m)^  ike-auth-out-req +: 1$`,
		`(?m)^  ike-auth-in-resp +: 1$`, `(?m)^  child-rekey +: 1$`, `(?m)^  create-child-out-req +: 1$`, `(?m)^  ike-init-in-req +: 0$`}
	wantLines(t, "--counters", o.swanctl(dir, "--counters"), append(counts, `(?m)^global:$`)...)
	wantLines(t, "--counters --name c", o.swanctl(dir, "--counters", "--name", "c"), append(counts, `(?m)^c:$`)...)
	wantLines(t, "--counters --all", o.swanctl(dir, "--counters", "--all"), append(counts, `(?m)^c:$`)...)
	o.swanctl(dir, "--counters", "--reset")
	if out := o.swanctl(dir, "--counters"); regexp.MustCompile(`(?m): [1-9]`).MatchString(out) {
		t.Errorf("--counters after --reset:\n%s", out)
	}

	// redirect reaches the engine, which refuses to redirect an IKE SA
	// it initiated (RFC 5685: only the gateway redirects).
	if out, err := o.swanctlRun(dir, "--redirect", "--ike", "c", "--gateway", "10.99.0.9"); err == nil || !strings.Contains(out, "as initiator") {
		t.Errorf("--redirect of our own IKE SA: %v\n%s", err, out)
	}
	// Authorities: none, as for charon without any.
	if out := o.swanctl(dir, "--list-authorities"); strings.TrimSpace(out) != "" {
		t.Errorf("--list-authorities:\n%s", out)
	}
	wantLines(t, "--load-authorities", o.swanctl(dir, "--load-authorities"), `(?m)^no authorities found, 0 unloaded$`)
	o.swanctl(dir, "--flush-certs")
	// reload-settings rereads xdpsec.conf (absent here: no RADIUS).
	o.swanctl(dir, "--reload-settings")
	// No trap policies yet: nothing listed, as charon's.
	if out := o.swanctl(dir, "--list-pols"); strings.TrimSpace(out) != "" {
		t.Errorf("--list-pols:\n%s", out)
	}
	// --install puts the trap policies in (the dry-run dataplane logs
	// them), --list-pols shows them as charon shows its own.
	wantLines(t, "--install", o.swanctl(dir, "--install", "--child", "net"), `(?m)^install completed successfully$`)
	out = o.swanctl(dir, "--list-pols")
	wantLines(t, "--list-pols", out, `(?m)^c/net, TUNNEL$`, `(?m)^  local:  10\.2\.0\.0/16$`, `(?m)^  remote: 10\.1\.0\.0/16$`)
	e.charon.swanctl("--install", "--child", "net")
	theirPols := e.charon.swanctl("--list-pols")
	mirrored := strings.NewReplacer("10.1.0.0/16", "10.2.0.0/16", "10.2.0.0/16", "10.1.0.0/16").Replace(theirPols)
	if out != mirrored {
		t.Errorf("--list-pols: ours\n%s\ncharon's (selectors mirrored)\n%s", out, mirrored)
	}
	e.charon.swanctl("--uninstall", "--child", "net")
	if !strings.Contains(o.log(), "installed trap policy for CHILD_SA net") || !strings.Contains(o.log(), "dry-run: would install policy 10.2.0.0/16 === 10.1.0.0/16 out") {
		t.Errorf("no trap policy in our log:\n%s", o.log())
	}
	wantLines(t, "--uninstall", o.swanctl(dir, "--uninstall", "--child", "net"), `(?m)^uninstall completed successfully$`)
	if out := o.swanctl(dir, "--list-pols"); strings.TrimSpace(out) != "" {
		t.Errorf("--list-pols after --uninstall:\n%s", out)
	}
	if out, err := o.swanctlRun(dir, "--uninstall", "--child", "net"); err == nil || !strings.Contains(out, "policy 'net' not found") {
		t.Errorf("--uninstall twice: %v\n%s", err, out)
	}
	if out, err := o.swanctlRun(dir, "--install", "--child", "nope"); err == nil || !strings.Contains(out, "'nope'") {
		t.Errorf("--install of an unknown child: %v\n%s", err, out)
	}

	out = o.swanctl(dir, "--terminate", "--ike", "c", "--timeout", "30")
	wantLines(t, "--terminate", out, `(?m)^terminate completed successfully$`)
	waitFor(t, 10*time.Second, "charon's IKE SA gone", func() error {
		if n := len(listSAsPretty(e.charon.swanctl("--list-sas", "--pretty"))); n != 0 {
			return fmt.Errorf("%d IKE SAs", n)
		}
		return nil
	})

	// A reload of our file leaves the connection loaded over VICI alone.
	o.load("connections {\n}\n", nil)
	if out := o.swanctl(dir, "--list-conns"); !strings.Contains(out, "c: IKEv2") {
		t.Errorf("after our reload:\n%s", out)
	}
	// swanctl --load-conns with the connection gone from its file
	// unloads it.
	if err := os.WriteFile(filepath.Join(dir, "swanctl.conf"), []byte("connections {\n}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out = o.swanctl(dir, "--load-conns")
	wantLines(t, "--load-conns", out, `0 unloaded|1 unloaded`)
	if out := o.swanctl(dir, "--list-conns"); strings.TrimSpace(out) != "" {
		t.Errorf("after --load-conns of an empty file:\n%s", out)
	}
}

// TestVICIEvents listens with govici on our daemon's socket while
// swanctl establishes, rekeys and terminates the tunnel.
func TestVICIEvents(t *testing.T) {
	e := newEnv(t, envOptions{})
	charonSide, oursSide := pskPeers("aes128gcm16-prfsha256-x25519", "aes128gcm16")
	e.charon.load(charonSide.conf(), nil)
	dir := swanctlDir(t, oursSide.conf())
	o := e.ours
	o.swanctl(dir, "--load-all")

	s, err := govici.NewSession(govici.WithSocketPath(o.vici))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Subscribe("ike-updown", "child-updown", "child-rekey", "ike-rekey"); err != nil {
		t.Fatal(err)
	}
	events := make(chan govici.Event, 64)
	s.NotifyEvents(events)
	next := func(name string) *govici.Message {
		t.Helper()
		for {
			select {
			case ev := <-events:
				if ev.Name == name {
					return ev.Message
				}
				t.Logf("skipping %s event", ev.Name)
			case <-time.After(30 * time.Second):
				t.Fatalf("no %s event", name)
			}
		}
	}
	sub := func(m *govici.Message, keys ...string) *govici.Message {
		for _, k := range keys {
			x, _ := m.Get(k).(*govici.Message)
			if x == nil {
				t.Fatalf("no section %q in %v", k, m)
			}
			m = x
		}
		return m
	}

	// swanctl --monitor-sa follows the same events.
	mon := exec.Command(swanctlBin, "--monitor-sa", "--uri", "unix://"+o.vici)
	var monOut bytes.Buffer
	mon.Stdout, mon.Stderr = &monOut, &monOut
	if err := mon.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second) // its registration
	o.swanctl(dir, "--initiate", "--child", "net", "--timeout", "30")
	up := next("ike-updown")
	if up.Get("up") != "yes" || sub(up, "c").Get("state") != "ESTABLISHED" || sub(up, "c").Get("remote-id") != "moon.example.org" {
		t.Errorf("ike-updown: %v", up)
	}
	cup := next("child-updown")
	var childKey string
	for _, k := range sub(cup, "c", "child-sas").Keys() {
		childKey = k
	}
	child := sub(cup, "c", "child-sas", childKey)
	if cup.Get("up") != "yes" || child.Get("name") != "net" || child.Get("state") != "INSTALLED" {
		t.Errorf("child-updown: %v", cup)
	}
	theirs := listSAsPretty(e.charon.swanctl("--list-sas", "--pretty"))
	if len(theirs) != 1 || onlyChild(theirs[0]) == nil || onlyChild(theirs[0]).get("spi-out") != child.Get("spi-in") {
		t.Errorf("child-updown spi-in %v, charon's CHILD_SA %+v", child.Get("spi-in"), theirs)
	}

	o.swanctl(dir, "--rekey", "--child", "net")
	rk := next("child-rekey")
	r := sub(rk, "c", "child-sas", "net")
	oldSA, newSA := sub(r, "old"), sub(r, "new")
	if oldSA.Get("spi-in") != child.Get("spi-in") || newSA.Get("spi-in") == child.Get("spi-in") || newSA.Get("state") != "INSTALLED" {
		t.Errorf("child-rekey: %v", rk)
	}

	before := sub(up, "c").Get("uniqueid")
	o.swanctl(dir, "--rekey", "--ike", "c")
	irk := next("ike-rekey")
	if sub(irk, "c", "old").Get("uniqueid") != before || sub(irk, "c", "new").Get("uniqueid") == before ||
		sub(irk, "c", "new").Get("state") != "ESTABLISHED" || sub(irk, "c", "new").Get("initiator-spi") == sub(irk, "c", "old").Get("initiator-spi") {
		t.Errorf("ike-rekey: %v", irk)
	}

	o.swanctl(dir, "--terminate", "--ike", "c", "--timeout", "30")
	cdown := next("child-updown")
	if cdown.Get("up") != nil {
		t.Errorf("child-updown on terminate: %v", cdown)
	}
	for _, k := range sub(cdown, "c", "child-sas").Keys() {
		if got := sub(cdown, "c", "child-sas", k).Get("spi-in"); got != newSA.Get("spi-in") {
			t.Errorf("child down for SPI %v, want the rekeyed %v", got, newSA.Get("spi-in"))
		}
	}
	if down := next("ike-updown"); down.Get("up") != nil {
		t.Errorf("ike-updown on terminate: %v", down)
	}
	time.Sleep(time.Second)
	mon.Process.Signal(syscall.SIGINT)
	mon.Wait()
	wantLines(t, "--monitor-sa", monOut.String(), `(?m)^c: #\d+, ESTABLISHED, IKEv2, [0-9a-f]{16}_i\* [0-9a-f]{16}_r$`,
		`(?m)^  net: #\d+, reqid \d+, INSTALLED, TUNNEL(-in-UDP)?, ESP:AES_GCM_16-128$`, `(?m)^    installed \d+s ago$`)
	if strings.Contains(monOut.String(), "(null)") {
		t.Errorf("--monitor-sa prints a missing value:\n%s", monOut.String())
	}
	// No second message for anything.
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	select {
	case ev := <-events:
		t.Errorf("extra %s event: %v", ev.Name, ev.Message)
	case <-ctx.Done():
	}
}

// TestVICICerts: swanctl --load-all configures our daemon with
// certificates and a private key from its swanctl directory (load-cert,
// load-key, and the certs of load-conn), the tunnel comes up against
// charon with them, and swanctl --list-certs shows them as it shows
// charon's.
func TestVICICerts(t *testing.T) {
	ca := iketest.NewCA(t, "xdpsec interop CA", nil)
	ckey, ccert := endEntity(t, ca, "ecdsa", "moon.example.org", charonAddr)
	okey, ocert := endEntity(t, ca, "ecdsa", "sun.example.org", oursAddr)
	e := newEnv(t, envOptions{})
	cs, ourSide := certPeers(idKinds[1])
	e.charon.load(cs.conf(), certFiles(t, ca, ckey, ccert))
	dir := swanctlDir(t, ourSide.conf())
	for name, b := range certFiles(t, ca, okey, ocert) {
		if err := writeFile(filepath.Join(dir, name), b); err != nil {
			t.Fatal(err)
		}
	}
	out := e.ours.swanctl(dir, "--load-all")
	wantLines(t, "--load-all", out, `(?m)^loaded certificate from '.*/x509/peer\.pem'$`, `(?m)^loaded certificate from '.*/x509ca/ca\.pem'$`,
		`(?m)^loaded ECDSA key from '.*/private/peer\.pem'$`, `(?m)^loaded connection 'c'$`)
	if strings.Contains(e.ours.log(), "PRIVATE KEY") {
		t.Error("the private key is in our daemon's log")
	}
	ours := e.ours.swanctl(dir, "--list-certs")
	theirs := e.charon.swanctl("--list-certs")
	wantLines(t, "--list-certs", ours, `(?m)^List of X\.509 End Entity Certificates$`, `(?m)^  subject:  "C=CH, O=xdpsec, CN=sun\.example\.org"$`,
		`(?m)^  pubkey:    ECDSA 256 bits, has private key$`, `(?m)^List of X\.509 CA Certificates$`, `(?m)^  subject:  "C=CH, O=xdpsec, CN=xdpsec interop CA"$`)
	// The CA is the same on both sides, and printed the same.
	caBlock := func(out string) string {
		_, after, _ := strings.Cut(out, "List of X.509 CA Certificates")
		return after
	}
	if caBlock(ours) == "" || caBlock(ours) != caBlock(theirs) {
		t.Errorf("CA certificates differ:\nours:%s\ncharon's:%s", caBlock(ours), caBlock(theirs))
	}
	wantLines(t, "--list-conns", e.ours.swanctl(dir, "--list-conns"), `(?m)^  local public key authentication:$`,
		`(?m)^    certs: C=CH, O=xdpsec, CN=sun\.example\.org$`, `(?m)^  remote public key authentication:$`)
	wantLines(t, "--list-conns (charon's)", e.charon.swanctl("--list-conns"), `(?m)^    certs: C=CH, O=xdpsec, CN=moon\.example\.org$`)
	wantLines(t, "--initiate", e.ours.swanctl(dir, "--initiate", "--child", "net", "--timeout", "30"),
		`(?m)^\[IKE\] .*authentication of 'moon\.example\.org' with ECDSA`, `(?m)^initiate completed successfully$`)
	e.agree(1)
	// Loaded again: nothing changes, the tunnel stays.
	e.ours.swanctl(dir, "--load-all")
	e.agree(1)
	// swanctl --list-certs still finds the key (swanctl unloads keys
	// whose ids load-key did not give it).
	wantLines(t, "--list-certs", e.ours.swanctl(dir, "--list-certs"), `(?m)^  pubkey:    ECDSA 256 bits, has private key$`)
	// --load-creds --clear (clear-creds, then loading again) leaves the
	// connection and its tunnel as they were.
	e.ours.swanctl(dir, "--load-creds", "--clear")
	wantLines(t, "--list-certs", e.ours.swanctl(dir, "--list-certs"), `(?m)^  subject:  "C=CH, O=xdpsec, CN=xdpsec interop CA"$`)
	e.agree(1)
}

func writeFile(name string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(name), 0o700); err != nil {
		return err
	}
	return os.WriteFile(name, b, 0o600)
}

// confFile writes a swanctl.conf of its own and returns its path.
func confFile(t *testing.T, conf string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "swanctl.conf")
	if err := os.WriteFile(p, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestVICISwanctlResponder: charon initiates; swanctl lists our side of
// the SA as charon's own, and acts on it by unique ID and by CHILD_SA
// name; a key we refuse is named in swanctl's output.
func TestVICISwanctlResponder(t *testing.T) {
	e := newEnv(t, envOptions{})
	charonSide, oursSide := pskPeers("aes256-sha256-modp3072", "aes128-sha256-modp3072")
	charonSide.connExtra = "    reauth_time = 7200\n    rekey_time = 0\n"
	oursSide.connExtra = charonSide.connExtra
	e.charon.load(charonSide.conf(), nil)
	dir := swanctlDir(t, oursSide.conf())
	o := e.ours
	o.swanctl(dir, "--load-all")
	// The first line of --list-conns as charon's.
	first := func(out string) string { l, _, _ := strings.Cut(out, "\n"); return l }
	if ol, cl := first(o.swanctl(dir, "--list-conns")), first(e.charon.swanctl("--list-conns")); ol != strings.Replace(cl, "IKEv1/2", "IKEv2", 1) ||
		ol != "c: IKEv2, reauthentication every 7200s, no rekeying" {
		t.Errorf("--list-conns: ours %q, charon's %q", ol, cl)
	}
	e.initiate(charonInitiates)
	ours := listSAsPretty(o.swanctl(dir, "--list-sas", "--pretty"))
	theirs := listSAsPretty(e.charon.swanctl("--list-sas", "--pretty"))
	if len(ours) != 1 || len(theirs) != 1 {
		t.Fatalf("IKE SAs: ours %d, charon's %d", len(ours), len(theirs))
	}
	compareSAs(t, ours[0], theirs[0])
	if ours[0].get("integ-alg") != "HMAC_SHA2_256_128" || ours[0].get("encr-keysize") != "256" || ours[0].get("dh-group") != "MODP_3072" {
		t.Errorf("algorithms: %+v", ours[0].values)
	}
	// Times as charon prints them: no rekeying, reauthentication.
	reauth := `(?m)^  established \d+s ago, reauth in \d+s$`
	wantLines(t, "--list-sas (ours)", o.swanctl(dir, "--list-sas"), reauth)
	wantLines(t, "--list-sas (charon's)", e.charon.swanctl("--list-sas"), reauth)
	// A filter by name that matches nothing lists nothing.
	if n := len(listSAsPretty(o.swanctl(dir, "--list-sas", "--pretty", "--ike", "nope"))); n != 0 {
		t.Errorf("--list-sas --ike nope: %d", n)
	}
	id := ours[0].get("uniqueid")
	wantLines(t, "--rekey --ike-id", o.swanctl(dir, "--rekey", "--ike-id", id), `(?m)^rekey completed successfully$`)
	waitFor(t, 20*time.Second, "the rekeyed IKE SA", func() error {
		ours := listSAsPretty(o.swanctl(dir, "--list-sas", "--pretty"))
		if len(ours) != 1 || ours[0].get("uniqueid") == id || ours[0].get("state") != "ESTABLISHED" {
			return errNotYet
		}
		return nil
	})
	wantLines(t, "--terminate --child", o.swanctl(dir, "--terminate", "--child", "net", "--timeout", "30"), `(?m)^terminate completed successfully$`)
	waitFor(t, 10*time.Second, "the CHILD_SA gone on both sides, the IKE SA kept", func() error {
		ours := listSAsPretty(o.swanctl(dir, "--list-sas", "--pretty"))
		theirs := listSAsPretty(e.charon.swanctl("--list-sas", "--pretty"))
		if len(ours) != 1 || len(theirs) != 1 || ours[0].sub("child-sas") != nil && len(ours[0].sub("child-sas").sections) != 0 ||
			theirs[0].sub("child-sas") != nil && len(theirs[0].sub("child-sas").sections) != 0 {
			return errNotYet
		}
		return nil
	})

	// swanctl.conf with a key we refuse: swanctl prints our error.
	bad := oursSide
	bad.childExtra = "        mark_in = 7\n"
	badDir := swanctlDir(t, bad.conf())
	out, err := o.swanctlRun(badDir, "--load-conns")
	if err == nil || !strings.Contains(out, "loading connection 'c' failed: vici load-conn: connections.c.children.net.mark_in: marks are not supported yet") {
		t.Errorf("--load-conns with mark_in: %v\n%s", err, out)
	}
}

// TestVICIAuthorities: our swanctl directory has no x509ca/, only an
// authorities section naming the CA: swanctl --load-all loads it with
// load-authority, its CA certificate is what authenticates charon's
// certificate, and --list-authorities prints what charon prints for the
// same authority. Gone from the file, --load-authorities unloads it.
func TestVICIAuthorities(t *testing.T) {
	ca := iketest.NewCA(t, "xdpsec interop CA", nil)
	ckey, ccert := endEntity(t, ca, "ecdsa", "moon.example.org", charonAddr)
	okey, ocert := endEntity(t, ca, "ecdsa", "sun.example.org", oursAddr)
	e := newEnv(t, envOptions{})
	cs, ourSide := certPeers(idKinds[1])
	e.charon.load(cs.conf(), certFiles(t, ca, ckey, ccert))
	caPath := filepath.Join(t.TempDir(), "authority-ca.pem")
	files := certFiles(t, ca, okey, ocert)
	if err := writeFile(caPath, files["x509ca/ca.pem"]); err != nil {
		t.Fatal(err)
	}
	delete(files, "x509ca/ca.pem")
	authorities := "authorities {\n  interop {\n    cacert = " + caPath + "\n    crl_uris = http://crl.example.org/ca.crl, file:///etc/ca.crl\n" +
		"    ocsp_uris = http://ocsp.example.org\n    cert_uri_base = http://certs.example.org/\n  }\n}\n"
	dir := swanctlDir(t, ourSide.conf()+authorities)
	for name, b := range files {
		if err := writeFile(filepath.Join(dir, name), b); err != nil {
			t.Fatal(err)
		}
	}
	out := e.ours.swanctl(dir, "--load-all")
	wantLines(t, "--load-all", out, `(?m)^loaded authority 'interop'$`, `(?m)^successfully loaded 1 authorities, 0 unloaded$`, `(?m)^loaded connection 'c'$`)
	ours := e.ours.swanctl(dir, "--list-authorities")
	wantLines(t, "--list-authorities", ours, `(?m)^interop:$`, `(?m)cacert.*C=CH, O=xdpsec, CN=xdpsec interop CA`,
		`http://crl\.example\.org/ca\.crl`, `http://ocsp\.example\.org`, `http://certs\.example\.org/`)
	if out, err := e.charon.swanctlRun("--load-authorities", "--file", confFile(t, authorities)); err != nil {
		t.Fatalf("charon --load-authorities: %v\n%s", err, out)
	}
	if theirs := e.charon.swanctl("--list-authorities"); ours != theirs {
		t.Errorf("--list-authorities: ours\n%s\ncharon's\n%s", ours, theirs)
	}
	// The authority's CA is our only trust anchor: charon's certificate
	// is verified with it.
	wantLines(t, "--initiate", e.ours.swanctl(dir, "--initiate", "--child", "net", "--timeout", "30"),
		`(?m)^\[IKE\] .*authentication of 'moon\.example\.org' with ECDSA`, `(?m)^initiate completed successfully$`)
	e.agree(1)
	// Gone from the file: swanctl unloads it.
	if err := os.WriteFile(filepath.Join(dir, "swanctl.conf"), []byte(ourSide.conf()), 0o600); err != nil {
		t.Fatal(err)
	}
	wantLines(t, "--load-authorities", e.ours.swanctl(dir, "--load-authorities"), `(?m)^no authorities found, 1 unloaded$`)
	if out := e.ours.swanctl(dir, "--list-authorities"); strings.TrimSpace(out) != "" {
		t.Errorf("--list-authorities after the unload:\n%s", out)
	}
}

// TestVICITrapStartAction: a connection with start_action = trap loaded
// by swanctl --load-all has its trap installed (--list-pols), and
// loaded again without it, the trap goes, as charon's vici does.
func TestVICITrapStartAction(t *testing.T) {
	e := newEnv(t, envOptions{})
	_, oursSide := pskPeers("aes128gcm16-prfsha256-x25519", "aes128gcm16")
	oursSide.childExtra = "start_action = trap\n"
	dir := swanctlDir(t, oursSide.conf())
	o := e.ours
	wantLines(t, "--load-all", o.swanctl(dir, "--load-all"), `(?m)^loaded connection 'c'$`)
	wantLines(t, "--list-pols", o.swanctl(dir, "--list-pols"), `(?m)^c/net, TUNNEL$`, `(?m)^  local:  10\.2\.0\.0/16$`, `(?m)^  remote: 10\.1\.0\.0/16$`)
	oursSide.childExtra = ""
	if err := os.WriteFile(filepath.Join(dir, "swanctl.conf"), []byte(oursSide.conf()), 0o600); err != nil {
		t.Fatal(err)
	}
	o.swanctl(dir, "--load-conns")
	if out := o.swanctl(dir, "--list-pols"); strings.TrimSpace(out) != "" {
		t.Errorf("--list-pols after start_action went:\n%s", out)
	}
}
