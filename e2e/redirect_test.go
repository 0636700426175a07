package e2e

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xdpsec/xdpsec/internal/daemon"
)

// Redirect (RFC 5685) with three gateways and real ESP: G1, G2 and G3 are
// one cluster (identity gw.xdpsec.example, network 10.2.0.0/24 behind
// each), C a road warrior (10.1.0.1), D another client; all on one WAN, a
// bridge in a namespace of its own:
//
//	C 192.0.2.10 ─┐            ┌─ 192.0.2.1 G1 (redirects new clients)
//	D 192.0.2.20 ─┼── br0 ─────┼─ 192.0.2.2 G2
//	              │            └─ 192.0.2.3 G3
//
// Every gateway and C run `xdpsec load` and the daemon with the kernel
// dataplane; D, whose only part is to load G2, runs in dry-run.

const redirectSecret = "an end-to-end redirect test's shared secret"

// newRedirectSite makes a namespace on the bridge at outer, with inner's
// first address on lo and a route to the other inner network on the WAN.
func newRedirectSite(t *testing.T, br *site, name string, outer string, inner, other string) *site {
	t.Helper()
	s := &site{Netns: newNetns(t, "rd-"+name), name: name, wan: "wan-" + name,
		outer: netip.MustParseAddr(outer), inner: netip.MustParsePrefix(inner)}
	s.host = s.inner.Addr().Next()
	ip(t, s.Netns, "link add "+s.wan+" type veth peer name br-"+name+" netns "+br.Name)
	ip(t, br.Netns, "link set br-"+name+" master br0", "link set br-"+name+" up")
	ip(t, s.Netns, "link set lo up", addrCmd(s.wan, netip.PrefixFrom(s.outer, 24)), "link set "+s.wan+" up",
		addrCmd("lo", netip.PrefixFrom(s.host, 32)),
		"route add "+other+" dev "+s.wan+" src "+s.host.String())
	return s
}

func redirectClientConf(s *site, gw, remoteTS string) string {
	return fmt.Sprintf(`connections {
   rw {
      local_addrs = %s
      remote_addrs = %s
      proposals = aes128gcm16-prfsha256-x25519
      local {
         auth = psk
         id = c.xdpsec.example
      }
      remote {
         auth = psk
         id = gw.xdpsec.example
      }
      children {
         net {
            local_ts = %s
            remote_ts = %s
            esp_proposals = aes128gcm16
         }
      }
   }
}
secrets {
   ike-rw {
      id-a = c.xdpsec.example
      id-b = gw.xdpsec.example
      secret = "%s"
   }
}
`, s.outer, gw, s.inner, remoteTS, redirectSecret)
}

// redirectGatewayConf is a cluster gateway; the clients share an identity,
// so unique = never keeps each one's IKE SA.
func redirectGatewayConf(s *site, extra string) string {
	return fmt.Sprintf(`connections {
   rw {
      local_addrs = %s
      proposals = aes128gcm16-prfsha256-x25519
      unique = never
%s      local {
         auth = psk
         id = gw.xdpsec.example
      }
      remote {
         auth = psk
         id = c.xdpsec.example
      }
      children {
         net {
            local_ts = %s
            remote_ts = 10.0.0.0/8
            esp_proposals = aes128gcm16
         }
      }
   }
}
secrets {
   ike-rw {
      id-a = c.xdpsec.example
      id-b = gw.xdpsec.example
      secret = "%s"
   }
}
`, s.outer, extra, s.inner, redirectSecret)
}

