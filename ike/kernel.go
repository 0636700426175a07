package ike

import (
	"encoding/binary"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/xdpsec/xdpsec/ike/transform"
)

// The kernel layer: what a CHILD_SA of either version puts into the
// Dataplane and takes out of it. IKEv2's childSA and IKEv1's v1Child
// embed a kernelChild; when each part goes in (a rekey responder holds
// its outbound SA back, an IKEv1 Quick Mode responder installs its
// inbound SA with QM2 and the rest on HASH(3)), timers and rekeying stay
// in the version's files.
//
// The parts go in in this order: the inbound SA, so that what the peer
// sends as soon as it has its outbound SA is taken; the outbound SA; then
// the policies, which send traffic into the outbound SA and would drop it
// (or trigger an acquire) while that SA is missing. They go out in the
// same order: the SAs, then the policies with their last user.

// anyIKESA is an IKE SA of either version: *ikeSA or *v1SA.
type anyIKESA interface {
	common() *ikeSACommon
}

// kernelChild is a CHILD_SA as the dataplane sees it: a pair of ESP or AH SAs
// and the policies they share with other CHILD_SAs of the same selectors
// (reqidTable). Guarded by the engine lock.
type kernelChild[S anyIKESA] struct {
	ike   S
	cfg   *childConfig
	id    uint32 // unique ID, the {1} in logs
	state ChildSAState

	spiIn, spiOut     uint32
	mode              Mode
	suite             transform.ChildSuite
	localTS, remoteTS []TrafficSelector
	// lifetime is what the SAs are installed with. Without outSoftTime the
	// outbound SA has no soft time limit: the inbound SA's soft expiry
	// alone triggers the rekey (IKEv2 without rand_time, as charon).
	lifetime Lifetime

	reqid *reqidEntry // from acquireReqid until releaseReqid
	// The flags side by side: a CHILD_SA is some 300 bytes, and apart
	// each would take eight.
	encap                     bool // ESP in UDP (NAT-T, RFC 3948)
	outSoftTime               bool
	inInstalled, outInstalled bool
	// downSent: the Observer was told it went. rekeyed (IKEv2) is set
	// once another CHILD_SA replaced this one: its inbound SA then
	// outlives it by DeleteRekeyedDelay.
	downSent, rekeyed bool
	// heldOut are the keys of an outbound SA held back (holdOutbound),
	// nil when none is.
	heldOut     *transform.SAKeys
	installedAt time.Time
	// inboundAt is when the inbound SA went in.
	inboundAt time.Time
	// keyCopy are the keys of both SAs, kept with
	// Config.CheckpointChildKeys for the exported state (a fleet member
	// taking over installs them); nil otherwise, zeroed when the SAs go.
	keyCopy *keyCopy
}

// keyCopy is a CHILD_SA's keys kept beside the dataplane's.
type keyCopy struct{ in, out transform.SAKeys }

func cloneSAKeys(k transform.SAKeys) transform.SAKeys {
	return transform.SAKeys{Encr: slices.Clone(k.Encr), Integ: slices.Clone(k.Integ)}
}

// keepKeys keeps a copy of the keys when the engine checkpoints them:
// IKEv2 CHILD_SAs only, the ones a fleet member takes over.
func (k *kernelChild[S]) keepKeys(in, out transform.SAKeys) {
	if _, v2 := any(k.ike).(*ikeSA); !v2 || !k.sa().e.cfg.CheckpointChildKeys {
		return
	}
	k.dropKeys()
	k.keyCopy = &keyCopy{in: cloneSAKeys(in), out: cloneSAKeys(out)}
}

// dropKeys zeroes and forgets the copy of the keys.
func (k *kernelChild[S]) dropKeys() {
	if c := k.keyCopy; c != nil {
		clear(c.in.Encr)
		clear(c.in.Integ)
		clear(c.out.Encr)
		clear(c.out.Integ)
		k.keyCopy = nil
	}
}

// exportKeys are copies of the keys for the exported state (with shared,
// the keys themselves: see ikeSA.exportTo), nil without.
func (k *kernelChild[S]) exportKeys(shared bool) *ExportedChildKeys {
	if k.keyCopy == nil {
		return nil
	}
	if shared {
		return &ExportedChildKeys{In: k.keyCopy.in, Out: k.keyCopy.out, Encap: k.encap}
	}
	return &ExportedChildKeys{In: cloneSAKeys(k.keyCopy.in), Out: cloneSAKeys(k.keyCopy.out), Encap: k.encap}
}

