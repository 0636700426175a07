package ike

import (
	"net/netip"

	"github.com/xdpsec/xdpsec/ike/message"
	"github.com/xdpsec/xdpsec/ike/pool"
)

// vipLease is a virtual IP an IKE SA holds, and where it goes back.
type vipLease struct {
	pool *pool.Pool // nil: an EAP backend's Framed-IP-Address outside our pools
	id   string
	addr netip.Addr
}

// vipAddrs are the virtual IPs the IKE SA assigned to its peer.
func (sa *ikeSACommon) vipAddrs() []netip.Addr {
	var out []netip.Addr
	for _, v := range sa.vips {
		out = append(out, v.addr)
	}
	return out
}

func (sa *ikeSACommon) releaseVIPs() {
	for _, v := range sa.vips {
		if v.pool != nil {
			v.pool.Release(v.id, v.addr)
		}
	}
	sa.vips = nil
}

// leaseIdentity is who a virtual IP is bound to: the EAP identity if the
// peer authenticated with EAP, else its IKE identity.
func (sa *ikeSA) leaseIdentity() string {
	if sa.eapIdentity != "" {
		return sa.eapIdentity
	}
	return sa.remoteID.String()
}

// configRequest answers a CFG_REQUEST of the peer's IKE_AUTH request (RFC
// 7296 section 2.19) from the connection's pools: each requested
// INTERNAL_IP4_ADDRESS or INTERNAL_IP6_ADDRESS gets an address leased to
// the peer's identity, and the reply carries the pools' DNS servers,
// subnets and DNS domains. It reports a failure when addresses were
// requested and none could be given: the IKE SA is established without
// the CHILD_SA, and the response carries INTERNAL_ADDRESS_FAILURE (as
// charon does).
func (t *ikeAuth) configRequest(m *message.Message) (failure bool) {
	sa := t.sa
	cp, ok := find[*message.Configuration](m)
	if !ok || cp.CFGType != message.CFG_REQUEST || (len(sa.conn.Pools) == 0 && !sa.framedIP.IsValid()) {
		return false
	}
	id := sa.leaseIdentity()
	requested := 0
	var reply []message.ConfigAttribute
	var used []*Pool
	// One address per family: a client asking for more would drain the
	// pool with one IKE SA.
	var asked4, asked6 bool
	for _, a := range cp.Attributes {
		var want netip.Addr
		var is4 bool
		switch a.Type {
		case message.INTERNAL_IP4_ADDRESS:
			is4 = true
			if len(a.Value) == 4 {
				want = netip.AddrFrom4([4]byte(a.Value))
			}
		case message.INTERNAL_IP6_ADDRESS:
			if len(a.Value) == 17 {
				want = netip.AddrFrom16([16]byte(a.Value[:16]))
			}
		default:
			continue
		}
		if (is4 && asked4) || (!is4 && asked6) {
			continue
		}
		asked4, asked6 = asked4 || is4, asked6 || !is4
		if want.IsValid() && want.IsUnspecified() {
			want = netip.Addr{}
		}
		requested++
		infof(sa.log, "peer requested virtual IP %s", anyAddr(want, is4))
		addr, p := sa.leaseVIP(id, want, is4)
		if !addr.IsValid() {
			sa.e.stats.VIPFailures++
			infof(sa.log, "no virtual IP found for %s requested by '%s'", anyAddr(want, is4), id)
			continue
		}
		infof(sa.log, "assigning virtual IP %s to peer '%s'", addr, id)
		if is4 {
			reply = append(reply, message.ConfigAttribute{Type: message.INTERNAL_IP4_ADDRESS, Value: addr.AsSlice()})
		} else {
			reply = append(reply, message.ConfigAttribute{Type: message.INTERNAL_IP6_ADDRESS, Value: append(addr.AsSlice(), 128)})
		}
		if p != nil && !containsPool(used, p) {
			used = append(used, p)
		}
	}
	if requested > 0 && len(sa.vips) == 0 {
		t.addressFailure = true
		return true
	}
	for _, p := range used {
		reply = append(reply, p.attributes()...)
	}
	if len(reply) > 0 {
		t.cpReply = &message.Configuration{CFGType: message.CFG_REPLY, Attributes: reply}
	}
	return false
}

