package interop

import (
	"strings"
	"testing"
	"time"

	"github.com/xdpsec/xdpsec/ike/iketest"
)

// failure is a misconfiguration and what each side must log about it,
// as initiator and as responder.
type failure struct {
	name string
	// setup changes the peers (and gives their files).
	setup func(t *testing.T, cs, os *peer) (charonFiles, oursFiles map[string][]byte)
	// ikeSurvives: the IKE SA is established, only the CHILD_SA fails.
	ikeSurvives bool
	// Log lines, by which side logs them in which role.
	charonAsResponder, oursAsInitiator []string
	charonAsInitiator, oursAsResponder []string
}

var failures = []failure{
	{
		name: "ike-proposal-mismatch",
		setup: func(t *testing.T, cs, os *peer) (map[string][]byte, map[string][]byte) {
			cs.proposals = "aes256-sha256-modp2048"
			os.proposals = "aes128gcm16-prfsha256-x25519"
			return nil, nil
		},
		charonAsResponder: []string{"received proposals: IKE:AES_GCM_16_128/PRF_HMAC_SHA2_256/CURVE_25519",
			"configured proposals: IKE:AES_CBC_256/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_2048", "received proposals unacceptable"},
		oursAsInitiator:   []string{"received NO_PROPOSAL_CHOSEN notify error"},
		charonAsInitiator: []string{"received NO_PROPOSAL_CHOSEN notify error"},
		oursAsResponder: []string{"received proposals: IKE:AES_CBC_256/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_2048",
			"configured proposals: IKE:AES_GCM_16_128/PRF_HMAC_SHA2_256/CURVE_25519", "no proposal found"},
	},
	{
		name: "esp-proposal-mismatch",
		setup: func(t *testing.T, cs, os *peer) (map[string][]byte, map[string][]byte) {
			cs.esp = "aes256-sha256"
			os.esp = "aes128gcm16"
			return nil, nil
		},
		ikeSurvives:       true,
		charonAsResponder: []string{"received proposals: ESP:AES_GCM_16_128/NO_EXT_SEQ", "configured proposals: ESP:AES_CBC_256/HMAC_SHA2_256_128/NO_EXT_SEQ", "no acceptable proposal found"},
		oursAsInitiator:   []string{"received NO_PROPOSAL_CHOSEN notify, no CHILD_SA built"},
		charonAsInitiator: []string{"received NO_PROPOSAL_CHOSEN notify, no CHILD_SA built"},
		oursAsResponder:   []string{"received proposals: ESP:AES_CBC_256/HMAC_SHA2_256_128/NO_EXT_SEQ", "configured proposals: ESP:AES_GCM_16_128/NO_EXT_SEQ"},
	},
	{
		name: "psk-mismatch",
		setup: func(t *testing.T, cs, os *peer) (map[string][]byte, map[string][]byte) {
			os.psk = "not the secret charon has"
			return nil, nil
		},
		charonAsResponder: []string{"tried 1 shared key for 'moon.example.org' - 'sun.example.org', but MAC mismatched", "generating IKE_AUTH response 1 [ N(AUTH_FAILED) ]"},
		oursAsInitiator:   []string{"received AUTHENTICATION_FAILED notify error"},
		charonAsInitiator: []string{"received AUTHENTICATION_FAILED notify error"},
		oursAsResponder:   []string{"tried 1 shared key for 'sun.example.org' - 'moon.example.org', but MAC mismatched", "N(AUTH_FAILED)"},
	},
	{
		name: "identity-mismatch",
		setup: func(t *testing.T, cs, os *peer) (map[string][]byte, map[string][]byte) {
			// charon wants another identity than ours; the PSK is for both.
			cs.remoteID = "venus.example.org"
			os.psk, cs.psk = "", ""
			secrets := "secrets {\n  ike-1 {\n    id-1 = moon.example.org\n    id-2 = sun.example.org\n    id-3 = venus.example.org\n    secret = \"s3cr3t s3cr3t\"\n  }\n}\n"
			cs.trailer, os.trailer = secrets, secrets
			return nil, nil
		},
		charonAsResponder: []string{"looking for peer configs matching 10.99.0.1[moon.example.org]...10.99.0.2[sun.example.org]", "no matching peer config found", "N(AUTH_FAILED)"},
		oursAsInitiator:   []string{"received AUTHENTICATION_FAILED notify error"},
		// charon sends IDr venus.example.org, which we are not.
		charonAsInitiator: []string{"received AUTHENTICATION_FAILED notify error"},
		oursAsResponder:   []string{"looking for peer configs matching 10.99.0.2[venus.example.org]...10.99.0.1[moon.example.org]", "no matching peer config found", "N(AUTH_FAILED)"},
	},
	{
		name: "ts-mismatch",
		setup: func(t *testing.T, cs, os *peer) (map[string][]byte, map[string][]byte) {
			cs.remoteTS = "10.3.0.0/16"
			return nil, nil
		},
		ikeSurvives:       true,
		charonAsResponder: []string{"traffic selectors 10.1.0.0/16 === 10.2.0.0/16 unacceptable", "N(TS_UNACCEPT)"},
		oursAsInitiator:   []string{"received TS_UNACCEPTABLE notify, no CHILD_SA built"},
		charonAsInitiator: []string{"received TS_UNACCEPTABLE notify, no CHILD_SA built"},
		oursAsResponder:   []string{"config: 10.2.0.0/16, received: 10.3.0.0/16 => no match", "traffic selectors 10.3.0.0/16 === 10.1.0.0/16 unacceptable", "N(TS_UNACCEPT)"},
	},
	{
		name: "unknown-ca",
		setup: func(t *testing.T, cs, os *peer) (map[string][]byte, map[string][]byte) {
			ca := iketest.NewCA(t, "xdpsec interop CA", nil)
			other := iketest.NewCA(t, "another CA", nil)
			// Each side trusts only the CA of its own certificate.
			ckey, ccert := endEntity(t, other, "ecdsa", "moon.example.org", charonAddr)
			okey, ocert := endEntity(t, ca, "ecdsa", "sun.example.org", oursAddr)
			for _, p := range []*peer{cs, os} {
				p.localAuth, p.remoteAuth, p.psk, p.cert = "pubkey", "pubkey", "", "peer.pem"
			}
			return certFiles(t, other, ckey, ccert), certFiles(t, ca, okey, ocert)
		},
		charonAsResponder: []string{`no issuer certificate found for "C=CH, O=xdpsec, CN=sun.example.org"`, "no trusted ECDSA public key found for 'sun.example.org'", "N(AUTH_FAILED)"},
		oursAsInitiator:   []string{"received AUTHENTICATION_FAILED notify error"},
		charonAsInitiator: []string{"received AUTHENTICATION_FAILED notify error"},
		oursAsResponder:   []string{"no trusted ECDSA public key found for 'moon.example.org'", "N(AUTH_FAILED)"},
	},
}

