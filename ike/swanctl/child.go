package swanctl

import (
	"strings"
	"time"

	"github.com/xdpsec/xdpsec/ike"
	"github.com/xdpsec/xdpsec/ike/transform"
)

// Child is one connections.<conn>.children.<name> section. The engine's
// CHILD_SA configuration is embedded: selectors, proposals, mode, actions,
// lifetimes, replay window, hw_offload and reqid are set there directly;
// its IfIDIn and IfIDOut are the IDs of the IfIDs below. What stays here
// is what the engine does not take (yet).
type Child struct {
	*ike.ChildConfig
	Pos Pos

	// IfIDIn and IfIDOut default to the connection's.
	IfIDIn  IfID
	IfIDOut IfID
	MarkIn  Mark
	MarkOut Mark
	// MarkInSA sets MarkIn on the inbound SA too, not only the policy.
	MarkInSA bool

	CopyDF   bool // default yes
	CopyECN  bool // default yes
	CopyDSCP CopyDSCP

	// Policies says whether to install IPsec policies (default yes).
	Policies bool
	// Priority is a fixed policy priority, 0 for one computed from the
	// selectors.
	Priority uint32
	// Updown is the updown script strongSwan would run; xdpsec keeps it
	// but does not run it (a warning says so).
	Updown string
}

// actionValues are the spellings charon accepts for start_action,
// close_action and dpd_action; "route" and "restart"/"clear" are its older
// and dpd_action names.
var actionValues = map[string]ike.Action{
	"none": ike.ActionNone, "clear": ike.ActionNone,
	"trap": ike.ActionTrap, "route": ike.ActionTrap,
	"start": ike.ActionStart, "restart": ike.ActionStart,
}

func parseAction(v string, combo bool) (ike.Action, error) {
	lv := strings.ToLower(v)
	if combo && (lv == "trap|start" || lv == "start|trap") {
		return ike.ActionTrap | ike.ActionStart, nil
	}
	names := "none, trap or start"
	if combo {
		names = "none, trap, start or trap|start"
	}
	return parseEnum(v, actionValues, names)
}

func parseDPDAction(v string) (ike.Action, error) {
	return parseEnum(v, actionValues, "clear, trap or restart")
}

var hwOffloadValues = map[string]ike.HWOffload{
	"no": ike.HWOffloadNo, "yes": ike.HWOffloadYes, "crypto": ike.HWOffloadYes, "auto": ike.HWOffloadAuto, "packet": ike.HWOffloadPacket,
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

var modeValues = map[string]ike.Mode{"tunnel": ike.ModeTunnel, "transport": ike.ModeTransport}

func parseMode(v string) (ike.Mode, error) {
	switch lv := strings.ToLower(v); lv {
	case "beet", "transport_proxy":
		return 0, wrapf(ErrUnsupported, "mode %q is not supported yet", v)
	case "pass", "drop":
		return 0, wrapf(ErrUnsupported, "%s policies (shunts) are not supported yet", lv)
	}
	return parseEnum(v, modeValues, "tunnel, transport, pass or drop")
}

func newChild(name string, pos Pos) *Child {
	return &Child{
		ChildConfig: &ike.ChildConfig{
			Name:         name,
			LocalTS:      []ike.TSSpec{ike.DynamicTS()},
			RemoteTS:     []ike.TSSpec{ike.DynamicTS()},
			ESPProposals: transform.DefaultProposals(transform.ProtoESP),
			RekeyTime:    DefaultChildRekeyTime,
			ReplayWindow: DefaultReplayWindow,
			// The lifetimes are swanctl.conf's, defaults applied.
			RandExact: true,
		},
		Pos:      pos,
		CopyDF:   true,
		CopyECN:  true,
		Policies: true,
	}
}

// childKeys are the keys of connections.<conn>.children.<child>.
var childKeys = keyTable[Child]{
	"local_ts":  supported(func(c *Child, v string) (err error) { c.LocalTS, err = parseTSList(v); return }),
	"remote_ts": supported(func(c *Child, v string) (err error) { c.RemoteTS, err = parseTSList(v); return }),
	"esp_proposals": supported(func(c *Child, v string) (err error) {
		c.ESPProposals, err = parseProposals(transform.ProtoESP, v)
		return
	}),
	// AH instead of ESP (RFC 4302); loadChild drops the default ESP
	// proposals, and refuses both set.
	"ah_proposals": supported(func(c *Child, v string) (err error) {
		c.AHProposals, err = parseProposals(transform.ProtoAH, v)
		return
	}),
	"mode":          supported(func(c *Child, v string) (err error) { c.Mode, err = parseMode(v); return }),
	"start_action":  supported(func(c *Child, v string) (err error) { c.StartAction, err = parseAction(v, true); return }),
	"close_action":  supported(func(c *Child, v string) (err error) { c.CloseAction, err = parseAction(v, false); return }),
	"dpd_action":    supported(func(c *Child, v string) (err error) { c.DPDAction, err = parseDPDAction(v); return }),
	"rekey_time":    supported(func(c *Child, v string) error { return setTime(&c.RekeyTime)(v) }),
	"life_time":     supported(func(c *Child, v string) error { return setTime(&c.LifeTime)(v) }),
	"rand_time":     supported(func(c *Child, v string) error { return setTime(&c.RandTime)(v) }),
	"rekey_bytes":   supported(func(c *Child, v string) (err error) { c.RekeyBytes, err = parseBytes(v); return }),
	"life_bytes":    supported(func(c *Child, v string) (err error) { c.LifeBytes, err = parseBytes(v); return }),
	"rand_bytes":    supported(func(c *Child, v string) (err error) { c.RandBytes, err = parseBytes(v); return }),
	"rekey_packets": supported(func(c *Child, v string) (err error) { c.RekeyPackets, err = parseCount(v); return }),
	"life_packets":  supported(func(c *Child, v string) (err error) { c.LifePackets, err = parseCount(v); return }),
	"rand_packets":  supported(func(c *Child, v string) (err error) { c.RandPackets, err = parseCount(v); return }),
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
	applyChildLifetimes(ch.ChildConfig, set)
	if _, ah := set["ah_proposals"]; ah {
		if _, esp := set["esp_proposals"]; esp {
			// charon would offer both as alternatives; xdpsec negotiates
			// one protocol per CHILD_SA, and neither supports AH+ESP
			// bundles.
			l.errs.add(set["ah_proposals"], path+".ah_proposals",
				wrapf(ErrUnsupported, "ah_proposals together with esp_proposals (set one of them: AH or ESP)"))
		}
		ch.ESPProposals = nil
	}
	ch.ChildConfig.IfIDIn, ch.ChildConfig.IfIDOut = ch.IfIDIn.ID, ch.IfIDOut.ID
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
func applyChildLifetimes(lt *ike.ChildConfig, set map[string]Pos) {
	has := func(k string) bool { _, ok := set[k]; return ok }
	if !has("life_time") {
		// In whole seconds, as charon computes it.
		lt.LifeTime = time.Duration(ike.PercentMore(uint64(lt.RekeyTime/time.Second))) * time.Second
	}
	if !has("life_bytes") {
		lt.LifeBytes = ike.PercentMore(lt.RekeyBytes)
	}
	if !has("life_packets") {
		lt.LifePackets = ike.PercentMore(lt.RekeyPackets)
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
