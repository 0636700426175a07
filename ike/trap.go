package ike

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"time"
)

// Trap policies, as charon's trap manager has them (swanctl --install,
// start_action = trap): a child config's policies go into the dataplane
// without SAs, so that the kernel asks for SAs (an XFRM acquire) when
// traffic matches them. The daemon hears the acquire and calls Acquire,
// which initiates the CHILD_SA; the negotiated CHILD_SA, having the same
// selectors, addresses and mode, shares the trap's reqid and its
// policies (reqidTable), so its SAs take the traffic at once. When the
// CHILD_SA goes, the trap's hold keeps the policies, and the next packet
// asks again. Uninstall drops that hold.
//
// The engine knows nothing of how acquires arrive: the daemon reads them
// from the kernel and hands over the reqid of the policy's template.

// ErrNoTrap is returned for a trap (or an acquire's reqid) not installed.
var ErrNoTrap = errors.New("ike: no trap policy installed")

// acquireHold is how long an initiation for an acquire stands for the
// acquires that follow while its IKE SA lives: the kernel's larval
// state also waits this long (XFRM_ACQ_EXPIRES) before asking again.
const acquireHold = 30 * time.Second

// trap is an installed trap: a child config's policies held by reqid.
type trap struct {
	conn, child       string
	cfg               *childConfig
	local, remote     netip.Addr
	localTS, remoteTS []TrafficSelector
	reqid             *reqidEntry
	// pending is the IKE SA initiated for the last acquire, 0 for none,
	// and when that was.
	pending   uint32
	pendingAt time.Time
}

// TrapInfo describes an installed trap policy (swanctl --list-pols).
type TrapInfo struct {
	Conn, Child       string
	Mode              Mode
	ReqID             uint32
	Local, Remote     netip.Addr
	LocalTS, RemoteTS []TrafficSelector
}

func trapKey(conn, child string) string { return conn + "/" + child }

// Install installs the trap policies of a child config (swanctl
// --install). conn may be empty: the first connection with a child of
// that name. A trap of the same child installed already is no error.
// The connection must name the peer (remote_addrs) and the dataplane
// must take the policies.
func (e *Engine) Install(conn, child string) error {
	e.mu.Lock()
	defer e.unlock()
	if e.closed {
		return ErrClosed
	}
	c, cc, err := e.childConfigNamed(conn, child)
	if err != nil {
		return err
	}
	return e.installTrap(c, cc)
}

// installTrap installs the trap of a child config of c, replacing one of
// the same child whose policies differ.
func (e *Engine) installTrap(c *connection, cc *childConfig) error {
	local, remote, err := e.initiatorEnds(c)
	if err != nil {
		return fmt.Errorf("installing trap for CHILD_SA %s failed: %w", cc.Name, err)
	}
	if !local.Addr().IsValid() {
		return fmt.Errorf("installing trap for CHILD_SA %s failed: no local address towards %s", cc.Name, remote.Addr())
	}
	t := &trap{conn: c.Name, child: cc.Name, cfg: cc, local: local.Addr().Unmap(), remote: remote.Addr().Unmap()}
	t.localTS = resolveTS(cc.LocalTS, t.local)
	t.remoteTS = resolveTS(cc.RemoteTS, t.remote)
	rkey := reqidKeyOf(cc.Name, t.localTS, t.remoteTS, t.local, t.remote, cc.IfIDIn, cc.IfIDOut, cc.Mode, cc.proto())
	key := trapKey(c.Name, cc.Name)
	if old := e.traps[key]; old != nil {
		if old.reqid.key == rkey && old.cfg.Reqid == cc.Reqid {
			old.cfg = cc // the same policies (a reload)
			return nil
		}
		// Reloaded with other selectors or addresses: the old trap goes
		// first.
		e.uninstallTrap(key, old)
	}
	t.reqid = e.reqids.acquire(rkey, cc.Reqid)
	if !t.reqid.pols.installed() {
		t.reqid.pols = newPolicySet(t.localTS, t.remoteTS, t.local, t.remote, cc.Mode, cc.proto(), cc.IfIDIn, cc.IfIDOut, nil)
		if err := addPolicyList(e.cfg.Dataplane, t.reqid.policyList()); err != nil {
			e.reqids.release(t.reqid, e.cfg.Dataplane, e.log)
			return fmt.Errorf("installing trap for CHILD_SA %s failed: %w", cc.Name, err)
		}
	}
	if e.traps == nil {
		e.traps = map[string]*trap{}
	}
	e.traps[key] = t
	infof(e.log, "installed trap policy for CHILD_SA %s with reqid {%d}: %s === %s", cc.Name, t.reqid.reqid,
		formatTS(t.localTS), formatTS(t.remoteTS))

	return nil
}

