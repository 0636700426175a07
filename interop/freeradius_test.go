package interop

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/xdpsec/xdpsec/ike/iketest"
	"github.com/xdpsec/xdpsec/internal/radius/radiustest"
	"github.com/xdpsec/xdpsec/internal/testenv"
)

// Debian's FreeRADIUS 3 as the RADIUS server of our eap-radius gateway,
// in the gateway's namespace with a configuration directory of its own:
// EAP-MSCHAPv2 (MPPE keys from its mschap module) and EAP-MD5, users
// from a files module, accounting into a detail file.

const frInteropSecret = "fr-interop-secret"

const frInteropUsers = `carol	Cleartext-Password := "carol's password"
	Class = "group=staff"

bob	Cleartext-Password := "bob's password"

frank	Cleartext-Password := "frank's password"
	Framed-IP-Address = 10.9.0.7

dave	Cleartext-Password := "dave's password"

erin	Cleartext-Password := "erin's password"
	Framed-IP-Address = 10.3.200.1

grace	Cleartext-Password := "grace's password"
	Framed-IP-Address = 10.3.200.2
`

// startFreeRADIUS runs FreeRADIUS in ns on 127.0.0.1:1812/1813 until the
// test ends (EAP-MSCHAPv2 first).
func startFreeRADIUS(t *testing.T, ns *testenv.Netns) *radiustest.FreeRADIUS {
	t.Helper()
	testenv.RequireCommand(t, "freeradius")
	f, err := radiustest.StartFreeRADIUS(t.TempDir(), radiustest.FreeRADIUSConfig{Secret: frInteropSecret, Users: frInteropUsers, Netns: ns.Name})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		f.Stop()
		if t.Failed() {
			t.Logf("FreeRADIUS output:\n%s", f.Output())
		}
	})
	return f
}

