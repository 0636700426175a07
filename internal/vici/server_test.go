package vici

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	govici "github.com/strongswan/govici/vici"

	"github.com/xdpsec/xdpsec/ike"
	"github.com/xdpsec/xdpsec/ike/iketest"
	"github.com/xdpsec/xdpsec/ike/swanctl"
	"github.com/xdpsec/xdpsec/internal/daemon"
)

// fakeBackend records what the server asks and answers from fixed data.
type fakeBackend struct {
	authorities []daemon.Authority
	loadedAuth  []daemon.VICIAuthority
	policies    []daemon.TrapPolicy
	mu          sync.Mutex
	requests    []daemon.Request
	sas         []daemon.IKESA
	conns       []daemon.ConnInfo
	pools       []daemon.PoolInfo
	fail        string // Handle's error for initiate/terminate/rekey
	trees       []*swanctl.Tree
	shared      []Shared
	observer    ike.Observer
	tap         func(daemon.LogRecord)
	certs       []daemon.LoadedCert
	resets      uint64
	keys        [][]byte
	roundCerts  map[string]daemon.RoundCerts
}

func (f *fakeBackend) Certs() []daemon.LoadedCert { return f.certs }

func (f *fakeBackend) LoadAuthority(a daemon.VICIAuthority) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.loadedAuth = append(f.loadedAuth, a)
	return nil
}
func (f *fakeBackend) UnloadAuthority(name string) error {
	if name != "strongswan" {
		return fmt.Errorf("unload: authority '%s' not found", name)
	}
	return nil
}
func (f *fakeBackend) Authorities() []daemon.Authority {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.authorities
}

func (f *fakeBackend) Counters(conn string) ike.Counters {
	f.mu.Lock()
	defer f.mu.Unlock()
	var c ike.Counters
	c[ike.CounterIKEInitOutReq] = uint64(len(conn)) + 7 - f.resets
	return c
}

func (f *fakeBackend) ResetCounters(conn string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.resets++
}

func (f *fakeBackend) SetLogTap(tap func(daemon.LogRecord)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tap = tap
}

func (f *fakeBackend) logf(r daemon.LogRecord) {
	f.mu.Lock()
	tap := f.tap
	f.mu.Unlock()
	if tap != nil {
		tap(r)
	}
}

func (f *fakeBackend) Handle(r daemon.Request) *daemon.Response {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, r)
	switch r.Command {
	case daemon.CmdListSAs:
		var sas []daemon.IKESA
		for _, sa := range f.sas {
			if r.IKE == "" || sa.Name == r.IKE {
				sas = append(sas, sa)
			}
		}
		return &daemon.Response{OK: true, SAs: sas}
	case daemon.CmdListConns:
		return &daemon.Response{OK: true, Conns: f.conns}
	case daemon.CmdListPools:
		return &daemon.Response{OK: true, Pools: f.pools}
	case daemon.CmdListPolicies:
		return &daemon.Response{OK: true, Policies: f.policies}
	case daemon.CmdUninstall:
		if r.Child != "net" {
			return &daemon.Response{Error: fmt.Sprintf("policy '%s' not found", r.Child)}
		}
	}
	if f.fail != "" {
		return &daemon.Response{Error: f.fail}
	}
	// What the engine logs while the command runs.
	if tap := f.tap; tap != nil {
		f.mu.Unlock()
		tap(daemon.LogRecord{Group: "IKE", Level: 2, SA: "site[1]", Msg: "generating IKE_SA_INIT request 0 [ SA KE No ]"})
		tap(daemon.LogRecord{Group: "IKE", Level: 1, SA: "site[1]", Msg: "IKE_SA site[1] established between 192.0.2.1[moon]...192.0.2.2[sun]"})
		tap(daemon.LogRecord{Group: "IKE", Level: 1, SA: "other[2]", Msg: "IKE_SA other[2] established"})
		f.mu.Lock()
	}
	return &daemon.Response{OK: true, Message: "IKE_SA site[1] established"}
}

func (f *fakeBackend) LoadConn(t *swanctl.Tree, certs map[string]daemon.RoundCerts) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.trees = append(f.trees, t)
	f.roundCerts = certs
	return nil
}

func (f *fakeBackend) LoadCert(data []byte, ca bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.certs = append(f.certs, daemon.LoadedCert{DER: slices.Clone(data), CA: ca})
	return nil
}

func (f *fakeBackend) LoadKey(data []byte) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.keys = append(f.keys, slices.Clone(data))
	return fmt.Sprintf("key%d", len(f.keys)-1), nil
}

func (f *fakeBackend) KeyIDs() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	ids := []string{}
	for i := range f.keys {
		ids = append(ids, fmt.Sprintf("key%d", i))
	}
	return ids
}

func (f *fakeBackend) UnloadKey(id string) error {
	if id != "key0" {
		return errors.New("private key '" + id + "' not found")
	}
	return nil
}

func (f *fakeBackend) ReloadSettings() error { return errors.New("xdpsec.conf: bad") }

func (f *fakeBackend) ClearCreds() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.shared, f.keys, f.certs = nil, nil, nil
}
func (f *fakeBackend) UnloadConn(name string) error {
	return errors.New("connection '" + name + "' not found")
}
func (f *fakeBackend) VICIConns() []string            { return []string{"site"} }
func (f *fakeBackend) LoadPool(t *swanctl.Tree) error { return f.LoadConn(t, nil) }
func (f *fakeBackend) UnloadPool(string) error        { return nil }
func (f *fakeBackend) LoadShared(s Shared) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	s.Data = slices.Clone(s.Data)
	f.shared = append(f.shared, s)
	return nil
}
func (f *fakeBackend) UnloadShared(string) error { return nil }
func (f *fakeBackend) SharedIDs() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ids []string
	for _, s := range f.shared {
		ids = append(ids, s.ID)
	}
	return ids
}
func (f *fakeBackend) Observe(o ike.Observer) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.observer = o
}