// TestFailures makes each misconfiguration fail with either side
// initiating and checks both logs name the failure, charon's way.
func TestFailures(t *testing.T) {
	for _, f := range failures {
		forRoles(t, f.name, func(t *testing.T, role string) {
			e := newEnv(t, envOptions{})
			cs, os := pskPeers("aes128gcm16-prfsha256-x25519", "aes128gcm16")
			cf, of := f.setup(t, &cs, &os)
			e.load(cs, os, cf, of)
			if err := e.tryInitiate(role); err == nil {
				t.Fatalf("%s: initiate succeeded", role)
			}
			charonWants, oursWants := f.charonAsResponder, f.oursAsInitiator
			if role == charonInitiates {
				charonWants, oursWants = f.charonAsInitiator, f.oursAsResponder
			}
			waitLog(t, "charon", e.charon.log, 10*time.Second, charonWants...)
			waitLog(t, "xdpsec", e.ours.log, 10*time.Second, oursWants...)
			if f.ikeSurvives {
				// The IKE SA stays on both sides, without CHILD_SA.
				waitFor(t, 10*time.Second, "the IKE SA without CHILD_SA on both sides", func() error {
					c, o := e.charonView(), e.oursView()
					if len(c) != 1 || len(o) != 1 || c[0].String() != o[0].String() || len(c[0].children) != 0 {
						return errNotYet
					}
					return nil
				})
				return
			}
			e.waitNoSAs("no IKE SA left on either side")
			if strings.Contains(e.ours.log(), "panic") {
				t.Error("our daemon panicked")
			}
		})
	}
}
