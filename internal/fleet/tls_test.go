package fleet

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/xdpsec/xdpsec/internal/fleet/fleettest"
)

// etcd over TLS with client certificates (--client-cert-auth): a member
// with the CA and a certificate joins and works; one without a
// certificate, or without TLS, is refused.
func TestFleetTLS(t *testing.T) {
	dir := t.TempDir()
	ep := fleettest.StartWith(t, fleettest.Options{Dir: dir, TLS: true})
	if !strings.HasPrefix(ep, "https://") {
		t.Fatalf("endpoint %s", ep)
	}
	ca, cert, key := fleettest.TLSFiles(dir)
	tc, err := LoadTLS(ca, cert, key)
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t, 30*time.Second)
	m, err := Join(ctx, Config{Endpoints: []string{ep}, Member: "gw1", Key: testKey, TLS: tc})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	l, err := m.Campaign(ctx, "wan")
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Save(ctx, map[string][]byte{"r": []byte("v")}, nil); err != nil {
		t.Fatal(err)
	}
	if recs, err := m.Load(ctx, "wan"); err != nil || string(recs["r"]) != "v" {
		t.Fatalf("load over TLS: %v %v", recs, err)
	}

	noCert, err := LoadTLS(ca, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Join(ctx, Config{Endpoints: []string{ep}, Member: "gw2", Key: testKey, TLS: noCert, DialTimeout: 2 * time.Second}); err == nil {
		t.Fatal("joined without a client certificate")
	}
	if _, err := Join(ctx, Config{Endpoints: []string{ep}, Member: "gw2", Key: testKey}); err == nil || !strings.Contains(err.Error(), "is https but no CA") {
		t.Fatalf("https without TLS: %v", err)
	}
	if _, err := LoadTLS(ca, cert, ""); err == nil {
		t.Fatal("a certificate without its key")
	}
	if err := os.Chmod(key, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadTLS(ca, cert, key); err == nil || !strings.Contains(err.Error(), "accessible by group or others") {
		t.Fatalf("a world-readable client key: %v", err)
	}
	if _, err := LoadTLS(cert+".none", "", ""); err == nil {
		t.Fatal("a missing CA file")
	}
}
