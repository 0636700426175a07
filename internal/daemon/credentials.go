package daemon

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"

	"github.com/xdpsec/xdpsec/ike"
	"github.com/xdpsec/xdpsec/ike/swanctl"
)

// Loaded is a swanctl.conf as the daemon runs it: the file, its
// connections (the engine's typed ones, with certificates and keys read
// from the files it names) and the credentials outside connections.
type Loaded struct {
	File        *swanctl.Config
	Connections []*ike.Connection
	Credentials ike.Credentials
	Pools       []*ike.Pool // the virtual IP pools (pools.<name>)
	// Authorities are the file's certification authorities; their CA
	// certificates are in Credentials.CAs too.
	Authorities []Authority
}

// LoadConfig reads a swanctl.conf, looks up its DNS names and reads the
// certificates, keys and CAs it names; errors name the key.
func LoadConfig(path string) (*Loaded, error) {
	f, err := swanctl.Load(path)
	if err != nil {
		return nil, err
	}
	if err := f.Resolve(lookupHost); err != nil {
		return nil, err
	}
	return LoadCredentials(f)
}

// lookupHost resolves a DNS name of local_addrs or remote_addrs, once, at
// load: its first address.
func lookupHost(name string) (netip.Addr, error) {
	addrs, err := net.LookupHost(name)
	if err != nil {
		return netip.Addr{}, err
	}
	if len(addrs) == 0 {
		return netip.Addr{}, fmt.Errorf("no address")
	}
	return netip.ParseAddr(addrs[0])
}

// LoadCredentials reads what a loaded swanctl.conf names by path into its
// connections and credentials: certificates and CAs of each round, the
// private key matching each local certificate (from the secrets section
// and the key folders), the CAs of x509ca/; PSKs come from the secrets
// section.
func LoadCredentials(f *swanctl.Config) (*Loaded, error) {
	l := &Loaded{File: f}
	keys, err := loadPrivateKeys(f.Secrets.PrivateKeys)
	if err != nil {
		return nil, err
	}
	for _, c := range f.Connections {
		path := "connections." + c.Name
		for _, a := range c.Local {
			if err := loadRound(a, true, path+"."+a.Name, keys); err != nil {
				return nil, err
			}
		}
		for _, a := range c.Remote {
			if err := loadRound(a, false, path+"."+a.Name, nil); err != nil {
				return nil, err
			}
		}
		l.Connections = append(l.Connections, c.Connection)
	}
	for _, s := range f.Secrets.IKE {
		l.Credentials.Shared = append(l.Credentials.Shared, ike.SharedKey{IDs: s.IDs, Secret: s.Secret.Bytes()})
	}
	for _, s := range f.Secrets.EAP {
		l.Credentials.EAP = append(l.Credentials.EAP, ike.EAPSecret{IDs: s.IDs, Secret: s.Secret.Bytes()})
	}
	for _, p := range f.Pools {
		l.Pools = append(l.Pools, p.Pool)
	}
	// swanctl loads every certificate in x509ca/ as a trust anchor.
	cas, err := loadCertDir(filepath.Join(f.Dir, "x509ca"))
	if err != nil {
		return nil, err
	}
	l.Credentials.CAs = cas
	if l.Authorities, err = loadAuthorities(f); err != nil {
		return nil, err
	}
	for _, a := range l.Authorities {
		if !slices.ContainsFunc(l.Credentials.CAs, a.Cert.Equal) {
			l.Credentials.CAs = append(l.Credentials.CAs, a.Cert)
		}
	}
	return l, nil
}

func keyErr(path string, format string, a ...any) error {
	return fmt.Errorf("%s: %s", path, fmt.Sprintf(format, a...))
}

