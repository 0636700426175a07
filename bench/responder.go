package bench

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Where Debian's strongswan-charon and strongswan-swanctl put charon and swanctl.
const (
	CharonPath  = "/usr/lib/ipsec/charon"
	SwanctlPath = "/usr/sbin/swanctl"
)

// ikePSK is the pre-shared key every benchmark peer uses.
const ikePSK = "xdpsec benchmark shared secret"

// Proposal is an IKE proposal and the ESP proposal that goes with it.
type Proposal struct{ IKE, ESP string }

// BenchProposals are the proposals the IKE benchmarks compare with.
var BenchProposals = []Proposal{
	{"aes128gcm16-prfsha256-x25519", "aes128gcm16"},
	{"aes256-sha256-modp2048", "aes256-sha256"},
}

// responderConf is the swanctl.conf both responders load: any peer, PSK,
// one CHILD_SA from the responder's LAN to an address of the peer's.
func responderConf(p Proposal) string {
	return fmt.Sprintf(`connections {
	bench {
		version = 2
		remote_addrs = %%any
		proposals = %s
		local {
			auth = psk
		}
		remote {
			auth = psk
		}
		children {
			net {
				local_ts = %s
				remote_ts = %s
				esp_proposals = %s
			}
		}
	}
}
secrets {
	ike-bench {
		secret = "%s"
	}
}
`, p.IKE, respLAN, innerPrefix, p.ESP, ikePSK)
}

// responder is a running IKE responder process in the responder namespace.
type responder struct {
	name   string
	dir    string
	exe    string // the responder's own program
	cmd    *exec.Cmd
	exited chan error
	pid    int
}

// ResponderKind says which responder to run.
type ResponderKind string

const (
	// Ours is our daemon in dry-run without a state file (--state -).
	Ours ResponderKind = "xdpsec"
	// OursState is our daemon in dry-run with its saved state on: a
	// --state file in its directory, written as SAs change.
	OursState ResponderKind = "xdpsec-state"
	// Charon is Debian's charon with kernel-libipsec (userspace ESP).
	Charon ResponderKind = "charon"
	// CharonLT is charon built with strongSwan's load-tester plugin
	// (charon-lt.sh), run with `load-tester { enable = yes; fake_kernel
	// = yes; initiators = 0 }`: a passive responder whose kernel
	// interface is load-tester's fake, which installs nothing, like our
	// dry-run.
	CharonLT ResponderKind = "charon-lt"
)

// CharonLTEnv names the environment variable that overrides where
// charon-lt.sh installed its build (default: .cache/charon-lt/inst in
// the module's root).
const CharonLTEnv = "XDPSEC_CHARON_LT"

// CharonLTDir is where charon-lt.sh installs charon with load-tester:
// $XDPSEC_CHARON_LT, else .cache/charon-lt/inst in the directory of the
// go.mod above the working directory, "" if neither is found.
func CharonLTDir() string { return cacheDir(CharonLTEnv, "charon-lt", "inst") }

// cacheDir is $env if set, else .cache/<sub...> in the directory of the
// go.mod above the working directory, "" if neither is found.
func cacheDir(env string, sub ...string) string {
	if d := os.Getenv(env); d != "" {
		return d
	}
	wd, err := os.Getwd()
	if err != nil {
		return ""
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return filepath.Join(append([]string{d, ".cache"}, sub...)...)
		}
		if filepath.Dir(d) == d {
			return ""
		}
	}
}

// CharonLTVersion is the Debian source version charon-lt.sh built from,
// "" if unknown.
func CharonLTVersion() string {
	b, err := os.ReadFile(filepath.Join(CharonLTDir(), "VERSION"))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// requireCharonLT says why charon with load-tester cannot run, or nil.
func requireCharonLT() error {
	d := CharonLTDir()
	for _, p := range []string{filepath.Join(d, "libexec", "ipsec", "charon"), filepath.Join(d, "sbin", "swanctl"),
		filepath.Join(d, "lib", "ipsec", "plugins", "libstrongswan-load-tester.so")} {
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("charon with load-tester is not built (`make charon-lt` builds it into .cache/charon-lt): %w", err)
		}
	}
	return nil
}

// respSettings are what a responder run is configured with.
type respSettings struct {
	proposal Proposal
	// cookieThreshold: half-open IKE SAs from which COOKIEs are asked
	// for; negative never.
	cookieThreshold int
	// blockThreshold: half-open IKE SAs per source address from which
	// a responder drops that source's requests for more (block_threshold,
	// ours and charon's), where cookies are on; 0 is the benchmark's 1000,
	// which never blocks its initiators (the default is 5).
	blockThreshold int
	// conf, if set, is the swanctl.conf both responders load instead of
	// responderConf's, and files the credentials beside it (paths
	// relative to the swanctl directory: x509/, private/, x509ca/).
	conf  string
	files map[string][]byte
	// plugins are charon plugins loaded besides benchCharonPlugins.
	plugins string
	// Ours only: state is the --state file (default "-", none), logs
	// the --log levels (default "any=0", charon's level 0), confPath
	// where swanctl.conf is written (default: in the responder's
	// directory; a daemon takes back only a state file written with the
	// same configuration file).
	state, logs, confPath string
	// stateOn: ours with a state file in its directory where state
	// does not name one (OursState).
	stateOn bool
}

