package daemon

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/xdpsec/xdpsec/ike"
	"github.com/xdpsec/xdpsec/ike/swanctl"
)

// Connections and secrets loaded over VICI (load-conn, load-shared) are
// owned by VICI, as charon's vici backend owns them: a reload of the
// file leaves them alone, and a file connection may not take the name of
// one (the reload skips it with a warning) nor VICI the name of a file
// connection (load-conn is refused: edit the file and reload); after
// unload-conn of such a name, the file's takes its place. They are
// not saved: after a restart swanctl --load-all loads them again, and IKE
// SAs saved for them are not taken back (no configuration matches).

// viciStore holds what VICI loaded.
type viciStore struct {
	mu     sync.Mutex // guards below; taken after Daemon.mu, never before
	conns  []*swanctl.Connection
	pools  []*swanctl.Pool
	shared []viciSecret
	nextID int
	// certs and keys came by load-cert and load-key: trust anchors (CA)
	// join the engine's CAs, the others and the keys serve the certs
	// of load-conn.
	certs []LoadedCert
	keys  []crypto.Signer
	// authorities came by load-authority (authorities.go).
	authorities []Authority
}

// viciSecret is a load-shared secret; its value is never formatted.
type viciSecret struct {
	id  string
	ike *ike.SharedKey
	eap *ike.EAPSecret
}

// VICIShared is a shared secret loaded over VICI.
type VICIShared struct {
	ID     string // "" picks one
	EAP    bool   // an EAP password rather than an IKE PSK
	Secret []byte
	Owners []string
}

