package swanctl

import (
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/xdpsec/xdpsec/ike"
	"github.com/xdpsec/xdpsec/ike/dataplanetest"
	"github.com/xdpsec/xdpsec/ike/eap"
	"github.com/xdpsec/xdpsec/ike/iketest"
)

const raConf = `connections {
  rw {
    pools = v4, v6
    local {
      auth = psk
    }
    remote {
      auth = eap-dynamic
      eap_id = %any
    }
    children {
      rw {
        local_ts = 10.3.0.0/16
      }
    }
  }
}
pools {
  v4 {
    addrs = 10.3.200.0/24
    dns = 10.3.0.1, 10.3.0.2
    nbns = 10.3.0.3
    subnet = 10.3.0.0/16, 192.168.1.7/24
    25 = corp.example, example.net
  }
  v6 {
    addrs = fd00::10-fd00::1f
    dns = fd00::1
  }
}
secrets {
  ike-1 {
    secret = x
  }
  eap-carol {
    id = carol
    secret = "carol's password"
  }
  eap-dave {
    id-1 = dave
    id-2 = dave@example.org
    secret = 0x64617665
  }
}
`

// TestLoadRemoteAccess reads pools, an EAP remote round and EAP secrets
// into the engine's types.
func TestLoadRemoteAccess(t *testing.T) {
	cfg := mustLoadMem(t, map[string]string{"swanctl.conf": raConf})
	c := cfg.Connection("rw")
	if !slices.Equal(c.Pools, []string{"v4", "v6"}) {
		t.Errorf("pools %v", c.Pools)
	}
	r := c.Remote[0]
	if r.Auth != ike.AuthEAP || !slices.Equal(r.EAPMethods, []eap.Type{eap.TypeMSCHAPv2, eap.TypeMD5, eap.TypeTLS}) || r.EAPID != "%any" {
		t.Errorf("remote round: %v %v %q", r.Auth, r.EAPMethods, r.EAPID)
	}
	if len(cfg.Pools) != 2 {
		t.Fatalf("%d pools", len(cfg.Pools))
	}
	v4 := cfg.Pool("v4")
	first, last := v4.Leases.Range()
	if first != netip.MustParseAddr("10.3.200.1") || last != netip.MustParseAddr("10.3.200.254") {
		t.Errorf("v4 range %v-%v", first, last)
	}
	if !slices.Equal(v4.DNS, []netip.Addr{netip.MustParseAddr("10.3.0.1"), netip.MustParseAddr("10.3.0.2")}) ||
		!slices.Equal(v4.NBNS, []netip.Addr{netip.MustParseAddr("10.3.0.3")}) ||
		!slices.Equal(v4.Subnets, []netip.Prefix{netip.MustParsePrefix("10.3.0.0/16"), netip.MustParsePrefix("192.168.1.0/24")}) ||
		!slices.Equal(v4.DNSDomains, []string{"corp.example", "example.net"}) {
		t.Errorf("v4 attributes: %+v", v4.Pool)
	}
	v6 := cfg.Pool("v6")
	if first, last := v6.Leases.Range(); first != netip.MustParseAddr("fd00::10") || last != netip.MustParseAddr("fd00::1f") || v6.Leases.Is4() {
		t.Errorf("v6 range %v-%v", first, last)
	}
	if len(cfg.Secrets.EAP) != 2 || !slices.Equal(cfg.Secrets.EAP[1].IDs, []string{"dave", "dave@example.org"}) ||
		string(cfg.Secrets.EAP[1].Secret.Bytes()) != "dave" || string(cfg.Secrets.EAP[0].Secret.Bytes()) != "carol's password" {
		t.Errorf("EAP secrets: %+v", cfg.Secrets.EAP)
	}
	// The engine takes the connection as it is.
	e, err := ike.New(ike.Config{Logger: slog.New(slog.DiscardHandler), Sender: iketest.NewNetwork().Sender(), Dataplane: dataplanetest.New(1),
		Pools: []*ike.Pool{v4.Pool, v6.Pool}})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if err := e.AddConnection(c.Connection); err != nil {
		t.Fatal(err)
	}
}

