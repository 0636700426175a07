package daemon

import (
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xdpsec/xdpsec/ike/iketest"
)

// An authority's CA certificate is a trust anchor as x509ca/'s are, from
// the file (cacert under x509ca/, or file anywhere) and over VICI; its
// URIs are listed; VICI's may be unloaded, the file's not.
func TestAuthorities(t *testing.T) {
	ca := iketest.NewCA(t, "file CA", nil)
	other := iketest.NewCA(t, "other CA", nil)
	viciCA := iketest.NewCA(t, "vici CA", nil)
	pemOf := func(der []byte) string {
		return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	}
	otherPath := filepath.Join(t.TempDir(), "other.pem")
	if err := os.WriteFile(otherPath, []byte(pemOf(other.Cert.Raw)), 0o600); err != nil {
		t.Fatal(err)
	}
	conf := `authorities {
  filecA { cacert = /CA/
           crl_uris = http://crl.example.org/a.crl
           ocsp_uris = http://ocsp.example.org }
  otherca { file = ` + otherPath + ` }
}
`
	path := writeConfig(t, map[string]string{"swanctl.conf": strings.Replace(conf, "/CA/", "ca.pem", 1), "x509ca/ca.pem": pemOf(ca.Cert.Raw)})
	l, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Authorities) != 2 || !l.Authorities[0].Cert.Equal(ca.Cert) || l.Authorities[0].CRLURIs[0] != "http://crl.example.org/a.crl" ||
		!l.Authorities[1].Cert.Equal(other.Cert) {
		t.Fatalf("authorities: %+v", l.Authorities)
	}
	// The x509ca/ certificate is not trusted twice; the other is trusted.
	if n := len(l.Credentials.CAs); n != 2 {
		t.Errorf("%d CAs, want the file CA once and the other", n)
	}
	// A missing certificate names the key.
	bad := writeConfig(t, map[string]string{"swanctl.conf": strings.Replace(conf, "/CA/", "nope.pem", 1)})
	if _, err := LoadConfig(bad); err == nil || !strings.Contains(err.Error(), "authorities.filecA.cacert") {
		t.Errorf("missing cacert: %v", err)
	}

	d, _ := startDryRun(t, conf[:0]+"connections {}\n")
	if err := d.LoadVICIAuthority(VICIAuthority{Name: "v", CACert: []byte(pemOf(viciCA.Cert.Raw)), OCSPURIs: []string{"http://o"}}); err != nil {
		t.Fatal(err)
	}
	if creds := d.credentials(d.loaded); len(creds.CAs) != 1 || !creds.CAs[0].Equal(viciCA.Cert) {
		t.Errorf("CAs after load-authority: %d", len(creds.CAs))
	}
	if as := d.Authorities(); len(as) != 1 || as[0].Name != "v" || !as[0].VICI || as[0].OCSPURIs[0] != "http://o" {
		t.Errorf("authorities: %+v", as)
	}
	if err := d.LoadVICIAuthority(VICIAuthority{Name: "w"}); err == nil || !strings.Contains(err.Error(), "missing cacert") {
		t.Errorf("without cacert: %v", err)
	}
	leaf := viciCA.Issue(t, iketest.NewKey(t, "ecdsa"), "moon", []string{"moon"}, nil, nil)
	if err := d.LoadVICIAuthority(VICIAuthority{Name: "w", CACert: leaf.Raw}); err == nil || !strings.Contains(err.Error(), "want one CA certificate") {
		t.Errorf("an end-entity certificate: %v", err)
	}
	if err := d.UnloadVICIAuthority("v"); err != nil {
		t.Fatal(err)
	}
	if creds := d.credentials(d.loaded); len(creds.CAs) != 0 || len(d.Authorities()) != 0 {
		t.Errorf("after unload-authority: %d CAs, %d authorities", len(creds.CAs), len(d.Authorities()))
	}
	if err := d.UnloadVICIAuthority("v"); err == nil || !strings.Contains(err.Error(), "'v'") {
		t.Errorf("unloaded twice: %v", err)
	}
}
