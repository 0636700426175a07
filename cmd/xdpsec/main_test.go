package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xdpsec/xdpsec/internal/testenv"
	"github.com/xdpsec/xdpsec/loader"
)

// cli runs the app in-process inside ns and returns what it printed.
type cliRunner struct {
	t      *testing.T
	ns     *testenv.Netns
	pinDir string
}

func (c *cliRunner) run(args ...string) (string, error) {
	var out, errOut bytes.Buffer
	err := c.ns.Do(func() error {
		app := newApp()
		app.Writer, app.ErrWriter = &out, &errOut
		return app.Run(append([]string{"xdpsec", "--pin-dir", c.pinDir}, args...))
	})
	return out.String() + errOut.String(), err
}

func (c *cliRunner) ok(args ...string) string {
	c.t.Helper()
	out, err := c.run(args...)
	if err != nil {
		c.t.Fatalf("xdpsec %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func (c *cliRunner) json(v any, args ...string) {
	c.t.Helper()
	out := c.ok(append([]string{"-o", "json"}, args...)...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		c.t.Fatalf("xdpsec -o json %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func newCLI(t *testing.T) *cliRunner {
	testenv.RequireBPF(t)
	ns := testenv.NewNetns(t, "xdpsec-cli")
	peer := testenv.NewNetns(t, "xdpsec-clip")
	testenv.Veth(t, ns, "wan0", "10.97.0.1/24", peer, "wan1", "10.97.0.2/24")
	testenv.Veth(t, ns, "lan0", "", peer, "lan1", "")
	c := &cliRunner{t: t, ns: ns, pinDir: fmt.Sprintf("/sys/fs/bpf/xdpsec-clitest-%06x", rand.Uint32()&0xffffff)}
	t.Cleanup(func() {
		ns.Do(func() error { return loader.Unload(c.pinDir) })
		os.RemoveAll(c.pinDir)
	})
	return c
}

func TestCLIEndToEnd(t *testing.T) {
	c := newCLI(t)
	out := c.ok("load", "--wan", "wan0", "--lan", "lan0", "--max-sas", "1024", "--max-policies", "128")
	if !strings.Contains(out, "attached xdp_wan") || !strings.Contains(out, "attached tc_lan") {
		t.Errorf("load said:\n%s", out)
	}

	var atts []loader.Attachment
	c.json(&atts, "status")
	if len(atts) != 2 {
		t.Errorf("status: %+v", atts)
	}

	c.ok("sa", "add", "--spi", "0xc0000007", "--dst", "10.97.0.1", "--cpu", "0")
	c.ok("sa", "add", "--spi", "4660", "--dst", "2001:db8::1")
	var sas []saJSON
	c.json(&sas, "sa", "list")
	if len(sas) != 2 || sas[0].SPI != "0xc0000007" || sas[0].CPU == nil || *sas[0].CPU != 0 || sas[1].SPI != "0x00001234" {
		t.Errorf("sa list: %+v", sas)
	}
	// -o after the command, as the README shows it (issue 18).
	var after []saJSON
	if out := c.ok("sa", "list", "-o", "json"); json.Unmarshal([]byte(out), &after) != nil || len(after) != 2 {
		t.Errorf("sa list -o json:\n%s", out)
	}
	var statsAfter []counterJSON
	if out := c.ok("stats", "-o", "json"); json.Unmarshal([]byte(out), &statsAfter) != nil || len(statsAfter) == 0 {
		t.Errorf("stats -o json:\n%s", out)
	}
	if out := c.ok("sa", "list"); !strings.Contains(out, "RX_SEEN_PKTS") || !strings.Contains(out, "0xc0000007") {
		t.Errorf("sa list table:\n%s", out)
	}
	c.ok("sa", "del", "--spi", "4660", "--dst", "2001:db8::1")
	c.json(&sas, "sa", "list")
	if len(sas) != 1 {
		t.Errorf("after del: %+v", sas)
	}
	// An AH SA beside the ESP one with the same SPI (by hash: outside the range).
	c.ok("sa", "add", "--spi", "4660", "--dst", "10.97.0.1")
	c.ok("sa", "add", "--spi", "4660", "--dst", "10.97.0.1", "--proto", "ah")
	if _, err := c.run("sa", "add", "--spi", "4661", "--dst", "10.97.0.1", "--proto", "gre"); err == nil || !strings.Contains(err.Error(), "not esp or ah") {
		t.Errorf("sa add --proto gre: %v", err)
	}
	c.json(&sas, "sa", "list")
	protos := map[string]int{}
	for _, sa := range sas {
		if sa.SPI == "0x00001234" {
			protos[sa.Proto]++
		}
	}
	if len(sas) != 3 || protos["AH"] != 1 || protos["ESP"] != 1 {
		t.Errorf("sa list with an AH SA: %+v", sas)
	}
	c.ok("sa", "del", "--spi", "4660", "--dst", "10.97.0.1", "--proto", "ah")
	c.ok("sa", "del", "--spi", "4660", "--dst", "10.97.0.1")
	c.json(&sas, "sa", "list")
	if len(sas) != 1 || sas[0].Proto != "ESP" {
		t.Errorf("after deleting the AH SA: %+v", sas)
	}

	c.ok("policy", "add", "--src", "10.1.0.0/16", "--dst", "10.2.0.0/16", "--action", "protect", "--if-id", "7", "--mss", "1360")
	c.ok("policy", "add", "--dst", "10.2.9.0/24", "--proto", "tcp", "--dport", "22", "--action", "discard")
	c.ok("policy", "add", "--dst", "fd00::/8", "--action", "protect", "--if-id", "9", "--redirect", "lan0")
	var ps []policyJSON
	c.json(&ps, "policy", "list")
	if len(ps) != 3 || ps[0].IfID != 7 || ps[1].Dport != "22" || ps[2].Src != "::/0" || ps[2].Redirect != "lan0" {
		t.Errorf("policy list: %+v", ps)
	}

	for _, tc := range []struct {
		args    []string
		verdict string
		id      uint32
	}{
		{[]string{"--src", "10.1.2.3", "--dst", "10.2.9.9", "--proto", "tcp", "--dport", "22"}, "discard", 2},
		{[]string{"--src", "10.1.2.3", "--dst", "10.2.9.9", "--proto", "tcp", "--dport", "80"}, "protect", 1},
		{[]string{"--src", "10.7.2.3", "--dst", "10.2.9.9", "--proto", "udp", "--dport", "80"}, "no policy: passed in clear", 0},
	} {
		var res lookupJSON
		c.json(&res, append([]string{"policy", "lookup"}, tc.args...)...)
		if res.Verdict != tc.verdict || (tc.id == 0) != (res.Policy == nil) || (res.Policy != nil && res.Policy.ID != tc.id) {
			t.Errorf("lookup %v: %+v, want %s by %d", tc.args, res, tc.verdict, tc.id)
		}
	}
	// Lookups are probes: no policy counted them.
	c.json(&ps, "policy", "list")
	for _, p := range ps {
		if p.Packets != 0 {
			t.Errorf("policy %d counted %d packets from lookups", p.ID, p.Packets)
		}
	}

	var counters []counterJSON
	c.json(&counters, "stats")
	names := map[string]bool{}
	for _, ctr := range counters {
		names[ctr.Name] = true
	}
	for _, want := range []string{"rx_seen", "no_sa", "malformed", "ike_ratelimit", "protect", "discard"} {
		if !names[want] {
			t.Errorf("stats has no %s", want)
		}
	}

	if out := c.ok("ratelimit", "--rate", "5", "--burst", "9"); !strings.Contains(out, "5/s per source") {
		t.Errorf("ratelimit:\n%s", out)
	}

	c.ok("policy", "del", "2")
	if _, err := c.run("policy", "del", "2"); err == nil || !strings.Contains(err.Error(), "no such policy") {
		t.Errorf("second delete: %v", err)
	}

	c.ok("unload")
	if _, err := os.Stat(c.pinDir); !os.IsNotExist(err) {
		t.Errorf("pin dir left after unload")
	}
	if _, err := c.run("sa", "list"); err == nil || !strings.Contains(err.Error(), "not loaded") {
		t.Errorf("sa list after unload: %v", err)
	}
}

func TestCLIBadInput(t *testing.T) {
	c := newCLI(t)
	c.ok("load", "--wan", "wan0", "--max-sas", "64", "--max-policies", "16")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"load", "--wan", "nosuch9"}, "no such interface"},
		{[]string{"load", "--wan", "wan0", "--xdp-mode", "fast"}, "--xdp-mode"},
		{[]string{"sa", "add", "--spi", "zz", "--dst", "10.0.0.1"}, "bad SPI"},
		{[]string{"sa", "add", "--spi", "0", "--dst", "10.0.0.1"}, "reserved"},
		{[]string{"sa", "add", "--spi", "1", "--dst", "10.0.0.300"}, "not an IP address"},
		{[]string{"sa", "add", "--spi", "1", "--dst", "10.0.0.1", "--cpu", "4096"}, "out of range"},
		{[]string{"sa", "del", "--spi", "77", "--dst", "10.0.0.1"}, "no such SA"},
		{[]string{"policy", "add", "--dst", "10.2.0.0/33", "--action", "bypass"}, "not a prefix"},
		{[]string{"policy", "add", "--dst", "10.2.0.0/16", "--action", "encrypt"}, "unknown action"},
		{[]string{"policy", "add", "--dst", "10.2.0.0/16", "--action", "bypass", "--dport", "80"}, "needs protocol"},
		{[]string{"policy", "add", "--dst", "10.2.0.0/16", "--src", "fd00::/8", "--action", "bypass"}, "different families"},
		{[]string{"policy", "add", "--dst", "10.2.0.0/16", "--action", "protect", "--redirect", "nosuch9"}, "not found"},
		{[]string{"policy", "lookup", "--src", "10.0.0.1", "--dst", "fd00::1"}, "different families"},
		{[]string{"-o", "yaml", "stats"}, "unknown output format"},
		{[]string{"ratelimit", "--rate", "5", "--burst", "0"}, "burst must be at least 1"},
	} {
		out, err := c.run(tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("xdpsec %s: err %v (output %q), want one mentioning %q", strings.Join(tc.args, " "), err, out, tc.want)
		}
	}
}

// TestCLINotRoot runs the built binary as an unprivileged user.
func TestCLINotRoot(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireCommand(t, "setpriv")
	bin := filepath.Join(t.TempDir(), "xdpsec")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	os.Chmod(filepath.Dir(bin), 0o755)
	for _, args := range [][]string{{"load", "--wan", "lo"}, {"sa", "list"}, {"unload"}} {
		cmd := exec.Command("setpriv", append([]string{"--reuid=65534", "--regid=65534", "--clear-groups", bin}, args...)...)
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), "must run as root") {
			t.Errorf("xdpsec %s as nobody: %v\n%s", strings.Join(args, " "), err, out)
		}
		if n := strings.Count(strings.TrimSpace(string(out)), "\n"); n != 0 {
			t.Errorf("xdpsec %s as nobody: want one line, got:\n%s", strings.Join(args, " "), out)
		}
	}
}
