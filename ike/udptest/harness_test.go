package udptest

import (
	"bytes"
	"context"
	"fmt"
	"github.com/xdpsec/xdpsec/ike/transform"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xdpsec/xdpsec/ike"
	"github.com/xdpsec/xdpsec/ike/dataplanetest"
	"github.com/xdpsec/xdpsec/internal/ikesocket"
	"github.com/xdpsec/xdpsec/internal/testenv"
)

// logRecorder keeps an engine's log lines, for charon's wording.
type logRecorder struct {
	mu    *sync.Mutex
	lines *[]string
}

func newLogRecorder() *logRecorder { return &logRecorder{mu: &sync.Mutex{}, lines: &[]string{}} }

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	*l.lines = append(*l.lines, r.Level.String()+" "+r.Message)
	return nil
}
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logRecorder) WithGroup(string) slog.Handler      { return l }

func (l *logRecorder) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), *l.lines...)
}

func (l *logRecorder) contains(s string) bool {
	for _, line := range l.all() {
		if strings.Contains(line, s) {
			return true
		}
	}
	return false
}

// node is one engine on its own sockets.
type node struct {
	name  string
	addr  netip.Addr
	e     *ike.Engine
	dp    *dataplanetest.Dataplane
	log   *logRecorder
	socks *ikesocket.Sockets
}

// netEnv is a throwaway network namespace whose loopback carries the
// engines' sockets: 127.0.0.1 and 127.0.0.2.
type netEnv struct {
	ns *testenv.Netns
}

var (
	addrA = netip.MustParseAddr("127.0.0.1")
	addrB = netip.MustParseAddr("127.0.0.2")
)

func newNetEnv(t *testing.T) *netEnv {
	t.Helper()
	ns := testenv.NewNetns(t, "xdpsec-ike") // skips without root
	ns.MustRun(t, "ip", "addr", "add", "127.0.0.2/8", "dev", "lo")
	return &netEnv{ns: ns}
}

type ports struct{ ike, natt uint16 }

type pairOptions struct {
	connA, connB   func(c *ike.Connection)
	cfgA, cfgB     func(c *ike.Config)
	portsA, portsB ports // default 500/4500
	// wrapA and wrapB wrap each engine's Sender (loss, gates).
	wrapA, wrapB func(ike.Sender) ike.Sender
	pskA, pskB   string
}

// baseConn is moon/sun with a PSK and one tunnel 10.1.0.0/16 === 10.2.0.0/16.
func baseConn(local, remote netip.Addr, remotePort uint16, localID, remoteID, localNet, remoteNet string) *ike.Connection {
	return &ike.Connection{
		Name:        "gw",
		LocalAddrs:  []netip.Addr{local},
		RemoteAddrs: []netip.Addr{remote},
		RemotePort:  remotePort,
		Proposals:   transform.MustParseProposals(transform.ProtoIKE, "aes128gcm16-prfsha256-x25519"),
		Local:       []*ike.AuthConfig{{Auth: ike.AuthPSK, ID: ike.MustParseIdentity(localID)}},
		Remote:      []*ike.AuthConfig{{Auth: ike.AuthPSK, ID: ike.MustParseIdentity(remoteID)}},
		Children: []*ike.ChildConfig{{
			Name: "net", LocalTS: ike.MustParseTSSpecs(localNet), RemoteTS: ike.MustParseTSSpecs(remoteNet),
			ESPProposals: transform.MustParseProposals(transform.ProtoESP, "aes128gcm16"),
		}},
	}
}

// pair starts two engines, a (the initiator, 127.0.0.1) and b
// (127.0.0.2), each on its own sockets in the namespace.
func (v *netEnv) pair(t *testing.T, o pairOptions) (a, b *node) {
	t.Helper()
	for _, p := range []*ports{&o.portsA, &o.portsB} {
		if p.ike == 0 {
			*p = ports{500, 4500}
		}
	}
	if o.pskA == "" {
		o.pskA = "this is a shared secret"
	}
	if o.pskB == "" {
		o.pskB = o.pskA
	}
	ca := baseConn(addrA, addrB, o.portsB.ike, "moon.example.org", "sun.example.org", "10.1.0.0/16", "10.2.0.0/16")
	cb := baseConn(addrB, addrA, o.portsA.ike, "sun.example.org", "moon.example.org", "10.2.0.0/16", "10.1.0.0/16")
	if o.connA != nil {
		o.connA(ca)
	}
	if o.connB != nil {
		o.connB(cb)
	}
	a = v.node(t, "a", addrA, o.portsA, ca, o.pskA, 0xc1000000, o.cfgA, o.wrapA)
	b = v.node(t, "b", addrB, o.portsB, cb, o.pskB, 0xc2000000, o.cfgB, o.wrapB)
	t.Cleanup(func() {
		if t.Failed() {
			for _, n := range []*node{a, b} {
				for _, l := range n.log.all() {
					t.Logf("%s: %s", n.name, l)
				}
			}
		}
	})
	return a, b
}

