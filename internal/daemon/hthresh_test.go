package daemon

import (
	"testing"

	"github.com/xdpsec/xdpsec/internal/testenv"
	"github.com/xdpsec/xdpsec/maps/xfrm"
)

// TestHashClientPolicies: with virtual IP pools the daemon has the kernel
// hash policies by the client's address (the outbound lookup benchmark's
// design); without, the namespace keeps the kernel's defaults.
func TestHashClientPolicies(t *testing.T) {
	ns := testenv.NewNetns(t, "hthresh")
	k, err := xfrm.OpenAt(ns.Handle)
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	si, err := k.SPDInfo()
	if err != nil {
		t.Fatal(err)
	}
	if si.IPv4 != (xfrm.HashThresholds{Local: 32, Remote: 32}) {
		t.Fatalf("a new namespace has hthresh4 %+v", si.IPv4)
	}
	d := &Daemon{kernel: k, knlLog: testenv.Logger(t)}
	d.hashClientPolicies()
	if si, err = k.SPDInfo(); err != nil {
		t.Fatal(err)
	}
	if si.IPv4 != (xfrm.HashThresholds{Local: 0, Remote: 32}) || si.IPv6 != (xfrm.HashThresholds{Local: 0, Remote: 128}) {
		t.Fatalf("after hashClientPolicies: hthresh4 %+v hthresh6 %+v, want 0/32 and 0/128", si.IPv4, si.IPv6)
	}
}
