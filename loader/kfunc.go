package loader

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"
)

// weakKfuncs are the kfuncs our programs declare __weak and test with
// bpf_ksym_exists, with the module that provides them where the kernel has
// them as a module.
var weakKfuncs = map[string]string{
	"bpf_skb_set_xfrm_info": "xfrm_interface",
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
// their kfunc metadata: cilium/ebpf resolves those correctly.
func resolveKsymExists(spec *ebpf.CollectionSpec) error {
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
				if exists, err = kernelHasFunc(name, weakKfuncs[name]); err != nil {
					return fmt.Errorf("look for kfunc %s: %w", name, err)
				}
				have[name] = exists
			}
			v := int64(0)
			if exists {
				v = 1
			}
			prog.Instructions[i] = asm.LoadImm(ins.Dst, v, asm.DWord).WithSource(ins.Source())
		}
	}
	return nil
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
