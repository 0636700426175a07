package daemon

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
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
//
// Records of a shared address, sealed by internal/fleet:
//
//	ike/<SPIi>_<SPIr>   an IKE SA's record (ike.ExportedIKESA, JSON)
//	mid/<SPIi>_<SPIr>   its message IDs when only they changed (ike.ExportedMessageIDs)
//	seq/<SPIi>_<SPIr>   its CHILD_SAs' ESP sequence numbers (seqRecord)
//	checkpoint          the leader's mark of each checkpoint_interval
//
// They are keyed by the IKE SPIs, which the peer knows the SA by, not by
// the unique ID, which is each engine's own.

// seqMargin is added to the outbound sequence numbers of a takeover on
// top of what the rates say the old leader can have sent (nextOutSeq), so
// that a peer's replay window never sees a number twice.
const seqMargin = 1024

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

// checkpointRecord is the leader's mark of each checkpoint_interval.
type checkpointRecord struct {
	Member string    `json:"member"`
	At     time.Time `json:"at"`
}

// seqRecord is the ESP sequence numbers of an IKE SA's CHILD_SAs.
type seqRecord struct {
	At       time.Time  `json:"at"`
	Children []childSeq `json:"children"`
}

// follow fills in the rates of r, read after prev (the record written
// last, nil if none), and says whether r is to be written: the numbers or
// the rate moved.
func (r *seqRecord) follow(prev *seqRecord) bool {
	if prev == nil {
		return true
	}
	changed := len(prev.Children) != len(r.Children)
	for i := range r.Children {
		c := &r.Children[i]
		found := false
		for _, p := range prev.Children {
			if p.SPIOut != c.SPIOut {
				continue
			}
			found = true
			if dt := r.At.Sub(prev.At).Seconds(); dt > 0 && c.OutSeq >= p.OutSeq {
				c.OutRate = float64(c.OutSeq-p.OutSeq) / dt
			}
			c.PeakRate = max(p.PeakRate, c.OutRate)
			// An SA gone idle is written once more, with rate 0: else
			// the old rate times a long age would jump far.
			changed = changed || p.OutSeq != c.OutSeq || p.InSeq != c.InSeq || p.OutRate != c.OutRate
		}
		changed = changed || !found
	}
	return changed
}

type childSeq struct {
	SPIIn  uint32 `json:"spi_in"`
	SPIOut uint32 `json:"spi_out"`
	OutSeq uint64 `json:"out_seq"`
	InSeq  uint64 `json:"in_seq"`
	// OutRate is packets per second sent since the record before;
	// PeakRate the highest OutRate of the CHILD_SA, which the margin for
	// a burst right after the last read takes.
	OutRate  float64 `json:"out_rate,omitempty"`
	PeakRate float64 `json:"peak_rate,omitempty"`
}

func recordKey(spii, spir uint64) string { return fmt.Sprintf("%016x_%016x", spii, spir) }

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

// SaveState is the fleet's part of the engine's StateSink: the records of
// IKE SAs on led shared addresses are queued for etcd. It runs under the
// engine's lock: it encodes and queues, the writers write.
func (f *fleetState) SaveState(d *ike.StateDelta) error {
	touched := map[*sharedAddr]bool{}
	for _, id := range d.Gone {
		for _, s := range f.shared {
			s.mu.Lock()
			if k, ok := s.keys[id]; ok {
				delete(s.keys, id)
				delete(s.seqs, k)
				s.drop(k)
				touched[s] = true
			}
			s.mu.Unlock()
		}
	}
	for i := range d.SAs {
		r := &d.SAs[i]
		s := f.byAddr[r.Local.Addr().Unmap()]
		if s == nil || !s.leading.Load() {
			continue
		}
		b, err := json.Marshal(r)
		if err != nil {
			return err
		}
		k := recordKey(r.SPIi, r.SPIr)
		s.mu.Lock()
		// A rekeyed IKE SA gets new SPIs under the same unique ID.
		if old, ok := s.keys[r.ID]; ok && old != k {
			s.drop(old)
			delete(s.seqs, old)
		}
		s.keys[r.ID] = k
		s.set("ike/"+k, b)
		s.set("mid/"+k, nil)
		s.mu.Unlock()
		touched[s] = true
	}
	for i := range d.MessageIDs {
		m := &d.MessageIDs[i]
		for _, s := range f.shared {
			s.mu.Lock()
			if k, ok := s.keys[m.ID]; ok {
				b, err := json.Marshal(m)
				if err == nil {
					s.set("mid/"+k, b)
					touched[s] = true
				}
			}
			s.mu.Unlock()
		}
	}
	for s := range touched {
		s.kickNow()
	}
	return nil
}