func (v *viciStore) conn(name string) *swanctl.Connection {
	for _, c := range v.conns {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// allConns are the connections the engine has: the file's, then VICI's.
// A file connection of a name VICI loaded first is not the engine's (the
// reload skipped it) and is left out.
func (d *Daemon) allConns() (*Loaded, []*swanctl.Connection) {
	d.mu.Lock()
	l := d.loaded
	d.mu.Unlock()
	d.vici.mu.Lock()
	defer d.vici.mu.Unlock()
	out := make([]*swanctl.Connection, 0, len(l.File.Connections)+len(d.vici.conns))
	for _, c := range l.File.Connections {
		if d.vici.conn(c.Name) == nil {
			out = append(out, c)
		}
	}
	return l, append(out, d.vici.conns...)
}

// swanctlConn finds a loaded connection by name, file or VICI.
func (d *Daemon) swanctlConn(name string) *swanctl.Connection {
	_, all := d.allConns()
	for _, c := range all {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// credentials are the file's credentials with VICI's shared secrets.
func (d *Daemon) credentials(l *Loaded) ike.Credentials {
	c := l.Credentials
	c.Shared = slices.Clone(c.Shared)
	c.EAP = slices.Clone(c.EAP)
	d.vici.mu.Lock()
	defer d.vici.mu.Unlock()
	for _, cert := range d.vici.certs {
		if cert.CA {
			if x, err := x509.ParseCertificate(cert.DER); err == nil {
				c.CAs = append(slices.Clone(c.CAs), x)
			}
		}
	}
	for _, a := range d.vici.authorities {
		if !slices.ContainsFunc(c.CAs, a.Cert.Equal) {
			c.CAs = append(slices.Clone(c.CAs), a.Cert)
		}
	}
	for _, s := range d.vici.shared {
		if s.ike != nil {
			c.Shared = append(c.Shared, *s.ike)
		} else {
			c.EAP = append(c.EAP, *s.eap)
		}
	}
	return c
}

// LoadVICIConns loads the connections of a VICI load-conn through the
// same parser and checks as swanctl.conf (swanctl.LoadTree), then into
// the engine: new ones are added (and started if start_action=start),
// changed ones replace the old (their IKE SAs terminated), unchanged
// ones are left as they are.
//
// certs are the certs and cacerts of authentication rounds, by the
// round's dotted path ("connections.c.local"): swanctl sends the files'
// contents. A local round's certificate needs its key, loaded before by
// load-key.
func (d *Daemon) LoadVICIConns(t *swanctl.Tree, certs map[string]RoundCerts) error {
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	l, _ := d.allConns()
	cfg, err := swanctl.LoadTree(t, "vici load-conn", d.poolNames(l))
	if err != nil {
		return err
	}
	if err := cfg.Resolve(lookupHost); err != nil {
		return err
	}
	for _, w := range cfg.Warnings {
		d.cfgLog.Warn(w.Error())
	}
	if err := d.viciRoundCerts(cfg, certs); err != nil {
		return err
	}
	for _, c := range cfg.Connections {
		if l.File.Connection(c.Name) != nil {
			return fmt.Errorf("connection '%s' is defined in %s: edit it there and reload", c.Name, l.File.Path)
		}
	}
	var changed, added []string
	for _, c := range cfg.Connections {
		d.vici.mu.Lock()
		old := d.vici.conn(c.Name)
		d.vici.mu.Unlock()
		if old != nil {
			ch := swanctl.Diff(&swanctl.Config{Connections: []*swanctl.Connection{old}}, &swanctl.Config{Connections: []*swanctl.Connection{c}})
			if len(ch.Changed) == 0 && sameRoundCerts(old, c) {
				continue
			}
			d.terminateConn(c.Name)
			changed = append(changed, c.Name)
		} else {
			added = append(added, c.Name)
		}
		if err := d.engine.AddConnection(c.Connection); err != nil {
			return fmt.Errorf("loading connection '%s' failed: %w", c.Name, err)
		}
		d.vici.mu.Lock()
		if i := slices.IndexFunc(d.vici.conns, func(x *swanctl.Connection) bool { return x.Name == c.Name }); i >= 0 {
			d.vici.conns[i] = c
		} else {
			d.vici.conns = append(d.vici.conns, c)
		}
		d.vici.mu.Unlock()
		d.cfgLog.Info(fmt.Sprintf("loaded connection '%s' over vici", c.Name))
	}
	if len(added)+len(changed) > 0 {
		d.startActions(append(added, changed...))
	}
	return nil
}

// UnloadVICIConn removes a connection loaded over VICI and terminates its
// IKE SAs.
func (d *Daemon) UnloadVICIConn(name string) error {
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	d.vici.mu.Lock()
	i := slices.IndexFunc(d.vici.conns, func(x *swanctl.Connection) bool { return x.Name == name })
	d.vici.mu.Unlock()
	if i < 0 {
		if l, _ := d.allConns(); l.File.Connection(name) != nil {
			return fmt.Errorf("connection '%s' was not loaded over vici: it is defined in %s", name, l.File.Path)
		}
		return fmt.Errorf("connection '%s' not found", name)
	}
	d.terminateConn(name)
	if err := d.engine.RemoveConnection(name); err != nil {
		d.cfgLog.Warn(err.Error())
	}
	d.vici.mu.Lock()
	d.vici.conns = slices.Delete(d.vici.conns, i, i+1)
	d.vici.mu.Unlock()
	d.cfgLog.Info(fmt.Sprintf("unloaded connection '%s' over vici", name))
	d.reconcileTraps()
	// A file connection of that name, skipped while VICI had it, takes
	// its place.
	if l, _ := d.allConns(); l.File.Connection(name) != nil {
		if err := d.engine.AddConnection(l.File.Connection(name).Connection); err != nil {
			d.cfgLog.Warn(fmt.Sprintf("loading connection '%s' of %s failed: %v", name, l.File.Path, err))
		} else {
			d.cfgLog.Info(fmt.Sprintf("loaded connection '%s' of %s", name, l.File.Path))
			d.startActions([]string{name})
		}
	}
	return nil
}

// VICIConns names the connections loaded over VICI.
func (d *Daemon) VICIConns() []string {
	d.vici.mu.Lock()
	defer d.vici.mu.Unlock()
	out := []string{}
	for _, c := range d.vici.conns {
		out = append(out, c.Name)
	}
	return out
}

// LoadVICIShared adds a shared secret, or replaces the one of its ID.
func (d *Daemon) LoadVICIShared(s VICIShared) error {
	if len(s.Secret) == 0 {
		return errors.New("empty secret")
	}
	secret := slices.Clone(s.Secret)
	d.vici.mu.Lock()
	if s.ID == "" {
		d.vici.nextID++
		s.ID = fmt.Sprintf("vici-%d", d.vici.nextID)
	}
	vs := viciSecret{id: s.ID}
	if s.EAP {
		vs.eap = &ike.EAPSecret{IDs: slices.Clone(s.Owners), Secret: secret}
	} else {
		vs.ike = &ike.SharedKey{IDs: slices.Clone(s.Owners), Secret: secret}
	}
	var replaced viciSecret
	if i := slices.IndexFunc(d.vici.shared, func(x viciSecret) bool { return x.id == s.ID }); i >= 0 {
		replaced = d.vici.shared[i]
		d.vici.shared[i] = vs
	} else {
		d.vici.shared = append(d.vici.shared, vs)
	}
	d.vici.mu.Unlock()
	d.applyCredentials()
	replaced.wipe()
	d.cfgLog.Info(fmt.Sprintf("loaded shared secret '%s' for %v over vici", s.ID, s.Owners))
	return nil
}

func (s viciSecret) wipe() {
	if s.ike != nil {
		clear(s.ike.Secret)
	}
	if s.eap != nil {
		clear(s.eap.Secret)
	}
}

// UnloadVICIShared removes a shared secret loaded over VICI.
func (d *Daemon) UnloadVICIShared(id string) error {
	d.vici.mu.Lock()
	i := slices.IndexFunc(d.vici.shared, func(x viciSecret) bool { return x.id == id })
	if i < 0 {
		d.vici.mu.Unlock()
		return fmt.Errorf("shared secret '%s' not found", id)
	}
	old := d.vici.shared[i]
	d.vici.shared = slices.Delete(d.vici.shared, i, i+1)
	d.vici.mu.Unlock()
	d.applyCredentials()
	// The engine holds the new credentials now; the old bytes may go.
	old.wipe()
	d.cfgLog.Info(fmt.Sprintf("unloaded shared secret '%s' over vici", id))
	return nil
}

// VICISharedIDs are the IDs of the secrets loaded over VICI.
func (d *Daemon) VICISharedIDs() []string {
	d.vici.mu.Lock()
	defer d.vici.mu.Unlock()
	out := []string{}
	for _, s := range d.vici.shared {
		out = append(out, s.id)
	}
	return out
}

// applyCredentials gives the engine the file's credentials and VICI's;
// under reloadMu, so that a reload's and VICI's do not cross.
func (d *Daemon) applyCredentials() {
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	d.mu.Lock()
	l := d.loaded
	d.mu.Unlock()
	d.engine.SetCredentials(d.credentials(l))
}

// SetObserver has the engine report SA events to o (the VICI server's
// events); nil stops them.
func (d *Daemon) SetObserver(o ike.Observer) {
	d.engine.SetObserver(o)
}

// VICIOwns reports whether a connection of that name was loaded over VICI.
func (d *Daemon) VICIOwns(name string) bool {
	d.vici.mu.Lock()
	defer d.vici.mu.Unlock()
	return d.vici.conn(name) != nil
}

// poolNames are the pools connections may name: the file's and VICI's.
func (d *Daemon) poolNames(l *Loaded) []string {
	var out []string
	for _, p := range d.pools(l) {
		out = append(out, p.Name())
	}
	return out
}

// pools are the file's pools and VICI's (a name in both: the file's).
func (d *Daemon) pools(l *Loaded) []*ike.Pool {
	out := slices.Clone(l.Pools)
	d.vici.mu.Lock()
	for _, p := range d.vici.pools {
		if l.File.Pool(p.Name()) == nil {
			out = append(out, p.Pool)
		}
	}
	d.vici.mu.Unlock()
	if d.fleet != nil && d.fleet.cfg.Pools {
		// Those of a reload and VICI's too: leases are the fleet's.
		d.fleetPools(out)
	}
	return out
}

// LoadVICIPools loads the pools of a VICI load-pool (pools.<name>, as in
// swanctl.conf, through the same parser). A pool of the same name whose
// addrs did not change keeps its leases; one the file defines is refused.
func (d *Daemon) LoadVICIPools(t *swanctl.Tree) error {
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	l, _ := d.allConns()
	cfg, err := swanctl.LoadTree(t, "vici load-pool", nil)
	if err != nil {
		return err
	}
	for _, p := range cfg.Pools {
		if l.File.Pool(p.Name()) != nil {
			return fmt.Errorf("pool '%s' is defined in %s: edit it there and reload", p.Name(), l.File.Path)
		}
	}
	d.vici.mu.Lock()
	for _, p := range cfg.Pools {
		i := slices.IndexFunc(d.vici.pools, func(x *swanctl.Pool) bool { return x.Name() == p.Name() })
		if i < 0 {
			d.vici.pools = append(d.vici.pools, p)
			continue
		}
		if d.vici.pools[i].Addrs == p.Addrs {
			p.Leases = d.vici.pools[i].Leases
		}
		d.vici.pools[i] = p
	}
	d.vici.mu.Unlock()
	d.engine.SetPools(d.pools(l))
	for _, p := range cfg.Pools {
		d.cfgLog.Info(fmt.Sprintf("loaded pool '%s' (%s) over vici", p.Name(), p.Addrs))
	}
	return nil
}

// UnloadVICIPool removes a pool loaded over VICI; one with leases online
// stays (as charon's).
func (d *Daemon) UnloadVICIPool(name string) error {
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	l, _ := d.allConns()
	d.vici.mu.Lock()
	i := slices.IndexFunc(d.vici.pools, func(x *swanctl.Pool) bool { return x.Name() == name })
	if i < 0 {
		d.vici.mu.Unlock()
		if l.File.Pool(name) != nil {
			return fmt.Errorf("pool '%s' was not loaded over vici: it is defined in %s", name, l.File.Path)
		}
		return fmt.Errorf("pool '%s' not found", name)
	}
	if _, online, _ := d.vici.pools[i].Leases.Stats(); online > 0 {
		d.vici.mu.Unlock()
		return fmt.Errorf("pool '%s' has %d leases online", name, online)
	}
	d.vici.pools = slices.Delete(d.vici.pools, i, i+1)
	d.vici.mu.Unlock()
	d.engine.SetPools(d.pools(l))
	d.cfgLog.Info(fmt.Sprintf("unloaded pool '%s' over vici", name))
	return nil
}

// SetLogTap has every line of the daemon's log also given to f (the VICI
// log and control-log events); nil stops it.
func (d *Daemon) SetLogTap(f func(LogRecord)) {
	d.opts.Logs.SetTap(f)
}

// LoadedCert is a certificate the daemon loaded (list-certs).
type LoadedCert struct {
	DER    []byte
	CA     bool // a trust anchor (x509ca/, cacerts)
	HasKey bool // its private key is loaded
}

// Certs lists the certificates of the loaded configuration, each once:
// the connections' own and their peers' trust anchors, and x509ca/.
func (d *Daemon) Certs() []LoadedCert {
	l, conns := d.allConns()
	var out []LoadedCert
	seen := map[string]int{}
	add := func(c *x509.Certificate, ca, key bool) {
		if i, ok := seen[string(c.Raw)]; ok {
			out[i].HasKey = out[i].HasKey || key
			out[i].CA = out[i].CA || ca
			return
		}
		seen[string(c.Raw)] = len(out)
		out = append(out, LoadedCert{DER: c.Raw, CA: ca, HasKey: key})
	}
	for _, c := range conns {
		for _, r := range append(slices.Clone(c.Local), c.Remote...) {
			for i, cert := range r.Certs {
				add(cert, false, i == 0 && r.PrivateKey != nil)
			}
			for _, cert := range r.CACerts {
				add(cert, true, false)
			}
		}
	}
	for _, cert := range l.Credentials.CAs {
		add(cert, true, false)
	}
	d.vici.mu.Lock()
	vcerts := slices.Clone(d.vici.certs)
	keys := slices.Clone(d.vici.keys)
	d.vici.mu.Unlock()
	for _, c := range vcerts {
		if x, err := x509.ParseCertificate(c.DER); err == nil {
			hasKey := slices.ContainsFunc(keys, func(k crypto.Signer) bool { return publicKeyEqual(k.Public(), x.PublicKey) })
			add(x, c.CA, hasKey)
		}
	}
	for _, a := range d.Authorities() {
		add(a.Cert, true, false)
	}
	return out
}

// Counters are the engine's IKE event counters of a connection, or the
// global ones for "" (swanctl --counters).
func (d *Daemon) Counters(conn string) ike.Counters { return d.engine.Counters(conn) }

// ResetCounters zeroes them.
func (d *Daemon) ResetCounters(conn string) { d.engine.ResetCounters(conn) }

// RoundCerts are the certificates (PEM or DER) of one authentication
// round sent with load-conn.
type RoundCerts struct {
	Certs, CACerts [][]byte
}

// viciRoundCerts gives the rounds of VICI's connections the certificates
// sent with them, and local ones the private key of theirs.
func (d *Daemon) viciRoundCerts(cfg *swanctl.Config, certs map[string]RoundCerts) error {
	d.vici.mu.Lock()
	keys := slices.Clone(d.vici.keys)
	d.vici.mu.Unlock()
	used := map[string]bool{}
	for _, c := range cfg.Connections {
		for _, local := range []bool{true, false} {
			rounds := c.Remote
			if local {
				rounds = c.Local
			}
			for _, r := range rounds {
				path := "connections." + c.Name + "." + r.Name
				rc, ok := certs[path]
				if !ok {
					continue
				}
				used[path] = true
				for _, b := range rc.Certs {
					x, err := parseCerts(b, path+".certs")
					if err != nil {
						return err
					}
					r.Certs = append(r.Certs, x...)
				}
				for _, b := range rc.CACerts {
					x, err := parseCerts(b, path+".cacerts")
					if err != nil {
						return err
					}
					r.CACerts = append(r.CACerts, x...)
				}
				if local && len(r.Certs) > 0 {
					for _, k := range keys {
						if publicKeyEqual(k.Public(), r.Certs[0].PublicKey) {
							r.PrivateKey = k
							break
						}
					}
					if r.PrivateKey == nil {
						return fmt.Errorf("%s.certs: no private key for certificate %q: load it first (swanctl --load-creds)", path, r.Certs[0].Subject)
					}
				}
			}
		}
	}
	for path := range certs {
		if !used[path] {
			return fmt.Errorf("%s: certificates for no authentication round", path)
		}
	}
	return nil
}

// LoadVICICert adds a certificate (PEM or DER): a CA one is trusted.
func (d *Daemon) LoadVICICert(data []byte, ca bool) (string, error) {
	certs, err := parseCerts(data, "load-cert")
	if err != nil {
		return "", err
	}
	if len(certs) != 1 {
		return "", fmt.Errorf("load-cert: %d certificates, want one", len(certs))
	}
	x := certs[0]
	if ca && !x.IsCA {
		return "", fmt.Errorf("load-cert: %q is not a CA certificate", x.Subject)
	}
	d.vici.mu.Lock()
	if !slices.ContainsFunc(d.vici.certs, func(c LoadedCert) bool { return string(c.DER) == string(x.Raw) && c.CA == ca }) {
		d.vici.certs = append(d.vici.certs, LoadedCert{DER: x.Raw, CA: ca})
	}
	d.vici.mu.Unlock()
	if ca {
		d.applyCredentials()
	}
	d.cfgLog.Info(fmt.Sprintf("loaded certificate %q over vici", x.Subject))
	return x.Subject.String(), nil
}

// LoadVICIKey adds a private key (PEM or DER, unencrypted); it is never
// logged or formatted.
func (d *Daemon) LoadVICIKey(data []byte) (string, error) {
	k, err := parsePrivateKey(data, "load-key")
	if err != nil {
		return "", err
	}
	d.vici.mu.Lock()
	if !slices.ContainsFunc(d.vici.keys, func(x crypto.Signer) bool { return publicKeyEqual(x.Public(), k.Public()) }) {
		d.vici.keys = append(d.vici.keys, k)
	}
	d.vici.mu.Unlock()
	id := keyID(k)
	d.cfgLog.Info(fmt.Sprintf("loaded %s private key %s over vici", keyKind(k), id))
	return id, nil
}

func keyKind(k crypto.Signer) string {
	switch k.Public().(type) {
	case *rsa.PublicKey:
		return "RSA"
	case *ecdsa.PublicKey:
		return "ECDSA"
	case ed25519.PublicKey:
		return "ED25519"
	}
	return "a"
}

// ClearVICICreds forgets the certificates, keys and shared secrets loaded
// over VICI (clear-creds); connections keep what they were given.
func (d *Daemon) ClearVICICreds() {
	d.vici.mu.Lock()
	old := d.vici.shared
	d.vici.shared, d.vici.certs, d.vici.keys = nil, nil, nil
	d.vici.mu.Unlock()
	d.applyCredentials()
	for _, s := range old {
		s.wipe()
	}
	d.cfgLog.Info("cleared credentials loaded over vici")
}

// sameRoundCerts reports whether two versions of a connection have the
// same certificates and keys in each round (Diff compares what files
// name; over VICI the certificates themselves come).
func sameRoundCerts(a, b *swanctl.Connection) bool {
	same := func(x, y []*swanctl.AuthRound) bool {
		if len(x) != len(y) {
			return false
		}
		for i := range x {
			if !slices.EqualFunc(x[i].Certs, y[i].Certs, func(p, q *x509.Certificate) bool { return p.Equal(q) }) ||
				!slices.EqualFunc(x[i].CACerts, y[i].CACerts, func(p, q *x509.Certificate) bool { return p.Equal(q) }) ||
				(x[i].PrivateKey == nil) != (y[i].PrivateKey == nil) {
				return false
			}
		}
		return true
	}
	return same(a.Local, b.Local) && same(a.Remote, b.Remote)
}

// keyID is a private key's id as charon's get-keys gives it: the SHA-1
// of its public key's subjectPublicKey bits, in hex.
func keyID(k crypto.Signer) string {
	der, err := x509.MarshalPKIXPublicKey(k.Public())
	if err != nil {
		return ""
	}
	var spki struct {
		Algorithm asn1.RawValue
		Key       asn1.BitString
	}
	if _, err := asn1.Unmarshal(der, &spki); err != nil {
		return ""
	}
	sum := sha1.Sum(spki.Key.Bytes)
	return hex.EncodeToString(sum[:])
}

// VICIKeyIDs are the ids of the private keys loaded over VICI.
func (d *Daemon) VICIKeyIDs() []string {
	d.vici.mu.Lock()
	defer d.vici.mu.Unlock()
	out := []string{}
	for _, k := range d.vici.keys {
		out = append(out, keyID(k))
	}
	return out
}

// UnloadVICIKey forgets a private key loaded over VICI, by its id.
// Connections given its certificate keep it until they are loaded again.
func (d *Daemon) UnloadVICIKey(id string) error {
	d.vici.mu.Lock()
	defer d.vici.mu.Unlock()
	i := slices.IndexFunc(d.vici.keys, func(k crypto.Signer) bool { return keyID(k) == id })
	if i < 0 {
		return fmt.Errorf("private key '%s' not found", id)
	}
	d.vici.keys = slices.Delete(d.vici.keys, i, i+1)
	return nil
}
