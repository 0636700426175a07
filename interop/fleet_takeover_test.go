package interop

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xdpsec/xdpsec/internal/testenv"
)

// TestFleetTakeoverCharon: a fleet member's takeover against charon, without
// etcd. Our daemon A (dry-run, --checkpoint-child-keys) answers charon's
// IKE_SA; A is killed (SIGKILL: no DELETE, nothing saved on the way out);
// daemon B starts on the same address with --take-over A's state file. B
// installs the CHILD_SA (its outbound sequence numbers moved on) and
// synchronises the message IDs with charon (RFC 6311), which keeps its
// IKE_SA with the same SPIs; charon's liveness checks, a CHILD_SA rekey by
// charon and an IKE rekey by B work afterwards (mid-sync). Where our
// daemon initiated, charon did not announce support and B rekeys the
// IKE_SA instead (ike-rekey).
func TestFleetTakeoverCharon(t *testing.T) {
	t.Run("mid-sync", func(t *testing.T) { testFleetTakeoverMIDSync(t, 0) })
	// B starts 5 s after the kill: charon's liveness check (3 s idle) is
	// in flight, unanswered, when the MID sync comes; charon sends it
	// again with the synchronised ID.
	t.Run("mid-sync-peer-busy", func(t *testing.T) { testFleetTakeoverMIDSync(t, 5*time.Second) })
	t.Run("ike-rekey", testFleetTakeoverRekey)
}

// killAndTakeOver SIGKILLs our daemon A once its state file holds the
// CHILD_SA's keys (and, with midSync, the peer's announcement) and settle
// has passed, and starts daemon B on the same address taking A's state
// over gap after the kill.
func (e *env) killAndTakeOver(conf string, midSync bool, settle, gap time.Duration) *ours {
	t := e.t
	t.Helper()
	statePath := filepath.Join(e.ours.dir, "ike-state.json")
	waitFor(t, 10*time.Second, "the CHILD_SA's keys in A's state file", func() error {
		b, err := os.ReadFile(statePath)
		defer clear(b)
		if err != nil {
			return err
		}
		if !strings.Contains(string(b), `"Keys"`) || strings.Contains(string(b), `"PeerMIDSync":true`) != midSync {
			return errNotYet
		}
		return nil
	})
	time.Sleep(settle)
	e.ours.cmd.Process.Kill()
	<-e.ours.exited
	e.ours.cmd = nil
	killedAt := time.Now()
	time.Sleep(gap)
	b := startOursWith(t, e.ours.bin, e.nsO, conf, []string{"--checkpoint-child-keys", "--take-over", statePath})
	e.ours = b
	waitLog(t, "xdpsec daemon B", b.log, 15*time.Second, "took over 1 of 1 IKE_SAs")
	t.Logf("takeover: B took over %v after the SIGKILL", time.Since(killedAt).Round(time.Millisecond))
	if !strings.Contains(b.log(), "oseq 1048576") {
		t.Error("B's outbound SA was not installed with its sequence numbers moved on")
	}
	return b
}

