package swanctl

import (
	"strings"
	"testing"
	"time"
)

const radiusConf = `radius {
  servers {
    primary {
      address = 192.0.2.9
      secret = "s3cret"
      auth_port = 11812
      preference = 10
    }
    backup {
      address = radius.example.org
      secret = other
    }
  }
  timeout = 500ms
  retransmit_tries = 2
  accounting = yes
  accounting_interval = 5m
  nas_identifier = gw1
  use_framed_ip = yes
}
`

const settingsFile = "/etc/xdpsec/xdpsec.conf"

// TestLoadSettings reads the radius section of xdpsec.conf.
func TestLoadSettings(t *testing.T) {
	st, err := LoadSettings(FromFS(memFS(map[string]string{"xdpsec.conf": radiusConf})), settingsFile)
	if err != nil {
		t.Fatal(err)
	}
	r := st.Radius
	if r == nil || len(r.Servers) != 2 {
		t.Fatalf("radius %+v", r)
	}
	p, b := r.Servers[0], r.Servers[1]
	if p.Name != "primary" || p.Address != "192.0.2.9" || string(p.Secret.Bytes()) != "s3cret" || p.AuthPort != 11812 || p.AcctPort != 0 || p.Preference != 10 {
		t.Errorf("primary %+v", p)
	}
	if b.Name != "backup" || b.Address != "radius.example.org" || string(b.Secret.Bytes()) != "other" {
		t.Errorf("backup %+v", b)
	}
	if r.Timeout != 500*time.Millisecond || r.RetransmitTries != 2 || !r.Accounting || r.AccountingInterval != 5*time.Minute || r.NASIdentifier != "gw1" || !r.UseFramedIP {
		t.Errorf("radius %+v", r)
	}
}

// TestSettingsErrors: each mistake names its file, line and key.
func TestSettingsErrors(t *testing.T) {
	for _, tc := range []struct{ name, from, to, want string }{
		{"unknown key", "accounting = yes", "acounting = yes", settingsFile + `:16: radius.acounting: unknown key`},
		{"bad port", "auth_port = 11812", "auth_port = 70000", settingsFile + `:6: radius.servers.primary.auth_port`},
		{"no secret", `secret = "s3cret"`, "", settingsFile + `:3: radius.servers.primary: missing secret`},
		{"no address", "address = radius.example.org", "", settingsFile + `:9: radius.servers.backup: missing address`},
		{"zero tries", "retransmit_tries = 2", "retransmit_tries = 0", settingsFile + `:15: radius.retransmit_tries: `},
		{"bad bool", "use_framed_ip = yes", "use_framed_ip = maybe", settingsFile + `:19: radius.use_framed_ip`},
		{"short interval", "accounting_interval = 5m", "accounting_interval = 10s", settingsFile + `:17: radius.accounting_interval: accounting_interval must be 0 (off) or at least 60s`},
		{"charon only", "timeout = 500ms", "retransmit_base = 1.4", settingsFile + `:14: radius.retransmit_base: not supported yet`},
		{"other section", "radius {", "eap-radius {", settingsFile + `:1: eap-radius: unknown section (expected radius or fleet)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conf := strings.Replace(radiusConf, tc.from, tc.to, 1)
			_, err := LoadSettings(FromFS(memFS(map[string]string{"xdpsec.conf": conf})), settingsFile)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want %s", err, tc.want)
			}
			if err != nil && strings.Contains(err.Error(), "s3cret") {
				t.Errorf("an error quotes the secret: %v", err)
			}
		})
	}
}
