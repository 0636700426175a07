package ike

import (
	"net/netip"
	"testing"
)

// TestPolicySetCount checks the count a policySet keeps against the
// policies it makes: selector pairs of one family only, out and in, and
// fwd in tunnel mode.
func TestPolicySetCount(t *testing.T) {
	ts := func(s string) TrafficSelector {
		p := netip.MustParsePrefix(s)
		a, b := prefixRange(p)
		return TrafficSelector{Start: a, End: b, EndPort: 0xffff}
	}
	local := []TrafficSelector{ts("10.1.0.0/16"), ts("fd00:1::/64"), ts("10.3.0.0/24")}
	remote := []TrafficSelector{ts("10.2.0.0/16"), ts("fd00:2::/64")}
	l, r := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	for _, mode := range []Mode{ModeTunnel, ModeTransport} {
		s := newPolicySet(local, remote, l, r, mode, SAProtoESP, 1, 2, nil)
		if got := len(s.list(7)); s.n != got || got == 0 {
			t.Errorf("mode %v: count %d, %d policies made", mode, s.n, got)
		}
	}
	if s := newPolicySet(local[:1], remote[1:], l, r, ModeTunnel, SAProtoESP, 1, 2, nil); s.installed() {
		t.Errorf("no pair of one family, yet %d policies counted", s.n)
	}
}

// Two CHILD_SAs share a reqid exactly when every part of the key is the
// same: each part changed alone gives another key, and a selector list
// split differently (one range against two) does not collide.
func TestReqidKeyDistinguishes(t *testing.T) {
	ts := func(s string) TrafficSelector {
		p := netip.MustParsePrefix(s)
		a, b := prefixRange(p)
		return TrafficSelector{Start: a, End: b, EndPort: 0xffff}
	}
	a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	type key struct {
		child         string
		local, remote []TrafficSelector
		l, r          netip.Addr
		ifIn, ifOut   uint32
		mode          Mode
		proto         SAProto
	}
	base := key{"net", []TrafficSelector{ts("10.1.0.0/16")}, []TrafficSelector{ts("10.2.0.0/16")}, a, b, 1, 2, ModeTunnel, SAProtoESP}
	of := func(k key) string {
		return reqidKeyOf(k.child, k.local, k.remote, k.l, k.r, k.ifIn, k.ifOut, k.mode, k.proto)
	}
	mapped := base
	mapped.l = netip.AddrFrom16(a.As16()) // ::ffff:192.0.2.1 is the same peer
	if of(base) != of(base) || of(base) != of(mapped) {
		t.Fatal("equal keys differ")
	}
	port := ts("10.1.0.0/16")
	port.StartPort, port.EndPort = 80, 80
	variants := []func(*key){
		func(k *key) { k.child = "net2" },
		func(k *key) { k.local = []TrafficSelector{ts("10.1.0.0/17")} },
		func(k *key) { k.local = []TrafficSelector{port} },
		func(k *key) { k.local = []TrafficSelector{ts("10.1.0.0/17"), ts("10.1.128.0/17")} },
		func(k *key) { k.local, k.remote = k.remote, k.local },
		func(k *key) { k.local, k.remote = append(k.local, k.remote...), nil },
		func(k *key) { k.remote = []TrafficSelector{ts("fd00:2::/64")} },
		func(k *key) { k.l = netip.MustParseAddr("192.0.2.3") },
		func(k *key) { k.r = netip.Addr{} },
		func(k *key) { k.ifIn = 3 },
		func(k *key) { k.ifOut = 3 },
		func(k *key) { k.mode = ModeTransport },
		func(k *key) { k.proto = SAProtoESP + 1 },
	}
	seen := map[string]int{of(base): -1}
	for i, change := range variants {
		k := base
		change(&k)
		if j, dup := seen[of(k)]; dup {
			t.Errorf("variant %d has the key of %d", i, j)
		}
		seen[of(k)] = i
	}
}
