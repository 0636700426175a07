package daemon

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/xdpsec/xdpsec/ike"
)

const raConf = `connections { rw {
  pools = p
  local { auth = psk }
  remote { auth = eap-mschapv2 }
  children { c { local_ts = 10.3.0.0/16 } } } }
pools { p { addrs = ADDRS
  dns = DNS } }
secrets {
  ike { secret = abc }
  eap-carol { id = carol
    secret = "carol's password" } }`

func raConfig(t *testing.T, addrs, dns string) *Loaded {
	t.Helper()
	conf := strings.NewReplacer("ADDRS", addrs, "DNS", dns).Replace(raConf)
	l, err := LoadConfig(writeConfig(t, map[string]string{"swanctl.conf": conf}))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestMapConfigRemoteAccess: pools and EAP secrets reach the engine's
// configuration.
func TestMapConfigRemoteAccess(t *testing.T) {
	l := raConfig(t, "10.3.200.0/24", "10.3.0.1")
	if len(l.Pools) != 1 || l.Pools[0].Name() != "p" || !slices.Equal(l.Pools[0].DNS, []netip.Addr{netipAddr("10.3.0.1")}) {
		t.Errorf("pools %+v", l.Pools)
	}
	if len(l.Credentials.EAP) != 1 || !slices.Equal(l.Credentials.EAP[0].IDs, []string{"carol"}) || string(l.Credentials.EAP[0].Secret) != "carol's password" {
		t.Errorf("EAP secrets %+v", l.Credentials.EAP)
	}
	if c := l.Connections[0]; !slices.Equal(c.Pools, []string{"p"}) || c.Remote[0].Auth != ike.AuthEAP {
		t.Errorf("connection %+v", c)
	}
}

// TestReloadKeepsLeases: a reload keeps the leases of a pool whose addrs
// are unchanged (its dns taken from the new file), and starts a pool
// whose addrs changed empty.
func TestReloadKeepsLeases(t *testing.T) {
	old := raConfig(t, "10.3.200.0/24", "10.3.0.1")
	if _, _, err := old.Pools[0].Leases.Acquire("carol", netip.Addr{}); err != nil {
		t.Fatal(err)
	}
	same := raConfig(t, "10.3.200.0/24", "10.3.0.2")
	keepLeases(old, same)
	if _, online, _ := same.Pools[0].Leases.Stats(); online != 1 || !slices.Equal(same.Pools[0].DNS, []netip.Addr{netipAddr("10.3.0.2")}) {
		t.Errorf("unchanged addrs: %d online, dns %v", online, same.Pools[0].DNS)
	}
	changed := raConfig(t, "10.3.201.0/24", "10.3.0.1")
	keepLeases(old, changed)
	if _, online, offline := changed.Pools[0].Leases.Stats(); online+offline != 0 {
		t.Errorf("changed addrs kept %d leases", online+offline)
	}
}