// swanctlConf is the swanctl.conf the responder loads.
func (s respSettings) swanctlConf() string {
	if s.conf != "" {
		return s.conf
	}
	return responderConf(s.proposal)
}

// writeFiles writes the credentials into the swanctl directory dir.
func (s respSettings) writeFiles(dir string) error {
	for name, b := range s.files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return err
		}
		if err := os.WriteFile(path, b, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// block is the block_threshold both responders run with: none where
// cookies are off (charon's DoS protection is then off as a whole), else
// blockThreshold or 1000. 0 means none, as for charon and our
// --block-threshold.
func (s respSettings) block() int {
	switch {
	case s.cookieThreshold < 0:
		return 0
	case s.blockThreshold == 0:
		return 1000
	}
	return s.blockThreshold
}

// startOurs starts `xdpsec daemon --dataplane=dry-run` in the responder
// namespace, logging at charon's level 0 (what charon is given too).
func startOurs(bin string, ns *namedNetns, s respSettings) (*responder, error) {
	dir, err := os.MkdirTemp("", "xdpsec-bench-ours")
	if err != nil {
		return nil, err
	}
	conf := cmp.Or(s.confPath, filepath.Join(dir, "swanctl.conf"))
	err = os.WriteFile(conf, []byte(s.swanctlConf()), 0o600)
	if err == nil {
		err = s.writeFiles(dir)
	}
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	sock := filepath.Join(dir, "xdpsec.sock")
	r := &responder{name: string(Ours), dir: dir, exe: bin}
	state, logs := cmp.Or(s.state, "-"), cmp.Or(s.logs, "any=0")
	if s.stateOn && s.state == "" {
		state = filepath.Join(dir, "state")
	}
	r.cmd = exec.Command("nsenter", "--net="+ns.path(), bin, "daemon", "--dataplane=dry-run", "--config", conf,
		"--socket", sock, "--state", state, "--log", logs, "--cookie-threshold", strconv.Itoa(s.cookieThreshold),
		"--block-threshold", strconv.Itoa(s.block()))
	if dir := os.Getenv("XDPSEC_BENCH_CPUPROFILE"); dir != "" {
		// Profiling by hand: each responder's CPU profile in dir.
		id := time.Now().UnixNano()
		r.cmd.Args = append(r.cmd.Args, "--cpuprofile", filepath.Join(dir, fmt.Sprintf("ours-%d.prof", id)),
			"--memprofile", filepath.Join(dir, fmt.Sprintf("ours-%d.heap", id)))
	}
	if err := r.start(filepath.Join(dir, "daemon.log"), func() bool {
		_, err := os.Stat(sock)
		return err == nil
	}); err != nil {
		return nil, err
	}
	return r, nil
}

// strongswan.conf of the benchmark's charon: the plugins a PSK responder
// with these proposals needs (kernel-libipsec: ESP in userspace, as the
// host kernel may have none), routes not installed (our dry-run installs
// nothing either), an IKE SA hash table sized for the SAs (the default
// is a single bucket), a file log at level 0 like ours, VICI on a socket
// of its own. The other settings are Debian's defaults (16 threads).
const benchStrongswanConf = `charon {
	load = %s
	install_routes = no
	install_virtual_ip = no
	ikesa_table_size = 32768
	ikesa_table_segments = 16
	%s
	filelog {
		bench {
			path = %s
			flush_line = yes
			default = 0
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
		%s
	}
}
`

// benchCharonPlugins are the plugins of the PSK runs.
const benchCharonPlugins = "random nonce openssl gmp curve25519 aes sha1 sha2 hmac gcm kdf kernel-libipsec kernel-netlink socket-default vici"

// ltCharonPlugins are the plugins of charon with load-tester, all that
// charon-lt.sh builds: openssl does the crypto (AES-GCM, SHA-2, HMAC,
// X25519, MODP), kdf the PRF+ on top of it. load-tester comes before kernel-netlink, so
// that its fake kernel-ipsec is the one registered (the first wins);
// kernel-netlink is there for the kernel-net interface load-tester
// depends on.
const ltCharonPlugins = "random nonce openssl kdf load-tester kernel-netlink socket-default vici"

// ltSettings is charon's load-tester section: a passive responder
// (initiators = 0), no kernel work (fake_kernel), and the benchmark's
// PSK as the plugin's own (its credential set offers that key for any
// identity, beside the one swanctl loads).
var ltSettings = `load-tester {
			enable = yes
			fake_kernel = yes
			initiators = 0
			preshared_key = "` + ikePSK + `"
		}`

// OursSettings names what our responder is run with besides
// --dataplane=dry-run and --log any=0, for the report.
const OursSettings = "`--cookie-threshold` and `--block-threshold` as charon's `cookie_threshold` and `block_threshold` " +
	"(no COOKIEs and no per-source block where cookies are off, else `--block-threshold 1000` unless the flood sets it)"

// CharonSettings names what benchStrongswanConf changes from Debian's
// defaults, for the report.
const CharonSettings = "`install_routes = no`, `ikesa_table_size = 32768`, `ikesa_table_segments = 16`, " +
	"`dos_protection = no` where cookies are off for ours (no COOKIEs, no per-source block), else `cookie_threshold` as for ours " +
	"and `block_threshold = 1000` unless the flood sets it, log level 0, only the plugins needed " +
	"(openssl, gmp, curve25519, aes, sha1, sha2, hmac, gcm, kdf, random, nonce, kernel-libipsec, kernel-netlink, socket-default, vici)"

// charonDoS is charon's DoS settings for the run. With cookies off for
// ours, charon's DoS protection is off as a whole: its per-source
// cookie_threshold_ip (3) would otherwise turn cookies on for everybody as
// soon as one source has three half-open IKE SAs, as a flood's spoofed
// sources soon do.
func (s respSettings) charonDoS() string {
	if s.cookieThreshold < 0 {
		return "dos_protection = no"
	}
	return fmt.Sprintf("cookie_threshold = %d\n\tblock_threshold = %d", s.cookieThreshold, s.block())
}

// startCharon starts Debian's charon (a copy: its AppArmor profile
// attaches by path and confines it to the system's /etc and /run), or
// with lt charon-lt.sh's charon with load-tester and fake_kernel, in the
// responder namespace and its own mount namespace, and loads the
// benchmark's swanctl.conf.
func startCharon(ns *namedNetns, s respSettings, lt bool) (*responder, error) {
	dir, err := os.MkdirTemp("", "xdpsec-bench-charon")
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*responder, error) { os.RemoveAll(dir); return nil, err }
	charonBin, swanctlBin := filepath.Join(dir, "charon"), filepath.Join(dir, "swanctl")
	if lt {
		d := CharonLTDir()
		charonBin, swanctlBin = filepath.Join(d, "libexec", "ipsec", "charon"), filepath.Join(d, "sbin", "swanctl")
	}
	for src, dst := range map[string]string{CharonPath: charonBin, SwanctlPath: swanctlBin} {
		if lt {
			break
		}
		b, err := os.ReadFile(src)
		if err == nil {
			err = os.WriteFile(dst, b, 0o700)
		}
		if err != nil {
			return fail(fmt.Errorf("charon: %w", err))
		}
	}
	swanDir := filepath.Join(dir, "swanctl.d")
	for _, sub := range []string{"", "x509", "x509ca", "private", "x509ocsp", "x509aa", "x509ac", "x509crl", "pubkey", "rsa", "ecdsa", "bliss", "pkcs8", "pkcs12"} {
		if err := os.MkdirAll(filepath.Join(swanDir, sub), 0o700); err != nil {
			return fail(err)
		}
	}
	if err := os.WriteFile(filepath.Join(swanDir, "swanctl.conf"), []byte(s.swanctlConf()), 0o600); err != nil {
		return fail(err)
	}
	if err := s.writeFiles(swanDir); err != nil {
		return fail(err)
	}
	uri := "unix://" + filepath.Join(dir, "vici.sock")
	conf := filepath.Join(dir, "strongswan.conf")
	plugins, pluginConf := benchCharonPlugins, ""
	if lt {
		plugins, pluginConf = ltCharonPlugins, ltSettings
	}
	if s.plugins != "" {
		plugins += " " + s.plugins
	}
	if err := os.WriteFile(conf, fmt.Appendf(nil, benchStrongswanConf, plugins, s.charonDoS(), filepath.Join(dir, "charon.log"), uri, pluginConf), 0o600); err != nil {
		return fail(err)
	}
	r := &responder{name: string(Charon), dir: dir, exe: charonBin}
	r.cmd = exec.Command("nsenter", "--net="+ns.path(), "unshare", "--mount", "--propagation", "private",
		"sh", "-c", "mount -t tmpfs tmpfs /run && exec "+charonBin)
	r.cmd.Env = append(os.Environ(), "STRONGSWAN_CONF="+conf)
	swanctl := func(args ...string) error {
		cmd := exec.Command(swanctlBin, append([]string{args[0], "--uri", uri}, args[1:]...)...)
		cmd.Env = append(os.Environ(), "SWANCTL_DIR="+swanDir)
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("swanctl %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
		}
		return nil
	}
	if err := r.start(filepath.Join(dir, "charon.out"), func() bool { return swanctl("--stats") == nil }); err != nil {
		return nil, err
	}
	if err := swanctl("--load-all", "--file", filepath.Join(swanDir, "swanctl.conf")); err != nil {
		r.stop()
		return nil, err
	}
	return r, nil
}

