package e2e

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/xdpsec/xdpsec/internal/daemon"
	"github.com/xdpsec/xdpsec/internal/testenv"
)

// The remote-access scenario's gateway: our daemon with a certificate,
// EAP-MSCHAPv2 users and a pool of three addresses with a DNS server.
func rwGatewayConf() string {
	return `connections {
   rw {
      local_addrs = 192.0.2.1
      proposals = aes128gcm16-prfsha256-x25519
      pools = rw4
      send_cert = always
      local {
         auth = pubkey
         certs = gateway.pem
         id = gw.xdpsec.example
      }
      remote {
         auth = eap-mschapv2
         eap_id = %any
      }
      children {
         net {
            local_ts = 10.1.0.0/24
            esp_proposals = aes128gcm16
         }
      }
   }
}
pools {
   rw4 {
      addrs = 10.3.200.1-10.3.200.3
      dns = 10.3.0.1
   }
}
secrets {
` + rwSecrets + `}
`
}

var rwUsers = []string{"carol", "bob", "dave", "frank"}

var rwSecrets = func() string {
	var b strings.Builder
	for _, u := range rwUsers {
		fmt.Fprintf(&b, "   eap-%s {\n      id = %s\n      secret = \"%s's password\"\n   }\n", u, u, u)
	}
	return b.String()
}()

// rwConn is a road warrior's connection named after its user, asking
// for a virtual IP and the gateway's LAN.
func rwConn(user string) string {
	return fmt.Sprintf(`   %[1]s {
      remote_addrs = 192.0.2.1
      vips = 0.0.0.0
      proposals = aes128gcm16-prfsha256-x25519
      local {
         auth = eap-mschapv2
         id = %[1]s
      }
      remote {
         auth = pubkey
         id = gw.xdpsec.example
      }
      children {
         %[1]s {
            remote_ts = 10.1.0.0/24
            esp_proposals = aes128gcm16
         }
      }
   }
`, user)
}

func rwClientConf(users ...string) string {
	conf := "connections {\n"
	for _, u := range users {
		conf += rwConn(u)
	}
	return conf + "}\nsecrets {\n" + rwSecrets + "}\n"
}

// roadWarrior is a client namespace with its WAN toward the internet
// namespace.
type roadWarrior struct {
	*site
	user string
	vici string // charon's, "" for ours
	gw   *gateway
}

