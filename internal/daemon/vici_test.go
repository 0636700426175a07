package daemon

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/xdpsec/xdpsec/ike/iketest"
	"github.com/xdpsec/xdpsec/ike/swanctl"
	"github.com/xdpsec/xdpsec/internal/testenv"
)

// startDryRun starts a dry-run daemon on loopback with its own ports.
func startDryRun(t *testing.T, conf string) (*Daemon, string) {
	t.Helper()
	testenv.RequireRoot(t)
	path := writeConfig(t, map[string]string{"swanctl.conf": conf, "xdpsec.conf": ""})
	port := uint16(20000 + os.Getpid()%20000)
	d, err := Start(Options{ConfigPath: path, SettingsPath: filepath.Join(filepath.Dir(path), "xdpsec.conf"), SocketPath: t.TempDir() + "/s.sock",
		StatePath: "-", DryRun: true, ListenAddrs: []netip.Addr{netip.MustParseAddr("127.0.0.1")}, Port: port, NATTPort: port + 1,
		Logs: NewLogs(os.Stderr, map[string]int{"any": -1})})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Stop() })
	return d, path
}

const fileConn = `connections {
  filec {
    remote_addrs = 192.0.2.9
    local { auth = psk }
    remote { auth = psk }
    children { net { remote_ts = 10.9.0.0/16 } }
  }
}
pools {
  filepool { addrs = 10.8.0.0/24 }
}
`

// viciConn is what swanctl sends for a connection named name.
func viciConn(name string) *swanctl.Tree {
	root := &swanctl.Tree{}
	c := root.Sub("connections").Sub(name)
	c.Set("remote_addrs", "192.0.2.2")
	c.Set("proposals", "aes128gcm16-prfsha256-x25519")
	c.Sub("local").Set("auth", "psk")
	c.Sub("local").Set("id", "moon")
	c.Sub("remote").Set("auth", "psk")
	c.Sub("children").Sub("net").Set("remote_ts", "10.2.0.0/16")
	return root
}

func connNames(d *Daemon) []string {
	var out []string
	for _, c := range d.ListConns() {
		out = append(out, c.Name)
	}
	return out
}

