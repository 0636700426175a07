// Command xdpsec-demo is `make demo`: the example configuration
// (dist/swanctl.conf) brought up between two sites in network namespaces,
// traffic sent through it, and each gateway's `xdpsec list-sas` and
// `xdpsec stats` printed (package internal/demo).
//
//	xdpsec-demo [-xdpsec PATH] [-local | -vm] [-bytes N]
//
// On a kernel with ESP and XFRM interfaces it runs right here (as root).
// Otherwise it boots the VM test guest (package internal/vm: Debian's
// kernel in QEMU, the host's userland read-only) and runs itself there with
// -local, streaming the guest's output. Both binaries must be static for
// that (CGO_ENABLED=0, as `make demo` builds them).
package main

import (
	"context"
	"debug/elf"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/xdpsec/xdpsec/internal/demo"
	"github.com/xdpsec/xdpsec/internal/vm"
	"github.com/xdpsec/xdpsec/maps/xfrm"
)

func main() {
	bin := flag.String("xdpsec", "", "the xdpsec binary (default: xdpsec beside this program, else on PATH)")
	local := flag.Bool("local", false, "run on this kernel, without checking it first")
	inVM := flag.Bool("vm", false, "run in the VM guest even if this kernel could")
	size := flag.Int64("bytes", 8<<20, "TCP bytes LAN A → LAN B")
	timeout := flag.Duration("timeout", 15*time.Minute, "give up after this long (the guest included)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()

	xdpsecBin, err := findXdpsec(*bin)
	if err != nil {
		fatal(err)
	}
	if !*local && !*inVM {
		why, ok := kernelCan()
		if ok {
			fmt.Printf("xdpsec-demo: this kernel has ESP and XFRM interfaces: running here\n")
			*local = true
		} else {
			fmt.Printf("xdpsec-demo: running in the VM guest: %s\n", why)
		}
	}
	if *local {
		start := time.Now()
		_, err := demo.Run(ctx, demo.Options{Xdpsec: xdpsecBin, Out: os.Stdout, TransferBytes: *size})
		if err != nil {
			fatal(err)
		}
		fmt.Printf("xdpsec-demo: done in %v\n", time.Since(start).Round(time.Millisecond))
		return
	}
	os.Exit(runInGuest(ctx, xdpsecBin, *size, *timeout))
}

// kernelCan says whether this kernel runs the demo: root, ESP, and XFRM
// interfaces (the example is route-based), tried in a throwaway namespace.
func kernelCan() (string, bool) {
	if os.Geteuid() != 0 {
		return "not root, so this kernel's ESP cannot be probed", false
	}
	caps, err := xfrm.Probe()
	if err != nil {
		return err.Error(), false
	}
	if !caps.ESP.Available {
		return "this kernel has no ESP: " + caps.ESP.Reason, false
	}
	if !caps.Interface.Available {
		return "this kernel has no XFRM interfaces: " + caps.Interface.Reason, false
	}
	return "", true
}

// findXdpsec is the xdpsec binary the demo runs, as an absolute path.
func findXdpsec(flagValue string) (string, error) {
	if flagValue != "" {
		return filepath.Abs(flagValue)
	}
	if self, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(self), "xdpsec")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	for _, dir := range filepath.SplitList(os.Getenv("PATH")) {
		p := filepath.Join(dir, "xdpsec")
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
	}
	return "", errors.New("no xdpsec binary: build it (make build) and pass -xdpsec")
}

// runInGuest boots the VM guest with this program and xdpsec in a shared
// directory, runs the demo there with -local and returns its exit status.
func runInGuest(ctx context.Context, xdpsecBin string, size int64, timeout time.Duration) int {
	self, err := os.Executable()
	if err != nil {
		fatal(err)
	}
	for _, b := range []string{self, xdpsecBin} {
		if err := requireStatic(b); err != nil {
			fatal(err)
		}
	}
	root, err := vm.ModuleRoot()
	if err != nil {
		fatal(fmt.Errorf("the VM image cache lives under the module root: %w", err))
	}
	cache := os.Getenv(vm.CacheEnv)
	if cache == "" {
		cache = filepath.Join(root, ".cache", "vm")
	}
	img, err := vm.Prepare(ctx, vm.PrepareOptions{CacheDir: cache, Package: os.Getenv(vm.PackageEnv), Log: os.Stderr})
	if err != nil {
		fatal(fmt.Errorf("prepare the VM guest: %w", err))
	}
	// The guest sees the host's / read-only but covers /tmp with a tmpfs:
	// the binaries go to a shared work directory mounted where it is.
	work, err := os.MkdirTemp("", "xdpsec-demo-vm-")
	if err != nil {
		fatal(err)
	}
	defer os.RemoveAll(work)
	for _, b := range []string{self, xdpsecBin} {
		if err := copyFile(b, filepath.Join(work, filepath.Base(b))); err != nil {
			fatal(err)
		}
	}
	fmt.Printf("xdpsec-demo: booting %s %s in QEMU (TCG, no KVM: 20 s to a minute and a half, by the machine's load)\n", img.Package, img.Version)
	res, err := vm.Run(ctx, vm.Spec{
		Kernel: img.Kernel, Initramfs: img.Initramfs,
		Work: work, Dir: work,
		Command: []string{filepath.Join(work, filepath.Base(self)), "-local",
			"-xdpsec", filepath.Join(work, filepath.Base(xdpsecBin)), "-bytes", fmt.Sprint(size)},
		Timeout: timeout,
		Console: &markerFilter{w: os.Stdout},
	})
	if res != nil {
		fmt.Printf("xdpsec-demo: guest %s: boot %v, whole run %v, exit %d\n", img.Release,
			res.BootTime.Round(time.Millisecond), res.Duration.Round(time.Millisecond), res.ExitCode)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "xdpsec-demo: VM: %v\n", err)
		return 1
	}
	return res.ExitCode
}

// requireStatic fails unless bin runs without a dynamic loader: the guest's
// root is the host's, but a static binary does not depend on that.
func requireStatic(bin string) error {
	f, err := elf.Open(bin)
	if err != nil {
		return err
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s is dynamically linked; build it with CGO_ENABLED=0 for the guest (make demo does)", bin)
		}
	}
	return nil
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// markerFilter passes the guest console on without the harness's marker
// lines.
type markerFilter struct{ w io.Writer }

func (m *markerFilter) Write(p []byte) (int, error) {
	if strings.Contains(string(p), "XDPSEC-VM-") {
		return len(p), nil
	}
	return m.w.Write(p)
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "xdpsec-demo:", err)
	os.Exit(1)
}
