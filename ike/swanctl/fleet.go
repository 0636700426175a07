package swanctl

import (
	"net/netip"
	"net/url"
	"path"
	"strings"
	"time"
)

// The fleet section of xdpsec.conf makes the daemon a member of a fleet
// of gateways sharing their state in etcd (internal/fleet):
//
//	fleet {
//	    member = gw1                        # default: the host name
//	    endpoints = http://127.0.0.1:2379   # etcd client URLs, comma-separated
//	    key_file = /etc/xdpsec/fleet.key    # root-only: 32 bytes or 64 hex digits
//	    etcd_ca = /etc/xdpsec/etcd-ca.pem   # https endpoints: etcd's CA (default: the system's)
//	    etcd_cert = /etc/xdpsec/etcd.pem    # and our client certificate and key, if etcd asks
//	    etcd_key = /etc/xdpsec/etcd-key.pem
//	    prefix = /xdpsec
//	    lease_ttl = 3s                      # etcd lease: how long a dead leader holds on
//	    address = 192.0.2.11                # this member's own IKE address (redirect target)
//	    pools = yes                         # pool leases are the fleet's
//	    checkpoint_interval = 1s            # how often ESP sequence numbers are saved
//	    shared {
//	        wan {
//	            address = 192.0.2.1         # the shared address
//	            follow = keepalived         # or always
//	            interface = wan0            # follow = always only: the leader holds the address here
//	        }
//	    }
//	}
//
// A shared address's IKE SAs are served by one member at a time, the
// leader of its election: follow = always campaigns from the start,
// follow = keepalived once `xdpsec fleet notify master NAME` says this box
// holds the address (and resigns on backup, fault or stop). With
// interface, the daemon itself adds the address to the interface while it
// leads (and announces it with a gratuitous ARP), and removes it when it
// stops leading; without, keepalived or routing moves it.

// Defaults of the fleet section.
const (
	DefaultFleetPrefix     = "/xdpsec"
	DefaultFleetLeaseTTL   = 3 * time.Second
	DefaultFleetCheckpoint = time.Second
	// MinFleetLeaseTTL is the shortest etcd lease accepted: below, a
	// busy box misses its keepalives.
	MinFleetLeaseTTL = 2 * time.Second
)

// FleetFollow says when a member campaigns for a shared address.
type FleetFollow uint8

const (
	// FollowAlways: campaign from the start; the leader serves.
	FollowAlways FleetFollow = iota
	// FollowKeepalived: campaign while keepalived says this box is
	// MASTER for the address (xdpsec fleet notify).
	FollowKeepalived
)

func (f FleetFollow) String() string {
	if f == FollowKeepalived {
		return "keepalived"
	}
	return "always"
}

// FleetSettings is the fleet section.
type FleetSettings struct {
	Pos       Pos
	Member    string // "" takes the host name
	Endpoints []string
	KeyFile   string
	// EtcdCA, EtcdCert and EtcdKey are the TLS files of https
	// endpoints ("" for none).
	EtcdCA, EtcdCert, EtcdKey string
	Prefix                    string
	LeaseTTL                  time.Duration
	// Address is this member's own IKE address, where a redirect sends
	// clients (invalid: none; the member is then never chosen).
	Address            netip.Addr
	Pools              bool
	CheckpointInterval time.Duration
	Shared             []FleetShared
}

// FleetShared is one fleet.shared.NAME section.
type FleetShared struct {
	Name    string
	Pos     Pos
	Address netip.Addr
	Follow  FleetFollow
	// Interface is where the leader holds the address itself ("":
	// keepalived or routing moves it).
	Interface string
}

// parseDuration takes Go's durations ("500ms", "1m30s") and swanctl's
// times ("3", "3s", "2m").
func parseDuration(v string) (time.Duration, error) {
	if d, err := time.ParseDuration(v); err == nil {
		return d, nil
	}
	return parseTime(v)
}

