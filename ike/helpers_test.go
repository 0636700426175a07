package ike_test

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
	"github.com/xdpsec/xdpsec/ike/iketest"
)

// logRecorder is a slog handler keeping the messages, so tests can look
// for charon's wording.
type logRecorder struct {
	mu    *sync.Mutex
	lines *[]string
	attrs string
}

func newLogRecorder() *logRecorder {
	return &logRecorder{mu: &sync.Mutex{}, lines: &[]string{}}
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	var extra strings.Builder
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&extra, " %s=%v", a.Key, a.Value)
		return true
	})
	*l.lines = append(*l.lines, fmt.Sprintf("%s %s%s%s", r.Level, r.Message, l.attrs, extra.String()))
	return nil
}
func (l *logRecorder) WithAttrs(as []slog.Attr) slog.Handler {
	n := *l
	for _, a := range as {
		n.attrs += fmt.Sprintf(" %s=%v", a.Key, a.Value)
	}
	return &n
}
func (l *logRecorder) WithGroup(string) slog.Handler { return l }

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

func (l *logRecorder) count(s string) int {
	n := 0
	for _, line := range l.all() {
		if strings.Contains(line, s) {
			n++
		}
	}
	return n
}

type peer struct {
	name string
	addr netip.Addr
	e    *ike.Engine
	dp   *dataplanetest.Dataplane
	log  *logRecorder
}

type testbed struct {
	t     *testing.T
	clock *iketest.Clock
	net   *iketest.Network
	a, b  *peer // a initiates
	nat   bool  // addresses differ between the two views
	quiet bool
}

var (
	addrA = netip.MustParseAddr("192.0.2.1")
	addrB = netip.MustParseAddr("192.0.2.2")
)

// dpdActions are dpd_action's names, for subtests named after them.
var dpdActions = map[string]ike.Action{"clear": ike.ActionNone, "trap": ike.ActionTrap, "restart": ike.ActionStart}

// baseConn is moon/sun with a PSK and one tunnel 10.1.0.0/16 === 10.2.0.0/16.
// MOBIKE is off: the exchange tests follow messages on port 500 without
// its notifies; mobike_test.go turns it on.
func baseConn(local, remote netip.Addr, localID, remoteID, localNet, remoteNet string) *ike.Connection {
	return &ike.Connection{
		Name:        "gw",
		NoMobike:    true,
		LocalAddrs:  []netip.Addr{local},
		RemoteAddrs: []netip.Addr{remote},
		Proposals:   transform.MustParseProposals(transform.ProtoIKE, "aes128gcm16-prfsha256-x25519"),
		Local:       []*ike.AuthConfig{{Auth: ike.AuthPSK, ID: ike.MustParseIdentity(localID)}},
		Remote:      []*ike.AuthConfig{{Auth: ike.AuthPSK, ID: ike.MustParseIdentity(remoteID)}},
		Children: []*ike.ChildConfig{{
			Name: "net", LocalTS: ike.MustParseTSSpecs(localNet), RemoteTS: ike.MustParseTSSpecs(remoteNet),
			ESPProposals: transform.MustParseProposals(transform.ProtoESP, "aes128gcm16"),
		}},
	}
}

type bedOptions struct {
	connA, connB func(c *ike.Connection)
	cfgA, cfgB   func(c *ike.Config)
	pskA, pskB   string
	aAddr, bAddr netip.Addr // default addrA, addrB
	noAttach     bool
	quiet        bool // discard the engines' logs (fuzz targets: speed)
}

func newTestbed(t *testing.T, o bedOptions) *testbed {
	t.Helper()
	tb := &testbed{t: t, clock: iketest.NewClock(), net: iketest.NewNetwork()}
	if o.pskA == "" {
		o.pskA = "this is a shared secret"
	}
	if o.pskB == "" {
		o.pskB = o.pskA
	}
	bAddr := addrB
	if o.bAddr.IsValid() {
		bAddr = o.bAddr
	}
	aAddr := addrA
	if o.aAddr.IsValid() {
		aAddr = o.aAddr
	}
	ca := baseConn(aAddr, bAddr, "moon.example.org", "sun.example.org", "10.1.0.0/16", "10.2.0.0/16")
	cb := baseConn(bAddr, aAddr, "sun.example.org", "moon.example.org", "10.2.0.0/16", "10.1.0.0/16")
	if o.connA != nil {
		o.connA(ca)
	}
	if o.connB != nil {
		o.connB(cb)
	}
	tb.quiet = o.quiet
	tb.a = tb.newPeer("a", aAddr, ca, o.pskA, 0xc1000000, o.cfgA)
	tb.b = tb.newPeer("b", bAddr, cb, o.pskB, 0xc2000000, o.cfgB)
	t.Cleanup(func() {
		if t.Failed() {
			for _, p := range []*peer{tb.a, tb.b} {
				for _, l := range p.log.all() {
					t.Logf("%s: %s", p.name, l)
				}
			}
		}
	})
	return tb
}

func (tb *testbed) newPeer(name string, addr netip.Addr, c *ike.Connection, psk string, spiBase uint32, mod func(*ike.Config)) *peer {
	p := &peer{name: name, addr: addr, dp: dataplanetest.New(spiBase), log: newLogRecorder()}
	logger := slog.New(p.log)
	if tb.quiet {
		logger = slog.New(slog.DiscardHandler)
	}
	cfg := ike.Config{
		Logger: logger, Sender: tb.net.Sender(), Dataplane: p.dp, Clock: tb.clock,
		Credentials: ike.Credentials{Shared: []ike.SharedKey{{Secret: []byte(psk)}}},
	}
	if mod != nil {
		mod(&cfg)
	}
	e, err := ike.New(cfg)
	if err != nil {
		tb.t.Fatal(err)
	}
	if err := e.AddConnection(c); err != nil {
		tb.t.Fatal(err)
	}
	p.e = e
	tb.net.Attach(addr, e)
	tb.t.Cleanup(e.Close)
	return p
}

