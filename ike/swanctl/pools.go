package swanctl

import (
	"net/netip"
	"strings"

	"github.com/xdpsec/xdpsec/ike"
	"github.com/xdpsec/xdpsec/ike/pool"
)

// Pool is one pools.<name> section: virtual IP addresses for
// remote-access clients and the attributes sent with them. The engine's
// pool is embedded; Addrs is the addrs value as written.
type Pool struct {
	*ike.Pool
	Pos   Pos
	Addrs string
}

// Pool returns the pool of that name, or nil.
func (c *Config) Pool(name string) *Pool {
	for _, p := range c.Pools {
		if p.Name() == name {
			return p
		}
	}
	return nil
}

// poolSection gathers a pools.<name> section's settings before the pool
// is made from addrs.
type poolSection struct {
	addrs      string
	dns, nbns  []netip.Addr
	subnets    []netip.Prefix
	dnsDomains []string
	// IKEv1 Cisco Unity attributes.
	splitInclude, splitExclude []netip.Prefix
	unity                      []ike.UnityAttr
}

func parseSubnets(v string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range splitList(v) {
		if !strings.Contains(s, "/") {
			s += "/32"
		}
		pr, err := netip.ParsePrefix(s)
		if err != nil || !pr.Addr().Is4() {
			return nil, wrapf(ErrValue, "%q is not an IPv4 subnet (address/prefix length)", s)
		}
		out = append(out, pr.Masked())
	}
	return out, nil
}

// unityKey parses a numbered Cisco Unity attribute (28672 UNITY_BANNER,
// 28673 UNITY_SAVE_PASSWD, 28674 UNITY_DEF_DOMAIN, 28675
// UNITY_SPLITDNS_NAME): each value of the list is one attribute, sent as
// written, as charon's pools do.
func unityKey(t uint16) keySpec[poolSection] {
	return supported(func(p *poolSection, v string) error {
		for _, s := range splitList(v) {
			p.unity = append(p.unity, ike.UnityAttr{Type: t, Value: []byte(s)})
		}
		return nil
	})
}

func parseAddrList(v string) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, s := range splitList(v) {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, wrapf(ErrValue, "%q is not an IP address", s)
		}
		out = append(out, a)
	}
	return out, nil
}

var poolKeys = keyTable[poolSection]{
	"addrs": supported(func(p *poolSection, v string) error { p.addrs = v; return nil }),
	"dns":   supported(func(p *poolSection, v string) (err error) { p.dns, err = parseAddrList(v); return }),
	"nbns": supported(func(p *poolSection, v string) (err error) {
		p.nbns, err = parseAddrList(v)
		for _, a := range p.nbns {
			if !a.Is4() {
				return wrapf(ErrValue, "%v: NBNS servers are IPv4 addresses", a)
			}
		}
		return
	}),
	"subnet": supported(func(p *poolSection, v string) error {
		p.subnets = nil
		for _, s := range splitList(v) {
			pr, err := netip.ParsePrefix(s)
			if err != nil {
				return wrapf(ErrValue, "%q is not a subnet (address/prefix length)", s)
			}
			p.subnets = append(p.subnets, pr.Masked())
		}
		return nil
	}),
	// 25 is INTERNAL_DNS_DOMAIN (RFC 8598): split DNS domains, as a
	// numbered attribute in strongSwan's pools.
	"25": supported(func(p *poolSection, v string) error {
		p.dnsDomains = splitList(v)
		for _, d := range p.dnsDomains {
			if strings.ContainsAny(d, " /@") || len(d) > 253 {
				return wrapf(ErrValue, "%q is not a DNS domain", d)
			}
		}
		return nil
	}),

	// Documented by strongSwan, not supported by xdpsec yet.
	"dhcp":          unsupported[poolSection](),
	"netmask":       unsupported[poolSection](),
	"server":        unsupported[poolSection](),
	"split_include": supported(func(p *poolSection, v string) (err error) { p.splitInclude, err = parseSubnets(v); return }),
	"split_exclude": supported(func(p *poolSection, v string) (err error) { p.splitExclude, err = parseSubnets(v); return }),
	"28672":         unityKey(28672),
	"28673":         unityKey(28673),
	"28674":         unityKey(28674),
	"28675":         unityKey(28675),
}

// loadPools reads the "pools" section.
func (l *loader) loadPools(sec *section) {
	for _, k := range sec.keys {
		l.errs.add(sec.settings[k].pos, "pools."+k, wrapf(ErrUnknownKey, "unknown key (pools holds only sections)"))
	}
	for _, s := range sec.subs {
		key := "pools." + s.name
		if l.poolSections == nil {
			l.poolSections = map[string]bool{}
		}
		l.poolSections[s.name] = true
		var ps poolSection
		set := applyKeys(&ps, s, poolKeys, key, l.errs)
		l.notePositions(key, set)
		for _, c := range s.subs {
			l.errs.add(c.pos(), key+"."+c.name, wrapf(ErrUnknownKey, "unknown section"))
		}
		if l.cfg.Pool(s.name) != nil {
			l.errs.add(s.pos(), key, wrapf(ErrInvalid, "pool defined twice"))
			continue
		}
		if ps.addrs == "" {
			if _, ok := set["addrs"]; !ok {
				l.errs.add(s.pos(), key, wrapf(ErrInvalid, "missing addrs"))
			}
			continue
		}
		leases, err := poolAddrs(s.name, ps.addrs)
		if err != nil {
			l.errs.add(l.where(key, "addrs", s.pos()), key+".addrs", err)
			continue
		}
		l.cfg.Pools = append(l.cfg.Pools, &Pool{Pos: s.pos(), Addrs: ps.addrs, Pool: &ike.Pool{
			Leases: leases, DNS: ps.dns, NBNS: ps.nbns, Subnets: ps.subnets, DNSDomains: ps.dnsDomains,
			SplitInclude: ps.splitInclude, SplitExclude: ps.splitExclude, UnityAttrs: ps.unity,
		}})
	}
}

// poolAddrs makes the lease table of an addrs value: a subnet
// (10.3.200.0/24) or a range (10.3.200.10-10.3.200.20). strongSwan's
// %config and DHCP/RADIUS pool names are not supported.
func poolAddrs(name, v string) (*pool.Pool, error) {
	if first, last, ok := strings.Cut(v, "-"); ok {
		a, err1 := netip.ParseAddr(strings.TrimSpace(first))
		b, err2 := netip.ParseAddr(strings.TrimSpace(last))
		if err1 != nil || err2 != nil {
			return nil, wrapf(ErrValue, "%q is not an address range (FROM-TO)", v)
		}
		p, err := pool.FromRange(name, a, b)
		if err != nil {
			return nil, wrapErr(ErrValue, err)
		}
		return p, nil
	}
	pr, err := netip.ParsePrefix(strings.TrimSpace(v))
	if err != nil {
		return nil, wrapf(ErrValue, "%q is not a subnet (CIDR) or an address range (FROM-TO)", v)
	}
	p, err := pool.FromPrefix(name, pr)
	if err != nil {
		return nil, wrapErr(ErrValue, err)
	}
	return p, nil
}
