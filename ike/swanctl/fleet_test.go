package swanctl

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

const fleetConf = `fleet {
  member = gw1
  endpoints = http://127.0.0.1:2379, http://192.0.2.20:2379
  key_file = /etc/xdpsec/fleet.key
  prefix = /site/
  lease_ttl = 4s
  address = 192.0.2.11
  pools = yes
  checkpoint_interval = 500ms
  shared {
    wan {
      address = 192.0.2.1
      follow = keepalived
    }
    wan6 {
      address = 2001:db8::1
      interface = eth1
    }
  }
}
`

// TestLoadFleetSettings reads the fleet section of xdpsec.conf.
func TestLoadFleetSettings(t *testing.T) {
	st, err := LoadSettings(FromFS(memFS(map[string]string{"xdpsec.conf": fleetConf})), settingsFile)
	if err != nil {
		t.Fatal(err)
	}
	f := st.Fleet
	if f == nil || st.Radius != nil {
		t.Fatalf("settings %+v", st)
	}
	if f.Member != "gw1" || strings.Join(f.Endpoints, " ") != "http://127.0.0.1:2379 http://192.0.2.20:2379" || f.KeyFile != "/etc/xdpsec/fleet.key" ||
		f.Prefix != "/site" || f.LeaseTTL != 4*time.Second || f.Address != netip.MustParseAddr("192.0.2.11") || !f.Pools || f.CheckpointInterval != 500*time.Millisecond {
		t.Errorf("fleet %+v", f)
	}
	want := []FleetShared{
		{Name: "wan", Address: netip.MustParseAddr("192.0.2.1"), Follow: FollowKeepalived},
		{Name: "wan6", Address: netip.MustParseAddr("2001:db8::1"), Follow: FollowAlways, Interface: "eth1"},
	}
	if len(f.Shared) != 2 {
		t.Fatalf("shared %+v", f.Shared)
	}
	for i, w := range want {
		g := f.Shared[i]
		if g.Name != w.Name || g.Address != w.Address || g.Follow != w.Follow || g.Interface != w.Interface || g.Pos.Line == 0 {
			t.Errorf("shared[%d] = %+v, want %+v", i, g, w)
		}
	}
	if s, ok := f.SharedByAddr(netip.MustParseAddr("::ffff:192.0.2.1")); !ok || s.Name != "wan" {
		t.Errorf("SharedByAddr: %+v %v", s, ok)
	}

	// etcd over TLS.
	st, err = LoadSettings(FromFS(memFS(map[string]string{"xdpsec.conf": "fleet {\n endpoints = https://etcd1:2379,https://etcd2:2379\n key_file = /k\n etcd_ca = /ca.pem\n etcd_cert = /c.pem\n etcd_key = /ck.pem\n}\n"})), settingsFile)
	if err != nil {
		t.Fatal(err)
	}
	if f := st.Fleet; f.EtcdCA != "/ca.pem" || f.EtcdCert != "/c.pem" || f.EtcdKey != "/ck.pem" || len(f.Endpoints) != 2 {
		t.Errorf("TLS %+v", f)
	}

	// The defaults.
	st, err = LoadSettings(FromFS(memFS(map[string]string{"xdpsec.conf": "fleet {\n endpoints = http://[::1]:2379\n key_file = /k\n}\n"})), settingsFile)
	if err != nil {
		t.Fatal(err)
	}
	if f := st.Fleet; f.Prefix != DefaultFleetPrefix || f.LeaseTTL != DefaultFleetLeaseTTL || f.CheckpointInterval != DefaultFleetCheckpoint || f.Pools || len(f.Shared) != 0 || f.Member != "" {
		t.Errorf("defaults %+v", f)
	}
}