// establish initiates from a and runs the network until it is quiet.
func (tb *testbed) establish() uint32 {
	tb.t.Helper()
	id, err := tb.a.e.Initiate("gw")
	if err != nil {
		tb.t.Fatal(err)
	}
	tb.net.Flush()
	return id
}

func (p *peer) sas() []ike.IKESAInfo { return p.e.IKESAs() }

// established returns the one established IKE SA or fails.
func (tb *testbed) established(p *peer) ike.IKESAInfo {
	tb.t.Helper()
	var found []ike.IKESAInfo
	for _, sa := range p.sas() {
		if sa.State == ike.IKESAEstablished {
			found = append(found, sa)
		}
	}
	if len(found) != 1 {
		tb.t.Fatalf("%s: %d established IKE_SAs, want 1: %+v", p.name, len(found), p.sas())
	}
	return found[0]
}

func (tb *testbed) wantNoSAs(p *peer) {
	tb.t.Helper()
	if sas := p.sas(); len(sas) != 0 {
		tb.t.Fatalf("%s: IKE_SAs left: %+v", p.name, sas)
	}
	if sas := p.dp.SAs(); len(sas) != 0 {
		tb.t.Fatalf("%s: ESP SAs left in the dataplane: %d", p.name, len(sas))
	}
	if pol := p.dp.Policies(); len(pol) != 0 {
		tb.t.Fatalf("%s: policies left in the dataplane: %d", p.name, len(pol))
	}
	if n := p.dp.AllocatedSPIs(); n != 0 {
		tb.t.Fatalf("%s: %d SPIs still allocated", p.name, n)
	}
}

// checkKeys verifies that every ESP SA one side installed has its twin on
// the other side with the same SPI, algorithms and keys, in the opposite
// direction: a's outbound key is b's inbound key and so on.
func (tb *testbed) checkKeys() {
	tb.t.Helper()
	as, bs := tb.a.dp.SAs(), tb.b.dp.SAs()
	if len(as) != len(bs) || len(as) == 0 {
		tb.t.Fatalf("a has %d ESP SAs, b has %d", len(as), len(bs))
	}
	for _, x := range as {
		y := tb.b.dp.SA(x.SPI)
		if y == nil {
			tb.t.Fatalf("SA %08x of a has no twin in b", x.SPI)
		}
		if x.Inbound == y.Inbound {
			tb.t.Fatalf("SA %08x is inbound=%v on both sides", x.SPI, x.Inbound)
		}
		if !bytes.Equal(x.EncrKey, y.EncrKey) || !bytes.Equal(x.IntegKey, y.IntegKey) || len(x.EncrKey) == 0 {
			tb.t.Fatalf("SA %08x: keys differ", x.SPI)
		}
		if x.Encr != y.Encr || x.Integ != y.Integ || x.ESN != y.ESN || x.Mode != y.Mode || (!tb.nat && (x.Dst != y.Dst || x.Src != y.Src)) {
			tb.t.Fatalf("SA %08x differs: %+v vs %+v", x.SPI, x, y)
		}
	}
}

// settleRekeys lets the inbound SAs of rekeyed CHILD_SAs go: they stay
// in the dataplane for DeleteRekeyedDelay after their CHILD_SA is deleted.
func (tb *testbed) settleRekeys() {
	tb.t.Helper()
	tb.advance(deleteRekeyedDelay + time.Second)
}

// deleteRekeyedDelay is the engine's default DeleteRekeyedDelay.
const deleteRekeyedDelay = 5 * time.Second

// children returns the CHILD_SAs of a peer's established IKE SA.
func (tb *testbed) children(p *peer) []ike.ChildSAInfo {
	tb.t.Helper()
	return tb.established(p).Children
}

// advance moves time forward timer by timer, delivering what each timer
// sent before the next one fires.
func (tb *testbed) advance(d time.Duration) {
	tb.net.Flush()
	for d > 0 {
		step, ok := tb.clock.Next()
		if !ok || step > d {
			step = d
		}
		tb.clock.Advance(step)
		tb.net.Flush()
		d -= step
	}
}

// restartPeer replaces p with a new engine that takes back st, as a
// restarted daemon does (the PSK and clock of the testbed, a new
// dataplane whose SPIs start at spiBase).
func (tb *testbed) restartPeer(p *peer, st ike.EngineState, c *ike.Connection, spiBase uint32, mod ...func(*ike.Config)) *peer {
	tb.t.Helper()
	n := &peer{name: p.name, addr: p.addr, dp: dataplanetest.New(spiBase), log: newLogRecorder()}
	cfg := ike.Config{Logger: slog.New(n.log), Sender: tb.net.Sender(), Dataplane: n.dp, Clock: tb.clock,
		Credentials: ike.Credentials{Shared: []ike.SharedKey{{Secret: []byte("this is a shared secret")}}}}
	for _, m := range mod {
		m(&cfg)
	}
	e, err := ike.New(cfg)
	if err != nil {
		tb.t.Fatal(err)
	}
	tb.t.Cleanup(e.Close)
	if err := e.AddConnection(c); err != nil {
		tb.t.Fatal(err)
	}
	if errs := e.Import(st); len(errs) != 0 {
		tb.t.Fatal(errs)
	}
	n.e = e
	tb.net.Attach(p.addr, e)
	return n
}
