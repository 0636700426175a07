package e2e

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xdpsec/xdpsec/internal/daemon"
	"github.com/xdpsec/xdpsec/maps"
)

// binEnv names the static xdpsec binary vmtest builds for the guest.
const binEnv = "XDPSEC_BIN"

func xdpsecBin(t *testing.T) string {
	t.Helper()
	bin := os.Getenv(binEnv)
	if bin == "" {
		t.Fatalf("%s is not set: vmtest builds xdpsec for the guest and names it there", binEnv)
	}
	return bin
}

// gateway is a site running xdpsec as an operator would: `xdpsec load` on
// its WAN and LAN, then `xdpsec daemon --dataplane=kernel`, each with its
// own pin directory, control socket and state file.
type gateway struct {
	*site
	t       *testing.T
	bin     string
	dir     string
	pinDir  string
	conf    string
	sock    string
	state   string
	logPath string
	cmd     *exec.Cmd
	exited  chan error
	cleanup bool     // the daemon's stop is registered with the test
	saCPU   string   // --sa-cpu, if set
	args    []string // more arguments of the daemon
	maps    *maps.Set
	// startTimeout bounds start's wait for the control socket; 60 s if 0.
	startTimeout time.Duration
}

// newGateway loads xdpsec in s (unloaded when the test ends) and writes
// its swanctl.conf; the daemon is not started yet.
func newGateway(t *testing.T, s *site, conf string) *gateway {
	t.Helper()
	dir := t.TempDir()
	g := &gateway{site: s, t: t, bin: xdpsecBin(t), dir: dir,
		pinDir:  fmt.Sprintf("/sys/fs/bpf/xdpsec-gw-%06x", rand.Uint32()&0xffffff),
		conf:    filepath.Join(dir, "swanctl.conf"),
		sock:    filepath.Join(dir, "xdpsec.sock"),
		state:   filepath.Join(dir, "ike-state.json"),
		logPath: filepath.Join(dir, "daemon.log")}
	g.writeConf(conf)
	args := []string{"load", "--wan", s.wan}
	if s.lan != "" {
		args = append(args, "--lan", s.lan)
	}
	out, err := g.xdpsec(args...)
	t.Cleanup(func() {
		if out, err := g.xdpsec("unload"); err != nil {
			t.Errorf("site %s: xdpsec unload: %v\n%s", s.name, err, out)
		}
		os.RemoveAll(g.pinDir)
	})
	if err != nil {
		t.Fatalf("site %s: xdpsec load: %v\n%s", s.name, err, out)
	}
	if g.maps, err = maps.OpenPinned(g.pinDir); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.maps.Close() })
	return g
}

func (g *gateway) writeConf(conf string) {
	if err := os.WriteFile(g.conf, []byte(conf), 0o600); err != nil {
		g.t.Fatal(err)
	}
}

// env points the CLI at this gateway's pins and socket.
func (g *gateway) env() []string {
	return append(os.Environ(), "XDPSEC_PIN_DIR="+g.pinDir, "XDPSEC_SOCKET="+g.sock)
}

// xdpsec runs the CLI in the gateway's namespace.
func (g *gateway) xdpsec(args ...string) (string, error) {
	var out []byte
	err := g.Do(func() error {
		cmd := exec.Command(g.bin, args...)
		cmd.Env = g.env()
		var err error
		out, err = cmd.CombinedOutput()
		return err
	})
	return string(out), err
}

func (g *gateway) ok(args ...string) string {
	g.t.Helper()
	out, err := g.xdpsec(args...)
	if err != nil {
		g.t.Fatalf("site %s: xdpsec %s: %v\n%s", g.name, strings.Join(args, " "), err, out)
	}
	return out
}

