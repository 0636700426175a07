package daemon

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/xdpsec/xdpsec/ike"
	"github.com/xdpsec/xdpsec/ike/pool"
	"github.com/xdpsec/xdpsec/ike/swanctl"
	"github.com/xdpsec/xdpsec/internal/fleet"
)

// The daemon as a member of a fleet (xdpsec.conf's fleet section,
// internal/fleet): each shared address is served by the leader of its
// etcd election only. The leader hands the records of the IKE SAs on the
// address to etcd as the engine changes them (the StateSink's deltas,
// teed off the journal) and the ESP sequence numbers of their CHILD_SAs
// every checkpoint_interval; a member that wins the election takes them
// over (Engine.TakeOver: SAs installed, outbound sequence numbers past
// what the old leader can have sent, message IDs resynchronised); one
// that loses it (lease expired, resigned, or a write refused as stale)
// drops them from its dataplane (Engine.Release) and stops serving: its
// IKE packets to the address are dropped and nothing goes out from it.
// Here: the membership, the elections and what follows them; the records
// in fleet_records.go, status, notify and metrics in fleet_status.go, a
// shared address the daemon holds itself in sharedaddr.go.

// fleetState is the daemon's membership.
type fleetState struct {
	cfg    *swanctl.FleetSettings
	name   string
	log    *slog.Logger
	d      *Daemon
	ctx    context.Context
	cancel context.CancelFunc

	// shared are the shared addresses, fixed at start.
	shared map[string]*sharedAddr
	byAddr map[netip.Addr]*sharedAddr

	takeovers, staleWrites, ikeDropped, sendRefused atomic.Uint64
	lastTakeover                                    atomic.Int64 // nanoseconds

	mu sync.Mutex // guards below
	// member is the etcd session: a new one after the last expired.
	member  *fleet.Member
	members []fleet.Status
	// checkpoint is the time of the last record saved, of any address.
	checkpoint time.Time
}

// sharedAddr is one shared address and this member's part in its
// election.
type sharedAddr struct {
	cfg     swanctl.FleetShared
	leading atomic.Bool
	kick    chan struct{} // records pending (writeLoop)
	wake    chan struct{} // a campaign wanted, or joined (electionLoop)

	mu sync.Mutex // guards below
	// want: campaign (follow = always, or keepalived said MASTER).
	want bool
	// campaign cancels the running campaign or leadership, nil if none.
	campaign context.CancelFunc
	lead     *fleet.Leadership
	// pending are the records not saved yet, by key: nil deletes.
	pending map[string][]byte
	// keys are the record keys (SPIs) of the engine's IKE SAs on the
	// address, by unique ID, for Gone and MessageIDs.
	keys map[uint32]string
	// seqs are the sequence numbers saved last, by record key.
	seqs map[string]*seqRecord
}

// loadSettingsFile reads xdpsec.conf: nil without the file when it is
// the default path (a named file must exist).
func loadSettingsFile(path string) (*swanctl.Settings, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	st, err := swanctl.LoadSettings(swanctl.OSFS{}, abs)
	if err != nil {
		if path == swanctl.DefaultSettingsPath && errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("loading %s: %w", path, err)
	}
	return st, nil
}

// loadFleetSettings reads xdpsec.conf's fleet section: nil without one
// (or without the default file).
func loadFleetSettings(path string) (*swanctl.FleetSettings, error) {
	st, err := loadSettingsFile(path)
	if err != nil || st == nil {
		return nil, err
	}
	return st.Fleet, nil
}