// TestEAPRadiusFreeRADIUS: charon's EAP-MSCHAPv2 and EAP-MD5 through our
// gateway to FreeRADIUS: the right password (AUTH over the MSK from
// FreeRADIUS's MPPE keys), a wrong password, a Framed-IP-Address, a wrong
// shared secret, and Start and Stop records in FreeRADIUS's detail file.
func TestEAPRadiusFreeRADIUS(t *testing.T) {
	e := newEnv(t, envOptions{charonSettings: "\tinstall_virtual_ip = yes\n"})
	fr := startFreeRADIUS(t, e.nsO)
	writeSettings := func(secret string) string {
		p := filepath.Join(t.TempDir(), "xdpsec.conf")
		conf := fmt.Sprintf("radius {\n  servers {\n    freeradius {\n      address = 127.0.0.1\n      secret = %s\n    }\n  }\n  timeout = 500ms\n  retransmit_tries = 2\n  accounting = yes\n  use_framed_ip = yes\n}\n", secret)
		if err := os.WriteFile(p, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	args := e.ours.args
	e.ours.args = append(args, "--settings", writeSettings(frInteropSecret))
	e.ours.restart(false)

	ca := iketest.NewCA(t, "xdpsec interop CA", nil)
	okey, ocert := endEntity(t, ca, "ecdsa", "sun.example.org", oursAddr)
	files := map[string][]byte{"x509/peer.pem": pemCert(ocert), "private/peer.pem": pemKey(t, okey)}
	e.ours.load(raRadiusGateway, files)
	clients := "connections {\n" + raClient("carol", "eap-mschapv2") + raClient("bob", "eap-mschapv2") +
		raClient("frank", "eap-mschapv2") + raClient("dave", "eap-md5") +
		raClient("erin", "eap-mschapv2") + raClient("grace", "eap-mschapv2") + "}\n" +
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
  eap-dave {
    id = dave
    secret = "dave's password"
  }
  eap-erin {
    id = erin
    secret = "erin's password"
  }
  eap-grace {
    id = grace
    secret = "grace's password"
  }
}
`
	e.charon.load(clients, map[string][]byte{"x509ca/ca.pem": pemCert(ca.Cert)})
	connect, vipOf := e.charon.connectUser, e.charon.vipOf
	detail := fr.Detail

	t.Run("mschapv2", func(t *testing.T) {
		if out, err := connect("carol"); err != nil {
			t.Fatalf("carol: %v\n%s", err, out)
		}
		if vip := vipOf("carol"); vip != "10.3.200.1" {
			t.Errorf("carol's virtual IP %q, want 10.3.200.1", vip)
		}
		waitLog(t, "xdpsec", e.ours.log, 5e9, "EAP method EAP_RADIUS succeeded, MSK established", "authentication of 'carol' with EAP successful")
		waitLog(t, "charon", e.charon.log, 5e9, "authentication of 'sun.example.org' with EAP successful")
	})

	t.Run("wrong-password", func(t *testing.T) {
		if out, err := connect("bob"); err == nil {
			t.Fatalf("bob with a wrong password was let in:\n%s", out)
		}
		waitLog(t, "xdpsec", e.ours.log, 5e9, "EAP method EAP_RADIUS failed for peer bob: rejected by freeradius")
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

	t.Run("md5", func(t *testing.T) {
		if out, err := connect("dave"); err != nil {
			t.Fatalf("dave: %v\n%s", err, out)
		}
		waitLog(t, "xdpsec", e.ours.log, 5e9, "EAP method EAP_RADIUS succeeded, no MSK established")
	})

	t.Run("accounting", func(t *testing.T) {
		e.charon.swanctl("--terminate", "--ike", "carol", "--timeout", "10")
		waitFor(t, 5*time.Second, "Start and Stop of carol in the detail file", func() error {
			d := detail()
			if !strings.Contains(d, "Acct-Status-Type = Start") || !strings.Contains(d, "Acct-Status-Type = Stop") || !strings.Contains(d, `User-Name = "carol"`) {
				return fmt.Errorf("detail file:\n%s", d)
			}
			// carol ended it (User-Request), and her Access-Accept's
			// Class comes back in her records (FreeRADIUS writes
			// octets in hex).
			if !strings.Contains(d, "Acct-Terminate-Cause = User-Request") || !strings.Contains(d, "Class = 0x67726f75703d7374616666") {
				return fmt.Errorf("no User-Request Stop with carol's Class in the detail file:\n%s", d)
			}
			return nil
		})
	})

	// A Framed-IP-Address inside the pool is leased there: erin's is
	// carol's offline lease, taken over; grace's is dave's, online, and
	// refused.
	t.Run("framed-ip-in-pool", func(t *testing.T) {
		if out, err := connect("erin"); err != nil {
			t.Fatalf("erin: %v\n%s", err, out)
		}
		if vip := vipOf("erin"); vip != "10.3.200.1" {
			t.Errorf("erin's virtual IP %q, want the Framed-IP-Address 10.3.200.1", vip)
		}
		out := e.ours.cli("list-pools", "--leases")
		if !regexp.MustCompile(`10\.3\.200\.1\s+online\s+'erin'`).MatchString(out) {
			t.Errorf("list-pools --leases: no online lease of erin on 10.3.200.1:\n%s", out)
		}
		if out, err := connect("grace"); err == nil || vipOf("grace") != "" {
			t.Errorf("grace given dave's address 10.3.200.2:\n%s", out)
		}
		waitLog(t, "xdpsec", e.ours.log, 5e9, `virtual IP 10.3.200.2 assigned by the EAP backend refused: pool "rw4": 10.3.200.2: address in use by "dave"`)
		// Both leave: the address is free again for carol below.
		e.charon.swanctl("--terminate", "--ike", "erin", "--timeout", "10")
		e.charon.swanctl("--terminate", "--ike", "grace", "--timeout", "10")
	})

	t.Run("wrong-secret", func(t *testing.T) {
		e.ours.args = append(args, "--settings", writeSettings("not-the-secret"))
		e.ours.restart(false)
		e.ours.load(raRadiusGateway, files)
		if out, err := connect("carol"); err == nil {
			t.Fatalf("carol let in with another shared secret:\n%s", out)
		}
		waitLog(t, "xdpsec", e.ours.log, 5e9, "RADIUS server 'freeradius' (127.0.0.1:1812) is not responding")
		waitLog(t, "charon", e.charon.log, 5e9, "received AUTHENTICATION_FAILED notify error")
	})

	t.Run("reload-settings", func(t *testing.T) {
		// The operator fixes the secret in xdpsec.conf and reloads.
		settings := e.ours.args[len(e.ours.args)-1]
		fixed, err := os.ReadFile(writeSettings(frInteropSecret))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(settings, fixed, 0o600); err != nil {
			t.Fatal(err)
		}
		e.ours.cli("reload")
		waitLog(t, "xdpsec", e.ours.log, 5e9, "reloaded "+settings)
		if out, err := connect("carol"); err != nil {
			t.Fatalf("carol after the reload: %v\n%s", err, out)
		}
	})
}
