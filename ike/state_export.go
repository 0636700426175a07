package ike

import (
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/xdpsec/xdpsec/ike/pool"
	"github.com/xdpsec/xdpsec/ike/transform"
)

// EngineState is what a restarted daemon needs to take its IKE SAs back:
// the established IKE SAs with their keys and message IDs, and their
// installed CHILD_SAs (whose keys stay in the kernel). It holds secrets:
// whoever stores it keeps it from other users and calls Zero when done.
type EngineState struct {
	SAs         []ExportedIKESA
	NextIKEID   uint32
	NextChildID uint32
	NextReqID   uint32
	// V1 are the IKEv1 ISAKMP SAs and their IPsec SAs (v1_state.go).
	V1 []ExportedISAKMPSA `json:",omitempty"`
	// Pools are the leases of each address pool, by pool name: a restart
	// gives every identity the address it had (pool.Restore), and the
	// taken-back IKE SAs take theirs online again.
	Pools map[string][]pool.Lease `json:",omitempty"`
}

// ExportedIKESA is one exported IKE SA.
type ExportedIKESA struct {
	ID            uint32
	Conn          string
	Initiator     bool
	SPIi, SPIr    uint64
	Local, Remote netip.AddrPort
	Proposal      transform.Proposal
	Suite         transform.IKESuite
	// Keys: SK_d, SK_ai, SK_ar, SK_ei, SK_er, SK_pi, SK_pr.
	Keys                transform.IKEKeys
	LocalID, RemoteID   Identity
	NATLocal, NATRemote bool
	PeerFragmentation   bool
	// PeerRedirect: the client announced REDIRECT_SUPPORTED (RFC 5685),
	// so the gateway may redirect it after a restart too.
	PeerRedirect bool `json:",omitempty"`
	// PeerMIDSync: the peer announced IKEV2_MESSAGE_ID_SYNC_SUPPORTED
	// (RFC 6311), so a fleet member taking the IKE SA over synchronises
	// the message IDs instead of rekeying it.
	PeerMIDSync bool `json:",omitempty"`
	// Message IDs: of our next request, and of the peer's next request,
	// with our response to the peer's last one for its retransmits.
	NextMessageID, ExpectMessageID uint32
	LastResponse                   [][]byte
	Children                       []ExportedChildSA
	// EAPIdentity is the identity the peer (or we) authenticated as with
	// EAP; VIPs are the virtual IPs leased to the peer, LocalVIPs and
	// DNSServers those the gateway gave us.
	EAPIdentity string        `json:",omitempty"`
	VIPs        []ExportedVIP `json:",omitempty"`
	LocalVIPs   []netip.Addr  `json:",omitempty"`
	DNSServers  []netip.Addr  `json:",omitempty"`
	// Accounting is the peer's accounting session with the EAP backend.
	Accounting *ExportedAccounting `json:",omitempty"`
	// MOBIKE is set when both ends negotiated it; PeerAddrs are the
	// peer's additional addresses, LastUpdateID the message ID of the
	// last UPDATE_SA_ADDRESSES followed (UpdateSeen). Local and Remote
	// are where MOBIKE moved the SA last.
	MOBIKE bool `json:",omitempty"`
	// NotOriginalInitiator marks an IKE SA whose I flag is not who
	// may move it (a rekey by the original responder); omitted, the two
	// are the same.
	NotOriginalInitiator bool         `json:",omitempty"`
	PeerAddrs            []netip.Addr `json:",omitempty"`
	LastUpdateID         uint32       `json:",omitempty"`
	UpdateSeen           bool         `json:",omitempty"`
	// EstablishedAt is when the IKE SA got established.
	EstablishedAt time.Time `json:",omitzero"`
}

// ExportedVIP is a virtual IP an exported IKE SA holds: the pool it came
// from and the identity it is leased to.
type ExportedVIP struct {
	Pool     string // empty: an EAP backend's Framed-IP-Address outside our pools
	Identity string
	Addr     netip.Addr
}