func int64p(v int64) *int64 { return &v }

var testSA = daemon.IKESA{
	Name: "site", UniqueID: 3, State: "ESTABLISHED", Version: 2, Initiator: true,
	SPIi: "23a846ffbbf7499c", SPIr: "8f2fa9a8f02a7e5a", LocalHost: "192.0.2.1", LocalPort: 500, LocalID: "moon",
	RemoteHost: "192.0.2.2", RemotePort: 4500, RemoteID: "sun", NATRemote: true,
	Proposal: "IKE:AES_CBC_256/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_3072", Established: int64p(42), RekeyTime: int64p(13000),
	RemoteVIPs: []string{"10.9.0.1"},
	Children: []daemon.ChildSA{{Name: "net", UniqueID: 7, ReqID: 1, State: "INSTALLED", Mode: "TUNNEL", Protocol: "ESP", Encap: true,
		SPIIn: "c1a2b3c4", SPIOut: "d1e2f3a4", Proposal: "ESP:AES_GCM_16_128/NO_EXT_SEQ", BytesIn: 840, PacketsIn: 10, UseIn: int64p(3),
		BytesOut: 1680, PacketsOut: 20, InstallTime: int64p(40), RekeyTime: int64p(3000),
		LocalTS: []string{"10.1.0.0/16", "10.3.0.0/16"}, RemoteTS: []string{"10.2.0.0/16"}}},
}

type testServer struct {
	t    *testing.T
	s    *Server
	b    *fakeBackend
	path string
	log  *bytes.Buffer
}