// start runs the command with its output in outPath and waits until up
// says it serves, then finds the responder's own process (nsenter,
// unshare and sh exec into it).
func (r *responder) start(outPath string, up func() bool) error {
	out, err := os.Create(outPath)
	if err != nil {
		os.RemoveAll(r.dir)
		return err
	}
	defer out.Close()
	r.cmd.Stdout, r.cmd.Stderr = out, out
	// Pdeathsig fires when the thread that started the process ends, and
	// Go ends threads whose goroutine exits locked (as namespace
	// switching does): start from a locked thread that lives until the
	// process is gone.
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	r.exited = make(chan error, 1)
	started := make(chan error, 1)
	go func(cmd *exec.Cmd) {
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		r.exited <- cmd.Wait()
	}(r.cmd)
	if err := <-started; err != nil {
		os.RemoveAll(r.dir)
		return fmt.Errorf("start %s: %w", r.name, err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for !up() {
		select {
		case err := <-r.exited:
			b, _ := os.ReadFile(outPath)
			r.cmd = nil
			os.RemoveAll(r.dir)
			return fmt.Errorf("%s exited: %v: %s", r.name, err, bytes.TrimSpace(b))
		default:
		}
		if time.Now().After(deadline) {
			r.stop()
			return fmt.Errorf("%s did not come up in 15s", r.name)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if r.pid = descendant(r.cmd.Process.Pid, r.exe); r.pid == 0 {
		r.stop()
		return fmt.Errorf("%s: no process of %s below %d", r.name, r.exe, r.cmd.Process.Pid)
	}
	return nil
}

// descendant finds the process running exe among root and its
// descendants, 0 if none.
func descendant(root int, exe string) int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			continue
		}
		if arg0, _, _ := bytes.Cut(cmdline, []byte{0}); string(arg0) != exe {
			continue
		}
		for p, hops := pid, 0; p > 1 && hops < 16; hops++ {
			if p == root {
				return pid
			}
			p = parentPID(p)
		}
	}
	return 0
}

func parentPID(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 2 {
		return 0
	}
	p, _ := strconv.Atoi(f[1])
	return p
}

// logTail is the last lines of the responder's log, for errors.
func (r *responder) logTail() string {
	name := "daemon.log"
	if ResponderKind(r.name).IsCharon() {
		name = "charon.log"
	}
	b, _ := os.ReadFile(filepath.Join(r.dir, name))
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(len(lines)-80, 0):], "\n")
}

