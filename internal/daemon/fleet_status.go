package daemon

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/xdpsec/xdpsec/ike"
	"github.com/xdpsec/xdpsec/ike/swanctl"
	"github.com/xdpsec/xdpsec/internal/fleet"
)

// The fleet as seen from here: this member's status published in etcd,
// the others' read back (redirect loads), `xdpsec fleet status` and
// `fleet notify`, the fleet's metrics.

// publishLoop publishes this member's status and reads the others'.
func (f *fleetState) publishLoop() {
	defer f.d.wg.Done()
	every := min(f.cfg.LeaseTTL/3, time.Second)
	for {
		f.publishNow()
		select {
		case <-f.ctx.Done():
			return
		case <-time.After(every):
		}
	}
}

func (f *fleetState) publishNow() {
	m := f.mem()
	if m == nil {
		return
	}
	st := fleet.Status{Member: f.name, Address: f.cfg.Address, Updated: time.Now()}
	for _, sa := range f.d.engine.IKESAs() {
		if sa.State != ike.IKESAEstablished && sa.State != ike.IKESARekeying {
			continue
		}
		st.IKESAs++
		for _, c := range sa.Children {
			if c.State == ike.ChildSAInstalled {
				st.ChildSAs++
			}
		}
	}
	for _, s := range f.sortedShared() {
		if s.leading.Load() {
			st.Holds = append(st.Holds, s.cfg.Name)
		}
	}
	f.mu.Lock()
	st.LastCheckpoint = f.checkpoint
	f.mu.Unlock()
	ctx, cancel := context.WithTimeout(f.ctx, 2*time.Second)
	defer cancel()
	if err := m.Publish(ctx, st); err != nil && f.ctx.Err() == nil {
		f.log.Warn(fmt.Sprintf("fleet: publishing our status failed: %v", err))
	}
	ms, err := m.Members(ctx)
	if err != nil {
		return
	}
	f.mu.Lock()
	f.members = ms
	f.mu.Unlock()
}

func (f *fleetState) sortedShared() []*sharedAddr {
	out := make([]*sharedAddr, 0, len(f.shared))
	for _, s := range f.shared {
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b *sharedAddr) int { return strings.Compare(a.cfg.Name, b.cfg.Name) })
	return out
}

// cachedMembers are the members as last read.
func (f *fleetState) cachedMembers() []fleet.Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.members)
}

// redirectGateways is the engine's Config.RedirectGateways: the other
// members that have an address.
func (f *fleetState) redirectGateways(string) []ike.RedirectGateway {
	var out []ike.RedirectGateway
	for _, m := range f.cachedMembers() {
		if m.Member == f.name || !m.Address.IsValid() {
			continue
		}
		out = append(out, ike.RedirectGateway{Name: m.Member, Address: m.Address.String()})
	}
	return out
}

// memberLoad is a member's load as it published it (recent: three
// publish rounds), for a redirect's choice.
func (f *fleetState) memberLoad(gw ike.RedirectGateway) (int, bool) {
	for _, m := range f.cachedMembers() {
		if m.Member == gw.Name && m.Address.String() == gw.Address {
			return m.IKESAs, time.Since(m.Updated) < 3*max(f.cfg.LeaseTTL, 3*time.Second)
		}
	}
	return 0, false
}

// notify is `xdpsec fleet notify STATE SHARED`: keepalived's view of a
// shared address with follow = keepalived.
func (f *fleetState) notify(state, name string) (string, error) {
	s := f.shared[name]
	if s == nil {
		for _, x := range f.shared {
			if x.cfg.Address.String() == name {
				s = x
			}
		}
	}
	if s == nil {
		return "", fmt.Errorf("no shared address %q in the fleet section", name)
	}
	state = strings.ToLower(state)
	s.mu.Lock()
	defer s.mu.Unlock()
	switch state {
	case "master":
		if s.cfg.Follow != swanctl.FollowKeepalived {
			return fmt.Sprintf("%s follows %v: notify ignored", s.cfg.Name, s.cfg.Follow), nil
		}
		if !s.want {
			s.want = true
			s.wakeNow()
		}
		f.log.Info(fmt.Sprintf("fleet: keepalived says MASTER for %s, campaigning", s.cfg.Name))
		return fmt.Sprintf("campaigning for %s", s.cfg.Name), nil
	case "backup", "fault", "stop":
		if s.cfg.Follow != swanctl.FollowKeepalived {
			return fmt.Sprintf("%s follows %v: notify ignored", s.cfg.Name, s.cfg.Follow), nil
		}
		s.want = false
		if s.campaign != nil {
			s.campaign()
		}
		f.log.Info(fmt.Sprintf("fleet: keepalived says %s for %s, resigning", strings.ToUpper(state), s.cfg.Name))
		return fmt.Sprintf("resigning %s", s.cfg.Name), nil
	}
	return "", fmt.Errorf("state %q: want master, backup, fault or stop", state)
}

// FleetStatus is `xdpsec fleet status`.
type FleetStatus struct {
	Member  string         `json:"member"`
	Members []FleetMember  `json:"members"`
	Shared  []FleetAddress `json:"shared"`
}

// FleetMember is one member as it published itself.
type FleetMember struct {
	Name     string   `json:"name"`
	Address  string   `json:"address,omitempty"`
	IKESAs   int      `json:"ike-sas"`
	ChildSAs int      `json:"child-sas"`
	Holds    []string `json:"holds,omitempty"`
	// CheckpointAge is the seconds since its last saved record, nil if
	// none yet.
	CheckpointAge *float64 `json:"checkpoint-age,omitempty"`
	Updated       string   `json:"updated"`
}

