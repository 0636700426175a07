package swanctl

import (
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/xdpsec/xdpsec/ike"
	"github.com/xdpsec/xdpsec/ike/transform"
)

// Connection is one connections.<name> section. The engine's typed
// connection is embedded: the keys the engine acts on are set there
// directly, and its Local, Remote and Children are those of the rounds and
// children below. What stays here is the file's own view: positions, the
// addresses as written, and keys the engine does not take (yet).
type Connection struct {
	*ike.Connection
	Pos Pos // where the section is (first) opened

	// LocalAddrs and RemoteAddrs are local_addrs and remote_addrs as
	// written (default %any). The engine's addresses are their IP
	// addresses; Config.Resolve adds those of DNS names.
	LocalAddrs  []Addr
	RemoteAddrs []Addr

	Pull   bool // Mode Config pull mode (default yes)
	Mobike bool // default yes

	// IfIDIn and IfIDOut are the default XFRM interface IDs of the
	// children.
	IfIDIn  IfID
	IfIDOut IfID

	// Local and Remote are the authentication rounds, sorted by round.
	Local  []*AuthRound
	Remote []*AuthRound

	Children []*Child // in file order

	// Redirect is the redirect section (an xdpsec extension,
	// redirect.go), nil without; the engine's rule is its RedirectRule.
	Redirect *Redirect
}

// Child returns the connection's child of that name, or nil.
func (c *Connection) Child(name string) *Child {
	for _, ch := range c.Children {
		if ch.Name == name {
			return ch
		}
	}
	return nil
}

var fragmentationValues = map[string]ike.Fragmentation{
	"yes": ike.FragmentationYes, "accept": ike.FragmentationAccept, "force": ike.FragmentationForce, "no": ike.FragmentationNo,
}

var sendCertValues = map[string]ike.SendCert{"ifasked": ike.SendCertIfAsked, "always": ike.SendCertAlways, "never": ike.SendCertNever}

var uniqueValues = map[string]ike.UniquePolicy{"no": ike.UniqueNo, "never": ike.UniqueNever, "keep": ike.UniqueKeep, "replace": ike.UniqueReplace}

func newConnection(name string, pos Pos) *Connection {
	sendCertReq := true
	return &Connection{
		Connection: &ike.Connection{
			Name:        name,
			LocalPort:   500,
			RemotePort:  500,
			Proposals:   transform.DefaultProposals(transform.ProtoIKE),
			SendCertReq: &sendCertReq,
			KeyingTries: 1,
			// The lifetimes are swanctl.conf's, defaults applied.
			RandExact: true,
		},
		Pos:         pos,
		LocalAddrs:  []Addr{{Kind: AddrAny, Family: familyAny}},
		RemoteAddrs: []Addr{{Kind: AddrAny, Family: familyAny}},
		Pull:        true,
		Mobike:      true,
	}
}

// ipsOf returns the IP addresses among addrs, the engine's view of them
// before DNS names are looked up.
func ipsOf(addrs []Addr) []netip.Addr {
	var out []netip.Addr
	for _, a := range addrs {
		if a.Kind == AddrIP {
			out = append(out, a.IP)
		}
	}
	return out
}

// Defaults strongSwan documents for lifetimes.
const (
	DefaultIKERekeyTime   = 4 * time.Hour
	DefaultChildRekeyTime = time.Hour
	DefaultReplayWindow   = ike.DefaultReplayWindow // strongSwan's is 32 (see ike.DefaultReplayWindow)
)

// MaxReplayWindow is the largest replay_window the kernel takes: a bitmap
// of 4096 bits (XFRMA_REPLAY_ESN_MAX).
const MaxReplayWindow = 4096

func setTime(dst *time.Duration) func(string) error {
	return func(v string) (err error) { *dst, err = parseTime(v); return }
}

