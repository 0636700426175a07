package vm

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// EnableEnv must be set (to anything but "") for tests to boot VMs: a boot
// costs seconds to minutes under TCG, so `go test ./...` does not, and
// `make vmtest` sets it.
const EnableEnv = "XDPSEC_VMTEST"

// CacheEnv overrides where kernels and initramfs images are cached
// (default: .cache/vm under the module root).
const CacheEnv = "XDPSEC_VM_CACHE"

// PackageEnv overrides the Debian kernel package (default KernelPackage).
const PackageEnv = "XDPSEC_VM_KERNEL_PACKAGE"

// ModuleRoot is the directory holding go.mod, found upwards from the
// working directory.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// RequireImage skips the test unless VM tests are enabled and QEMU and a
// guest image can be had; it returns the image of $XDPSEC_VM_KERNEL_PACKAGE
// (KernelPackage if unset), fetched and built as needed.
func RequireImage(t testing.TB) *Image {
	t.Helper()
	return RequireImageOf(t, os.Getenv(PackageEnv))
}

// RequireImageOf is RequireImage for the kernel of a given Debian package
// (KernelPackage if ""). Images of several packages share the cache.
func RequireImageOf(t testing.TB, pkg string) *Image {
	t.Helper()
	if os.Getenv(EnableEnv) == "" {
		t.Skipf("skipped: VM tests boot QEMU; run `make vmtest` (or set %s=1)", EnableEnv)
	}
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		t.Skipf("skipped: needs qemu-system-x86_64 (apt-get install qemu-system-x86): %v", errors.Unwrap(err))
	}
	cache := os.Getenv(CacheEnv)
	if cache == "" {
		root, err := ModuleRoot()
		if err != nil {
			t.Fatal(err)
		}
		cache = filepath.Join(root, ".cache", "vm")
	}
	img, err := Prepare(context.Background(), PrepareOptions{
		CacheDir: cache,
		Package:  pkg,
		Log:      tlogWriter{t},
	})
	if errors.Is(err, ErrUnavailable) {
		t.Skipf("skipped: %v", err)
	}
	if err != nil {
		t.Fatalf("prepare VM image: %v", err)
	}
	t.Logf("guest kernel %s (%s %s)", img.Release, img.Package, img.Version)
	return img
}

// tlogWriter sends lines to t.Log.
type tlogWriter struct{ t testing.TB }

func (w tlogWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(p[:len(p)-trailingNewline(p)]))
	return len(p), nil
}

func trailingNewline(p []byte) int {
	if len(p) > 0 && p[len(p)-1] == '\n' {
		return 1
	}
	return 0
}
