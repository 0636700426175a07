package vm

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// readCPIO parses a newc archive: name → mode and contents.
func readCPIO(t *testing.T, b []byte) (map[string]uint32, map[string]string) {
	t.Helper()
	modes, data := map[string]uint32{}, map[string]string{}
	off := 0
	field := func(i int) int {
		v, err := strconv.ParseUint(string(b[off+6+8*i:off+14+8*i]), 16, 32)
		if err != nil {
			t.Fatalf("cpio header at %d: %v", off, err)
		}
		return int(v)
	}
	align := func(n int) int { return (n + 3) &^ 3 }
	for {
		if string(b[off:off+6]) != "070701" {
			t.Fatalf("bad magic at %d: %q", off, b[off:off+6])
		}
		mode, size, namesize := field(1), field(6), field(11)
		name := string(b[off+110 : off+110+namesize-1])
		off = align(off + 110 + namesize)
		if name == "TRAILER!!!" {
			break
		}
		modes[name] = uint32(mode)
		data[name] = string(b[off : off+size])
		off = align(off + size)
	}
	if off != len(b) {
		t.Errorf("archive has %d bytes after the trailer", len(b)-off)
	}
	return modes, data
}

func TestCPIO(t *testing.T) {
	var buf bytes.Buffer
	c := newCPIOWriter(&buf)
	c.File("/init", 0o755, []byte("#!/bin/sh\n"))
	c.File("lib/modules/6.12/kernel/a.ko", 0o644, []byte("12345"))
	c.Symlink("bin/sh", "busybox")
	c.Dir("lib/modules")
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	modes, data := readCPIO(t, buf.Bytes())
	want := map[string]uint32{
		"init": modeFile | 0o755, "lib": modeDir | 0o755, "lib/modules": modeDir | 0o755,
		"lib/modules/6.12": modeDir | 0o755, "lib/modules/6.12/kernel": modeDir | 0o755,
		"lib/modules/6.12/kernel/a.ko": modeFile | 0o644, "bin": modeDir | 0o755, "bin/sh": modeSymlink | 0o777,
	}
	if !reflect.DeepEqual(modes, want) {
		t.Errorf("entries %v\nwant %v", modes, want)
	}
	if data["lib/modules/6.12/kernel/a.ko"] != "12345" || data["bin/sh"] != "busybox" || data["init"] != "#!/bin/sh\n" {
		t.Errorf("contents %q", data)
	}
	// The same inputs give the same bytes.
	var again bytes.Buffer
	c = newCPIOWriter(&again)
	c.File("/init", 0o755, []byte("#!/bin/sh\n"))
	c.File("lib/modules/6.12/kernel/a.ko", 0o644, []byte("12345"))
	c.Symlink("bin/sh", "busybox")
	c.Close()
	if !bytes.Equal(buf.Bytes(), again.Bytes()) {
		t.Error("cpio output is not deterministic")
	}
}

func writeTree(t *testing.T, dep, builtin string) *moduleTree {
	t.Helper()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "modules.dep"), []byte(dep), 0o644)
	os.WriteFile(filepath.Join(dir, "modules.builtin"), []byte(builtin), 0o644)
	tree, err := readModuleTree(dir)
	if err != nil {
		t.Fatal(err)
	}
	return tree
}