// connectionKeys are the keys of connections.<conn>.
var connectionKeys = keyTable[Connection]{
	"version": supported(func(c *Connection, v string) error {
		n, err := parseUint(v, 2)
		c.Version = int(n)
		return err
	}),
	"local_addrs":  supported(func(c *Connection, v string) (err error) { c.LocalAddrs, err = parseAddrs(v); return }),
	"remote_addrs": supported(func(c *Connection, v string) (err error) { c.RemoteAddrs, err = parseAddrs(v); return }),
	"local_port":   supported(func(c *Connection, v string) (err error) { c.LocalPort, err = parsePort(v); return }),
	"remote_port":  supported(func(c *Connection, v string) (err error) { c.RemotePort, err = parsePort(v); return }),
	"proposals": supported(func(c *Connection, v string) (err error) {
		c.Proposals, err = parseProposals(transform.ProtoIKE, v)
		return
	}),
	"aggressive": supported(func(c *Connection, v string) (err error) { c.Aggressive, err = parseBool(v); return }),
	"pull":       supported(func(c *Connection, v string) (err error) { c.Pull, err = parseBool(v); return }),
	"encap":      supported(func(c *Connection, v string) (err error) { c.Encap, err = parseBool(v); return }),
	"mobike": supported(func(c *Connection, v string) (err error) {
		c.Mobike, err = parseBool(v)
		c.NoMobike = !c.Mobike
		return
	}),
	"dpd_delay":   supported(func(c *Connection, v string) error { return setTime(&c.DPDDelay)(v) }),
	"dpd_timeout": supported(func(c *Connection, v string) error { return setTime(&c.DPDTimeout)(v) }),
	"send_certreq": supported(func(c *Connection, v string) error {
		b, err := parseBool(v)
		c.SendCertReq = &b
		return err
	}),
	"keyingtries": supported(func(c *Connection, v string) error {
		n, err := parseUint32(v)
		c.KeyingTries = int(n)
		return err
	}),
	"reauth_time": supported(func(c *Connection, v string) error { return setTime(&c.ReauthTime)(v) }),
	"rekey_time":  supported(func(c *Connection, v string) error { return setTime(&c.RekeyTime)(v) }),
	"over_time":   supported(func(c *Connection, v string) error { return setTime(&c.OverTime)(v) }),
	"rand_time":   supported(func(c *Connection, v string) error { return setTime(&c.RandTime)(v) }),
	"if_id_in":    supported(func(c *Connection, v string) (err error) { c.IfIDIn, err = parseIfID(v); return }),
	"if_id_out":   supported(func(c *Connection, v string) (err error) { c.IfIDOut, err = parseIfID(v); return }),
	"fragmentation": supported(func(c *Connection, v string) (err error) {
		c.Fragmentation, err = parseEnum(v, fragmentationValues, "yes, accept, force or no")
		return
	}),
	"send_cert": supported(func(c *Connection, v string) (err error) {
		c.SendCert, err = parseEnum(v, sendCertValues, "ifasked, always or never")
		return
	}),
	"unique": supported(func(c *Connection, v string) (err error) {
		c.Unique, err = parseEnum(v, uniqueValues, "no, never, keep or replace")
		return
	}),
	"pools": supported(func(c *Connection, v string) error {
		c.Pools = splitList(v)
		return nil
	}),
	"vips": supported(func(c *Connection, v string) error {
		c.VIPs = nil
		for _, s := range splitList(v) {
			a, err := netip.ParseAddr(s)
			if err != nil {
				return wrapf(ErrValue, "%q is not an IP address (0.0.0.0 or :: for any)", s)
			}
			c.VIPs = append(c.VIPs, a)
		}
		return nil
	}),

	// Documented by strongSwan, not supported by xdpsec yet.
	"dscp":           unsupported[Connection]("000000"),
	"childless":      unsupported[Connection]("allow"),
	"ppk_id":         unsupported[Connection](),
	"ppk_required":   unsupported[Connection]("no"),
	"mediation":      unsupported[Connection]("no"),
	"mediated_by":    unsupported[Connection](),
	"mediation_peer": unsupported[Connection](),
}

// parseProposals parses a proposal list with transform.ParseProposals and
// refuses an empty result.
func parseProposals(proto transform.Protocol, v string) ([]transform.Proposal, error) {
	ps, err := transform.ParseProposals(proto, v)
	if err != nil {
		return nil, wrapErr(ErrValue, err)
	}
	if len(ps) == 0 {
		return nil, wrapf(ErrValue, "no proposals")
	}
	return ps, nil
}

