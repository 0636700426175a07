package e2e

import (
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/xdpsec/xdpsec/internal/nsutil"
	"github.com/xdpsec/xdpsec/internal/testenv"
)

// site is one end of a tunnel: a gateway namespace with a WAN veth to the
// other site, an outer (WAN) address and an inner (protected) network.
type site struct {
	*testenv.Netns
	name  string
	wan   string       // WAN interface name
	outer netip.Addr   // WAN address, the tunnel endpoint
	inner netip.Prefix // protected network behind it
	// host is the gateway's own address in inner: on lo in two-namespace
	// tests, on the LAN veth when a LAN host namespace sits behind it.
	host netip.Addr
	lan  string         // LAN interface name, "" without a LAN host
	lanH *testenv.Netns // the LAN host namespace behind the gateway
	lanA netip.Addr     // the LAN host's address
	// public is the address the other site reaches this one at when a
	// NAT sits between them; outer if not valid.
	public netip.Addr
}

// reachedAt is the address the other site's IKE talks to.
func (s *site) reachedAt() netip.Addr {
	if s.public.IsValid() {
		return s.public
	}
	return s.outer
}

// newNetns makes a named network namespace with loopback up, deleted when
// the test ends; unlike testenv.NewNetns it fails instead of skipping: the
// guest must be able to.
func newNetns(t *testing.T, prefix string) *testenv.Netns {
	t.Helper()
	ns, err := nsutil.New(prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Close)
	return &testenv.Netns{Namespace: ns}
}

// run runs a command in the namespace: started from a thread inside it
// (Netns.Do), so the child inherits it without `ip netns exec`.
func run(ns *testenv.Netns, stdin string, args ...string) (string, error) {
	var out []byte
	err := ns.Do(func() error {
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Stdin = strings.NewReader(stdin)
		var err error
		out, err = cmd.CombinedOutput()
		return err
	})
	return string(out), err
}

// ip runs ip commands (one per line, without the leading "ip") in the
// namespace, all in one `ip -batch`, and fails the test on an error.
func ip(t *testing.T, ns *testenv.Netns, lines ...string) string {
	t.Helper()
	out, err := run(ns, strings.Join(lines, "\n")+"\n", "ip", "-batch", "-")
	if err != nil {
		t.Fatalf("in %s: ip -batch: %v\n%s\ncommands:\n%s", ns.Name, err, out, strings.Join(lines, "\n"))
	}
	return out
}

// sysctl writes a sysctl of the namespace through /proc/sys.
func sysctl(t *testing.T, ns *testenv.Netns, key, val string) {
	t.Helper()
	err := ns.Do(func() error {
		return os.WriteFile("/proc/sys/"+strings.ReplaceAll(key, ".", "/"), []byte(val), 0)
	})
	if err != nil {
		t.Fatalf("in %s: sysctl %s=%s: %v", ns.Name, key, val, err)
	}
}

// family picks the address plan of a test topology.
type family int

const (
	ipv4 family = 4
	ipv6 family = 6
)

// plan is where addresses come from: RFC 5737/3849 outer, private inner.
func (f family) plan() (outerA, outerB netip.Addr, innerA, innerB netip.Prefix, bits int) {
	if f == ipv6 {
		return netip.MustParseAddr("2001:db8::a"), netip.MustParseAddr("2001:db8::b"),
			netip.MustParsePrefix("fd00:a::/64"), netip.MustParsePrefix("fd00:b::/64"), 64
	}
	return netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2"),
		netip.MustParsePrefix("10.1.0.0/24"), netip.MustParsePrefix("10.2.0.0/24"), 24
}

// pair is two sites joined by a veth between their WANs.
type pair struct {
	a, b *site
	fam  family
	nat  *testenv.Netns // the NAT namespace of newNATPair, nil otherwise
}

// newPair makes sites A and B with their WANs on one veth, each site's
// inner address on lo and a route to the other's inner network through the
// other's outer address, sourced from its own inner address. Nothing is
// protected yet.
func newPair(t *testing.T, f family) *pair {
	t.Helper()
	return makePair(t, f, false)
}

// newPairWithLANs is newPair with a LAN host namespace behind each site:
// the gateway's inner address is on its LAN veth, the host's is the next
// one, and the host routes everything through the gateway.
func newPairWithLANs(t *testing.T, f family) *pair {
	t.Helper()
	return makePair(t, f, true)
}