var fleetKeys = keyTable[FleetSettings]{
	"member": supported(func(f *FleetSettings, v string) error {
		if strings.ContainsAny(v, "/ \t") {
			return wrapf(ErrValue, "member %q must not hold '/' or blanks", v)
		}
		f.Member = v
		return nil
	}),
	"endpoints": supported(func(f *FleetSettings, v string) error {
		f.Endpoints = nil
		for _, e := range splitList(v) {
			u, err := url.Parse(e)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return wrapf(ErrValue, "%q is not an http:// or https:// URL of an etcd server", e)
			}
			f.Endpoints = append(f.Endpoints, e)
		}
		return nil
	}),
	"key_file":  supported(func(f *FleetSettings, v string) (err error) { f.KeyFile, err = absPath("key_file", v); return }),
	"etcd_ca":   supported(func(f *FleetSettings, v string) (err error) { f.EtcdCA, err = absPath("etcd_ca", v); return }),
	"etcd_cert": supported(func(f *FleetSettings, v string) (err error) { f.EtcdCert, err = absPath("etcd_cert", v); return }),
	"etcd_key":  supported(func(f *FleetSettings, v string) (err error) { f.EtcdKey, err = absPath("etcd_key", v); return }),
	"prefix": supported(func(f *FleetSettings, v string) error {
		if !strings.HasPrefix(v, "/") || strings.ContainsAny(v, " \t") {
			return wrapf(ErrValue, "prefix %q must start with '/' and hold no blanks", v)
		}
		f.Prefix = strings.TrimRight(v, "/")
		if f.Prefix == "" {
			return wrapf(ErrValue, "prefix must not be '/' alone")
		}
		return nil
	}),
	"lease_ttl": supported(func(f *FleetSettings, v string) (err error) {
		if f.LeaseTTL, err = parseDuration(v); err != nil {
			return err
		}
		if f.LeaseTTL < MinFleetLeaseTTL || f.LeaseTTL%time.Second != 0 {
			return wrapf(ErrValue, "lease_ttl must be whole seconds, at least %v (etcd leases count seconds)", MinFleetLeaseTTL)
		}
		return nil
	}),
	"address": supported(func(f *FleetSettings, v string) (err error) {
		f.Address, err = parseFleetAddr(v)
		return
	}),
	"pools": supported(func(f *FleetSettings, v string) (err error) { f.Pools, err = parseBool(v); return }),
	"checkpoint_interval": supported(func(f *FleetSettings, v string) (err error) {
		if f.CheckpointInterval, err = parseDuration(v); err != nil {
			return err
		}
		if f.CheckpointInterval < 100*time.Millisecond {
			return wrapf(ErrValue, "checkpoint_interval must be at least 100ms")
		}
		return nil
	}),
}

var fleetFollows = map[string]FleetFollow{"always": FollowAlways, "keepalived": FollowKeepalived}

var fleetSharedKeys = keyTable[FleetShared]{
	"address": supported(func(s *FleetShared, v string) (err error) {
		s.Address, err = parseFleetAddr(v)
		return
	}),
	"follow": supported(func(s *FleetShared, v string) (err error) {
		s.Follow, err = parseEnum(v, fleetFollows, "always or keepalived")
		return
	}),
	"interface": supported(func(s *FleetShared, v string) error {
		if len(v) > 15 || strings.ContainsAny(v, "/ \t") {
			return wrapf(ErrValue, "%q is not an interface name", v)
		}
		s.Interface = v
		return nil
	}),
}

func absPath(key, v string) (string, error) {
	if !path.IsAbs(v) {
		return "", wrapf(ErrValue, "%s %q must be an absolute path", key, v)
	}
	return v, nil
}

func parseFleetAddr(v string) (netip.Addr, error) {
	a, err := netip.ParseAddr(v)
	if err != nil || a.Zone() != "" || a.IsUnspecified() {
		return netip.Addr{}, wrapf(ErrValue, "%q is not an IP address", v)
	}
	return a.Unmap(), nil
}

