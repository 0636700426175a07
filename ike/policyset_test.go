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
