package swanctl

import (
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/xdpsec/xdpsec/ike"
	"github.com/xdpsec/xdpsec/ike/dataplanetest"
	"github.com/xdpsec/xdpsec/ike/iketest"
)

// xauthConf is an IKEv1 gateway as strongSwan's ikev1/xauth-psk and
// unity examples have it: a group PSK, an XAuth round, push mode, a pool
// with Cisco Unity attributes, and the users' XAuth secrets.
const xauthConf = `connections {
  rw {
    version = 1
    pools = v4
    pull = no
    local {
      auth = psk
    }
    remote {
      auth = psk
    }
    remote-xauth {
      auth = xauth
      xauth_id = alice
    }
    children {
      rw {
        local_ts = 10.3.0.0/16
      }
    }
  }
  client {
    version = 1
    remote_addrs = 192.0.2.1
    vips = 0.0.0.0
    local {
      auth = psk
    }
    local-xauth {
      auth = xauth-generic
      xauth_id = bob
    }
    remote {
      auth = psk
    }
  }
}
pools {
  v4 {
    addrs = 10.3.200.0/24
    split_include = 10.3.0.0/16, 192.168.1.7
    split_exclude = 192.168.0.0/24
    28672 = "Welcome"
    28674 = corp.example
  }
}
secrets {
  xauth-alice {
    id = alice
    secret = "alice's password"
  }
}
`

// TestLoadXAuth reads XAuth rounds, xauth_id, pull, the pools' Unity
// attributes and XAuth secrets (kept with the EAP ones, as charon does)
// into the engine's types, which the engine takes.
func TestLoadXAuth(t *testing.T) {
	cfg := mustLoadMem(t, map[string]string{"swanctl.conf": xauthConf})
	c := cfg.Connection("rw")
	if len(c.Remote) != 2 || c.Remote[1].Auth != ike.AuthXAuth || c.Remote[1].XAuthID != "alice" || !c.Connection.Push {
		t.Errorf("gateway: %d remote rounds, push %v", len(c.Remote), c.Connection.Push)
	}
	cl := cfg.Connection("client")
	if len(cl.Local) != 2 || cl.Local[1].Auth != ike.AuthXAuth || cl.Local[1].XAuthID != "bob" || cl.Connection.Push {
		t.Errorf("client: %d local rounds, push %v", len(cl.Local), cl.Connection.Push)
	}
	v4 := cfg.Pool("v4")
	if !slices.Equal(v4.SplitInclude, []netip.Prefix{netip.MustParsePrefix("10.3.0.0/16"), netip.MustParsePrefix("192.168.1.7/32")}) ||
		!slices.Equal(v4.SplitExclude, []netip.Prefix{netip.MustParsePrefix("192.168.0.0/24")}) ||
		len(v4.UnityAttrs) != 2 || v4.UnityAttrs[0].Type != 28672 || string(v4.UnityAttrs[0].Value) != "Welcome" ||
		v4.UnityAttrs[1].Type != 28674 || string(v4.UnityAttrs[1].Value) != "corp.example" {
		t.Errorf("v4 Unity attributes: %+v", v4.Pool)
	}
	if len(cfg.Secrets.EAP) != 1 || !slices.Equal(cfg.Secrets.EAP[0].IDs, []string{"alice"}) {
		t.Errorf("XAuth secrets: %+v", cfg.Secrets.EAP)
	}
	e, err := ike.New(ike.Config{Logger: slog.New(slog.DiscardHandler), Sender: iketest.NewNetwork().Sender(), Dataplane: dataplanetest.New(1),
		Pools: []*ike.Pool{v4.Pool}})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	for _, conn := range []*Connection{c, cl} {
		if err := e.AddConnection(conn.Connection); err != nil {
			t.Errorf("engine refuses %s: %v", conn.Name, err)
		}
	}
}

// TestXAuthWithoutSecrets: an XAuth gateway without a user is loaded,
// with a warning saying nobody can log in.
func TestXAuthWithoutSecrets(t *testing.T) {
	conf := xauthConf[:strings.Index(xauthConf, "secrets {")]
	cfg := mustLoadMem(t, map[string]string{"swanctl.conf": conf})
	if !strings.Contains(fmt.Sprint(cfg.Warnings), "connections.rw.remote-xauth: XAuth authentication but no secrets.xauth<suffix> or eap<suffix> section: no user can log in") {
		t.Errorf("warnings %v", cfg.Warnings)
	}
	if full := mustLoadMem(t, map[string]string{"swanctl.conf": xauthConf}); strings.Contains(fmt.Sprint(full.Warnings), "XAuth") {
		t.Errorf("warnings with an XAuth secret: %v", full.Warnings)
	}
}