// loadFleet reads the fleet section.
func loadFleet(s *section, errs *errorList) *FleetSettings {
	f := &FleetSettings{Pos: s.pos(), Prefix: DefaultFleetPrefix, LeaseTTL: DefaultFleetLeaseTTL, CheckpointInterval: DefaultFleetCheckpoint}
	set := applyKeys(f, s, fleetKeys, "fleet", errs)
	for _, k := range []string{"endpoints", "key_file"} {
		if _, ok := set[k]; !ok {
			if _, bad := s.settings[k]; !bad {
				errs.add(s.pos(), "fleet."+k, wrapf(ErrInvalid, "missing %s", k))
			}
		}
	}
	if (f.EtcdCert == "") != (f.EtcdKey == "") {
		errs.add(s.pos(), "fleet.etcd_cert", wrapf(ErrInvalid, "etcd_cert and etcd_key go together"))
	}
	if f.EtcdCA != "" || f.EtcdCert != "" {
		for _, e := range f.Endpoints {
			if !strings.HasPrefix(e, "https://") {
				errs.add(s.pos(), "fleet.endpoints", wrapf(ErrInvalid, "%s is not https:// but etcd_ca or etcd_cert is set", e))
			}
		}
	}
	if f.CheckpointInterval >= f.LeaseTTL {
		errs.add(s.pos(), "fleet.checkpoint_interval", wrapf(ErrInvalid, "checkpoint_interval (%v) must be shorter than lease_ttl (%v)", f.CheckpointInterval, f.LeaseTTL))
	}
	byAddr := map[netip.Addr]string{}
	for _, sub := range s.subs {
		if sub.name != "shared" {
			errs.add(sub.pos(), "fleet."+sub.name, wrapf(ErrUnknownKey, "unknown section (expected shared)"))
			continue
		}
		for _, k := range sub.keys {
			errs.add(sub.settings[k].pos, "fleet.shared."+k, wrapf(ErrUnknownKey, "unknown key (shared holds only sections)"))
		}
		for _, ss := range sub.subs {
			key := "fleet.shared." + ss.name
			sh := FleetShared{Name: ss.name, Pos: ss.pos()}
			for _, x := range ss.subs {
				errs.add(x.pos(), key+"."+x.name, wrapf(ErrUnknownKey, "unknown section"))
			}
			if strings.ContainsAny(ss.name, "/ \t") {
				errs.add(ss.pos(), key, wrapf(ErrValue, "name must not hold '/' or blanks"))
			}
			set := applyKeys(&sh, ss, fleetSharedKeys, key, errs)
			if _, ok := set["address"]; !ok {
				if _, bad := ss.settings["address"]; !bad {
					errs.add(ss.pos(), key, wrapf(ErrInvalid, "missing address"))
				}
				continue
			}
			if sh.Interface != "" && sh.Follow == FollowKeepalived {
				errs.add(set["interface"], key+".interface", wrapf(ErrInvalid, "keepalived holds the address of follow = keepalived: interface is for follow = always"))
			}
			if other, dup := byAddr[sh.Address]; dup {
				errs.add(ss.pos(), key+".address", wrapf(ErrInvalid, "%v is shared address %s already", sh.Address, other))
				continue
			}
			byAddr[sh.Address] = sh.Name
			if f.Address == sh.Address {
				errs.add(ss.pos(), key+".address", wrapf(ErrInvalid, "%v is fleet.address, this member's own address", sh.Address))
			}
			f.Shared = append(f.Shared, sh)
		}
	}
	return f
}

// SharedByAddr is the shared address section of a, if any.
func (f *FleetSettings) SharedByAddr(a netip.Addr) (FleetShared, bool) {
	for _, s := range f.Shared {
		if s.Address == a.Unmap() {
			return s, true
		}
	}
	return FleetShared{}, false
}

// SharedByName is the shared address section called name, if any.
func (f *FleetSettings) SharedByName(name string) (FleetShared, bool) {
	for _, s := range f.Shared {
		if s.Name == name {
			return s, true
		}
	}
	return FleetShared{}, false
}