// writeLoop writes a shared address's queued records under its
// leadership.
func (f *fleetState) writeLoop(s *sharedAddr) {
	defer f.d.wg.Done()
	for {
		select {
		case <-f.ctx.Done():
			return
		case <-s.kick:
		case <-time.After(200 * time.Millisecond):
		}
		if !s.leading.Load() {
			continue
		}
		s.mu.Lock()
		lead := s.lead
		if lead == nil || len(s.pending) == 0 {
			s.mu.Unlock()
			continue
		}
		put := map[string][]byte{}
		var del []string
		for k, v := range s.pending {
			if v == nil {
				del = append(del, k)
			} else {
				put[k] = v
			}
		}
		s.pending = map[string][]byte{}
		s.mu.Unlock()
		ctx, cancel := context.WithTimeout(f.ctx, 2*time.Second)
		err := lead.Save(ctx, put, del)
		cancel()
		switch {
		case err == nil:
			now := time.Now()
			f.mu.Lock()
			f.checkpoint = now
			f.mu.Unlock()
			for _, v := range put {
				clear(v)
			}
		case errors.Is(err, fleet.ErrStale):
			for _, v := range put {
				clear(v)
			}
			s.mu.Lock()
			ours := s.lead == lead
			s.mu.Unlock()
			if ours && s.leading.Load() {
				f.stale(s)
			} // else we resigned meanwhile: not a stale view

		default:
			if f.ctx.Err() != nil {
				return
			}
			f.log.Warn(fmt.Sprintf("fleet: saving %d records of %s failed, again shortly: %v", len(put)+len(del), s.cfg.Name, err))
			// Back into the queue, behind what changed meanwhile.
			s.mu.Lock()
			for k, v := range put {
				if _, newer := s.pending[k]; !newer {
					s.pending[k] = v
				} else {
					clear(v)
				}
			}
			for _, k := range del {
				if _, newer := s.pending[k]; !newer {
					s.pending[k] = nil
				}
			}
			s.mu.Unlock()
			select {
			case <-f.ctx.Done():
				return
			case <-time.After(500 * time.Millisecond):
			}
		}
	}
}

// seqLoop reads the ESP sequence numbers of the CHILD_SAs on led shared
// addresses every checkpoint_interval and queues those that moved.
func (f *fleetState) seqLoop() {
	defer f.d.wg.Done()
	t := time.NewTicker(f.cfg.CheckpointInterval)
	defer t.Stop()
	for {
		select {
		case <-f.ctx.Done():
			return
		case <-t.C:
		}
		f.readSeqs()
	}
}

func (f *fleetState) readSeqs() {
	now := time.Now()
	// A small record each interval says when the leader last looked
	// (the age fleet status shows), and has a leader that was paused
	// past its lease find out at its first write.
	for _, s := range f.shared {
		if s.leading.Load() {
			b, _ := json.Marshal(checkpointRecord{Member: f.name, At: now})
			s.mu.Lock()
			s.set("checkpoint", b)
			s.mu.Unlock()
			s.kickNow()
		}
	}
	for _, sa := range f.d.engine.IKESAs() {
		s := f.byAddr[sa.Local.Addr().Unmap()]
		if s == nil || !s.leading.Load() || sa.Version != 2 {
			continue
		}
		k := recordKey(sa.SPIi, sa.SPIr)
		rec := &seqRecord{At: now}
		for _, c := range sa.Children {
			if c.State != ike.ChildSAInstalled && c.State != ike.ChildSARekeying && c.State != ike.ChildSARekeyed {
				continue
			}
			cs := childSeq{SPIIn: c.SPIIn, SPIOut: c.SPIOut}
			if st, err := f.d.dp.QuerySA(ike.SAID{Dst: sa.Remote.Addr(), SPI: c.SPIOut, Proto: c.Protocol}); err == nil {
				cs.OutSeq = st.OutSeq
			}
			if st, err := f.d.dp.QuerySA(ike.SAID{Dst: sa.Local.Addr(), SPI: c.SPIIn, Proto: c.Protocol}); err == nil {
				cs.InSeq = st.InSeq
			}
			rec.Children = append(rec.Children, cs)
		}
		s.mu.Lock()
		if _, ours := s.keys[sa.ID]; !ours {
			s.mu.Unlock()
			continue
		}
		if rec.follow(s.seqs[k]) {
			if b, err := json.Marshal(rec); err == nil {
				s.seqs[k] = rec
				s.set("seq/"+k, b)
				s.kickNow()
			}
		}
		s.mu.Unlock()
	}
}

