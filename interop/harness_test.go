package interop

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/xdpsec/xdpsec/internal/daemon"
	"github.com/xdpsec/xdpsec/internal/testenv"
)

// Where Debian's strongswan-charon and strongswan-swanctl put charon and swanctl.
const (
	charonPath  = "/usr/lib/ipsec/charon"
	swanctlPath = "/usr/sbin/swanctl"
)

// The addresses of a test: charon's and ours on the veth between them (or
// on the NAT's two sides), and the subnets behind each, with one address
// of charon's subnet on its loopback for kernel-libipsec's route.
const (
	charonAddr   = "10.99.0.1"
	oursAddr     = "10.99.0.2"
	charonNet    = "10.1.0.0/16"
	charonHost   = "10.1.0.1"
	oursNet      = "10.2.0.0/16"
	wanPrefixLen = "/24"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
	binDir    string
	// charonBin and swanctlBin are copies of Debian's binaries: Debian's
	// AppArmor profiles for them attach by path and confine them to the
	// system's /etc and /run, where the tests' charon must not go.
	charonBin, swanctlBin string
)

// TestMain removes the xdpsec binary the tests built.
func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// requireInterop skips unless the test can run: root, charon, swanctl,
// nsenter and unshare.
func requireInterop(t *testing.T) {
	t.Helper()
	testenv.RequireRoot(t)
	for _, c := range []string{"nsenter", "unshare", "ip"} {
		testenv.RequireCommand(t, c)
	}
	for _, p := range []string{charonPath, swanctlPath} {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("skipped: needs strongSwan's %s (`make deps` installs it): %v", p, err)
		}
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		t.Skipf("skipped: kernel-libipsec needs /dev/net/tun: %v", err)
	}
}