func (k *kernelChild[S]) name() string { return fmt.Sprintf("%s{%d}", k.cfg.Name, k.id) }

func (k *kernelChild[S]) sa() *ikeSACommon { return k.ike.common() }

// ifIDs are the XFRM interface IDs of the child config: the inbound SA
// and policies carry in, the outbound ones out.
func (k *kernelChild[S]) ifIDs() (in, out uint32) { return k.cfg.IfIDIn, k.cfg.IfIDOut }

func (k *kernelChild[S]) inboundID() SAID {
	return SAID{Dst: k.sa().local.Addr(), SPI: k.spiIn, Proto: k.proto()}
}

func (k *kernelChild[S]) outboundID() SAID {
	return SAID{Dst: k.sa().remote.Addr(), SPI: k.spiOut, Proto: k.proto()}
}

// proto is the protocol of the CHILD_SA's SAs: the negotiated one once
// there is a suite, the configured one before (an allocated SPI).
func (k *kernelChild[S]) proto() SAProto {
	if k.suite.AH || (k.suite == transform.ChildSuite{} && k.cfg.proto() == SAProtoAH) {
		return SAProtoAH
	}
	return SAProtoESP
}

// childWhere returns the first of a list of CHILD_SAs (of either version)
// that match takes, or nil.
func childWhere[C *childSA | *v1Child](children []C, match func(C) bool) C {
	if i := slices.IndexFunc(children, match); i >= 0 {
		return children[i]
	}
	var none C
	return none
}

// allocateSPI reserves the inbound SPI of a CHILD_SA being negotiated on
// the IKE SA.
func (sa *ikeSACommon) allocateSPI(proto SAProto) (uint32, error) {
	return sa.e.cfg.Dataplane.AllocateSPI(proto, sa.remote.Addr(), sa.local.Addr())
}

// releaseSPI gives back an inbound SPI no SA was installed with.
func (sa *ikeSACommon) releaseSPI(proto SAProto, spi uint32) {
	_ = sa.e.cfg.Dataplane.DeleteSA(SAID{Dst: sa.local.Addr(), SPI: spi, Proto: proto})
}

// lastUsed is when one of the CHILD_SA's SAs last carried a packet (zero
// if never, or not known).
func (k *kernelChild[S]) lastUsed(inbound bool) time.Time {
	id := k.outboundID()
	if inbound {
		id = k.inboundID()
	}
	st, err := k.sa().e.cfg.Dataplane.QuerySA(id)
	if err != nil {
		return time.Time{}
	}
	return st.LastUsed
}

// esp is one of the CHILD_SA's SAs (ESP or AH), with these keys (none
// for UpdateSA).
func (k *kernelChild[S]) esp(inbound bool, keys transform.SAKeys) *SA {
	sa := k.sa()
	ifIn, ifOut := k.ifIDs()
	s := &SA{
		Inbound: inbound, Mode: k.mode, ESN: k.suite.ESN == transform.ESN,
		Encr: k.suite.Encr, EncrBits: k.suite.EncrKeyBits, EncrKey: keys.Encr,
		Integ: k.suite.Integ, IntegKey: keys.Integ,
		Lifetime: k.lifetime,
		ReqID:    k.reqID(),
		Offload:  k.cfg.HWOffload,
	}
	if inbound {
		s.SAID, s.Src, s.Replay, s.IfID = k.inboundID(), sa.remote.Addr(), k.cfg.ReplayWindow, ifIn
	} else {
		s.SAID, s.Src, s.IfID = k.outboundID(), sa.local.Addr(), ifOut
		if s.ESN {
			// The kernel keeps an ESN SA's 64-bit counters in its replay
			// state, which it refuses with a window of 0 also for an
			// outbound SA (as charon, the configured window goes in).
			s.Replay = k.cfg.ReplayWindow
		}
		if !k.outSoftTime {
			s.Lifetime.SoftTime = 0
		}
	}
	if k.encap && inbound {
		s.Encap = &Encap{SrcPort: sa.remote.Port(), DstPort: sa.local.Port()}
	} else if k.encap {
		s.Encap = &Encap{SrcPort: sa.local.Port(), DstPort: sa.remote.Port()}
	}
	if k.mode == ModeTransport {
		s.Selectors = append(append([]TrafficSelector(nil), k.localTS...), k.remoteTS...)
	}
	return s
}

