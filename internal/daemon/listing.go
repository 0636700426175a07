package daemon

import (
	"crypto/x509"
	"fmt"
	"slices"
	"time"

	"github.com/xdpsec/xdpsec/ike"
	"github.com/xdpsec/xdpsec/ike/message"
	"github.com/xdpsec/xdpsec/ike/pool"
)

func secondsPtr(d time.Duration) *int64 {
	s := int64(d / time.Second)
	return &s
}

// usedAgo is the seconds from a last use to now, nil if there was none
// (the kernel reports 0 for an SA that carried no packet).
func usedAgo(now, used time.Time) *int64 {
	if used.IsZero() || used.Unix() == 0 {
		return nil
	}
	return secondsPtr(max(0, now.Sub(used)))
}

// ListSAs describes the IKE SAs (of one connection, or all) with their
// CHILD_SAs, the kernel's counters and xdp_wan's rx_seen.
func (d *Daemon) ListSAs(conn string) []IKESA {
	sas := d.engine.IKESAs()
	now := time.Now()
	out := []IKESA{}
	for _, sa := range sas {
		if conn != "" && sa.Name != conn {
			continue
		}
		x := IKESA{
			Name: sa.Name, UniqueID: sa.ID, State: sa.State.String(), Version: sa.Version, Initiator: sa.Initiator,
			SPIi: fmt.Sprintf("%016x", sa.SPIi), SPIr: fmt.Sprintf("%016x", sa.SPIr),
			LocalHost: sa.Local.Addr().String(), LocalPort: sa.Local.Port(), LocalID: sa.LocalID.String(),
			RemoteHost: sa.Remote.Addr().String(), RemotePort: sa.Remote.Port(), RemoteID: sa.RemoteID.String(),
			NATLocal: sa.NATLocal, NATRemote: sa.NATRemote, Proposal: sa.Proposal, Children: []ChildSA{},
		}
		for _, v := range sa.LocalVIPs {
			x.LocalVIPs = append(x.LocalVIPs, v.String())
		}
		for _, v := range sa.RemoteVIPs {
			x.RemoteVIPs = append(x.RemoteVIPs, v.String())
		}
		for _, v := range sa.DNSServers {
			x.DNSServers = append(x.DNSServers, v.String())
		}
		if !sa.Initiator {
			x.EAPID = sa.EAPIdentity
		}
		fc := d.swanctlConn(sa.Name)
		if t := sa.Established; !t.IsZero() {
			x.Established = secondsPtr(now.Sub(t))
			if fc != nil && fc.RekeyTime > 0 {
				x.RekeyTime = secondsPtr(max(0, t.Add(fc.RekeyTime).Sub(now)))
			}
			if fc != nil && fc.ReauthTime > 0 {
				x.ReauthTime = secondsPtr(max(0, t.Add(fc.ReauthTime).Sub(now)))
			}
		}
		for _, ch := range sa.Children {
			c := ChildSA{
				Name: ch.Name, UniqueID: ch.ID, ReqID: ch.ReqID, State: ch.State.String(), Mode: ch.Mode.String(),
				Protocol: ch.Protocol.String(), Encap: ch.Encap, SPIIn: fmt.Sprintf("%.8x", ch.SPIIn), SPIOut: fmt.Sprintf("%.8x", ch.SPIOut),
				Proposal: ch.Proposal, LocalTS: tsStrings(ch.LocalTS), RemoteTS: tsStrings(ch.RemoteTS),
			}
			in := ike.SAID{Dst: sa.Local.Addr(), SPI: ch.SPIIn, Proto: ch.Protocol}
			out := ike.SAID{Dst: sa.Remote.Addr(), SPI: ch.SPIOut, Proto: ch.Protocol}
			if st, err := d.dp.QuerySA(in); err == nil {
				c.BytesIn, c.PacketsIn = st.Bytes, st.Packets
				c.UseIn = usedAgo(now, st.LastUsed)
			}
			if st, err := d.dp.QuerySA(out); err == nil {
				c.BytesOut, c.PacketsOut = st.Bytes, st.Packets
				c.UseOut = usedAgo(now, st.LastUsed)
			}
			if p, b, err := d.dp.RxSeen(in); err == nil {
				c.RxSeenPackets, c.RxSeenBytes = p, b
			}
			if t := ch.InstalledAt; !t.IsZero() {
				c.InstallTime = secondsPtr(now.Sub(t))
				if fc != nil {
					if cc := fc.Child(ch.Name); cc != nil && cc.RekeyTime > 0 {
						c.RekeyTime = secondsPtr(max(0, t.Add(cc.RekeyTime).Sub(now)))
					}
					if cc := fc.Child(ch.Name); cc != nil && cc.LifeTime > 0 {
						c.LifeTime = secondsPtr(max(0, t.Add(cc.LifeTime).Sub(now)))
					}
				}
			}
			x.Children = append(x.Children, c)
		}
		out = append(out, x)
	}
	return out
}