// stop ends the responder (SIGTERM, then SIGKILL) and removes its files.
func (r *responder) stop() {
	if r.cmd != nil {
		if r.pid != 0 {
			syscall.Kill(r.pid, syscall.SIGTERM)
		}
		r.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-r.exited:
		case <-time.After(stopWait()):
			if r.pid != 0 {
				syscall.Kill(r.pid, syscall.SIGKILL)
			}
			r.cmd.Process.Kill()
			<-r.exited
		}
		r.cmd = nil
	}
	os.RemoveAll(r.dir)
}

// stopWait is how long a responder has to exit after SIGTERM: longer
// when it writes profiles, which at 100,000 IKE SAs takes a while.
func stopWait() time.Duration {
	if os.Getenv("XDPSEC_BENCH_CPUPROFILE") != "" {
		return 5 * time.Minute
	}
	return 5 * time.Second
}

// procUsage is what /proc says about a process.
type procUsage struct {
	CPU      time.Duration // user + system, all threads
	RSS, HWM int64         // bytes: resident now, peak resident
}

// clockTicks is USER_HZ, which the kernel fixes at 100 for /proc.
const clockTicks = 100

func readProc(pid int) (procUsage, error) {
	var u procUsage
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return u, fmt.Errorf("proc: %w", err)
	}
	// Fields after the command name, which may hold spaces: state is
	// field 3, utime and stime fields 14 and 15.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return u, errors.New("proc: malformed stat")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return u, errors.New("proc: short stat")
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return u, errors.New("proc: bad utime/stime")
	}
	u.CPU = time.Duration(ut+st) * time.Second / clockTicks
	b, err = os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return u, fmt.Errorf("proc: %w", err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			return u, fmt.Errorf("proc: %s: %w", k, err)
		}
		if k == "VmRSS" {
			u.RSS = kb << 10
		} else {
			u.HWM = kb << 10
		}
	}
	return u, nil
}