// xdpsecBinary builds cmd/xdpsec once for all tests.
func xdpsecBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "xdpsec-interop-bin")
		if buildErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "xdpsec")
		gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
		if _, err := os.Stat(gobin); err != nil {
			gobin = "go"
		}
		out, err := exec.Command(gobin, "build", "-o", binPath, "../cmd/xdpsec").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build ../cmd/xdpsec: %v\n%s", err, out)
			return
		}
		charonBin, swanctlBin = filepath.Join(binDir, "charon"), filepath.Join(binDir, "swanctl")
		for src, dst := range map[string]string{charonPath: charonBin, swanctlPath: swanctlBin} {
			b, err := os.ReadFile(src)
			if err == nil {
				err = os.WriteFile(dst, b, 0o700)
			}
			if err != nil {
				buildErr = fmt.Errorf("copying %s: %w", src, err)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// envOptions say how a test's world is built.
type envOptions struct {
	// charonSettings are extra lines in strongswan.conf's charon section.
	charonSettings string
	// daemonArgs are extra arguments of xdpsec daemon.
	daemonArgs []string
	// nat puts one side ("xdpsec" or "charon") behind a third namespace
	// that masquerades it, remapping its ports to 30000-30100: the side
	// behind it has 192.168.77.2 and is seen as the NAT's outside address,
	// 10.99.0.2 for us, 10.99.0.1 for charon.
	nat string
	// mtu of the links, 0 for the default.
	mtu int
	// kernelIPsec has charon install its SAs with kernel-netlink into
	// its namespace's XFRM instead of kernel-libipsec, which implements
	// ESP only and fakes a NAT: for AH. It needs a host kernel with the
	// transforms (requireKernelAH).
	kernelIPsec bool
	// strongswan6 runs charon 6 from the Debian trixie chroot instead of
	// the host's 5.9.8 (sw6_test.go); the test skips where there is none.
	strongswan6 bool
}

// env is one test's world: charon in one namespace, our daemon in another.
type env struct {
	t        *testing.T
	nsC, nsO *testenv.Netns
	nsNAT    *testenv.Netns
	charon   *charon
	ours     *ours
	// oursLocal and charonLocal are the sides' own addresses (behind the
	// NAT if any).
	oursLocal, charonLocal string
	// kernelIPsec: charon without kernel-libipsec, so no faked NAT and
	// CHILD_SAs without UDP encapsulation.
	kernelIPsec bool
}

func newEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	requireInterop(t)
	var root string
	if o.strongswan6 {
		root = requireStrongSwan6(t)
	}
	bin := xdpsecBinary(t)
	e := &env{t: t, oursLocal: oursAddr, charonLocal: charonAddr, kernelIPsec: o.kernelIPsec}
	e.nsC = testenv.NewNetns(t, "xi-charon")
	e.nsO = testenv.NewNetns(t, "xi-ours")
	if o.nat != "" {
		testenv.RequireCommand(t, "nft")
		e.nsNAT = testenv.NewNetns(t, "xi-nat")
		inside, outside, publicAddr, outsideAddr := e.nsO, e.nsC, oursAddr, charonAddr
		if o.nat == "charon" {
			inside, outside, publicAddr, outsideAddr = e.nsC, e.nsO, charonAddr, oursAddr
			e.charonLocal = "192.168.77.2"
		} else {
			e.oursLocal = "192.168.77.2"
		}
		testenv.Veth(t, outside, "wan0", outsideAddr+wanPrefixLen, e.nsNAT, "out0", publicAddr+wanPrefixLen)
		testenv.Veth(t, e.nsNAT, "in0", "192.168.77.1/24", inside, "wan0", "192.168.77.2/24")
		inside.MustRun(t, "ip", "route", "add", "default", "via", "192.168.77.1")
		e.nsNAT.MustRun(t, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
		e.nsNAT.MustRun(t, "nft", "add table ip nat; add chain ip nat post { type nat hook postrouting priority 100; }; "+
			"add rule ip nat post oifname out0 meta l4proto udp masquerade to :30000-30100; add rule ip nat post oifname out0 masquerade")
	} else {
		testenv.Veth(t, e.nsC, "wan0", charonAddr+wanPrefixLen, e.nsO, "wan0", oursAddr+wanPrefixLen)
	}
	if o.mtu != 0 {
		for _, ns := range []*testenv.Netns{e.nsC, e.nsO} {
			ns.MustRun(t, "ip", "link", "set", "wan0", "mtu", fmt.Sprint(o.mtu))
		}
	}
	// kernel-libipsec routes the remote subnet over its TUN device with a
	// source address from charon's local_ts: that address must be charon's.
	e.nsC.MustRun(t, "ip", "addr", "add", charonHost+"/32", "dev", "lo")
	plugins := charonPlugins
	if o.strongswan6 {
		plugins = charon6Plugins(root)
	}
	if o.kernelIPsec {
		plugins = strings.Replace(plugins, " kernel-libipsec", "", 1)
	}
	e.charon = startCharonIn(t, e.nsC, o.charonSettings, plugins, root)
	e.ours = startOurs(t, bin, e.nsO, o.daemonArgs)
	return e
}

// logsOnFailure prints both sides' logs when the test failed.
func logsOnFailure(t *testing.T, name, path string) {
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(path)
			t.Logf("%s log:\n%s", name, b)
		}
	})
}

// charon is a running charon and its swanctl directory.
type charon struct {
	t       *testing.T
	dir     string // strongswan.conf, charon.log, vici socket
	swanDir string // the swanctl directory: swanctl.conf, x509/, x509ca/, private/
	uri     string
	logPath string
	cmd     *exec.Cmd
	exited  <-chan error
	killed  bool
	// root is the chroot charon runs in ("" for the host's charon), where
	// it sees dir as rootDir (sw6_test.go).
	root string
}

// strongswan.conf of the tests: only the plugins needed (kernel-libipsec
// for ESP in userspace, kernel-netlink for addresses and routes, kdf for
// the PRF+ of the openssl backend, the EAP methods of the remote-access
// tests, xauth-generic and unity for the IKEv1 XAuth tests, resolve writing the DNS servers it is given to a file of the
// test's own), a file log, and VICI on a socket of the test's own.
const charonPlugins = "random nonce x509 revocation constraints pubkey pem pkcs1 pkcs8 openssl gmp curve25519 aes sha1 sha2 hmac gcm kdf kernel-libipsec kernel-netlink socket-default vici eap-identity eap-md5 eap-mschapv2 eap-tls resolve xauth-generic unity"