// newFleet joins the fleet; the daemon's engine is not made yet.
func newFleet(d *Daemon, cfg *swanctl.FleetSettings) (*fleetState, error) {
	name := cfg.Member
	if name == "" {
		var err error
		if name, err = os.Hostname(); err != nil {
			return nil, fmt.Errorf("fleet: member not set and no host name: %w", err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	f := &fleetState{cfg: cfg, name: name, log: d.opts.Logs.Logger("dmn"), d: d, ctx: ctx, cancel: cancel,
		shared: map[string]*sharedAddr{}, byAddr: map[netip.Addr]*sharedAddr{}}
	// The key and TLS files must be right: a mistake there is the
	// operator's, said at once.
	if err := f.checkFiles(); err != nil {
		cancel()
		return nil, err
	}
	m, err := f.join()
	if err != nil {
		// etcd may come up after us (a whole site booting): the
		// daemon serves its own addresses meanwhile, none of the
		// shared ones, and hands out no pool address (pools = yes).
		f.log.Warn(fmt.Sprintf("%v; joining in the background, shared addresses not served until then", err))
	}
	f.member = m
	for _, s := range cfg.Shared {
		sa := &sharedAddr{cfg: s, want: s.Follow == swanctl.FollowAlways, kick: make(chan struct{}, 1), wake: make(chan struct{}, 1),
			pending: map[string][]byte{}, keys: map[uint32]string{}, seqs: map[string]*seqRecord{}}
		f.shared[s.Name] = sa
		f.byAddr[s.Address] = sa
	}
	if m != nil {
		f.log.Info(fmt.Sprintf("fleet: joined as %s at %s, %d shared addresses", name, strings.Join(cfg.Endpoints, ","), len(cfg.Shared)))
	}
	return f, nil
}

// checkFiles loads the fleet key and the TLS files once, for their errors.
func (f *fleetState) checkFiles() error {
	key, err := fleet.LoadKey(f.cfg.KeyFile)
	if err != nil {
		return fmt.Errorf("fleet: key_file: %w", err)
	}
	clear(key)
	_, err = f.tlsConfig()
	return err
}

// tlsConfig is the TLS of https:// endpoints, nil for plain http.
func (f *fleetState) tlsConfig() (*tls.Config, error) {
	if f.cfg.EtcdCA == "" && f.cfg.EtcdCert == "" && !slices.ContainsFunc(f.cfg.Endpoints, func(e string) bool { return strings.HasPrefix(e, "https://") }) {
		return nil, nil
	}
	return fleet.LoadTLS(f.cfg.EtcdCA, f.cfg.EtcdCert, f.cfg.EtcdKey)
}

// errNotJoined: etcd has not answered yet.
var errNotJoined = errors.New("fleet: not joined yet (etcd not reachable)")

// notJoined is the pools' arbiter until the member joined: every claim
// fails (the client gets INTERNAL_ADDRESS_FAILURE), since a pool alone
// could hand out an address another member has leased.
type notJoined struct{}

func (notJoined) Claim(string, netip.Addr, string, string) (bool, string, error) {
	return false, "", errNotJoined
}

func (notJoined) Known(string, string) (netip.Addr, bool) { return netip.Addr{}, false }
func (notJoined) Released(string, netip.Addr, string)     {}

// join starts a session in etcd, the fleet key read from its file.
func (f *fleetState) join() (*fleet.Member, error) {
	key, err := fleet.LoadKey(f.cfg.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("fleet: key_file: %w", err)
	}
	defer clear(key)
	cfg := fleet.Config{Endpoints: f.cfg.Endpoints, Member: f.name, Prefix: f.cfg.Prefix, Key: key,
		TTL: f.cfg.LeaseTTL, Address: f.cfg.Address, DialTimeout: 5 * time.Second}
	if cfg.TLS, err = f.tlsConfig(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(f.ctx, 10*time.Second)
	defer cancel()
	m, err := fleet.Join(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("fleet: joining at %s: %w", strings.Join(f.cfg.Endpoints, ","), err)
	}
	return m, nil
}

// mem is the current etcd session.
func (f *fleetState) mem() *fleet.Member {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.member
}

// sessionLoop joins when etcd did not answer at start, and again when
// the session expires (the daemon was paused or cut off from etcd past
// lease_ttl): every leadership went with it, so the shared addresses are
// released first.
func (f *fleetState) sessionLoop() {
	defer f.d.wg.Done()
	for {
		m := f.mem()
		if m != nil {
			select {
			case <-f.ctx.Done():
				return
			case <-m.Done():
			}
			if f.ctx.Err() != nil {
				return
			}
			f.log.Warn("fleet: our etcd session expired (paused or cut off past lease_ttl), joining again")
			for _, s := range f.sortedShared() {
				f.lose(s, "etcd session expired")
			}
		}
		for tries := 0; ; tries++ {
			nm, err := f.join()
			if err == nil {
				f.mu.Lock()
				f.member = nm
				f.mu.Unlock()
				if m != nil {
					// Closing the dead session waits on etcd for a
					// while: not in the way of the new one.
					f.d.wg.Add(1)
					go func() {
						defer f.d.wg.Done()
						m.Close()
					}()
				}
				if f.cfg.Pools {
					f.d.fleetPools(f.d.enginePools())
				}
				f.log.Info(fmt.Sprintf("fleet: joined as %s at %s", f.name, strings.Join(f.cfg.Endpoints, ",")))
				for _, s := range f.shared {
					s.wakeNow()
				}
				break
			}
			if tries%30 == 0 { // not every second while etcd is down
				f.log.Warn(err.Error())
			}
			select {
			case <-f.ctx.Done():
				return
			case <-time.After(time.Second):
			}
		}
	}
}

// refuses says whether a datagram to or from local must not be served
// here: a shared address this member does not lead.
func (f *fleetState) refuses(local netip.Addr) bool {
	if f == nil {
		return false
	}
	s := f.byAddr[local.Unmap()]
	return s != nil && !s.leading.Load()
}

// refusesAll says whether every address of a connection's local_addrs
// is a shared address this member does not lead (none: no).
func (f *fleetState) refusesAll(addrs []netip.Addr) bool {
	if f == nil || len(addrs) == 0 {
		return false
	}
	for _, a := range addrs {
		if !f.refuses(a) {
			return false
		}
	}
	return true
}

// onShared says whether local is a shared address.
func (f *fleetState) onShared(local netip.Addr) bool {
	_, ok := f.byAddr[local.Unmap()]
	return ok
}

// start runs the loops: status, campaigns, record writers, sequence
// numbers. The engine is up.
func (f *fleetState) start() {
	// SAs on shared addresses taken back from our own journal are not
	// ours to serve before we win the election, which hands over the
	// fleet's records instead.
	if st := f.d.engine.Release(f.onShared); len(st.SAs)+len(st.V1) > 0 {
		f.log.Info(fmt.Sprintf("fleet: released %d IKE_SAs on shared addresses until elected", len(st.SAs)+len(st.V1)))
		st.Zero()
	}
	// An address held by a daemon that was killed is not ours yet.
	for _, s := range f.sortedShared() {
		if s.cfg.Interface != "" {
			if err := dropSharedAddr(s.cfg.Interface, s.cfg.Address); err != nil {
				f.log.Warn(fmt.Sprintf("fleet: %v", err))
			}
		}
	}
	// keepalived's notify may have come before our control socket was
	// up: an address keepalived put on this box says MASTER as well.
	local := localAddrs()
	for _, s := range f.sortedShared() {
		if s.cfg.Follow == swanctl.FollowKeepalived && local[s.cfg.Address] {
			s.mu.Lock()
			s.want = true
			s.mu.Unlock()
			f.log.Info(fmt.Sprintf("fleet: %v of %s is on this box (keepalived MASTER before we started), campaigning", s.cfg.Address, s.cfg.Name))
		}
	}
	f.d.wg.Add(2)
	go f.publishLoop()
	go f.sessionLoop()
	for _, s := range f.shared {
		f.d.wg.Add(2)
		go f.electionLoop(s)
		go f.writeLoop(s)
	}
	f.d.wg.Add(1)
	go f.seqLoop()
}

// close resigns every leadership, releases the shared addresses' SAs
// (the standby installs them now: this box must not go on sending with
// them) and leaves the fleet.
func (f *fleetState) close() {
	if f == nil {
		return
	}
	f.cancel()
	for _, s := range f.sortedShared() {
		f.lose(s, "daemon stopping")
	}
	if m := f.mem(); m != nil {
		m.Close()
	}
}

// set queues a record (nil: its deletion), zeroing the one it replaces
// (records hold keys). s.mu is held.
func (s *sharedAddr) set(key string, v []byte) {
	clear(s.pending[key])
	s.pending[key] = v
}

// drop queues the deletion of an IKE SA's records. s.mu is held.
func (s *sharedAddr) drop(k string) {
	s.set("ike/"+k, nil)
	s.set("mid/"+k, nil)
	s.set("seq/"+k, nil)
}

func (s *sharedAddr) wakeNow() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *sharedAddr) kickNow() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// electionLoop campaigns for a shared address while it is wanted, and
// takes its SAs over when elected.
func (f *fleetState) electionLoop(s *sharedAddr) {
	defer f.d.wg.Done()
	for {
		s.mu.Lock()
		want := s.want
		s.mu.Unlock()
		if !want {
			select {
			case <-f.ctx.Done():
				return
			case <-s.wake:
				continue
			}
		}
		m := f.mem()
		if m == nil {
			// Not joined yet: sessionLoop wakes us when it has.
			select {
			case <-f.ctx.Done():
				return
			case <-s.wake:
			case <-time.After(time.Second):
			}
			continue
		}
		ctx, cancel := context.WithCancel(f.ctx)
		s.mu.Lock()
		s.campaign = cancel
		s.mu.Unlock()
		f.log.Info(fmt.Sprintf("fleet: campaigning for %s (%v)", s.cfg.Name, s.cfg.Address))
		lead, err := m.Campaign(ctx, s.cfg.Name)
		if err != nil {
			canceled := ctx.Err() != nil
			cancel()
			if f.ctx.Err() != nil {
				return
			}
			if !canceled {
				f.log.Warn(fmt.Sprintf("fleet: campaign for %s failed: %v", s.cfg.Name, err))
				select {
				case <-f.ctx.Done():
					return
				case <-time.After(time.Second):
				}
			}
			continue
		}
		why := "resigned"
		if !f.lead(s, lead) {
			why = "records not loaded"
		} else {
			select {
			case <-lead.Lost():
				why = "leadership lost (etcd lease expired or revoked)"
			case <-ctx.Done():
			}
		}
		f.lose(s, why)
		// Also after a loss: the member forgets the election then.
		rctx, rcancel := context.WithTimeout(context.Background(), 2*time.Second)
		lead.Resign(rctx)
		rcancel()
		cancel()
		if why == "records not loaded" {
			select {
			case <-f.ctx.Done():
				return
			case <-time.After(time.Second):
			}
		}
	}
}

// lead takes a shared address over: its records from etcd into the
// engine, whose SAs then go into the dataplane.
func (f *fleetState) lead(s *sharedAddr, l *fleet.Leadership) bool {
	start := time.Now()
	s.mu.Lock()
	s.lead = l
	for _, v := range s.pending {
		clear(v)
	}
	clear(s.pending)
	clear(s.keys)
	s.mu.Unlock()
	// Serving starts now: the engine's records of what it takes over
	// go to etcd under the new leadership.
	s.leading.Store(true)
	if ifname := s.cfg.Interface; ifname != "" {
		if err := holdSharedAddr(ifname, s.cfg.Address); err != nil {
			f.log.Warn(fmt.Sprintf("fleet: elected for %s, but cannot hold its address, resigning: %v", s.cfg.Name, err))
			return false
		}
		f.log.Info(fmt.Sprintf("fleet: holding %v on %s", s.cfg.Address, ifname))
	}
	ctx, cancel := context.WithTimeout(f.ctx, 10*time.Second)
	recs, err := f.mem().Load(ctx, s.cfg.Name)
	cancel()
	if err != nil && len(recs) == 0 {
		// Serving without the records would break every tunnel of
		// the address: another member may do better.
		f.log.Warn(fmt.Sprintf("fleet: elected for %s, but loading its records failed, resigning: %v", s.cfg.Name, err))
		return false
	}
	if err != nil {
		// Records that do not open (tampered, another fleet key) are
		// named; the others are taken over.
		f.log.Warn(fmt.Sprintf("fleet: some records of %s refused: %v", s.cfg.Name, err))
	}
	st, seqs, bad := decodeRecords(recs)
	for _, v := range recs {
		clear(v)
	}
	var del []string
	for _, k := range bad {
		f.log.Warn(fmt.Sprintf("fleet: record %s of %s undecodable, dropped", k, s.cfg.Name))
		del = append(del, k)
	}
	n := len(st.SAs)
	errs := f.d.engine.TakeOver(st, seqFunc(seqs, f.cfg.CheckpointInterval, time.Now()))
	for _, e := range errs {
		f.log.Warn(fmt.Sprintf("fleet: IKE_SA %s (SPIs %016x_%016x) of %s not taken over: %v", e.SA.Conn, e.SA.SPIi, e.SA.SPIr, s.cfg.Name, e.Err))
		k := recordKey(e.SA.SPIi, e.SA.SPIr)
		del = append(del, "ike/"+k, "mid/"+k, "seq/"+k)
	}
	st.Zero()
	f.noteKeys(s)
	s.mu.Lock()
	for _, k := range del {
		s.set(k, nil)
	}
	s.mu.Unlock()
	s.kickNow()
	took := time.Since(start)
	f.takeovers.Add(1)
	f.lastTakeover.Store(int64(took))
	f.log.Info(fmt.Sprintf("fleet: elected for %s (%v): took over %d of %d IKE_SAs in %v", s.cfg.Name, s.cfg.Address, n-len(errs), n, took.Round(time.Millisecond)))
	f.publishNow()
	// start_action = start of connections from the address, not up
	// with what was taken over.
	f.d.startActions(nil)
	return true
}

// noteKeys maps the engine's IKE SAs on the address to their record keys.
func (f *fleetState) noteKeys(s *sharedAddr) {
	infos := f.d.engine.IKESAs()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sa := range infos {
		if sa.Version == 2 && sa.Local.Addr().Unmap() == s.cfg.Address {
			s.keys[sa.ID] = recordKey(sa.SPIi, sa.SPIr)
		}
	}
}

// lose stops serving a shared address: its SAs leave the engine and the
// dataplane without a word to the peers (the new leader serves them).
func (f *fleetState) lose(s *sharedAddr, why string) {
	if !s.leading.Swap(false) {
		return
	}
	s.mu.Lock()
	s.lead = nil
	for _, v := range s.pending {
		clear(v)
	}
	clear(s.pending)
	clear(s.keys)
	clear(s.seqs)
	s.mu.Unlock()
	addr := s.cfg.Address
	if ifname := s.cfg.Interface; ifname != "" {
		// First: nothing more arrives for the SAs going away.
		if err := dropSharedAddr(ifname, addr); err != nil {
			f.log.Warn(fmt.Sprintf("fleet: %v", err))
		} else {
			f.log.Info(fmt.Sprintf("fleet: %v removed from %s", addr, ifname))
		}
	}
	st := f.d.engine.Release(func(local netip.Addr) bool { return local.Unmap() == addr })
	f.log.Warn(fmt.Sprintf("fleet: no longer leading %s (%v): %s; released %d IKE_SAs", s.cfg.Name, addr, why, len(st.SAs)+len(st.V1)))
	st.Zero()
	f.publishNow()
}

// stale handles a write refused as stale: another member leads now.
func (f *fleetState) stale(s *sharedAddr) {
	f.staleWrites.Add(1)
	f.log.Warn(fmt.Sprintf("fleet: write for %s refused, our view is stale (another member leads it)", s.cfg.Name))
	s.mu.Lock()
	cancel := s.campaign
	s.mu.Unlock()
	f.lose(s, "stale leadership")
	if cancel != nil {
		// The election loop resigns (a no-op now) and campaigns again
		// if still wanted: as a standby.
		cancel()
	}
}

// fleetPools makes the pools' leases the fleet's (pools = yes).
func (d *Daemon) fleetPools(pools []*ike.Pool) {
	var arb pool.Arbiter = notJoined{}
	if m := d.fleet.mem(); m != nil {
		arb = m.Leases()
	}
	for _, p := range pools {
		p.Leases.SetArbiter(arb)
	}
}

// enginePools are the pools the engine has now.
func (d *Daemon) enginePools() []*ike.Pool {
	d.mu.Lock()
	l := d.loaded
	d.mu.Unlock()
	if l == nil {
		return nil
	}
	return d.pools(l)
}

// fleetSettingsChanged says, on a reload of xdpsec.conf, that a changed
// fleet section waits for the next start: the membership, elections and
// records are not moved under a running fleet.
func (d *Daemon) fleetSettingsChanged(path string) {
	fs, err := loadFleetSettings(path)
	if err != nil {
		return
	}
	var was *swanctl.FleetSettings
	if d.fleet != nil {
		was = d.fleet.cfg
	}
	if !sameFleet(was, fs) {
		d.cfgLog.Warn(fmt.Sprintf("the fleet section of %s changed: it takes effect at the next start", path))
	}
}

func sameFleet(a, b *swanctl.FleetSettings) bool {
	if a == nil || b == nil {
		return a == b
	}
	x, y := *a, *b
	x.Pos, y.Pos = swanctl.Pos{}, swanctl.Pos{}
	if !slices.Equal(x.Endpoints, y.Endpoints) || len(x.Shared) != len(y.Shared) {
		return false
	}
	for i := range x.Shared {
		p, q := x.Shared[i], y.Shared[i]
		p.Pos, q.Pos = swanctl.Pos{}, swanctl.Pos{}
		if p != q {
			return false
		}
	}
	x.Endpoints, y.Endpoints, x.Shared, y.Shared = nil, nil, nil, nil
	return reflect.DeepEqual(x, y)
}

// localAddrs are the addresses of this box's interfaces.
func localAddrs() map[netip.Addr]bool {
	out := map[netip.Addr]bool{}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return out
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP); ok {
				out[ip.Unmap()] = true
			}
		}
	}
	return out
}