// TestFleetSettingsErrors: each mistake names its file, line and key.
func TestFleetSettingsErrors(t *testing.T) {
	for _, tc := range []struct{ name, from, to, want string }{
		{"unknown key", "pools = yes", "pool = yes", settingsFile + `:8: fleet.pool: unknown key`},
		{"bad endpoint", "http://192.0.2.20:2379", "192.0.2.20:2379", settingsFile + `:3: fleet.endpoints: "192.0.2.20:2379" is not an http:// or https:// URL`},
		{"no endpoints", "  endpoints = http://127.0.0.1:2379, http://192.0.2.20:2379\n", "", settingsFile + `:1: fleet.endpoints: missing endpoints`},
		{"no key", "  key_file = /etc/xdpsec/fleet.key\n", "", settingsFile + `:1: fleet.key_file: missing key_file`},
		{"relative key", "/etc/xdpsec/fleet.key", "fleet.key", settingsFile + `:4: fleet.key_file: key_file "fleet.key" must be an absolute path`},
		{"short ttl", "lease_ttl = 4s", "lease_ttl = 1s", settingsFile + `:6: fleet.lease_ttl: lease_ttl must be whole seconds, at least 2s`},
		{"fractional ttl", "lease_ttl = 4s", "lease_ttl = 2500ms", settingsFile + `:6: fleet.lease_ttl`},
		{"checkpoint too slow", "checkpoint_interval = 500ms", "checkpoint_interval = 5s", settingsFile + `:1: fleet.checkpoint_interval: checkpoint_interval (5s) must be shorter than lease_ttl (4s)`},
		{"checkpoint too fast", "checkpoint_interval = 500ms", "checkpoint_interval = 10ms", settingsFile + `:9: fleet.checkpoint_interval: checkpoint_interval must be at least 100ms`},
		{"bad address", "address = 192.0.2.11", "address = gw1.example.org", settingsFile + `:7: fleet.address: "gw1.example.org" is not an IP address`},
		{"bad bool", "pools = yes", "pools = maybe", settingsFile + `:8: fleet.pools`},
		{"bad follow", "follow = keepalived", "follow = vrrp", settingsFile + `:13: fleet.shared.wan.follow: "vrrp" is not one of always or keepalived`},
		{"no shared address", "      address = 192.0.2.1\n", "", settingsFile + `:11: fleet.shared.wan: missing address`},
		{"duplicate", "2001:db8::1", "192.0.2.1", settingsFile + `:15: fleet.shared.wan6.address: 192.0.2.1 is shared address wan already`},
		{"own address shared", "      address = 192.0.2.1\n", "      address = 192.0.2.11\n", settingsFile + `:11: fleet.shared.wan.address: 192.0.2.11 is fleet.address`},
		{"key in shared", "  shared {\n", "  shared {\n    follow = always\n", settingsFile + `:11: fleet.shared.follow: unknown key (shared holds only sections)`},
		{"other section", "  shared {", "  shard {", settingsFile + `:10: fleet.shard: unknown section (expected shared)`},
		{"bad prefix", "prefix = /site/", "prefix = site", settingsFile + `:5: fleet.prefix: prefix "site" must start with`},
		{"interface with keepalived", "      follow = keepalived\n", "      follow = keepalived\n      interface = eth0\n", settingsFile + `:14: fleet.shared.wan.interface: keepalived holds the address of follow = keepalived: interface is for follow = always`},
		{"bad interface", "interface = eth1", "interface = eth 1", settingsFile + `:17: fleet.shared.wan6.interface: "eth 1" is not an interface name`},
		{"cert without key", "  key_file = /etc/xdpsec/fleet.key\n", "  key_file = /etc/xdpsec/fleet.key\n  etcd_cert = /etc/xdpsec/etcd.pem\n", settingsFile + `:1: fleet.etcd_cert: etcd_cert and etcd_key go together`},
		{"TLS over http", "  key_file = /etc/xdpsec/fleet.key\n", "  key_file = /etc/xdpsec/fleet.key\n  etcd_ca = /etc/xdpsec/ca.pem\n", settingsFile + `:1: fleet.endpoints: http://127.0.0.1:2379 is not https:// but etcd_ca or etcd_cert is set`},
		{"relative CA", "  key_file = /etc/xdpsec/fleet.key\n", "  key_file = /etc/xdpsec/fleet.key\n  etcd_ca = ca.pem\n", settingsFile + `:5: fleet.etcd_ca: etcd_ca "ca.pem" must be an absolute path`},
		{"bad member", "member = gw1", "member = gw/1", settingsFile + `:2: fleet.member: member "gw/1" must not hold`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conf := strings.Replace(fleetConf, tc.from, tc.to, 1)
			if conf == fleetConf {
				t.Fatalf("%q not in the file", tc.from)
			}
			_, err := LoadSettings(FromFS(memFS(map[string]string{"xdpsec.conf": conf})), settingsFile)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want %s", err, tc.want)
			}
		})
	}
}
