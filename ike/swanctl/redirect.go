package swanctl

import (
	"net/url"
	"strings"
	"time"

	"github.com/xdpsec/xdpsec/ike"
	"github.com/xdpsec/xdpsec/ike/message"
)

// The redirect section of a connection is xdpsec's, not strongSwan's
// (charon has a redirect_provider plugin interface and no swanctl.conf
// key): it sends new clients of the connection to other gateways during
// IKE_SA_INIT (RFC 5685). strongSwan refuses a file that has it.
//
//	connections {
//	    rw {
//	        redirect {
//	            choose = load            # or hash (of the client's address)
//	            during = ike_sa_init     # or ike_auth: once the client is authenticated
//	            poll_interval = 5s       # how often the loads are read
//	            gateways {
//	                gw2 {
//	                    address = 192.0.2.12         # IP or domain name, as sent
//	                    metrics = http://192.0.2.12:9901/metrics
//	                }
//	                gw3 {
//	                    address = gw3.example.net
//	                    metrics = http://gw3.example.net:9901/metrics
//	                }
//	            }
//	        }
//	    }
//	}
//
// The load of a gateway is its number of established IKE SAs, the
// xdpsec_ike_sas{state="ESTABLISHED"} gauge of the Prometheus endpoint
// its daemon serves (--metrics).
//
// In a fleet (xdpsec.conf's fleet section), gateways = fleet takes the
// other members as the gateways, each at its fleet.address, with the
// load it publishes in etcd; a gateways section may add others:
//
//	redirect {
//	    choose = load
//	    gateways = fleet
//	}

// DefaultRedirectPoll is how often the daemon reads the gateways' loads.
const DefaultRedirectPoll = 5 * time.Second

// Redirect is a connection's redirect section.
type Redirect struct {
	Pos Pos
	ike.RedirectRule
	PollInterval time.Duration
}

var redirectChoices = map[string]ike.RedirectChoice{"load": ike.RedirectByLoad, "hash": ike.RedirectByHash}

var redirectPhases = map[string]ike.RedirectPhase{"ike_sa_init": ike.RedirectInInit, "ike_auth": ike.RedirectInAuth}

var redirectKeys = keyTable[Redirect]{
	"gateways": supported(func(r *Redirect, v string) error {
		if v != "fleet" {
			return wrapf(ErrValue, "gateways = %q: only fleet is a value (else a gateways section)", v)
		}
		r.Fleet = true
		return nil
	}),
	"during": supported(func(r *Redirect, v string) (err error) {
		r.During, err = parseEnum(v, redirectPhases, "ike_sa_init or ike_auth")
		return
	}),
	"choose": supported(func(r *Redirect, v string) (err error) {
		r.Choose, err = parseEnum(v, redirectChoices, "load or hash")
		return
	}),
	"poll_interval": supported(func(r *Redirect, v string) (err error) {
		if d, derr := time.ParseDuration(v); derr == nil {
			r.PollInterval = d
		} else if r.PollInterval, err = parseTime(v); err != nil {
			return err
		}
		if r.PollInterval < 100*time.Millisecond {
			return wrapf(ErrValue, "poll_interval must be at least 100ms")
		}
		return nil
	}),
}

var redirectGatewayKeys = keyTable[ike.RedirectGateway]{
	"address": supported(func(g *ike.RedirectGateway, v string) error {
		if _, err := message.ParseGateway(v); err != nil {
			return wrapf(ErrValue, "%q is neither an IP address nor a domain name", v)
		}
		g.Address = v
		return nil
	}),
	"metrics": supported(func(g *ike.RedirectGateway, v string) error {
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return wrapf(ErrValue, "%q is not an http:// or https:// URL of a Prometheus endpoint", v)
		}
		g.Metrics = v
		return nil
	}),
}

// loadRedirect reads connections.<conn>.redirect.
func (l *loader) loadRedirect(c *Connection, s *section, path string) *Redirect {
	r := &Redirect{Pos: s.pos(), PollInterval: DefaultRedirectPoll}
	applyKeys(r, s, redirectKeys, path, l.errs)
	for _, sub := range s.subs {
		if !strings.EqualFold(sub.name, "gateways") {
			l.errs.add(sub.pos(), path+"."+sub.name, wrapf(ErrUnknownKey, "unknown section (expected gateways)"))
			continue
		}
		for _, k := range sub.keys {
			l.errs.add(sub.settings[k].pos, path+".gateways."+k, wrapf(ErrUnknownKey, "unknown key (gateways holds only sections)"))
		}
		for _, gs := range sub.subs {
			key := path + ".gateways." + gs.name
			g := ike.RedirectGateway{Name: gs.name}
			set := applyKeys(&g, gs, redirectGatewayKeys, key, l.errs)
			if _, ok := set["address"]; !ok {
				if _, bad := gs.settings["address"]; !bad {
					l.errs.add(gs.pos(), key, wrapf(ErrInvalid, "missing address"))
				}
				continue
			}
			r.Gateways = append(r.Gateways, g)
		}
		for _, sub2 := range sub.subs {
			for _, ss := range sub2.subs {
				l.errs.add(ss.pos(), path+".gateways."+sub2.name+"."+ss.name, wrapf(ErrUnknownKey, "unknown section"))
			}
		}
	}
	if len(r.Gateways) == 0 && !r.Fleet && !l.hasErrorUnder(path) {
		l.errs.add(s.pos(), path+".gateways", wrapf(ErrInvalid, "no gateway to redirect to"))
	}
	if c.Version == 1 {
		l.errs.add(s.pos(), path, wrapf(ErrInvalid, "redirection needs IKEv2"))
	}
	return r
}

// hasErrorUnder reports whether an error was found at path or below.
func (l *loader) hasErrorUnder(path string) bool {
	for _, err := range l.errs.errs {
		if e, ok := err.(*Error); ok && (e.Key == path || strings.HasPrefix(e.Key, path+".")) {
			return true
		}
	}
	return false
}
