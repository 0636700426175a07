package swanctl

import (
	"strings"
	"time"

	"github.com/xdpsec/xdpsec/ike/transform"
)

// Child is one connections.<conn>.children.<name> section: a CHILD_SA
// configuration.
type Child struct {
	Name string
	Pos  Pos

	// LocalTS and RemoteTS are the traffic selectors (default: dynamic).
	LocalTS  []TrafficSelector
	RemoteTS []TrafficSelector

	// ESPProposals are the ESP proposals, in order of preference.
	ESPProposals []transform.Proposal

	Mode        Mode
	StartAction Action // none, trap, start or trap|start
	CloseAction Action // none, trap or start
	DPDAction   Action // none (clear), trap or start (restart)

	Lifetime     Lifetime
	ReplayWindow uint32 // packets; 0 disables replay protection

	// IfIDIn and IfIDOut default to the connection's.
	IfIDIn  IfID
	IfIDOut IfID
	MarkIn  Mark
	MarkOut Mark
	// MarkInSA sets MarkIn on the inbound SA too, not only the policy.
	MarkInSA bool

	HWOffload HWOffload
	CopyDF    bool // default yes
	CopyECN   bool // default yes
	CopyDSCP  CopyDSCP

	// Policies says whether to install IPsec policies (default yes).
	Policies bool
	// Reqid is a fixed reqid, 0 for one allocated per CHILD_SA.
	Reqid uint32
	// Priority is a fixed policy priority, 0 for one computed from the
	// selectors.
	Priority uint32
	// Updown is the updown script strongSwan would run; xdpsec keeps it
	// but does not run it (a warning says so).
	Updown string
}

// Lifetime holds a CHILD_SA's soft (rekey) and hard (life) limits and the
// random range subtracted from the soft one. Zero byte and packet limits
// mean none.
type Lifetime struct {
	RekeyTime time.Duration
	LifeTime  time.Duration
	RandTime  time.Duration

	RekeyBytes uint64
	LifeBytes  uint64
	RandBytes  uint64

	RekeyPackets uint64
	LifePackets  uint64
	RandPackets  uint64
}

// Mode is the IPsec mode of a CHILD_SA, or a shunt.
type Mode uint8

const (
	ModeTunnel Mode = iota
	ModeTransport
	ModePass // bypass policy, no SA
	ModeDrop // drop policy, no SA
)

func (m Mode) String() string { return [...]string{"tunnel", "transport", "pass", "drop"}[m] }

// Action is what to do at load time, on close or on DPD timeout: nothing,
// install a trap policy, (re)start the CHILD_SA, or both of the latter.
type Action uint8

const (
	ActionNone  Action = 0
	ActionTrap  Action = 1 << 0
	ActionStart Action = 1 << 1
)

func (a Action) String() string {
	switch a {
	case ActionNone:
		return "none"
	case ActionTrap:
		return "trap"
	case ActionStart:
		return "start"
	}
	return "trap|start"
}

// actionValues are the spellings charon accepts for start_action,
// close_action and dpd_action; "route" and "restart"/"clear" are its older
// and dpd_action names.
var actionValues = map[string]Action{
	"none": ActionNone, "clear": ActionNone,
	"trap": ActionTrap, "route": ActionTrap,
	"start": ActionStart, "restart": ActionStart,
}

func parseAction(v string, combo bool) (Action, error) {
	lv := strings.ToLower(v)
	if combo && (lv == "trap|start" || lv == "start|trap") {
		return ActionTrap | ActionStart, nil
	}
	names := "none, trap or start"
	if combo {
		names = "none, trap, start or trap|start"
	}
	return parseEnum(v, actionValues, names)
}

func parseDPDAction(v string) (Action, error) {
	return parseEnum(v, actionValues, "clear, trap or restart")
}

// HWOffload is the hardware offload setting.
type HWOffload uint8

const (
	HWOffloadNo     HWOffload = iota
	HWOffloadYes              // crypto offload, fail if unavailable
	HWOffloadAuto             // crypto offload if available
	HWOffloadPacket           // packet offload, fail if unavailable
)

func (h HWOffload) String() string { return [...]string{"no", "yes", "auto", "packet"}[h] }