func tsStrings(list []ike.TrafficSelector) []string {
	out := make([]string, len(list))
	for i, ts := range list {
		out[i] = ts.String()
	}
	return out
}

func stringsOf[T fmt.Stringer](list []T) []string {
	out := make([]string, len(list))
	for i, x := range list {
		out[i] = x.String()
	}
	return out
}

// ListConns describes the loaded connections (swanctl --list-conns).
func (d *Daemon) ListConns() []ConnInfo {
	_, conns := d.allConns()
	out := []ConnInfo{}
	for _, c := range conns {
		ci := ConnInfo{
			Name: c.Name, LocalAddrs: stringsOf(c.LocalAddrs), RemoteAddrs: stringsOf(c.RemoteAddrs), Version: ikeVersion(int(c.Version)),
			Proposals: stringsOf(c.Proposals), RekeyTime: int64(c.RekeyTime / time.Second), ReauthTime: int64(c.ReauthTime / time.Second),
			Children: []ChildConn{},
		}
		if len(c.Local) > 0 {
			ci.LocalAuth, ci.LocalID = c.Local[0].Auth.String(), c.Local[0].IDSpec
			ci.LocalCerts, ci.LocalCACerts = subjects(c.Local[0].Certs), subjects(c.Local[0].CACerts)
		}
		if len(c.Remote) > 0 {
			ci.RemoteAuth, ci.RemoteID = c.Remote[0].Auth.String(), c.Remote[0].IDSpec
			ci.RemoteCerts, ci.RemoteCACerts = subjects(c.Remote[0].Certs), subjects(c.Remote[0].CACerts)
		}
		for _, ch := range c.Children {
			cc := ChildConn{
				Name: ch.Name, Mode: ch.Mode.String(), LocalTS: stringsOf(ch.LocalTS), RemoteTS: stringsOf(ch.RemoteTS),
				Proposals: stringsOf(ch.ESPProposals), AHProposals: stringsOf(ch.AHProposals), StartAction: ch.StartAction.String(), HWOffload: ch.HWOffload.String(),
				RekeyTime: int64(ch.RekeyTime / time.Second), IfIDIn: ch.ChildConfig.IfIDIn, IfIDOut: ch.ChildConfig.IfIDOut,
			}
			ci.Children = append(ci.Children, cc)
		}
		if r := c.Redirect; r != nil {
			ri := &RedirectInfo{Choose: r.Choose.String(), During: r.During.String(), Gateways: []RedirectGWInfo{}}
			gws := r.Gateways
			if r.Fleet && d.fleet != nil {
				gws = append(slices.Clip(gws), d.fleet.redirectGateways(c.Name)...)
			}
			for _, g := range gws {
				gi := RedirectGWInfo{Name: g.Name, Address: g.Address, Metrics: g.Metrics}
				if n, ok := d.GatewayLoad(c.Name, g); ok {
					gi.Load = &n
				}
				ri.Gateways = append(ri.Gateways, gi)
			}
			ci.Redirect = ri
		}
		out = append(out, ci)
	}
	return out
}

// ikeVersion names a connection's IKE version as swanctl --list-conns does.
func ikeVersion(v int) string {
	if v == 1 {
		return "IKEv1"
	}
	return "IKEv2"
}

// PoolInfo is a virtual IP pool as list-pools shows it (swanctl
// --list-pools): its range, size and leases online (an IKE SA holds them)
// and offline (kept for the identity's return).
type PoolInfo struct {
	Name string `json:"name"`
	Base string `json:"base"` // the first address
	// ConfBase is where the pool is written to start (charon's base:
	// 10.3.200.0 for 10.3.200.0/24, which hands out from .1).
	ConfBase string       `json:"conf-base"`
	Last     string       `json:"last"`
	Size     uint64       `json:"size"`
	Online   int          `json:"online"`
	Offline  int          `json:"offline"`
	Leases   []pool.Lease `json:"leases,omitempty"`
}

// ListPools describes the pools, with their leases if asked.
func (d *Daemon) ListPools(leases bool) []PoolInfo {
	out := []PoolInfo{}
	for _, p := range d.engine.Pools() {
		first, last := p.Leases.Range()
		size, online, offline := p.Leases.Stats()
		i := PoolInfo{Name: p.Name(), Base: first.String(), ConfBase: p.Leases.Base().String(), Last: last.String(), Size: size, Online: online, Offline: offline}
		if leases {
			i.Leases = p.Leases.Leases()
		}
		out = append(out, i)
	}
	return out
}

// subjects are the certificates' subjects as charon prints DNs.
func subjects(certs []*x509.Certificate) []string {
	var out []string
	for _, c := range certs {
		out = append(out, ike.Identity{Type: message.ID_DER_ASN1_DN, Data: c.RawSubject}.String())
	}
	return out
}
