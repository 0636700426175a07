package vmtest

import (
	"bufio"
	"context"
	"debug/elf"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/xdpsec/xdpsec/internal/vm"
)

// RunEnv, if set, is passed to the guest test binary as -test.run.
const RunEnv = "XDPSEC_E2E_RUN"

// TestGuest builds package e2e, runs it in the guest and fails with it.
func TestGuest(t *testing.T) {
	img := vm.RequireImage(t)
	root, err := vm.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	bin := filepath.Join(work, "e2e.test")
	build := time.Now()
	cmd := exec.Command(goTool(), "test", "-c", "-o", bin, "./e2e/")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build the guest tests: %v\n%s", err, out)
	}
	requireStatic(t, bin)
	t.Logf("built %s in %v", bin, time.Since(build).Round(time.Millisecond))

	args := []string{bin, "-test.v", "-test.timeout=25m"}
	if r := os.Getenv(RunEnv); r != "" {
		args = append(args, "-test.run="+r)
	}
	console := newLineLogger(t)
	res, err := vm.Run(context.Background(), vm.Spec{
		Kernel:    img.Kernel,
		Initramfs: img.Initramfs,
		Work:      work,
		Dir:       filepath.Join(root, "e2e"),
		Command:   args,
		Timeout:   30 * time.Minute,
		Console:   console,
	})
	console.Close()
	if res != nil {
		t.Logf("guest %s: boot %v (guest uptime %ss at the command's start), whole run %v",
			img.Release, res.BootTime.Round(time.Millisecond), res.Uptime, res.Duration.Round(time.Millisecond))
	}
	if err != nil {
		t.Fatalf("VM run: %v", err)
	}
	var failed []string
	for _, l := range strings.Split(res.Output, "\n") {
		if strings.Contains(l, "--- FAIL:") {
			failed = append(failed, strings.TrimSpace(l))
		}
	}
	if res.ExitCode != 0 {
		t.Errorf("guest tests exited with %d; failed:\n%s", res.ExitCode, strings.Join(failed, "\n"))
	}
}

// goTool is the go command that runs this test.
func goTool() string {
	if p := filepath.Join(runtime.GOROOT(), "bin", "go"); fileExists(p) {
		return p
	}
	return "go"
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// requireStatic fails unless bin runs without a dynamic loader: the guest's
// root is the host's, but a static binary does not depend on that.
func requireStatic(t *testing.T, bin string) {
	t.Helper()
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Fatalf("%s is dynamically linked", bin)
		}
	}
}

// lineLogger passes the guest console to the test log line by line, as it
// arrives (go test -v shows it live).
type lineLogger struct {
	pw   *io.PipeWriter
	done chan struct{}
}

func newLineLogger(t *testing.T) *lineLogger {
	pr, pw := io.Pipe()
	l := &lineLogger{pw: pw, done: make(chan struct{})}
	go func() {
		defer close(l.done)
		sc := bufio.NewScanner(pr)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			t.Log("guest| " + sc.Text())
		}
		io.Copy(io.Discard, pr)
	}()
	return l
}

func (l *lineLogger) Write(p []byte) (int, error) { return l.pw.Write(p) }

func (l *lineLogger) Close() {
	l.pw.Close()
	<-l.done
}
