package interop

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/xdpsec/xdpsec/ike/iketest"
)

// The remote-access gateway: our daemon authenticates with its
// certificate, the clients with EAP (eap-dynamic: EAP-MSCHAPv2 first,
// EAP-MD5 for a client that Naks it), and each client gets a virtual IP
// from a pool of two addresses, with a DNS server and the LAN as a split
// subnet.
const raGateway = `connections {
  rw {
    local_addrs = ` + oursAddr + `
    proposals = aes256-sha256-modp2048, default, aes256-sha1-modp1024
    pools = rw4
    local {
      auth = pubkey
      certs = peer.pem
      id = sun.example.org
    }
    remote {
      auth = eap-dynamic
      eap_id = %any
    }
    children {
      net {
        local_ts = 10.2.0.0/16
        esp_proposals = aes128gcm16, aes256-sha256, aes256-sha1
      }
    }
  }
}
pools {
  rw4 {
    addrs = 10.3.200.1-10.3.200.2
    dns = 10.3.0.1
    subnet = 10.2.0.0/16
  }
}
secrets {
  eap-carol {
    id = carol
    secret = "carol's password"
  }
  eap-bob {
    id = bob
    secret = "bob's password"
  }
  eap-dave {
    id = dave
    secret = "dave's password"
  }
  eap-frank {
    id = frank
    secret = "frank's password"
  }
}
`

// raClient is one road warrior of charon's: a connection named after the
// user, asking for a virtual IP.
func raClient(user, auth string) string {
	return raClientAs(user, user, auth, "default", "aes128gcm16")
}

// raClientAs is a road warrior's connection name for user id, with its
// IKE and ESP proposals.
func raClientAs(name, user, auth, ike, esp string) string {
	return fmt.Sprintf(`  %s {
    remote_addrs = %s
    proposals = %s
    vips = 0.0.0.0
    local {
      auth = %s
      id = %s
    }
    remote {
      auth = pubkey
      id = sun.example.org
    }
    children {
      %s {
        remote_ts = 10.2.0.0/16
        esp_proposals = %s
      }
    }
  }
`, name, oursAddr, ike, auth, user, name, esp)
}

// connectUser initiates the road-warrior connection named after user
// (raClient) and waits for it.
func (c *charon) connectUser(user string) (string, error) {
	return c.swanctlRun("--initiate", "--child", user, "--timeout", "20")
}

// vipOf is the virtual IP charon's IKE SA of user's connection got.
func (c *charon) vipOf(user string) string {
	for _, sa := range c.sas() {
		if sa.name == user {
			return strings.Join(sa.lists["local-vips"], ",")
		}
	}
	return ""
}