// loadConnection reads one connections.<name> section.
func (l *loader) loadConnection(s *section) *Connection {
	path := "connections." + s.name
	c := newConnection(s.name, s.pos())
	set := applyKeys(c, s, connectionKeys, path, l.errs)
	l.notePositions(path, set)
	applyIKELifetimes(c, set)

	for _, sub := range s.subs {
		subPath := path + "." + sub.name
		switch {
		case strings.EqualFold(sub.name, "children"):
			for _, k := range sub.keys {
				l.errs.add(sub.settings[k].pos, subPath+"."+k, wrapf(ErrUnknownKey, "unknown key (children holds only sections)"))
			}
			for _, cs := range sub.subs {
				c.Children = append(c.Children, l.loadChild(c, cs, subPath+"."+cs.name))
			}
		case hasPrefixFold(sub.name, "local"):
			c.Local = append(c.Local, l.loadAuthRound(sub, subPath, true))
		case hasPrefixFold(sub.name, "remote"):
			c.Remote = append(c.Remote, l.loadAuthRound(sub, subPath, false))
		case strings.EqualFold(sub.name, "redirect"):
			c.Redirect = l.loadRedirect(c, sub, subPath)
			c.Connection.Redirect = &c.Redirect.RedirectRule
		default:
			l.errs.add(sub.pos(), subPath, wrapf(ErrUnknownKey, "unknown section (expected local<suffix>, remote<suffix>, children or redirect)"))
		}
	}
	if len(c.Local) == 0 {
		c.Local = []*AuthRound{newAuthRound("local", c.Pos, true)}
	}
	if len(c.Remote) == 0 {
		c.Remote = []*AuthRound{newAuthRound("remote", c.Pos, false)}
	}
	byRound := func(a, b *AuthRound) int { return int(a.Round) - int(b.Round) }
	slices.SortStableFunc(c.Local, byRound)
	slices.SortStableFunc(c.Remote, byRound)
	c.Connection.LocalAddrs = ipsOf(c.LocalAddrs)
	c.Connection.RemoteAddrs = ipsOf(c.RemoteAddrs)
	c.Connection.Push = !c.Pull
	c.Connection.Local, c.Connection.Remote, c.Connection.Children = nil, nil, nil
	for _, a := range c.Local {
		c.Connection.Local = append(c.Connection.Local, a.AuthConfig)
	}
	for _, a := range c.Remote {
		c.Connection.Remote = append(c.Connection.Remote, a.AuthConfig)
	}
	for _, ch := range c.Children {
		c.Connection.Children = append(c.Connection.Children, ch.ChildConfig)
	}
	return c
}

// applyIKELifetimes fills in what was not set as charon does: rekeying
// every 4h unless only reauthentication is configured, over_time 10% of
// the longer of rekey_time and reauth_time, rand_time over_time but at most
// half of the (shorter non-zero) rekey/reauth time.
func applyIKELifetimes(c *Connection, set map[string]Pos) {
	_, rekeySet := set["rekey_time"]
	_, reauthSet := set["reauth_time"]
	if !rekeySet && !reauthSet {
		c.RekeyTime = DefaultIKERekeyTime
	}
	if _, ok := set["over_time"]; !ok {
		c.OverTime = max(c.RekeyTime, c.ReauthTime) / 10
	}
	if _, ok := set["rand_time"]; !ok {
		r := max(c.RekeyTime, c.ReauthTime)
		if c.RekeyTime != 0 && c.ReauthTime != 0 {
			r = min(c.RekeyTime, c.ReauthTime)
		}
		c.RandTime = min(c.OverTime, r/2)
	}
}

// notePositions remembers where keys were set, for later checks.
func (l *loader) notePositions(path string, set map[string]Pos) {
	for k, p := range set {
		l.keyPos[path+"."+k] = p
	}
}

// where returns where key was set under path, or the section's
// position.
func (l *loader) where(path, key string, fallback Pos) Pos {
	if p, ok := l.keyPos[path+"."+key]; ok {
		return p
	}
	return fallback
}
