package vm

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"debug/elf"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

// KernelPackage is the Debian package Prepare boots by default: the
// metapackage that follows Debian 12's newest 6.12 kernel (bookworm-security
// and bookworm-backports carry it).
const KernelPackage = "linux-image-6.12-amd64"

//go:embed init.sh
var initScript []byte

// ErrUnavailable means a guest kernel or a tool to prepare it cannot be had
// on this machine; tests skip with it.
var ErrUnavailable = errors.New("VM guest unavailable")

// Image is a guest kernel and the initramfs that boots it.
type Image struct {
	Package   string // the Debian package the kernel came from
	Version   string // its version
	Release   string // the kernel's release (uname -r)
	Kernel    string // the bzImage
	Initramfs string
	Modules   []string // loaded at boot, in order (more are in the initramfs)
	root      string   // the unpacked package
}

// PrepareOptions says where to cache and what to fetch.
type PrepareOptions struct {
	CacheDir string    // kernels and initramfs images are kept here
	Package  string    // Debian kernel package or metapackage; KernelPackage if ""
	Log      io.Writer // progress lines; nil for none
}

// Prepare returns a bootable image, fetching the kernel package with
// apt-get download and dpkg-deb into the cache and building the initramfs
// when the cache does not have them. Without apt (or offline) it falls back
// to the newest kernel already in the cache.
func Prepare(ctx context.Context, o PrepareOptions) (*Image, error) {
	if o.Package == "" {
		o.Package = KernelPackage
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	// Absolute: the fetch runs apt-get and dpkg-deb in a directory of it.
	if abs, err := filepath.Abs(o.CacheDir); err == nil {
		o.CacheDir = abs
	}
	if err := os.MkdirAll(o.CacheDir, 0o755); err != nil {
		return nil, fmt.Errorf("%w: image cache: %v", ErrUnavailable, err)
	}
	busybox, err := findStaticBusybox()
	if err != nil {
		return nil, err
	}
	// One Prepare at a time per cache: parallel test binaries share it.
	unlock, err := lockFile(filepath.Join(o.CacheDir, ".lock"))
	if err != nil {
		return nil, fmt.Errorf("%w: image cache: %v", ErrUnavailable, err)
	}
	defer unlock()
	img, err := fetchKernel(ctx, o)
	if err != nil {
		return nil, err
	}
	if err := buildInitramfs(ctx, img, busybox, o.Log); err != nil {
		return nil, err
	}
	return img, nil
}

// findStaticBusybox finds a statically linked busybox (Debian's
// busybox-static) to be the initramfs's userland.
func findStaticBusybox() (string, error) {
	cands := []string{"/usr/bin/busybox", "/bin/busybox"}
	if p, err := exec.LookPath("busybox"); err == nil {
		cands = append([]string{p}, cands...)
	}
	for _, p := range cands {
		f, err := elf.Open(p)
		if err != nil {
			continue
		}
		static := true
		for _, prog := range f.Progs {
			if prog.Type == elf.PT_INTERP {
				static = false
			}
		}
		f.Close()
		if static {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w: no statically linked busybox (install busybox-static)", ErrUnavailable)
}

// complete marks a kernel directory whose extraction finished.
const completeStamp = ".complete"

// fetchKernel finds the kernel in the cache or fetches it.
func fetchKernel(ctx context.Context, o PrepareOptions) (*Image, error) {
	pkg, version, err := resolvePackage(ctx, o.Package)
	if err != nil {
		cached := cachedKernel(o.CacheDir, o.Package)
		if cached == nil {
			return nil, fmt.Errorf("%w: %v, and no kernel of %s in %s", ErrUnavailable, err, o.Package, o.CacheDir)
		}
		fmt.Fprintf(o.Log, "vm: %v; using the cached %s %s\n", err, cached.Package, cached.Version)
		return cached, nil
	}
	dir := filepath.Join(o.CacheDir, pkg+"_"+version)
	if _, err := os.Stat(filepath.Join(dir, completeStamp)); err == nil {
		noteResolved(o.CacheDir, o.Package, dir)
		return kernelIn(dir, pkg, version)
	}
	fmt.Fprintf(o.Log, "vm: fetching %s %s (for %s) into %s\n", pkg, version, o.Package, dir)
	tmp, err := os.MkdirTemp(o.CacheDir, "fetch-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	args := []string{"download"}
	if os.Geteuid() == 0 {
		// Root's download would otherwise warn that _apt cannot write here.
		args = append(args, "-o", "APT::Sandbox::User=root")
	}
	if err := run(ctx, tmp, "apt-get", append(args, pkg+"="+version)...); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	debs, _ := filepath.Glob(filepath.Join(tmp, "*.deb"))
	if len(debs) != 1 {
		return nil, fmt.Errorf("%w: apt-get download %s left %d .deb files", ErrUnavailable, pkg, len(debs))
	}
	root := filepath.Join(tmp, "root")
	if err := run(ctx, tmp, "dpkg-deb", "-x", debs[0], root); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	os.Remove(debs[0])
	rels, _ := os.ReadDir(filepath.Join(root, "lib/modules"))
	if len(rels) != 1 {
		return nil, fmt.Errorf("%s: want one lib/modules/<release>, found %d", pkg, len(rels))
	}
	// The package leaves modules.dep to its postinst; busybox's depmod
	// writes it (and modules.alias) without needing kmod on the host.
	busybox, err := findStaticBusybox()
	if err != nil {
		return nil, err
	}
	if err := run(ctx, tmp, busybox, "depmod", "-b", root, rels[0].Name()); err != nil {
		return nil, fmt.Errorf("depmod: %w", err)
	}
	if err := os.WriteFile(filepath.Join(root, completeStamp), nil, 0o644); err != nil {
		return nil, err
	}
	os.RemoveAll(dir)
	if err := os.Rename(root, dir); err != nil {
		return nil, err
	}
	noteResolved(o.CacheDir, o.Package, dir)
	return kernelIn(dir, pkg, version)
}

// resolvedDir holds, per package name asked for, the name of the cache
// directory it last resolved to: offline, a metapackage such as
// linux-image-amd64 (6.1 on Debian 12) must not fall back to another
// series' kernel in the same cache.
const resolvedDir = "resolved"

func noteResolved(cacheDir, name, dir string) {
	rd := filepath.Join(cacheDir, resolvedDir)
	if os.MkdirAll(rd, 0o755) == nil {
		os.WriteFile(filepath.Join(rd, name), []byte(filepath.Base(dir)+"\n"), 0o644)
	}
}

// resolvePackage turns a package or metapackage name into the package that
// holds the kernel and its candidate version, through apt-cache.
func resolvePackage(ctx context.Context, name string) (pkg, version string, err error) {
	fields, err := aptShow(ctx, name)
	if err != nil {
		return "", "", err
	}
	// A metapackage depends on the real image first thing.
	for _, dep := range strings.Split(fields["Depends"], ",") {
		d := strings.Fields(dep)
		if len(d) > 0 && strings.HasPrefix(d[0], "linux-image-") {
			sub, err := aptShow(ctx, d[0])
			if err != nil {
				return "", "", err
			}
			return d[0], sub["Version"], nil
		}
	}
	return name, fields["Version"], nil
}

func aptShow(ctx context.Context, name string) (map[string]string, error) {
	if _, err := exec.LookPath("apt-cache"); err != nil {
		return nil, fmt.Errorf("no apt-cache: %w", err)
	}
	out, err := exec.CommandContext(ctx, "apt-cache", "show", "--no-all-versions", name).Output()
	if err != nil || len(bytes.TrimSpace(out)) == 0 {
		return nil, fmt.Errorf("apt-cache show %s: package not found (apt-get update, or check sources.list): %v", name, err)
	}
	fields := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ": ")
		if ok && !strings.HasPrefix(k, " ") {
			if _, dup := fields[k]; !dup {
				fields[k] = v
			}
		}
	}
	if fields["Version"] == "" {
		return nil, fmt.Errorf("apt-cache show %s: no version", name)
	}
	return fields, nil
}

// cachedKernel is the complete kernel in the cache that the package name
// last resolved to, else the newest complete one of that package (or, for
// a versioned metapackage like linux-image-6.12-amd64, of its series), or
// nil: never a kernel of another series.
func cachedKernel(cacheDir, name string) *Image {
	if b, err := os.ReadFile(filepath.Join(cacheDir, resolvedDir, name)); err == nil {
		dir := filepath.Join(cacheDir, strings.TrimSpace(string(b)))
		pkg, version, _ := strings.Cut(filepath.Base(dir), "_")
		if _, err := os.Stat(filepath.Join(dir, completeStamp)); err == nil {
			if img, err := kernelIn(dir, pkg, version); err == nil {
				return img
			}
		}
	}
	dirs, _ := filepath.Glob(filepath.Join(cacheDir, "linux-image-*_*", completeStamp))
	sort.Slice(dirs, func(i, j int) bool {
		_, vi, _ := strings.Cut(filepath.Base(filepath.Dir(dirs[i])), "_")
		_, vj, _ := strings.Cut(filepath.Base(filepath.Dir(dirs[j])), "_")
		return versionLess(vi, vj)
	})
	for i := len(dirs) - 1; i >= 0; i-- {
		dir := filepath.Dir(dirs[i])
		pkg, version, _ := strings.Cut(filepath.Base(dir), "_")
		if !ofPackage(pkg, name) {
			continue
		}
		if img, err := kernelIn(dir, pkg, version); err == nil {
			return img
		}
	}
	return nil
}

// ofPackage reports whether the kernel package pkg is name itself or, for
// a metapackage linux-image-<major>.<minor>-<flavour>, of that series and
// flavour (linux-image-6.12.48+deb12-amd64 of linux-image-6.12-amd64).
func ofPackage(pkg, name string) bool {
	if pkg == name {
		return true
	}
	series, flavour, ok := strings.Cut(strings.TrimPrefix(name, "linux-image-"), "-")
	if !ok || series == name || strings.Count(series, ".") != 1 {
		return false
	}
	return strings.HasPrefix(pkg, "linux-image-"+series+".") && strings.HasSuffix(pkg, "-"+flavour)
}

// versionLess orders Debian versions by their runs of digits as numbers
// and the rest as text: 6.12.99-1 before 6.12.117-1, 6.12.117-1~deb12u1
// before 6.12.117-1 (near enough to dpkg's order for kernel versions).
func versionLess(a, b string) bool {
	for a != "" && b != "" {
		ra, rb := leadingRun(a), leadingRun(b)
		if ra != rb {
			da, db := isDigit(ra[0]), isDigit(rb[0])
			switch {
			case da && db:
				na, nb := strings.TrimLeft(ra, "0"), strings.TrimLeft(rb, "0")
				if len(na) != len(nb) {
					return len(na) < len(nb)
				}
				if na != nb {
					return na < nb
				}
			case da != db:
				return db // a number sorts after text
			default:
				// Debian's ~ sorts before anything, even the end.
				return strings.ReplaceAll(ra, "~", "\x00") < strings.ReplaceAll(rb, "~", "\x00")
			}
		}
		a, b = a[len(ra):], b[len(rb):]
	}
	if a == "" {
		return b != "" && b[0] != '~'
	}
	return a[0] == '~'
}

func leadingRun(s string) string {
	d := isDigit(s[0])
	i := 1
	for i < len(s) && isDigit(s[i]) == d {
		i++
	}
	return s[:i]
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func kernelIn(dir, pkg, version string) (*Image, error) {
	kernels, _ := filepath.Glob(filepath.Join(dir, "boot", "vmlinuz-*"))
	if len(kernels) != 1 {
		return nil, fmt.Errorf("%s: want one boot/vmlinuz-*, found %d", dir, len(kernels))
	}
	release := strings.TrimPrefix(filepath.Base(kernels[0]), "vmlinuz-")
	return &Image{Package: pkg, Version: version, Release: release, Kernel: kernels[0], root: dir}, nil
}

// buildInitramfs writes the initramfs for img into dir unless one built
// from the same inputs is there, and sets img.Initramfs and img.Modules.
func buildInitramfs(ctx context.Context, img *Image, busybox string, log io.Writer) error {
	dir := img.root
	modDir := filepath.Join(dir, "lib/modules", img.Release)
	tree, err := readModuleTree(modDir)
	if err != nil {
		return err
	}
	items, err := tree.loadOrder(RequiredModules, OptionalModules, OnDemandModules)
	if err != nil {
		return err
	}
	bb, err := os.ReadFile(busybox)
	if err != nil {
		return err
	}
	var loadList, onDemand strings.Builder
	for _, it := range items {
		switch it.kind {
		case loadRequired:
			fmt.Fprintf(&loadList, "%s\n", it.name)
		case loadOptional:
			fmt.Fprintf(&loadList, "%s optional\n", it.name)
		default:
			fmt.Fprintf(&onDemand, "%s\n", it.name)
			continue
		}
		img.Modules = append(img.Modules, it.name)
	}
	h := sha256.New()
	// The on-demand modules are in the image too: another list, another
	// image.
	for _, b := range [][]byte{initScript, bb, []byte(loadList.String()), []byte(img.Release), []byte(onDemand.String())} {
		fmt.Fprintf(h, "%d:", len(b))
		h.Write(b)
	}
	name := fmt.Sprintf("initramfs-%x.cpio", h.Sum(nil)[:6])
	img.Initramfs = filepath.Join(dir, name)
	if _, err := os.Stat(img.Initramfs); err == nil {
		return nil
	}
	fmt.Fprintf(log, "vm: building %s (%d modules)\n", img.Initramfs, len(items))

	tmp, err := os.CreateTemp(dir, "initramfs-*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	bw := bufio.NewWriter(tmp)
	c := newCPIOWriter(bw)
	for _, d := range []string{"dev", "proc", "sys", "tmp", "newroot", "sbin", "usr/bin", "usr/sbin"} {
		c.Dir(d)
	}
	c.File("bin/busybox", 0o755, bb)
	c.Symlink("bin/sh", "busybox")
	c.File("init", 0o755, initScript)
	c.File("lib/modules/load.list", 0o644, []byte(loadList.String()))

	included := map[string]bool{}
	for _, it := range items {
		ko, err := readModule(ctx, filepath.Join(modDir, it.path), busybox)
		if err != nil {
			return fmt.Errorf("module %s: %w", it.name, err)
		}
		c.File(filepath.Join("lib/modules", img.Release, uncompressedName(it.path)), 0o644, ko)
		included[it.name] = true
	}
	// modules.dep and modules.alias cut down to what is here, so the
	// kernel's request_module (through busybox modprobe) finds them.
	var dep, alias strings.Builder
	for _, it := range items {
		fmt.Fprintf(&dep, "%s:", uncompressedName(it.path))
		for _, d := range tree.deps[it.name] {
			fmt.Fprintf(&dep, " %s", uncompressedName(tree.path[d]))
		}
		dep.WriteString("\n")
	}
	if b, err := os.ReadFile(filepath.Join(modDir, "modules.alias")); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) == 3 && f[0] == "alias" && included[modName(f[2])] {
				alias.WriteString(l + "\n")
			}
		}
	}
	c.File(filepath.Join("lib/modules", img.Release, "modules.dep"), 0o644, []byte(dep.String()))
	c.File(filepath.Join("lib/modules", img.Release, "modules.alias"), 0o644, []byte(alias.String()))
	if err := c.Close(); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	old, _ := filepath.Glob(filepath.Join(dir, "initramfs-*.cpio"))
	for _, o := range old {
		os.Remove(o)
	}
	return os.Rename(tmp.Name(), img.Initramfs)
}

// uncompressedName is a module's path with the compression suffix gone:
// modules go into the initramfs uncompressed, so busybox's insmod needs no
// decompressor and the guest spends no emulated cycles on one.
func uncompressedName(p string) string {
	for _, ext := range []string{".xz", ".zst", ".gz"} {
		if strings.HasSuffix(p, ".ko"+ext) {
			return strings.TrimSuffix(p, ext)
		}
	}
	return p
}

func readModule(ctx context.Context, path, busybox string) ([]byte, error) {
	switch {
	case strings.HasSuffix(path, ".ko"):
		return os.ReadFile(path)
	case strings.HasSuffix(path, ".ko.gz"):
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		zr, err := gzip.NewReader(f)
		if err != nil {
			return nil, err
		}
		return io.ReadAll(zr)
	case strings.HasSuffix(path, ".ko.xz"):
		if xz, err := exec.LookPath("xz"); err == nil {
			return exec.CommandContext(ctx, xz, "-dc", path).Output()
		}
		return exec.CommandContext(ctx, busybox, "xzcat", path).Output()
	case strings.HasSuffix(path, ".ko.zst"):
		return exec.CommandContext(ctx, "zstd", "-dcq", path).Output()
	}
	return nil, fmt.Errorf("unknown module format: %s", path)
}

func lockFile(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() { f.Close() }, nil
}

// run runs a command in dir, with its output in the error.
func run(ctx context.Context, dir, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}