// leaseVIP leases an address of the family from the first of the
// connection's pools that has one.
func (sa *ikeSACommon) leaseVIP(id string, want netip.Addr, is4 bool) (netip.Addr, *Pool) {
	if is4 && sa.framedIP.IsValid() {
		return sa.leaseFramedIP(id)
	}
	for _, name := range sa.conn.Pools {
		p := sa.e.pool(name)
		if p == nil {
			infof(sa.log, "pool '%s' not found", name)
			continue
		}
		if p.Leases.Is4() != is4 {
			continue
		}
		addr, _, err := p.Leases.Acquire(id, want)
		if err != nil {
			continue
		}
		sa.vips = append(sa.vips, vipLease{pool: p.Leases, id: id, addr: addr})
		return addr, p
	}
	return netip.Addr{}, nil
}

// leaseFramedIP gives the peer the address its EAP backend assigned
// (Framed-IP-Address, RFC 2865 section 5.8) in place of one from the
// pools. An address inside one of the connection's pools is leased there
// to the peer, so that the pool gives it nobody else while the peer has
// it; one that the pool has online for someone else is refused. One
// outside the pools is the peer's without a lease.
func (sa *ikeSACommon) leaseFramedIP(id string) (netip.Addr, *Pool) {
	a := sa.framedIP
	for _, name := range sa.conn.Pools {
		p := sa.e.pool(name)
		if p == nil || !p.Leases.Contains(a) {
			continue
		}
		if err := p.Leases.AcquireAddr(id, a); err != nil {
			infof(sa.log, "virtual IP %s assigned by the EAP backend refused: %v", a, err)
			return netip.Addr{}, nil
		}
		sa.vips = append(sa.vips, vipLease{pool: p.Leases, id: id, addr: a})
		return a, p
	}
	sa.vips = append(sa.vips, vipLease{id: id, addr: a})
	return a, nil
}

func containsPool(list []*Pool, p *Pool) bool {
	for _, x := range list {
		if x == p {
			return true
		}
	}
	return false
}

// anyAddr prints a requested address as charon does: %any or %any6 for
// none.
func anyAddr(a netip.Addr, is4 bool) string {
	switch {
	case a.IsValid():
		return a.String()
	case is4:
		return "%any"
	}
	return "%any6"
}

// attributes are the configuration attributes a pool sends with its
// addresses.
func (p *Pool) attributes() []message.ConfigAttribute {
	var out []message.ConfigAttribute
	for _, a := range p.DNS {
		if a.Is4() {
			out = append(out, message.ConfigAttribute{Type: message.INTERNAL_IP4_DNS, Value: a.AsSlice()})
		} else {
			out = append(out, message.ConfigAttribute{Type: message.INTERNAL_IP6_DNS, Value: a.AsSlice()})
		}
	}
	for _, a := range p.NBNS {
		if a.Is4() {
			out = append(out, message.ConfigAttribute{Type: message.INTERNAL_IP4_NBNS, Value: a.AsSlice()})
		}
	}
	for _, s := range p.Subnets {
		s = s.Masked()
		if s.Addr().Is4() {
			v := append(s.Addr().AsSlice(), prefixMask4(s.Bits())...)
			out = append(out, message.ConfigAttribute{Type: message.INTERNAL_IP4_SUBNET, Value: v})
		} else {
			out = append(out, message.ConfigAttribute{Type: message.INTERNAL_IP6_SUBNET, Value: append(s.Addr().AsSlice(), byte(s.Bits()))})
		}
	}
	for _, d := range p.DNSDomains {
		out = append(out, message.ConfigAttribute{Type: message.INTERNAL_DNS_DOMAIN, Value: []byte(d)})
	}
	return out
}

