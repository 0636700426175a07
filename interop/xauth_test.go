package interop

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/xdpsec/xdpsec/ike/iketest"
)

// IKEv1 remote access against charon: XAuth (xauth-generic) after Main or
// Aggressive Mode with a group PSK, Mode Config pull and push, Cisco
// Unity split-include (charon's unity plugin), our daemon as the XAuth
// client of charon's gateway, and one user's address shared by its IKEv1
// and IKEv2 connections.

// xauthGateway is our IKEv1 gateway: a group PSK, then XAuth of the
// users in secrets.xauth, addresses from a pool of two.
func xauthGateway(extra string) string {
	return `connections {
  rw {
    version = 1
    local_addrs = ` + oursAddr + `
    proposals = aes128-sha256-modp2048
    pools = rw4
` + extra + `    local {
      auth = psk
      id = sun.example.org
    }
    remote {
      auth = psk
    }
    remote-xauth {
      auth = xauth
    }
    children {
      net {
        local_ts = 10.2.0.0/16
        esp_proposals = aes128-sha256
      }
    }
  }
}
pools {
  rw4 {
    addrs = 10.3.200.1-10.3.200.2
    dns = 10.3.0.1
    28674 = example.org
  }
}
secrets {
  ike-group {
    secret = "the group secret"
  }
  xauth-alice {
    id = alice
    secret = "alice's password"
  }
  xauth-bob {
    id = bob
    secret = "bob's password"
  }
}
`
}

// xauthClient is one of charon's XAuth road warriors: connection and
// child named after the user, with the password it sends.
func xauthClient(user, extra string) string {
	return fmt.Sprintf(`  %s {
    version = 1
    remote_addrs = %s
    proposals = aes128-sha256-modp2048
    vips = 0.0.0.0
%s    local {
      auth = psk
      id = group@example.org
    }
    local-xauth {
      auth = xauth
      xauth_id = %s
    }
    remote {
      auth = psk
      id = sun.example.org
    }
    children {
      %s {
        remote_ts = 10.2.0.0/16
        esp_proposals = aes128-sha256
      }
    }
  }
`, user, oursAddr, extra, user, user)
}

// xauthCharonSettings: kernel-libipsec routes through its TUN device from
// the virtual IP, which charon installs in its own namespace.
const xauthCharonSettings = "\tinstall_virtual_ip = yes\n"

const xauthClientSecrets = `secrets {
  ike-group {
    secret = "the group secret"
  }
  xauth-alice {
    id = alice
    secret = "alice's password"
  }
  xauth-bob {
    id = bob
    secret = "not bob's password"
  }
}
`

