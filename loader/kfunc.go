package loader

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"
)

// weakKfunc is a kfunc our programs declare __weak and test with
// bpf_ksym_exists.
type weakKfunc struct {
	module   string // the module that provides it where the kernel has it as one
	since    string // the first kernel with it
	fallback string // what the programs do without it
}

var weakKfuncs = map[string]weakKfunc{
	"bpf_skb_set_xfrm_info": {module: "xfrm_interface", since: "Linux 6.2",
		fallback: "tc_lan sets the skb mark to the PROTECT policy's if_id instead of the packet's XFRM if_id"},
}

// resolveKsymExists answers the programs' bpf_ksym_exists checks before
// cilium/ebpf links them: each LD_IMM64 of a weak kfunc's address becomes
// the constant 1 if the running kernel has the kfunc, 0 if not.
//
// cilium/ebpf v0.22 fills such a load like a kfunc call, writing the module
// BTF's fd_array index into the instruction's offset; the verifier rejects
// any LD_IMM64 with an offset ("BPF_LD_IMM64 uses reserved fields"). That
// happens whenever the kfunc lives in a module, as bpf_skb_set_xfrm_info
// does on Debian's kernels (CONFIG_XFRM_INTERFACE=m): tc_lan failed to load
// as soon as xfrm_interface was loaded. cilium/ebpf#2056, fixed upstream
// by #2058 after v0.22.0; drop this when go.mod has the fix. Calls keep
// their kfunc metadata: cilium/ebpf resolves those correctly (a call of a
// missing weak kfunc stays behind its bpf_ksym_exists check, which the
// verifier then knows is never taken).
//
// It returns the weak kfuncs the kernel lacks, sorted, for the loader to
// say which fallback the programs take.
func resolveKsymExists(spec *ebpf.CollectionSpec) (missing []string, err error) {
	have := map[string]bool{}
	for _, prog := range spec.Programs {
		for i, ins := range prog.Instructions {
			name := ins.Reference()
			if _, weak := weakKfuncs[name]; !weak || !ins.OpCode.IsDWordLoad() {
				continue
			}
			exists, ok := have[name]
			if !ok {
				var err error
				if exists, err = kernelHasFunc(name, weakKfuncs[name].module); err != nil {
					return nil, fmt.Errorf("look for kfunc %s: %w", name, err)
				}
				have[name] = exists
				if !exists {
					missing = append(missing, name)
				}
			}
			v := int64(0)
			if exists {
				v = 1
			}
			prog.Instructions[i] = asm.LoadImm(ins.Dst, v, asm.DWord).WithSource(ins.Source())
		}
	}
	sort.Strings(missing)
	return missing, nil
}

// logMissingKfuncs says, once per load, which kfuncs the kernel lacks and
// what the programs do instead.
func logMissingKfuncs(log *slog.Logger, missing []string) {
	for _, name := range missing {
		k := weakKfuncs[name]
		log.Info("kernel lacks a kfunc, using the fallback", "kfunc", name,
			"needs", fmt.Sprintf("%s+ with module %s loaded", k.since, k.module), "fallback", k.fallback)
	}
}

// kernelHasFunc reports whether the kernel's BTF (vmlinux, else the loaded
// module) has a function of that name.
func kernelHasFunc(name, module string) (bool, error) {
	vmlinux, err := btf.LoadKernelSpec()
	if errors.Is(err, ebpf.ErrNotSupported) {
		return false, nil // no BTF: no kfuncs either
	}
	if err != nil {
		return false, err
	}
	if ok, err := specHasFunc(vmlinux, name); ok || err != nil {
		return ok, err
	}
	path := filepath.Join("/sys/kernel/btf", module)
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil // module not loaded
	}
	if err != nil {
		return false, err
	}
	if !bytes.Contains(raw, []byte("\x00"+name+"\x00")) {
		return false, nil
	}
	mod, err := btf.LoadSplitSpecFromReader(bytes.NewReader(raw), vmlinux)
	if err != nil {
		return false, fmt.Errorf("%s: %w", path, err)
	}
	return specHasFunc(mod, name)
}

func specHasFunc(s *btf.Spec, name string) (bool, error) {
	var fn *btf.Func
	err := s.TypeByName(name, &fn)
	if errors.Is(err, btf.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}
