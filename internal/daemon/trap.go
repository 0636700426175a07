package daemon

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/xdpsec/xdpsec/ike"
	"github.com/xdpsec/xdpsec/maps/xfrm"
)

// Trap policies: the engine installs them (ike/trap.go); the daemon
// installs those of start_action = trap when connections are loaded,
// takes them away with their connections, and hands the kernel's
// acquires to the engine.

// TrapPolicy is an installed trap policy as list-policies shows it.
type TrapPolicy struct {
	IKE      string   `json:"ike"`
	Child    string   `json:"child"`
	Mode     string   `json:"mode"`
	ReqID    uint32   `json:"reqid"`
	LocalTS  []string `json:"local-ts"`
	RemoteTS []string `json:"remote-ts"`
}

// TrapPolicies lists the installed trap policies.
func (d *Daemon) TrapPolicies() []TrapPolicy {
	var out []TrapPolicy
	for _, t := range d.engine.Traps() {
		out = append(out, TrapPolicy{IKE: t.Conn, Child: t.Child, Mode: t.Mode.String(), ReqID: t.ReqID,
			LocalTS: tsStrings(t.LocalTS), RemoteTS: tsStrings(t.RemoteTS)})
	}
	return out
}

// install installs the trap policies of a child (swanctl --install):
// req.Child, in req.IKE or the connection that has it.
func (d *Daemon) install(req Request) (*Response, error) {
	if req.Child == "" {
		return nil, errors.New("install: missing CHILD_SA config name")
	}
	conn := req.IKE
	if conn == "" {
		c, err := d.connOfChild(req.Child)
		if err != nil {
			return nil, err
		}
		conn = c
	}
	if err := d.engine.Install(conn, req.Child); err != nil {
		if errors.Is(err, ike.ErrUnknownConnection) {
			return nil, fmt.Errorf("configuration '%s' not found", req.Child)
		}
		return nil, err
	}
	d.manualTrap(conn, req.Child)
	return &Response{Message: fmt.Sprintf("installed trap policy for CHILD_SA %s", req.Child)}, nil
}

// uninstall removes the trap policies of a child (swanctl --uninstall).
func (d *Daemon) uninstall(req Request) (*Response, error) {
	if req.Child == "" {
		return nil, errors.New("uninstall: missing CHILD_SA config name")
	}
	if err := d.engine.Uninstall(req.IKE, req.Child); err != nil {
		if errors.Is(err, ike.ErrNoTrap) {
			return nil, fmt.Errorf("policy '%s' not found", req.Child)
		}
		return nil, err
	}
	d.manualTrap(req.IKE, req.Child)
	return &Response{Message: fmt.Sprintf("uninstalled trap policy for CHILD_SA %s", req.Child)}, nil
}

// manualTrap notes a trap installed or uninstalled by command: a reload
// leaves it alone while its child exists (start_action = trap installs
// it again).
func (d *Daemon) manualTrap(conn, child string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for k := range d.autoTraps {
		if k == conn+"/"+child || conn == "" && strings.HasSuffix(k, "/"+child) {
			delete(d.autoTraps, k)
		}
	}
}

// reconcileTraps installs the trap policies of the children with
// start_action = trap (their policies follow a changed configuration),
// and removes those whose child is gone or, installed for start_action,
// no longer asks for a trap.
func (d *Daemon) reconcileTraps() {
	_, conns := d.allConns()
	exists, want := map[string]bool{}, map[string][2]string{}
	var order []string
	for _, sc := range conns {
		for _, ch := range sc.Connection.Children {
			k := sc.Name + "/" + ch.Name
			exists[k] = true
			if ch.StartAction&ike.ActionTrap != 0 {
				want[k] = [2]string{sc.Name, ch.Name}
				order = append(order, k)
			}
		}
	}
	d.mu.Lock()
	if d.autoTraps == nil {
		d.autoTraps = map[string]bool{}
	}
	auto := make(map[string]bool, len(d.autoTraps))
	for k, v := range d.autoTraps {
		auto[k] = v
	}
	d.mu.Unlock()
	for _, t := range d.engine.Traps() {
		k := t.Conn + "/" + t.Child
		_, wanted := want[k]
		if exists[k] && (wanted || !auto[k]) {
			continue
		}
		if err := d.engine.Uninstall(t.Conn, t.Child); err != nil && !errors.Is(err, ike.ErrNoTrap) {
			d.cfgLog.Warn(fmt.Sprintf("uninstalling trap policy of CHILD_SA %s failed: %v", t.Child, err))
		}
		delete(auto, k)
	}
	slices.Sort(order)
	for _, k := range order {
		w := want[k]
		if err := d.engine.Install(w[0], w[1]); err != nil {
			d.cfgLog.Warn(fmt.Sprintf("start_action=trap of %s failed: %v", k, err))
			continue
		}
		auto[k] = true
	}
	d.mu.Lock()
	d.autoTraps = auto
	d.mu.Unlock()
}

// watchAcquires hands the kernel's acquires to the engine: a packet
// matched a trap policy and the kernel has no SA for it.
func (d *Daemon) watchAcquires() error {
	l, err := xfrm.ListenAcquires()
	if err != nil {
		return fmt.Errorf("listening for XFRM acquires: %w", err)
	}
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		defer l.Close()
		for {
			select {
			case <-d.stop:
				return
			default:
			}
			acqs, err := l.Receive()
			if errors.Is(err, xfrm.ErrNoAcquire) {
				continue
			}
			if err != nil {
				d.knlLog.Warn(fmt.Sprintf("XFRM acquire: %v", err))
			}
			for _, a := range acqs {
				d.acquire(a)
			}
		}
	}()
	return nil
}

func (d *Daemon) acquire(a xfrm.Acquire) {
	if a.Reqid == 0 {
		return // not a policy of ours: ours always carry a reqid
	}
	// charon's words for it.
	d.knlLog.Info(fmt.Sprintf("creating acquire job for policy %s === %s with reqid {%d}", a.Packet.Src, a.Packet.Dst, a.Reqid))
	err := d.engine.Acquire(a.Reqid, a.Packet.Src.Addr(), a.Packet.Dst.Addr())
	switch {
	case errors.Is(err, ike.ErrNoTrap):
		// Another daemon's policy, or one of ours uninstalled meanwhile.
		d.knlLog.Debug(fmt.Sprintf("acquire for reqid {%d}: no trap policy installed", a.Reqid))
	case err != nil:
		d.knlLog.Warn(fmt.Sprintf("acquire for reqid {%d} failed: %v", a.Reqid, err))
	}
}