// start runs the daemon in the gateway's namespace and waits for its
// control socket. The daemon stops (SIGTERM) when the test ends; its log
// is shown if the test failed.
func (g *gateway) start() {
	g.t.Helper()
	logf, err := os.OpenFile(g.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		g.t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(g.bin, "daemon", "--dataplane=kernel", "--config", g.conf,
		"--socket", g.sock, "--state", g.state, "--log", "ike=1,knl=1,cfg=1")
	if g.saCPU != "" {
		cmd.Args = append(cmd.Args, "--sa-cpu", g.saCPU)
	}
	cmd.Args = append(cmd.Args, g.args...)
	cmd.Env = g.env()
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := g.Do(cmd.Start); err != nil {
		g.t.Fatalf("site %s: start the daemon: %v", g.name, err)
	}
	g.cmd, g.exited = cmd, make(chan error, 1)
	go func(c *exec.Cmd, ch chan error) { ch <- c.Wait() }(cmd, g.exited)
	if !g.cleanup {
		g.cleanup = true
		g.t.Cleanup(func() {
			g.stop()
			if g.t.Failed() {
				b, _ := os.ReadFile(g.logPath)
				g.t.Logf("site %s daemon log:\n%s", g.name, b)
			}
		})
	}
	// Generous: under TCG on a loaded machine a start takes tens of seconds.
	wait := g.startTimeout
	if wait == 0 {
		wait = 60 * time.Second
	}
	deadline := time.Now().Add(wait)
	for {
		if _, err := daemon.Call(g.sock, daemon.Request{Command: daemon.CmdListConns}); err == nil {
			return
		}
		select {
		case err := <-g.exited:
			g.cmd = nil
			b, _ := os.ReadFile(g.logPath)
			g.t.Fatalf("site %s: the daemon exited: %v\n%s", g.name, err, b)
		default:
		}
		if time.Now().After(deadline) {
			g.t.Fatalf("site %s: the daemon's control socket did not come up in %v", g.name, wait)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stop ends the daemon with SIGTERM (SIGKILL after 15 s).
func (g *gateway) stop() {
	if g.cmd == nil {
		return
	}
	g.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-g.exited:
		if err != nil {
			g.t.Errorf("site %s: the daemon exited with %v", g.name, err)
		}
	case <-time.After(15 * time.Second):
		g.cmd.Process.Kill()
		<-g.exited
		g.t.Errorf("site %s: the daemon did not stop on SIGTERM", g.name)
	}
	g.cmd = nil
}

// kill ends the daemon with SIGKILL: nothing of its own cleanup runs.
func (g *gateway) kill() {
	if g.cmd == nil {
		return
	}
	g.cmd.Process.Kill()
	<-g.exited
	g.cmd = nil
}

// sas is `xdpsec list-sas -o json`.
func (g *gateway) sas() []daemon.IKESA {
	g.t.Helper()
	out := g.ok("-o", "json", "list-sas")
	var sas []daemon.IKESA
	if err := json.Unmarshal([]byte(out), &sas); err != nil {
		g.t.Fatalf("site %s: list-sas -o json: %v\n%s", g.name, err, out)
	}
	return sas
}

// child returns the one INSTALLED CHILD_SA named name, failing unless
// there is exactly one.
func (g *gateway) child(name string) daemon.ChildSA {
	g.t.Helper()
	var found []daemon.ChildSA
	for _, sa := range g.sas() {
		for _, c := range sa.Children {
			if c.Name == name && c.State == "INSTALLED" {
				found = append(found, c)
			}
		}
	}
	if len(found) != 1 {
		g.t.Fatalf("site %s: %d installed CHILD_SAs named %s: %+v", g.name, len(found), name, found)
	}
	return found[0]
}

// waitChild polls until the CHILD_SA named name is INSTALLED.
func (g *gateway) waitChild(name string, timeout time.Duration) daemon.ChildSA {
	g.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		for _, sa := range g.sas() {
			for _, c := range sa.Children {
				if c.Name == name && c.State == "INSTALLED" {
					return c
				}
			}
		}
		if time.Now().After(deadline) {
			g.t.Fatalf("site %s: no CHILD_SA %s installed after %v: %+v", g.name, name, timeout, g.sas())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// counter is one of the gateway's BPF verdict or drop counters.
func (g *gateway) counter(name string) uint64 {
	g.t.Helper()
	return counter(g.t, g.maps, name)
}

func parseSPI(t *testing.T, s string) uint32 {
	t.Helper()
	v, err := strconv.ParseUint(s, 16, 32)
	if err != nil {
		t.Fatalf("SPI %q: %v", s, err)
	}
	return uint32(v)
}
