package ike

import (
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/xdpsec/xdpsec/ike/isakmp"
	"github.com/xdpsec/xdpsec/ike/transform"
)

// IKEv1 in the exported state: an established ISAKMP SA carries on after
// a restart with its cookies, keys and the last CBC block of phase 1
// (every later exchange's IV derives from it), and its installed IPsec
// SAs, whose keys stay in the kernel. Exchanges in flight are lost: the
// peer retransmits a Quick Mode, and a Quick Mode we started is started
// again by its rekey timer.

// ExportedISAKMPSA is one exported IKEv1 ISAKMP SA.
type ExportedISAKMPSA struct {
	ID                  uint32
	Conn                string
	Initiator           bool
	Aggressive          bool
	CookieI, CookieR    uint64
	Local, Remote       netip.AddrPort
	Auth                isakmp.AuthMethod
	PRF                 transform.PRFID
	Encr                transform.EncrID
	EncrBits            uint16
	Group               transform.KEID
	Lifetime            time.Duration
	Proposal            string
	Keys                transform.V1Keys
	IV                  []byte // the last CBC block of phase 1
	LocalID, RemoteID   Identity
	PeerDPD, PeerNATT   bool
	PeerFragmentation   bool
	NATLocal, NATRemote bool
	DPDSequence         uint32
	EstablishedAt       time.Time
	Children            []ExportedIPsecSA
	// Remote access: the XAuth method phase 1 negotiated, the XAuth user
	// (ours as a client, the peer's as a gateway), the virtual IPs we
	// got and the DNS servers with them (client), and those leased to
	// the peer (gateway), taken back from their pools.
	XAuthMethod isakmp.AuthMethod `json:",omitempty"`
	EAPIdentity string            `json:",omitempty"`
	LocalVIPs   []netip.Addr      `json:",omitempty"`
	DNSServers  []netip.Addr      `json:",omitempty"`
	VIPs        []ExportedVIP     `json:",omitempty"`
	PeerUnity   bool              `json:",omitempty"`
}

// ExportedIPsecSA is one exported IKEv1 IPsec SA pair.
type ExportedIPsecSA struct {
	ID                uint32
	Name              string
	SPIIn, SPIOut     uint32
	Mode              Mode
	Proposal          string
	Suite             transform.ChildSuite
	Lifetime          time.Duration
	LocalTS, RemoteTS []TrafficSelector
	ReqID             uint32
	Encap             bool
	Initiator         bool
	InstalledAt       time.Time
}

// SAIDs lists the SAs the IPsec SAs of the state have in the dataplane.
func (s *ExportedISAKMPSA) SAIDs() []SAID {
	x := s.asIKESA()
	return x.SAIDs()
}

// asIKESA is the ISAKMP SA as far as ImportError reports it and the
// checks and steps of Import that serve both versions see it: its name,
// addresses, cookies (as SPIs) and IPsec SAs.
func (s *ExportedISAKMPSA) asIKESA() ExportedIKESA {
	x := ExportedIKESA{ID: s.ID, Conn: s.Conn, Initiator: s.Initiator, SPIi: s.CookieI, SPIr: s.CookieR,
		Local: s.Local, Remote: s.Remote, LocalID: s.LocalID, RemoteID: s.RemoteID}
	for _, c := range s.Children {
		x.Children = append(x.Children, ExportedChildSA{ID: c.ID, Name: c.Name, SPIIn: c.SPIIn, SPIOut: c.SPIOut,
			Suite: c.Suite, Mode: c.Mode, LocalTS: c.LocalTS, RemoteTS: c.RemoteTS, ReqID: c.ReqID, InstalledAt: c.InstalledAt})
	}
	return x
}

func cloneV1Keys(k *transform.V1Keys) transform.V1Keys {
	return transform.V1Keys{SKEYID: cloneBytes(k.SKEYID), SKEYIDd: cloneBytes(k.SKEYIDd), SKEYIDa: cloneBytes(k.SKEYIDa),
		SKEYIDe: cloneBytes(k.SKEYIDe), Encr: cloneBytes(k.Encr)}
}

// exportV1 returns the established ISAKMP SAs and their installed IPsec
// SAs.
func (e *Engine) exportV1() []ExportedISAKMPSA {
	var out []ExportedISAKMPSA
	for _, sa := range e.allV1SAs() {
		if s, ok := sa.export(); ok {
			out = append(out, s)
		}
	}
	return out
}

