package ike

import (
	"net/netip"
	"slices"
)

// The client role's virtual IPs (swanctl.conf vips): what the gateway
// assigned us in its CFG_REPLY goes into the dataplane before the
// CHILD_SAs that use it (their outbound policies name it as RouteSrc), and
// comes out when the last IKE SA holding it goes, after its CHILD_SAs.
// An IKE rekey hands them to the new IKE SA; a reauthentication's new IKE
// SA asks for them again and installs them while the old one still holds
// them, so nothing is removed in between.

// installVIPs puts the IKE SA's virtual IPs into the dataplane; takenBack
// says they are there already from before a restart.
func (sa *ikeSACommon) installVIPs(takenBack bool) {
	for _, a := range sa.localVIPs {
		if !takenBack {
			infof(sa.log, "installing new virtual IP %s", a)
		}
		if err := sa.e.cfg.Dataplane.AddVirtualIP(sa.virtualIP(a)); err != nil {
			infof(sa.log, "installing virtual IP %s failed: %v", a, err)
		}
	}
}

// removeVIPs takes the IKE SA's virtual IPs out of the dataplane, except
// those another IKE SA of ours holds.
func (sa *ikeSACommon) removeVIPs() {
	if len(sa.localVIPs) == 0 {
		return
	}
	for _, a := range sa.localVIPs {
		if sa.e.vipHeldByOther(sa, a) {
			continue
		}
		infof(sa.log, "removing virtual IP %s", a)
		if err := sa.e.cfg.Dataplane.DeleteVirtualIP(sa.virtualIP(a)); err != nil {
			infof(sa.log, "removing virtual IP %s failed: %v", a, err)
		}
	}
	sa.localVIPs = nil
}

func (sa *ikeSACommon) virtualIP(a netip.Addr) *VirtualIP {
	return &VirtualIP{Addr: a, Local: sa.local.Addr(), Peer: sa.remote.Addr()}
}

// vipHeldByOther says whether an IKE SA other than sa holds the virtual
// IP a. Only the client role's IKE SAs have any, so a gateway's destroys
// never walk here.
func (e *Engine) vipHeldByOther(sa *ikeSACommon, a netip.Addr) bool {
	for _, o := range e.sas {
		if &o.ikeSACommon != sa && o.state != IKESADestroying && slices.Contains(o.localVIPs, a) {
			return true
		}
	}
	for _, o := range e.ikev1.sas {
		if &o.ikeSACommon != sa && o.state != IKESADestroying && !o.deleted && slices.Contains(o.localVIPs, a) {
			return true
		}
	}
	return false
}

// routeSrc is the virtual IP an outbound policy's routes carry as their
// source: the local selector's one address when it is one of ours.
func (sa *ikeSACommon) routeSrc(local TrafficSelector) netip.Addr {
	if local.Start != local.End || !slices.Contains(sa.localVIPs, local.Start) {
		return netip.Addr{}
	}
	return local.Start
}
