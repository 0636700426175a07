package interop

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xdpsec/xdpsec/internal/daemon"
	"github.com/xdpsec/xdpsec/internal/fleet/fleettest"
)

// TestFleetEtcdFailoverCharon: charon's IKE_SA moves between two members
// of a fleet through etcd. Our daemon A (dry-run, an xdpsec.conf fleet
// section, follow = always for our address) starts before etcd does and
// joins once it answers, is elected and serves charon, saving the IKE
// SA's record (CHILD_SA keys in it) and its sequence numbers in etcd. A
// is SIGKILLed; daemon B, member b on the same address, campaigns, is
// elected once A's lease expired (TTL 2s), takes the IKE SA over from
// etcd and synchronises the message IDs with charon (RFC 6311): charon
// keeps its IKE_SA (same SPIs, established once) and its DPD is answered.
func TestFleetEtcdFailoverCharon(t *testing.T) {
	key := filepath.Join(t.TempDir(), "fleet.key")
	var k [32]byte
	rand.Read(k[:])
	if err := os.WriteFile(key, []byte(hex.EncodeToString(k[:])), 0o600); err != nil {
		t.Fatal(err)
	}
	settings := func(member string) string {
		p := filepath.Join(t.TempDir(), "xdpsec.conf")
		conf := fmt.Sprintf(`fleet {
   member = %s
   endpoints = http://127.0.0.1:2379
   key_file = %s
   lease_ttl = 2s
   checkpoint_interval = 200ms
   shared {
      wan {
         address = %s
         follow = always
      }
   }
}
`, member, key, oursAddr)
		if err := os.WriteFile(p, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	e := newEnv(t, envOptions{daemonArgs: []string{"--settings", settings("a")}})
	waitLog(t, "xdpsec daemon A", e.ours.log, 10*time.Second, "joining in the background")
	fleettest.StartWith(t, fleettest.Options{Netns: e.nsO, Port: 2379})
	waitLog(t, "xdpsec daemon A", e.ours.log, 15*time.Second, "fleet: joined as a", "fleet: elected for wan")

	cs, os_ := pskPeers("aes128gcm16-prfsha256-x25519", "aes128gcm16")
	cs.connExtra = "    dpd_delay = 2s\n"
	e.load(cs, os_, nil, nil)
	e.initiate(charonInitiates)
	before := e.agree(1)
	// A's record and a few DPDs' message IDs are in etcd.
	waitFor(t, 10*time.Second, "A's checkpoint with charon's IKE SA", func() error {
		resp, err := daemon.Call(e.ours.sock, daemon.Request{Command: daemon.CmdFleetStatus})
		if err != nil {
			return err
		}
		for _, m := range resp.Fleet.Members {
			if m.Name == "a" && m.IKESAs == 1 && m.CheckpointAge != nil {
				return nil
			}
		}
		return errNotYet
	})
	time.Sleep(3 * time.Second)

	e.ours.cmd.Process.Kill()
	<-e.ours.exited
	e.ours.cmd = nil
	killed := time.Now()
	b := startOursWith(t, e.ours.bin, e.nsO, os_.conf(), []string{"--settings", settings("b")})
	e.ours = b
	waitLog(t, "xdpsec daemon B", b.log, 15*time.Second, "took over 1 of 1 IKE_SAs")
	t.Logf("takeover: B took charon's IKE SA over %v after A's SIGKILL (lease TTL 2s)", time.Since(killed).Round(time.Millisecond))
	waitLog(t, "xdpsec daemon B", b.log, 10*time.Second, "generating INFORMATIONAL request 0 [ N(MSG_ID_SYN) ]", "synchronised: initiating")
	waitLog(t, "charon", e.charon.log, 10*time.Second, "responder requested MID sync")

	after := e.agree(1)
	if after[0].spiI != before[0].spiI || after[0].spiR != before[0].spiR || after[0].children[0].spiIn != before[0].children[0].spiIn {
		t.Fatalf("charon's IKE_SA changed: %v then %v", before, after)
	}
	if n := strings.Count(e.charon.log(), "IKE_SA c[1] established"); n != 1 {
		t.Errorf("charon established its IKE_SA %d times, want once (no new negotiation)", n)
	}
	waitFor(t, 15*time.Second, "a liveness check of charon answered by B", func() error {
		l := e.charon.log()
		i := strings.Index(l, "responder requested MID sync")
		if i < 0 || !strings.Contains(l[i:], "parsed INFORMATIONAL response") {
			return errNotYet
		}
		return nil
	})
	if strings.Contains(e.charon.log(), "giving up after") {
		t.Error("charon gave up on an exchange")
	}
}