// installSAs takes the CHILD_SA's reqid and installs its inbound SA, its
// outbound SA (unless holdOut: holdOutbound keeps it back) and the
// policies, in this order. On failure it names the part that failed;
// what went in before stays for removeSAs.
func (k *kernelChild[S]) installSAs(in, out transform.SAKeys, holdOut bool) (part string, err error) {
	k.keepKeys(in, out)
	k.acquireReqid()
	if err := k.addSA(true, in); err != nil {
		return "inbound SA", err
	}
	if holdOut {
		k.holdOutbound(out)
	} else if err := k.addSA(false, out); err != nil {
		return "outbound SA", err
	}
	if err := k.addPolicies(); err != nil {
		return "policies", err
	}
	return "", nil
}

// addSA installs the inbound or the outbound SA and zeroes its keys:
// the dataplane has copied what it keeps. The reqid comes first
// (acquireReqid): the SAs carry the policies' reqid.
func (k *kernelChild[S]) addSA(inbound bool, keys transform.SAKeys) error {
	return k.addSAAt(inbound, keys, 0)
}

// addSAAt is addSA with an initial sequence number: the outbound SA's
// next packet gets seq+1, the inbound SA's window ends at seq (an SA a
// fleet member takes over, takeover.go).
func (k *kernelChild[S]) addSAAt(inbound bool, keys transform.SAKeys, seq uint64) error {
	s := k.esp(inbound, keys)
	defer zeroSAKeys(s)
	if inbound {
		s.InSeq = seq
	} else {
		s.OutSeq = seq
	}
	if err := k.sa().e.cfg.Dataplane.AddSA(s); err != nil {
		return err
	}
	if inbound {
		k.inInstalled = true
		k.inboundAt = k.sa().e.clock.Now()
	} else {
		k.outInstalled = true
	}
	// Recorded after the kernel has it (state_journal.go).
	k.sa().e.changed(k.sa(), true)
	return nil
}

func zeroSAKeys(s *SA) {
	clear(s.EncrKey)
	clear(s.IntegKey)
}

// holdOutbound keeps a copy of the outbound SA's keys until
// addHeldOutbound installs it, with the addresses of that moment.
func (k *kernelChild[S]) holdOutbound(keys transform.SAKeys) {
	k.dropHeldOutbound()
	k.heldOut = &transform.SAKeys{Encr: slices.Clone(keys.Encr), Integ: slices.Clone(keys.Integ)}
}

// addHeldOutbound installs the outbound SA held back; there must be one.
func (k *kernelChild[S]) addHeldOutbound() error {
	keys := k.heldOut
	k.heldOut = nil
	defer func() { clear(keys.Encr); clear(keys.Integ) }()
	return k.addSA(false, *keys)
}

// dropHeldOutbound forgets (and zeroes) the keys of an outbound SA held
// back that will not be installed.
func (k *kernelChild[S]) dropHeldOutbound() {
	if keys := k.heldOut; keys != nil {
		clear(keys.Encr)
		clear(keys.Integ)
		k.heldOut = nil
	}
}

// addPolicies installs the policies of the CHILD_SA's reqid for their
// first user: out, in and (in tunnel mode) fwd for every pair of a local
// and a remote selector of the same address family. It tries them all
// and reports every failure.
func (k *kernelChild[S]) addPolicies() error {
	r := k.reqid
	if r.pols.installed() {
		return nil
	}
	sa := k.sa()
	ifIn, ifOut := k.ifIDs()
	r.pols = newPolicySet(k.localTS, k.remoteTS, sa.local.Addr(), sa.remote.Addr(), k.mode, k.proto(), ifIn, ifOut, sa.routeSrc)
	return addPolicyList(sa.e.cfg.Dataplane, r.policyList())
}