// trapChildren installs the traps of the child configs whose action
// (dpd_action or close_action) is trap, as charon does for a peer found
// dead or closing: before their SAs go, so that the policies they share
// with the trap stay and traffic keeps matching them.
func (e *Engine) trapChildren(c *connection, cfgs []*childConfig, action func(*childConfig) Action, log *slog.Logger) {
	if c == nil {
		return
	}
	for _, cc := range cfgs {
		if action(cc)&ActionTrap == 0 {
			continue
		}
		if err := e.installTrap(c, cc); err != nil {
			log.Info(err.Error())
		}
	}
}

func dpdAction(cc *childConfig) Action   { return cc.DPDAction }
func closeAction(cc *childConfig) Action { return cc.CloseAction }

// Uninstall removes the trap of a child (swanctl --uninstall); conn may
// be empty. A CHILD_SA negotiated for it keeps its policies until it
// goes.
func (e *Engine) Uninstall(conn, child string) error {
	e.mu.Lock()
	defer e.unlock()
	for key, t := range e.traps {
		if t.child == child && (conn == "" || t.conn == conn) {
			e.uninstallTrap(key, t)
			return nil
		}
	}
	return fmt.Errorf("%w: CHILD_SA %s", ErrNoTrap, child)
}

func (e *Engine) uninstallTrap(key string, t *trap) {
	delete(e.traps, key)
	e.reqids.release(t.reqid, e.cfg.Dataplane, e.log)
	infof(e.log, "uninstalled trap policy for CHILD_SA %s with reqid {%d}", t.child, t.reqid.reqid)
}

