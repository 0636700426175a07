package interop

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// threeChildren gives both sides the children net (10.1.1.0/24 ===
// 10.2.1.0/24 seen from charon), net2 and net3 (10.x.2.0/24, 10.x.3.0/24).
func threeChildren(charonSide, oursSide *peer) {
	child := func(name, local, remote, esp string) string {
		return fmt.Sprintf("      %s {\n        local_ts = %s\n        remote_ts = %s\n        esp_proposals = %s\n      }\n", name, local, remote, esp)
	}
	charonSide.localTS, charonSide.remoteTS = "10.1.1.0/24", "10.2.1.0/24"
	oursSide.localTS, oursSide.remoteTS = "10.2.1.0/24", "10.1.1.0/24"
	for i := 2; i <= 3; i++ {
		c, o := fmt.Sprintf("10.1.%d.0/24", i), fmt.Sprintf("10.2.%d.0/24", i)
		charonSide.moreChildren += child(fmt.Sprintf("net%d", i), c, o, charonSide.esp)
		oursSide.moreChildren += child(fmt.Sprintf("net%d", i), o, c, oursSide.esp)
	}
}

// childNames are the installed CHILD_SAs of the one IKE SA of a view,
// sorted, or an error if there is not exactly one IKE SA.
func childNames(who string, v []ikeView) (string, error) {
	if len(v) != 1 {
		return "", fmt.Errorf("%s has %d established IKE SAs: %v", who, len(v), v)
	}
	var names []string
	for _, c := range v[0].children {
		names = append(names, c.name)
	}
	slices.Sort(names)
	return strings.Join(names, " "), nil
}

// TestInitiateChild: with three children configured and no IKE SA,
// `xdpsec initiate --child net2` brings up net2 alone (charon lists only
// it); initiating an installed child again negotiates nothing and fails
// naming the installed CHILD_SA, as swanctl --initiate --child does
// against charon; the other two come when asked for, each once, and
// charon never refuses one as a duplicate. IKEv2 and IKEv1.
func TestInitiateChild(t *testing.T) {
	for _, version := range []string{"ikev2", "ikev1"} {
		t.Run(version, func(t *testing.T) {
			e := newEnv(t, envOptions{})
			cs, os := pskPeers("aes128gcm16-prfsha256-x25519", "aes128gcm16")
			if version == "ikev1" {
				cs, os = v1Peers("aes128-sha256-modp2048", "aes128-sha256", "")
			}
			threeChildren(&cs, &os)
			// kernel-libipsec routes each remote subnet with a source
			// address from the child's local_ts.
			for i := 1; i <= 3; i++ {
				e.nsC.MustRun(t, "ip", "addr", "add", fmt.Sprintf("10.1.%d.1/32", i), "dev", "lo")
			}
			e.load(cs, os, nil, nil)
			want := func(names string) {
				t.Helper()
				waitFor(t, 15*time.Second, "CHILD_SAs "+names+" on both sides", func() error {
					c, err := childNames("charon", e.charonView())
					if err != nil {
						return err
					}
					o, err := childNames("xdpsec", e.oursView())
					if err != nil {
						return err
					}
					if c != names || o != names {
						return fmt.Errorf("charon has %q, xdpsec %q", c, o)
					}
					return nil
				})
				// Nothing else in any state either.
				if c, o := e.charon.sas(), e.ours.sas(); len(c) != 1 || len(o) != 1 || len(o[0].Children) != len(strings.Fields(names)) {
					t.Fatalf("charon:\n%s\nxdpsec:\n%s", e.charon.swanctl("--list-sas"), e.ours.cli("list-sas"))
				}
				e.agree(len(strings.Fields(names)))
			}
			again := func(child string) {
				t.Helper()
				out, err := e.ours.cliRun("initiate", "--child", child, "--timeout", "10s")
				if err == nil || !strings.Contains(out, "not establishing CHILD_SA "+child+" due to existing duplicate "+child+"{") {
					t.Fatalf("initiate --child %s while installed: %v\n%s", child, err, out)
				}
			}
			e.ours.cli("initiate", "--child", "net2", "--timeout", "30s")
			want("net2")
			again("net2")
			want("net2")
			e.ours.cli("initiate", "--child", "net", "--timeout", "30s")
			again("net2")
			e.ours.cli("initiate", "--child", "net3", "--timeout", "30s")
			again("net")
			again("net3")
			want("net net2 net3")
			if l := e.charon.log(); strings.Contains(l, "due to existing duplicate") {
				t.Error("charon refused a CHILD_SA as a duplicate")
			}
		})
	}
}
