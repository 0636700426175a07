package loader

import (
	"testing"

	"github.com/xdpsec/xdpsec/bpf"
)

// TestResolveKsymExists: tc_lan's bpf_ksym_exists load becomes the
// constant answer for this kernel and the kfunc call stays for cilium/ebpf
// to resolve. (The VM tests load tc_lan on a kernel that has the kfunc in
// a module; this host may have it nowhere.)
func TestResolveKsymExists(t *testing.T) {
	spec, err := bpf.LoadXdpsec()
	if err != nil {
		t.Fatal(err)
	}
	insns := spec.Programs[bpf.XdpsecProgTcLan].Instructions
	var loads []int
	for i, ins := range insns {
		if ins.Reference() == "bpf_skb_set_xfrm_info" && ins.OpCode.IsDWordLoad() {
			loads = append(loads, i)
		}
	}
	if len(loads) == 0 {
		t.Fatal("tc_lan has no bpf_ksym_exists(bpf_skb_set_xfrm_info) load")
	}
	missing, err := resolveKsymExists(spec)
	if err != nil {
		t.Fatal(err)
	}
	exists, err := kernelHasFunc("bpf_skb_set_xfrm_info", "xfrm_interface")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("this kernel has bpf_skb_set_xfrm_info: %v", exists)
	if got := len(missing) == 1 && missing[0] == "bpf_skb_set_xfrm_info"; got == exists {
		t.Errorf("resolveKsymExists reports missing %v; the kernel has the kfunc: %v", missing, exists)
	}
	want := int64(0)
	if exists {
		want = 1
	}
	for _, i := range loads {
		ins := insns[i]
		if !ins.OpCode.IsDWordLoad() || ins.Reference() != "" || ins.Src != 0 || ins.Offset != 0 || ins.Constant != want {
			t.Errorf("instruction %d is %v (src %v, off %d); want a plain LD_IMM64 of %d", i, ins, ins.Src, ins.Offset, want)
		}
	}
	calls := 0
	for _, ins := range insns {
		if ins.IsKfuncCall() && ins.Reference() == "bpf_skb_set_xfrm_info" {
			calls++
		}
	}
	if calls == 0 {
		t.Error("the kfunc call is gone")
	}
}