func makePair(t *testing.T, f family, lans bool) *pair {
	t.Helper()
	outerA, outerB, innerA, innerB, bits := f.plan()
	p := &pair{fam: f,
		a: &site{Netns: newNetns(t, "site-a"), name: "A", wan: "wan-a", outer: outerA, inner: innerA, host: innerA.Addr().Next()},
		b: &site{Netns: newNetns(t, "site-b"), name: "B", wan: "wan-b", outer: outerB, inner: innerB, host: innerB.Addr().Next()},
	}
	ip(t, p.a.Netns, "link add "+p.a.wan+" type veth peer name "+p.b.wan+" netns "+p.b.Name)
	for _, s := range []*site{p.a, p.b} {
		sysctl(t, s.Netns, "net.ipv4.ip_forward", "1")
		sysctl(t, s.Netns, "net.ipv6.conf.all.forwarding", "1")
		peer := p.other(s)
		hostAddr := addrCmd("lo", netip.PrefixFrom(s.host, s.host.BitLen()))
		if lans {
			hostAddr = addLAN(t, s)
		}
		cmds := []string{"link set lo up",
			addrCmd(s.wan, netip.PrefixFrom(s.outer, bits)),
			"link set " + s.wan + " up",
			hostAddr,
			"route add " + peer.inner.String() + " via " + peer.outer.String() + " src " + s.host.String()}
		if lans {
			cmds = append(cmds, "link set "+s.lan+" up")
		}
		ip(t, s.Netns, cmds...)
	}
	return p
}

// addLAN puts a LAN host namespace behind s (lanhost-a behind site A):
// the gateway's inner address goes on its LAN veth (the command returned,
// for the caller's batch), the host's is the next one, and the host
// routes everything through the gateway.
func addLAN(t *testing.T, s *site) (hostAddr string) {
	t.Helper()
	s.lan, s.lanH, s.lanA = "lan-"+strings.ToLower(s.name), newNetns(t, "lanhost-"+strings.ToLower(s.name)), s.host.Next()
	ip(t, s.Netns, "link add "+s.lan+" type veth peer name lan0 netns "+s.lanH.Name)
	ip(t, s.lanH, "link set lo up",
		addrCmd("lan0", netip.PrefixFrom(s.lanA, s.inner.Bits())),
		"link set lan0 up",
		"route add default via "+s.host.String())
	return addrCmd(s.lan, netip.PrefixFrom(s.host, s.inner.Bits()))
}

// newNATPair is newPairWithLANs (IPv4) with a NAT namespace between the
// sites: A's WAN is 192.168.1.1 behind it, and the NAT masquerades what A
// sends B as its own 192.0.2.1; B's WAN is 192.0.2.2.
func newNATPair(t *testing.T) *pair {
	t.Helper()
	_, outerB, innerA, innerB, _ := ipv4.plan()
	p := &pair{fam: ipv4,
		a: &site{Netns: newNetns(t, "site-a"), name: "A", wan: "wan-a", outer: netip.MustParseAddr("192.168.1.1"),
			public: netip.MustParseAddr("192.0.2.1"), inner: innerA, host: innerA.Addr().Next()},
		b: &site{Netns: newNetns(t, "site-b"), name: "B", wan: "wan-b", outer: outerB, inner: innerB, host: innerB.Addr().Next()},
	}
	nat := newNetns(t, "nat")
	p.nat = nat
	ip(t, p.a.Netns, "link add wan-a type veth peer name nat-a netns "+nat.Name)
	ip(t, p.b.Netns, "link add wan-b type veth peer name nat-b netns "+nat.Name)
	sysctl(t, nat, "net.ipv4.ip_forward", "1")
	ip(t, nat, "link set lo up", "addr add 192.168.1.254/24 dev nat-a", "link set nat-a up",
		"addr add 192.0.2.1/24 dev nat-b", "link set nat-b up")
	rules := "table ip nat {\n chain post {\n  type nat hook postrouting priority srcnat; policy accept;\n  oifname \"nat-b\" masquerade\n }\n}\n"
	if out, err := run(nat, rules, "nft", "-f", "-"); err != nil {
		t.Fatalf("nft in the NAT namespace: %v\n%s", err, out)
	}
	for _, s := range []*site{p.a, p.b} {
		sysctl(t, s.Netns, "net.ipv4.ip_forward", "1")
		hostAddr := addLAN(t, s)
		cmds := []string{"link set lo up", addrCmd(s.wan, netip.PrefixFrom(s.outer, 24)), "link set " + s.wan + " up",
			hostAddr, "link set " + s.lan + " up"}
		if s == p.a {
			cmds = append(cmds, "route add default via 192.168.1.254")
		} else {
			cmds = append(cmds, "route add "+p.a.inner.String()+" via 192.0.2.1 src "+s.host.String())
		}
		ip(t, s.Netns, cmds...)
	}
	return p
}