func (v *netEnv) node(t *testing.T, name string, addr netip.Addr, p ports, c *ike.Connection, psk string, spiBase uint32,
	mod func(*ike.Config), wrap func(ike.Sender) ike.Sender) *node {
	t.Helper()
	n := &node{name: name, addr: addr, dp: dataplanetest.New(spiBase), log: newLogRecorder()}
	err := v.ns.Do(func() error {
		var err error
		n.socks, err = ikesocket.Listen(ikesocket.Config{Addrs: []netip.Addr{addr}, Port: p.ike, NATTPort: p.natt})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	var sender ike.Sender = Sender{n.socks}
	if wrap != nil {
		sender = wrap(sender)
	}
	cfg := ike.Config{
		Logger: slog.New(n.log), Sender: sender, Dataplane: n.dp,
		Credentials: ike.Credentials{Shared: []ike.SharedKey{{Secret: []byte(psk)}}},
		Port:        p.ike, NATTPort: p.natt,
		// Real time, kept short: 100ms, then 150, 225, ...
		RetransmitTimeout: 100 * time.Millisecond, RetransmitBase: 1.5, RetransmitTries: 8,
	}
	if mod != nil {
		mod(&cfg)
	}
	if n.e, err = ike.New(cfg); err != nil {
		t.Fatal(err)
	}
	if err := n.e.AddConnection(c); err != nil {
		t.Fatal(err)
	}
	Serve(n.socks, n.e)
	t.Cleanup(func() {
		n.socks.Close()
		n.e.Close()
	})
	return n
}

// waitFor polls cond until it holds or the time is up.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (n *node) established() []ike.IKESAInfo {
	var out []ike.IKESAInfo
	for _, sa := range n.e.IKESAs() {
		if sa.State == ike.IKESAEstablished {
			out = append(out, sa)
		}
	}
	return out
}

// settled reports whether both ends have exactly one IKE SA, established,
// with the same SPIs and one installed CHILD_SA whose SPIs pair up, and
// the dataplanes hold its two SAs: no exchange left half done.
func settled(a, b *node) bool {
	sa, sb := a.e.IKESAs(), b.e.IKESAs()
	if len(sa) != 1 || len(sb) != 1 || sa[0].State != ike.IKESAEstablished || sb[0].State != ike.IKESAEstablished {
		return false
	}
	if sa[0].SPIi != sb[0].SPIi || sa[0].SPIr != sb[0].SPIr || len(sa[0].Children) != 1 || len(sb[0].Children) != 1 {
		return false
	}
	ca, cb := sa[0].Children[0], sb[0].Children[0]
	return ca.State == ike.ChildSAInstalled && cb.State == ike.ChildSAInstalled &&
		ca.SPIIn == cb.SPIOut && ca.SPIOut == cb.SPIIn && len(a.dp.SAs()) == 2 && len(b.dp.SAs()) == 2
}

func waitSettled(t *testing.T, a, b *node) (ike.IKESAInfo, ike.IKESAInfo) {
	t.Helper()
	waitFor(t, "one established IKE_SA with one CHILD_SA on both ends", func() bool { return settled(a, b) })
	checkKeys(t, a, b)
	return a.e.IKESAs()[0], b.e.IKESAs()[0]
}

// checkKeys verifies that each ESP SA one end installed has its twin at
// the other end, in the opposite direction, with the same algorithms and
// keys: a's outbound key is what b derived for inbound, and so on.
func checkKeys(t *testing.T, a, b *node) {
	t.Helper()
	as, bs := a.dp.SAs(), b.dp.SAs()
	if len(as) != len(bs) || len(as) == 0 {
		t.Fatalf("a has %d ESP SAs, b has %d", len(as), len(bs))
	}
	for _, x := range as {
		y := b.dp.SA(x.SPI)
		switch {
		case y == nil:
			t.Fatalf("SA %08x of a has no twin in b", x.SPI)
		case x.Inbound == y.Inbound:
			t.Fatalf("SA %08x is inbound=%v on both ends", x.SPI, x.Inbound)
		case len(x.EncrKey) == 0 || !bytes.Equal(x.EncrKey, y.EncrKey) || !bytes.Equal(x.IntegKey, y.IntegKey):
			t.Fatalf("SA %08x: keys differ", x.SPI)
		case x.Encr != y.Encr || x.Integ != y.Integ || x.ESN != y.ESN || x.Mode != y.Mode || x.Dst != y.Dst || x.Src != y.Src:
			t.Fatalf("SA %08x differs: %+v vs %+v", x.SPI, x, y)
		}
	}
}

func (n *node) initiate(t *testing.T) {
	t.Helper()
	if _, err := n.e.Initiate("gw"); err != nil {
		t.Fatal(err)
	}
}

func (n *node) wantLog(t *testing.T, lines ...string) {
	t.Helper()
	for _, l := range lines {
		if !n.log.contains(l) {
			t.Errorf("%s did not log %q", n.name, l)
		}
	}
}

func (n *node) waitLog(t *testing.T, line string) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%s to log %q", n.name, line), func() bool { return n.log.contains(line) })
}

// empty reports whether the node has no IKE SA and nothing in its dataplane.
func (n *node) empty() bool {
	return len(n.e.IKESAs()) == 0 && len(n.dp.SAs()) == 0 && len(n.dp.Policies()) == 0 && n.dp.AllocatedSPIs() == 0
}
