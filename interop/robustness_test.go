package interop

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xdpsec/xdpsec/internal/testenv"
)

// Quick retransmissions on both sides, so that lost packets and dead
// peers show within seconds: 1s, then 1.2s, 1.44s, ...
const charonFastRetransmit = "\tretransmit_timeout = 1.0\n\tretransmit_base = 1.2\n\tretransmit_tries = 2\n"

var oursFastRetransmit = []string{"--retransmit-timeout", "1s", "--retransmit-base", "1.2", "--retransmit-tries", "2"}

// nft runs an nft command (rules separated by ';') in a namespace.
func nft(t *testing.T, ns *testenv.Netns, script string) {
	t.Helper()
	testenv.RequireCommand(t, "nft")
	ns.MustRun(t, "nft", script)
}

// sides returns the namespaces of the initiator and the responder of a role.
func (e *env) sides(role string) (initiator, responder *testenv.Netns) {
	if role == charonInitiates {
		return e.nsC, e.nsO
	}
	return e.nsO, e.nsC
}

// TestDPD kills one side and has the other find it dead by DPD: both
// sides are the survivor in turn, with either side having initiated.
func TestDPD(t *testing.T) {
	forRoles(t, "charon-killed", func(t *testing.T, role string) {
		e := newEnv(t, envOptions{daemonArgs: oursFastRetransmit})
		cs, os := pskPeers("aes128gcm16-prfsha256-x25519", "aes128gcm16")
		os.connExtra = "    dpd_delay = 2s\n"
		e.load(cs, os, nil, nil)
		e.initiate(role)
		e.agree(1)
		e.charon.kill()
		waitLog(t, "xdpsec", e.ours.log, 20*time.Second, "generating INFORMATIONAL request", "giving up after 2 retransmits")
		waitFor(t, 10*time.Second, "our IKE SA gone", func() error {
			if sas := e.ours.sas(); len(sas) != 0 {
				return fmt.Errorf("%d IKE SAs left", len(sas))
			}
			return nil
		})
	})
	forRoles(t, "xdpsec-killed", func(t *testing.T, role string) {
		e := newEnv(t, envOptions{charonSettings: charonFastRetransmit})
		cs, os := pskPeers("aes128gcm16-prfsha256-x25519", "aes128gcm16")
		cs.connExtra = "    dpd_delay = 2s\n"
		e.load(cs, os, nil, nil)
		e.initiate(role)
		e.agree(1)
		e.ours.cmd.Process.Signal(syscall.SIGKILL)
		<-e.ours.exited
		e.ours.cmd = nil
		waitLog(t, "charon", e.charon.log, 20*time.Second, "generating INFORMATIONAL request", "giving up after 2 retransmits")
		waitFor(t, 10*time.Second, "charon's IKE SA gone", func() error {
			if sas := e.charon.sas(); len(sas) != 0 {
				return fmt.Errorf("%d IKE SAs left", len(sas))
			}
			return nil
		})
	})
}

// TestRetransmit drops the initiator's first IKE_SA_INIT request and the
// responder's first IKE_AUTH response: the initiator retransmits both,
// the responder answers the IKE_AUTH retransmit from its cache.
func TestRetransmit(t *testing.T) {
	forRoles(t, "lossy", func(t *testing.T, role string) {
		e := newEnv(t, envOptions{charonSettings: "\tretransmit_timeout = 1.0\n\tretransmit_base = 1.2\n",
			daemonArgs: []string{"--retransmit-timeout", "1s", "--retransmit-base", "1.2"}})
		cs, os := pskPeers("aes128gcm16-prfsha256-x25519", "aes128gcm16")
		e.load(cs, os, nil, nil)
		ini, resp := e.sides(role)
		// A quota "until" matches while a datagram still fits in what is
		// left of it: with 300 bytes, only the first datagram (IKE_SA_INIT
		// and IKE_AUTH here are 200-300 bytes with their IP header).
		nft(t, ini, "add table inet loss; add chain inet loss out { type filter hook output priority 0; }; "+
			"add rule inet loss out udp dport 500 quota until 300 bytes counter drop")
		nft(t, resp, "add table inet loss; add chain inet loss out { type filter hook output priority 0; }; "+
			"add rule inet loss out udp sport 4500 quota until 300 bytes counter drop")
		e.initiate(role)
		e.agree(1)
		if role == charonInitiates {
			waitLog(t, "charon", e.charon.log, 5*time.Second, "retransmit 1 of request with message ID 0", "retransmit 1 of request with message ID 1")
			waitLog(t, "xdpsec", e.ours.log, 5*time.Second, "received retransmit of request with ID 1, retransmitting response")
		} else {
			waitLog(t, "xdpsec", e.ours.log, 5*time.Second, "sending retransmit 1 of request message ID 0", "sending retransmit 1 of request message ID 1")
			waitLog(t, "charon", e.charon.log, 5*time.Second, "received retransmit of request with ID 1, retransmitting response")
		}
		for _, ns := range []*testenv.Netns{ini, resp} {
			if out := ns.MustRun(t, "nft", "list table inet loss"); !strings.Contains(out, "counter packets 1 ") {
				t.Errorf("in %s the rule did not drop exactly one datagram:\n%s", ns.Name, out)
			}
		}
	})
}

