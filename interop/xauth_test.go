package interop

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
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
// UNITY_SPLIT_INCLUDE, proposes 0.0.0.0/0 for our side, and our gateway
// narrows it to its local_ts.
func TestV1XAuthUnity(t *testing.T) {
	e := newEnv(t, envOptions{charonSettings: xauthCharonSettings + "\tcisco_unity = yes\n"})
	e.ours.load(strings.Replace(xauthGateway(""), "    dns = 10.3.0.1\n", "    dns = 10.3.0.1\n    split_include = 10.5.0.0/16\n", 1), nil)
	e.charon.load("connections {\n"+strings.Replace(xauthClient("alice", ""), "remote_ts = 10.2.0.0/16", "remote_ts = 0.0.0.0/0", 1)+"}\n"+xauthClientSecrets, nil)
	if out, err := e.charon.connectUser("alice"); err != nil {
		t.Fatalf("alice: %v\n%s", err, out)
	}
	waitLog(t, "xdpsec", e.ours.log, 5*time.Second, "received Cisco Unity vendor ID",
		"sending UNITY_SPLIT_INCLUDE: 10.5.0.0/16 10.2.0.0/16", "narrowed CHILD_SA to UNITY_SPLIT_INCLUDE 10.2.0.0/16")
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