var hwOffloadValues = map[string]HWOffload{
	"no": HWOffloadNo, "yes": HWOffloadYes, "crypto": HWOffloadYes, "auto": HWOffloadAuto, "packet": HWOffloadPacket,
}

// CopyDSCP says in which direction the DSCP field is copied between inner
// and outer header in tunnel mode.
type CopyDSCP uint8

const (
	CopyDSCPOut CopyDSCP = iota // inner to outer only (default)
	CopyDSCPIn                  // outer to inner only
	CopyDSCPYes                 // both ways
	CopyDSCPNo                  // never
)

func (c CopyDSCP) String() string { return [...]string{"out", "in", "yes", "no"}[c] }

var copyDSCPValues = map[string]CopyDSCP{"out": CopyDSCPOut, "in": CopyDSCPIn, "yes": CopyDSCPYes, "no": CopyDSCPNo}

var modeValues = map[string]Mode{"tunnel": ModeTunnel, "transport": ModeTransport, "pass": ModePass, "drop": ModeDrop}

func parseMode(v string) (Mode, error) {
	if lv := strings.ToLower(v); lv == "beet" || lv == "transport_proxy" {
		return 0, wrapf(ErrUnsupported, "mode %q is not supported yet", v)
	}
	return parseEnum(v, modeValues, "tunnel, transport, pass or drop")
}

func newChild(name string, pos Pos) *Child {
	return &Child{
		Name:         name,
		Pos:          pos,
		LocalTS:      []TrafficSelector{dynamicTS()},
		RemoteTS:     []TrafficSelector{dynamicTS()},
		ESPProposals: transform.DefaultProposals(transform.ProtoESP),
		Lifetime:     Lifetime{RekeyTime: DefaultChildRekeyTime},
		ReplayWindow: DefaultReplayWindow,
		CopyDF:       true,
		CopyECN:      true,
		Policies:     true,
	}
}

func dynamicTS() TrafficSelector { return TrafficSelector{Dynamic: true, ToPort: 0xffff} }

