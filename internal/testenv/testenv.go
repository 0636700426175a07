// Package testenv lets tests say what they need of the machine and skip,
// with the reason printed, where it is missing.
package testenv

import (
	"errors"
	"os"
	"os/exec"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/features"
	"github.com/cilium/ebpf/rlimit"
)

// RequireRoot skips the test unless it runs as root.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipped: needs root (run `make test` as root)")
	}
}

// RequireBPF skips the test unless this process can load XDP and tc programs.
func RequireBPF(t testing.TB) {
	t.Helper()
	RequireRoot(t)
	if err := rlimit.RemoveMemlock(); err != nil {
		t.Skipf("skipped: cannot lift the memlock limit for BPF: %v", err)
	}
	for _, pt := range []ebpf.ProgramType{ebpf.XDP, ebpf.SchedCLS} {
		if err := features.HaveProgramType(pt); err != nil {
			t.Skipf("skipped: kernel cannot load %s programs: %v", pt, err)
		}
	}
}

// RequireCommand skips the test unless the command is on PATH.
func RequireCommand(t testing.TB, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Skipf("skipped: needs %s on PATH: %v", name, errors.Unwrap(err))
	}
}
