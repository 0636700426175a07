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
	"split_include": unsupported[poolSection](),
	"split_exclude": unsupported[poolSection](),
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
