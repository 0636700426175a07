package swanctl

// Authority is one authorities.<name> section: a certification
// authority's CA certificate (a trust anchor, like the certificates of
// x509ca/) and where its revocation information and certificates are
// published. xdpsec fetches neither CRLs nor OCSP responses: the URIs
// are kept and listed (swanctl --list-authorities), as charon lists
// them.
type Authority struct {
	Name string
	Pos  Pos
	// CACert is cacert as written: a path relative to x509ca/ or
	// absolute. File is file: an absolute path. One of them is set.
	CACert, File string
	CRLURIs      []string // crl_uris
	OCSPURIs     []string // ocsp_uris
	CertURIBase  string   // cert_uri_base
}

// Authority returns the authority of that name, or nil.
func (c *Config) Authority(name string) *Authority {
	for _, a := range c.Authorities {
		if a.Name == name {
			return a
		}
	}
	return nil
}

var authorityKeys = keyTable[Authority]{
	"cacert": supported(func(a *Authority, v string) error { a.CACert = v; return nil }),
	"file": supported(func(a *Authority, v string) error {
		if v != "" && v[0] != '/' {
			return wrapf(ErrValue, "%q is not an absolute path", v)
		}
		a.File = v
		return nil
	}),
	"crl_uris":      supported(func(a *Authority, v string) error { a.CRLURIs = splitList(v); return nil }),
	"ocsp_uris":     supported(func(a *Authority, v string) error { a.OCSPURIs = splitList(v); return nil }),
	"cert_uri_base": supported(func(a *Authority, v string) error { a.CertURIBase = v; return nil }),

	// Documented by strongSwan (a CA certificate on a PKCS#11 token),
	// not supported by xdpsec.
	"handle": unsupported[Authority](),
	"slot":   unsupported[Authority](),
	"module": unsupported[Authority](),
}

// loadAuthorities reads the "authorities" section.
func (l *loader) loadAuthorities(sec *section) {
	for _, k := range sec.keys {
		l.errs.add(sec.settings[k].pos, "authorities."+k, wrapf(ErrUnknownKey, "unknown key (authorities holds only sections)"))
	}
	for _, s := range sec.subs {
		key := "authorities." + s.name
		a := &Authority{Name: s.name, Pos: s.pos()}
		set := applyKeys(a, s, authorityKeys, key, l.errs)
		l.notePositions(key, set)
		for _, c := range s.subs {
			l.errs.add(c.pos(), key+"."+c.name, wrapf(ErrUnknownKey, "unknown section"))
		}
		switch {
		case l.cfg.Authority(s.name) != nil:
			l.errs.add(s.pos(), key, wrapf(ErrInvalid, "authority defined twice"))
			continue
		case a.CACert != "" && a.File != "":
			l.errs.add(l.where(key, "file", s.pos()), key+".file", wrapf(ErrInvalid, "set cacert or file, not both"))
			continue
		case a.CACert == "" && a.File == "":
			if _, ok := set["handle"]; !ok {
				l.errs.add(s.pos(), key, wrapf(ErrInvalid, "missing cacert (or file)"))
			}
			continue
		}
		l.cfg.Authorities = append(l.cfg.Authorities, a)
	}
}
