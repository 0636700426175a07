package loader

import (
	"reflect"
	"testing"

	"github.com/cilium/ebpf/btf"

	"github.com/xdpsec/xdpsec/bpf"
)

// TestSkbCtxLayout checks skbCtx against struct __sk_buff in the object's BTF.
func TestSkbCtxLayout(t *testing.T) {
	spec, err := bpf.LoadXdpsec()
	if err != nil {
		t.Fatal(err)
	}
	var st *btf.Struct
	if err := spec.Types.TypeByName("__sk_buff", &st); err != nil {
		t.Fatal(err)
	}
	if got := reflect.TypeOf(skbCtx{}).Size(); uint32(got) != st.Size {
		t.Errorf("skbCtx is %d bytes, __sk_buff %d", got, st.Size)
	}
	gt := reflect.TypeOf(skbCtx{})
	for _, m := range st.Members {
		var goName string
		switch m.Name {
		case "mark":
			goName = "Mark"
		case "cb":
			goName = "CB"
		case "len":
			goName = "Len"
		case "ifindex":
			goName = "Ifindex"
		default:
			continue
		}
		f, _ := gt.FieldByName(goName)
		if uint32(f.Offset) != m.Offset.Bytes() {
			t.Errorf("%s at %d in Go, %d in C", m.Name, f.Offset, m.Offset.Bytes())
		}
	}
}