// ExportedChildSA is one exported CHILD_SA.
type ExportedChildSA struct {
	ID                uint32
	Name              string
	SPIIn, SPIOut     uint32
	Proposal          transform.Proposal
	Suite             transform.ChildSuite
	Mode              Mode
	LocalTS, RemoteTS []TrafficSelector
	ReqID             uint32
	InstalledAt       time.Time
	// HeldOut are the keys of its outbound SA while it is held back
	// until the peer has installed its inbound (a rekey's responder,
	// kernel.go): the SA is not in the dataplane yet, and a restart
	// installs it.
	HeldOut *transform.SAKeys `json:",omitempty"`
	// Keys are the keys of both SAs, exported with
	// Config.CheckpointChildKeys only: what a fleet member that takes the
	// CHILD_SA over (TakeOver) installs.
	Keys *ExportedChildKeys `json:",omitempty"`
}

// ExportedChildKeys are what installing a CHILD_SA's SAs needs beyond the
// rest of its record (suite, mode, SPIs, addresses, and the configuration
// for lifetimes, replay window and interface IDs): the keys of the inbound
// and the outbound SA, and whether they are UDP-encapsulated.
type ExportedChildKeys struct {
	In, Out transform.SAKeys
	Encap   bool `json:",omitempty"`
}

func (k *ExportedChildKeys) zero() {
	if k == nil {
		return
	}
	clear(k.In.Encr)
	clear(k.In.Integ)
	clear(k.Out.Encr)
	clear(k.Out.Integ)
}

// Zero overwrites the keys.
func (s *EngineState) Zero() {
	zeroV2(s.SAs)
	zeroV1(s.V1)
}

func zeroV2(sas []ExportedIKESA) {
	for i := range sas {
		sas[i].Keys.Zero()
		for _, r := range sas[i].LastResponse {
			clear(r)
		}
		for _, c := range sas[i].Children {
			if c.HeldOut != nil {
				clear(c.HeldOut.Encr)
				clear(c.HeldOut.Integ)
			}
			c.Keys.zero()
		}
	}
}

// SAIDs lists the SAs the CHILD_SAs of the state have in the dataplane.
func (s *ExportedIKESA) SAIDs() []SAID {
	var out []SAID
	for _, c := range s.Children {
		p := saProtoOf(c.Suite)
		out = append(out, SAID{Dst: s.Local.Addr(), SPI: c.SPIIn, Proto: p})
		if c.HeldOut == nil {
			out = append(out, SAID{Dst: s.Remote.Addr(), SPI: c.SPIOut, Proto: p})
		}
	}
	return out
}

func cloneBytes(b []byte) []byte { return slices.Clone(b) }

func cloneKeys(k *transform.IKEKeys) transform.IKEKeys {
	return transform.IKEKeys{D: cloneBytes(k.D), AI: cloneBytes(k.AI), AR: cloneBytes(k.AR),
		EI: cloneBytes(k.EI), ER: cloneBytes(k.ER), PI: cloneBytes(k.PI), PR: cloneBytes(k.PR)}
}

// exportable are the IKE SAs worth taking over: established ones (and
// those in the middle of a rekey, whose exchange is lost).
func (sa *ikeSA) exportable() bool {
	return sa.keys != nil && sa.state >= IKESAEstablished && sa.state <= IKESARekeying
}

func (e *Engine) export() EngineState {
	st := EngineState{NextIKEID: e.nextIKEID, NextChildID: e.nextChildID, NextReqID: e.reqids.next}
	for _, sa := range e.allSAs() {
		if sa.exportable() {
			st.SAs = append(st.SAs, sa.export())
		}
	}
	st.V1 = e.exportV1()
	for _, p := range e.cfg.Pools {
		if leases := p.Leases.Leases(); len(leases) > 0 {
			if st.Pools == nil {
				st.Pools = map[string][]pool.Lease{}
			}
			st.Pools[p.Name()] = leases
		}
	}
	return st
}

// export is the IKE SA's record (exportable says whether it is one to
// take back), its own copy of every byte.
func (sa *ikeSA) export() ExportedIKESA {
	var s ExportedIKESA
	sa.exportTo(&s, false)
	return s
}