func prefixMask4(bits int) []byte {
	m := uint32(0)
	if bits > 0 {
		m = ^uint32(0) << (32 - bits)
	}
	return []byte{byte(m >> 24), byte(m >> 16), byte(m >> 8), byte(m)}
}

// resolveRemoteTS resolves the peer's selectors: dynamic is its virtual
// IPs when it has any (one selector each, of the spec's protocol and
// ports), else its IKE address.
func (sa *ikeSACommon) resolveRemoteTS(specs []TSSpec) []TrafficSelector {
	return resolveTSOn(specs, sa.vipAddrs(), sa.remote.Addr())
}

// resolveTSOn resolves selectors whose dynamic ones stand for virtual
// IPs: one selector for each of vips (of the spec's protocol and ports),
// or for the IKE address ike when there are none.
func resolveTSOn(specs []TSSpec, vips []netip.Addr, ike netip.Addr) []TrafficSelector {
	if len(vips) == 0 {
		return resolveTS(specs, ike)
	}
	var out []TrafficSelector
	for _, s := range specs {
		if !s.Dynamic {
			out = append(out, s.TS)
			continue
		}
		for _, a := range vips {
			out = append(out, resolveTS([]TSSpec{s}, a)...)
		}
	}
	return out
}

// takeBackVIP leases a taken-back IKE SA's virtual IP to it again. The
// SA stays without the lease (its CHILD_SAs keep their selectors) when
// the pool is gone or now gives the address to someone else.
func (sa *ikeSACommon) takeBackVIP(v ExportedVIP) {
	if v.Pool == "" {
		// A Framed-IP-Address outside our pools.
		sa.vips = append(sa.vips, vipLease{id: v.Identity, addr: v.Addr})
		return
	}
	p := sa.e.pool(v.Pool)
	if p == nil {
		infof(sa.log, "virtual IP %s of '%s' not taken back: pool '%s' is gone", v.Addr, v.Identity, v.Pool)
		return
	}
	addr, _, err := p.Leases.Acquire(v.Identity, v.Addr)
	if err != nil || addr != v.Addr {
		if err == nil {
			p.Leases.Release(v.Identity, addr)
		}
		infof(sa.log, "virtual IP %s of '%s' not taken back: pool '%s' cannot lease it again", v.Addr, v.Identity, v.Pool)
		return
	}
	sa.vips = append(sa.vips, vipLease{pool: p.Leases, id: v.Identity, addr: addr})
}

// exportVIPs are the virtual IPs leased to the peer, for the saved state.
func (sa *ikeSACommon) exportVIPs() []ExportedVIP {
	var out []ExportedVIP
	for _, v := range sa.vips {
		e := ExportedVIP{Identity: v.id, Addr: v.addr}
		if v.pool != nil {
			e.Pool = v.pool.Name()
		}
		out = append(out, e)
	}
	return out
}

// configRequestPayload is the CFG_REQUEST for the connection's vips (the
// addresses we had, when reauthenticating), nil without.
func (sa *ikeSA) configRequestPayload() *message.Configuration {
	if len(sa.conn.VIPs) == 0 {
		return nil
	}
	cp := &message.Configuration{CFGType: message.CFG_REQUEST}
	vips := sa.conn.VIPs
	if len(sa.reauthVIPs) > 0 {
		vips = sa.reauthVIPs
	}
	for _, v := range vips {
		if v.Is4() {
			var val []byte
			if !v.IsUnspecified() {
				val = v.AsSlice()
			}
			cp.Attributes = append(cp.Attributes, message.ConfigAttribute{Type: message.INTERNAL_IP4_ADDRESS, Value: val},
				message.ConfigAttribute{Type: message.INTERNAL_IP4_DNS})
		} else {
			var val []byte
			if !v.IsUnspecified() {
				val = append(v.AsSlice(), 128)
			}
			cp.Attributes = append(cp.Attributes, message.ConfigAttribute{Type: message.INTERNAL_IP6_ADDRESS, Value: val},
				message.ConfigAttribute{Type: message.INTERNAL_IP6_DNS})
		}
	}
	return cp
}

