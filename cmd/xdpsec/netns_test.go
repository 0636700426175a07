package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xdpsec/xdpsec/internal/testenv"
)

// TestLoadRefusedUnderIPNetnsExec runs this test binary as xdpsec under a
// real `ip netns exec` in a throwaway namespace: load must refuse and leave
// no pins; the same load through nsenter --net (the host's /sys kept) must
// work and leave its pins behind on the host.
func TestLoadRefusedUnderIPNetnsExec(t *testing.T) {
	testenv.RequireBPF(t)
	testenv.RequireCommand(t, "nsenter")
	ns := testenv.NewNetns(t, "xdpsec-nsx")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	pinDir := fmt.Sprintf("/sys/fs/bpf/xdpsec-nstest-%06x", rand.Uint32()&0xffffff)
	t.Cleanup(func() { os.RemoveAll(pinDir) })
	run := func(wrapper ...string) (string, error) {
		cmd := exec.Command(wrapper[0], append(wrapper[1:], self, "--pin-dir", pinDir, "load", "--wan", "lo")...)
		cmd.Env = append(os.Environ(), "XDPSEC_TEST_RUN_MAIN=1")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}

	out, err := run("ip", "netns", "exec", ns.Name)
	if err == nil {
		t.Fatalf("load under ip netns exec succeeded:\n%s", out)
	}
	for _, want := range []string{"ip netns exec " + ns.Name, "nsenter --net=/run/netns/" + ns.Name} {
		if !strings.Contains(out, want) {
			t.Errorf("refusal lacks %q:\n%s", want, out)
		}
	}
	if _, err := os.Stat(pinDir); !os.IsNotExist(err) {
		t.Errorf("pin dir after the refused load: %v", err)
	}

	nsenter := []string{"nsenter", "--net=" + filepath.Join(netnsRunDir, ns.Name)}
	if out, err := run(nsenter...); err != nil {
		t.Fatalf("load through nsenter: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		cmd := exec.Command(nsenter[0], append(nsenter[1:], self, "--pin-dir", pinDir, "unload")...)
		cmd.Env = append(os.Environ(), "XDPSEC_TEST_RUN_MAIN=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("unload: %v\n%s", err, out)
		}
	})
	// The pins outlive the command: they are in the host's bpffs.
	if _, err := os.Stat(filepath.Join(pinDir, "maps")); err != nil {
		t.Errorf("pins after load through nsenter: %v", err)
	}
}

// TestSysMount reads /sys's entry of mountinfo files as ip netns exec and
// a host leave them.
func TestSysMount(t *testing.T) {
	for _, tc := range []struct{ mountinfo, source, fstype string }{
		{"23 27 0:22 / /sys rw,relatime - sysfs sysfs rw\n49 23 0:40 / /sys/fs/bpf rw,relatime - bpf bpf rw,mode=700\n", "sysfs", "sysfs"},
		{"23 27 0:22 / /sys rw,relatime - sysfs sysfs rw\n54 51 0:41 / /sys rw,relatime - sysfs blue rw\n", "blue", "sysfs"},
		{"23 27 0:22 / /sys rw,relatime shared:7 - sysfs sysfs rw\n", "sysfs", "sysfs"},
		{"1 0 0:1 / / rw - ext4 /dev/sda1 rw\n", "", ""},
	} {
		f := filepath.Join(t.TempDir(), "mountinfo")
		os.WriteFile(f, []byte(tc.mountinfo), 0o600)
		src, typ, err := sysMount(f)
		if err != nil || src != tc.source || typ != tc.fstype {
			t.Errorf("%q: %q %q %v, want %q %q", tc.mountinfo, src, typ, err, tc.source, tc.fstype)
		}
	}
	// This test process is not under ip netns exec.
	if name, under, err := ipNetnsExecName(); err != nil || under {
		t.Errorf("ipNetnsExecName here: %q %v %v", name, under, err)
	}
}