// TestRemoteAccessErrors: what is wrong names its file, line and key.
func TestRemoteAccessErrors(t *testing.T) {
	for _, tc := range []struct{ name, from, to, want string }{
		{"unknown pool", "pools = v4, v6", "pools = v4, v7", mainFile + `:3: connections.rw.pools: pool "v7" is not defined in the pools section`},
		{"bad addrs", "addrs = 10.3.200.0/24", "addrs = 10.3.200.0/33", mainFile + `:20: pools.v4.addrs: "10.3.200.0/33" is not a subnet (CIDR) or an address range (FROM-TO)`},
		{"bad range", "addrs = fd00::10-fd00::1f", "addrs = fd00::10-10.0.0.1", mainFile + `:27: pools.v6.addrs: pool "v6": fd00::10-10.0.0.1 is not a range of one address family`},
		{"bad dns", "dns = fd00::1", "dns = resolver", mainFile + `:28: pools.v6.dns: "resolver" is not an IP address`},
		{"unsupported attribute", "nbns = 10.3.0.3", "dhcp = 10.3.0.3", mainFile + `:22: pools.v4.dhcp: not supported yet`},
		{"bad split_include", "nbns = 10.3.0.3", "split_include = fd00::/64", mainFile + `:22: pools.v4.split_include: "fd00::/64" is not an IPv4 subnet`},
		{"unsupported method", "auth = eap-dynamic", "auth = eap-peap", mainFile + `:8: connections.rw.remote.auth: EAP authentication "eap-peap" is not supported yet`},
		{"eap_id without eap", "auth = eap-dynamic", "auth = pubkey", mainFile + `:9: connections.rw.remote.eap_id: eap_id applies to rounds with EAP authentication only`},
		{"missing addrs", "addrs = fd00::10-fd00::1f", "", mainFile + `:26: pools.v6: missing addrs`},
		{"eap secret without id", "    id = carol\n", "", mainFile + `:35: secrets.eap-carol: EAP secret without id`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conf := strings.Replace(raConf, tc.from, tc.to, 1)
			_, err := loadMem(t, map[string]string{"swanctl.conf": conf})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want %s", err, tc.want)
			}
		})
	}
}

// TestLoadEAPRadius: remote.auth = eap-radius relays to the daemon's
// RADIUS servers; it takes no method and keeps eap_id.
func TestLoadEAPRadius(t *testing.T) {
	cfg := mustLoadMem(t, map[string]string{"swanctl.conf": strings.Replace(raConf, "auth = eap-dynamic", "auth = eap-radius", 1)})
	r := cfg.Connection("rw").Remote[0]
	if r.Auth != ike.AuthEAPRadius || len(r.EAPMethods) != 0 || r.EAPID != "%any" {
		t.Errorf("remote round: %v %v %q", r.Auth, r.EAPMethods, r.EAPID)
	}
	e, err := ike.New(ike.Config{Logger: slog.New(slog.DiscardHandler), Sender: iketest.NewNetwork().Sender(), Dataplane: dataplanetest.New(1),
		Pools: []*ike.Pool{cfg.Pool("v4").Pool, cfg.Pool("v6").Pool}})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if err := e.AddConnection(cfg.Connection("rw").Connection); err != nil {
		t.Fatal(err)
	}
}

// TestLoadEAPTLS: auth = eap-tls in a remote round (our gateway as the
// EAP-TLS server, presenting its local round's certificate) and in a
// local one (a client presenting its certs); the engine refuses eap-tls
// where our side has no certificate, and drops it from eap-dynamic there.
func TestLoadEAPTLS(t *testing.T) {
	gw := strings.Replace(raConf, "auth = eap-dynamic", "auth = eap-tls", 1)
	cfg := mustLoadMem(t, map[string]string{"swanctl.conf": gw})
	if r := cfg.Connection("rw").Remote[0]; r.Auth != ike.AuthEAP || !slices.Equal(r.EAPMethods, []eap.Type{eap.TypeTLS}) {
		t.Errorf("remote round: %v %v", r.Auth, r.EAPMethods)
	}
	v4 := cfg.Pool("v4").Pool
	client := `connections {
  home {
    remote_addrs = 192.0.2.1
    vips = 0.0.0.0
    local {
      auth = eap-tls
      id = carol@example.org
    }
    remote {
      auth = pubkey
      id = sun.example.org
    }
    children {
      home {
        remote_ts = 10.1.0.0/16
      }
    }
  }
}
`
	cfg = mustLoadMem(t, map[string]string{"swanctl.conf": client})
	if l := cfg.Connection("home").Local[0]; l.Auth != ike.AuthEAP || !slices.Equal(l.EAPMethods, []eap.Type{eap.TypeTLS}) || l.IDSpec != "carol@example.org" {
		t.Errorf("local round: %v %v %q", l.Auth, l.EAPMethods, l.IDSpec)
	}
	newEngine := func() *ike.Engine {
		e, err := ike.New(ike.Config{Logger: slog.New(slog.DiscardHandler), Sender: iketest.NewNetwork().Sender(), Dataplane: dataplanetest.New(1),
			Pools: []*ike.Pool{v4}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e.Close() })
		return e
	}
	// No certificate was loaded (the daemon loads them): the client's
	// eap-tls alone is refused, naming the key.
	if err := newEngine().AddConnection(cfg.Connection("home").Connection); err == nil || !strings.Contains(err.Error(), "eap-tls needs a certificate") {
		t.Errorf("eap-tls client without a certificate: %v", err)
	}
	cfg = mustLoadMem(t, map[string]string{"swanctl.conf": gw})
	if err := newEngine().AddConnection(cfg.Connection("rw").Connection); err == nil || !strings.Contains(err.Error(), "eap-tls needs a certificate of ours") {
		t.Errorf("eap-tls gateway with a PSK: %v", err)
	}
	// eap-dynamic on the PSK gateway of raConf loads: EAP-TLS is left out.
	cfg = mustLoadMem(t, map[string]string{"swanctl.conf": raConf})
	if err := newEngine().AddConnection(cfg.Connection("rw").Connection); err != nil {
		t.Errorf("eap-dynamic gateway with a PSK: %v", err)
	}
}
