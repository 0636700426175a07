package ike

import (
	"net/netip"

	"github.com/xdpsec/xdpsec/ike/pool"
)

// Pool is a swanctl.conf "pools.<name>" section: the addresses leased to
// remote-access clients (ike/pool does the bookkeeping) and the
// attributes sent with them in the configuration payload (RFC 7296
// section 3.15).
type Pool struct {
	// Leases hands out the addresses (addrs); its Name is the pool's.
	Leases *pool.Pool
	// DNS (dns) and NBNS (nbns) servers, sent as INTERNAL_IP4_DNS /
	// INTERNAL_IP6_DNS and INTERNAL_IP4_NBNS.
	DNS  []netip.Addr
	NBNS []netip.Addr
	// Subnets (subnet, split_include) are sent as INTERNAL_IP4_SUBNET /
	// INTERNAL_IP6_SUBNET: the networks behind the gateway.
	Subnets []netip.Prefix
	// DNSDomains are sent as INTERNAL_DNS_DOMAIN (RFC 8598): the domains
	// whose names the client resolves through DNS.
	DNSDomains []string

	// IKEv1 Mode Config only, the Cisco Unity attributes of
	// strongSwan's pools: SplitInclude (split_include) is sent as
	// UNITY_SPLIT_INCLUDE, SplitExclude (split_exclude) as
	// UNITY_LOCAL_LAN, UnityAttrs (the numbered 28672... keys:
	// UNITY_BANNER, UNITY_SAVE_PASSWD, UNITY_DEF_DOMAIN,
	// UNITY_SPLITDNS_NAME) as they are.
	SplitInclude []netip.Prefix
	SplitExclude []netip.Prefix
	UnityAttrs   []UnityAttr
}

// UnityAttr is a numbered Cisco Unity attribute of a pool and its value.
type UnityAttr struct {
	Type  uint16
	Value []byte
}

// Name is the pool's name (pools.NAME).
func (p *Pool) Name() string { return p.Leases.Name() }

// SetPools replaces the address pools connections name in their Pools
// (a reload). IKE SAs keep the leases they hold, and give them back to
// the pool they took them from.
func (e *Engine) SetPools(pools []*Pool) {
	e.mu.Lock()
	defer e.unlock()
	e.cfg.Pools = append([]*Pool(nil), pools...)
	e.trackPools()
}

// trackPools has the pools note their changes for the StateSink.
func (e *Engine) trackPools() {
	if e.cfg.StateSink != nil {
		for _, p := range e.cfg.Pools {
			p.Leases.TrackChanges()
		}
	}
}

// Pools are the address pools, for listing their leases.
func (e *Engine) Pools() []*Pool {
	e.mu.Lock()
	defer e.unlock()
	return append([]*Pool(nil), e.cfg.Pools...)
}

func (e *Engine) pool(name string) *Pool {
	for _, p := range e.cfg.Pools {
		if p.Name() == name {
			return p
		}
	}
	return nil
}