// VICI's connections and the file's live side by side; each side owns
// its names; a reload of the file leaves VICI's alone.
func TestVICIConnections(t *testing.T) {
	d, path := startDryRun(t, fileConn)
	if err := d.LoadVICIConns(viciConn("vc"), nil); err != nil {
		t.Fatal(err)
	}
	if got := connNames(d); !slices.Equal(got, []string{"filec", "vc"}) {
		t.Errorf("conns: %v", got)
	}
	if got := d.VICIConns(); !slices.Equal(got, []string{"vc"}) {
		t.Errorf("VICI conns: %v", got)
	}
	// The engine has it: initiate finds it (and fails only for want of a
	// peer, in the background).
	if resp := d.Handle(Request{Command: CmdInitiate, IKE: "vc", TimeoutMS: -1}); !resp.OK {
		t.Errorf("initiate vc: %s", resp.Error)
	}
	// VICI may not take the file's name, nor unload the file's.
	if err := d.LoadVICIConns(viciConn("filec"), nil); err == nil || !strings.Contains(err.Error(), "is defined in "+path) {
		t.Errorf("load-conn of a file connection: %v", err)
	}
	if err := d.UnloadVICIConn("filec"); err == nil || !strings.Contains(err.Error(), "not loaded over vici") {
		t.Errorf("unload-conn of a file connection: %v", err)
	}
	// Refused keys are refused as in the file, named.
	bad := viciConn("vc2")
	bad.Sub("connections").Sub("vc2").Sub("children").Sub("net").Set("mark_in", "7")
	if err := d.LoadVICIConns(bad, nil); err == nil || !strings.Contains(err.Error(), "vici load-conn: connections.vc2.children.net.mark_in") {
		t.Errorf("mark_in: %v", err)
	}
	// A pool of the file may be named.
	withPool := viciConn("vc3")
	withPool.Sub("connections").Sub("vc3").Set("pools", "filepool")
	if err := d.LoadVICIConns(withPool, nil); err != nil {
		t.Errorf("pool of the file: %v", err)
	}
	// The file is reloaded with a connection of VICI's name: skipped.
	if err := os.WriteFile(path, []byte(strings.Replace(fileConn, "filec", "vc", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := connNames(d); !slices.Equal(got, []string{"vc", "vc3"}) {
		t.Errorf("after reload: %v", got)
	}
	for _, c := range d.ListConns() {
		if c.Name == "vc" && (len(c.RemoteAddrs) != 1 || c.RemoteAddrs[0] != "192.0.2.2") {
			t.Errorf("reload replaced VICI's vc: %+v", c)
		}
	}
	if err := d.UnloadVICIConn("vc"); err != nil {
		t.Fatal(err)
	}
	// The file's vc takes its place.
	if got := connNames(d); !slices.Equal(got, []string{"vc", "vc3"}) {
		t.Errorf("after unload-conn: %v", got)
	}
	for _, c := range d.ListConns() {
		if c.Name == "vc" && (len(c.RemoteAddrs) != 1 || c.RemoteAddrs[0] != "192.0.2.9") {
			t.Errorf("the file's vc did not take over: %+v", c.RemoteAddrs)
		}
	}
	if err := d.UnloadVICIConn("vc"); err == nil || !strings.Contains(err.Error(), "not loaded over vici") {
		t.Errorf("unloaded twice: %v", err)
	}
	if err := d.UnloadVICIConn("vc3"); err != nil {
		t.Fatal(err)
	}
	if resp := d.Handle(Request{Command: CmdInitiate, IKE: "vc3", TimeoutMS: -1}); resp.OK {
		t.Error("initiate of an unloaded connection succeeded")
	}
}

func TestVICISharedAndPools(t *testing.T) {
	d, _ := startDryRun(t, fileConn)
	if err := d.LoadVICIShared(VICIShared{ID: "ike-1", Secret: []byte("s3cr3t"), Owners: []string{"moon"}}); err != nil {
		t.Fatal(err)
	}
	if err := d.LoadVICIShared(VICIShared{Secret: []byte("other"), EAP: true, Owners: []string{"carol"}}); err != nil {
		t.Fatal(err)
	}
	if got := d.VICISharedIDs(); !slices.Equal(got, []string{"ike-1", "vici-1"}) {
		t.Errorf("ids: %v", got)
	}
	creds := d.credentials(d.loaded)
	if len(creds.Shared) != 1 || string(creds.Shared[0].Secret) != "s3cr3t" || len(creds.EAP) != 1 {
		t.Errorf("credentials: %d shared, %d EAP", len(creds.Shared), len(creds.EAP))
	}
	if err := d.UnloadVICIShared("ike-1"); err != nil {
		t.Fatal(err)
	}
	if creds := d.credentials(d.loaded); len(creds.Shared) != 0 {
		t.Errorf("after unload: %d shared", len(creds.Shared))
	}
	// Pools: VICI's beside the file's, the file's name refused.
	pools := &swanctl.Tree{}
	pools.Sub("pools").Sub("vp").Set("addrs", "10.7.0.0/24")
	if err := d.LoadVICIPools(pools); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range d.ListPools(false) {
		names = append(names, p.Name+"="+p.ConfBase)
	}
	if !slices.Equal(names, []string{"filepool=10.8.0.0", "vp=10.7.0.0"}) {
		t.Errorf("pools: %v", names)
	}
	filePool := &swanctl.Tree{}
	filePool.Sub("pools").Sub("filepool").Set("addrs", "10.6.0.0/24")
	if err := d.LoadVICIPools(filePool); err == nil {
		t.Error("load-pool of the file's pool succeeded")
	}
	if err := d.UnloadVICIPool("vp"); err != nil {
		t.Fatal(err)
	}
	if err := d.UnloadVICIPool("filepool"); err == nil {
		t.Error("unload-pool of the file's pool succeeded")
	}
}

func TestVICICertificates(t *testing.T) {
	d, _ := startDryRun(t, fileConn)
	ca := iketest.NewCA(t, "vici CA", nil)
	key := iketest.NewKey(t, "ecdsa")
	cert := ca.Issue(t, key, "moon", []string{"moon"}, nil, nil)
	pemOf := func(typ string, der []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}) }
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	conn := func() *swanctl.Tree {
		root := viciConn("pk")
		c := root.Sub("connections").Sub("pk")
		c.Subs = nil
		c.Sub("local").Set("auth", "pubkey")
		c.Sub("remote").Set("auth", "pubkey")
		c.Sub("children").Sub("net").Set("remote_ts", "10.2.0.0/16")
		return root
	}
	certs := map[string]RoundCerts{"connections.pk.local": {Certs: [][]byte{pemOf("CERTIFICATE", cert.Raw)}}}
	// Without its key first: refused, saying what to do.
	if err := d.LoadVICIConns(conn(), certs); err == nil || !strings.Contains(err.Error(), "connections.pk.local.certs: no private key") {
		t.Fatalf("without key: %v", err)
	}
	id, err := d.LoadVICIKey(pemOf("PRIVATE KEY", der))
	if err != nil {
		t.Fatal(err)
	}
	if len(id) != 40 || !slices.Equal(d.VICIKeyIDs(), []string{id}) {
		t.Errorf("key id %q, ids %v", id, d.VICIKeyIDs())
	}
	if _, err := d.LoadVICICert(pemOf("CERTIFICATE", ca.Cert.Raw), true); err != nil {
		t.Fatal(err)
	}
	if _, err := d.LoadVICICert(pemOf("CERTIFICATE", cert.Raw), true); err == nil {
		t.Error("an end-entity certificate loaded as a CA")
	}
	if err := d.LoadVICIConns(conn(), certs); err != nil {
		t.Fatal(err)
	}
	c := d.swanctlConn("pk")
	if c == nil || len(c.Local[0].Certs) != 1 || !c.Local[0].Certs[0].Equal(cert) || c.Local[0].PrivateKey == nil {
		t.Fatalf("round: %+v", c)
	}
	if creds := d.credentials(d.loaded); len(creds.CAs) != 1 || !creds.CAs[0].Equal(ca.Cert) {
		t.Errorf("CAs: %d", len(creds.CAs))
	}
	var flags []string
	for _, lc := range d.Certs() {
		flags = append(flags, fmt.Sprintf("CA=%v key=%v", lc.CA, lc.HasKey))
	}
	if !slices.Equal(flags, []string{"CA=false key=true", "CA=true key=false"}) {
		t.Errorf("certs: %v", flags)
	}
	// Certificates for a round that does not exist are refused.
	bad := map[string]RoundCerts{"connections.pk.local2": {Certs: [][]byte{pemOf("CERTIFICATE", cert.Raw)}}}
	if err := d.LoadVICIConns(conn(), bad); err == nil {
		t.Error("certificates of no round loaded")
	}
	d.ClearVICICreds()
	if creds := d.credentials(d.loaded); len(creds.CAs) != 0 {
		t.Errorf("after clear-creds: %d CAs", len(creds.CAs))
	}
}
