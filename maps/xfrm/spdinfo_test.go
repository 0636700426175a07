package xfrm

import (
	"net/netip"
	"testing"
)

func TestHashThresholds(t *testing.T) {
	c, _ := newConn(t)
	si, err := c.SPDInfo()
	if err != nil {
		t.Fatal(err)
	}
	if si.IPv4 != (HashThresholds{32, 32}) || si.IPv6 != (HashThresholds{128, 128}) || si.Out != 0 {
		t.Fatalf("a new namespace: %+v, want the kernel's defaults 32/32 and 128/128 and no policies", si)
	}
	if err := c.SetHashThresholds(false, HashThresholds{0, 32}); err != nil {
		t.Fatal(err)
	}
	if err := c.SetHashThresholds(true, HashThresholds{0, 128}); err != nil {
		t.Fatal(err)
	}
	if err := c.SetHashThresholds(false, HashThresholds{0, 33}); err == nil {
		t.Fatal("33 bits of IPv4 accepted")
	}
	p := Policy{Dir: DirOut, Selector: Selector{Src: netip.MustParsePrefix("0.0.0.0/0"), Dst: netip.MustParsePrefix("10.3.200.1/32")}}
	if err := c.AddPolicy(p); err != nil {
		t.Fatal(err)
	}
	si, err = c.SPDInfo()
	if err != nil {
		t.Fatal(err)
	}
	if si.IPv4 != (HashThresholds{0, 32}) || si.IPv6 != (HashThresholds{0, 128}) || si.Out != 1 {
		t.Fatalf("after setting: %+v, want 0/32, 0/128 and one out policy", si)
	}
}