// waitLogLines waits until a gateway's daemon log holds every line.
func (g *gateway) waitLogLines(timeout time.Duration, lines ...string) {
	g.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		b, _ := os.ReadFile(g.logPath)
		var missing []string
		for _, l := range lines {
			if !strings.Contains(string(b), l) {
				missing = append(missing, l)
			}
		}
		if len(missing) == 0 {
			return
		}
		if time.Now().After(deadline) {
			g.t.Fatalf("site %s: the daemon's log lacks %q", g.name, missing)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// clientSA is the one IKE SA of g with the peer at remote, with its
// installed CHILD_SA net, or an error.
func clientSA(g *gateway, remote string) (daemon.IKESA, error) {
	var found []daemon.IKESA
	for _, sa := range g.sas() {
		if sa.RemoteHost == remote && sa.State == "ESTABLISHED" {
			found = append(found, sa)
		}
	}
	if len(found) != 1 || len(found[0].Children) != 1 || found[0].Children[0].State != "INSTALLED" {
		return daemon.IKESA{}, fmt.Errorf("site %s: IKE SAs with %s: %+v", g.name, remote, found)
	}
	return found[0], nil
}

func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestDaemonRedirect: G1 redirects the new client C to the least loaded of
// G2 (serving D already) and G3, read from their /metrics: C lands on G3
// and pings G3's network through ESP (xdp_wan on G3 sees it). Then G3
// redirects C's established IKE SA to G2 (`xdpsec redirect`): C sets up
// the new IKE SA and CHILD_SA with G2 before deleting the old, and the
// ping goes through G2. G1 never keeps an SA.
func TestDaemonRedirect(t *testing.T) {
	br := &site{Netns: newNetns(t, "rd-br"), name: "br"}
	ip(t, br.Netns, "link set lo up", "link add br0 type bridge", "link set br0 up")
	cs := newRedirectSite(t, br, "c", "192.0.2.10", "10.1.0.0/24", "10.2.0.0/24")
	ds := newRedirectSite(t, br, "d", "192.0.2.20", "10.3.0.0/24", "10.2.0.0/24")
	g1s := newRedirectSite(t, br, "g1", "192.0.2.1", "10.2.0.0/24", "10.0.0.0/8")
	g2s := newRedirectSite(t, br, "g2", "192.0.2.2", "10.2.0.0/24", "10.0.0.0/8")
	g3s := newRedirectSite(t, br, "g3", "192.0.2.3", "10.2.0.0/24", "10.0.0.0/8")

	g2 := newGateway(t, g2s, redirectGatewayConf(g2s, ""))
	g3 := newGateway(t, g3s, redirectGatewayConf(g3s, ""))
	g1 := newGateway(t, g1s, redirectGatewayConf(g1s, `      redirect {
         choose = load
         poll_interval = 1s
         gateways {
            g2 {
               address = 192.0.2.2
               metrics = http://192.0.2.2:9901/metrics
            }
            g3 {
               address = 192.0.2.3
               metrics = http://192.0.2.3:9901/metrics
            }
         }
      }
`))
	for _, g := range []*gateway{g1, g2, g3} {
		g.args = []string{"--metrics", g.outer.String() + ":9901"}
	}
	c := newGateway(t, cs, redirectClientConf(cs, "192.0.2.1", "10.2.0.0/24"))
	// D: a daemon without dataplane, to give G2 a client.
	dir := t.TempDir()
	d := &gateway{site: ds, t: t, bin: xdpsecBin(t), dir: dir, conf: filepath.Join(dir, "swanctl.conf"),
		sock: filepath.Join(dir, "xdpsec.sock"), state: filepath.Join(dir, "ike-state.json"),
		logPath: filepath.Join(dir, "daemon.log"), args: []string{"--dataplane=dry-run"}}
	d.writeConf(redirectClientConf(ds, "192.0.2.2", "10.2.0.0/24"))

	g2.start()
	g3.start()
	d.start()
	d.ok("initiate", "--child", "net", "--timeout", "60s")
	g1.start()
	g1.waitLogLines(60*time.Second, "redirect gateway g2 of rw answers, load 1", "redirect gateway g3 of rw answers, load 0")

	// A new client: to G3, the least loaded.
	c.start()
	if out := c.ok("initiate", "--child", "net", "--timeout", "60s"); !strings.Contains(out, "IKE_SA rw[1] established") {
		t.Errorf("C's initiate said: %s", out)
	}
	g1.waitLogLines(10*time.Second, "redirecting peer to 192.0.2.3")
	c.waitLogLines(10*time.Second, "redirected to 192.0.2.3")
	if sas := c.sas(); len(sas) != 1 || sas[0].RemoteHost != "192.0.2.3" {
		t.Fatalf("C's IKE SAs: %+v, want one with G3", sas)
	}
	if sas := g1.sas(); len(sas) != 0 {
		t.Fatalf("G1 kept %+v", sas)
	}
	const n = 10
	if got := ping(t, cs.Netns, cs.host, g3s.host, n, 5); got != n {
		t.Fatalf("ping C %s → G3 %s: %d of %d answered", cs.host, g3s.host, got, n)
	}
	sa3, err := clientSA(g3, "192.0.2.10")
	if err != nil {
		t.Fatal(err)
	}
	if ch := sa3.Children[0]; ch.PacketsIn < n || ch.RxSeenPackets < n {
		t.Fatalf("G3's CHILD_SA of C: %d packets decrypted, %d seen by xdp_wan; want %d", ch.PacketsIn, ch.RxSeenPackets, n)
	}

	// G3 sends C, established, to G2.
	if out := g3.ok("redirect", "--peer", "192.0.2.10", "--gateway", "192.0.2.2"); !strings.Contains(out, "to 192.0.2.2") {
		t.Fatalf("xdpsec redirect: %s", out)
	}
	waitUntil(t, 60*time.Second, "C with G2 only, G3 without SAs", func() error {
		sas := c.sas()
		if len(sas) != 1 || sas[0].RemoteHost != "192.0.2.2" || len(sas[0].Children) != 1 || sas[0].Children[0].State != "INSTALLED" {
			return fmt.Errorf("C's IKE SAs: %+v", sas)
		}
		if sas := g3.sas(); len(sas) != 0 {
			return fmt.Errorf("G3's IKE SAs: %+v", sas)
		}
		_, err := clientSA(g2, "192.0.2.10")
		return err
	})
	c.waitLogLines(10*time.Second, "redirected to 192.0.2.2")
	g2.waitLogLines(10*time.Second, "client got redirected from 192.0.2.3")
	if got := ping(t, cs.Netns, cs.host, g2s.host, n, 5); got != n {
		t.Fatalf("ping C %s → G2 %s: %d of %d answered", cs.host, g2s.host, got, n)
	}
	sa2, err := clientSA(g2, "192.0.2.10")
	if err != nil {
		t.Fatal(err)
	}
	if ch := sa2.Children[0]; ch.PacketsIn < n || ch.RxSeenPackets < n {
		t.Fatalf("G2's CHILD_SA of C: %d packets decrypted, %d seen by xdp_wan; want %d", ch.PacketsIn, ch.RxSeenPackets, n)
	}
	// The kernel of C has only the SAs with G2.
	states, _ := run(cs.Netns, "", "ip", "xfrm", "state")
	if strings.Contains(states, "192.0.2.3") || !strings.Contains(states, "192.0.2.2") {
		t.Fatalf("C's XFRM states:\n%s", states)
	}
}