func (p *pair) other(s *site) *site {
	if s == p.a {
		return p.b
	}
	return p.a
}

// addrCmd adds an address; IPv6 ones skip duplicate address detection so
// they are usable at once.
func addrCmd(dev string, a netip.Prefix) string {
	cmd := "addr add " + a.String() + " dev " + dev
	if a.Addr().Is6() {
		cmd += " nodad"
	}
	return cmd
}

// espAlgo is an ESP transform as ip-xfrm's algorithm arguments.
type espAlgo struct {
	name   string
	keyLen int // bytes of key material, salt included
	ipxfrm func(key []byte) []string
}

var (
	aesGCM = espAlgo{name: "aes128gcm16", keyLen: 16 + 4, ipxfrm: func(k []byte) []string {
		return []string{"aead", "rfc4106(gcm(aes))", "0x" + hex.EncodeToString(k), "128"}
	}}
	aesCBCSHA256 = espAlgo{name: "aes128-sha256", keyLen: 16 + 32, ipxfrm: func(k []byte) []string {
		return []string{"enc", "cbc(aes)", "0x" + hex.EncodeToString(k[:16]),
			"auth-trunc", "hmac(sha256)", "0x" + hex.EncodeToString(k[16:]), "128"}
	}}
	chacha20Poly1305 = espAlgo{name: "chacha20poly1305", keyLen: 32 + 4, ipxfrm: func(k []byte) []string {
		return []string{"aead", "rfc7539esp(chacha20,poly1305)", "0x" + hex.EncodeToString(k), "128"}
	}}
)

// testKey is made-up key material, different for each SPI.
func testKey(spi uint32, n int) []byte {
	k := make([]byte, n)
	for i := range k {
		k[i] = byte(spi>>(8*(i%4))) ^ byte(0x5a+i*7)
	}
	return k
}

// sa is one direction of a tunnel.
type sa struct {
	src, dst *site
	spi      uint32
	reqid    int
	ifID     uint32 // XFRM if_id on the state, 0 for none
}

// stateCmd is the ip command that installs the SA.
func (x sa) stateCmd(algo espAlgo) string {
	args := []string{"xfrm", "state", "add", "src", x.src.outer.String(), "dst", x.dst.outer.String(),
		"proto", "esp", "spi", fmt.Sprintf("%#x", x.spi), "reqid", strconv.Itoa(x.reqid), "mode", "tunnel"}
	args = append(args, algo.ipxfrm(testKey(x.spi, algo.keyLen))...)
	if x.ifID != 0 {
		args = append(args, "if_id", strconv.FormatUint(uint64(x.ifID), 10))
	}
	return strings.Join(args, " ")
}

// policyCmd is the ip command for a tunnel-mode policy with selectors sel
// in direction dir (out, in, fwd), using SA x.
func (x sa) policyCmd(dir string, sel [2]netip.Prefix) string {
	args := []string{"xfrm", "policy", "add", "src", sel[0].String(), "dst", sel[1].String(), "dir", dir}
	if x.ifID != 0 {
		args = append(args, "if_id", strconv.FormatUint(uint64(x.ifID), 10))
	}
	args = append(args, "tmpl", "src", x.src.outer.String(), "dst", x.dst.outer.String(),
		"proto", "esp", "reqid", strconv.Itoa(x.reqid), "mode", "tunnel")
	return strings.Join(args, " ")
}

// protect sets up a classic policy-based tunnel between the pair's inner
// networks: SA ab (A to B, SPI spiAB) and ba, with out and in (and fwd,
// for LAN hosts behind the gateways) policies on both sites.
func (p *pair) protect(t *testing.T, algo espAlgo, spiAB, spiBA uint32) (ab, ba sa) {
	t.Helper()
	ab = sa{src: p.a, dst: p.b, spi: spiAB, reqid: 1}
	ba = sa{src: p.b, dst: p.a, spi: spiBA, reqid: 2}
	aToB, bToA := [2]netip.Prefix{p.a.inner, p.b.inner}, [2]netip.Prefix{p.b.inner, p.a.inner}
	ip(t, p.a.Netns, ab.stateCmd(algo), ba.stateCmd(algo),
		ab.policyCmd("out", aToB), ba.policyCmd("in", bToA), ba.policyCmd("fwd", bToA))
	ip(t, p.b.Netns, ab.stateCmd(algo), ba.stateCmd(algo),
		ba.policyCmd("out", bToA), ab.policyCmd("in", aToB), ab.policyCmd("fwd", aToB))
	return ab, ba
}