// configReply takes the virtual IPs and DNS servers of the gateway's
// CFG_REPLY and installs the virtual IPs (virtual_ip.go). The DNS servers
// are logged and listed (list-sas), not written anywhere: the daemon
// leaves the host's resolver to the operator.
func (sa *ikeSA) configReply(m *message.Message) {
	if len(sa.conn.VIPs) == 0 {
		return
	}
	cp, ok := find[*message.Configuration](m)
	if !ok || cp.CFGType != message.CFG_REPLY {
		sa.log.Info("no virtual IP received")
		return
	}
	for _, a := range cp.Attributes {
		switch {
		case a.Type == message.INTERNAL_IP4_ADDRESS && len(a.Value) == 4:
			sa.takeVIP(netip.AddrFrom4([4]byte(a.Value)))
		case a.Type == message.INTERNAL_IP6_ADDRESS && len(a.Value) == 17:
			sa.takeVIP(netip.AddrFrom16([16]byte(a.Value[:16])))
		case a.Type == message.INTERNAL_IP4_DNS && len(a.Value) == 4:
			d := netip.AddrFrom4([4]byte(a.Value))
			infof(sa.log, "received DNS server %s", d)
			sa.dnsServers = append(sa.dnsServers, d)
		case a.Type == message.INTERNAL_IP6_DNS && len(a.Value) == 16:
			d := netip.AddrFrom16([16]byte(a.Value))
			infof(sa.log, "received DNS server %s", d)
			sa.dnsServers = append(sa.dnsServers, d)
		}
	}
	if len(sa.localVIPs) == 0 {
		sa.log.Info("no virtual IP received")
	}
	sa.installVIPs(false)
}

// takeVIP keeps a virtual IP of the CFG_REPLY: one address per family,
// and only one a host can hold as its own.
func (sa *ikeSACommon) takeVIP(v netip.Addr) {
	if !v.IsGlobalUnicast() {
		infof(sa.log, "ignoring virtual IP %s: not a unicast address", v)
		return
	}
	for _, o := range sa.localVIPs {
		if o.Is4() == v.Is4() {
			infof(sa.log, "ignoring virtual IP %s: %s is ours already", v, o)
			return
		}
	}
	infof(sa.log, "received virtual IP %s", v)
	sa.localVIPs = append(sa.localVIPs, v)
}

// resolveLocalTS resolves our selectors as an initiator offers them:
// dynamic is our virtual IPs once we have them, the whole family while we
// ask for them (the gateway narrows to what it assigns), else our IKE
// address.
func (sa *ikeSA) resolveLocalTS(specs []TSSpec) []TrafficSelector {
	addrs := sa.localVIPs
	if len(addrs) == 0 && len(sa.conn.VIPs) == 0 {
		return resolveTS(specs, sa.local.Addr())
	}
	var out []TrafficSelector
	for _, s := range specs {
		if !s.Dynamic {
			out = append(out, s.TS)
			continue
		}
		if len(addrs) > 0 {
			for _, a := range addrs {
				out = append(out, resolveTS([]TSSpec{s}, a)...)
			}
			continue
		}
		for _, v := range sa.conn.VIPs {
			ts := s.TS
			if v.Is4() {
				ts.Start, ts.End = netip.IPv4Unspecified(), netip.AddrFrom4([4]byte{255, 255, 255, 255})
			} else {
				ts.Start, ts.End = netip.IPv6Unspecified(), netip.AddrFrom16([16]byte{0: 0xff, 1: 0xff, 2: 0xff, 3: 0xff, 4: 0xff, 5: 0xff, 6: 0xff, 7: 0xff, 8: 0xff, 9: 0xff, 10: 0xff, 11: 0xff, 12: 0xff, 13: 0xff, 14: 0xff, 15: 0xff})
			}
			out = append(out, ts)
		}
	}
	return out
}
