package swanctl

import (
	"fmt"
	"net/netip"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/xdpsec/xdpsec/ike"
	"github.com/xdpsec/xdpsec/ike/eap"
)

// DefaultPath is where the daemon reads its configuration.
const DefaultPath = "/etc/xdpsec/swanctl.conf"

// Config is a loaded configuration.
type Config struct {
	// Path is the main file; Dir its directory, against which relative
	// credential paths resolve (x509/, x509ca/, pubkey/, private/, ...).
	Path string
	Dir  string

	Connections []*Connection // in file order
	Secrets     Secrets
	Pools       []*Pool      // pools.<name>, in file order
	Authorities []*Authority // authorities.<name>, in file order

	// Warnings are things that load but may not do what the author
	// expects (a PSK connection without a matching secret, an updown
	// script that will not run, ...). Each is an *Error with its place.
	Warnings []*Error

	// keyPos is where each key that was set was set, by dotted path.
	keyPos map[string]Pos
}

// Connection returns the connection of that name, or nil.
func (c *Config) Connection(name string) *Connection {
	for _, conn := range c.Connections {
		if conn.Name == name {
			return conn
		}
	}
	return nil
}

// Load reads the configuration at path (usually DefaultPath) from the
// host's file system.
func Load(path string) (*Config, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	return LoadFS(OSFS{}, abs)
}

// LoadFS reads the configuration at name from fsys. On error the result is
// nil and the error joins every problem found (each an *Error).
func LoadFS(fsys FS, name string) (*Config, error) {
	name = path.Clean(name)
	l := &loader{
		fsys:       fsys,
		errs:       &errorList{},
		cfg:        &Config{Path: name, Dir: path.Dir(name), keyPos: map[string]Pos{}},
		secretFile: map[string]bool{},
	}
	l.keyPos = l.cfg.keyPos
	root, files := parseTree(fsys, name, l.errs)
	l.loadRoot(root)
	l.loadKeyFolders()
	l.checkConfigFiles(files)
	l.checkSecretFiles()
	l.validate()
	if err := l.errs.err(); err != nil {
		return nil, err
	}
	return l.cfg, nil
}

// loader carries the state of one Load.
type loader struct {
	fsys FS
	errs *errorList
	cfg  *Config
	// secretFile are the configuration files holding secrets.
	secretFile map[string]bool
	// keyPos is where each key that was set was set, by dotted path.
	keyPos map[string]Pos
	// poolSections are the pools sections, valid or not: a connection
	// naming one that has an error of its own gets no second error.
	poolSections map[string]bool
	// tree: loading a Tree, whose secrets come separately (VICI
	// load-shared): no warning that none matches.
	tree bool
}

func (l *loader) warn(pos Pos, key, format string, args ...any) {
	l.cfg.Warnings = append(l.cfg.Warnings, &Error{Pos: pos, Key: key, Err: fmt.Errorf(format, args...)})
}

func (l *loader) loadRoot(root *section) {
	for _, k := range root.keys {
		l.errs.add(root.settings[k].pos, k, wrapf(ErrUnknownKey, "unknown key"))
	}
	for _, s := range root.subs {
		switch s.name {
		case "connections":
			for _, k := range s.keys {
				l.errs.add(s.settings[k].pos, "connections."+k, wrapf(ErrUnknownKey, "unknown key (connections holds only sections)"))
			}
			for _, cs := range s.subs {
				l.cfg.Connections = append(l.cfg.Connections, l.loadConnection(cs))
			}
		case "secrets":
			l.secretFiles(s)
			l.loadSecrets(s)
		case "pools":
			l.loadPools(s)
		case "authorities":
			l.loadAuthorities(s)
		default:
			if !s.referenced {
				l.errs.add(s.pos(), s.name, wrapf(ErrUnknownKey, "unknown section (expected connections or secrets)"))
			}
		}
	}
}

