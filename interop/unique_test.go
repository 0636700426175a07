package interop

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestInitialContact restarts one side without its SAs (SIGKILL, no
// DELETE reaches the other) and has it initiate again: its IKE_AUTH (or
// IKEv1 Main Mode message 5) carries INITIAL_CONTACT (RFC 7296 section
// 2.4, RFC 2407 section 4.6.3.3) and the other side, with the default
// unique = no, destroys the stale IKE SA and its CHILD_SA, leaving
// exactly one of each.
func TestInitialContact(t *testing.T) {
	for _, version := range []string{"ikev2", "ikev1"} {
		t.Run(version, func(t *testing.T) { initialContact(t, version) })
	}
}

func initialContact(t *testing.T, version string) {
	peers := func() (peer, peer) { return pskPeers("aes128gcm16-prfsha256-x25519", "aes128gcm16") }
	sent := "N(INIT_CONTACT)"
	if version == "ikev1" {
		peers = func() (peer, peer) { return v1Peers("aes128-sha256-modp2048", "aes128-sha256", "") }
		sent = "[ ID HASH N(INITIAL_CONTACT) ]"
	}
	t.Run("xdpsec-restarts", func(t *testing.T) {
		e := newEnv(t, envOptions{})
		cs, os_ := peers()
		e.load(cs, os_, nil, nil)
		e.initiate(oursInitiate)
		e.agree(1)
		// SIGKILL, and an empty state file: refused, the daemon starts
		// with no IKE SA.
		e.ours.cmd.Process.Kill()
		<-e.ours.exited
		e.ours.cmd = nil
		if err := os.WriteFile(filepath.Join(e.ours.dir, "ike-state.json"), nil, 0o600); err != nil {
			t.Fatal(err)
		}
		e.ours.start()
		e.initiate(oursInitiate)
		waitLog(t, "xdpsec", e.ours.log, 5*time.Second, sent)
		waitLog(t, "charon", e.charon.log, 10*time.Second, "destroying duplicate IKE_SA for peer 'sun.example.org', received INITIAL_CONTACT")
		e.wantOnePair()
	})
	t.Run("charon-restarts", func(t *testing.T) {
		e := newEnv(t, envOptions{})
		cs, os_ := peers()
		e.load(cs, os_, nil, nil)
		e.initiate(charonInitiates)
		e.agree(1)
		e.charon.kill()
		e.charon = startCharon(t, e.nsC, "")
		e.charon.load(cs.conf(), nil)
		e.initiate(charonInitiates)
		waitLog(t, "charon", e.charon.log, 5*time.Second, sent)
		waitLog(t, "xdpsec", e.ours.log, 10*time.Second, "destroying duplicate IKE_SA for peer 'moon.example.org', received INITIAL_CONTACT")
		e.wantOnePair()
	})
}

// wantOnePair waits until each side lists exactly one IKE SA with one
// installed CHILD_SA, the same on both (charon's swanctl --list-sas,
// our list-sas).
func (e *env) wantOnePair() {
	e.t.Helper()
	e.agree(1)
	waitFor(e.t, 10*time.Second, "one IKE SA and one CHILD_SA on each side", func() error {
		c, o := e.charon.sas(), e.ours.sas()
		if len(c) != 1 || len(o) != 1 {
			return fmt.Errorf("charon has %d IKE SAs, xdpsec %d", len(c), len(o))
		}
		if n := len(c[0].sub("child-sas").sections); n != 1 {
			return fmt.Errorf("charon's IKE SA has %d CHILD_SAs", n)
		}
		if n := len(o[0].Children); n != 1 {
			return fmt.Errorf("our IKE SA has %d CHILD_SAs", n)
		}
		return nil
	})
	e.agree(1)
}
