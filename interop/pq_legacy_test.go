package interop

import (
	"strings"
	"testing"
	"time"
)

// Post-quantum proposals against a peer that does not do RFC 9242/9370:
// charon 5.9.8 (Debian 12) knows neither IKE_INTERMEDIATE nor the
// additional key exchange transform types. RFC 7296 §3.3.6 makes a
// proposal with a transform type the responder does not understand
// unacceptable, other proposals of the same SA payload processed as
// usual; so a configuration that must work with such peers lists a
// classical proposal beside the hybrid one, and one that lists only
// hybrids fails, with a log line on our side that says why.
// TestPQLegacyPeer runs our daemon's post-quantum configurations against
// charon 5.9.8, which lists only the classical proposal, each side
// initiating. Where an IKE SA comes up, the classical proposal is chosen
// on both sides and no IKE_INTERMEDIATE is exchanged; where it cannot,
// both sides say why and neither keeps an SA.
func TestPQLegacyPeer(t *testing.T) {
	for _, c := range []struct {
		name, ours string
		// up says for each role whether an IKE SA comes up.
		up map[string]bool
	}{
		// A classical proposal beside the hybrid: the fallback that works
		// with every peer.
		{"hybrid-then-classical", "aes256gcm16-prfsha384-x25519-ke1_mlkem768, aes256gcm16-prfsha384-x25519",
			map[string]bool{charonInitiates: true, oursInitiate: true}},
		// The additional exchange optional in the same proposal: we accept
		// charon's classical offer, but charon refuses our one proposal for
		// its unknown transform type.
		{"optional-hybrid", "aes256gcm16-prfsha384-x25519-ke1_mlkem768-ke1_none",
			map[string]bool{charonInitiates: true, oursInitiate: false}},
		{"hybrid-only", "aes256gcm16-prfsha384-x25519-ke1_mlkem768",
			map[string]bool{charonInitiates: false, oursInitiate: false}},
	} {
		forRoles(t, c.name, func(t *testing.T, role string) {
			e := newEnv(t, envOptions{})
			cs, os := pskPeers("aes256gcm16-prfsha384-x25519", "aes256gcm16")
			os.proposals = c.ours
			e.load(cs, os, nil, nil)
			err := e.tryInitiate(role)
			if !c.up[role] {
				if err == nil {
					t.Fatal("an IKE SA came up with a peer that cannot do what we allow")
				}
				if role == oursInitiate {
					waitLog(t, "charon", e.charon.log, 5*time.Second, "/UNKNOWN_6_36", "received proposals unacceptable")
					waitLog(t, "xdpsec", e.ours.log, 5*time.Second, "received NO_PROPOSAL_CHOSEN notify")
				} else {
					waitLog(t, "xdpsec", e.ours.log, 5*time.Second, "no proposal found")
				}
				waitFor(t, 5*time.Second, "no IKE SA on either side", func() error {
					if c, o := e.charonView(), e.oursView(); len(c) != 0 || len(o) != 0 {
						return errNotYet
					}
					return nil
				})
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			e.agree(1)
			if got := e.charonSA().get("dh-group"); got != "CURVE_25519" {
				t.Errorf("charon's key exchange %q, want CURVE_25519", got)
			}
			if p := e.oursSA().Proposal; p != "IKE:AES_GCM_16_256/PRF_HMAC_SHA2_384/CURVE_25519" {
				t.Errorf("our IKE SA's proposal %q, want the classical one", p)
			}
			for who, log := range map[string]func() string{"charon": e.charon.log, "xdpsec": e.ours.log} {
				if strings.Contains(log(), "IKE_INTERMEDIATE") {
					t.Errorf("%s logged an IKE_INTERMEDIATE exchange with a peer that does not do it", who)
				}
			}
			if role == oursInitiate {
				// We announced IKE_INTERMEDIATE; charon 5.9 ignores the notify.
				waitLog(t, "xdpsec", e.ours.log, 5*time.Second, "N(IKE_INT_SUP)")
			}
		})
	}
}