// exportTo writes the IKE SA's record to dst, reusing the capacity of
// dst.Children. With shared, the record's slices (keys, traffic
// selectors, addresses, the last response) are the SA's own: it is for a
// StateSink, which encodes it before the engine's lock is released and
// keeps none of it; in a 20,000-SA run the copies were a fifth of the
// bytes the journal's records allocated. A shared record must not be
// zeroed or changed; clearShared forgets it.
func (sa *ikeSA) exportTo(dst *ExportedIKESA, shared bool) {
	keys := *sa.keys
	if !shared {
		keys = cloneKeys(sa.keys)
	}
	children := dst.Children[:0]
	*dst = ExportedIKESA{
		ID: sa.id, Conn: sa.conn.Name, Initiator: sa.initiator, SPIi: sa.spiI, SPIr: sa.spiR,
		Local: sa.local, Remote: sa.remote, Proposal: sa.proposal, Suite: sa.suite, Keys: keys,
		LocalID: sa.localID, RemoteID: sa.remoteID, NATLocal: sa.natLocal, NATRemote: sa.natRemote,
		PeerFragmentation: sa.peerFrag, PeerRedirect: sa.peerRedirect, PeerMIDSync: sa.peerMIDSync, NextMessageID: sa.tm.nextID, ExpectMessageID: sa.tm.expectID,
		EAPIdentity: sa.eapIdentity, LocalVIPs: own(shared, sa.localVIPs), DNSServers: own(shared, sa.dnsServers),
		Accounting: sa.exportAccounting(),
		MOBIKE:     sa.mobike, PeerAddrs: own(shared, sa.peerAddrs), LastUpdateID: sa.lastUpdateID, UpdateSeen: sa.updateSeen,
		NotOriginalInitiator: sa.originalInitiator != sa.initiator, EstablishedAt: sa.establishedAt,
	}
	for _, v := range sa.vips {
		e := ExportedVIP{Identity: v.id, Addr: v.addr}
		if v.pool != nil {
			e.Pool = v.pool.Name()
		}
		dst.VIPs = append(dst.VIPs, e)
	}
	if shared {
		dst.LastResponse = sa.tm.response
	} else {
		for _, r := range sa.tm.response {
			dst.LastResponse = append(dst.LastResponse, cloneBytes(r))
		}
	}
	for _, c := range sa.children {
		if !c.inInstalled || (!c.outInstalled && c.heldOut == nil) || c.state >= ChildSADeleting || c.reqid == nil {
			continue
		}
		cs := ExportedChildSA{
			ID: c.id, Name: c.cfg.Name, SPIIn: c.spiIn, SPIOut: c.spiOut, Proposal: c.proposal,
			Suite: c.suite, Mode: c.mode, LocalTS: own(shared, c.localTS), RemoteTS: own(shared, c.remoteTS),
			ReqID: c.reqID(), InstalledAt: c.installedAt,
		}
		cs.Keys = c.exportKeys(shared)
		if h := c.heldOut; h != nil && !c.outInstalled {
			cs.HeldOut = &transform.SAKeys{Encr: own(shared, h.Encr), Integ: own(shared, h.Integ)}
		}
		children = append(children, cs)
	}
	if len(children) > 0 {
		dst.Children = children
	}
}

// own is s itself when shared (exportTo), else a copy of it.
func own[S ~[]E, E any](shared bool, s S) S {
	if shared {
		return s
	}
	return slices.Clone(s)
}

// clearShared forgets a record exportTo shared with its IKE SA, keeping
// the capacity of its Children for the next.
func (s *ExportedIKESA) clearShared() {
	children := s.Children[:0]
	clear(s.Children)
	*s = ExportedIKESA{Children: children}
}

// Export returns the engine's established IKE SAs and their CHILD_SAs,
// keys included.
func (e *Engine) Export() EngineState {
	e.mu.Lock()
	defer e.unlock()
	return e.export()
}