func startServer(t *testing.T) *testServer {
	t.Helper()
	path := filepath.Join(t.TempDir(), "charon.vici")
	b := &fakeBackend{sas: []daemon.IKESA{testSA}}
	var logBuf bytes.Buffer
	var logMu sync.Mutex
	log := slog.New(slog.NewTextHandler(lockedWriter{&logMu, &logBuf}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, err := Listen(path, b, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return &testServer{t: t, s: s, b: b, path: path, log: &logBuf}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (ts *testServer) session() *govici.Session {
	ts.t.Helper()
	s, err := govici.NewSession(govici.WithSocketPath(ts.path))
	if err != nil {
		ts.t.Fatal(err)
	}
	ts.t.Cleanup(func() { s.Close() })
	return s
}

func call(t *testing.T, s *govici.Session, cmd string, in *govici.Message) *govici.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	m, err := s.Call(ctx, cmd, in)
	if err != nil {
		t.Fatalf("%s: %v", cmd, err)
	}
	return m
}

// stream runs a streamed command with a client of our codec and returns
// its events as govici messages. govici 0.8.0's CallStreaming selects at
// random between an event and a response that are both waiting, so it
// may drop the last events of a stream: tests of streams cannot use it.
func stream(t *testing.T, path, cmd, event string, in *Message) []*Message {
	t.Helper()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if in == nil {
		in = NewMessage()
	}
	for _, p := range []Packet{{Type: EventRegister, Name: event}, {Type: CmdRequest, Name: cmd, Msg: in}} {
		b, err := p.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	if p, err := ReadPacket(c); err != nil || p.Type != EventConfirm {
		t.Fatalf("registering for %s: %+v %v", event, p, err)
	}
	var out []*Message
	for {
		p, err := ReadPacket(c)
		if err != nil {
			t.Fatalf("%s: %v", cmd, err)
		}
		switch {
		case p.Type == Event && p.Name == event:
			out = append(out, p.Msg)
		case p.Type == CmdResponse:
			if p.Msg.Get("success") == "no" {
				t.Fatalf("%s: %s", cmd, p.Msg.Get("errmsg"))
			}
			return out
		default:
			t.Fatalf("%s: unexpected packet %+v", cmd, p)
		}
	}
}

func with(kv ...string) *Message {
	m := NewMessage()
	for i := 0; i < len(kv); i += 2 {
		m.Set(kv[i], kv[i+1])
	}
	return m
}

func TestVersionAndStats(t *testing.T) {
	ts := startServer(t)
	s := ts.session()
	v := call(t, s, "version", nil)
	if v.Get("daemon") != "xdpsec" || v.Get("sysname") != "Linux" || v.Get("machine") == "" {
		t.Errorf("version: %v", v)
	}
	st := call(t, s, "stats", nil)
	ik, _ := st.Get("ikesas").(*govici.Message)
	if ik == nil || ik.Get("total") != "1" || ik.Get("half-open") != "0" {
		t.Errorf("stats: %v", st)
	}
	up, _ := st.Get("uptime").(*govici.Message)
	if up == nil || !strings.HasSuffix(up.Get("running").(string), "second") && !strings.HasSuffix(up.Get("running").(string), "seconds") {
		t.Errorf("stats uptime: %v", st)
	}
}

func TestListSAs(t *testing.T) {
	ts := startServer(t)
	msgs := stream(t, ts.path, "list-sas", "list-sa", nil)
	// govici yields the events; a successful response ends the stream.
	if len(msgs) != 1 {
		t.Fatalf("got %d messages, want one list-sa event", len(msgs))
	}
	sa := msgs[0].GetSection("site")
	if sa == nil {
		t.Fatalf("no site section: %v", msgs[0])
	}
	want := map[string]string{
		"uniqueid": "3", "version": "2", "state": "ESTABLISHED", "local-host": "192.0.2.1", "local-port": "500",
		"local-id": "moon", "remote-host": "192.0.2.2", "remote-port": "4500", "remote-id": "sun", "initiator": "yes",
		"initiator-spi": "23a846ffbbf7499c", "responder-spi": "8f2fa9a8f02a7e5a", "nat-remote": "yes", "nat-any": "yes",
		"encr-alg": "AES_CBC", "encr-keysize": "256", "integ-alg": "HMAC_SHA2_256_128", "prf-alg": "PRF_HMAC_SHA2_256",
		"dh-group": "MODP_3072", "established": "42", "rekey-time": "13000",
	}
	for k, v := range want {
		if got := sa.Get(k); got != v {
			t.Errorf("%s = %v, want %s", k, got, v)
		}
	}
	if sa.Has("nat-local") {
		t.Errorf("nat-local set: %v", sa.Get("nat-local"))
	}
	if got := sa.GetList("remote-vips"); !slices.Equal(got, []string{"10.9.0.1"}) {
		t.Errorf("remote-vips = %v", got)
	}
	cs := sa.GetSection("child-sas")
	ch := cs.GetSection("net-7")
	if ch == nil {
		t.Fatalf("no child net-7: %v", cs)
	}
	wantCh := map[string]string{
		"name": "net", "uniqueid": "7", "reqid": "1", "state": "INSTALLED", "mode": "TUNNEL", "protocol": "ESP", "encap": "yes",
		"spi-in": "c1a2b3c4", "spi-out": "d1e2f3a4", "encr-alg": "AES_GCM_16", "encr-keysize": "128", "bytes-in": "840",
		"packets-in": "10", "use-in": "3", "bytes-out": "1680", "packets-out": "20", "install-time": "40", "rekey-time": "3000",
	}
	for k, v := range wantCh {
		if got := ch.Get(k); got != v {
			t.Errorf("child %s = %v, want %s", k, got, v)
		}
	}
	// The outbound SA carried no packet: no use-out, as charon's.
	if ch.Has("use-out") {
		t.Errorf("use-out = %v for an SA never used", ch.Get("use-out"))
	}
	if ch.Has("integ-alg") || ch.Has("esn") {
		t.Errorf("AEAD child has integ-alg %v, esn %v", ch.Get("integ-alg"), ch.Get("esn"))
	}
	if got := ch.GetList("local-ts"); !slices.Equal(got, []string{"10.1.0.0/16", "10.3.0.0/16"}) {
		t.Errorf("local-ts = %v", got)
	}
	// Filtered by name and by ID.
	if msgs := stream(t, ts.path, "list-sas", "list-sa", with("ike", "other")); len(msgs) != 0 {
		t.Errorf("list-sas ike=other: %d messages", len(msgs))
	}
	if msgs := stream(t, ts.path, "list-sas", "list-sa", with("ike-id", "4")); len(msgs) != 0 {
		t.Errorf("list-sas ike-id=4: %d messages", len(msgs))
	}
}

func msgWith(kv ...string) *govici.Message {
	m := govici.NewMessage()
	for i := 0; i < len(kv); i += 2 {
		m.Set(kv[i], kv[i+1])
	}
	return m
}

func TestListConnsAndPools(t *testing.T) {
	ts := startServer(t)
	ts.b.conns = []daemon.ConnInfo{{Name: "site", LocalAddrs: []string{"192.0.2.1"}, Version: "IKEv2", LocalAuth: "psk", LocalID: "moon",
		RemoteAuth: "pubkey", RemoteID: "sun", RekeyTime: 14400,
		Children: []daemon.ChildConn{{Name: "net", Mode: "TUNNEL", LocalTS: []string{"10.1.0.0/16"}, RemoteTS: []string{"10.2.0.0/16"}, RekeyTime: 3600}}}}
	ts.b.pools = []daemon.PoolInfo{{Name: "rw", Base: "10.9.0.1", ConfBase: "10.9.0.0", Size: 254, Online: 1}}
	s := ts.session()
	msgs := stream(t, ts.path, "list-conns", "list-conn", nil)
	if len(msgs) != 1 {
		t.Fatalf("%d messages", len(msgs))
	}
	c := msgs[0].GetSection("site")
	if !slices.Equal(c.GetList("remote_addrs"), []string{"%any"}) || c.Get("version") != "IKEv2" || c.Get("rekey_time") != "14400" {
		t.Errorf("conn: %v", c)
	}
	if l := c.GetSection("local-1"); l.Get("class") != "pre-shared key" || l.Get("id") != "moon" {
		t.Errorf("local-1: %v", l)
	}
	if r := c.GetSection("remote-1"); r.Get("class") != "public key" {
		t.Errorf("remote-1: %v", r)
	}
	ch := c.GetSection("children").GetSection("net")
	if ch.Get("mode") != "TUNNEL" || ch.Get("rekey_time") != "3600" || !slices.Equal(ch.GetList("remote-ts"), []string{"10.2.0.0/16"}) {
		t.Errorf("child: %v", ch)
	}
	p := call(t, s, "get-pools", nil).Get("rw").(*govici.Message)
	if p.Get("base") != "10.9.0.0" || p.Get("size") != "254" || p.Get("online") != "1" || p.Get("offline") != "0" {
		t.Errorf("pool: %v", p)
	}
	if got := call(t, s, "get-conns", nil).Get("conns"); !slices.Equal(got.([]string), []string{"site"}) {
		t.Errorf("get-conns: %v", got)
	}
}

func TestControlCommands(t *testing.T) {
	ts := startServer(t)
	s := ts.session()
	msgs := stream(t, ts.path, "initiate", "control-log", with("ike", "site", "child", "net", "timeout", "2000"))
	// The lines of its IKE SA up to level 1.
	if len(msgs) != 1 || !strings.HasPrefix(msgs[0].Get("msg"), "IKE_SA site[1] established between") ||
		msgs[0].Get("ikesa-name") != "site" || msgs[0].Get("ikesa-uniqueid") != "1" || msgs[0].Get("group") != "IKE" {
		t.Errorf("control-log: %v", msgs)
	}
	if msgs := stream(t, ts.path, "initiate", "control-log", with("ike", "site", "loglevel", "2")); len(msgs) != 2 {
		t.Errorf("control-log at level 2: %v", msgs)
	}
	// By CHILD_SA config alone: the lines of its connection's IKE SAs.
	ts.b.conns = []daemon.ConnInfo{{Name: "site", Children: []daemon.ChildConn{{Name: "net"}}}}
	if msgs := stream(t, ts.path, "initiate", "control-log", with("child", "net")); len(msgs) != 1 || msgs[0].Get("ikesa-name") != "site" {
		t.Errorf("control-log for child net: %v", msgs)
	}
	ts.b.conns = nil
	call(t, s, "terminate", msgWith("ike-id", "3", "timeout", "-1"))
	call(t, s, "rekey", msgWith("child-id", "7"))
	ts.b.mu.Lock()
	reqs := slices.Clone(ts.b.requests)
	ts.b.mu.Unlock()
	want := []daemon.Request{
		{Command: "initiate", IKE: "site", Child: "net", TimeoutMS: 2000},
		{Command: "initiate", IKE: "site", TimeoutMS: 300000},
		{Command: "list-conns"},
		{Command: "initiate", Child: "net", TimeoutMS: 300000},
		{Command: "terminate", IKEID: 3, TimeoutMS: -1},
		{Command: "rekey", ChildID: 7, TimeoutMS: 300000},
	}
	if !slices.Equal(reqs, want) {
		t.Errorf("requests\n got %+v\nwant %+v", reqs, want)
	}
	ts.b.fail = "no config named 'nope' found"
	m, err := s.Call(context.Background(), "initiate", msgWith("child", "nope"))
	if err == nil || m.Get("errmsg") != "no config named 'nope' found" {
		t.Errorf("failing initiate: %v %v", m, err)
	}
	if _, err := s.Call(context.Background(), "terminate", msgWith("ike-id", "x")); err == nil || !strings.Contains(err.Error(), "ike-id") {
		t.Errorf("bad ike-id: %v", err)
	}
}

func TestUnsupportedAndUnknownCommands(t *testing.T) {
	ts := startServer(t)
	s := ts.session()
	// redirect goes to the daemon with the peer and the gateway; peer-id
	// selection is refused, naming it.
	if _, err := s.Call(context.Background(), "redirect", msgWith("peer-ip", "10.3.0.0/16", "gateway", "192.0.2.9")); err != nil {
		t.Errorf("redirect: %v", err)
	}
	if r := ts.b.requests[len(ts.b.requests)-1]; r.Command != daemon.CmdRedirect || r.Peer != "10.3.0.0/16" || r.Gateway != "192.0.2.9" {
		t.Errorf("redirect reached the daemon as %+v", r)
	}
	if _, err := s.Call(context.Background(), "redirect", msgWith("peer-id", "carol", "gateway", "192.0.2.9")); err == nil || !strings.Contains(err.Error(), "peer-id") {
		t.Errorf("redirect by peer-id: %v", err)
	}
	if _, err := s.Call(context.Background(), "reload-settings", nil); err == nil || !strings.Contains(err.Error(), "xdpsec.conf: bad") {
		t.Errorf("reload-settings: %v", err)
	}
	for _, cmd := range []string{"load-token"} {
		if _, err := s.Call(context.Background(), cmd, msgWith("child", "net")); err == nil || !strings.Contains(err.Error(), "'"+cmd+"'") {
			t.Errorf("%s: %v", cmd, err)
		}
	}
	_, err := s.Call(context.Background(), "no-such-command", nil)
	if err == nil {
		t.Error("unknown command succeeded")
	}
	// The session still works: nothing hung.
	call(t, s, "version", nil)
	if err := s.Subscribe("no-such-event"); err == nil {
		t.Error("registering for an unknown event succeeded")
	}
}

func TestLoadConnTree(t *testing.T) {
	ts := startServer(t)
	s := ts.session()
	in, err := govici.MarshalMessage(map[string]any{
		"site": map[string]any{
			"local_addrs": []string{"192.0.2.1"},
			"proposals":   []string{"aes128-sha256-modp2048", "aes256gcm16-prfsha384-ecp384"},
			"local":       map[string]any{"auth": "psk", "id": "C=CH, O=xdpsec, CN=moon"},
			"children":    map[string]any{"net": map[string]any{"local_ts": []string{"10.1.0.0/16", "10.3.0.0/16"}}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	call(t, s, "load-conn", in)
	ts.b.mu.Lock()
	tree := ts.b.trees[0]
	ts.b.mu.Unlock()
	site := tree.Sub("connections").Sub("site")
	got := map[string]string{}
	for _, st := range site.Settings {
		got[st.Key] = st.Value
	}
	if got["local_addrs"] != "192.0.2.1" || got["proposals"] != "aes128-sha256-modp2048, aes256gcm16-prfsha384-ecp384" {
		t.Errorf("settings: %v", got)
	}
	if v := site.Sub("local").Settings; len(v) != 2 || !slices.Contains(v, swanctl.TreeSetting{Key: "id", Value: "C=CH, O=xdpsec, CN=moon"}) {
		t.Errorf("local: %v", v)
	}
	if v := site.Sub("children").Sub("net").Settings; len(v) != 1 || v[0].Value != "10.1.0.0/16, 10.3.0.0/16" {
		t.Errorf("child: %v", v)
	}
	// Certificates arrive as data: they go beside the tree, by round.
	in, _ = govici.MarshalMessage(map[string]any{"site": map[string]any{
		"local":  map[string]any{"auth": "pubkey", "certs": []string{"CERT-A", "CERT-B"}},
		"remote": map[string]any{"cacerts": []string{"CA"}},
	}})
	call(t, s, "load-conn", in)
	ts.b.mu.Lock()
	rc := ts.b.roundCerts
	tree = ts.b.trees[1]
	ts.b.mu.Unlock()
	if len(rc) != 2 || len(rc["connections.site.local"].Certs) != 2 || string(rc["connections.site.local"].Certs[1]) != "CERT-B" ||
		len(rc["connections.site.remote"].CACerts) != 1 {
		t.Errorf("round certs: %v", rc)
	}
	for _, st := range tree.Sub("connections").Sub("site").Sub("local").Settings {
		if st.Key == "certs" {
			t.Errorf("certs in the tree: %v", st)
		}
	}
	// Raw public keys are refused, naming the key.
	in, _ = govici.MarshalMessage(map[string]any{"site": map[string]any{"remote": map[string]any{"pubkeys": []string{"KEY"}}}})
	if _, err := s.Call(context.Background(), "load-conn", in); err == nil || !strings.Contains(err.Error(), "connections.site.remote.pubkeys") {
		t.Errorf("pubkeys: %v", err)
	}
}

func TestLoadSharedNeverShowsTheSecret(t *testing.T) {
	ts := startServer(t)
	s := ts.session()
	const secret = "0sVerySecretPSK-4711"
	in := msgWith("id", "ike-1", "type", "IKE", "data", secret)
	in.Set("owners", []string{"moon", "sun"})
	m := call(t, s, "load-shared", in)
	if strings.Contains(m.String(), secret) {
		t.Errorf("answer holds the secret: %v", m)
	}
	ts.b.mu.Lock()
	sh := ts.b.shared[0]
	ts.b.mu.Unlock()
	if sh.ID != "ike-1" || string(sh.Data) != secret || !slices.Equal(sh.Owners, []string{"moon", "sun"}) {
		t.Errorf("backend got %q %q %v", sh.ID, sh.Data, sh.Owners)
	}
	if got := call(t, s, "get-shared", nil).Get("keys"); !slices.Equal(got.([]string), []string{"ike-1"}) {
		t.Errorf("get-shared: %v", got)
	}
	if _, err := s.Call(context.Background(), "load-shared", msgWith("type", "NTLM", "data", secret)); err == nil ||
		strings.Contains(err.Error(), secret) {
		t.Errorf("NTLM: %v", err)
	}
	// XAuth passwords are EAP secrets, as for charon.
	in = msgWith("id", "xauth-1", "type", "XAUTH", "data", secret)
	in.Set("owners", []string{"alice"})
	call(t, s, "load-shared", in)
	ts.b.mu.Lock()
	sh = ts.b.shared[len(ts.b.shared)-1]
	ts.b.mu.Unlock()
	if sh.ID != "xauth-1" || sh.Type != "EAP" {
		t.Errorf("XAUTH secret loaded as %q %q", sh.ID, sh.Type)
	}
	ts.s.Close()
	if strings.Contains(ts.log.String(), secret) {
		t.Errorf("log holds the secret:\n%s", ts.log)
	}
}

func TestEvents(t *testing.T) {
	ts := startServer(t)
	s := ts.session()
	if err := s.Subscribe("ike-updown", "child-updown", "child-rekey", "ike-rekey", "ike-update"); err != nil {
		t.Fatal(err)
	}
	ch := make(chan govici.Event, 16)
	s.NotifyEvents(ch)
	ts.b.mu.Lock()
	o := ts.b.observer
	ts.b.mu.Unlock()
	sa := ike.IKESAInfo{ID: 1, Version: 2, Name: "site", State: ike.IKESAEstablished, Initiator: true, SPIi: 0x1122, SPIr: 0x3344,
		Local: netip.MustParseAddrPort("192.0.2.1:500"), Remote: netip.MustParseAddrPort("192.0.2.2:500"),
		Proposal: "IKE:AES_GCM_16_128/PRF_HMAC_SHA2_256/CURVE_25519"}
	child := ike.ChildSAInfo{ID: 1, Name: "net", State: ike.ChildSAInstalled, SPIIn: 0xc0000001, SPIOut: 0xc0000002, ReqID: 1,
		Proposal: "ESP:AES_GCM_16_128/NO_EXT_SEQ"}
	child2 := child
	child2.ID, child2.SPIIn, child2.SPIOut = 2, 0xc0000003, 0xc0000004
	o.IKEUpDown(sa, true)
	o.ChildUpDown(sa, child, true)
	o.ChildRekey(sa, child, child2)
	o.IKEUpdate(sa, netip.MustParseAddrPort("192.0.2.7:4500"), netip.MustParseAddrPort("192.0.2.2:4500"))
	o.ChildUpDown(sa, child2, false)
	o.IKEUpDown(sa, false)
	next := func(name string) *govici.Message {
		t.Helper()
		select {
		case ev := <-ch:
			if ev.Name != name {
				t.Fatalf("event %s, want %s: %v", ev.Name, name, ev.Message)
			}
			return ev.Message
		case <-time.After(5 * time.Second):
			t.Fatalf("no %s event", name)
		}
		return nil
	}
	m := next("ike-updown")
	if m.Get("up") != "yes" || m.Get("site").(*govici.Message).Get("initiator-spi") != "0000000000001122" {
		t.Errorf("ike up: %v", m)
	}
	m = next("child-updown")
	c := m.Get("site").(*govici.Message).Get("child-sas").(*govici.Message).Get("net-1").(*govici.Message)
	if m.Get("up") != "yes" || c.Get("spi-in") != "c0000001" {
		t.Errorf("child up: %v", m)
	}
	m = next("child-rekey")
	r := m.Get("site").(*govici.Message).Get("child-sas").(*govici.Message).Get("net").(*govici.Message)
	if r.Get("old").(*govici.Message).Get("spi-in") != "c0000001" || r.Get("new").(*govici.Message).Get("spi-in") != "c0000003" {
		t.Errorf("child rekey: %v", m)
	}
	// ike-update: the new addresses on top, the SA with the old ones.
	m = next("ike-update")
	if m.Get("local-host") != "192.0.2.7" || m.Get("local-port") != "4500" || m.Get("remote-host") != "192.0.2.2" ||
		m.Get("remote-port") != "4500" || m.Get("site").(*govici.Message).Get("local-host") != "192.0.2.1" ||
		m.Get("site").(*govici.Message).Get("local-port") != "500" {
		t.Errorf("ike update: %v", m)
	}
	if m = next("child-updown"); m.Get("up") != nil {
		t.Errorf("child down: %v", m)
	}
	if m = next("ike-updown"); m.Get("up") != nil {
		t.Errorf("ike down: %v", m)
	}
}

// A client that sends garbage loses its connection; the server serves
// the next one.
func TestHostileClient(t *testing.T) {
	ts := startServer(t)
	for _, junk := range [][]byte{
		binary.BigEndian.AppendUint32(nil, MaxSegment+1),
		append(binary.BigEndian.AppendUint32(nil, 4), CmdRequest, 9, 'x', 'y'),
		append(binary.BigEndian.AppendUint32(nil, 2), 1, 2),
		append(binary.BigEndian.AppendUint32(nil, 6), CmdRequest, 1, 'v', 1, 1, 's'),
	} {
		c, err := net.Dial("unix", ts.path)
		if err != nil {
			t.Fatal(err)
		}
		c.Write(junk)
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(make([]byte, 16)); err == nil {
			t.Errorf("%v: got an answer, want the connection closed", junk)
		} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Errorf("%v: connection left open", junk)
		}
		c.Close()
	}
	call(t, ts.session(), "version", nil)
}

func TestLogEvents(t *testing.T) {
	ts := startServer(t)
	s := ts.session()
	if err := s.Subscribe("log"); err != nil {
		t.Fatal(err)
	}
	ch := make(chan govici.Event, 16)
	s.NotifyEvents(ch)
	ts.b.logf(daemon.LogRecord{Group: "CFG", Level: 1, Msg: "loaded connection 'site'"})
	ts.b.logf(daemon.LogRecord{Group: "IKE", Level: 2, SA: "site[4]", Msg: "sending packet"})
	for _, want := range []map[string]string{
		{"group": "CFG", "level": "1", "msg": "loaded connection 'site'"},
		{"group": "IKE", "level": "2", "ikesa-name": "site", "ikesa-uniqueid": "4", "msg": "sending packet"},
	} {
		select {
		case ev := <-ch:
			for k, v := range want {
				if ev.Message.Get(k) != v {
					t.Errorf("log event %s = %v, want %s", k, ev.Message.Get(k), v)
				}
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no log event")
		}
	}
}

func TestGetAlgorithms(t *testing.T) {
	ts := startServer(t)
	m := call(t, ts.session(), "get-algorithms", nil)
	for group, names := range map[string][]string{
		"encryption": {"AES_CBC"},
		"aead":       {"AES_GCM_16", "CHACHA20_POLY1305"},
		"integrity":  {"HMAC_SHA2_256_128"},
		"prf":        {"PRF_HMAC_SHA2_256"},
		"dh":         {"MODP_2048", "CURVE_25519", "ECP_256"},
	} {
		sec, _ := m.Get(group).(*govici.Message)
		if sec == nil {
			t.Errorf("no %s section: %v", group, m)
			continue
		}
		for _, n := range names {
			if sec.Get(n) != "xdpsec" {
				t.Errorf("%s: %s = %v", group, n, sec.Get(n))
			}
		}
		if sec.Get("DES") != nil || sec.Get("ENCR_DES") != nil {
			t.Errorf("%s lists DES", group)
		}
	}
}

func TestListCerts(t *testing.T) {
	ts := startServer(t)
	ca := iketest.NewCA(t, "xdpsec test CA", nil)
	moon := ca.Issue(t, iketest.NewKey(t, "ecdsa"), "moon", []string{"moon.example.org"}, nil, nil)
	ts.b.certs = []daemon.LoadedCert{{DER: moon.Raw, HasKey: true}, {DER: ca.Cert.Raw, CA: true}}
	msgs := stream(t, ts.path, "list-certs", "list-cert", nil)
	if len(msgs) != 2 {
		t.Fatalf("%d certificates", len(msgs))
	}
	if msgs[0].Get("type") != "X509" || msgs[0].Get("flag") != "NONE" || msgs[0].Get("has_privkey") != "yes" || msgs[0].Get("data") != string(moon.Raw) {
		t.Errorf("moon: type %s flag %s has_privkey %s", msgs[0].Get("type"), msgs[0].Get("flag"), msgs[0].Get("has_privkey"))
	}
	if msgs[1].Get("flag") != "CA" || msgs[1].Has("has_privkey") || msgs[1].Get("data") != string(ca.Cert.Raw) {
		t.Errorf("CA: flag %s", msgs[1].Get("flag"))
	}
	if msgs := stream(t, ts.path, "list-certs", "list-cert", with("flag", "CA")); len(msgs) != 1 || msgs[0].Get("flag") != "CA" {
		t.Errorf("flag CA: %d", len(msgs))
	}
	if msgs := stream(t, ts.path, "list-certs", "list-cert", with("subject", "moon.example.org")); len(msgs) != 1 || msgs[0].Get("flag") != "NONE" {
		t.Errorf("subject moon.example.org: %d", len(msgs))
	}
	if msgs := stream(t, ts.path, "list-certs", "list-cert", with("subject", "C=CH, O=xdpsec, CN=moon")); len(msgs) != 1 {
		t.Errorf("subject C=CH, O=xdpsec, CN=moon: %d", len(msgs))
	}
	if msgs := stream(t, ts.path, "list-certs", "list-cert", with("type", "X509_CRL")); len(msgs) != 0 {
		t.Errorf("CRLs: %d", len(msgs))
	}
}

func TestCounters(t *testing.T) {
	ts := startServer(t)
	ts.b.conns = []daemon.ConnInfo{{Name: "site"}, {Name: "rw"}}
	s := ts.session()
	m := call(t, s, "get-counters", nil)
	g, _ := m.Get("counters").(*govici.Message)
	if g == nil {
		t.Fatalf("%v", m)
	}
	all, _ := g.Get("").(*govici.Message)
	if all == nil || all.Get("ike-init-out-req") != "7" || all.Get("info-out-resp") != "0" || len(all.Keys()) != int(ike.NumCounters) {
		t.Errorf("global counters: %v", m)
	}
	m = call(t, s, "get-counters", msgWith("all", "yes"))
	g, _ = m.Get("counters").(*govici.Message)
	if g == nil || !slices.Equal(g.Keys(), []string{"site", "rw"}) || g.Get("site").(*govici.Message).Get("ike-init-out-req") != "11" {
		t.Errorf("all: %v", m)
	}
	call(t, s, "reset-counters", msgWith("all", "yes"))
	if ts.b.resets != 2 {
		t.Errorf("%d resets, want one per connection", ts.b.resets)
	}
}

func TestLoadCertAndKey(t *testing.T) {
	ts := startServer(t)
	s := ts.session()
	const key = "-----BEGIN PRIVATE KEY-----\nTOPSECRETKEYMATERIAL\n-----END PRIVATE KEY-----\n"
	m := call(t, s, "load-key", msgWith("type", "ecdsa", "data", key))
	if m.Get("id") != "key0" {
		t.Errorf("load-key id: %v", m.Get("id"))
	}
	if strings.Contains(m.String(), "TOPSECRET") {
		t.Errorf("answer holds the key: %v", m)
	}
	call(t, s, "load-cert", msgWith("type", "X509", "flag", "CA", "data", "CADATA"))
	call(t, s, "load-cert", msgWith("type", "X509", "flag", "NONE", "data", "EEDATA"))
	if _, err := s.Call(context.Background(), "load-cert", msgWith("type", "X509_CRL", "data", "x")); err == nil {
		t.Error("a CRL loaded")
	}
	ts.b.mu.Lock()
	if len(ts.b.keys) != 1 || string(ts.b.keys[0]) != key || len(ts.b.certs) != 2 || !ts.b.certs[0].CA || ts.b.certs[1].CA {
		t.Errorf("backend: %d keys, certs %+v", len(ts.b.keys), ts.b.certs)
	}
	ts.b.mu.Unlock()
	if got := call(t, s, "get-keys", nil).Get("keys"); !slices.Equal(got.([]string), []string{"key0"}) {
		t.Errorf("get-keys: %v", got)
	}
	call(t, s, "unload-key", msgWith("id", "key0"))
	if _, err := s.Call(context.Background(), "unload-key", msgWith("id", "key9")); err == nil {
		t.Error("unload-key of an unknown id succeeded")
	}
	call(t, s, "clear-creds", nil)
	ts.b.mu.Lock()
	if len(ts.b.keys) != 0 || len(ts.b.certs) != 0 {
		t.Error("clear-creds left credentials")
	}
	ts.b.mu.Unlock()
	ts.s.Close()
	if strings.Contains(ts.log.String(), "TOPSECRET") {
		t.Errorf("log holds the key:\n%s", ts.log)
	}
}

// A client that registers for events and never reads them loses events;
// whoever raises them never waits for it.
func TestSlowClientDoesNotBlock(t *testing.T) {
	ts := startServer(t)
	c, err := net.Dial("unix", ts.path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	b, _ := Packet{Type: EventRegister, Name: "log"}.Encode()
	c.Write(b)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if p, err := ReadPacket(c); err != nil || p.Type != EventConfirm {
		t.Fatalf("register: %+v %v", p, err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 20*eventQueue; i++ {
			ts.b.logf(daemon.LogRecord{Group: "IKE", Level: 1, Msg: strings.Repeat("x", 1000)})
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("raising events blocked on a client that does not read")
	}
	// The server still answers others.
	call(t, ts.session(), "version", nil)
}

// The socket is root's only, and one another daemon answers on is left
// to it.
func TestSocket(t *testing.T) {
	ts := startServer(t)
	fi, err := os.Stat(ts.path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 || fi.Mode()&os.ModeSocket == 0 {
		t.Errorf("socket mode %v", fi.Mode())
	}
	if _, err := Listen(ts.path, &fakeBackend{}, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "another daemon") {
		t.Errorf("second Listen on a live socket: %v", err)
	}
	// It still serves.
	call(t, ts.session(), "version", nil)
	// A stale socket file (no one answering) is replaced.
	stale := filepath.Join(t.TempDir(), "stale.vici")
	l, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	s2, err := Listen(stale, &fakeBackend{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("stale socket: %v", err)
	}
	s2.Close()
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("socket left behind after Close: %v", err)
	}
}

// install and uninstall reach the daemon with the child and connection;
// list-policies streams the trap policies as charon's list-policy.
func TestTrapPolicies(t *testing.T) {
	ts := startServer(t)
	ts.b.mu.Lock()
	ts.b.policies = []daemon.TrapPolicy{
		{IKE: "site", Child: "net", Mode: "TUNNEL", ReqID: 1, LocalTS: []string{"10.1.0.0/16"}, RemoteTS: []string{"10.2.0.0/16"}},
		{IKE: "site", Child: "host", Mode: "TRANSPORT", ReqID: 2, LocalTS: []string{"192.0.2.1/32[tcp]"}, RemoteTS: []string{"192.0.2.2/32"}},
	}
	ts.b.mu.Unlock()
	s := ts.session()
	call(t, s, "install", msgWith("child", "net", "ike", "site"))
	ts.b.mu.Lock()
	r := ts.b.requests[len(ts.b.requests)-1]
	ts.b.mu.Unlock()
	if r.Command != daemon.CmdInstall || r.Child != "net" || r.IKE != "site" {
		t.Errorf("install reached the daemon as %+v", r)
	}
	if _, err := s.Call(context.Background(), "install", nil); err == nil || !strings.Contains(err.Error(), "missing configuration name") {
		t.Errorf("install without a child: %v", err)
	}
	call(t, s, "uninstall", msgWith("child", "net"))
	if _, err := s.Call(context.Background(), "uninstall", msgWith("child", "nope")); err == nil || !strings.Contains(err.Error(), "policy 'nope' not found") {
		t.Errorf("uninstall of no trap: %v", err)
	}

	msgs := stream(t, ts.path, "list-policies", "list-policy", nil)
	if len(msgs) != 2 {
		t.Fatalf("%d list-policy events, want 2", len(msgs))
	}
	p := msgs[0].GetSection("site/net")
	if p == nil || p.Get("child") != "net" || p.Get("ike") != "site" || p.Get("mode") != "TUNNEL" ||
		!slices.Equal(p.GetList("local-ts"), []string{"10.1.0.0/16"}) || !slices.Equal(p.GetList("remote-ts"), []string{"10.2.0.0/16"}) {
		t.Errorf("first policy: %v", msgs[0])
	}
	if p := msgs[1].GetSection("site/host"); p == nil || p.Get("mode") != "TRANSPORT" {
		t.Errorf("second policy: %v", msgs[1])
	}
	if msgs := stream(t, ts.path, "list-policies", "list-policy", with("child", "host", "trap", "yes")); len(msgs) != 1 {
		t.Errorf("child=host: %d events", len(msgs))
	}
	// No shunts: pass and drop alone list nothing.
	if msgs := stream(t, ts.path, "list-policies", "list-policy", with("drop", "yes", "pass", "yes")); len(msgs) != 0 {
		t.Errorf("drop, pass: %d events", len(msgs))
	}
}

// load-authority hands the CA certificate's data and the URIs to the
// daemon, refusing token keys by name; list-authorities streams charon's
// list-authority; get-authorities names them.
func TestAuthorities(t *testing.T) {
	ts := startServer(t)
	ca := iketest.NewCA(t, "xdpsec test CA", nil)
	ts.b.mu.Lock()
	ts.b.authorities = []daemon.Authority{{Name: "strongswan", Cert: ca.Cert, CRLURIs: []string{"http://crl.example.org/ca.crl"},
		OCSPURIs: []string{"http://ocsp.example.org", "http://ocsp2.example.org"}, CertURIBase: "http://certs.example.org/", VICI: true},
		{Name: "file", Cert: ca.Cert}}
	ts.b.mu.Unlock()
	s := ts.session()
	in, err := govici.MarshalMessage(map[string]any{
		"strongswan": map[string]any{"cacert": string(ca.Cert.Raw), "crl_uris": []string{"http://crl.example.org/ca.crl"},
			"ocsp_uris": []string{"http://ocsp.example.org"}, "cert_uri_base": "http://certs.example.org/"},
	})
	if err != nil {
		t.Fatal(err)
	}
	call(t, s, "load-authority", in)
	ts.b.mu.Lock()
	got := ts.b.loadedAuth
	ts.b.mu.Unlock()
	if len(got) != 1 || got[0].Name != "strongswan" || string(got[0].CACert) != string(ca.Cert.Raw) ||
		!slices.Equal(got[0].CRLURIs, []string{"http://crl.example.org/ca.crl"}) || !slices.Equal(got[0].OCSPURIs, []string{"http://ocsp.example.org"}) ||
		got[0].CertURIBase != "http://certs.example.org/" {
		t.Errorf("load-authority reached the daemon as %+v", got)
	}
	tok, _ := govici.MarshalMessage(map[string]any{"tok": map[string]any{"handle": "0102", "slot": "1"}})
	if _, err := s.Call(context.Background(), "load-authority", tok); err == nil || !strings.Contains(err.Error(), "authorities.tok.") || !strings.Contains(err.Error(), "PKCS#11") {
		t.Errorf("load-authority with a token: %v", err)
	}
	call(t, s, "unload-authority", msgWith("name", "strongswan"))
	if _, err := s.Call(context.Background(), "unload-authority", msgWith("name", "nope")); err == nil || !strings.Contains(err.Error(), "'nope'") {
		t.Errorf("unload-authority nope: %v", err)
	}
	msgs := stream(t, ts.path, "list-authorities", "list-authority", nil)
	if len(msgs) != 2 {
		t.Fatalf("%d list-authority events, want the VICI one and the file's", len(msgs))
	}
	a := msgs[0].GetSection("strongswan")
	if a == nil || a.Get("cacert") != "C=CH, O=xdpsec, CN=xdpsec test CA" || !slices.Equal(a.GetList("crl_uris"), []string{"http://crl.example.org/ca.crl"}) ||
		len(a.GetList("ocsp_uris")) != 2 || a.Get("cert_uri_base") != "http://certs.example.org/" {
		t.Errorf("list-authority: %v", msgs[0])
	}
	if msgs := stream(t, ts.path, "list-authorities", "list-authority", with("name", "other")); len(msgs) != 0 {
		t.Errorf("name=other: %d events", len(msgs))
	}
	// Only VICI's: the file's are not swanctl's to unload.
	if got := call(t, s, "get-authorities", nil).Get("authorities"); !slices.Equal(got.([]string), []string{"strongswan"}) {
		t.Errorf("get-authorities: %v", got)
	}
}
