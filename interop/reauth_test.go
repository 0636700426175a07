package interop

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestReauthTime: our side has reauth_time (and no rekey_time), so it
// reauthenticates the IKE SA it initiated: a new IKE SA with IKE_SA_INIT
// and a full IKE_AUTH, a new CHILD_SA, and the old ones deleted; charon
// ends with exactly one IKE SA (new SPIs) and one CHILD_SA. Both settings
// of --make-before-break with charon's default unique = no, and
// make-before-break with unique = replace at charon, which takes the new
// IKE SA from the same address for a reauthentication and keeps it.
func TestReauthTime(t *testing.T) {
	for _, v := range []struct{ mbb, unique string }{{"yes", ""}, {"no", ""}, {"yes", "replace"}} {
		name := "make-before-break=" + v.mbb
		if v.unique != "" {
			name += ",unique=" + v.unique
		}
		mbb := v.mbb
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, envOptions{daemonArgs: []string{"--make-before-break=" + mbb}})
			cs, os_ := pskPeers("aes128gcm16-prfsha256-x25519", "aes128gcm16")
			if v.unique != "" {
				cs.connExtra = "    unique = " + v.unique + "\n"
			}
			os_.connExtra = "    reauth_time = 6s\n    over_time = 20s\n    rand_time = 0\n"
			e.load(cs, os_, nil, nil)
			e.initiate(oursInitiate)
			before := e.agree(1)
			waitLog(t, "xdpsec", e.ours.log, 15*time.Second, "reauthenticating IKE_SA c[1]", "initiating IKE_SA c[2]", "IKE_SA c[2] established")
			waitLog(t, "charon", e.charon.log, 10*time.Second, "deleting IKE_SA c[1]")
			if v.unique == "replace" {
				waitLog(t, "charon", e.charon.log, 5*time.Second,
					"schedule delete of duplicate IKE_SA for peer 'sun.example.org' due to uniqueness policy and suspected reauthentication")
			}
			e.wantOnePair()
			after := e.agree(1)
			if after[0].spiI == before[0].spiI || after[0].spiR == before[0].spiR {
				t.Fatalf("IKE SA not replaced: before %v, after %v", before[0], after[0])
			}
			if after[0].children[0].spiIn == before[0].children[0].spiIn {
				t.Fatalf("CHILD_SA not replaced: before %v, after %v", before[0], after[0])
			}
			// The new IKE_AUTH: full authentication, and INITIAL_CONTACT
			// only when the old IKE SA was gone first.
			auths := 0
			ic := 0
			for _, l := range strings.Split(e.ours.log(), "\n") {
				if strings.Contains(l, "generating IKE_AUTH request") {
					auths++
					if strings.Contains(l, "N(INIT_CONTACT)") {
						ic++
					}
				}
			}
			wantIC := 1
			if mbb == "no" {
				wantIC = 2
			}
			if auths != 2 || ic != wantIC {
				t.Fatalf("%d IKE_AUTH requests, %d with INITIAL_CONTACT; want 2 and %d", auths, ic, wantIC)
			}
			if mbb == "yes" {
				// Charon installed the new CHILD_SA before it deleted the old.
				log := e.charon.log()
				est := strings.Index(log, fmt.Sprintf("CHILD_SA net{%d} established", 2))
				del := strings.Index(log, "received DELETE for IKE_SA c[1]")
				if est < 0 || del < 0 || est > del {
					t.Fatalf("charon: new CHILD_SA at %d, DELETE of the old IKE SA at %d", est, del)
				}
			}
		})
	}
}
