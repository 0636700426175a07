package interop

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xdpsec/xdpsec/ike/iketest"
	"github.com/xdpsec/xdpsec/internal/radius/radiustest"
)

// The eap-radius gateway: as raGateway, but the users are the RADIUS
// server's, and no secrets.eap entries exist here.
var raRadiusGateway = strings.NewReplacer("auth = eap-dynamic", "auth = eap-radius").Replace(raGateway[:strings.Index(raGateway, "secrets {")])

// TestEAPRadius runs charon as an EAP-MSCHAPv2 client of our gateway,
// which relays the EAP to a RADIUS server in its namespace: the right
// password (AUTH over the MSK from the MPPE keys), a wrong one, a user
// with a Framed-IP-Address, and the server gone silent.
func TestEAPRadius(t *testing.T) {
	e := newEnv(t, envOptions{charonSettings: "\tinstall_virtual_ip = yes\n"})
	const secret = "radius-interop-secret"
	var srv *radiustest.Server
	users := map[string]string{"carol": "carol's password", "bob": "bob's password", "frank": "frank's password"}
	framed := map[string]net.IP{"frank": net.IPv4(10, 9, 0, 7)}
	if err := e.nsO.Do(func() error {
		srv = radiustest.NewServer(t, secret, radiustest.EAPMSCHAPv2(t, users, framed))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	settings := filepath.Join(t.TempDir(), "xdpsec.conf")
	conf := fmt.Sprintf("radius {\n  servers {\n    r1 {\n      address = 127.0.0.1\n      auth_port = %d\n      secret = %s\n    }\n  }\n  timeout = 500ms\n  retransmit_tries = 2\n  use_framed_ip = yes\n}\n", srv.Port(), secret)
	if err := os.WriteFile(settings, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	e.ours.args = append(e.ours.args, "--settings", settings)
	e.ours.restart(false)

	ca := iketest.NewCA(t, "xdpsec interop CA", nil)
	okey, ocert := endEntity(t, ca, "ecdsa", "sun.example.org", oursAddr)
	e.ours.load(raRadiusGateway, map[string][]byte{"x509/peer.pem": pemCert(ocert), "private/peer.pem": pemKey(t, okey)})
	clients := "connections {\n" + raClient("carol", "eap-mschapv2") + raClient("bob", "eap-mschapv2") + raClient("frank", "eap-mschapv2") + "}\n" +
		`secrets {
  eap-carol {
    id = carol
    secret = "carol's password"
  }
  eap-bob {
    id = bob
    secret = "not bob's password"
  }
  eap-frank {
    id = frank
    secret = "frank's password"
  }
}
`
	e.charon.load(clients, map[string][]byte{"x509ca/ca.pem": pemCert(ca.Cert)})
	connect, vipOf := e.charon.connectUser, e.charon.vipOf

	t.Run("mschapv2", func(t *testing.T) {
		if out, err := connect("carol"); err != nil {
			t.Fatalf("carol: %v\n%s", err, out)
		}
		if vip := vipOf("carol"); vip != "10.3.200.1" {
			t.Errorf("carol's virtual IP %q, want 10.3.200.1", vip)
		}
		waitLog(t, "xdpsec", e.ours.log, 5e9, "RADIUS authentication of 'carol' successful", "EAP method EAP_RADIUS succeeded, MSK established",
			"authentication of 'carol' with EAP successful")
		waitLog(t, "charon", e.charon.log, 5e9, "authentication of 'sun.example.org' with EAP successful")
	})

	t.Run("wrong-password", func(t *testing.T) {
		if out, err := connect("bob"); err == nil {
			t.Fatalf("bob with a wrong password was let in:\n%s", out)
		}
		waitLog(t, "xdpsec", e.ours.log, 5e9, "RADIUS authentication of 'bob' failed", "EAP method EAP_RADIUS failed for peer bob: rejected by r1")
		waitLog(t, "charon", e.charon.log, 5e9, "received AUTHENTICATION_FAILED notify error")
	})

	t.Run("framed-ip", func(t *testing.T) {
		if out, err := connect("frank"); err != nil {
			t.Fatalf("frank: %v\n%s", err, out)
		}
		if vip := vipOf("frank"); vip != "10.9.0.7" {
			t.Errorf("frank's virtual IP %q, want the Framed-IP-Address 10.9.0.7", vip)
		}
	})

	t.Run("server-down", func(t *testing.T) {
		e.charon.swanctl("--terminate", "--ike", "carol", "--timeout", "10")
		srv.SetHandler(func(*radiustest.Request) *radiustest.Reply { return nil })
		if out, err := connect("carol"); err == nil {
			t.Fatalf("carol let in with the RADIUS server silent:\n%s", out)
		}
		waitLog(t, "xdpsec", e.ours.log, 5e9, "RADIUS server 'r1' (127.0.0.1:", "is not responding", "EAP method EAP_RADIUS failed for peer carol: no answer")
		waitLog(t, "charon", e.charon.log, 5e9, "received AUTHENTICATION_FAILED notify error")
	})
}
