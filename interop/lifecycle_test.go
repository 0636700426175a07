package interop

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/xdpsec/xdpsec/internal/testenv"
)

// other is the role of the other side.
func other(role string) string {
	if role == charonInitiates {
		return oursInitiate
	}
	return charonInitiates
}

// actor names the side a role stands for in rekey and delete tests.
func actor(role string) string {
	if role == charonInitiates {
		return "charon"
	}
	return "xdpsec"
}

// TestRekey rekeys the CHILD_SA and the IKE SA from each side; the side
// that rekeys is the one that did not initiate, so rekeys run against
// the direction of the first exchanges too.
func TestRekey(t *testing.T) {
	forRoles(t, "child", func(t *testing.T, role string) {
		e := newEnv(t, envOptions{})
		cs, os := pskPeers("aes128gcm16-prfsha256-x25519", "aes256-sha256")
		e.load(cs, os, nil, nil)
		e.initiate(other(role))
		before := e.agree(1)
		for i := 0; i < 2; i++ {
			e.rekeyChild(role)
			e.waitChildReplaced(before[0].children[0].spiIn)
			before = e.agree(1)
		}
		if before[0].spiI != e.oursSA().SPIi {
			t.Error("the IKE SA changed with the CHILD_SA")
		}
		waitLog(t, "charon", e.charon.log, 5e9, "CHILD_SA net{3} established")
	})
	forRoles(t, "ike", func(t *testing.T, role string) {
		e := newEnv(t, envOptions{})
		cs, os := pskPeers("aes256-sha256-modp2048", "aes128gcm16")
		e.load(cs, os, nil, nil)
		e.initiate(other(role))
		before := e.agree(1)
		e.rekeyIKE(role)
		waitFor(t, 15*time.Second, "the new IKE SA on both sides", func() error {
			c, o := e.charonView(), e.oursView()
			if len(c) != 1 || len(o) != 1 || c[0].spiI == before[0].spiI || o[0].spiI != c[0].spiI {
				return fmt.Errorf("charon %v, xdpsec %v", c, o)
			}
			return nil
		})
		after := e.agree(1)
		if after[0].children[0].spiIn != before[0].children[0].spiIn {
			t.Errorf("the CHILD_SA changed with the IKE SA: %v then %v", before, after)
		}
		// The new IKE SA's keys work both ways: a CHILD_SA rekey from
		// each side over it.
		for _, r := range roles {
			spi := e.agree(1)[0].children[0].spiIn
			e.rekeyChild(r)
			e.waitChildReplaced(spi)
		}
		e.agree(1)
		if sa := e.charonSA(); (sa.get("initiator") == "yes") != (role == charonInitiates) {
			t.Errorf("charon's initiator flag after a rekey by %s: %q", actor(role), sa.get("initiator"))
		}
	})
}

// waitChildReplaced waits until charon's installed CHILD_SA is no longer
// the one with this inbound SPI.
func (e *env) waitChildReplaced(oldSPIIn string) {
	e.t.Helper()
	waitFor(e.t, 15*time.Second, "the rekeyed CHILD_SA", func() error {
		v := e.charonView()
		if len(v) != 1 || len(v[0].children) != 1 || v[0].children[0].spiIn == oldSPIIn {
			return fmt.Errorf("charon: %v", v)
		}
		return nil
	})
}

