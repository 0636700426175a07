package ike

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"time"

	"github.com/xdpsec/xdpsec/ike/transform"
)

// A fleet (several gateways sharing an address, their state in a store
// this package does not know) moves IKE SAs between engines: the member
// that served them exports them with their CHILD_SAs' keys
// (Config.CheckpointChildKeys), and when it fails another one takes them
// over (TakeOver). Unlike a restart (Import), the SAs and policies are not
// in this box's dataplane: TakeOver installs them, with outbound sequence
// numbers past what the failed member can have sent. The IKE SA keeps its
// SPIs and keys; what the new member cannot know are the message IDs of
// the exchanges since the checkpoint, which RFC 6311 synchronises
// (mid_sync.go) where the peer announced support, and an IKE rekey
// replaces where it did not. A member that loses the address drops its
// IKE SAs without a word to the peer (Release).

// ErrNoChildKeys refuses a record whose CHILD_SAs were saved without
// their keys (the serving member ran without Config.CheckpointChildKeys):
// their SAs cannot be installed here.
var ErrNoChildKeys = errors.New("CHILD_SA saved without its keys")

// TakeOver imports IKE SAs another gateway served (a fleet's standby
// taking over): unlike Import, their SAs and policies are not in this
// box's dataplane, so it installs them (keys from ExportedChildSA.Keys;
// sequence numbers from seq, called with the SAID of each SA: out for an
// outbound SA, past what the failed gateway can have sent, in for an
// inbound one, the highest it received; seq nil starts them at 0), then
// resynchronises the IKE message IDs with RFC 6311 where the peer
// announced support (the IKE SA's SPIs stay), or rekeys the IKE SA where
// not. Unique IDs already in use are replaced by fresh ones; pool leases
// are taken back as Import does. IKEv1 records are not taken over. The
// records are checked as Import checks them; the state's keys are copied.
func (e *Engine) TakeOver(st EngineState, seq func(SAID) (out, in uint64)) []*ImportError {
	e.mu.Lock()
	defer e.unlock()
	if seq == nil {
		seq = func(SAID) (uint64, uint64) { return 0, 0 }
	}
	e.nextIKEID = max(e.nextIKEID, st.NextIKEID)
	e.nextChildID = max(e.nextChildID, st.NextChildID)
	// A fleet's records are per IKE SA, without the failed member's
	// counters: the IDs kept must not be handed out again (a rekeyed
	// CHILD_SA with its predecessor's unique ID is never seen to
	// complete).
	for i := range st.SAs {
		e.nextIKEID = max(e.nextIKEID, st.SAs[i].ID)
		for _, c := range st.SAs[i].Children {
			e.nextChildID = max(e.nextChildID, c.ID)
		}
	}
	for name, leases := range st.Pools {
		if p := e.pool(name); p == nil {
			infof(e.log, "leases of pool '%s' not taken over: no such pool", name)
		} else if err := p.Leases.Restore(leases); err != nil {
			infof(e.log, "leases of pool '%s' taken over in part: %v", name, err)
		}
	}
	bad2, _ := st.check()
	errs := importRecords(2, st.SAs, bad2, func(s ExportedIKESA) error { return e.takeOverSA(s, seq) }, (*ExportedIKESA).asIKESA)
	for i := range st.V1 {
		errs = append(errs, &ImportError{SA: st.V1[i].asIKESA(), Version: 1, Record: i + 1,
			Err: errors.New("IKEv1 SAs are not taken over")})
	}
	return errs
}

// checkTakeOver checks what TakeOver needs of a record beyond Import's
// checks: every CHILD_SA's keys, of the lengths its suite needs.
func checkTakeOver(s *ExportedIKESA) error {
	for _, cs := range s.Children {
		if cs.Keys == nil {
			return fmt.Errorf("%w: %s{%d}", ErrNoChildKeys, cs.Name, cs.ID)
		}
		if err := cs.Suite.CheckKeys(cs.Keys.In); err != nil {
			return badRecord("CHILD_SA %s{%d}: inbound SA: %v", cs.Name, cs.ID, err)
		}
		if err := cs.Suite.CheckKeys(cs.Keys.Out); err != nil {
			return badRecord("CHILD_SA %s{%d}: outbound SA: %v", cs.Name, cs.ID, err)
		}
	}
	return nil
}

func (e *Engine) takeOverSA(s ExportedIKESA, seq func(SAID) (out, in uint64)) error {
	sa, spi, err := e.ikeSAFromRecord(&s, func([]ExportedChildSA) error { return checkTakeOver(&s) }, true)
	if err != nil {
		return err
	}
	c := sa.conn
	if s.PeerMIDSync {
		// Past what the failed member can have used since the
		// checkpoint; the synchronisation takes the peer's larger
		// values where they are.
		sa.tm.nextID, sa.tm.expectID = s.NextMessageID+midSyncMargin, s.ExpectMessageID+midSyncMargin
	} else {
		// As saved: the IKE rekey that follows needs the ID the peer
		// expects, which is this one unless the failed member completed
		// an exchange after its checkpoint.
		sa.tm.nextID, sa.tm.expectID = s.NextMessageID, s.ExpectMessageID
		for _, r := range s.LastResponse {
			sa.tm.response = append(sa.tm.response, cloneBytes(r))
		}
	}
	e.putSA(spi, sa)
	sa.establishedAt = s.EstablishedAt
	sa.established()
	// Before the policies, whose routes use them as their source.
	sa.installVIPs(true)
	installed := 0
	for _, cs := range s.Children {
		if err := sa.takeOverChild(c, cs, seq); err != nil {
			infof(sa.log, "unable to install CHILD_SA %s{%d} taken over: %v", cs.Name, cs.ID, err)
			continue
		}
		installed++
	}
	sa.takeBackAccounting(s.Accounting)
	infof(sa.log, "IKE_SA %s taken over, established between %s, %d CHILD_SAs", sa.name(), sa.ends(), installed)
	if s.PeerMIDSync {
		// Before anything else goes out (RFC 6311 section 4.2).
		sa.tm.queued = append([]task{newMIDSync(sa)}, sa.tm.queued...)
		sa.tm.initiate()
	} else {
		infof(sa.log, "peer did not announce %v, rekeying IKE_SA %s", "IKEV2_MESSAGE_ID_SYNC_SUPPORTED", sa.name())
		sa.rekey()
	}
	return nil
}