// exportable are the ISAKMP SAs worth taking over: established ones.
func (sa *v1SA) exportable() bool {
	ex := sa.exchanges[0]
	return sa.state == IKESAEstablished && !sa.deleted && sa.keys != nil && sa.cipher != nil && ex != nil && ex.iv != nil
}

// export is the ISAKMP SA's record, if it is one to take back.
func (sa *v1SA) export() (ExportedISAKMPSA, bool) {
	if !sa.exportable() {
		return ExportedISAKMPSA{}, false
	}
	ex := sa.exchanges[0]
	s := ExportedISAKMPSA{
		ID: sa.id, Conn: sa.conn.Name, Initiator: sa.initiator, Aggressive: sa.aggressive,
		CookieI: sa.ckyI, CookieR: sa.ckyR, Local: sa.local, Remote: sa.remote,
		Auth: sa.auth, PRF: sa.prf, Encr: sa.encr, EncrBits: sa.encrBits, Group: sa.group,
		Lifetime: sa.lifetime, Proposal: sa.proposal, Keys: cloneV1Keys(sa.keys), IV: cloneBytes(ex.iv),
		LocalID: sa.localID, RemoteID: sa.remoteID, PeerDPD: sa.peerDPD, PeerNATT: sa.peerNATT,
		PeerFragmentation: sa.peerFrag, NATLocal: sa.natLocal, NATRemote: sa.natRemote,
		DPDSequence: sa.dpdSeq, EstablishedAt: sa.establishedAt,
		XAuthMethod: sa.xauthMethod, EAPIdentity: sa.eapIdentity, LocalVIPs: slices.Clone(sa.localVIPs),
		DNSServers: slices.Clone(sa.dnsServers), VIPs: sa.exportVIPs(), PeerUnity: sa.peerUnity,
	}
	for _, c := range sa.children {
		if (c.state != ChildSAInstalled && c.state != ChildSARekeying) || len(c.localTS) == 0 || len(c.remoteTS) == 0 {
			continue
		}
		s.Children = append(s.Children, ExportedIPsecSA{
			ID: c.id, Name: c.cfg.Name, SPIIn: c.spiIn, SPIOut: c.spiOut, Mode: c.mode, Proposal: c.proposal,
			Suite: c.suite, Lifetime: c.life, LocalTS: slices.Clone(c.localTS), RemoteTS: slices.Clone(c.remoteTS),
			ReqID: c.reqID(), Encap: c.encap, Initiator: c.initiator, InstalledAt: c.installedAt,
		})
	}
	return s, true
}

// detachV1 stops the ISAKMP SAs' timers and zeroes their keys, leaving
// the dataplane alone.
func (e *Engine) detachV1() {
	for _, sa := range e.allV1SAs() {
		sa.stopTimers()
		for _, c := range sa.children {
			c.stopTimers()
		}
		sa.keys.Zero()
		clear(sa.gxy)
	}
}

// zeroV1 overwrites the keys of exported ISAKMP SAs.
func zeroV1(sas []ExportedISAKMPSA) {
	for i := range sas {
		sas[i].Keys.Zero()
	}
}