// decodeRecords makes the engine state of a shared address's records:
// the IKE SAs, with the newer message IDs applied, and the CHILD_SAs'
// sequence numbers by SPI. bad are keys that would not decode.
func decodeRecords(recs map[string][]byte) (st ike.EngineState, seqs map[uint32]childSeqAt, bad []string) {
	mids := map[string]ike.ExportedMessageIDs{}
	seqs = map[uint32]childSeqAt{}
	for k, v := range recs {
		kind, key, _ := strings.Cut(k, "/")
		switch kind {
		case "checkpoint":
		case "ike":
			var r ike.ExportedIKESA
			if err := json.Unmarshal(v, &r); err != nil || recordKey(r.SPIi, r.SPIr) != key {
				bad = append(bad, k)
				continue
			}
			st.SAs = append(st.SAs, r)
		case "mid":
			var m ike.ExportedMessageIDs
			if err := json.Unmarshal(v, &m); err != nil {
				bad = append(bad, k)
				continue
			}
			mids[key] = m
		case "seq":
			var r seqRecord
			if err := json.Unmarshal(v, &r); err != nil {
				bad = append(bad, k)
				continue
			}
			for _, c := range r.Children {
				seqs[c.SPIOut] = childSeqAt{c, r.At}
				seqs[c.SPIIn] = childSeqAt{c, r.At}
			}
		default:
			bad = append(bad, k)
		}
	}
	for i := range st.SAs {
		r := &st.SAs[i]
		if m, ok := mids[recordKey(r.SPIi, r.SPIr)]; ok && m.Next >= r.NextMessageID && m.Expect >= r.ExpectMessageID {
			r.NextMessageID, r.ExpectMessageID = m.Next, m.Expect
			for _, resp := range r.LastResponse {
				clear(resp)
			}
			r.LastResponse = m.LastResponse
		}
	}
	// The oldest first, as the engine listed them.
	slices.SortFunc(st.SAs, func(a, b ike.ExportedIKESA) int { return a.EstablishedAt.Compare(b.EstablishedAt) })
	return st, seqs, bad
}

type childSeqAt struct {
	childSeq
	at time.Time
}

// seqFunc is TakeOver's sequence numbers: outbound past what the old
// leader can have sent (nextOutSeq); inbound the last seen (the replay
// window accepts what the peer sends after).
func seqFunc(seqs map[uint32]childSeqAt, interval time.Duration, now time.Time) func(ike.SAID) (uint64, uint64) {
	return func(id ike.SAID) (uint64, uint64) {
		c, ok := seqs[id.SPI]
		if !ok {
			return 0, 0
		}
		return nextOutSeq(c.childSeq, now.Sub(c.at), interval), c.InSeq
	}
}

// nextOutSeq is the first outbound sequence number that the old leader
// cannot have sent: the last saved, plus the rate of the record over its
// age (a record is written whenever the numbers move, so the rate holds
// until the next read), plus the peak rate over one interval (a burst
// after the last read) and seqMargin.
func nextOutSeq(c childSeq, age, interval time.Duration) uint64 {
	add := c.OutRate*max(age, 0).Seconds() + c.PeakRate*interval.Seconds() + seqMargin
	if add > math.MaxUint32 {
		add = math.MaxUint32
	}
	return c.OutSeq + uint64(add)
}

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

func (f *fleetState) status() (*FleetStatus, error) {
	ctx, cancel := context.WithTimeout(f.ctx, 3*time.Second)
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

// teeSink hands the engine's deltas to the journal and the fleet.
type teeSink struct {
	journal ike.StateSink // nil: none
	fleet   *fleetState
}

func (t teeSink) SaveState(d *ike.StateDelta) error {
	var errs []error
	if t.journal != nil {
		errs = append(errs, t.journal.SaveState(d))
	}
	errs = append(errs, t.fleet.SaveState(d))
	return errors.Join(errs...)
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