// FleetAddress is a shared address and who leads it.
type FleetAddress struct {
	Name    string `json:"name"`
	Address string `json:"address"`
	Follow  string `json:"follow"`
	Holder  string `json:"holder,omitempty"`
	Leading bool   `json:"leading"`
	// Wanted: this member campaigns for it (or leads it).
	Wanted bool `json:"wanted"`
}

// statusTimeout bounds fleet status's reads from etcd: an etcd on a
// loaded machine has taken more than 3 s to answer them. It stays below
// the control client's 10 s beyond the request's own wait.
const statusTimeout = 8 * time.Second

func (f *fleetState) status() (*FleetStatus, error) {
	ctx, cancel := context.WithTimeout(f.ctx, statusTimeout)
	defer cancel()
	m := f.mem()
	if m == nil {
		return nil, errNotJoined
	}
	ms, err := m.Members(ctx)
	if err != nil {
		return nil, fmt.Errorf("fleet: reading the members: %w", err)
	}
	out := &FleetStatus{Member: f.name}
	now := time.Now()
	slices.SortFunc(ms, func(a, b fleet.Status) int { return strings.Compare(a.Member, b.Member) })
	for _, m := range ms {
		fm := FleetMember{Name: m.Member, IKESAs: m.IKESAs, ChildSAs: m.ChildSAs, Holds: m.Holds, Updated: m.Updated.UTC().Format(time.RFC3339)}
		if m.Address.IsValid() {
			fm.Address = m.Address.String()
		}
		if !m.LastCheckpoint.IsZero() {
			age := math.Round(now.Sub(m.LastCheckpoint).Seconds()*10) / 10
			fm.CheckpointAge = &age
		}
		out.Members = append(out.Members, fm)
	}
	for _, s := range f.sortedShared() {
		h, err := m.Holder(ctx, s.cfg.Name)
		if err != nil {
			return nil, fmt.Errorf("fleet: reading the holder of %s: %w", s.cfg.Name, err)
		}
		s.mu.Lock()
		want := s.want
		s.mu.Unlock()
		out.Shared = append(out.Shared, FleetAddress{Name: s.cfg.Name, Address: s.cfg.Address.String(), Follow: s.cfg.Follow.String(),
			Holder: h, Leading: s.leading.Load(), Wanted: want})
	}
	return out, nil
}

// collectMetrics sends the fleet's metrics.
func (f *fleetState) collectMetrics(gauge, counter func(name, help string) *family) {
	joined := uint64(0)
	if m := f.mem(); m != nil {
		select {
		case <-m.Done():
		default:
			joined = 1
		}
	}
	gauge("xdpsec_fleet_joined", "1 while this member has a live session in etcd, else 0 (etcd down at start, or the session expired and a new one is not up yet).").sample(joined)
	gauge("xdpsec_fleet_members", "Members of the fleet, as last read from etcd.").sample(uint64(len(f.cachedMembers())))
	l := gauge("xdpsec_fleet_leader", "1 while this member leads the shared address (serves its IKE SAs), else 0.")
	for _, s := range f.sortedShared() {
		v := uint64(0)
		if s.leading.Load() {
			v = 1
		}
		l.sample(v, "shared", s.cfg.Name)
	}
	f.mu.Lock()
	cp := f.checkpoint
	f.mu.Unlock()
	if !cp.IsZero() {
		gauge("xdpsec_fleet_checkpoint_age_seconds", "Seconds since this member last saved records to etcd.").sampleFloat(time.Since(cp).Seconds())
	}
	counter("xdpsec_fleet_takeovers_total", "Shared addresses this member took over (won the election and loaded their IKE SAs).").sample(f.takeovers.Load())
	if n := f.lastTakeover.Load(); n > 0 {
		gauge("xdpsec_fleet_takeover_seconds", "How long the last takeover took, from the election won to the IKE SAs installed.").sampleFloat(time.Duration(n).Seconds())
	}
	counter("xdpsec_fleet_stale_writes_total", "Writes to etcd refused because another member leads the shared address (our view was stale).").sample(f.staleWrites.Load())
	counter("xdpsec_fleet_ike_dropped_total", "IKE datagrams to a shared address this member does not lead, dropped.").sample(f.ikeDropped.Load())
	counter("xdpsec_fleet_ike_send_refused_total", "IKE datagrams from a shared address this member does not lead, not sent.").sample(f.sendRefused.Load())
}

// fleetStatus answers the control socket's fleet-status.
func (d *Daemon) fleetStatus() (*Response, error) {
	if d.fleet == nil {
		return nil, errors.New("no fleet section in " + d.opts.SettingsPath)
	}
	st, err := d.fleet.status()
	if err != nil {
		return nil, err
	}
	return &Response{Fleet: st}, nil
}

// fleetNotify answers the control socket's fleet-notify.
func (d *Daemon) fleetNotify(req Request) (*Response, error) {
	if d.fleet == nil {
		return nil, errors.New("no fleet section in " + d.opts.SettingsPath)
	}
	msg, err := d.fleet.notify(req.State, req.Shared)
	if err != nil {
		return nil, err
	}
	return &Response{Message: msg}, nil
}