// Detach exports the engine's state and stops it without deleting
// anything: no timer fires any more, nothing is sent, and the dataplane
// keeps every SA and policy, so that another process can Import the state
// and carry on (a daemon restart). Keys held by the engine are zeroed.
func (e *Engine) Detach() EngineState {
	e.mu.Lock()
	defer e.unlock()
	// What a restarted engine could not finish: outbound SAs held back
	// for a rekey's DELETE (the peer has their inbound halves by now),
	// and the removal of the inbound SAs of rekeyed CHILD_SAs.
	for _, sa := range e.allSAs() {
		for _, c := range sa.children {
			c.installOutbound()
		}
	}
	e.removeRetired()
	st := e.export()
	for _, sa := range e.allSAs() {
		sa.tm.stopTimers()
		for _, t := range []Timer{sa.halfOpenTimer, sa.rekeyTimer, sa.reauthTimer, sa.expireTimer, sa.dpdTimer} {
			if t != nil {
				t.Stop()
			}
		}
		for _, c := range sa.children {
			c.stopTimers()
			c.dropKeys()
		}
		if sa.acct != nil {
			sa.acct.stopTimer()
		}
		sa.zeroKeys()
	}
	e.detachV1()
	e.closed = true
	return st
}

// ImportError says why one exported IKE SA was not taken back.
type ImportError struct {
	SA ExportedIKESA
	// Version and Record say which record of the state it is: IKEv1 or
	// IKEv2, and its place (from 1) among that version's records.
	Version, Record int
	Err             error
	// Remove are the record's SAs in the dataplane that no IKE SA of the
	// engine uses: the caller deletes these, and no others, since a
	// record refused as a duplicate names the SAs of the one taken back.
	Remove []SAID
}

func (e *ImportError) Error() string {
	if e.Record == 0 {
		return fmt.Sprintf("IKE_SA %s[%d]: %v", e.SA.Conn, e.SA.ID, e.Err)
	}
	return fmt.Sprintf("%s: %v", recordName(e.Version, e.Record, e.SA.Conn, e.SA.ID), e.Err)
}

// Import takes back the IKE SAs of an exported state: they are
// established again, with fresh rekey and liveness timers, and their
// CHILD_SAs' policies are added to the dataplane again (which must accept
// policies it already has). Every record is checked first (state_check.go):
// a bad one is refused with ErrBadRecord, the others are still taken
// back. Connections must be added first; an IKE SA whose connection is
// gone is not imported and reported, so that the caller removes its SAs
// from the dataplane (ImportError.Remove). The state's keys are copied.
func (e *Engine) Import(st EngineState) []*ImportError {
	e.mu.Lock()
	defer e.unlock()
	e.nextIKEID = max(e.nextIKEID, st.NextIKEID)
	e.nextChildID = max(e.nextChildID, st.NextChildID)
	e.reqids.next = max(e.reqids.next, st.NextReqID)
	for name, leases := range st.Pools {
		if p := e.pool(name); p == nil {
			infof(e.log, "leases of pool '%s' not taken back: no such pool", name)
		} else if err := p.Leases.Restore(leases); err != nil {
			infof(e.log, "leases of pool '%s' taken back in part: %v", name, err)
		}
	}
	bad2, bad1 := st.check()
	errs := importRecords(2, st.SAs, bad2, e.importSA, (*ExportedIKESA).asIKESA)
	errs = append(errs, importRecords(1, st.V1, bad1, e.importV1SA, (*ExportedISAKMPSA).asIKESA)...)
	used := e.dataplaneSAIDs()
	for _, ie := range errs {
		for _, id := range ie.SA.SAIDs() {
			if id.SPI != 0 && id.Dst.IsValid() && !used[id] {
				ie.Remove = append(ie.Remove, id)
				used[id] = true // removed once
			}
		}
	}
	return errs
}

// importRecords takes back the records of one IKE version that the check
// did not refuse (bad, by index), and says why the others were not.
func importRecords[R any](version int, records []R, bad map[int]error, take func(R) error, view func(*R) ExportedIKESA) []*ImportError {
	var errs []*ImportError
	for i := range records {
		err := bad[i]
		if err == nil {
			err = take(records[i])
		}
		if err != nil {
			errs = append(errs, &ImportError{SA: view(&records[i]), Version: version, Record: i + 1, Err: err})
		}
	}
	return errs
}

// asIKESA is the record itself: what ExportedISAKMPSA.asIKESA makes of
// an IKEv1 one, for what serves both versions.
func (s *ExportedIKESA) asIKESA() ExportedIKESA { return *s }