// Traps lists the installed trap policies, by connection and child.
func (e *Engine) Traps() []TrapInfo {
	e.mu.Lock()
	defer e.unlock()
	out := make([]TrapInfo, 0, len(e.traps))
	for _, t := range e.traps {
		out = append(out, TrapInfo{Conn: t.conn, Child: t.child, Mode: t.cfg.Mode, ReqID: t.reqid.reqid,
			Local: t.local, Remote: t.remote, LocalTS: slices.Clone(t.localTS), RemoteTS: slices.Clone(t.remoteTS)})
	}
	slices.SortFunc(out, func(a, b TrapInfo) int {
		if a.Conn != b.Conn {
			return compareStrings(a.Conn, b.Conn)
		}
		return compareStrings(a.Child, b.Child)
	})
	return out
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Acquire answers the kernel's request for SAs of a trap policy, found by
// the reqid of its template: it initiates the trapped CHILD_SA, on an
// established IKE SA of the connection if there is one, else on a new
// one. While an initiation for the trap is pending (its IKE SA lives and
// has not the CHILD_SA, within acquireHold) further acquires are counted
// in Stats.AcquiresPending and dropped: traffic arrives in bursts, one
// initiation serves them all. src and dst are the packet's addresses:
// an IKEv2 request proposes them first (takeAcquireTS); they may be
// invalid when unknown.
func (e *Engine) Acquire(reqid uint32, src, dst netip.Addr) error {
	e.mu.Lock()
	defer e.unlock()
	if e.closed {
		return ErrClosed
	}
	e.stats.Acquires++
	var t *trap
	for _, x := range e.traps {
		if x.reqid.reqid == reqid {
			t = x
			break
		}
	}
	if t == nil {
		e.stats.AcquiresUnknown++
		return fmt.Errorf("%w: reqid {%d}", ErrNoTrap, reqid)
	}
	if e.acquirePending(t) {
		e.stats.AcquiresPending++
		e.log.Info("ignoring acquire, connection attempt pending")
		return nil
	}
	c := e.connection(t.conn)
	if c == nil {
		return fmt.Errorf("%w: %q (trap of CHILD_SA %s)", ErrUnknownConnection, t.conn, t.child)
	}
	infof(e.log, "acquire for reqid {%d} (%s === %s): initiating CHILD_SA %s", reqid, src, dst, t.child)
	now := e.clock.Now()
	var pkt *acquireTS
	if src.IsValid() && dst.IsValid() {
		pkt = &acquireTS{cfg: t.cfg, local: HostTS(src.Unmap()), remote: HostTS(dst.Unmap())}
	}
	if sa := e.establishedOf(c.Name); sa != nil {
		if dup := duplicateChild(sa.children, t.cfg); dup != nil {
			return nil // installed meanwhile: its SAs take the next packet
		}
		if sa.negotiates(t.cfg) {
			t.pending, t.pendingAt = sa.id, now
			return nil
		}
		sa.acquireTS = pkt
		sa.tm.queue(newChildCreate(sa, true, t.cfg, nil))
		sa.tm.initiate()
		t.pending, t.pendingAt = sa.id, now
		e.stats.AcquiresInitiated++
		return nil
	}
	if sa := e.connectingOf(c.Name); sa != nil {
		// Another trap of the connection (or an initiate) is setting
		// up an IKE SA: the CHILD_SA follows its IKE_AUTH there, as
		// charon queues it on the IKE SA being established, unless it
		// is on its way there already.
		if sa.negotiates(t.cfg) {
			t.pending, t.pendingAt = sa.id, now
			return nil
		}
		sa.acquireTS = pkt
		sa.tm.queue(newChildCreate(sa, true, t.cfg, nil))
		t.pending, t.pendingAt = sa.id, now
		e.stats.AcquiresInitiated++
		return nil
	}
	if v1 := e.establishedV1Of(c.Name); v1 != nil {
		if err := v1.createChild(t.cfg.Name); err != nil {
			if errors.Is(err, ErrChildExists) {
				return nil
			}
			return err
		}
		t.pending, t.pendingAt = v1.id, now
		e.stats.AcquiresInitiated++
		return nil
	}
	if c.Version == 1 {
		sa, err := e.initiateV1(c, []*childConfig{t.cfg})
		if err != nil {
			return err
		}
		t.pending, t.pendingAt = sa.id, now
		e.stats.AcquiresInitiated++
		return nil
	}
	local, remote, err := e.initiatorEnds(c)
	if err != nil {
		return err
	}
	sa := e.startIKESAWith(c, []*childConfig{t.cfg}, local, remote, nil, func(sa *ikeSA) { sa.acquireTS = pkt })
	t.pending, t.pendingAt = sa.id, now
	e.stats.AcquiresInitiated++
	return nil
}

// acquirePending reports whether the initiation of the trap's last
// acquire still stands: its IKE SA lives, and has the CHILD_SA being
// negotiated or installed, or was started less than acquireHold ago.
func (e *Engine) acquirePending(t *trap) bool {
	if t.pending == 0 {
		return false
	}
	recent := e.clock.Now().Sub(t.pendingAt) < acquireHold
	if sa, err := e.ikeSA(t.pending); err == nil {
		if sa.state >= IKESADeleting {
			return false
		}
		return recent || slices.ContainsFunc(sa.children, func(c *childSA) bool {
			return sameChildConfig(c.cfg, t.cfg) && c.state < ChildSADeleting
		})
	}
	if v1 := e.v1SAByID(t.pending); v1 != nil && !v1.deleted {
		return recent
	}
	return false
}

// acquireTS are the addresses of the packet whose acquire is initiating
// a CHILD_SA of cfg: its request proposes them first (RFC 7296 section
// 2.9), so that a responder whose selectors are narrower than ours can
// pick the part that carries this traffic.
type acquireTS struct {
	cfg           *childConfig
	local, remote TrafficSelector
}

// takeAcquireTS puts the packet's addresses of an acquire for cfg in
// front of the selectors a CHILD_SA of cfg proposes, once, when they lie
// inside them.
func (sa *ikeSA) takeAcquireTS(cfg *childConfig, local, remote []TrafficSelector) ([]TrafficSelector, []TrafficSelector) {
	a := sa.acquireTS
	if a == nil || a.cfg != cfg {
		return local, remote
	}
	sa.acquireTS = nil
	inside := func(list []TrafficSelector, ts TrafficSelector) bool {
		return slices.ContainsFunc(list, func(o TrafficSelector) bool { return o.Contains(ts) }) && !slices.Contains(list, ts)
	}
	if !inside(local, a.local) || !inside(remote, a.remote) {
		return local, remote
	}
	return append([]TrafficSelector{a.local}, local...), append([]TrafficSelector{a.remote}, remote...)
}

// childConfigNamed finds a child config by name, in the named connection
// or (conn empty) the first that has it.
func (e *Engine) childConfigNamed(conn, child string) (*connection, *childConfig, error) {
	for _, c := range e.conns {
		if conn != "" && c.Name != conn {
			continue
		}
		for _, cc := range c.children {
			if cc.Name == child {
				return c, cc, nil
			}
		}
	}
	if conn != "" {
		return nil, nil, fmt.Errorf("%w: child %q of %q", ErrUnknownConnection, child, conn)
	}
	return nil, nil, fmt.Errorf("%w: child %q", ErrUnknownConnection, child)
}

// establishedOf is an established IKEv2 SA of the connection, nil if
// there is none.
func (e *Engine) establishedOf(conn string) *ikeSA {
	for _, sa := range e.allSAs() {
		if sa.conn.Name == conn && sa.state == IKESAEstablished {
			return sa
		}
	}
	return nil
}

// negotiates reports whether one of the IKE SA's tasks, in flight or
// queued, creates a CHILD_SA of cfg (in IKE_AUTH or CREATE_CHILD_SA).
func (sa *ikeSA) negotiates(cfg *childConfig) bool {
	tm := sa.tm
	for _, t := range append([]task{tm.active}, tm.queued...) {
		switch t := t.(type) {
		case *ikeAuth:
			if t.child != nil && t.child.initiator && t.child.cfg != nil && sameChildConfig(t.child.cfg, cfg) {
				return true
			}
		case *childCreate:
			if t.initiator && t.rekeyed == nil && t.cfg != nil && sameChildConfig(t.cfg, cfg) {
				return true
			}
		}
	}
	return false
}

// connectingOf is an IKEv2 SA of the connection that we initiated and
// that is not established yet, nil if there is none.
func (e *Engine) connectingOf(conn string) *ikeSA {
	for _, sa := range e.allSAs() {
		if sa.conn.Name == conn && sa.initiator && sa.state < IKESAEstablished {
			return sa
		}
	}
	return nil
}

// establishedV1Of is an established ISAKMP SA of the connection, nil if
// there is none.
func (e *Engine) establishedV1Of(conn string) *v1SA {
	for _, sa := range e.allV1SAs() {
		if sa.conn.Name == conn && sa.state == IKESAEstablished && !sa.deleted {
			return sa
		}
	}
	return nil
}