func testFleetTakeoverMIDSync(t *testing.T, gap time.Duration) {
	e := newEnv(t, envOptions{daemonArgs: []string{"--checkpoint-child-keys"}})
	cs, os_ := pskPeers("aes128gcm16-prfsha256-x25519", "aes128gcm16")
	cs.connExtra = "    dpd_delay = 3s\n"
	e.load(cs, os_, nil, nil)
	// charon initiates: its IKE_AUTH request announces
	// IKEV2_MESSAGE_ID_SYNC_SUPPORTED, and it takes ours from the
	// response (charon 5.9.8 answers a MID sync only then).
	e.initiate(charonInitiates)
	before := e.agree(1)
	waitLog(t, "xdpsec daemon", e.ours.log, 10*time.Second, "N(MSG_ID_SYN_SUP)")

	// A few liveness checks move the message IDs on after the checkpoint
	// was written first.
	b := e.killAndTakeOver(os_.conf(), true, 4*time.Second, gap)

	start := time.Now()
	waitLog(t, "xdpsec daemon B", b.log, 15*time.Second, "generating INFORMATIONAL request 0 [ N(MSG_ID_SYN) ]", "synchronised: initiating")
	waitLog(t, "charon", e.charon.log, 10*time.Second, "responder requested MID sync")
	t.Logf("takeover: message IDs synchronised %v after B took over", time.Since(start).Round(time.Millisecond))
	if gap > 0 {
		// charon's last request before the sync went unanswered.
		l := e.charon.log()
		l = l[:strings.Index(l, "responder requested MID sync")]
		i := strings.LastIndex(l, "generating INFORMATIONAL request ")
		if i < 0 {
			t.Fatal("charon sent no request before the MID sync")
		}
		id, _, _ := strings.Cut(l[i+len("generating INFORMATIONAL request "):], " ")
		if strings.Contains(l, "parsed INFORMATIONAL response "+id+" ") {
			t.Fatalf("charon's request %s was answered before the MID sync: no request in flight", id)
		}
	}

	after := e.agree(1)
	if after[0].spiI != before[0].spiI || after[0].spiR != before[0].spiR || after[0].children[0].spiIn != before[0].children[0].spiIn {
		t.Fatalf("charon's IKE_SA changed: %v then %v", before, after)
	}
	if n := strings.Count(e.charon.log(), "IKE_SA c[1] established"); n != 1 {
		t.Errorf("charon established its IKE_SA %d times, want once (no new negotiation)", n)
	}

	// charon's DPD (dpd_delay 3s) goes out in the new window and is answered.
	waitFor(t, 15*time.Second, "a liveness check of charon answered by B", func() error {
		l := e.charon.log()
		i := strings.Index(l, "responder requested MID sync")
		if i < 0 || !strings.Contains(l[i:], "parsed INFORMATIONAL response") {
			return errNotYet
		}
		return nil
	})

	// A CHILD_SA rekey by charon, then an IKE rekey by B.
	e.rekeyChild(charonInitiates)
	e.waitChildReplaced(before[0].children[0].spiIn)
	e.rekeyIKE(oursInitiate)
	waitFor(t, 15*time.Second, "the new IKE SA on both sides", func() error {
		c, o := e.charonView(), e.oursView()
		if len(c) != 1 || len(o) != 1 || c[0].spiI == before[0].spiI || o[0].spiI != c[0].spiI {
			return fmt.Errorf("charon %v, xdpsec %v", c, o)
		}
		return nil
	})
	e.agree(1)
	if strings.Contains(e.charon.log(), "giving up after") {
		t.Error("charon gave up on an exchange")
	}
}

// testFleetTakeoverRekey: our daemon initiated, so charon (which
// announces IKEV2_MESSAGE_ID_SYNC_SUPPORTED only as initiator) would not
// answer a MID sync: B rekeys the IKE_SA instead; the CHILD_SA stays.
func testFleetTakeoverRekey(t *testing.T) {
	e := newEnv(t, envOptions{daemonArgs: []string{"--checkpoint-child-keys"}})
	cs, os_ := pskPeers("aes128gcm16-prfsha256-x25519", "aes128gcm16")
	e.load(cs, os_, nil, nil)
	e.initiate(oursInitiate)
	before := e.agree(1)
	b := e.killAndTakeOver(os_.conf(), false, 0, 0)
	waitLog(t, "xdpsec daemon B", b.log, 15*time.Second, "rekeying IKE_SA")
	waitFor(t, 15*time.Second, "the new IKE SA on both sides", func() error {
		c, o := e.charonView(), e.oursView()
		if len(c) != 1 || len(o) != 1 || c[0].spiI == before[0].spiI || o[0].spiI != c[0].spiI {
			return fmt.Errorf("charon %v, xdpsec %v", c, o)
		}
		return nil
	})
	after := e.agree(1)
	if after[0].children[0].spiIn != before[0].children[0].spiIn {
		t.Errorf("the CHILD_SA changed: %v then %v", before, after)
	}
	if strings.Contains(b.log(), "N(MSG_ID_SYN)") {
		t.Error("MID sync sent to a peer that did not announce it")
	}
	// The new IKE SA works both ways.
	e.rekeyChild(charonInitiates)
	e.waitChildReplaced(before[0].children[0].spiIn)
}

// startOursWith starts our daemon with this swanctl.conf in place from
// the start (a takeover needs the connections before anything else).
func startOursWith(t *testing.T, bin string, ns *testenv.Netns, conf string, args []string) *ours {
	t.Helper()
	dir := t.TempDir()
	o := &ours{t: t, bin: bin, dir: dir, conf: filepath.Join(dir, "swanctl.conf"), sock: filepath.Join(dir, "xdpsec.sock"), vici: filepath.Join(dir, "charon.vici"),
		logPath: filepath.Join(dir, "daemon.log"), ns: ns, args: args}
	if err := os.WriteFile(o.conf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(o.stop)
	logsOnFailure(t, "xdpsec daemon B", o.logPath)
	o.start()
	return o
}