// unprotect removes every SA and policy from both sites.
func (p *pair) unprotect(t *testing.T) {
	t.Helper()
	for _, s := range []*site{p.a, p.b} {
		ip(t, s.Netns, "xfrm state flush", "xfrm policy flush")
	}
}

// pingCmd is ping from iputils if the host has it, else busybox's.
func pingCmd() []string {
	if p, err := exec.LookPath("ping"); err == nil {
		return []string{p}
	}
	return []string{"busybox", "ping"}
}

// ping sends count echo requests from src (invalid: the address the
// routes give) to dst in ns, as fast as replies come, and returns how many
// were answered.
func ping(t *testing.T, ns *testenv.Netns, src, dst netip.Addr, count int, waitSec int) int {
	t.Helper()
	args := append(pingCmd(), "-c", strconv.Itoa(count), "-A", "-W", strconv.Itoa(waitSec))
	if src.IsValid() {
		args = append(args, "-I", src.String())
	}
	if dst.Is6() {
		args = append(args, "-6")
	}
	args = append(args, dst.String())
	out, _ := run(ns, "", args...)
	m := regexp.MustCompile(`(\d+) (?:packets )?received`).FindStringSubmatch(out)
	if m == nil {
		t.Logf("ping %s → %s: no summary in:\n%s", src, dst, out)
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// saStats are an XFRM state's lifetime counters as `ip -s xfrm state`
// prints them.
type saStats struct{ bytes, packets uint64 }

var lifetimeCurrent = regexp.MustCompile(`lifetime current:\s*\n\s*(\d+)\(bytes\), (\d+)\(packets\)`)

// stateStats reads the counters of the SAs in ns with `ip -s xfrm state`,
// by SPI.
func stateStats(t *testing.T, ns *testenv.Netns) map[uint32]saStats {
	t.Helper()
	out, err := run(ns, "", "ip", "-s", "xfrm", "state")
	if err != nil {
		t.Fatalf("ip -s xfrm state: %v\n%s", err, out)
	}
	stats := map[uint32]saStats{}
	for _, block := range regexp.MustCompile(`(?m)^src `).Split(out, -1) {
		spi := regexp.MustCompile(`proto (?:esp|ah) spi 0x([0-9a-f]+)`).FindStringSubmatch(block)
		if spi == nil {
			continue
		}
		m := lifetimeCurrent.FindStringSubmatch(block)
		if m == nil {
			t.Fatalf("no \"lifetime current\" counters in `ip -s xfrm state` output:\n%s", block)
		}
		id, _ := strconv.ParseUint(spi[1], 16, 32)
		b, _ := strconv.ParseUint(m[1], 10, 64)
		n, _ := strconv.ParseUint(m[2], 10, 64)
		stats[uint32(id)] = saStats{bytes: b, packets: n}
	}
	return stats
}

// stateStats is one SA's counters at one of its ends.
func (x sa) stateStats(t *testing.T, at *site) saStats {
	t.Helper()
	st, ok := stateStats(t, at.Netns)[x.spi]
	if !ok {
		t.Fatalf("site %s has no SA %#x", at.name, x.spi)
	}
	return st
}

// xfrmStat reads /proc/net/xfrm_stat of ns: the kernel's XFRM error counters.
func xfrmStat(t *testing.T, ns *testenv.Netns) map[string]uint64 {
	t.Helper()
	var b []byte
	// /proc/net is the process's namespace; thread-self is this thread's.
	err := ns.Do(func() (err error) { b, err = os.ReadFile("/proc/thread-self/net/xfrm_stat"); return err })
	if err != nil {
		t.Fatal(err)
	}
	out := string(b)
	m := map[string]uint64{}
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) == 2 {
			m[f[0]], _ = strconv.ParseUint(f[1], 10, 64)
		}
	}
	return m
}

// requireModule fails the test unless a kernel module is loaded (or built in).
func requireModule(t *testing.T, name string) {
	t.Helper()
	if _, err := os.Stat("/sys/module/" + name); err != nil {
		t.Fatalf("kernel module %s is not loaded: %v", name, err)
	}
}