// policySet is what a reqid's policies are made from, kept instead of
// the policies themselves: a tenth of their size (out, in and fwd policy
// of 200 bytes each per pair of selectors, for each of 100,000 CHILD_SAs),
// and the policies are needed again only to move or delete them.
type policySet struct {
	localTS, remoteTS []TrafficSelector
	local, remote     netip.Addr
	// routeSrc are the outbound policies' RouteSrc by local selector; nil
	// where none has one.
	routeSrc    []netip.Addr
	mode        Mode
	proto       SAProto
	ifIn, ifOut uint32
	n           int // policies it makes
}

// newPolicySet keeps the selector lists it is given, not copies: a
// CHILD_SA's and a trap's lists are replaced, never changed in place.
func newPolicySet(localTS, remoteTS []TrafficSelector, local, remote netip.Addr, mode Mode, proto SAProto, ifIn, ifOut uint32,
	routeSrc func(TrafficSelector) netip.Addr) *policySet {
	s := &policySet{localTS: localTS, remoteTS: remoteTS, local: local, remote: remote,
		mode: mode, proto: proto, ifIn: ifIn, ifOut: ifOut}
	if routeSrc != nil {
		for i, l := range localTS {
			if a := routeSrc(l); a.IsValid() {
				if s.routeSrc == nil {
					s.routeSrc = make([]netip.Addr, len(localTS))
				}
				s.routeSrc[i] = a
			}
		}
	}
	per := 2 // out and in, and fwd in tunnel mode
	if mode == ModeTunnel {
		per = 3
	}
	for _, l := range localTS {
		for _, rm := range remoteTS {
			if l.Start.Is4() == rm.Start.Is4() {
				s.n += per
			}
		}
	}
	return s
}

// installed says whether the set makes any policy (nil: none made yet).
func (s *policySet) installed() bool { return s != nil && s.n > 0 }

// list makes the policies, for a reqid.
func (s *policySet) list(reqid uint32) []*Policy {
	if s == nil {
		return nil
	}
	var routeSrc func(TrafficSelector) netip.Addr
	if s.routeSrc != nil {
		routeSrc = func(l TrafficSelector) netip.Addr {
			if i := slices.Index(s.localTS, l); i >= 0 {
				return s.routeSrc[i]
			}
			return netip.Addr{}
		}
	}
	return policiesFor(s.localTS, s.remoteTS, s.local, s.remote, s.mode, s.proto, reqid, s.ifIn, s.ifOut, routeSrc)
}

// policyList are the entry's policies (none before the first user
// installed them).
func (r *reqidEntry) policyList() []*Policy { return r.pols.list(r.reqid) }

// policiesFor are the policies of a pair of selector lists: out, in and
// (in tunnel mode) fwd for every pair of a local and a remote selector of
// the same address family, with local and remote as the template's
// outer addresses. routeSrc (nil for none) gives an outbound policy's
// RouteSrc.
func policiesFor(localTS, remoteTS []TrafficSelector, local, remote netip.Addr, mode Mode, proto SAProto, reqid, ifIn, ifOut uint32,
	routeSrc func(TrafficSelector) netip.Addr) []*Policy {
	var out []*Policy
	for _, l := range localTS {
		for _, rm := range remoteTS {
			if l.Start.Is4() != rm.Start.Is4() {
				continue
			}
			o := &Policy{Dir: DirOut, Src: l, Dst: rm, TmplSrc: local, TmplDst: remote, Proto: proto, Mode: mode, ReqID: reqid, IfID: ifOut}
			if routeSrc != nil {
				o.RouteSrc = routeSrc(l)
			}
			out = append(out, o,
				&Policy{Dir: DirIn, Src: rm, Dst: l, TmplSrc: remote, TmplDst: local, Proto: proto, Mode: mode, ReqID: reqid, IfID: ifIn})
			if mode == ModeTunnel {
				out = append(out,
					&Policy{Dir: DirFwd, Src: rm, Dst: l, TmplSrc: remote, TmplDst: local, Proto: proto, Mode: mode, ReqID: reqid, IfID: ifIn})
			}
		}
	}
	return out
}