// checkConfigFiles refuses configuration files (the main one and those
// it includes) that belong to another user; those holding secrets are
// checked with their permissions by checkSecretFiles.
func (l *loader) checkConfigFiles(files []string) {
	seen := map[string]bool{}
	for _, f := range files {
		if seen[f] || l.secretFile[f] {
			continue
		}
		seen[f] = true
		if err := checkConfigFile(l.fsys, f); err != nil {
			l.errs.add(Pos{File: f}, "", err)
		}
	}
}

// checkSecretFiles refuses configuration files holding secrets that group
// or others may read or write.
func (l *loader) checkSecretFiles() {
	files := make([]string, 0, len(l.secretFile))
	for f := range l.secretFile {
		if f != "" {
			files = append(files, f)
		}
	}
	sort.Strings(files)
	for _, f := range files {
		if err := checkSecretFile(l.fsys, f); err != nil {
			l.errs.add(Pos{File: f}, "", err)
		}
	}
}

// validate checks what single settings cannot: how they fit together.
func (l *loader) validate() {
	for _, c := range l.cfg.Connections {
		cpath := "connections." + c.Name
		l.validateAuth(c, cpath)
		for _, name := range c.Pools {
			if !l.poolSections[name] {
				l.errs.add(l.where(cpath, "pools", c.Pos), cpath+".pools", wrapf(ErrInvalid, "pool %q is not defined in the pools section", name))
			}
		}
		if c.Children == nil {
			l.warn(c.Pos, cpath, "connection has no children: no CHILD_SA will be negotiated")
		}
		for _, ch := range c.Children {
			l.validateChild(c, ch, cpath+".children."+ch.Name)
		}
	}
}

func (l *loader) validateAuth(c *Connection, cpath string) {
	second := func(rounds []*AuthRound) bool {
		return len(rounds) > 2 || (len(rounds) == 2 && (!rounds[1].Auth.IsXAuth() || c.Version != 1))
	}
	if second(c.Local) || second(c.Remote) {
		l.errs.add(c.Pos, cpath, wrapf(ErrUnsupported, "multiple authentication rounds (RFC 4739) are not supported yet, except an XAuth round of an IKEv1 connection"))
	}
	usesPSK := false
	for _, a := range append(append([]*AuthRound(nil), c.Local...), c.Remote...) {
		usesPSK = usesPSK || a.Auth == ike.AuthPSK
	}
	if usesPSK && !l.tree && !l.hasPSK(c) {
		l.warn(c.Pos, cpath, "PSK authentication but no secrets.ike<suffix> section matches local id %q or remote id %q", c.Local[0].IDSpec, c.Remote[0].IDSpec)
	}
	for _, a := range c.Remote {
		// EAP-TLS users log in with certificates, not secrets.
		passwords := slices.ContainsFunc(a.EAPMethods, func(t eap.Type) bool { return t != eap.TypeTLS })
		if a.Auth == ike.AuthEAP && passwords && !l.tree && len(l.cfg.Secrets.EAP) == 0 {
			msg := "EAP authentication but no secrets.eap<suffix> section: no user can log in"
			if slices.Contains(a.EAPMethods, eap.TypeTLS) {
				msg = "EAP authentication but no secrets.eap<suffix> section: only EAP-TLS users (certificates) can log in"
			}
			l.warn(a.Pos, cpath+"."+a.Name, "%s", msg)
		}
		if a.Auth == ike.AuthXAuth && !l.tree && len(l.cfg.Secrets.EAP) == 0 {
			l.warn(a.Pos, cpath+"."+a.Name, "XAuth authentication but no secrets.xauth<suffix> or eap<suffix> section: no user can log in")
		}
	}
	for _, a := range c.Local {
		if a.Auth == ike.AuthPubkey && len(a.CertFiles) == 0 && len(a.PubKeyFiles) == 0 {
			l.warn(a.Pos, cpath+"."+a.Name, "public key authentication without certs or pubkeys: a certificate matching id %q must be found at run time", a.IDSpec)
		}
	}
}