// TestV1XAuthGateway: charon as the XAuth client of our gateway in Main
// Mode (pull), a wrong password, Aggressive Mode, and push mode.
func TestV1XAuthGateway(t *testing.T) {
	t.Run("main-mode", func(t *testing.T) {
		e := newEnv(t, envOptions{charonSettings: xauthCharonSettings})
		e.ours.load(xauthGateway(""), nil)
		e.charon.load("connections {\n"+xauthClient("alice", "")+xauthClient("bob", "")+"}\n"+xauthClientSecrets, nil)
		if out, err := e.charon.connectUser("alice"); err != nil {
			t.Fatalf("alice: %v\n%s", err, out)
		}
		if vip := e.charon.vipOf("alice"); vip != "10.3.200.1" {
			t.Errorf("alice's virtual IP %q, want 10.3.200.1:\n%s", vip, e.charon.swanctl("--list-sas"))
		}
		waitLog(t, "xdpsec", e.ours.log, 5*time.Second, "selected proposal: IKE:AES_CBC_128/HMAC_SHA2_256/MODP_2048/XAUTH_INIT_PSK",
			"XAuth authentication of 'alice' successful", "peer requested virtual IP %any",
			"assigning virtual IP 10.3.200.1 to peer 'alice'", "IKE_SA rw[1] established between")
		waitLog(t, "charon", e.charon.log, 5*time.Second, "XAuth authentication of 'alice' (myself) successful",
			"installing new virtual IP 10.3.200.1", "installing DNS server 10.3.0.1")
		o := e.oursSA()
		if !slices.Equal(o.RemoteVIPs, []string{"10.3.200.1"}) || o.EAPID != "alice" || len(o.Children) != 1 ||
			!slices.Equal(o.Children[0].RemoteTS, []string{"10.3.200.1/32"}) || o.Version != 1 {
			t.Errorf("our IKE SA of alice: %+v", o)
		}
		// swanctl --list-sas over our VICI names the XAuth user as for
		// charon (remote-xauth-id).
		if out := e.ours.swanctl(t.TempDir(), "--list-sas"); !strings.Contains(out, "XAuth: 'alice'") || !strings.Contains(out, "[10.3.200.1]") {
			t.Errorf("swanctl --list-sas of our daemon lacks alice's XAuth identity or virtual IP:\n%s", out)
		}
		child := e.charonSA().sub("child-sas")
		if child == nil || len(child.sections) != 1 {
			t.Fatalf("alice has no CHILD_SA:\n%s", e.charon.swanctl("--list-sas"))
		}
		for _, c := range child.sections {
			if lts := c.lists["local-ts"]; !slices.Equal(lts, []string{"10.3.200.1/32"}) {
				t.Errorf("alice's local selectors %v, want the virtual IP", lts)
			}
		}

		// bob's password is wrong: the gateway says why and ends it.
		if out, err := e.charon.connectUser("bob"); err == nil {
			t.Fatalf("bob with a wrong password was let in:\n%s", out)
		}
		waitLog(t, "xdpsec", e.ours.log, 5*time.Second, "XAuth authentication of 'bob' failed: wrong password",
			"destroying IKE_SA rw[2] after failed XAuth authentication of 'bob'")
		waitLog(t, "charon", e.charon.log, 5*time.Second, "XAuth authentication of 'bob' (myself) failed")
		if sas := e.ours.sas(); len(sas) != 1 || sas[0].EAPID != "alice" {
			t.Errorf("our IKE SAs after bob: %+v", sas)
		}
	})

	t.Run("aggressive-mode", func(t *testing.T) {
		e := newEnv(t, envOptions{charonSettings: xauthCharonSettings})
		e.ours.load(xauthGateway("    aggressive = yes\n"), nil)
		e.charon.load("connections {\n"+xauthClient("alice", "    aggressive = yes\n")+"}\n"+xauthClientSecrets, nil)
		if out, err := e.charon.connectUser("alice"); err != nil {
			t.Fatalf("alice: %v\n%s", err, out)
		}
		waitLog(t, "xdpsec", e.ours.log, 5*time.Second, "is initiating a Aggressive Mode IKE_SA",
			"XAuth authentication of 'alice' successful", "assigning virtual IP 10.3.200.1 to peer 'alice'")
		if vip := e.charon.vipOf("alice"); vip != "10.3.200.1" {
			t.Errorf("alice's virtual IP %q", vip)
		}
		e.agreeUnnamed()
	})

	t.Run("push", func(t *testing.T) {
		e := newEnv(t, envOptions{charonSettings: xauthCharonSettings})
		e.ours.load(xauthGateway("    pull = no\n"), nil)
		e.charon.load("connections {\n"+xauthClient("alice", "    pull = no\n")+"}\n"+xauthClientSecrets, nil)
		if out, err := e.charon.connectUser("alice"); err != nil {
			t.Fatalf("alice: %v\n%s", err, out)
		}
		waitLog(t, "xdpsec", e.ours.log, 5*time.Second, "XAuth authentication of 'alice' successful",
			"assigning virtual IP 10.3.200.1 to peer 'alice'")
		if strings.Contains(e.ours.log(), "peer requested virtual IP") {
			t.Errorf("push mode, but charon pulled")
		}
		if vip := e.charon.vipOf("alice"); vip != "10.3.200.1" {
			t.Errorf("alice's virtual IP %q", vip)
		}
		e.agreeUnnamed()
	})
}

