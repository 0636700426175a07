package interop

import (
	"strings"
	"testing"

	"github.com/xdpsec/xdpsec/internal/testenv"
)

// requireKernelAH skips unless the kernel can hold an AH SA in ns:
// kernel-libipsec, the interop default, has no AH, so charon installs
// AH through kernel-netlink into its namespace's XFRM.
func requireKernelAH(t *testing.T, ns *testenv.Netns) {
	t.Helper()
	key := "0x" + strings.Repeat("00", 32)
	out, err := ns.Run("ip", "xfrm", "state", "add", "src", "192.0.2.254", "dst", "192.0.2.253", "proto", "ah", "spi", "0x100",
		"mode", "tunnel", "auth-trunc", "hmac(sha256)", key, "128")
	if err != nil {
		t.Skipf("skipped: the kernel cannot hold AH SAs for charon's kernel-netlink (`ip xfrm state add ... proto ah`: %v: %s); "+
			"kernel-libipsec has no AH and fakes a NAT; AH against charon runs in the VM (e2e TestAHWithCharon)", err, strings.TrimSpace(out))
	}
	ns.MustRun(t, "ip", "xfrm", "state", "flush")
}

// TestAH negotiates an AH CHILD_SA (ah_proposals) with charon in IKEv2
// and IKEv1, each side initiating, and compares the SPIs, the protocol
// and the algorithm both sides list. Our daemon runs with the dry-run
// dataplane, charon with kernel-netlink (AH needs no NAT faked).
func TestAH(t *testing.T) {
	for _, version := range []string{"ikev2", "ikev1"} {
		forRoles(t, version, func(t *testing.T, role string) {
			e := newEnv(t, envOptions{kernelIPsec: true})
			requireKernelAH(t, e.nsC)
			cs, os := pskPeers("aes128gcm16-prfsha256-x25519", "")
			if version == "ikev1" {
				cs, os = v1Peers("aes128-sha256-modp2048", "", "")
			}
			cs.childExtra = "        ah_proposals = sha256-modp2048\n"
			os.childExtra = cs.childExtra
			e.load(cs, os, nil, nil)
			e.initiate(role)
			e.agree(1)
			ch := e.charonChild()
			if ch.get("protocol") != "AH" || ch.get("integ-alg") != "HMAC_SHA2_256_128" || ch.get("encr-alg") != "" || ch.get("encap") == "yes" {
				t.Errorf("charon's CHILD_SA: %v, want AH with HMAC_SHA2_256_128 and nothing else", ch.values)
			}
			for _, c := range e.oursSA().Children {
				if c.Protocol != "AH" || !strings.HasPrefix(c.Proposal, "AH:HMAC_SHA2_256_128") || c.Encap {
					t.Errorf("our CHILD_SA: %s %s encap %v", c.Protocol, c.Proposal, c.Encap)
				}
			}
			if out := e.charon.swanctl("--list-sas"); !strings.Contains(out, ", AH:") {
				t.Errorf("swanctl --list-sas does not show AH:\n%s", out)
			}
			if out := e.ours.cli("list-sas"); !strings.Contains(out, "AH:HMAC_SHA2_256_128") {
				t.Errorf("xdpsec list-sas does not show AH:\n%s", out)
			}
		})
	}
}