// hasPSK reports whether some IKE secret may serve connection c: one for
// its local or remote identity (an unset local identity stands for the
// local addresses), or any secret when the remote identity is %any and so
// only known at run time.
func (l *loader) hasPSK(c *Connection) bool {
	ids := []string{c.Local[0].IDSpec, c.Remote[0].IDSpec}
	if c.Local[0].IDSpec == "" {
		for _, a := range c.LocalAddrs {
			ids = append(ids, a.String())
		}
	}
	anyRemote := c.Remote[0].IDSpec == "%any" || c.Remote[0].IDSpec == ""
	for _, s := range l.cfg.Secrets.IKE {
		if anyRemote || s.Matches(ids...) {
			return true
		}
	}
	return false
}

func (l *loader) validateChild(c *Connection, ch *Child, path string) {
	if len(ch.ESPProposals) == 0 && len(ch.AHProposals) == 0 {
		l.errs.add(l.where(path, "esp_proposals", ch.Pos), path+".esp_proposals", wrapf(ErrInvalid, "no ESP proposals"))
	}
	lf := tsFamilies(ch.LocalTS, addrFamilies(c.LocalAddrs))
	rf := tsFamilies(ch.RemoteTS, addrFamilies(c.RemoteAddrs))
	if lf&rf == 0 {
		l.errs.add(l.where(path, "remote_ts", l.where(path, "local_ts", ch.Pos)), path,
			wrapf(ErrInvalid, "local_ts (%v) and remote_ts (%v) have no address family in common", lf, rf))
	}
	if ch.Mode == ike.ModeTransport {
		for _, ts := range append(append([]ike.TSSpec(nil), ch.LocalTS...), ch.RemoteTS...) {
			if p, ok := ts.TS.Prefix(); ok && !ts.Dynamic && !p.IsSingleIP() {
				l.warn(l.where(path, "mode", ch.Pos), path, "transport mode with subnet selector %v: only the hosts' own traffic can match", ts)
				break
			}
		}
	}
	lt := ch.ChildConfig
	if lt.LifeTime != 0 && lt.RekeyTime >= lt.LifeTime {
		l.warn(l.where(path, "life_time", ch.Pos), path+".life_time", "life_time %v is not after rekey_time %v: the CHILD_SA expires before it is rekeyed", lt.LifeTime, lt.RekeyTime)
	}
	if lt.RandTime > lt.RekeyTime {
		l.errs.add(l.where(path, "rand_time", ch.Pos), path+".rand_time", wrapf(ErrInvalid, "rand_time %v is longer than rekey_time %v", lt.RandTime, lt.RekeyTime))
	}
	if ch.StartAction&ike.ActionStart != 0 && !hasSpecific(c.RemoteAddrs) {
		l.warn(l.where(path, "start_action", ch.Pos), path+".start_action", "start_action %v needs a specific remote address or DNS name in remote_addrs to initiate to", ch.StartAction)
	}
}

func hasSpecific(addrs []Addr) bool {
	for _, a := range addrs {
		if a.Specific() {
			return true
		}
	}
	return false
}

func addrFamilies(addrs []Addr) family {
	var f family
	for _, a := range addrs {
		f |= a.families()
	}
	return f
}

// tsFamilies returns the families a selector list may hold; a dynamic
// selector stands for the outer address, of the families of dynamic.
func tsFamilies(list []ike.TSSpec, dynamic family) family {
	var f family
	for _, ts := range list {
		if ts.Dynamic {
			f |= dynamic
		} else {
			f |= tsFamily(ts)
		}
	}
	return f
}

// String lists the configuration's connections, for logs.
func (c *Config) String() string {
	names := make([]string, len(c.Connections))
	for i, conn := range c.Connections {
		names[i] = conn.Name
	}
	return fmt.Sprintf("%s: connections %s, %d IKE secrets, %d private keys", c.Path, strings.Join(names, ", "), len(c.Secrets.IKE), len(c.Secrets.PrivateKeys))
}