func TestLoadOrder(t *testing.T) {
	tree := writeTree(t, `kernel/net/ipv4/esp4.ko.xz: kernel/net/xfrm/xfrm_algo.ko.xz
kernel/net/xfrm/xfrm_algo.ko.xz:
kernel/fs/9p/9p.ko.xz: kernel/net/9p/9pnet.ko.xz kernel/fs/netfs/netfs.ko.xz
kernel/net/9p/9pnet.ko.xz:
kernel/fs/netfs/netfs.ko.xz:
kernel/arch/x86/crypto/aesni-intel.ko.xz: kernel/crypto/crypto_simd.ko.xz
kernel/crypto/crypto_simd.ko.xz:
kernel/net/netfilter/nf_tables.ko.xz: kernel/net/xfrm/xfrm_algo.ko.xz
`, "kernel/crypto/cbc.ko\nkernel/crypto/hmac.ko\n")
	items, err := tree.loadOrder(
		[]string{"9p", "esp4", "cbc"},
		[]string{"aesni-intel", "nosuch_optional"},
		[]string{"nf_tables", "nosuch_ondemand"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, it := range items {
		got = append(got, it.name+"/"+strconv.Itoa(int(it.kind)))
	}
	want := []string{"9pnet/0", "netfs/0", "9p/0", "xfrm_algo/0", "esp4/0", "crypto_simd/1", "aesni_intel/1", "nf_tables/2"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("load order %v\nwant %v", got, want)
	}
	if _, err := tree.loadOrder([]string{"nosuch"}); err == nil || !strings.Contains(err.Error(), "nosuch") {
		t.Errorf("a missing required module: %v", err)
	}
}

func TestLoadOrderLoop(t *testing.T) {
	tree := writeTree(t, "a.ko: b.ko\nb.ko: a.ko\n", "")
	if _, err := tree.loadOrder([]string{"a"}); err == nil {
		t.Error("a dependency loop was accepted")
	}
}

func TestUncompressedName(t *testing.T) {
	for in, want := range map[string]string{
		"kernel/a.ko.xz": "kernel/a.ko", "kernel/a.ko.zst": "kernel/a.ko", "kernel/a.ko.gz": "kernel/a.ko", "kernel/a.ko": "kernel/a.ko",
	} {
		if got := uncompressedName(in); got != want {
			t.Errorf("uncompressedName(%q) = %q, want %q", in, got, want)
		}
	}
	if modName("kernel/arch/x86/crypto/ghash-clmulni-intel.ko.xz") != "ghash_clmulni_intel" {
		t.Error("modName does not normalize dashes")
	}
}

func TestCachedKernel(t *testing.T) {
	cache := t.TempDir()
	for _, v := range []string{"linux-image-6.12.100+deb12-amd64_6.12.100-1", "linux-image-6.12.117+deb12-amd64_6.12.117-1", "linux-image-6.12.120+deb12-amd64_6.12.120-1"} {
		os.MkdirAll(filepath.Join(cache, v, "boot"), 0o755)
		rel := strings.TrimPrefix(strings.Split(v, "_")[0], "linux-image-")
		os.WriteFile(filepath.Join(cache, v, "boot", "vmlinuz-"+rel), nil, 0o644)
		if !strings.Contains(v, "120") { // an interrupted fetch has no stamp
			os.WriteFile(filepath.Join(cache, v, completeStamp), nil, 0o644)
		}
	}
	img := cachedKernel(cache, KernelPackage)
	if img == nil || img.Package != "linux-image-6.12.117+deb12-amd64" || img.Release != "6.12.117+deb12-amd64" || img.Version != "6.12.117-1" {
		t.Errorf("cached kernel %+v", img)
	}
	// Debian 12's stock 6.1 beside it: the unversioned metapackage finds
	// it only through what it last resolved to, never a 6.12.
	v61 := "linux-image-6.1.0-57-amd64_6.1.192-3"
	os.MkdirAll(filepath.Join(cache, v61, "boot"), 0o755)
	os.WriteFile(filepath.Join(cache, v61, "boot", "vmlinuz-6.1.0-57-amd64"), nil, 0o644)
	os.WriteFile(filepath.Join(cache, v61, completeStamp), nil, 0o644)
	if img := cachedKernel(cache, "linux-image-amd64"); img != nil {
		t.Errorf("linux-image-amd64 with nothing resolved: cached kernel %+v, want none", img)
	}
	noteResolved(cache, "linux-image-amd64", filepath.Join(cache, v61))
	if img := cachedKernel(cache, "linux-image-amd64"); img == nil || img.Release != "6.1.0-57-amd64" {
		t.Errorf("linux-image-amd64: cached kernel %+v, want 6.1.0-57-amd64", img)
	}
	if img := cachedKernel(cache, "linux-image-6.1.0-57-amd64"); img == nil || img.Release != "6.1.0-57-amd64" {
		t.Errorf("linux-image-6.1.0-57-amd64: cached kernel %+v", img)
	}
	if img := cachedKernel(cache, KernelPackage); img == nil || img.Release != "6.12.117+deb12-amd64" {
		t.Errorf("%s beside a 6.1: cached kernel %+v", KernelPackage, img)
	}
}

func TestVersionLess(t *testing.T) {
	for _, c := range [][2]string{{"6.12.99-1", "6.12.117-1"}, {"6.1.176-1", "6.1.192-3"}, {"6.12.117-1~deb12u1", "6.12.117-1"},
		{"6.12.117-1", "6.12.117-2"}, {"6.1.0", "6.1.0.1"}} {
		if !versionLess(c[0], c[1]) || versionLess(c[1], c[0]) {
			t.Errorf("versionLess(%q, %q) wrong", c[0], c[1])
		}
	}
}