// TestDelete deletes the CHILD_SA, then the IKE SA, from each side.
func TestDelete(t *testing.T) {
	forRoles(t, "child", func(t *testing.T, role string) {
		e := newEnv(t, envOptions{})
		cs, os := pskPeers("aes128gcm16-prfsha256-x25519", "aes128gcm16")
		e.load(cs, os, nil, nil)
		e.initiate(other(role))
		e.agree(1)
		if role == charonInitiates {
			e.charon.swanctl("--terminate", "--child", "net")
		} else {
			e.ours.cli("terminate", "--child", "net")
		}
		waitFor(t, 10*time.Second, "the CHILD_SA gone on both sides, the IKE SA kept", func() error {
			c, o := e.charonView(), e.oursView()
			if len(c) != 1 || len(o) != 1 || len(c[0].children) != 0 || len(o[0].children) != 0 || c[0].spiI != o[0].spiI {
				return fmt.Errorf("charon %v, xdpsec %v", c, o)
			}
			return nil
		})
		// The IKE SA still carries new CHILD_SAs.
		e.initiate(role)
		e.agree(1)
	})
	forRoles(t, "ike", func(t *testing.T, role string) {
		e := newEnv(t, envOptions{})
		cs, os := pskPeers("aes128gcm16-prfsha256-x25519", "aes128gcm16")
		e.load(cs, os, nil, nil)
		e.initiate(other(role))
		e.agree(1)
		if role == charonInitiates {
			e.charon.swanctl("--terminate", "--ike", "c")
		} else {
			e.ours.cli("terminate", "--ike", "c")
		}
		e.waitNoSAs("the IKE SA gone on both sides")
		if role == charonInitiates {
			waitLog(t, "xdpsec", e.ours.log, 5e9, "received DELETE for IKE_SA c[1]")
		} else {
			waitLog(t, "charon", e.charon.log, 5e9, "received DELETE for IKE_SA c[1]")
		}
	})
}

// TestRekeyCollision has both sides rekey the same SA at the same moment
// (RFC 7296 2.8.1 and 2.8.2): the nonces decide, both sides end with
// one and the same successor. Each side's first rekey request is dropped,
// so that both are outstanding when the retransmits arrive.
func TestRekeyCollision(t *testing.T) {
	for _, what := range []string{"child", "ike"} {
		forRoles(t, what, func(t *testing.T, role string) {
			e := newEnv(t, envOptions{charonSettings: "\tretransmit_timeout = 1.0\n\tretransmit_base = 1.2\n",
				daemonArgs: []string{"--retransmit-timeout", "1s", "--retransmit-base", "1.2"}})
			cs, os := pskPeers("aes128gcm16-prfsha256-x25519", "aes128gcm16")
			e.load(cs, os, nil, nil)
			e.initiate(role)
			before := e.agree(1)
			for _, ns := range []*testenv.Netns{e.nsC, e.nsO} {
				nft(t, ns, "add table inet loss; add chain inet loss out { type filter hook output priority 0; }; "+
					"add rule inet loss out udp dport 4500 quota until 400 bytes counter drop")
			}
			done := make(chan string, 2)
			for _, r := range roles {
				go func() {
					var out string
					var err error
					if r == charonInitiates {
						out, err = e.charon.swanctlRun("--rekey", "--"+what, map[string]string{"child": "net", "ike": "c"}[what])
					} else {
						out, err = e.ours.cliRun("rekey", "--"+what, map[string]string{"child": "net", "ike": "c"}[what], "--timeout", "20s")
					}
					if err != nil {
						done <- fmt.Sprintf("%s: %v\n%s", actor(r), err, out)
						return
					}
					done <- ""
				}()
			}
			for range roles {
				if msg := <-done; msg != "" {
					t.Log(msg) // one side may find its SA already replaced
				}
			}
			waitFor(t, 20*time.Second, "one successor on both sides", func() error {
				c, o := e.charonView(), e.oursView()
				if len(c) != 1 || len(o) != 1 || len(c[0].children) != 1 || c[0].String() != o[0].String() {
					return fmt.Errorf("charon %v, xdpsec %v", c, o)
				}
				if what == "child" && c[0].children[0].spiIn == before[0].children[0].spiIn {
					return errNotYet
				}
				if what == "ike" && c[0].spiI == before[0].spiI {
					return errNotYet
				}
				return nil
			})
			// Whichever retransmit arrives first completes its rekey; the
			// other side at least sees its own rekey collide (with the
			// peer's rekey or with the delete of the SA it rekeys).
			if !strings.Contains(e.charon.log(), "collision") && !strings.Contains(e.ours.log(), "rekey collision") {
				t.Error("no rekey collision in either log")
			}
			// Nothing is left behind once the dust settles: no extra IKE
			// SA or CHILD_SA in any state on either side.
			time.Sleep(2 * time.Second)
			if c, o := e.charon.sas(), e.ours.sas(); len(c) != 1 || len(o) != 1 || len(o[0].Children) != 1 {
				t.Errorf("after the collision: charon\n%s\nxdpsec\n%s", e.charon.swanctl("--list-sas"), e.ours.cli("list-sas"))
			}
			e.agree(1)
		})
	}
}
