package interop

import (
	"strings"
	"testing"
)

// TestICMPSelectors negotiates ICMP and ICMPv6 type/code selectors (RFC
// 7296 section 3.13.1: type<<8|code in the port fields) in both roles:
// both sides must agree on the CHILD_SA and print its selectors alike, in
// charon's form ("[icmp/8]", "[icmp/3(4)]", "[ipv6-icmp/128]").
func TestICMPSelectors(t *testing.T) {
	cases := []struct {
		name string
		// charon's local_ts and remote_ts, ours, and what charon lists.
		charonLocal, charonRemote string
		oursLocal, oursRemote     string
		wantLocal, wantRemote     string
		// charonAddr is an address of charon's local selector it needs
		// to route the selectors with kernel-libipsec ("" if it has one).
		charonAddr string
		ikev1      bool // Quick Mode IDs carry type<<8|code in their port
	}{
		{"icmp-type", charonNet + "[icmp/8]", oursNet + "[icmp/8]", oursNet + "[icmp/8]", charonNet + "[icmp/8]",
			"10.1.0.0/16[icmp/8]", "10.2.0.0/16[icmp/8]", "", false},
		// strongSwan writes type 3 code 4 as 0x0304 (772); we also read
		// the "3(4)" both print.
		{"icmp-type-code", charonNet + "[icmp/0]", oursNet + "[icmp/772]", oursNet + "[icmp/3(4)]", charonNet + "[1/0]",
			"10.1.0.0/16[icmp/0]", "10.2.0.0/16[icmp/3(4)]", "", false},
		// Our any-ICMP configuration narrowed to charon's types.
		{"icmp-narrowed", charonNet + "[icmp/8]", oursNet + "[icmp/0]", oursNet + "[icmp]", charonNet + "[icmp]",
			"10.1.0.0/16[icmp/8]", "10.2.0.0/16[icmp/0]", "", false},
		{"icmpv6-type", "fec1::/16[ipv6-icmp/128]", "fec2::/16[ipv6-icmp/135]", "fec2::/16[icmpv6/135]", "fec1::/16[ipv6-icmp/128]",
			"fec1::/16[ipv6-icmp/128]", "fec2::/16[ipv6-icmp/135]", "fec1::1/128", false},
		{"ikev1-icmp-type-code", charonNet + "[icmp/8]", oursNet + "[icmp/772]", oursNet + "[icmp/3(4)]", charonNet + "[icmp/8]",
			"10.1.0.0/16[icmp/8]", "10.2.0.0/16[icmp/3(4)]", "", true},
	}
	for _, c := range cases {
		forRoles(t, c.name, func(t *testing.T, role string) {
			e := newEnv(t, envOptions{})
			if c.charonAddr != "" {
				e.nsC.MustRun(t, "ip", "addr", "add", c.charonAddr, "dev", "lo", "nodad")
			}
			cs, os := pskPeers("aes128gcm16-prfsha256-x25519", "aes128gcm16")
			if c.ikev1 {
				cs, os = v1Peers("aes128-sha256-modp2048", "aes128-sha256", "")
			}
			cs.localTS, cs.remoteTS = c.charonLocal, c.charonRemote
			os.localTS, os.remoteTS = c.oursLocal, c.oursRemote
			e.load(cs, os, nil, nil)
			e.initiate(role)
			v := e.agree(1)
			ch := v[0].children[0]
			if ch.localTS != c.wantLocal || ch.remoteTS != c.wantRemote {
				t.Errorf("charon's CHILD_SA: %s === %s, want %s === %s", ch.localTS, ch.remoteTS, c.wantLocal, c.wantRemote)
			}
			if out := e.ours.cli("list-sas"); !strings.Contains(out, c.wantRemote) || !strings.Contains(out, c.wantLocal) {
				t.Errorf("xdpsec list-sas does not show %s and %s:\n%s", c.wantRemote, c.wantLocal, out)
			}
			if log := e.ours.log(); strings.Contains(log, "TS_UNACCEPT") || strings.Contains(log, "no acceptable traffic selectors") {
				t.Errorf("selectors refused in our log:\n%s", log)
			}
		})
	}
}