// childKeys are the keys of connections.<conn>.children.<child>.
var childKeys = keyTable[Child]{
	"local_ts":  supported(func(c *Child, v string) (err error) { c.LocalTS, err = parseTSList(v); return }),
	"remote_ts": supported(func(c *Child, v string) (err error) { c.RemoteTS, err = parseTSList(v); return }),
	"esp_proposals": supported(func(c *Child, v string) (err error) {
		c.ESPProposals, err = parseProposals(transform.ProtoESP, v)
		return
	}),
	"mode":          supported(func(c *Child, v string) (err error) { c.Mode, err = parseMode(v); return }),
	"start_action":  supported(func(c *Child, v string) (err error) { c.StartAction, err = parseAction(v, true); return }),
	"close_action":  supported(func(c *Child, v string) (err error) { c.CloseAction, err = parseAction(v, false); return }),
	"dpd_action":    supported(func(c *Child, v string) (err error) { c.DPDAction, err = parseDPDAction(v); return }),
	"rekey_time":    supported(func(c *Child, v string) error { return setTime(&c.Lifetime.RekeyTime)(v) }),
	"life_time":     supported(func(c *Child, v string) error { return setTime(&c.Lifetime.LifeTime)(v) }),
	"rand_time":     supported(func(c *Child, v string) error { return setTime(&c.Lifetime.RandTime)(v) }),
	"rekey_bytes":   supported(func(c *Child, v string) (err error) { c.Lifetime.RekeyBytes, err = parseBytes(v); return }),
	"life_bytes":    supported(func(c *Child, v string) (err error) { c.Lifetime.LifeBytes, err = parseBytes(v); return }),
	"rand_bytes":    supported(func(c *Child, v string) (err error) { c.Lifetime.RandBytes, err = parseBytes(v); return }),
	"rekey_packets": supported(func(c *Child, v string) (err error) { c.Lifetime.RekeyPackets, err = parseCount(v); return }),
	"life_packets":  supported(func(c *Child, v string) (err error) { c.Lifetime.LifePackets, err = parseCount(v); return }),
	"rand_packets":  supported(func(c *Child, v string) (err error) { c.Lifetime.RandPackets, err = parseCount(v); return }),
	"replay_window": supported(func(c *Child, v string) (err error) { c.ReplayWindow, err = parseUint32(v); return }),
	"if_id_in":      supported(func(c *Child, v string) (err error) { c.IfIDIn, err = parseIfID(v); return }),
	"if_id_out":     supported(func(c *Child, v string) (err error) { c.IfIDOut, err = parseIfID(v); return }),
	"mark_in":       supported(func(c *Child, v string) (err error) { c.MarkIn, err = parseMark(v); return }),
	"mark_out":      supported(func(c *Child, v string) (err error) { c.MarkOut, err = parseMark(v); return }),
	"mark_in_sa":    supported(func(c *Child, v string) (err error) { c.MarkInSA, err = parseBool(v); return }),
	"hw_offload": supported(func(c *Child, v string) (err error) {
		c.HWOffload, err = parseEnum(v, hwOffloadValues, "no, yes, auto or packet")
		return
	}),
	"copy_df":  supported(func(c *Child, v string) (err error) { c.CopyDF, err = parseBool(v); return }),
	"copy_ecn": supported(func(c *Child, v string) (err error) { c.CopyECN, err = parseBool(v); return }),
	"copy_dscp": supported(func(c *Child, v string) (err error) {
		c.CopyDSCP, err = parseEnum(v, copyDSCPValues, "out, in, yes or no")
		return
	}),
	"policies": supported(func(c *Child, v string) (err error) { c.Policies, err = parseBool(v); return }),
	"reqid":    supported(func(c *Child, v string) (err error) { c.Reqid, err = parseUint32(v); return }),
	"priority": supported(func(c *Child, v string) (err error) { c.Priority, err = parseUint32(v); return }),
	"updown":   supported(func(c *Child, v string) error { c.Updown = v; return nil }),

	// Documented by strongSwan, not supported by xdpsec yet.
	"ah_proposals":     unsupported[Child](),
	"ipcomp":           unsupported[Child]("no"),
	"hostaccess":       unsupported[Child]("no"),
	"sha256_96":        unsupported[Child]("no"),
	"policies_fwd_out": unsupported[Child]("no"),
	"inactivity":       unsupported[Child]("0", "0s"),
	"interface":        unsupported[Child](),
	"set_mark_in":      unsupported[Child](),
	"set_mark_out":     unsupported[Child](),
	"tfc_padding":      unsupported[Child]("0"),
	"label":            unsupported[Child](),
	"label_mode":       unsupported[Child](),
	"per_cpu_sas":      unsupported[Child]("no"),
}

// loadChild reads one children.<name> section of c.
func (l *loader) loadChild(c *Connection, s *section, path string) *Child {
	ch := newChild(s.name, s.pos())
	ch.IfIDIn, ch.IfIDOut = c.IfIDIn, c.IfIDOut
	set := applyKeys(ch, s, childKeys, path, l.errs)
	l.notePositions(path, set)
	applyChildLifetimes(&ch.Lifetime, set)
	for _, sub := range s.subs {
		l.errs.add(sub.pos(), path+"."+sub.name, wrapf(ErrUnknownKey, "unknown section"))
	}
	if ch.Updown != "" {
		l.warn(set["updown"], path+".updown", "xdpsec does not run updown scripts yet; %q will not be called", ch.Updown)
	}
	return ch
}

// applyChildLifetimes fills in what was not set as charon does: hard
// limits 10% above the soft ones, random ranges the difference.
func applyChildLifetimes(lt *Lifetime, set map[string]Pos) {
	has := func(k string) bool { _, ok := set[k]; return ok }
	if !has("life_time") {
		// In whole seconds, as charon computes it.
		lt.LifeTime = time.Duration(percentMore(uint64(lt.RekeyTime/time.Second))) * time.Second
	}
	if !has("life_bytes") {
		lt.LifeBytes = percentMore(lt.RekeyBytes)
	}
	if !has("life_packets") {
		lt.LifePackets = percentMore(lt.RekeyPackets)
	}
	if !has("rand_time") {
		lt.RandTime = lt.LifeTime - min(lt.LifeTime, lt.RekeyTime)
	}
	if !has("rand_bytes") {
		lt.RandBytes = lt.LifeBytes - min(lt.LifeBytes, lt.RekeyBytes)
	}
	if !has("rand_packets") {
		lt.RandPackets = lt.LifePackets - min(lt.LifePackets, lt.RekeyPackets)
	}
}
