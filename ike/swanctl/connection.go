package swanctl

import (
	"slices"
	"strings"
	"time"

	"github.com/xdpsec/xdpsec/ike/transform"
)

// Connection is one connections.<name> section: an IKE SA configuration
// with its authentication rounds and children.
type Connection struct {
	Name string
	Pos  Pos // where the section is (first) opened

	// Version is the IKE major version: 0 (IKEv2 as initiator, either as
	// responder), 1 or 2. IKEv1 is parsed and kept for later.
	Version int

	LocalAddrs  []Addr // default %any
	RemoteAddrs []Addr // default %any
	LocalPort   uint16 // default 500
	RemotePort  uint16 // default 500

	// Proposals are the IKE proposals, in order of preference.
	Proposals []transform.Proposal

	Aggressive    bool // IKEv1 Aggressive Mode
	Pull          bool // Mode Config pull mode (default yes)
	Encap         bool // force UDP encapsulation by faking NAT-D payloads
	Mobike        bool // default yes
	DPDDelay      time.Duration
	DPDTimeout    time.Duration // IKEv1 only
	Fragmentation Fragmentation
	SendCertReq   bool // default yes
	SendCert      SendCert
	KeyingTries   uint32 // default 1; 0 is forever
	Unique        UniquePolicy

	// ReauthTime, RekeyTime, OverTime and RandTime are the IKE SA's
	// lifetimes with strongSwan's defaults applied: rekeying every 4h
	// unless reauthentication is configured, over_time 10% of the longer
	// of the two, rand_time the smaller of over_time and half of the
	// rekey/reauth time.
	ReauthTime time.Duration
	RekeyTime  time.Duration
	OverTime   time.Duration
	RandTime   time.Duration

	// IfIDIn and IfIDOut are the default XFRM interface IDs of the
	// children.
	IfIDIn  IfID
	IfIDOut IfID

	// Local and Remote are the authentication rounds, sorted by round.
	Local  []*AuthRound
	Remote []*AuthRound

	Children []*Child // in file order
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

// Fragmentation is the IKE fragmentation policy.
type Fragmentation uint8

const (
	FragmentationYes    Fragmentation = iota // announce support, fragment if the peer supports it
	FragmentationAccept                      // announce support, never fragment our messages
	FragmentationForce                       // IKEv1: fragment the first message already
	FragmentationNo                          // do not announce support
)

func (f Fragmentation) String() string {
	return [...]string{"yes", "accept", "force", "no"}[f]
}

var fragmentationValues = map[string]Fragmentation{
	"yes": FragmentationYes, "accept": FragmentationAccept, "force": FragmentationForce, "no": FragmentationNo,
}

// SendCert says when to send certificate payloads.
type SendCert uint8

const (
	SendCertIfAsked SendCert = iota
	SendCertAlways
	SendCertNever
)

func (s SendCert) String() string { return [...]string{"ifasked", "always", "never"}[s] }

var sendCertValues = map[string]SendCert{"ifasked": SendCertIfAsked, "always": SendCertAlways, "never": SendCertNever}

// UniquePolicy is the connection uniqueness policy.
type UniquePolicy uint8

const (
	UniqueNo      UniquePolicy = iota // replace on INITIAL_CONTACT
	UniqueNever                       // never enforce
	UniqueKeep                        // reject new duplicates
	UniqueReplace                     // delete old duplicates
)

func (u UniquePolicy) String() string { return [...]string{"no", "never", "keep", "replace"}[u] }

var uniqueValues = map[string]UniquePolicy{"no": UniqueNo, "never": UniqueNever, "keep": UniqueKeep, "replace": UniqueReplace}

func newConnection(name string, pos Pos) *Connection {
	return &Connection{
		Name:        name,
		Pos:         pos,
		LocalAddrs:  []Addr{{Kind: AddrAny, Family: familyAny}},
		RemoteAddrs: []Addr{{Kind: AddrAny, Family: familyAny}},
		LocalPort:   500,
		RemotePort:  500,
		Proposals:   transform.DefaultProposals(transform.ProtoIKE),
		Pull:        true,
		Mobike:      true,
		SendCertReq: true,
		KeyingTries: 1,
	}
}

// Defaults strongSwan documents for lifetimes.
const (
	DefaultIKERekeyTime   = 4 * time.Hour
	DefaultChildRekeyTime = time.Hour
	DefaultReplayWindow   = 32
)

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
	"aggressive":   supported(func(c *Connection, v string) (err error) { c.Aggressive, err = parseBool(v); return }),
	"pull":         supported(func(c *Connection, v string) (err error) { c.Pull, err = parseBool(v); return }),
	"encap":        supported(func(c *Connection, v string) (err error) { c.Encap, err = parseBool(v); return }),
	"mobike":       supported(func(c *Connection, v string) (err error) { c.Mobike, err = parseBool(v); return }),
	"dpd_delay":    supported(func(c *Connection, v string) error { return setTime(&c.DPDDelay)(v) }),
	"dpd_timeout":  supported(func(c *Connection, v string) error { return setTime(&c.DPDTimeout)(v) }),
	"send_certreq": supported(func(c *Connection, v string) (err error) { c.SendCertReq, err = parseBool(v); return }),
	"keyingtries":  supported(func(c *Connection, v string) (err error) { c.KeyingTries, err = parseUint32(v); return }),
	"reauth_time":  supported(func(c *Connection, v string) error { return setTime(&c.ReauthTime)(v) }),
	"rekey_time":   supported(func(c *Connection, v string) error { return setTime(&c.RekeyTime)(v) }),
	"over_time":    supported(func(c *Connection, v string) error { return setTime(&c.OverTime)(v) }),
	"rand_time":    supported(func(c *Connection, v string) error { return setTime(&c.RandTime)(v) }),
	"if_id_in":     supported(func(c *Connection, v string) (err error) { c.IfIDIn, err = parseIfID(v); return }),
	"if_id_out":    supported(func(c *Connection, v string) (err error) { c.IfIDOut, err = parseIfID(v); return }),
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

	// Documented by strongSwan, not supported by xdpsec yet.
	"vips":           unsupported[Connection](),
	"pools":          unsupported[Connection](),
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
		default:
			l.errs.add(sub.pos(), subPath, wrapf(ErrUnknownKey, "unknown section (expected local<suffix>, remote<suffix> or children)"))
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