const strongswanConf = `charon {
	load = %s
	filelog {
		charon {
			path = %s
			time_format = %%H:%%M:%%S
			flush_line = yes
			default = 1
			ike = 2
			cfg = 1
			net = 1
		}
	}
	syslog {
		daemon {
			default = -1
		}
	}
	plugins {
		vici {
			socket = %s
		}
		resolve {
			file = %s
		}
	}
	install_virtual_ip = no
%s
}
`

func startCharon(t *testing.T, ns *testenv.Netns, settings string) *charon {
	t.Helper()
	return startCharonPlugins(t, ns, settings, charonPlugins)
}

// startCharonPlugins is startCharon with another list of plugins.
func startCharonPlugins(t *testing.T, ns *testenv.Netns, settings, plugins string) *charon {
	t.Helper()
	return startCharonIn(t, ns, settings, plugins, "")
}

// startCharonIn is startCharonPlugins of the charon in the chroot root
// (charon 6, sw6_test.go), or of the host's where root is "".
func startCharonIn(t *testing.T, ns *testenv.Netns, settings, plugins, root string) *charon {
	t.Helper()
	dir := t.TempDir()
	c := &charon{t: t, dir: dir, swanDir: filepath.Join(dir, "swanctl"), logPath: filepath.Join(dir, "charon.log"), root: root}
	c.uri = "unix://" + filepath.Join(dir, "vici.sock")
	for _, sub := range []string{"", "x509", "x509ca", "private", "x509ocsp", "x509aa", "x509ac", "x509crl", "pubkey", "rsa", "ecdsa", "bliss", "pkcs8", "pkcs12"} {
		if err := os.MkdirAll(filepath.Join(c.swanDir, sub), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	conf := filepath.Join(dir, "strongswan.conf")
	// charon's own view of its files: dir itself, or where the chroot
	// has it mounted.
	seen := dir
	if root != "" {
		seen = rootDir
	}
	if err := os.WriteFile(conf, fmt.Appendf(nil, strongswanConf, plugins, filepath.Join(seen, "charon.log"), "unix://"+filepath.Join(seen, "vici.sock"),
		filepath.Join(seen, "resolv.conf"), settings), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := os.Create(filepath.Join(dir, "charon.out"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	// nsenter enters the test's network namespace, unshare gives charon
	// a mount namespace of its own whose /run (charon.pid) is a fresh tmpfs.
	c.cmd = exec.Command("nsenter", "--net=/run/netns/"+ns.Name, "unshare", "--mount", "--propagation", "private",
		"sh", "-c", "mount -t tmpfs tmpfs /run && exec "+charonBin)
	c.cmd.Env = append(os.Environ(), "STRONGSWAN_CONF="+conf)
	if root != "" {
		c.cmd = chrootedCharon(ns, root, dir)
		c.cmd.Env = append(os.Environ(), "STRONGSWAN_CONF="+filepath.Join(seen, "strongswan.conf"))
	}
	c.cmd.Stdout, c.cmd.Stderr = out, out
	exited, err := testenv.StartKept(c.cmd)
	if err != nil {
		t.Fatal(err)
	}
	c.exited = exited
	t.Cleanup(c.stop)
	logsOnFailure(t, "charon", c.logPath)
	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, err := c.swanctlRun("--stats"); err == nil {
			break
		}
		select {
		case err := <-c.exited:
			b, _ := os.ReadFile(filepath.Join(dir, "charon.out"))
			t.Fatalf("charon exited: %v\n%s", err, b)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("charon's VICI socket did not come up")
		}
		time.Sleep(50 * time.Millisecond)
	}
	return c
}

// stop ends charon (SIGTERM, then SIGKILL).
func (c *charon) stop() {
	if c.cmd == nil || c.killed {
		return
	}
	c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
	case <-time.After(5 * time.Second):
		c.cmd.Process.Kill()
		<-c.exited
	}
	c.killed = true
}

// kill ends charon at once, as a crash would: no DELETE reaches the peer.
func (c *charon) kill() {
	if c.killed {
		return
	}
	c.cmd.Process.Kill()
	<-c.exited
	c.killed = true
}

func (c *charon) swanctlRun(args ...string) (string, error) {
	if c.root != "" {
		return c.swanctl6Run(args...)
	}
	// --uri goes after the command, which is the first argument.
	all := append([]string{args[0], "--uri", c.uri}, args[1:]...)
	cmd := exec.Command(swanctlBin, all...)
	cmd.Env = append(os.Environ(), "SWANCTL_DIR="+c.swanDir)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// swanctl runs a swanctl command against this charon; the test fails if it does.
func (c *charon) swanctl(args ...string) string {
	c.t.Helper()
	out, err := c.swanctlRun(args...)
	if err != nil {
		c.t.Fatalf("swanctl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// load writes swanctl.conf (and the files given, relative to the
// swanctl directory) and has charon load all of it, replacing what it had.
func (c *charon) load(conf string, files map[string][]byte) {
	c.t.Helper()
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(c.swanDir, name), b, 0o600); err != nil {
			c.t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(c.swanDir, "swanctl.conf"), []byte(conf), 0o600); err != nil {
		c.t.Fatal(err)
	}
	c.swanctl("--load-all", "--clear", "--file", filepath.Join(c.swanDir, "swanctl.conf"))
}

// log is charon's log so far.
func (c *charon) log() string {
	b, _ := os.ReadFile(c.logPath)
	return string(b)
}

// sas lists charon's IKE SAs through swanctl --list-sas --pretty.
func (c *charon) sas() []*section {
	c.t.Helper()
	out := c.swanctl("--list-sas", "--pretty")
	var sas []*section
	for _, ev := range parsePretty(out) {
		if ev.name != "list-sa event" {
			continue
		}
		for _, sa := range ev.sections {
			sas = append(sas, sa)
		}
	}
	return sas
}

// ours is our daemon in its namespace.
type ours struct {
	t       *testing.T
	bin     string
	dir     string
	conf    string
	sock    string
	vici    string // our VICI socket
	logPath string
	cmd     *exec.Cmd
	exited  <-chan error
	ns      *testenv.Netns
	args    []string
}

func startOurs(t *testing.T, bin string, ns *testenv.Netns, args []string) *ours {
	t.Helper()
	dir := t.TempDir()
	o := &ours{t: t, bin: bin, dir: dir, conf: filepath.Join(dir, "swanctl.conf"), sock: filepath.Join(dir, "xdpsec.sock"), vici: filepath.Join(dir, "charon.vici"),
		logPath: filepath.Join(dir, "daemon.log"), ns: ns, args: args}
	for _, sub := range []string{"x509", "x509ca", "private"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(o.conf, []byte("connections {\n}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(o.stop)
	logsOnFailure(t, "xdpsec daemon", o.logPath)
	o.start()
	return o
}

// restart stops the daemon (SIGTERM, or SIGKILL if kill) and starts it
// again with the same files, state file and arguments; the log goes on.
func (o *ours) restart(kill bool) {
	o.t.Helper()
	if kill {
		o.cmd.Process.Kill()
		<-o.exited
		o.cmd = nil
	} else {
		o.stop()
	}
	o.start()
}

// start runs the daemon and waits for its control socket.
func (o *ours) start() {
	t := o.t
	t.Helper()
	logf, err := os.OpenFile(o.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	all := append([]string{"--net=/run/netns/" + o.ns.Name, o.bin, "daemon", "--dataplane=dry-run", "--config", o.conf,
		"--socket", o.sock, "--vici", o.vici, "--state", filepath.Join(o.dir, "ike-state.json"), "--log", "ike=2,knl=1,cfg=1,net=1"}, o.args...)
	o.cmd = exec.Command("nsenter", all...)
	o.cmd.Stdout, o.cmd.Stderr = logf, logf
	exited, err := testenv.StartKept(o.cmd)
	if err != nil {
		t.Fatal(err)
	}
	o.exited = exited
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := daemon.Call(o.sock, daemon.Request{Command: daemon.CmdListConns}); err == nil {
			return
		}
		select {
		case err := <-o.exited:
			b, _ := os.ReadFile(o.logPath)
			t.Fatalf("xdpsec daemon exited: %v\n%s", err, b)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("xdpsec daemon's control socket did not come up")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (o *ours) stop() {
	if o.cmd == nil {
		return
	}
	o.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-o.exited:
	case <-time.After(10 * time.Second):
		o.cmd.Process.Kill()
		<-o.exited
		o.t.Errorf("xdpsec daemon did not stop on SIGTERM")
	}
	o.cmd = nil
}

// cliRun runs the xdpsec CLI against our daemon.
func (o *ours) cliRun(args ...string) (string, error) {
	all := []string{}
	if len(args) > 2 && args[0] == "-o" {
		all = append(all, args[:2]...)
		args = args[2:]
	}
	all = append(all, args[0], "--socket", o.sock)
	all = append(all, args[1:]...)
	var out bytes.Buffer
	cmd := exec.Command(o.bin, all...)
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

func (o *ours) cli(args ...string) string {
	o.t.Helper()
	out, err := o.cliRun(args...)
	if err != nil {
		o.t.Fatalf("xdpsec %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// load writes our swanctl.conf (and files relative to its directory) and
// reloads the daemon.
func (o *ours) load(conf string, files map[string][]byte) {
	o.t.Helper()
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(o.dir, name), b, 0o600); err != nil {
			o.t.Fatal(err)
		}
	}
	if err := os.WriteFile(o.conf, []byte(conf), 0o600); err != nil {
		o.t.Fatal(err)
	}
	o.cli("reload")
}

func (o *ours) sas() []daemon.IKESA {
	o.t.Helper()
	var sas []daemon.IKESA
	out := o.cli("-o", "json", "list-sas")
	if err := json.Unmarshal([]byte(out), &sas); err != nil {
		o.t.Fatalf("xdpsec list-sas -o json: %v\n%s", err, out)
	}
	return sas
}

func (o *ours) log() string {
	b, _ := os.ReadFile(o.logPath)
	return string(b)
}

// waitFor polls until cond holds, failing the test after the timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitLog waits until a log holds every one of the strings.
func waitLog(t *testing.T, who string, log func() string, timeout time.Duration, wants ...string) {
	t.Helper()
	waitFor(t, timeout, who+"'s log lines", func() error {
		l := log()
		var missing []string
		for _, w := range wants {
			if !strings.Contains(l, w) {
				missing = append(missing, w)
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("missing %q", missing)
		}
		return nil
	})
}

var errNotYet = errors.New("not yet")

// linkedNetns adds a namespace of a test's world, linked by a veth to
// an existing one: its side named wan<n> with addr, the other side's
// (ifTo in to) with addrTo, both /24. A second gateway lives in one (our
// daemon or charon again).
func (e *env) linkedNetns(prefix string, to *testenv.Netns, ifTo, addrTo, ifNew, addr string) *testenv.Netns {
	e.t.Helper()
	ns := testenv.NewNetns(e.t, prefix)
	testenv.Veth(e.t, to, ifTo, addrTo+wanPrefixLen, ns, ifNew, addr+wanPrefixLen)
	return ns
}

// secondOurs starts another of our daemons in ns, with its own files.
func (e *env) secondOurs(ns *testenv.Netns, args ...string) *ours {
	e.t.Helper()
	return startOurs(e.t, xdpsecBinary(e.t), ns, args)
}

// secondCharon starts another charon in ns, with charon's loopback
// address for kernel-libipsec's route.
func (e *env) secondCharon(ns *testenv.Netns) *charon {
	e.t.Helper()
	ns.MustRun(e.t, "ip", "addr", "add", charonHost+"/32", "dev", "lo")
	return startCharon(e.t, ns, "")
}
