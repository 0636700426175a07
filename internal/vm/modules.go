package vm

import (
	"bufio"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// Modules the guest loads at boot, with their dependencies. A name the
// kernel has built in is skipped; a required name it has neither built in
// nor as a module fails Prepare.
var (
	// RequiredModules: the virtio PCI transport and 9p for the root
	// share (Debian's 6.1 has virtio_pci as a module, 6.12 built in),
	// then what the tests use.
	RequiredModules = []string{
		"virtio_pci", "netfs", "9pnet", "9pnet_virtio", "9p",
		"veth", "tun", "dummy",
		"xfrm_algo", "xfrm_user", "xfrm_interface", "esp4", "esp6", "ah4", "ah6",
		"xfrm4_tunnel", "xfrm6_tunnel", "tunnel4", "tunnel6",
		"authenc", "authencesn", "echainiv", "seqiv",
		"gcm", "ghash-generic", "ccm",
		"chacha20poly1305", "chacha_generic", "poly1305_generic",
		"aes_generic", "cbc", "ctr", "hmac", "sha256_generic", "sha512_generic",
		"sch_ingress", "cls_bpf", "act_bpf",
	}
	// OptionalModules are loaded where the guest CPU and kernel allow.
	OptionalModules = []string{
		"aesni-intel", "ghash-clmulni-intel", "sha256-ssse3", "sha512-ssse3",
		"chacha-x86_64", "poly1305-x86_64",
	}
	// OnDemandModules are in the initramfs but not loaded at boot: the
	// kernel loads them when first asked (request_module, through busybox
	// modprobe and the initramfs's modules.alias). Loading nftables at
	// boot would cost the boot two seconds under TCG.
	OnDemandModules = []string{
		"esp4_offload", "esp6_offload", "crc32c_generic",
		"nf_tables", "nf_nat", "nft_nat", "nft_chain_nat", "nft_masq", "nft_ct",
		"nft_fib_inet", "nft_reject_inet", "nf_conntrack_netlink",
		"bridge", // e2e's WAN of more than two sites (redirect)
		// 6.1's IV generators (seqiv, echainiv) seed from stdrng and copy
		// with ecb(cipher_null), all modules there: without them every
		// ESP SA fails to initialise its crypto (ENOENT).
		"ecb", "drbg", "jitterentropy_rng", "ansi_cprng",
	}
)

// loadKind says when the guest loads a module.
type loadKind int

const (
	loadRequired loadKind = iota // at boot; a failure is reported
	loadOptional                 // at boot; a failure is quiet
	loadOnDemand                 // when the kernel asks for it
)

// modName is a module's name as the kernel knows it: base name without
// .ko and compression suffix, dashes as underscores.
func modName(p string) string {
	b := path.Base(p)
	if i := strings.Index(b, ".ko"); i >= 0 {
		b = b[:i]
	}
	return strings.ReplaceAll(b, "-", "_")
}

// moduleTree is what depmod wrote for one kernel.
type moduleTree struct {
	dir     string              // lib/modules/<version>
	path    map[string]string   // name → path relative to dir
	deps    map[string][]string // name → names it depends on
	builtin map[string]bool
}

func readModuleTree(dir string) (*moduleTree, error) {
	t := &moduleTree{dir: dir, path: map[string]string{}, deps: map[string][]string{}, builtin: map[string]bool{}}
	f, err := os.Open(filepath.Join(dir, "modules.dep"))
	if err != nil {
		return nil, fmt.Errorf("module tree: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		mod, deps, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		name := modName(mod)
		t.path[name] = mod
		for _, d := range strings.Fields(deps) {
			t.deps[name] = append(t.deps[name], modName(d))
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read modules.dep: %w", err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "modules.builtin")); err == nil {
		for _, l := range strings.Fields(string(b)) {
			t.builtin[modName(l)] = true
		}
	}
	return t, nil
}

// loadItem is a module to put in the initramfs.
type loadItem struct {
	name, path string
	kind       loadKind
}

// loadOrder returns the modules for the initramfs, dependencies first,
// each once: a dependency gets the earliest kind of the modules needing it.
func (t *moduleTree) loadOrder(lists ...[]string) ([]loadItem, error) {
	var (
		out  []loadItem
		seen = map[string]bool{}
	)
	var visit func(name string, kind loadKind, stack []string) error
	visit = func(name string, kind loadKind, stack []string) error {
		if seen[name] {
			return nil
		}
		p, ok := t.path[name]
		if !ok {
			return fmt.Errorf("module %s (needed by %v) is neither built in nor in modules.dep", name, stack)
		}
		for _, s := range stack {
			if s == name {
				return fmt.Errorf("module dependency loop: %v", append(stack, name))
			}
		}
		for _, d := range t.deps[name] {
			if err := visit(d, kind, append(stack, name)); err != nil {
				return err
			}
		}
		seen[name] = true
		out = append(out, loadItem{name: name, path: p, kind: kind})
		return nil
	}
	for i, list := range lists {
		kind := loadKind(i)
		for _, n := range list {
			n = modName(n)
			if t.builtin[n] {
				continue
			}
			if _, ok := t.path[n]; !ok && kind != loadRequired {
				continue
			}
			if err := visit(n, kind, nil); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}