func (e *Engine) importV1SA(s ExportedISAKMPSA) error {
	x := s.asIKESA()
	c, err := e.connectionToTakeBack(1, &x)
	if err != nil {
		return err
	}
	if !c.v1SuiteAllowed(s) {
		return fmt.Errorf("%w: proposal %s is not among those of connection %q", ErrNotAllowed, s.Proposal, s.Conn)
	}
	st := e.v1()
	cookie := ours(s.Initiator, s.CookieI, s.CookieR)
	if cookie == 0 || s.CookieI == 0 || s.CookieR == 0 || st.sas[cookie] != nil {
		return fmt.Errorf("cookie %016x in use or missing", cookie)
	}
	// Selectors are there: the record's check refuses a CHILD_SA without.
	if err := e.childIDsFree(x.Children); err != nil {
		return err
	}
	if _, err := transform.V1EncrKeyLen(s.Encr, s.EncrBits); err != nil {
		return fmt.Errorf("encryption: %w", err)
	}
	if _, err := s.PRF.V1Hash(); err != nil {
		return fmt.Errorf("PRF: %w", err)
	}
	keys := cloneV1Keys(&s.Keys)
	cipher, err := transform.NewV1Cipher(s.Encr, keys.Encr)
	if err != nil {
		keys.Zero()
		return fmt.Errorf("keys: %w", err)
	}
	if len(s.IV) != cipher.BlockSize() || len(keys.SKEYIDa) == 0 || len(keys.SKEYIDd) == 0 {
		keys.Zero()
		return fmt.Errorf("keys: phase 1 IV of %d octets, SKEYID_a of %d, SKEYID_d of %d", len(s.IV), len(keys.SKEYIDa), len(keys.SKEYIDd))
	}
	sa := e.newV1SA(c, s.Initiator, s.Local, s.Remote)
	sa.takeID(s.ID)
	sa.aggressive = s.Aggressive
	sa.ckyI, sa.ckyR = s.CookieI, s.CookieR
	sa.auth, sa.prf, sa.encr, sa.encrBits, sa.group = s.Auth, s.PRF, s.Encr, s.EncrBits, s.Group
	sa.lifetime, sa.proposal = s.Lifetime, s.Proposal
	sa.keys, sa.cipher = &keys, cipher
	sa.exchange(0).iv = cloneBytes(s.IV)
	sa.localID, sa.remoteID = s.LocalID, s.RemoteID
	sa.peerDPD, sa.peerNATT, sa.peerFrag = s.PeerDPD, s.PeerNATT, s.PeerFragmentation && c.fragmentation
	sa.natLocal, sa.natRemote = s.NATLocal, s.NATRemote
	sa.dpdSeq = s.DPDSequence
	if _, ok := s.XAuthMethod.XAuthBase(); ok && (c.xauthClient() || c.xauthServer()) {
		sa.xauthMethod = s.XAuthMethod
	}
	sa.eapIdentity, sa.peerUnity = s.EAPIdentity, s.PeerUnity
	sa.localVIPs, sa.dnsServers = slices.Clone(s.LocalVIPs), slices.Clone(s.DNSServers)
	for _, v := range s.VIPs {
		sa.takeBackVIP(v)
	}
	sa.p1done = true
	sa.step = 6
	sa.establishedAt = s.EstablishedAt
	if sa.establishedAt.IsZero() {
		sa.establishedAt = e.clock.Now()
	}
	if sa.lifetime <= 0 {
		sa.lifetime = c.renewTime() + c.OverTime
	}
	st.sas[cookie] = sa
	sa.setState(IKESAEstablished)
	// Before the policies, whose routes use them as their source.
	sa.installVIPs(true)
	sa.scheduleLifetime(max(e.clock.Now().Sub(sa.establishedAt), 0))
	if sa.natLocal {
		sa.scheduleKeepAlive()
	}
	for _, cs := range s.Children {
		cfg := childConfigNamed(c, cs.Name)
		ch := &v1Child{kernelChild: kernelChild[*v1SA]{ike: sa, cfg: cfg, id: cs.ID, state: ChildSAInstalled,
			spiIn: cs.SPIIn, spiOut: cs.SPIOut, mode: cs.Mode, suite: cs.Suite, encap: cs.Encap,
			localTS: slices.Clone(cs.LocalTS), remoteTS: slices.Clone(cs.RemoteTS), installedAt: cs.InstalledAt},
			proposal: cs.Proposal, life: cs.Lifetime, initiator: cs.Initiator}
		if ch.life <= 0 {
			ch.life = cfg.LifeTime
		}
		if ch.installedAt.IsZero() {
			ch.installedAt = e.clock.Now()
		}
		ch.setLifetime()
		sa.children = append(sa.children, ch)
		ch.takeBack(cs.ReqID)
		ch.scheduleTimers(max(e.clock.Now().Sub(ch.installedAt), 0))
	}
	infof(sa.log, "IKE_SA %s taken back, established between %s, %d CHILD_SAs", sa.name(), sa.ends(), len(sa.children))
	return nil
}

// v1ChildByID finds an IKEv1 IPsec SA by its unique ID.
func (e *Engine) v1ChildByID(id uint32) *v1Child {
	for _, sa := range e.allV1SAs() {
		if c := childWhere(sa.children, func(c *v1Child) bool { return c.id == id }); c != nil {
			return c
		}
	}
	return nil
}