// connectionToTakeBack is the connection a record of an IKE SA (of IKE
// version v; an IKEv1 one asIKESA) is taken back on, if the engine runs,
// has it, and it allows the record's addresses and identities.
func (e *Engine) connectionToTakeBack(v int, s *ExportedIKESA) (*connection, error) {
	if e.closed {
		return nil, ErrClosed
	}
	c := e.connection(s.Conn)
	if c == nil {
		return nil, fmt.Errorf("%w: %q", ErrUnknownConnection, s.Conn)
	}
	if err := c.allowsTakenBack(v, s.Local, s.Remote, s.LocalID, s.RemoteID); err != nil {
		return nil, err
	}
	return c, nil
}

// childIDsFree checks that no CHILD_SA of either version has the unique
// ID of one a record brings.
func (e *Engine) childIDsFree(children []ExportedChildSA) error {
	for _, cs := range children {
		if _, err := e.childSA(cs.ID); err == nil || e.v1ChildByID(cs.ID) != nil {
			return fmt.Errorf("CHILD_SA ID {%d} in use", cs.ID)
		}
	}
	return nil
}

func (e *Engine) importSA(s ExportedIKESA) error {
	sa, spi, err := e.ikeSAFromRecord(&s, e.childIDsFree, false)
	if err != nil {
		return err
	}
	c := sa.conn
	sa.tm.nextID, sa.tm.expectID = s.NextMessageID, s.ExpectMessageID
	for _, r := range s.LastResponse {
		sa.tm.response = append(sa.tm.response, cloneBytes(r))
	}
	e.putSA(spi, sa)
	sa.establishedAt = s.EstablishedAt
	sa.established()
	// Before the policies, whose routes use them as their source.
	sa.installVIPs(true)
	for _, cs := range s.Children {
		cfg := childConfigNamed(c, cs.Name)
		ch := &childSA{kernelChild: kernelChild[*ikeSA]{ike: sa, cfg: cfg, id: cs.ID, state: ChildSAInstalled,
			spiIn: cs.SPIIn, spiOut: cs.SPIOut, suite: cs.Suite, mode: cs.Mode,
			localTS: slices.Clone(cs.LocalTS), remoteTS: slices.Clone(cs.RemoteTS), installedAt: cs.InstalledAt},
			proposal: cs.Proposal}
		// Rekey when the SA would have been rekeyed without the restart.
		ch.setSAOptions()
		if elapsed := e.clock.Now().Sub(cs.InstalledAt); !cs.InstalledAt.IsZero() && elapsed > 0 {
			ch.lifetime.SoftTime = max(ch.lifetime.SoftTime-elapsed, time.Second)
		}
		sa.addChild(ch)
		ch.takeBack(cs.ReqID)
		if h := cs.HeldOut; h != nil {
			// Saved while the outbound SA was held back: the peer has
			// had time to install its inbound SA since.
			ch.outInstalled = false
			ch.holdOutbound(*h)
			if err := ch.addHeldOutbound(); err != nil {
				infof(sa.log, "unable to install outbound SA of CHILD_SA %s: %v", ch.name(), err)
			}
		}
		ch.scheduleRekey()
	}
	sa.takeBackAccounting(s.Accounting)
	infof(sa.log, "IKE_SA %s taken back, established between %s, %d CHILD_SAs", sa.name(), sa.ends(), len(sa.children))
	return nil
}