// TestV1XAuthUnity: charon with the unity plugin announcing Cisco Unity
// gets the child's local selector and the pool's split_include as
// UNITY_SPLIT_INCLUDE and its split_exclude as UNITY_LOCAL_LAN, proposes
// 0.0.0.0/0 for our side, and our gateway narrows it to its local_ts.
func TestV1XAuthUnity(t *testing.T) {
	e := newEnv(t, envOptions{charonSettings: xauthCharonSettings + "\tcisco_unity = yes\n"})
	e.ours.load(strings.Replace(xauthGateway(""), "    dns = 10.3.0.1\n", "    dns = 10.3.0.1\n    split_include = 10.5.0.0/16\n    split_exclude = 192.168.77.0/24\n", 1), nil)
	e.charon.load("connections {\n"+strings.Replace(xauthClient("alice", ""), "remote_ts = 10.2.0.0/16", "remote_ts = 0.0.0.0/0", 1)+"}\n"+xauthClientSecrets, nil)
	if out, err := e.charon.connectUser("alice"); err != nil {
		t.Fatalf("alice: %v\n%s", err, out)
	}
	waitLog(t, "xdpsec", e.ours.log, 5*time.Second, "received Cisco Unity vendor ID",
		"sending UNITY_SPLIT_INCLUDE: 10.5.0.0/16 10.2.0.0/16", "narrowed CHILD_SA to UNITY_SPLIT_INCLUDE 10.2.0.0/16")
	// charon's unity handler takes the split_exclude as a bypass policy.
	waitLog(t, "charon", e.charon.log, 5*time.Second, "installed UNITY_LOCAL_LAN bypass policy for 192.168.77.0/24")
	o := e.oursSA()
	if len(o.Children) != 1 || !slices.Equal(o.Children[0].LocalTS, []string{"10.2.0.0/16"}) {
		t.Errorf("our CHILD_SA: %+v", o.Children)
	}
	e.agreeUnnamed()
}

