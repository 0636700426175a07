package daemon

import (
	"os"
	"strings"
	"testing"
)

const trapConf = `connections {
  gw {
    local_addrs = 127.0.0.1
    remote_addrs = 192.0.2.9
    local { auth = psk }
    remote { auth = psk }
    children {
      net { local_ts = 10.1.0.0/16
            remote_ts = 10.9.0.0/16
            start_action = trap }
      other { remote_ts = 10.8.0.0/16 }
    }
  }
}
`

func trapNames(d *Daemon) []string {
	var out []string
	for _, p := range d.TrapPolicies() {
		out = append(out, p.IKE+"/"+p.Child+" "+p.Mode+" "+strings.Join(p.LocalTS, ",")+" === "+strings.Join(p.RemoteTS, ","))
	}
	return out
}

// start_action = trap installs the trap at start; install and uninstall
// add and remove others; a reload follows the file: a trap whose child
// lost start_action goes, one installed by command stays while its
// child exists, and one whose connection is gone goes.
func TestTrapReconcile(t *testing.T) {
	d, path := startDryRun(t, trapConf)
	if got := strings.Join(trapNames(d), "; "); got != "gw/net TUNNEL 10.1.0.0/16 === 10.9.0.0/16" {
		t.Fatalf("traps after start: %q", got)
	}
	if resp := d.Handle(Request{Command: CmdInstall, Child: "other"}); !resp.OK {
		t.Fatalf("install other: %s", resp.Error)
	}
	if got := len(d.TrapPolicies()); got != 2 {
		t.Fatalf("%d traps after install, want 2", got)
	}
	if resp := d.Handle(Request{Command: CmdInstall, Child: "nope"}); resp.OK || !strings.Contains(resp.Error, "'nope'") {
		t.Errorf("install of an unknown child: %+v", resp)
	}
	if resp := d.Handle(Request{Command: CmdUninstall, Child: "nope"}); resp.OK || resp.Error != "policy 'nope' not found" {
		t.Errorf("uninstall of no trap: %+v", resp)
	}
	// net's trap goes with its start_action, other's stays, and net's
	// selectors change for the next trap.
	conf := strings.Replace(trapConf, "start_action = trap", "", 1)
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(trapNames(d), "; "); got != "gw/other TUNNEL 127.0.0.1/32 === 10.8.0.0/16" {
		t.Errorf("traps after reload: %q", got)
	}
	conf = strings.Replace(trapConf, "remote_ts = 10.9.0.0/16", "remote_ts = 10.7.0.0/16", 1)
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(trapNames(d), "; "); got != "gw/net TUNNEL 10.1.0.0/16 === 10.7.0.0/16; gw/other TUNNEL 127.0.0.1/32 === 10.8.0.0/16" {
		t.Errorf("traps after the second reload: %q", got)
	}
	if resp := d.Handle(Request{Command: CmdUninstall, IKE: "gw", Child: "other"}); !resp.OK {
		t.Fatalf("uninstall: %s", resp.Error)
	}
	// The connection goes: its traps go.
	if err := os.WriteFile(path, []byte("connections {}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := trapNames(d); len(got) != 0 {
		t.Errorf("traps after the connection went: %q", got)
	}
}
