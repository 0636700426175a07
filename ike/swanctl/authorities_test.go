package swanctl

import (
	"strings"
	"testing"
)

func TestAuthorities(t *testing.T) {
	cfg := mustLoadMem(t, map[string]string{"swanctl.conf": `authorities {
	strongswan {
		cacert = strongswanCert.pem
		crl_uris = http://crl.example.org/ca.crl, file:///etc/ca.crl
		ocsp_uris = http://ocsp.example.org
		cert_uri_base = http://certs.example.org/
	}
	other { file = /etc/ssl/other.pem }
}
`})
	if len(cfg.Authorities) != 2 {
		t.Fatalf("authorities: %+v", cfg.Authorities)
	}
	a := cfg.Authority("strongswan")
	check(t, "cacert", a.CACert, "strongswanCert.pem")
	checkStrings(t, "crl_uris", a.CRLURIs, "http://crl.example.org/ca.crl", "file:///etc/ca.crl")
	checkStrings(t, "ocsp_uris", a.OCSPURIs, "http://ocsp.example.org")
	check(t, "cert_uri_base", a.CertURIBase, "http://certs.example.org/")
	check(t, "file", cfg.Authority("other").File, "/etc/ssl/other.pem")
}

func TestAuthorityErrors(t *testing.T) {
	_, err := loadMem(t, map[string]string{"swanctl.conf": `authorities {
	a { crl_uris = http://x }
	b { cacert = b.pem
	    file = /b.pem }
	c { file = c.pem }
	d { cacert = d.pem
	    handle = 0102 }
	e { cacert = e.pem
	    nope = 1 }
}
`})
	want := []string{
		mainFile + ":2: authorities.a: missing cacert (or file)",
		mainFile + ":4: authorities.b.file: set cacert or file, not both",
		mainFile + `:5: authorities.c.file: "c.pem" is not an absolute path`,
		mainFile + ":7: authorities.d.handle: not supported",
		mainFile + ":9: authorities.e.nope: unknown key",
	}
	got := errorLines(err)
	for _, w := range want {
		found := false
		for _, g := range got {
			if strings.HasPrefix(g, w) {
				found = true
			}
		}
		if !found {
			t.Errorf("no error %q in\n  %s", w, strings.Join(got, "\n  "))
		}
	}
}