// agreeUnnamed waits until both sides list the same one established IKE
// SA with the same one CHILD_SA (SPIs crossed, selectors mirrored): the
// road warriors' children are named after their user, the gateway's not.
func (e *env) agreeUnnamed() {
	e.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, o := e.charonView(), e.oursView()
		for _, vs := range [][]ikeView{c, o} {
			for _, v := range vs {
				for i := range v.children {
					v.children[i].name, v.children[i].encap = "", true
				}
			}
		}
		cs, os := fmt.Sprint(c), fmt.Sprint(o)
		if cs == os && len(c) == 1 && len(c[0].children) == 1 {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("the two sides do not agree:\ncharon: %s\nxdpsec: %s", cs, os)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestV1XAuthOursAsClient: our daemon as the XAuth client of charon's
// gateway (PSK + XAuth in Main Mode), with vips, in pull and push mode.
func TestV1XAuthOursAsClient(t *testing.T) {
	for _, mode := range []string{"pull", "push"} {
		t.Run(mode, func(t *testing.T) {
			pull := ""
			if mode == "push" {
				pull = "    pull = no\n"
			}
			e := newEnv(t, envOptions{})
			e.charon.load(`connections {
  rw {
    version = 1
    local_addrs = `+charonAddr+`
    proposals = aes128-sha256-modp2048
    pools = rw4
`+pull+`    local {
      auth = psk
      id = moon.example.org
    }
    remote {
      auth = psk
    }
    remote-xauth {
      auth = xauth
    }
    children {
      net {
        local_ts = 10.1.0.0/16
        esp_proposals = aes128-sha256
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
  ike-group {
    secret = "the group secret"
  }
  xauth-carol {
    id = carol
    secret = "carol's password"
  }
}
`, nil)
			e.ours.load(`connections {
  c {
    version = 1
    remote_addrs = `+charonAddr+`
    proposals = aes128-sha256-modp2048
    vips = 0.0.0.0
`+pull+`    local {
      auth = psk
      id = group@example.org
    }
    local-xauth {
      auth = xauth
      xauth_id = carol
    }
    remote {
      auth = psk
      id = moon.example.org
    }
    children {
      net {
        remote_ts = 10.1.0.0/16
        esp_proposals = aes128-sha256
      }
    }
  }
}
secrets {
  ike-group {
    secret = "the group secret"
  }
  xauth-carol {
    id = carol
    secret = "carol's password"
  }
}
`, nil)
			e.initiate(oursInitiate)
			if mode == "push" {
				waitLog(t, "xdpsec", e.ours.log, 5*time.Second, "waiting for Mode Config push of the virtual IP")
			}
			waitLog(t, "xdpsec", e.ours.log, 5*time.Second, "XAuth authentication of 'carol' (myself) successful",
				"received virtual IP 10.4.0.1", "received DNS server 10.4.0.53", "installing new virtual IP 10.4.0.1")
			waitLog(t, "charon", e.charon.log, 5*time.Second, "XAuth authentication of 'carol' successful",
				"assigning virtual IP 10.4.0.1 to peer 'carol'")
			o := e.oursSA()
			if !slices.Equal(o.LocalVIPs, []string{"10.4.0.1"}) || len(o.Children) != 1 ||
				!slices.Equal(o.Children[0].LocalTS, []string{"10.4.0.1/32"}) {
				t.Errorf("our IKE SA: %+v", o)
			}
			e.agree(1)
		})
	}
}

// TestV1XAuthSharedPool: one pool serves the IKEv2 EAP gateway and the
// IKEv1 XAuth one, leasing by the user's name: carol gets 10.3.200.1 over
// IKEv1, leaves, frank comes over IKEv2 and gets the next address, and
// carol over IKEv2 gets hers back, not the third one still free.
func TestV1XAuthSharedPool(t *testing.T) {
	e := newEnv(t, envOptions{charonSettings: xauthCharonSettings})
	ca := iketest.NewCA(t, "xdpsec interop CA", nil)
	okey, ocert := endEntity(t, ca, "ecdsa", "sun.example.org", oursAddr)
	v1conn := `  rw1 {
    version = 1
    local_addrs = ` + oursAddr + `
    proposals = aes128-sha256-modp2048
    pools = rw4
    local {
      auth = psk
      id = sun.example.org
    }
    remote {
      auth = psk
    }
    remote-xauth {
      auth = xauth
    }
    children {
      net1 {
        local_ts = 10.2.0.0/16
        esp_proposals = aes128-sha256
      }
    }
  }
`
	gw := strings.Replace(raGateway, "connections {\n", "connections {\n"+v1conn, 1)
	// Three addresses: a lease not shared would give carol a free one.
	gw = strings.Replace(gw, "addrs = 10.3.200.1-10.3.200.2", "addrs = 10.3.200.1-10.3.200.3", 1)
	gw = strings.Replace(gw, "secrets {\n", "secrets {\n  ike-group {\n    secret = \"the group secret\"\n  }\n", 1)
	e.ours.load(gw, map[string][]byte{"x509/peer.pem": pemCert(ocert), "private/peer.pem": pemKey(t, okey)})
	carol1 := strings.ReplaceAll(xauthClient("carol", ""), "carol {", "carolv1 {")
	e.charon.load("connections {\n"+carol1+raClient("carol", "eap-mschapv2")+raClient("frank", "eap-mschapv2")+"}\n"+`secrets {
  ike-group {
    secret = "the group secret"
  }
  eap-carol {
    id = carol
    secret = "carol's password"
  }
  eap-frank {
    id = frank
    secret = "frank's password"
  }
}
`, map[string][]byte{"x509ca/ca.pem": pemCert(ca.Cert)})

	if out, err := e.charon.connectUser("carolv1"); err != nil {
		t.Fatalf("carol over IKEv1: %v\n%s", err, out)
	}
	if vip := e.charon.vipOf("carolv1"); vip != "10.3.200.1" {
		t.Fatalf("carol's IKEv1 virtual IP %q, want 10.3.200.1", vip)
	}
	waitLog(t, "xdpsec", e.ours.log, 5*time.Second, "XAuth authentication of 'carol' successful", "assigning virtual IP 10.3.200.1 to peer 'carol'")
	e.charon.swanctl("--terminate", "--ike", "carolv1", "--timeout", "10")
	waitFor(t, 10*time.Second, "carol's IKEv1 SA to go", func() error {
		if sas := e.ours.sas(); len(sas) != 0 {
			return fmt.Errorf("%d IKE SAs left", len(sas))
		}
		return nil
	})

	if out, err := e.charon.connectUser("frank"); err != nil {
		t.Fatalf("frank over IKEv2: %v\n%s", err, out)
	}
	if vip := e.charon.vipOf("frank"); vip != "10.3.200.2" {
		t.Errorf("frank's virtual IP %q, want 10.3.200.2 (10.3.200.1 is carol's)", vip)
	}
	if out, err := e.charon.connectUser("carol"); err != nil {
		t.Fatalf("carol over IKEv2: %v\n%s", err, out)
	}
	if vip := e.charon.vipOf("carol"); vip != "10.3.200.1" {
		t.Errorf("carol's IKEv2 virtual IP %q, want her IKEv1 one, 10.3.200.1", vip)
	}
}

// TestV1XAuthFreeRADIUS: auth = xauth-radius checks XAuth users with
// FreeRADIUS (PAP: User-Name and User-Password): the right password, its
// Framed-IP-Address as the virtual IP, and a wrong one refused.
func TestV1XAuthFreeRADIUS(t *testing.T) {
	e := newEnv(t, envOptions{charonSettings: xauthCharonSettings})
	startFreeRADIUS(t, e.nsO)
	p := filepath.Join(t.TempDir(), "xdpsec.conf")
	conf := fmt.Sprintf("radius {\n  servers {\n    freeradius {\n      address = 127.0.0.1\n      secret = %s\n    }\n  }\n  timeout = 500ms\n  retransmit_tries = 2\n  use_framed_ip = yes\n}\n", frInteropSecret)
	if err := os.WriteFile(p, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	e.ours.args = append(e.ours.args, "--settings", p)
	e.ours.restart(false)
	e.ours.load(strings.Replace(xauthGateway(""), "auth = xauth\n", "auth = xauth-radius\n", 1), nil)
	e.charon.load("connections {\n"+xauthClient("carol", "")+xauthClient("frank", "")+xauthClient("bob", "")+"}\n"+`secrets {
  ike-group {
    secret = "the group secret"
  }
  xauth-carol {
    id = carol
    secret = "carol's password"
  }
  xauth-frank {
    id = frank
    secret = "frank's password"
  }
  xauth-bob {
    id = bob
    secret = "not bob's password"
  }
}
`, nil)
	if out, err := e.charon.connectUser("carol"); err != nil {
		t.Fatalf("carol: %v\n%s", err, out)
	}
	waitLog(t, "xdpsec", e.ours.log, 5*time.Second, "RADIUS authentication of 'carol' successful", "XAuth authentication of 'carol' successful",
		"assigning virtual IP 10.3.200.1 to peer 'carol'")
	if out, err := e.charon.connectUser("frank"); err != nil {
		t.Fatalf("frank: %v\n%s", err, out)
	}
	if vip := e.charon.vipOf("frank"); vip != "10.9.0.7" {
		t.Errorf("frank's virtual IP %q, want the Framed-IP-Address 10.9.0.7", vip)
	}
	if out, err := e.charon.connectUser("bob"); err == nil {
		t.Fatalf("bob with a wrong password was let in:\n%s", out)
	}
	waitLog(t, "xdpsec", e.ours.log, 5*time.Second, "XAuth authentication of 'bob' failed: rejected by freeradius")
}

// TestV1XAuthRSA: RSA certificates in Main Mode (XAUTH_INIT_RSA), then
// XAuth: charon as the client of our gateway.
func TestV1XAuthRSA(t *testing.T) {
	e := newEnv(t, envOptions{charonSettings: xauthCharonSettings})
	ca := iketest.NewCA(t, "xdpsec interop CA", nil)
	ckey, ccert := endEntity(t, ca, "rsa", "moon.example.org", charonAddr)
	okey, ocert := endEntity(t, ca, "rsa", "sun.example.org", oursAddr)
	gw := xauthGateway("")
	gw = strings.Replace(gw, "    local {\n      auth = psk\n", "    local {\n      auth = pubkey\n      certs = peer.pem\n", 1)
	gw = strings.Replace(gw, "    remote {\n      auth = psk\n", "    remote {\n      auth = pubkey\n", 1)
	e.ours.load(gw, certFiles(t, ca, okey, ocert))
	cl := xauthClient("alice", "")
	cl = strings.Replace(cl, "    local {\n      auth = psk\n      id = group@example.org\n", "    local {\n      auth = pubkey\n      certs = peer.pem\n      id = moon.example.org\n", 1)
	cl = strings.Replace(cl, "    remote {\n      auth = psk\n", "    remote {\n      auth = pubkey\n", 1)
	e.charon.load("connections {\n"+cl+"}\n"+xauthClientSecrets, certFiles(t, ca, ckey, ccert))
	if out, err := e.charon.connectUser("alice"); err != nil {
		t.Fatalf("alice: %v\n%s", err, out)
	}
	waitLog(t, "xdpsec", e.ours.log, 5*time.Second, "selected proposal: IKE:AES_CBC_128/HMAC_SHA2_256/MODP_2048/XAUTH_INIT_RSA",
		"authentication of 'moon.example.org' with RSA_SIG successful", "XAuth authentication of 'alice' successful",
		"assigning virtual IP 10.3.200.1 to peer 'alice'")
	waitLog(t, "charon", e.charon.log, 5*time.Second, "authentication of 'sun.example.org' with RSA")
	e.agreeUnnamed()
}

// TestV1XAuthOverVICI: the XAuth gateway, its pool and its users loaded
// with swanctl --load-all over our VICI socket (XAuth secrets go as type
// XAUTH, which we keep as EAP secrets as charon does), then charon logs in.
func TestV1XAuthOverVICI(t *testing.T) {
	e := newEnv(t, envOptions{charonSettings: xauthCharonSettings})
	dir := swanctlDir(t, xauthGateway(""))
	out := e.ours.swanctl(dir, "--load-all")
	wantLines(t, "--load-all", out, `(?m)^loaded xauth secret 'xauth-alice'$`, `(?m)^loaded connection 'rw'$`, `(?m)^loaded pool 'rw4'$`)
	e.charon.load("connections {\n"+xauthClient("alice", "")+"}\n"+xauthClientSecrets, nil)
	if out, err := e.charon.connectUser("alice"); err != nil {
		t.Fatalf("alice: %v\n%s", err, out)
	}
	waitLog(t, "xdpsec", e.ours.log, 5*time.Second, "XAuth authentication of 'alice' successful", "assigning virtual IP 10.3.200.1 to peer 'alice'")
	if strings.Contains(e.ours.log(), "alice's password") {
		t.Error("the password is in our daemon's log")
	}
}
