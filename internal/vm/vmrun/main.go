// Command vmrun boots the VM test guest and runs one command in it, for
// looking around by hand:
//
//	go run ./internal/vm/vmrun [-timeout 5m] [-work DIR] [-append ARGS] -- CMD [ARG...]
//
// The guest sees the host's root read-only (see package vm). Its console
// goes to stdout; vmrun exits with the guest command's status.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/xdpsec/xdpsec/internal/vm"
)

func main() {
	timeout := flag.Duration("timeout", 5*time.Minute, "kill the guest after this long")
	work := flag.String("work", "", "host directory to share read-write at the same path")
	dir := flag.String("dir", "", "working directory in the guest (default: the current one)")
	appendArgs := flag.String("append", "", "extra kernel command line, e.g. xdpsec.verbose=1")
	cpus := flag.Int("smp", 2, "guest CPUs")
	cache := flag.String("cache", "", "image cache (default .cache/vm under the module root)")
	flag.Parse()
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: vmrun [flags] -- CMD [ARG...]")
		os.Exit(2)
	}
	if *cache == "" {
		root, err := vm.ModuleRoot()
		if err != nil {
			fatal(err)
		}
		*cache = filepath.Join(root, ".cache", "vm")
	}
	if *dir == "" {
		*dir, _ = os.Getwd()
	}
	ctx := context.Background()
	img, err := vm.Prepare(ctx, vm.PrepareOptions{CacheDir: *cache, Package: os.Getenv(vm.PackageEnv), Log: os.Stderr})
	if err != nil {
		fatal(err)
	}
	res, err := vm.Run(ctx, vm.Spec{
		Kernel: img.Kernel, Initramfs: img.Initramfs,
		Work: *work, Dir: *dir, Command: flag.Args(),
		Timeout: *timeout, CPUs: *cpus, Console: os.Stdout,
		KernelArgs: strings.Fields(*appendArgs),
	})
	if res != nil {
		fmt.Fprintf(os.Stderr, "vmrun: %s %s: boot %v (guest uptime %ss), total %v, exit %d\n",
			img.Package, img.Version, res.BootTime.Round(time.Millisecond), res.Uptime, res.Duration.Round(time.Millisecond), res.ExitCode)
	}
	if err != nil {
		fatal(err)
	}
	os.Exit(res.ExitCode)
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "vmrun:", err)
	os.Exit(1)
}