// TestDaemonRoadWarriors: our daemon as a remote-access gateway with a
// LAN host behind it and three road warriors, each in its namespace
// behind an "internet" namespace: charon as carol, charon as bob behind
// a masquerading NAT (nftables), and our daemon as dave. Each gets an
// address of the pool of three, pings the LAN host and sends it TCP over
// ESP, which the gateway's kernel SAs count; the leases are in
// list-pools. Our client has its virtual IP as a /32 on its WAN and the
// LAN routed in table 220 with it as source, so its ping and TCP need no
// source address; its DNS server is listed; a restart of our client keeps
// them, once. Then carol disconnects and frank, a fourth user, gets her
// address; our client terminates and its address, routes and rule are
// gone.
func TestDaemonRoadWarriors(t *testing.T) {
	start := time.Now()
	inet := newNetns(t, "inet")
	sysctl(t, inet, "net.ipv4.ip_forward", "1")
	gw := &site{Netns: newNetns(t, "rwgw"), name: "GW", wan: "wan-gw", outer: netip.MustParseAddr("192.0.2.1"),
		inner: netip.MustParsePrefix("10.1.0.0/24"), host: netip.MustParseAddr("10.1.0.1")}
	sysctl(t, gw.Netns, "net.ipv4.ip_forward", "1")
	ip(t, gw.Netns, "link add wan-gw type veth peer name i-gw netns "+inet.Name)
	lanAddr := addLAN(t, gw)
	ip(t, gw.Netns, "link set lo up", "addr add 192.0.2.1/24 dev wan-gw", "link set wan-gw up", lanAddr,
		"link set "+gw.lan+" up", "route add default via 192.0.2.254")
	inetCmds := []string{"link set lo up", "addr add 192.0.2.254/24 dev i-gw", "link set i-gw up"}

	// carol (and later frank) on charon, bob on charon behind the NAT,
	// dave on our daemon.
	rws := []*roadWarrior{{user: "carol"}, {user: "bob"}, {user: "dave"}}
	for i, rw := range rws {
		n := i + 1
		rw.site = &site{Netns: newNetns(t, "rw"+rw.user), name: rw.user, wan: "wan-" + rw.user,
			outer: netip.MustParseAddr(fmt.Sprintf("198.51.100.%d", 4*n+2))}
		peer := fmt.Sprintf("198.51.100.%d", 4*n+1)
		if rw.user == "bob" {
			// Behind the NAT: a private address, masqueraded by inet.
			rw.outer = netip.MustParseAddr("192.168.1.2")
			peer = "192.168.1.1"
		}
		ip(t, rw.Netns, "link add "+rw.wan+" type veth peer name i-"+rw.user+" netns "+inet.Name)
		bits := 30
		if rw.user == "bob" {
			bits = 24
		}
		ip(t, rw.Netns, "link set lo up", fmt.Sprintf("addr add %s/%d dev %s", rw.outer, bits, rw.wan),
			"link set "+rw.wan+" up", "route add default via "+peer)
		inetCmds = append(inetCmds, fmt.Sprintf("addr add %s/%d dev i-%s", peer, bits, rw.user), "link set i-"+rw.user+" up")
	}
	ip(t, inet, inetCmds...)
	rules := "table ip nat {\n chain post {\n  type nat hook postrouting priority srcnat; policy accept;\n  ip saddr 192.168.1.0/24 oifname \"i-gw\" masquerade\n }\n}\n"
	if out, err := run(inet, rules, "nft", "-f", "-"); err != nil {
		t.Fatalf("nft in the internet namespace: %v\n%s", err, out)
	}

	g := newGateway(t, gw, rwGatewayConf())
	dave := rws[2]
	dave.gw = newGateway(t, dave.site, rwClientConf("dave"))
	writeCerts(t, map[string]*gateway{"gw.xdpsec.example": g, "dave": dave.gw})
	g.start()
	dave.gw.start()
	caPEM, err := os.ReadFile(filepath.Join(g.dir, "x509ca", "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	charon := charonOptions{plugins: "eap-identity eap-mschapv2", installRoutes: true, files: map[string][]byte{"x509ca/ca.pem": caPEM}}
	_, rws[0].vici = startCharonWith(t, rws[0].site, rwClientConf("carol", "frank"), charon)
	_, rws[1].vici = startCharonWith(t, rws[1].site, rwClientConf("bob"), charon)
	t.Logf("topology, xdpsec load and the daemons and charons up in %v", time.Since(start).Round(time.Millisecond))

	for _, rw := range rws {
		rw.connect(t, rw.user)
	}
	vips := g.rwVIPs(t)
	t.Logf("virtual IPs: %v", vips)
	seen := map[netip.Addr]bool{}
	for _, rw := range rws {
		v := vips[rw.user]
		if !v.IsValid() || seen[v] || !netip.MustParsePrefix("10.3.200.0/30").Contains(v) || v == netip.MustParseAddr("10.3.200.0") {
			t.Fatalf("%s's virtual IP %v: not one of the pool's, or given twice (%v)", rw.user, v, vips)
		}
		seen[v] = true
	}
	for _, sa := range g.sas() {
		if want := sa.EAPID == "bob"; sa.NATRemote != want {
			t.Errorf("gateway: IKE_SA of %s: NAT on the remote side %v, want %v", sa.EAPID, sa.NATRemote, want)
		}
	}
	g.wantLeases(t, map[string]netip.Addr{"carol": vips["carol"], "bob": vips["bob"], "dave": vips["dave"]}, nil)

	// Our client: the address, the routes, the DNS server.
	dv := vips["dave"]
	sa := dave.gw.sas()
	if len(sa) != 1 || !slices.Equal(sa[0].LocalVIPs, []string{dv.String()}) || !slices.Equal(sa[0].DNSServers, []string{"10.3.0.1"}) ||
		len(sa[0].Children) != 1 || !slices.Equal(sa[0].Children[0].LocalTS, []string{dv.String() + "/32"}) {
		t.Fatalf("our client's IKE_SA: %+v", sa)
	}
	logB, _ := os.ReadFile(dave.gw.logPath)
	for _, l := range []string{"installing new virtual IP " + dv.String(), "received DNS server 10.3.0.1"} {
		if !strings.Contains(string(logB), l) {
			t.Errorf("our client's log lacks %q", l)
		}
	}
	if out := cmdOut(t, dave.Netns, "ip", "-o", "addr", "show", "dev", dave.wan); !strings.Contains(out, "inet "+dv.String()+"/32") || !strings.Contains(out, "noprefixroute") {
		t.Errorf("our client: virtual IP not on %s as a /32 without prefix route:\n%s", dave.wan, out)
	}
	wantRoute := "10.1.0.0/24 via 198.51.100.13 dev wan-dave proto static src " + dv.String()
	if out := cmdOut(t, dave.Netns, "ip", "route", "show", "table", "220"); strings.TrimSpace(out) != wantRoute {
		t.Errorf("our client's table 220:\n%s\nwant %s", out, wantRoute)
	}
	if out := cmdOut(t, dave.Netns, "ip", "rule", "show"); strings.Count(out, "220:\tfrom all lookup 220") != 1 {
		t.Errorf("our client's rules:\n%s", out)
	}

	// Traffic: each client pings the LAN host and sends it 1 MB; our
	// client without choosing the source, charon's from their VIPs.
	const size = 1 << 20
	for _, rw := range rws {
		src := vips[rw.user]
		if rw.vici == "" {
			src = netip.Addr{}
		}
		if got := ping(t, rw.Netns, src, gw.lanA, 5, 5); got != 5 {
			t.Errorf("%s: ping LAN host: %d of 5 answered", rw.user, got)
		}
		res := tcpTransfer(t, rw.Netns, src, gw.lanH, gw.lanA, size, 2*time.Minute, nil)
		t.Logf("%s → LAN host: %v", rw.user, res)
	}
	g.wantESP(t, size)
	if c := dave.gw.child("dave"); c.PacketsOut == 0 || c.BytesOut < size {
		t.Errorf("our client's CHILD_SA sent %d packets, %d bytes", c.PacketsOut, c.BytesOut)
	}

	// Our client restarts (SIGTERM, state saved): it takes its IKE_SA
	// back with the virtual IP, which stays once on the interface, as the
	// route and the rule do; traffic goes on.
	dave.gw.stop()
	dave.gw.start()
	if sa := dave.gw.sas(); len(sa) != 1 || !slices.Equal(sa[0].LocalVIPs, []string{dv.String()}) {
		t.Fatalf("our client after its restart: %+v", sa)
	}
	if out := cmdOut(t, dave.Netns, "ip", "-o", "addr"); strings.Count(out, " "+dv.String()+"/") != 1 {
		t.Errorf("our client after its restart: addresses\n%s", out)
	}
	if out := cmdOut(t, dave.Netns, "ip", "route", "show", "table", "220"); strings.TrimSpace(out) != wantRoute {
		t.Errorf("our client's table 220 after its restart:\n%s\nwant %s", out, wantRoute)
	}
	if out := cmdOut(t, dave.Netns, "ip", "rule", "show"); strings.Count(out, "220:") != 1 {
		t.Errorf("our client's rules after its restart:\n%s", out)
	}
	if got := ping(t, dave.Netns, netip.Addr{}, gw.lanA, 3, 5); got != 3 {
		t.Errorf("dave after the restart: ping LAN host: %d of 3 answered", got)
	}

	// carol leaves; frank, a fourth user, gets her address.
	carol := rws[0]
	if out, err := run(carol.Netns, "", "swanctl", "--terminate", "--ike", "carol", "--uri", carol.vici, "--timeout", "20"); err != nil {
		t.Fatalf("swanctl --terminate: %v\n%s", err, out)
	}
	g.wantLeases(t, map[string]netip.Addr{"bob": vips["bob"], "dave": vips["dave"]}, map[string]netip.Addr{"carol": vips["carol"]})
	carol.connect(t, "frank")
	if v := g.rwVIPs(t)["frank"]; v != vips["carol"] {
		t.Fatalf("frank got %v, want carol's %v", v, vips["carol"])
	}
	g.wantLeases(t, map[string]netip.Addr{"bob": vips["bob"], "dave": vips["dave"], "frank": vips["carol"]}, nil)
	if got := ping(t, carol.Netns, vips["carol"], gw.lanA, 3, 5); got != 3 {
		t.Errorf("frank: ping LAN host: %d of 3 answered", got)
	}

	// Our client terminates: its address, routes and rule go.
	dave.gw.ok("terminate", "--ike", "dave")
	if out := cmdOut(t, dave.Netns, "ip", "-o", "addr", "show", "dev", dave.wan); strings.Contains(out, dv.String()) {
		t.Errorf("our client's virtual IP left after terminate:\n%s", out)
	}
	if out := cmdOut(t, dave.Netns, "ip", "route", "show", "table", "220") + cmdOut(t, dave.Netns, "ip", "rule", "show"); strings.Contains(out, "220") || strings.Contains(out, "10.1.0.0") {
		t.Errorf("our client's routes or rule left after terminate:\n%s", out)
	}
	t.Logf("scenario in %v", time.Since(start).Round(time.Millisecond))
}

// cmdOut runs a command in ns and fails the test if it fails.
func cmdOut(t *testing.T, ns *testenv.Netns, args ...string) string {
	t.Helper()
	out, err := run(ns, "", args...)
	if err != nil {
		t.Fatalf("in %s: %s: %v\n%s", ns.Name, strings.Join(args, " "), err, out)
	}
	return out
}

// connect has the road warrior's connection for user establish: swanctl
// for charon, xdpsec initiate for ours.
func (rw *roadWarrior) connect(t *testing.T, user string) {
	t.Helper()
	start := time.Now()
	if rw.vici == "" {
		rw.gw.ok("initiate", "--child", user, "--timeout", "60s")
	} else if out, err := run(rw.Netns, "", "swanctl", "--initiate", "--child", user, "--uri", rw.vici, "--timeout", "60"); err != nil {
		t.Fatalf("%s: swanctl --initiate: %v\n%s", user, err, out)
	}
	t.Logf("%s connected in %v", user, time.Since(start).Round(time.Millisecond))
}

// rwVIPs are the virtual IPs the gateway assigned, by EAP identity.
func (g *gateway) rwVIPs(t *testing.T) map[string]netip.Addr {
	t.Helper()
	out := map[string]netip.Addr{}
	for _, sa := range g.sas() {
		if len(sa.RemoteVIPs) != 1 {
			t.Fatalf("gateway: IKE_SA of %q with virtual IPs %v", sa.EAPID, sa.RemoteVIPs)
		}
		out[sa.EAPID] = netip.MustParseAddr(sa.RemoteVIPs[0])
	}
	return out
}

// wantLeases checks list-pools --leases -o json: the pool's online and
// offline leases by identity, polling a while for a delete to land.
func (g *gateway) wantLeases(t *testing.T, online, offline map[string]netip.Addr) {
	t.Helper()
	want := map[string]string{}
	for id, a := range online {
		want[id] = a.String() + " online"
	}
	for id, a := range offline {
		want[id] = a.String() + " offline"
	}
	var got map[string]string
	var out string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		out = g.ok("-o", "json", "list-pools", "--leases")
		var pools []daemon.PoolInfo
		if err := json.Unmarshal([]byte(out), &pools); err != nil || len(pools) != 1 {
			t.Fatalf("list-pools: %v\n%s", err, out)
		}
		p := pools[0]
		got = map[string]string{}
		for _, l := range p.Leases {
			got[l.Identity] = fmt.Sprintf("%s %s", l.Addr, map[bool]string{true: "online", false: "offline"}[l.Online])
		}
		if fmt.Sprint(got) == fmt.Sprint(want) && p.Online == len(online) && p.Offline == len(offline) && p.Size == 3 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("leases %v, want %v:\n%s", got, want, out)
		}
	}
}