// loadRound reads the certificates and CAs of an authentication round
// and, for a local one, finds the private key of its certificate.
func loadRound(a *swanctl.AuthRound, local bool, key string, keys []crypto.Signer) error {
	var err error
	a.PrivateKey = nil
	if a.Certs, err = loadCertFiles(a.CertFiles, key+".certs"); err != nil {
		return err
	}
	if a.CACerts, err = loadCertFiles(a.CACertFiles, key+".cacerts"); err != nil {
		return err
	}
	if local && len(a.Certs) > 0 {
		for _, k := range keys {
			if publicKeyEqual(k.Public(), a.Certs[0].PublicKey) {
				a.PrivateKey = k
				break
			}
		}
		if a.PrivateKey == nil {
			return keyErr(key+".certs", "no private key for certificate %q found in private/, rsa/, ecdsa/, pkcs8/ or secrets", a.Certs[0].Subject)
		}
	}
	return nil
}

// loadCertFiles reads the certificates of the files a key names.
func loadCertFiles(paths []string, key string) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for _, p := range paths {
		cs, err := loadCerts(p)
		if err != nil {
			return nil, keyErr(key, "%v", err)
		}
		out = append(out, cs...)
	}
	return out, nil
}

func publicKeyEqual(a, b crypto.PublicKey) bool {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	if e, ok := a.(equaler); ok {
		return e.Equal(b)
	}
	return reflect.DeepEqual(a, b)
}

// loadCerts reads the certificates of a PEM or DER file.
func loadCerts(path string) ([]*x509.Certificate, error) {
	if err := swanctl.CheckFileOwner(path, "the daemon trusts or presents its certificates"); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parseCerts(b, path)
}

// parseCerts reads PEM certificates, or one DER certificate; what names
// them in errors.
func parseCerts(b []byte, path string) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	rest := b
	for {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		c, err := x509.ParseCertificate(b)
		if err != nil {
			return nil, fmt.Errorf("%s: neither PEM certificates nor a DER certificate: %w", path, err)
		}
		out = append(out, c)
	}
	return out, nil
}

func loadCertDir(dir string) ([]*x509.Certificate, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []*x509.Certificate
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		cs, err := loadCerts(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("x509ca: %w", err)
		}
		out = append(out, cs...)
	}
	return out, nil
}

// loadPrivateKeys reads the private keys swanctl.conf names or its key
// folders hold.
func loadPrivateKeys(list []*swanctl.PrivateKey) ([]crypto.Signer, error) {
	var out []crypto.Signer
	for _, k := range list {
		s, err := loadPrivateKey(k.Path)
		if err != nil {
			where := k.Path
			if k.Name != "" {
				where = "secrets." + k.Name + ".file"
			}
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		out = append(out, s)
	}
	return out, nil
}

func loadPrivateKey(path string) (crypto.Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	defer clear(b)
	return parsePrivateKey(b, path)
}

// parsePrivateKey reads a PEM or DER private key (PKCS#8, PKCS#1, SEC 1);
// what names it in errors, which never hold the key.
func parsePrivateKey(b []byte, path string) (crypto.Signer, error) {
	der := b
	if blk, _ := pem.Decode(b); blk != nil {
		if blk.Headers["Proc-Type"] != "" || strings.Contains(blk.Type, "ENCRYPTED") {
			return nil, fmt.Errorf("%s: encrypted private keys are not supported yet", path)
		}
		der = blk.Bytes
	}
	if k, err := x509.ParsePKCS8PrivateKey(der); err == nil {
		switch k := k.(type) {
		case *rsa.PrivateKey:
			return k, nil
		case *ecdsa.PrivateKey:
			return k, nil
		case ed25519.PrivateKey:
			return k, nil
		}
		return nil, fmt.Errorf("%s: unsupported key type %T", path, k)
	}
	if k, err := x509.ParsePKCS1PrivateKey(der); err == nil {
		return k, nil
	}
	if k, err := x509.ParseECPrivateKey(der); err == nil {
		return k, nil
	}
	return nil, fmt.Errorf("%s: not a PKCS#8, PKCS#1 or SEC 1 private key", path)
}