// ikeSAFromRecord checks a record of an IKE SA and makes the IKE SA, as
// Import and TakeOver both do: connection, proposal, SPI, the caller's
// check of the CHILD_SAs, keys, identities, what the peer announced,
// and the virtual IPs. The record's unique ID is kept; with freshID one in
// use gets a fresh one (a takeover) instead of the record being refused
// by the caller's checks. The caller sets the message IDs, stores the SA
// and installs its CHILD_SAs.
func (e *Engine) ikeSAFromRecord(s *ExportedIKESA, check func([]ExportedChildSA) error, freshID bool) (*ikeSA, uint64, error) {
	c, err := e.connectionToTakeBack(2, s)
	if err != nil {
		return nil, 0, err
	}
	if !c.proposalAllowed(s.Proposal) {
		return nil, 0, fmt.Errorf("%w: proposal %v is not among those of connection %q", ErrNotAllowed, s.Proposal, s.Conn)
	}
	spi := ours(s.Initiator, s.SPIi, s.SPIr)
	if spi == 0 || e.sas[spi] != nil {
		return nil, 0, fmt.Errorf("IKE SPI %016x in use", spi)
	}
	if err := check(s.Children); err != nil {
		return nil, 0, err
	}
	for _, a := range s.LocalVIPs {
		if !a.IsValid() || a.IsUnspecified() {
			return nil, 0, fmt.Errorf("invalid virtual IP %q", a)
		}
	}
	sa := e.newIKESA(c, s.Initiator, s.Local, s.Remote)
	if !freshID || (e.byID[s.ID] == nil && e.v1SAByID(s.ID) == nil) {
		sa.takeID(s.ID)
	} else {
		infof(e.log, "IKE_SA %s[%d] taken over as %s: its unique ID is in use", s.Conn, s.ID, sa.name())
	}
	sa.spiI, sa.spiR = s.SPIi, s.SPIr
	sa.proposal, sa.suite = s.Proposal, s.Suite
	keys := cloneKeys(&s.Keys)
	if err := sa.installKeys(&keys); err != nil {
		return nil, 0, fmt.Errorf("keys: %w", err)
	}
	sa.localID, sa.remoteID = s.LocalID, s.RemoteID
	sa.natLocal, sa.natRemote, sa.peerFrag, sa.peerRedirect = s.NATLocal, s.NATRemote, s.PeerFragmentation, s.PeerRedirect
	sa.peerMIDSync = s.PeerMIDSync
	sa.mobike = s.MOBIKE && sa.mobikeEnabled()
	sa.peerMobike = s.MOBIKE
	sa.peerAddrs = slices.Clone(s.PeerAddrs)
	if len(sa.peerAddrs) > maxPeerAddrs {
		sa.peerAddrs = sa.peerAddrs[:maxPeerAddrs]
	}
	sa.lastUpdateID, sa.updateSeen = s.LastUpdateID, s.UpdateSeen
	sa.originalInitiator = s.Initiator != s.NotOriginalInitiator
	sa.eapIdentity, sa.localVIPs, sa.dnsServers = s.EAPIdentity, slices.Clone(s.LocalVIPs), slices.Clone(s.DNSServers)
	for _, v := range s.VIPs {
		sa.takeBackVIP(v)
	}
	return sa, spi, nil
}

// childConfigNamed finds a connection's child config; a child no longer
// configured gets a bare one, so that its CHILD_SA can still be rekeyed or
// deleted.
func childConfigNamed(c *connection, name string) *childConfig {
	for _, cc := range c.children {
		if cc.Name == name {
			return cc
		}
	}
	cc, _ := resolveChild(&ChildConfig{Name: name})
	cc.conn = c
	return cc
}

// RemoveConnection unloads a connection (swanctl --unload-conn): no new
// IKE SA uses it. Its established IKE SAs are left alone; delete them
// first with DeleteIKESA if they must go.
func (e *Engine) RemoveConnection(name string) error {
	e.mu.Lock()
	defer e.unlock()
	i := slices.IndexFunc(e.conns, func(c *connection) bool { return c.Name == name })
	if i < 0 {
		return fmt.Errorf("%w: %q", ErrUnknownConnection, name)
	}
	e.conns = slices.Delete(e.conns, i, i+1)
	return nil
}

// SetCredentials replaces the shared keys and trusted CAs (swanctl
// --load-creds); IKE SAs authenticated before keep their state.
func (e *Engine) SetCredentials(c Credentials) {
	e.mu.Lock()
	defer e.unlock()
	e.cfg.Credentials = c
	e.eapSecrets = newEAPSecretIndex(c.EAP)
}

// HalfOpen is the number of responder IKE SAs still negotiating.
func (e *Engine) HalfOpen() int {
	e.mu.Lock()
	defer e.unlock()
	return e.halfOpen()
}