// Resolve finishes the engine's connections where the file alone does
// not: it looks up the DNS names of local_addrs and remote_addrs (once,
// with lookup), and refuses what swanctl.conf allows but the engine cannot
// do yet: subnets and ranges as IKE addresses, raw public keys, OPAQUE
// ports, dynamic selectors with a protocol or port, %unique interface IDs,
// marks and replay_window = 0. Errors name file, line and
// key, every one found.
func (c *Config) Resolve(lookup func(host string) (netip.Addr, error)) error {
	errs := &errorList{}
	for _, conn := range c.Connections {
		path := "connections." + conn.Name
		conn.Connection.LocalAddrs = c.resolveAddrs(errs, conn, conn.LocalAddrs, "local_addrs", lookup)
		conn.Connection.RemoteAddrs = c.resolveAddrs(errs, conn, conn.RemoteAddrs, "remote_addrs", lookup)
		for _, a := range append(append([]*AuthRound(nil), conn.Local...), conn.Remote...) {
			if len(a.PubKeyFiles) > 0 {
				c.refuse(errs, path+"."+a.Name, "pubkeys", a.Pos, ErrUnsupported, "raw public keys are not supported yet")
			}
		}
		for _, ch := range conn.Children {
			cpath := path + ".children." + ch.Name
			if ch.IfIDIn.Unique != UniqueNone || ch.IfIDOut.Unique != UniqueNone {
				key := "if_id_in"
				if ch.IfIDIn.Unique == UniqueNone {
					key = "if_id_out"
				}
				c.refuse(errs, cpath, key, ch.Pos, ErrUnsupported, "%%unique interface IDs are not supported yet")
			}
			if ch.MarkIn != (Mark{}) || ch.MarkOut != (Mark{}) {
				key := "mark_in"
				if ch.MarkIn == (Mark{}) {
					key = "mark_out"
				}
				c.refuse(errs, cpath, key, ch.Pos, ErrUnsupported, "marks are not supported yet")
			}
			for _, sel := range []struct {
				key  string
				list []ike.TSSpec
			}{{"local_ts", ch.LocalTS}, {"remote_ts", ch.RemoteTS}} {
				key := sel.key
				for _, ts := range sel.list {
					switch {
					case ts.TS.Opaque():
						c.refuse(errs, cpath, key, ch.Pos, ErrUnsupported, "%v: OPAQUE ports are not supported yet", ts)
					case ts.Dynamic && ts != ike.DynamicTS():
						c.refuse(errs, cpath, key, ch.Pos, ErrUnsupported, "%v: dynamic with a protocol or port is not supported yet", ts)
					}
				}
			}
			if ch.ReplayWindow == 0 {
				// The engine takes 0 as its default of 32.
				c.refuse(errs, cpath, "replay_window", ch.Pos, ErrUnsupported, "0 (replay protection off) is not supported")
			} else if ch.ReplayWindow > MaxReplayWindow {
				c.refuse(errs, cpath, "replay_window", ch.Pos, ErrUnsupported, "%d is more than the kernel's %d", ch.ReplayWindow, MaxReplayWindow)
			}
		}
	}
	return errs.err()
}

// refuse records an error at the place key was set, fallback if it was
// not.
func (c *Config) refuse(errs *errorList, path, key string, fallback Pos, sentinel error, format string, args ...any) {
	pos, ok := c.keyPos[path+"."+key]
	if !ok {
		pos = fallback
	}
	errs.add(pos, path+"."+key, wrapf(sentinel, format, args...))
}

func (c *Config) resolveAddrs(errs *errorList, conn *Connection, list []Addr, key string, lookup func(string) (netip.Addr, error)) []netip.Addr {
	path := "connections." + conn.Name
	var out []netip.Addr
	for _, a := range list {
		switch a.Kind {
		case AddrAny:
		case AddrIP:
			out = append(out, a.IP)
		case AddrDNS:
			ip, err := lookup(a.Name)
			if err != nil {
				c.refuse(errs, path, key, conn.Pos, ErrValue, "cannot resolve %q: %v", a.Name, err)
				continue
			}
			out = append(out, ip.Unmap())
		default:
			c.refuse(errs, path, key, conn.Pos, ErrUnsupported, "%s: subnets and ranges are not supported yet", a)
		}
	}
	return out
}