// TestRemoteAccess runs charon as the road-warrior client of our gateway,
// several users in turn on one charon: EAP-MSCHAPv2 with the right
// password (virtual IP and DNS server), a wrong password, an unknown user,
// EAP-MD5, a third client refused by the pool of two, and a user
// reconnecting to the address it had.
func TestRemoteAccess(t *testing.T) {
	// kernel-libipsec routes through its TUN device from the virtual IP:
	// charon installs it, in its own namespace.
	e := newEnv(t, envOptions{charonSettings: "\tinstall_virtual_ip = yes\n"})
	ca := iketest.NewCA(t, "xdpsec interop CA", nil)
	okey, ocert := endEntity(t, ca, "ecdsa", "sun.example.org", oursAddr)
	e.ours.load(raGateway, map[string][]byte{"x509/peer.pem": pemCert(ocert), "private/peer.pem": pemKey(t, okey)})

	clients := "connections {\n" + raClient("carol", "eap-mschapv2") + raClient("bob", "eap-mschapv2") +
		raClient("eve", "eap-mschapv2") + raClient("dave", "eap-md5") + raClient("frank", "eap-mschapv2") +
		// The proposals of iOS and macOS's IKEv2 client (AES-256-CBC,
		// SHA2-256, MODP2048 by default).
		raClientAs("ios", "carol", "eap-mschapv2", "aes256-sha256-modp2048", "aes256-sha256") +
		// Windows 10's built-in client by default: AES-256-CBC (or
		// 3DES, which we refuse), SHA1, MODP1024; ESP AES-256-CBC/SHA1.
		raClientAs("windows", "carol", "eap-mschapv2", "aes256-sha1-modp1024", "aes256-sha1") + "}\n" +
		`secrets {
  eap-carol {
    id = carol
    secret = "carol's password"
  }
  eap-bob {
    id = bob
    secret = "not bob's password"
  }
  eap-eve {
    id = eve
    secret = "eve's password"
  }
  eap-dave {
    id = dave
    secret = "dave's password"
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
			t.Errorf("carol's virtual IP %q, want 10.3.200.1:\n%s", vip, e.charon.swanctl("--list-sas"))
		}
		waitLog(t, "xdpsec", e.ours.log, 5e9, "peer requested virtual IP %any", "assigning virtual IP 10.3.200.1 to peer 'carol'",
			"EAP method EAP_MSCHAPV2 succeeded, MSK established", "authentication of 'carol' with EAP successful")
		waitLog(t, "charon", e.charon.log, 5e9, "installing new virtual IP 10.3.200.1", "authentication of 'sun.example.org' with EAP successful")
		resolv, _ := os.ReadFile(filepath.Join(e.charon.dir, "resolv.conf"))
		if !strings.Contains(string(resolv), "nameserver 10.3.0.1") {
			t.Errorf("charon's resolv.conf has no DNS server 10.3.0.1:\n%s\n%s", resolv, e.charon.log())
		}
		if o := e.oursSA(); !slices.Equal(o.RemoteVIPs, []string{"10.3.200.1"}) || o.EAPID != "carol" ||
			len(o.Children) != 1 || !slices.Equal(o.Children[0].RemoteTS, []string{"10.3.200.1/32"}) {
			t.Errorf("our IKE SA of carol: %+v", o)
		}
		child := e.charonSA().sub("child-sas")
		if child == nil || len(child.sections) != 1 {
			t.Fatalf("carol has no CHILD_SA:\n%s", e.charon.swanctl("--list-sas"))
		}
		for _, c := range child.sections {
			if lts := c.lists["local-ts"]; !slices.Equal(lts, []string{"10.3.200.1/32"}) {
				t.Errorf("carol's local selectors %v, want the virtual IP", lts)
			}
		}
	})

	t.Run("wrong-password", func(t *testing.T) {
		if out, err := connect("bob"); err == nil {
			t.Fatalf("bob with a wrong password was let in:\n%s", out)
		}
		waitLog(t, "xdpsec", e.ours.log, 5e9, "EAP method EAP_MSCHAPV2 failed for peer bob: wrong password")
		waitLog(t, "charon", e.charon.log, 5e9, "received AUTHENTICATION_FAILED notify error")
	})

	t.Run("unknown-user", func(t *testing.T) {
		if out, err := connect("eve"); err == nil {
			t.Fatalf("unknown eve was let in:\n%s", out)
		}
		waitLog(t, "xdpsec", e.ours.log, 5e9, "EAP method EAP_MSCHAPV2 failed for peer eve: unknown user")
	})

	t.Run("md5", func(t *testing.T) {
		if out, err := connect("dave"); err != nil {
			t.Fatalf("dave: %v\n%s", err, out)
		}
		if vip := vipOf("dave"); vip != "10.3.200.2" {
			t.Errorf("dave's virtual IP %q, want 10.3.200.2", vip)
		}
		waitLog(t, "xdpsec", e.ours.log, 5e9, "EAP method EAP_MD5 succeeded, no MSK established", "assigning virtual IP 10.3.200.2 to peer 'dave'")
	})

	t.Run("pool-exhausted", func(t *testing.T) {
		connect("frank")
		waitLog(t, "xdpsec", e.ours.log, 5e9, "no virtual IP found for %any requested by 'frank'")
		waitLog(t, "charon", e.charon.log, 5e9, "INTERNAL_ADDRESS_FAILURE")
		if vip := vipOf("frank"); vip != "" {
			t.Errorf("frank got virtual IP %q from an exhausted pool", vip)
		}
	})

	t.Run("reconnect-same-address", func(t *testing.T) {
		e.charon.swanctl("--terminate", "--ike", "carol", "--timeout", "10")
		if out, err := connect("carol"); err != nil {
			t.Fatalf("carol again: %v\n%s", err, out)
		}
		if vip := vipOf("carol"); vip != "10.3.200.1" {
			t.Errorf("carol's virtual IP on her return %q, want 10.3.200.1 again", vip)
		}
	})

	t.Run("ios-proposals", func(t *testing.T) {
		e.charon.swanctl("--terminate", "--ike", "carol", "--timeout", "10")
		if out, err := connect("ios"); err != nil {
			t.Fatalf("carol with iOS's proposals: %v\n%s", err, out)
		}
		if vip := vipOf("ios"); vip != "10.3.200.1" {
			t.Errorf("carol's virtual IP with iOS's proposals %q, want 10.3.200.1", vip)
		}
		for _, sa := range e.charon.sas() {
			if sa.name == "ios" && (sa.get("encr-alg") != "AES_CBC" || sa.get("encr-keysize") != "256" || sa.get("dh-group") != "MODP_2048") {
				t.Errorf("IKE SA of iOS's proposals: %s %s %s", sa.get("encr-alg"), sa.get("encr-keysize"), sa.get("dh-group"))
			}
		}
	})

	t.Run("windows-proposals", func(t *testing.T) {
		// The iOS subtest's IKE SA, if it ran: carol has one address.
		_, _ = e.charon.swanctlRun("--terminate", "--ike", "ios", "--timeout", "10")
		if out, err := connect("windows"); err != nil {
			t.Fatalf("carol with Windows 10's proposals: %v\n%s", err, out)
		}
		if vip := vipOf("windows"); vip != "10.3.200.1" {
			t.Errorf("carol's virtual IP with Windows 10's proposals %q, want 10.3.200.1", vip)
		}
		found := false
		for _, sa := range e.charon.sas() {
			if sa.name == "windows" {
				found = true
				if sa.get("encr-alg") != "AES_CBC" || sa.get("integ-alg") != "HMAC_SHA1_96" || sa.get("dh-group") != "MODP_1024" {
					t.Errorf("IKE SA of Windows 10's proposals: %s %s %s", sa.get("encr-alg"), sa.get("integ-alg"), sa.get("dh-group"))
				}
			}
		}
		if !found {
			t.Error("charon lists no IKE SA windows")
		}
	})

	t.Run("list-pools", func(t *testing.T) {
		out := e.ours.cli("list-pools", "--leases")
		for _, want := range []string{"rw4", "10.3.200.1      - 10.3.200.2      2 / 0 / 2", "10.3.200.1", "online  'carol'", "online  'dave'"} {
			if !strings.Contains(out, want) {
				t.Errorf("list-pools --leases lacks %q:\n%s", want, out)
			}
		}
	})
}

// TestRemoteAccessOursAsClient: our daemon as the road warrior of
// charon's gateway, EAP-MSCHAPv2 and a virtual IP with a DNS server.
func TestRemoteAccessOursAsClient(t *testing.T) {
	e := newEnv(t, envOptions{})
	ca := iketest.NewCA(t, "xdpsec interop CA", nil)
	ckey, ccert := endEntity(t, ca, "ecdsa", "moon.example.org", charonAddr)
	e.charon.load(`connections {
  rw {
    local_addrs = `+charonAddr+`
    pools = rw4
    local {
      auth = pubkey
      certs = peer.pem
      id = moon.example.org
    }
    remote {
      auth = eap-mschapv2
      eap_id = %any
    }
    children {
      net {
        local_ts = 10.1.0.0/16
        esp_proposals = aes128gcm16
      }
    }
  }
}
pools {
  rw4 {
    addrs = 10.4.0.0/24
    dns = 10.4.0.53
  }
}
secrets {
  eap-carol {
    id = carol
    secret = "carol's password"
  }
}
`, certFiles(t, ca, ckey, ccert))
	e.ours.load(`connections {
  c {
    remote_addrs = `+charonAddr+`
    vips = 0.0.0.0
    local {
      auth = eap-mschapv2
      id = carol
    }
    remote {
      auth = pubkey
      id = moon.example.org
    }
    children {
      net {
        remote_ts = 10.1.0.0/16
        esp_proposals = aes128gcm16
      }
    }
  }
}
secrets {
  eap-carol {
    id = carol
    secret = "carol's password"
  }
}
`, map[string][]byte{"x509ca/ca.pem": pemCert(ca.Cert)})
	e.initiate(oursInitiate)
	waitLog(t, "xdpsec", e.ours.log, 5e9, "EAP method EAP_MSCHAPV2 succeeded, MSK established",
		"authentication of 'moon.example.org' with EAP successful", "received virtual IP 10.4.0.1", "received DNS server 10.4.0.53",
		"installing new virtual IP 10.4.0.1")
	waitLog(t, "charon", e.charon.log, 5e9, "assigning virtual IP 10.4.0.1 to peer 'carol'")
	o := e.oursSA()
	if !slices.Equal(o.LocalVIPs, []string{"10.4.0.1"}) || len(o.Children) != 1 || !slices.Equal(o.Children[0].LocalTS, []string{"10.4.0.1/32"}) {
		t.Errorf("our IKE SA: %+v", o)
	}
}

// TestRemoteAccessPubkey: a road warrior that authenticates in IKE with
// its certificate, no EAP (Android's built-in "IKEv2/IPSec RSA" profile,
// charon with local.auth = pubkey), still gets its virtual IP and DNS
// server from the pool.
func TestRemoteAccessPubkey(t *testing.T) {
	e := newEnv(t, envOptions{charonSettings: "\tinstall_virtual_ip = yes\n"})
	ca := iketest.NewCA(t, "xdpsec interop CA", nil)
	okey, ocert := endEntity(t, ca, "ecdsa", "sun.example.org", oursAddr)
	gateway := strings.Replace(tlsGateway, "auth = eap-dynamic\n      eap_id = %any", "auth = pubkey", 1)
	e.ours.load(gateway, map[string][]byte{"x509/peer.pem": pemCert(ocert), "private/peer.pem": pemKey(t, okey),
		"x509ca/ca.pem": pemCert(ca.Cert)})
	ckey, ccert := userCert(t, ca, "carol@example.org")
	e.charon.load("connections {\n"+strings.Replace(tlsClient("carol", "carol@example.org", "carol.pem"), "auth = eap-tls", "auth = pubkey", 1)+"}\n",
		map[string][]byte{"x509ca/ca.pem": pemCert(ca.Cert), "x509/carol.pem": pemCert(ccert), "private/carol.pem": pemKey(t, ckey)})
	if out, err := e.charon.swanctlRun("--initiate", "--child", "carol", "--timeout", "30"); err != nil {
		t.Fatalf("carol: %v\n%s", err, out)
	}
	waitLog(t, "xdpsec", e.ours.log, 5e9, "authentication of 'carol@example.org' with ECDSA", "peer requested virtual IP %any",
		"assigning virtual IP 10.3.200.1 to peer 'carol@example.org'")
	waitLog(t, "charon", e.charon.log, 5e9, "installing DNS server 10.3.0.1", "installing new virtual IP 10.3.200.1")
	if o := e.oursSA(); !slices.Equal(o.RemoteVIPs, []string{"10.3.200.1"}) || len(o.Children) != 1 {
		t.Errorf("our IKE SA of carol: %+v", o)
	}
}
