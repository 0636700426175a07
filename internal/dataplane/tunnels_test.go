package dataplane

import (
	"errors"
	"os/exec"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/xdpsec/xdpsec/internal/testenv"
	"github.com/xdpsec/xdpsec/maps/xfrm"
)

// TestNetlinkTunnelsInterfaceCache: NewNetlinkTunnels finds an XFRM
// interface the operator made, answers from its cache the second time,
// notices when the interface was deleted and replaced behind its back,
// and makes its own where there is none.
func TestNetlinkTunnelsInterfaceCache(t *testing.T) {
	ns := testenv.NewNetns(t, "xdpsec-ifc")
	sh := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", append([]string{"-n", ns.Name}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	k, err := xfrm.OpenAt(ns.Handle)
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	h, err := netlink.NewHandleAt(ns.Handle)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if err := k.AddInterface(xfrm.Interface{Name: "op7", IfID: 7}); err != nil {
		if errors.Is(err, xfrm.ErrNoXfrmInterface) {
			t.Skipf("skipped: no XFRM interfaces in this kernel: %v", err)
		}
		t.Fatal(err)
	}
	index := func(name string) int {
		t.Helper()
		l, err := h.LinkByName(name)
		if err != nil {
			t.Fatal(err)
		}
		return l.Attrs().Index
	}
	tun := NewNetlinkTunnels(k, h)
	for range 2 {
		got, err := tun.Interface(7)
		if err != nil || got != index("op7") {
			t.Fatalf("Interface(7) = %d, %v; want op7's %d", got, err, index("op7"))
		}
	}
	if l, _ := h.LinkByName("op7"); l.Attrs().Flags&1 == 0 {
		t.Error("op7 was not set up")
	}
	// Replaced by the operator under another name: the cached index is
	// stale, the new interface is found.
	sh("link", "del", "op7")
	sh("link", "add", "op7b", "type", "xfrm", "if_id", "7")
	if got, err := tun.Interface(7); err != nil || got != index("op7b") {
		t.Fatalf("after replacing op7: Interface(7) = %d, %v; want op7b's %d", got, err, index("op7b"))
	}
	// None with if_id 9: made, then remembered.
	got, err := tun.Interface(9)
	if err != nil || got != index("xdpsec9") {
		t.Fatalf("Interface(9) = %d, %v; want the new xdpsec9's %d", got, err, index("xdpsec9"))
	}
	if again, err := tun.Interface(9); err != nil || again != got {
		t.Errorf("Interface(9) again = %d, %v; want %d", again, err, got)
	}
}
