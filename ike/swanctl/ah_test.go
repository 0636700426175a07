package swanctl

import (
	"errors"
	"strings"
	"testing"

	"github.com/xdpsec/xdpsec/ike/transform"
)

func ahConf(childKeys string) map[string]string {
	return map[string]string{"swanctl.conf": `
connections {
	site {
		remote_addrs = 192.0.2.2
		children {
			net {
				local_ts = 10.1.0.0/16
				remote_ts = 10.2.0.0/16
` + childKeys + `
			}
		}
	}
}`}
}

// TestAHProposals: ah_proposals alone makes an AH CHILD_SA, without the
// default ESP proposals; with esp_proposals too, or with an encryption
// algorithm, it is an error naming the key.
func TestAHProposals(t *testing.T) {
	cfg := mustLoadMem(t, ahConf("ah_proposals = sha256-modp2048, sha1"))
	ch := cfg.Connections[0].Children[0]
	if got := transform.FormatProposals(ch.AHProposals); got != "AH:HMAC_SHA2_256_128/MODP_2048/NO_EXT_SEQ, AH:HMAC_SHA1_96/NO_EXT_SEQ" {
		t.Errorf("AH proposals %s", got)
	}
	if len(ch.ESPProposals) != 0 {
		t.Errorf("ESP proposals %v beside AH", ch.ESPProposals)
	}
	cfg = mustLoadMem(t, ahConf("ah_proposals = default"))
	if ch := cfg.Connections[0].Children[0]; len(ch.AHProposals) != 1 || ch.AHProposals[0].Protocol != transform.ProtoAH {
		t.Errorf("ah_proposals = default: %v", ch.AHProposals)
	}

	for _, tc := range []struct {
		keys, want string
		is         error
	}{
		{"ah_proposals = sha256\n\t\t\t\tesp_proposals = aes128gcm16", "children.net.ah_proposals: ah_proposals together with esp_proposals", ErrUnsupported},
		{"ah_proposals = aes128-sha256", "children.net.ah_proposals", ErrValue},
		{"ah_proposals = modp2048", "an integrity algorithm is mandatory in AH proposals", ErrValue},
	} {
		_, err := loadMem(t, ahConf(tc.keys))
		if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, tc.is) {
			t.Errorf("%q: error %v, want one containing %q", tc.keys, err, tc.want)
		}
	}
}
