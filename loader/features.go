package loader

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"unicode"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/features"
	"golang.org/x/sys/unix"
)

// missingHelpers lists the helper functions the programs of spec call that
// this kernel does not have for the program's type, as "bpf_loop (tc_lan)",
// sorted. Each helper is probed once per process (cilium/ebpf caches the
// answers); a probe that cannot answer counts as present, so only a
// definite "no" is reported.
func missingHelpers(spec *ebpf.CollectionSpec) []string {
	type use struct {
		pt ebpf.ProgramType
		fn asm.BuiltinFunc
	}
	users := map[use][]string{}
	for name, prog := range spec.Programs {
		for _, ins := range prog.Instructions {
			if !ins.IsBuiltinCall() {
				continue
			}
			u := use{prog.Type, asm.BuiltinFunc(ins.Constant)}
			if l := users[u]; len(l) == 0 || l[len(l)-1] != name {
				users[u] = append(users[u], name)
			}
		}
	}
	byHelper := map[string][]string{}
	for u, progs := range users {
		if err := features.HaveProgramHelper(u.pt, u.fn); errors.Is(err, ebpf.ErrNotSupported) {
			h := helperName(u.fn)
			byHelper[h] = append(byHelper[h], progs...)
		}
	}
	var out []string
	for h, progs := range byHelper {
		sort.Strings(progs)
		out = append(out, fmt.Sprintf("%s (%s)", h, strings.Join(progs, ", ")))
	}
	sort.Strings(out)
	return out
}

// helperName is the C name of a helper: asm.FnXdpLoadBytes is
// bpf_xdp_load_bytes. One cilium/ebpf does not know stays a number.
func helperName(fn asm.BuiltinFunc) string {
	s := fn.String()
	if !strings.HasPrefix(s, "Fn") {
		return fmt.Sprintf("helper #%d", int32(fn))
	}
	var b strings.Builder
	b.WriteString("bpf")
	for _, r := range strings.TrimPrefix(s, "Fn") {
		if unicode.IsUpper(r) {
			b.WriteByte('_')
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}

// kernelRelease is uname -r.
func kernelRelease() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "(unknown)"
	}
	return unix.ByteSliceToString(u.Release[:])
}
