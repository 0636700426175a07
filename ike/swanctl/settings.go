package swanctl

import (
	"path"
	"time"
)

// DefaultSettingsPath is where the daemon looks for its own settings.
const DefaultSettingsPath = "/etc/xdpsec/xdpsec.conf"

// Settings are the daemon's settings that strongSwan keeps in
// strongswan.conf rather than swanctl.conf, read from xdpsec.conf in the
// same syntax (includes, sections, quoted strings): a radius section and
// a fleet section (fleet.go). The radius section:
//
//	radius {
//	    servers {
//	        NAME {
//	            address = 192.0.2.9    # host name or IP, no port
//	            secret = "shared secret"
//	            auth_port = 1812
//	            acct_port = 1813
//	            preference = 0          # highest asked first
//	        }
//	    }
//	    timeout = 2s                    # per transmission
//	    retransmit_tries = 3            # per server, the first included
//	    accounting = no
//	    nas_identifier = xdpsec
//	    use_framed_ip = no              # Framed-IP-Address as virtual IP
//	}
//
// The keys are those of charon's eap-radius plugin
// (charon.plugins.eap-radius), except timeout, which stays the same on
// each retransmission where charon's retransmit_timeout grows.
type Settings struct {
	Path   string
	Radius *RadiusSettings // nil: no radius section
	Fleet  *FleetSettings  // nil: no fleet section
}

// RadiusSettings is the radius section. Values not set are zero; the
// daemon takes internal/radius's defaults for them and validates the rest.
type RadiusSettings struct {
	Pos             Pos
	Servers         []RadiusServer
	Timeout         time.Duration
	RetransmitTries int
	Accounting      bool
	// AccountingInterval is how often Interim-Update records go out (0:
	// none unless the server's Access-Accept asks for them).
	AccountingInterval time.Duration
	NASIdentifier      string
	UseFramedIP        bool
}

// RadiusServer is one radius.servers.NAME section.
type RadiusServer struct {
	Name       string
	Pos        Pos
	Address    string
	Secret     Secret
	AuthPort   uint16
	AcctPort   uint16
	Preference int
}

var radiusKeys = keyTable[RadiusSettings]{
	"timeout": supported(func(r *RadiusSettings, v string) (err error) {
		// Go's durations for sub-second timeouts ("500ms"), else
		// swanctl's times ("2", "2s").
		if d, derr := time.ParseDuration(v); derr == nil {
			r.Timeout = d
			return nil
		}
		r.Timeout, err = parseTime(v)
		return
	}),
	"retransmit_tries": supported(func(r *RadiusSettings, v string) error {
		n, err := parseUint(v, 20)
		if err == nil && n == 0 {
			return wrapf(ErrValue, "retransmit_tries must be 1 or more")
		}
		r.RetransmitTries = int(n)
		return err
	}),
	"accounting": supported(func(r *RadiusSettings, v string) (err error) { r.Accounting, err = parseBool(v); return }),
	"accounting_interval": supported(func(r *RadiusSettings, v string) (err error) {
		if r.AccountingInterval, err = parseTime(v); err == nil && r.AccountingInterval > 0 && r.AccountingInterval < time.Minute {
			// RFC 2869 section 5.16: not under 60 seconds.
			err = wrapf(ErrValue, "accounting_interval must be 0 (off) or at least 60s")
		}
		return
	}),
	"nas_identifier": supported(func(r *RadiusSettings, v string) error { r.NASIdentifier = v; return nil }),
	"use_framed_ip":  supported(func(r *RadiusSettings, v string) (err error) { r.UseFramedIP, err = parseBool(v); return }),
	// charon's, not ours (yet).
	"retransmit_timeout": unsupported[RadiusSettings](),
	"retransmit_base":    unsupported[RadiusSettings](),
	"eap_start":          unsupported[RadiusSettings](),
	"class_group":        unsupported[RadiusSettings](),
	"filter_id":          unsupported[RadiusSettings](),
}

var radiusServerKeys = keyTable[RadiusServer]{
	"address":   supported(func(s *RadiusServer, v string) error { s.Address = v; return nil }),
	"secret":    supported(func(s *RadiusServer, v string) error { s.Secret = NewSecret([]byte(v)); return nil }),
	"auth_port": supported(func(s *RadiusServer, v string) (err error) { s.AuthPort, err = parsePort(v); return }),
	"acct_port": supported(func(s *RadiusServer, v string) (err error) { s.AcctPort, err = parsePort(v); return }),
	"preference": supported(func(s *RadiusServer, v string) error {
		n, err := parseUint(v, 1<<16)
		s.Preference = int(n)
		return err
	}),
	"sockets":        unsupported[RadiusServer](),
	"nas_identifier": unsupported[RadiusServer](),
}

// LoadSettings reads xdpsec.conf from fsys. The file holds the RADIUS
// shared secrets, so it must not be readable by group or others. On
// error the result is nil and the error joins every problem found (each
// an *Error naming file, line and key).
func LoadSettings(fsys FS, name string) (*Settings, error) {
	name = path.Clean(name)
	errs := &errorList{}
	root, _ := parseTree(fsys, name, errs)
	st := &Settings{Path: name}
	for _, k := range root.keys {
		errs.add(root.settings[k].pos, k, wrapf(ErrUnknownKey, "unknown key"))
	}
	for _, s := range root.subs {
		switch s.name {
		case "radius":
			st.Radius = loadRadius(s, errs)
		case "fleet":
			st.Fleet = loadFleet(s, errs)
		default:
			errs.add(s.pos(), s.name, wrapf(ErrUnknownKey, "unknown section (expected radius or fleet)"))
		}
	}
	if st.Radius != nil && len(st.Radius.Servers) > 0 {
		if err := checkSecretFile(fsys, name); err != nil {
			errs.add(Pos{File: name}, "", err)
		}
	}
	if err := errs.err(); err != nil {
		return nil, err
	}
	return st, nil
}

func loadRadius(s *section, errs *errorList) *RadiusSettings {
	r := &RadiusSettings{Pos: s.pos()}
	applyKeys(r, s, radiusKeys, "radius", errs)
	for _, sub := range s.subs {
		if sub.name != "servers" {
			errs.add(sub.pos(), "radius."+sub.name, wrapf(ErrUnknownKey, "unknown section (expected servers)"))
			continue
		}
		for _, k := range sub.keys {
			errs.add(sub.settings[k].pos, "radius.servers."+k, wrapf(ErrUnknownKey, "unknown key (servers holds only sections)"))
		}
		for _, ss := range sub.subs {
			key := "radius.servers." + ss.name
			srv := RadiusServer{Name: ss.name, Pos: ss.pos()}
			set := applyKeys(&srv, ss, radiusServerKeys, key, errs)
			if _, ok := set["address"]; !ok {
				errs.add(ss.pos(), key, wrapf(ErrInvalid, "missing address"))
			}
			if _, ok := set["secret"]; !ok {
				errs.add(ss.pos(), key, wrapf(ErrInvalid, "missing secret"))
			}
			r.Servers = append(r.Servers, srv)
		}
	}
	if len(r.Servers) == 0 {
		errs.add(s.pos(), "radius.servers", wrapf(ErrInvalid, "no RADIUS server configured"))
	}
	return r
}