// takeOverChild installs a CHILD_SA of a record taken over: inbound SA,
// outbound SA, policies, with a reqid of this box (the failed member's
// may name other policies here).
func (sa *ikeSA) takeOverChild(c *connection, cs ExportedChildSA, seq func(SAID) (out, in uint64)) error {
	e := sa.e
	cfg := childConfigNamed(c, cs.Name)
	id := cs.ID
	if _, err := e.childSA(id); err == nil || e.v1ChildByID(id) != nil {
		e.nextChildID++
		id = e.nextChildID
	}
	ch := &childSA{kernelChild: kernelChild[*ikeSA]{ike: sa, cfg: cfg, id: id, state: ChildSAInstalling,
		spiIn: cs.SPIIn, spiOut: cs.SPIOut, suite: cs.Suite, mode: cs.Mode,
		localTS: slices.Clone(cs.LocalTS), remoteTS: slices.Clone(cs.RemoteTS)},
		proposal: cs.Proposal}
	ch.setSAOptions()
	ch.encap = cs.Keys.Encap
	if elapsed := e.clock.Now().Sub(cs.InstalledAt); !cs.InstalledAt.IsZero() && elapsed > 0 {
		// Rekey when the failed member would have.
		ch.lifetime.SoftTime = max(ch.lifetime.SoftTime-elapsed, time.Second)
	}
	sa.addChild(ch)
	in, out := cloneSAKeys(cs.Keys.In), cloneSAKeys(cs.Keys.Out)
	defer func() { clear(in.Encr); clear(in.Integ); clear(out.Encr); clear(out.Integ) }()
	ch.keepKeys(in, out)
	ch.acquireReqid()
	_, inSeq := seq(ch.inboundID())
	outSeq, _ := seq(ch.outboundID())
	if ch.suite.ESN != transform.ESN && (outSeq > math.MaxUint32 || inSeq > math.MaxUint32) {
		// 32-bit sequence numbers run out past there: the SA is
		// installed at their end and replaced at once.
		infof(sa.log, "CHILD_SA %s{%d} taken over at the end of its sequence numbers, rekeying it", cs.Name, cs.ID)
		outSeq, inSeq = min(outSeq, math.MaxUint32), min(inSeq, math.MaxUint32)
		ch.lifetime.SoftTime = time.Second
	}
	fail := func(part string, err error) error {
		ch.setState(ChildSADestroying)
		ch.removeSAs(false)
		sa.removeChild(ch)
		return fmt.Errorf("%s: %w", part, err)
	}
	if err := ch.addSAAt(true, in, inSeq); err != nil {
		return fail("inbound SA", err)
	}
	if err := ch.addSAAt(false, out, outSeq); err != nil {
		return fail("outbound SA", err)
	}
	if err := ch.addPolicies(); err != nil {
		return fail("policies", err)
	}
	ch.installedAt = cs.InstalledAt
	if ch.installedAt.IsZero() {
		ch.installedAt = e.clock.Now()
	}
	ch.setState(ChildSAInstalled)
	ch.scheduleRekey()
	infof(sa.log, "CHILD_SA %s taken over with SPIs %.8x_i %.8x_o (out seq %d, in seq %d) and TS %s === %s",
		ch.name(), ch.spiIn, ch.spiOut, outSeq, inSeq, formatTS(ch.localTS), formatTS(ch.remoteTS))
	return nil
}

// Release drops the IKE SAs whose local address match says, without a
// word to the peer, and removes their SAs and policies from this box's
// dataplane (another gateway serves them now). It returns what it
// dropped (the established ones, as Export has them, keys included: Zero
// it when done). No accounting Stop is sent: the session goes on where
// the IKE SAs are taken over. IKEv1 SAs stay.
func (e *Engine) Release(match func(local netip.Addr) bool) EngineState {
	e.mu.Lock()
	defer e.unlock()
	st := EngineState{NextIKEID: e.nextIKEID, NextChildID: e.nextChildID, NextReqID: e.reqids.next}
	for _, sa := range e.allSAs() {
		if sa.state == IKESADestroying || !match(sa.local.Addr()) {
			continue
		}
		if sa.exportable() {
			st.SAs = append(st.SAs, sa.export())
		}
		infof(sa.log, "IKE_SA %s released, another gateway serves %s now", sa.name(), sa.local.Addr())
		sa.afterDestroy = nil // nothing restarts here
		if acct := sa.acct; acct != nil {
			// The session goes on where the IKE SA is taken over: no
			// Stop record from here.
			acct.stopTimer()
			sa.acct = nil
		}
		sa.destroy()
	}
	return st
}
