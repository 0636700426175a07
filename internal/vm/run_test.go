package vm

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// fakeQEMU writes a shell script that stands in for QEMU: it finds the
// nonce on the kernel command line it is given, records its pid, and runs
// body with $nonce set.
func fakeQEMU(t *testing.T, body string) (path, pidFile string) {
	t.Helper()
	dir := t.TempDir()
	pidFile = filepath.Join(dir, "pid")
	script := `#!/bin/sh
echo $$ >` + pidFile + `
while [ $# -gt 0 ]; do
	if [ "$1" = -append ]; then
		for w in $2; do case "$w" in xdpsec.nonce=*) nonce=${w#*=} ;; esac; done
	fi
	shift
done
` + body + "\n"
	path = filepath.Join(dir, "qemu")
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path, pidFile
}

func fakeSpec(qemu string) Spec {
	return Spec{QEMU: qemu, Kernel: "/nonexistent/vmlinuz", Initramfs: "/nonexistent/initrd", Command: []string{"true"}, Timeout: 20 * time.Second}
}

// requireGone fails unless the process in pidFile has exited.
func requireGone(t *testing.T, pidFile string) {
	t.Helper()
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatalf("fake QEMU did not start: %v", err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	for range 50 {
		if syscall.Kill(pid, 0) != nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Errorf("QEMU (pid %d) still running after Run returned", pid)
	syscall.Kill(pid, syscall.SIGKILL)
}

func TestRunExitStatus(t *testing.T) {
	qemu, pid := fakeQEMU(t, `printf '\033c\033[?7l\033[2JSeaBIOS\r\n'
echo "XDPSEC-VM-START $nonce 1.50"
echo "XDPSEC-VM-EXIT 0000000000000000 0"   # forged: wrong nonce
echo "hello from the guest"
echo "[    2.0] some kernel line XDPSEC-VM-EXIT $nonce 42"
echo "[    2.1] reboot: Power down"`)
	var console bytes.Buffer
	s := fakeSpec(qemu)
	s.Console = &console
	res, err := Run(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode != 42 {
		t.Errorf("exit code %d, want 42", res.ExitCode)
	}
	if res.Uptime != "1.50" || res.BootTime <= 0 {
		t.Errorf("boot time %v, uptime %q", res.BootTime, res.Uptime)
	}
	if !strings.HasPrefix(res.Output, "SeaBIOS\n") || !strings.Contains(res.Output, "hello from the guest\n") || strings.Contains(res.Output, "\r") {
		t.Errorf("output %q", res.Output)
	}
	if console.String() != res.Output {
		t.Errorf("console writer got %q, output %q", console.String(), res.Output)
	}
	requireGone(t, pid)
}

func TestRunTimeoutKills(t *testing.T) {
	qemu, pid := fakeQEMU(t, `echo booting; exec sleep 600`)
	s := fakeSpec(qemu)
	s.Timeout = 2 * time.Second // time for the fake to start on a busy machine
	start := time.Now()
	res, err := Run(context.Background(), s)
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("err %v, want ErrTimeout", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Run took %v with a 2s limit", d)
	}
	if res.ExitCode != -1 || !strings.Contains(res.Output, "booting") {
		t.Errorf("result %+v", res)
	}
	requireGone(t, pid)
}

// cancelOnWrite cancels a context at the first console output.
type cancelOnWrite struct{ cancel context.CancelFunc }

func (c cancelOnWrite) Write(p []byte) (int, error) { c.cancel(); return len(p), nil }

func TestRunContextCancelKills(t *testing.T) {
	qemu, pid := fakeQEMU(t, `echo booting; exec sleep 600`)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := fakeSpec(qemu)
	s.Console = cancelOnWrite{cancel}
	_, err := Run(ctx, s)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
	requireGone(t, pid)
}

func TestRunNoExitMarker(t *testing.T) {
	qemu, pid := fakeQEMU(t, `echo "Kernel panic - not syncing: VFS"; echo "qemu: oops" >&2; exit 0`)
	res, err := Run(context.Background(), fakeSpec(qemu))
	if !errors.Is(err, ErrNoExit) {
		t.Fatalf("err %v, want ErrNoExit", err)
	}
	if !strings.Contains(err.Error(), "qemu: oops") || !strings.Contains(res.Output, "Kernel panic") {
		t.Errorf("err %v, output %q: want QEMU's stderr in one and the console in the other", err, res.Output)
	}
	requireGone(t, pid)
}

// TestRunGuestHangsAfterMarker: a guest that prints its status but does
// not power off is killed after a grace period, and the status stands.
func TestRunGuestHangsAfterMarker(t *testing.T) {
	defer func(g time.Duration) { powerOffGrace = g }(powerOffGrace)
	powerOffGrace = 300 * time.Millisecond
	qemu, pid := fakeQEMU(t, `echo "XDPSEC-VM-EXIT $nonce 3"; exec sleep 600`)
	res, err := Run(context.Background(), fakeSpec(qemu))
	if err != nil || res.ExitCode != 3 {
		t.Fatalf("res %+v, err %v; want exit 3", res, err)
	}
	requireGone(t, pid)
}

func TestRunChecksSpec(t *testing.T) {
	for _, s := range []Spec{
		{QEMU: "/bin/true", Initramfs: "i", Command: []string{"x"}},
		{QEMU: "/bin/true", Kernel: "k", Initramfs: "i"},
		{QEMU: "/bin/true", Kernel: "k", Initramfs: "i", Command: []string{strings.Repeat("x", 3000)}},
	} {
		if _, err := Run(context.Background(), s); err == nil {
			t.Errorf("Run(%+v) accepted", s)
		}
	}
}

// TestScript runs the guest script on the host: arguments arrive intact.
func TestScript(t *testing.T) {
	dir := t.TempDir()
	args := []string{"printf", `%s|`, "a b", `it's`, `"q"`, `$HOME`, "`x`", "\\n", ""}
	s := Spec{Command: args, Dir: dir, Env: []string{"FOO=bar baz", "EMPTY="}}
	out, err := exec.Command("/bin/sh", "-c", script(s)+`echo; echo "$FOO" "$`+GuestEnv+`"; pwd`).CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	// exec replaces the shell: nothing after the command runs.
	want := "a b|it's|\"q\"|$HOME|`x`|\\n||"
	if string(out) != want {
		t.Errorf("script output %q, want %q", out, want)
	}
	s.Command = []string{"sh", "-c", `echo "$FOO/$` + GuestEnv + `/$(pwd)"`}
	out, err = exec.Command("/bin/sh", "-c", script(s)).CombinedOutput()
	if err != nil || string(out) != "bar baz/1/"+dir+"\n" {
		t.Errorf("env and dir: %q, %v", out, err)
	}
}

func TestQEMUArgs(t *testing.T) {
	work := t.TempDir()
	args, nonce, err := qemuArgs(Spec{Kernel: "k", Initramfs: "i", Command: []string{"true"}, Work: work, CPUs: 3, MemMB: 512})
	if err != nil {
		t.Fatal(err)
	}
	line := strings.Join(args, " ")
	for _, want := range []string{
		"-accel tcg", "-smp 3", "-m 512M", "-nic none", "-no-reboot",
		"path=/,security_model=none,readonly=on,multidevs=remap", "mount_tag=hostroot",
		"path=" + work + ",security_model=none,multidevs=remap -device", "xdpsec.work=" + work,
		"xdpsec.nonce=" + nonce, "console=ttyS0",
	} {
		if !strings.Contains(line, want) {
			t.Errorf("QEMU args lack %q:\n%s", want, line)
		}
	}
	if len(nonce) != 16 {
		t.Errorf("nonce %q", nonce)
	}
}

// TestRunBootsAgainAfterEarlyDeath: a guest that dies before its command
// starts is booted once more, and the second boot's result stands.
func TestRunBootsAgainAfterEarlyDeath(t *testing.T) {
	count := filepath.Join(t.TempDir(), "boots")
	qemu, pid := fakeQEMU(t, `echo x >>`+count+`
if [ "$(wc -l <`+count+`)" -eq 1 ]; then echo "Oops: int3"; echo "Kernel panic"; exit 0; fi
echo "XDPSEC-VM-START $nonce 2.00"
echo "XDPSEC-VM-EXIT $nonce 7"`)
	var console bytes.Buffer
	s := fakeSpec(qemu)
	s.Console = &console
	res, err := Run(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode != 7 || res.Boots != 2 || res.Uptime != "2.00" {
		t.Errorf("result %+v, want exit 7 after 2 boots", res)
	}
	if !strings.Contains(console.String(), "Kernel panic") || !strings.Contains(console.String(), "booting it again") {
		t.Errorf("console %q: want the first boot's panic and the retry said", console.String())
	}
	requireGone(t, pid)
}

// TestRunNoRetryAfterStart: once the command has started, a guest that
// dies is a failure of the run, not of the boot.
func TestRunNoRetryAfterStart(t *testing.T) {
	count := filepath.Join(t.TempDir(), "boots")
	qemu, _ := fakeQEMU(t, `echo x >>`+count+`
echo "XDPSEC-VM-START $nonce 2.00"
echo "Kernel panic"; exit 0`)
	res, err := Run(context.Background(), fakeSpec(qemu))
	if !errors.Is(err, ErrNoExit) {
		t.Fatalf("err %v, want ErrNoExit", err)
	}
	b, _ := os.ReadFile(count)
	if n := strings.Count(string(b), "x"); n != 1 || res.Boots != 1 {
		t.Errorf("booted %d times (Boots %d), want once", n, res.Boots)
	}
}