// TestCookies has the responder demand a COOKIE (RFC 7296 2.6) because a
// half-open IKE SA (the decoy, whose IKE_AUTH is dropped) is over its
// threshold of 1: charon's when we initiate, ours when charon does.
func TestCookies(t *testing.T) {
	forRoles(t, "cookies", func(t *testing.T, role string) {
		// Our slow retransmissions keep our decoy half-open through the
		// test. charon's decoy must stay half-open only until charon
		// initiates "c" (it then completes on its retransmit), and charon
		// needs its retransmits: when our answer to its IKE_SA_INIT with
		// the COOKIE arrives while it still holds the IKE SA it sent that
		// from, it drops the answer ("ignoring request with ID 0, already
		// processing") and recovers only by retransmitting.
		e := newEnv(t, envOptions{charonSettings: "\tcookie_threshold = 1\n\tretransmit_timeout = 3\n",
			daemonArgs: []string{"--cookie-threshold", "1", "--retransmit-timeout", "60s"}})
		cs, os := pskPeers("aes128gcm16-prfsha256-x25519", "aes128gcm16")
		cs.decoy, os.decoy = true, true
		e.load(cs, os, nil, nil)
		ini, _ := e.sides(role)
		nft(t, ini, "add table inet blk; add chain inet blk out { type filter hook output priority 0; }; add rule inet blk out udp dport 4500 drop")
		if role == charonInitiates {
			e.charon.swanctlRun("--initiate", "--ike", "decoy", "--timeout", "1")
		} else {
			e.ours.cliRun("initiate", "--ike", "decoy", "--timeout", "1s")
		}
		waitFor(t, 10*time.Second, "the decoy half-open at the responder", func() error {
			if role == charonInitiates {
				if !strings.Contains(e.ours.log(), "generating IKE_SA_INIT response 0") {
					return errNotYet
				}
				return nil
			}
			if out := e.charon.swanctl("--stats"); !strings.Contains(out, "1 half-open") {
				return fmt.Errorf("charon: %s", out)
			}
			return nil
		})
		ini.MustRun(t, "nft", "delete table inet blk")
		e.initiate(role)
		e.agree(1)
		if role == charonInitiates {
			waitLog(t, "xdpsec", e.ours.log, 5*time.Second, "received packet without COOKIE while above cookie threshold, sending COOKIE")
			waitLog(t, "charon", e.charon.log, 5*time.Second, "received COOKIE notify")
		} else {
			waitLog(t, "xdpsec", e.ours.log, 5*time.Second, "received COOKIE notify, retrying with it")
			waitLog(t, "charon", e.charon.log, 5*time.Second, "generating IKE_SA_INIT response 0 [ N(COOKIE) ]")
		}
	})
}

// TestInvalidKE has each side prefer a different group: the responder
// answers the initiator's KE with INVALID_KE_PAYLOAD naming its own, in
// IKE_SA_INIT and in a CHILD_SA rekey with PFS.
func TestInvalidKE(t *testing.T) {
	groups := map[string]string{"x25519": "CURVE_25519", "ecp256": "ECP_256"}
	forRoles(t, "ike-sa-init", func(t *testing.T, role string) {
		e := newEnv(t, envOptions{})
		cs, os := pskPeers("aes128gcm16-prfsha256-x25519-ecp256", "aes128gcm16")
		os.proposals = "aes128gcm16-prfsha256-ecp256-x25519"
		e.load(cs, os, nil, nil)
		e.initiate(role)
		e.agree(1)
		sent, wanted := groups["x25519"], groups["ecp256"]
		iniLog, respLog := e.charon.log, e.ours.log
		if role == oursInitiate {
			sent, wanted = wanted, sent
			iniLog, respLog = respLog, iniLog
		}
		waitLog(t, "initiator", iniLog, 5*time.Second, fmt.Sprintf("peer didn't accept DH group %s, it requested %s", sent, wanted))
		waitLog(t, "responder", respLog, 5*time.Second, fmt.Sprintf("DH group %s unacceptable, requesting %s", sent, wanted))
		if g := e.charonSA().get("dh-group"); g != wanted {
			t.Errorf("charon's IKE SA uses %s, want %s", g, wanted)
		}
	})
	forRoles(t, "child-rekey", func(t *testing.T, role string) {
		e := newEnv(t, envOptions{})
		cs, os := pskPeers("aes128gcm16-prfsha256-x25519", "aes128gcm16-x25519-ecp256")
		os.esp = "aes128gcm16-ecp256-x25519"
		e.load(cs, os, nil, nil)
		e.initiate(role)
		old := e.agree(1)[0].children[0].spiIn
		e.rekeyChild(role)
		e.waitChildReplaced(old)
		e.agree(1)
		sent, wanted := groups["x25519"], groups["ecp256"]
		iniLog, respLog := e.charon.log, e.ours.log
		if role == oursInitiate {
			sent, wanted = wanted, sent
			iniLog, respLog = respLog, iniLog
		}
		waitLog(t, "rekey initiator", iniLog, 5*time.Second, fmt.Sprintf("peer didn't accept DH group %s, it requested %s", sent, wanted))
		waitLog(t, "rekey responder", respLog, 5*time.Second, fmt.Sprintf("DH group %s unacceptable, requesting %s", sent, wanted))
		if g := e.charonChild().get("dh-group"); g != wanted {
			t.Errorf("charon's CHILD_SA uses %s, want %s", g, wanted)
		}
	})
}