// addPolicyList installs policies, trying them all and reporting every
// failure.
func addPolicyList(dp Dataplane, policies []*Policy) error {
	var errs []string
	for _, p := range policies {
		if err := dp.AddPolicy(p); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

// takeBack registers a CHILD_SA Import takes back, whose SAs are in the
// dataplane still, under the reqid they were installed with, and adds
// its policies again.
func (k *kernelChild[S]) takeBack(reqid uint32) {
	k.inInstalled, k.outInstalled = true, true
	k.reqid = k.sa().e.reqids.adopt(k.reqidKey(), reqid, k.cfg.Reqid)
	if err := k.addPolicies(); err != nil {
		infof(k.sa().log, "CHILD_SA %s: taking back its policies failed: %v", k.name(), err)
	}
}

// updateAddresses follows a changed NAT mapping in the installed SAs; an
// outbound SA held back gets the new addresses when it is installed.
func (k *kernelChild[S]) updateAddresses() {
	if k.state != ChildSAInstalled && k.state != ChildSARekeying {
		return
	}
	sa := k.sa()
	dp := sa.e.cfg.Dataplane
	sa.e.changed(sa, true)
	if err := dp.UpdateSA(k.esp(true, transform.SAKeys{})); err != nil {
		infof(sa.log, "updating inbound SA of CHILD_SA %s failed: %v", k.name(), err)
	}
	if k.heldOut != nil {
		return
	}
	if err := dp.UpdateSA(k.esp(false, transform.SAKeys{})); err != nil {
		infof(sa.log, "updating outbound SA of CHILD_SA %s failed: %v", k.name(), err)
	}
}

// migrate moves the installed SAs and the policies of a CHILD_SA from the
// outer addresses they were installed with to the IKE SA's, with the UDP
// encapsulation its NAT state asks for (MOBIKE): SPIs, replay state and
// counters stay. An outbound SA held back gets the new addresses when it
// is installed. The policies move once, with the first user of their
// reqid; the reqid stays.
func (k *kernelChild[S]) migrate(oldLocal, oldRemote netip.AddrPort) {
	if k.state != ChildSAInstalled && k.state != ChildSARekeying && k.state != ChildSARekeyed {
		return
	}
	sa := k.sa()
	dp := sa.e.cfg.Dataplane
	sa.e.changed(sa, true)
	k.encap = sa.useNATT() && k.proto() != SAProtoAH // AH is closed behind a NAT (closeAHBehindNAT)
	if k.inInstalled {
		if err := dp.MigrateSA(SAID{Dst: oldLocal.Addr(), SPI: k.spiIn, Proto: k.proto()}, k.esp(true, transform.SAKeys{})); err != nil {
			infof(sa.log, "moving inbound SA %.8x of CHILD_SA %s failed: %v", k.spiIn, k.name(), err)
		}
	}
	if k.outInstalled && k.heldOut == nil {
		if err := dp.MigrateSA(SAID{Dst: oldRemote.Addr(), SPI: k.spiOut, Proto: k.proto()}, k.esp(false, transform.SAKeys{})); err != nil {
			infof(sa.log, "moving outbound SA %.8x of CHILD_SA %s failed: %v", k.spiOut, k.name(), err)
		}
	}
	r := k.reqid
	if r == nil {
		return
	}
	local, remote := sa.local.Addr(), sa.remote.Addr()
	if r.pols != nil && (r.pols.local != local || r.pols.remote != remote) {
		for _, p := range r.policyList() {
			np := *p
			if p.Dir == DirOut {
				np.TmplSrc, np.TmplDst = local, remote
			} else {
				np.TmplSrc, np.TmplDst = remote, local
			}
			if err := dp.MigratePolicy(p, &np); err != nil {
				infof(sa.log, "moving policy %s === %s %s failed: %v", p.Src, p.Dst, p.Dir, err)
			}
		}
		r.pols.local, r.pols.remote = local, remote
	}
	sa.e.reqids.rekey(r, k.reqidKey())
}

// removeSAs takes the CHILD_SA's SAs out of the dataplane (an allocated
// inbound SPI too) and drops its hold on the policies. The inbound SA of
// a CHILD_SA that another one replaced goes DeleteRekeyedDelay later
// (retire), unless the IKE SA goes with it.
func (k *kernelChild[S]) removeSAs(replaced bool) {
	sa := k.sa()
	dp := sa.e.cfg.Dataplane
	if k.inInstalled || k.outInstalled {
		// The record without this CHILD_SA goes out before its SAs leave
		// the kernel: a restart never takes back SAs that are gone.
		sa.e.saveNow(sa)
	}
	k.dropHeldOutbound()
	k.dropKeys()
	if k.reqid != nil && len(k.reqid.waiting) > 0 {
		k.reqid.overlapEnds(k)
	}
	if k.spiIn != 0 {
		id := k.inboundID()
		if replaced && k.inInstalled && sa.state != IKESADestroying && sa.e.cfg.DeleteRekeyedDelay > 0 {
			sa.e.retire(id, sa.log)
		} else if err := dp.DeleteSA(id); err != nil && k.inInstalled {
			// Also releases an SPI allocated for a CHILD_SA never installed.
			infof(sa.log, "unable to delete inbound SA %.8x: %v", k.spiIn, err)
		}
	}
	if k.outInstalled {
		if err := dp.DeleteSA(k.outboundID()); err != nil {
			infof(sa.log, "unable to delete outbound SA %.8x: %v", k.spiOut, err)
		}
	}
	k.releaseReqid()
}

// noteOwned adds what the CHILD_SA holds, unless it is going, to the
// panic safety net's counts (safetynet.go).
func (k *kernelChild[S]) noteOwned(owned map[SAID]bool, users map[*reqidEntry]int) {
	if k.state == ChildSADestroying {
		return
	}
	owned[k.inboundID()] = true
	owned[k.outboundID()] = true
	if k.reqid != nil {
		users[k.reqid]++
	}
}

// retire removes an inbound SA of a deleted rekeyed CHILD_SA after
// DeleteRekeyedDelay: the peer may have sent on it until it received our
// DELETE (or sent its own), and those packets are still on their way.
func (e *Engine) retire(id SAID, log *slog.Logger) {
	if t := e.retired[id]; t != nil {
		t.Stop()
	}
	e.retired[id] = e.afterFunc(e.cfg.DeleteRekeyedDelay, func() {
		delete(e.retired, id)
		if err := e.cfg.Dataplane.DeleteSA(id); err != nil {
			infof(log, "unable to delete inbound SA %.8x: %v", id.SPI, err)
		}
	})
}

// removeRetired removes the retired inbound SAs at once (the engine
// stops).
func (e *Engine) removeRetired() {
	for id, t := range e.retired {
		t.Stop()
		delete(e.retired, id)
		if err := e.cfg.Dataplane.DeleteSA(id); err != nil {
			infof(e.log, "unable to delete inbound SA %.8x: %v", id.SPI, err)
		}
	}
}

// reqidTable hands out reqids and owns the policies, as charon's kernel
// interface does: CHILD_SAs of either IKE version with the same child
// name, selectors, outer addresses, interface IDs and mode share a reqid
// and its policies, so that a rekeyed CHILD_SA takes over the policies of
// the one it replaces (make-before-break) and they are removed with the
// last user.
type reqidTable struct {
	byKey map[string]*reqidEntry
	next  uint32 // the last reqid handed out
}

type reqidEntry struct {
	key   string
	reqid uint32
	refs  int
	pols  *policySet // nil until the first user installs the policies
	// waiting are CHILD_SAs that hold their outbound SA back while
	// another user of the policies is there (holdUntilOverlapEnds): each
	// installs it when another user starts to go, before that one's SAs
	// are deleted, so that the policies always have an outbound SA.
	waiting []overlapWaiter
}

type overlapWaiter struct {
	owner   any // the waiting CHILD_SA
	install func()
}

// overlapEnds runs the waiters of the entry other than the user that
// goes, once.
func (r *reqidEntry) overlapEnds(going any) {
	var keep []overlapWaiter
	var run []func()
	for _, w := range r.waiting {
		if w.owner == going {
			continue // it goes itself: nothing to install
		}
		run = append(run, w.install)
	}
	r.waiting = keep
	for _, f := range run {
		f()
	}
}

func (k *kernelChild[S]) reqidKey() string {
	sa := k.sa()
	ifIn, ifOut := k.ifIDs()
	return reqidKeyOf(k.cfg.Name, k.localTS, k.remoteTS, sa.local.Addr(), sa.remote.Addr(), ifIn, ifOut, k.mode, k.proto())
}

// reqidKeyOf is what CHILD_SAs (and trap policies) that share a reqid
// have in common.
// It is a map key only, never shown: a binary encoding, built in one
// buffer (formatted as text it took some fifty allocations per CHILD_SA
// established, a tenth of a responder's).
func reqidKeyOf(child string, localTS, remoteTS []TrafficSelector, local, remote netip.Addr, ifIn, ifOut uint32, mode Mode, proto SAProto) string {
	var buf [192]byte
	b := binary.AppendUvarint(buf[:0], uint64(len(child)))
	b = append(b, child...)
	for _, list := range [][]TrafficSelector{localTS, remoteTS} {
		b = binary.AppendUvarint(b, uint64(len(list)))
		for _, ts := range list {
			b = append(b, ts.Protocol)
			b = binary.BigEndian.AppendUint16(b, ts.StartPort)
			b = binary.BigEndian.AppendUint16(b, ts.EndPort)
			b = appendKeyAddr(b, ts.Start)
			b = appendKeyAddr(b, ts.End)
		}
	}
	b = appendKeyAddr(b, local.Unmap())
	b = appendKeyAddr(b, remote.Unmap())
	b = binary.BigEndian.AppendUint32(b, ifIn)
	b = binary.BigEndian.AppendUint32(b, ifOut)
	b = binary.AppendUvarint(b, uint64(mode))
	b = binary.AppendUvarint(b, uint64(proto))
	return string(b)
}

// appendKeyAddr appends a's binary form (0, 4 or 16 bytes and a zone)
// after its length, so that keys of different addresses never collide.
func appendKeyAddr(b []byte, a netip.Addr) []byte {
	n := len(b)
	b = append(b, 0)
	b, _ = a.AppendBinary(b)
	b[n] = byte(len(b) - n - 1)
	return b
}

// reqID is the reqid the CHILD_SA's SAs carry, 0 while it has none.
func (k *kernelChild[S]) reqID() uint32 {
	if k.reqid == nil {
		return 0
	}
	return k.reqid.reqid
}

// acquireReqid makes the CHILD_SA a user of its selectors' reqid: the
// configured one or a new one for the first.
func (k *kernelChild[S]) acquireReqid() {
	k.reqid = k.sa().e.reqids.acquire(k.reqidKey(), k.cfg.Reqid)
}

// releaseReqid drops the CHILD_SA's use of its reqid.
func (k *kernelChild[S]) releaseReqid() {
	if k.reqid != nil {
		sa := k.sa()
		sa.e.reqids.release(k.reqid, sa.e.cfg.Dataplane, sa.log)
		k.reqid = nil
	}
}

// acquire counts one more user of the entry of key, made for the first
// with reqid (0: the next free one).
func (t *reqidTable) acquire(key string, reqid uint32) *reqidEntry {
	r := t.byKey[key]
	if r == nil {
		if reqid == 0 {
			t.next++
			reqid = t.next
		}
		r = &reqidEntry{key: key, reqid: reqid}
		t.byKey[key] = r
	}
	r.refs++
	return r
}

// users counts the CHILD_SAs that use the entry of key.
func (t *reqidTable) users(key string) int {
	if r := t.byKey[key]; r != nil {
		return r.refs
	}
	return 0
}

// adopt is acquire for a CHILD_SA taken back, whose SAs carry the reqid
// saved (0 in an IKEv1 record without one: the configured one, else a
// new one). No reqid handed out later may be one of those.
func (t *reqidTable) adopt(key string, saved, configured uint32) *reqidEntry {
	reqid := saved
	if reqid == 0 {
		reqid = configured
	}
	r := t.acquire(key, reqid)
	t.next = max(t.next, saved, r.reqid)
	return r
}

// rekey files an entry under a new key (its CHILD_SAs moved, MOBIKE);
// an entry there already keeps the key.
func (t *reqidTable) rekey(r *reqidEntry, key string) {
	if r.key == key {
		return
	}
	if t.byKey[r.key] == r {
		delete(t.byKey, r.key)
	}
	r.key = key
	if t.byKey[key] == nil {
		t.byKey[key] = r
	}
}

// release drops a user of an entry; the last one takes the policies out
// of the dataplane.
func (t *reqidTable) release(r *reqidEntry, dp Dataplane, log *slog.Logger) {
	r.refs--
	if r.refs > 0 {
		return
	}
	for _, p := range r.policyList() {
		if err := dp.DeletePolicy(p); err != nil {
			debugf(log, "unable to delete policy %s === %s %s: %v", p.Src, p.Dst, p.Dir, err)
		}
	}
	if t.byKey[r.key] == r {
		delete(t.byKey, r.key)
	}
}
