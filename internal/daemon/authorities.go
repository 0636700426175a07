package daemon

import (
	"crypto/x509"
	"fmt"
	"path/filepath"
	"slices"

	"github.com/xdpsec/xdpsec/ike/swanctl"
)

// Authority is a certification authority (swanctl.conf authorities, VICI
// load-authority): its CA certificate is a trust anchor, as those of
// x509ca/ are; its CRL and OCSP URIs and certificate URI base are kept
// and listed, not fetched (xdpsec checks no revocation yet).
type Authority struct {
	Name        string
	Cert        *x509.Certificate
	CRLURIs     []string
	OCSPURIs    []string
	CertURIBase string
	// VICI: loaded over VICI (load-authority), not from the file.
	VICI bool
}

// loadAuthorities reads the CA certificates of the file's authorities:
// cacert relative to x509ca/ (or absolute), or file.
func loadAuthorities(f *swanctl.Config) ([]Authority, error) {
	var out []Authority
	for _, a := range f.Authorities {
		key, path := "authorities."+a.Name+".cacert", a.CACert
		if path == "" {
			key, path = "authorities."+a.Name+".file", a.File
		} else if !filepath.IsAbs(path) {
			path = filepath.Join(f.Dir, "x509ca", path)
		}
		certs, err := loadCerts(path)
		if err != nil {
			return nil, keyErr(key, "%v", err)
		}
		if len(certs) != 1 {
			return nil, keyErr(key, "%s holds %d certificates, want one", path, len(certs))
		}
		if !certs[0].IsCA {
			return nil, keyErr(key, "%q is not a CA certificate", certs[0].Subject)
		}
		out = append(out, Authority{Name: a.Name, Cert: certs[0], CRLURIs: a.CRLURIs, OCSPURIs: a.OCSPURIs, CertURIBase: a.CertURIBase})
	}
	return out, nil
}

// Authorities lists the authorities: the file's, then VICI's (which
// replace a file authority of the same name, as a later load-authority
// replaces an earlier one in charon).
func (d *Daemon) Authorities() []Authority {
	d.mu.Lock()
	l := d.loaded
	d.mu.Unlock()
	d.vici.mu.Lock()
	vici := slices.Clone(d.vici.authorities)
	d.vici.mu.Unlock()
	var out []Authority
	for _, a := range l.Authorities {
		if !slices.ContainsFunc(vici, func(v Authority) bool { return v.Name == a.Name }) {
			out = append(out, a)
		}
	}
	return append(out, vici...)
}

// VICIAuthority is a load-authority request: the CA certificate comes as
// data (PEM or DER, what swanctl read from x509ca/), or as the path of a
// file the daemon reads.
type VICIAuthority struct {
	Name        string
	CACert      []byte
	File        string
	CRLURIs     []string
	OCSPURIs    []string
	CertURIBase string
}

// LoadVICIAuthority loads (or replaces) an authority over VICI; its CA
// certificate becomes a trust anchor at once.
func (d *Daemon) LoadVICIAuthority(v VICIAuthority) error {
	if v.Name == "" {
		return fmt.Errorf("load-authority: authority name missing")
	}
	var certs []*x509.Certificate
	var err error
	switch {
	case len(v.CACert) > 0 && v.File != "":
		return fmt.Errorf("load-authority: %s: set cacert or file, not both", v.Name)
	case len(v.CACert) > 0:
		certs, err = parseCerts(v.CACert, "load-authority "+v.Name+" cacert")
	case v.File != "":
		if !filepath.IsAbs(v.File) {
			return fmt.Errorf("load-authority: %s: file %q is not an absolute path", v.Name, v.File)
		}
		certs, err = loadCerts(v.File)
	default:
		return fmt.Errorf("load-authority: %s: missing cacert", v.Name)
	}
	if err != nil {
		return fmt.Errorf("load-authority: %s: %w", v.Name, err)
	}
	if len(certs) != 1 || !certs[0].IsCA {
		return fmt.Errorf("load-authority: %s: want one CA certificate", v.Name)
	}
	a := Authority{Name: v.Name, Cert: certs[0], CRLURIs: v.CRLURIs, OCSPURIs: v.OCSPURIs, CertURIBase: v.CertURIBase, VICI: true}
	d.vici.mu.Lock()
	if i := slices.IndexFunc(d.vici.authorities, func(x Authority) bool { return x.Name == a.Name }); i >= 0 {
		d.vici.authorities[i] = a
	} else {
		d.vici.authorities = append(d.vici.authorities, a)
	}
	d.vici.mu.Unlock()
	d.applyCredentials()
	d.cfgLog.Info(fmt.Sprintf("loaded certification authority '%s' over vici", a.Name))
	return nil
}

// UnloadVICIAuthority unloads an authority loaded over VICI.
func (d *Daemon) UnloadVICIAuthority(name string) error {
	d.vici.mu.Lock()
	i := slices.IndexFunc(d.vici.authorities, func(x Authority) bool { return x.Name == name })
	if i >= 0 {
		d.vici.authorities = slices.Delete(d.vici.authorities, i, i+1)
	}
	d.vici.mu.Unlock()
	if i < 0 {
		d.mu.Lock()
		l := d.loaded
		d.mu.Unlock()
		if slices.ContainsFunc(l.Authorities, func(a Authority) bool { return a.Name == name }) {
			return fmt.Errorf("certification authority '%s' was not loaded over vici: it is defined in %s", name, l.File.Path)
		}
		return fmt.Errorf("unload: authority '%s' not found", name)
	}
	d.applyCredentials()
	d.cfgLog.Info(fmt.Sprintf("unloaded certification authority '%s' over vici", name))
	return nil
}