// wantESP checks that each road warrior's CHILD_SA on the gateway
// decrypted the client's traffic in the kernel: its inbound SA counted
// at least size bytes, as list-sas and `ip -s xfrm state` both say; bob's
// SAs are ESP in UDP.
func (g *gateway) wantESP(t *testing.T, size uint64) {
	t.Helper()
	kernel := stateStats(t, g.Netns)
	for _, sa := range g.sas() {
		if len(sa.Children) != 1 {
			t.Errorf("gateway: IKE_SA of %s has %d CHILD_SAs", sa.EAPID, len(sa.Children))
			continue
		}
		c := sa.Children[0]
		in := kernel[parseSPI(t, c.SPIIn)]
		t.Logf("gateway: %s's CHILD_SA in %s: %d packets, %d bytes (kernel %d, %d); out %s: %d packets; encap %v",
			sa.EAPID, c.SPIIn, c.PacketsIn, c.BytesIn, in.packets, in.bytes, c.SPIOut, c.PacketsOut, c.Encap)
		if in.bytes < size || in.packets != c.PacketsIn || c.PacketsOut == 0 {
			t.Errorf("gateway: %s's CHILD_SA: kernel %+v, list-sas %+v", sa.EAPID, in, c)
		}
		if c.Encap != (sa.EAPID == "bob") {
			t.Errorf("gateway: %s's CHILD_SA encap %v", sa.EAPID, c.Encap)
		}
	}
	if out := cmdOut(t, g.Netns, "ip", "xfrm", "state"); strings.Count(out, "encap type espinudp") != 2 {
		t.Errorf("gateway: want bob's two SAs in UDP:\n%s", out)
	}
}
