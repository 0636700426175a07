package daemon

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/xdpsec/xdpsec/ike"
	"github.com/xdpsec/xdpsec/ike/swanctl"
	"github.com/xdpsec/xdpsec/internal/dataplane"
	"github.com/xdpsec/xdpsec/internal/ikesocket"
	"github.com/xdpsec/xdpsec/loader"
	"github.com/xdpsec/xdpsec/maps"
	"github.com/xdpsec/xdpsec/maps/xfrm"
)

// Defaults of the daemon's paths.
const (
	DefaultSocket = "/run/xdpsec/xdpsec.sock"
	DefaultState  = "/var/lib/xdpsec/ike-state.json"
)

// Options configure a Daemon.
type Options struct {
	ConfigPath string // swanctl.conf, default swanctl.DefaultPath
	// SettingsPath is xdpsec.conf (the radius section), default
	// swanctl.DefaultSettingsPath, which may be absent.
	SettingsPath string
	SocketPath   string // control socket, default DefaultSocket
	StatePath    string // IKE SA state saved across restarts, default DefaultState; "-" for none
	PinDir       string // BPF pin directory
	DryRun       bool   // --dataplane=dry-run
	Spread       dataplane.CPUSpread
	// Listen addresses and ports of the IKE sockets (default wildcard, 500, 4500).
	ListenAddrs    []netip.Addr
	Port, NATTPort uint16
	// Receive and send buffers of each IKE socket in bytes: zero takes
	// ikesocket.DefaultBufferSize (sized for bursts of thousands of
	// DELETEs), negative leaves the system's default.
	SocketReceiveBuffer, SocketSendBuffer int
	Metrics                               string // address of the Prometheus endpoint, "" for none
	Logs                                  *Logs
	// IKE tunables, as charon's strongswan.conf settings of the same
	// names; zero values take the engine's defaults (ike.Config).
	RetransmitTimeout time.Duration // retransmit_timeout
	RetransmitBase    float64       // retransmit_base
	RetransmitTries   int           // retransmit_tries
	CookieThreshold   int           // cookie_threshold; negative disables cookies
	BlockThreshold    int           // block_threshold (half-open IKE SAs per source); negative disables the limit
	FragmentSize      int           // fragment_size
	// MakeBeforeBreak: reauthentication establishes the new IKE SA before
	// deleting the old (charon's make_before_break). The zero Options
	// say no; the daemon's flag defaults to yes.
	MakeBeforeBreak bool
	// RekeyOutboundAtOnce: see ike.Config (a test knob).
	RekeyOutboundAtOnce bool
	// CheckpointChildKeys: see ike.Config (the fleet; a test knob for
	// the takeover without etcd).
	CheckpointChildKeys bool
	// TakeOverPath is a state file of another daemon whose IKE SAs this
	// one takes over at start (takeover.go, a test knob);
	// TakeOverOutSeq is where their outbound sequence numbers start.
	TakeOverPath   string
	TakeOverOutSeq uint64
}

// rxDataplane is ike.Dataplane with xdp_wan's rx_seen counters.
type rxDataplane interface {
	ike.Dataplane
	RxSeen(id ike.SAID) (packets, bytes uint64, err error)
}

// Daemon is a running xdpsec IKE daemon.
type Daemon struct {
	netns   string // the network namespace it was started in (stateOwner)
	opts    Options
	log     *slog.Logger // dmn
	cfgLog  *slog.Logger
	knlLog  *slog.Logger
	engine  *ike.Engine
	dp      rxDataplane
	maps    *maps.Set // nil in dry-run without pins
	stash   *loader.StashRunner
	kernel  *xfrm.Conn
	sockets *ikesocket.Sockets
	control net.Listener
	metrics *http.Server
	// histograms are fed by the engine's observers (metrics.go); the
	// registry is made on first use.
	histograms *saHistograms
	registryState
	sender *socketSender

	reloadMu sync.Mutex // one reload (or VICI load) at a time
	vici     viciStore
	// settingsSum is the SHA-256 of xdpsec.conf as last loaded (guarded
	// by reloadMu after Start): a reload rereads it only when it changed.
	settingsSum [sha256.Size]byte
	hasRadius   bool // RADIUS servers are loaded

	// journal is the state file (journal.go), nil without one.
	journal *journal
	// fleet is the membership of a fleet (fleet.go), nil without a
	// fleet section.
	fleet *fleetState

	mu       sync.Mutex // guards below
	loaded   *Loaded
	stopping bool
	// autoTraps are the traps installed for start_action = trap, by
	// connection/child (trap.go).
	autoTraps map[string]bool

	// loads are the redirect gateways' loads (redirect.go).
	loads gatewayLoads

	wg   sync.WaitGroup
	stop chan struct{}
}

type socketSender struct {
	mu sync.Mutex
	s  *ikesocket.Sockets
	// fleet refuses datagrams from shared addresses it does not lead.
	fleet *fleetState
}

// errNotLeader: a datagram from a shared address another member serves.
var errNotLeader = errors.New("not sent: another member of the fleet serves this shared address")

func (s *socketSender) Send(d ike.Datagram) error {
	s.mu.Lock()
	socks, f := s.s, s.fleet
	s.mu.Unlock()
	if socks == nil {
		return errors.New("IKE sockets not open")
	}
	if f.refuses(d.Local.Addr()) {
		f.sendRefused.Add(1)
		return errNotLeader
	}
	return socks.Send(ikesocket.Datagram{Local: d.Local, Remote: d.Remote, Data: d.Data})
}

// ErrNoESP is returned at start-up when the kernel cannot do ESP and the
// daemon is not in dry-run mode.
var ErrNoESP = errors.New("the kernel cannot do ESP")

// Check loads a configuration with its credentials and has a throwaway engine take
// every connection, as `xdpsec daemon --check` does; settings is
// xdpsec.conf.
func Check(path, settings string, log *slog.Logger) (*Loaded, error) {
	l, err := LoadConfig(path)
	if err != nil {
		return nil, err
	}
	rc, err := LoadRadius(settings, nil)
	if err != nil {
		return nil, err
	}
	if err := checkEAPRadius(l.Connections, rc, settings); err != nil {
		return nil, err
	}
	e, err := ike.New(ike.Config{Logger: slog.New(slog.DiscardHandler), Sender: nopSender{}, Dataplane: dataplane.NewDryRunDataplane(log, maps.SPIRange{}), Credentials: l.Credentials, Pools: l.Pools})
	if err != nil {
		return nil, err
	}
	defer e.Close()
	for _, c := range l.Connections {
		if err := e.AddConnection(c); err != nil {
			return nil, err
		}
	}
	return l, nil
}

type nopSender struct{}

func (nopSender) Send(ike.Datagram) error { return nil }

// Start brings the daemon up: configuration, dataplane, engine, saved
// state, IKE sockets, control socket, metrics, start_action=start.
func Start(opts Options) (*Daemon, error) {
	if opts.ConfigPath == "" {
		opts.ConfigPath = swanctl.DefaultPath
	}
	if opts.SocketPath == "" {
		opts.SocketPath = DefaultSocket
	}
	if opts.SettingsPath == "" {
		opts.SettingsPath = swanctl.DefaultSettingsPath
	}
	if opts.StatePath == "" {
		opts.StatePath = DefaultState
	}
	if opts.Logs == nil {
		opts.Logs = NewLogs(os.Stderr, nil)
	}
	// The namespace the daemon was started in, read before anything
	// (the kernel probe's throwaway namespace) can move a thread, the main
	// one included, elsewhere: what the state file records (stateOwner).
	netns := currentNetNS()
	d := &Daemon{netns: netns, opts: opts, log: opts.Logs.Logger("dmn"), cfgLog: opts.Logs.Logger("cfg"), knlLog: opts.Logs.Logger("knl"),
		loads: gatewayLoads{byKey: map[gatewayKey]*gatewayLoad{}}, stop: make(chan struct{}), sender: &socketSender{}}
	ok := false
	defer func() {
		if !ok {
			d.closeAll()
		}
	}()
	l, err := LoadConfig(opts.ConfigPath)
	if err != nil {
		return nil, fmt.Errorf("loading %s: %w", opts.ConfigPath, err)
	}
	for _, w := range l.File.Warnings {
		d.cfgLog.Warn(w.Error())
	}
	d.cfgLog.Info(fmt.Sprintf("loaded %s", l.File))
	d.loaded = l
	settingsBytes, _ := os.ReadFile(opts.SettingsPath)
	d.settingsSum = sha256.Sum256(settingsBytes)
	rc, err := LoadRadius(opts.SettingsPath, opts.Logs.Logger("cfg"))
	if err != nil {
		return nil, err
	}
	if err := checkEAPRadius(l.Connections, rc, opts.SettingsPath); err != nil {
		return nil, err
	}
	d.hasRadius = rc != nil
	fs, err := loadFleetSettings(opts.SettingsPath)
	if err != nil {
		return nil, err
	}
	if fs != nil {
		if d.fleet, err = newFleet(d, fs); err != nil {
			return nil, err
		}
		d.sender.fleet = d.fleet
		if fs.Pools {
			d.fleetPools(l.Pools)
		}
	}
	backend := d.eapBackend(rc)
	if err := d.openDataplane(); err != nil {
		return nil, err
	}
	cfg := ike.Config{
		EAPBackend:   backend,
		XAuthBackend: xauthBackend(backend),
		Logger:       opts.Logs.Logger("ike"), Sender: d.sender, Dataplane: d.dp, Credentials: l.Credentials, Pools: l.Pools,
		SourceAddress:     sourceAddress,
		RetransmitTimeout: opts.RetransmitTimeout, RetransmitBase: opts.RetransmitBase, RetransmitTries: opts.RetransmitTries,
		CookieThreshold: opts.CookieThreshold, BlockThreshold: opts.BlockThreshold, FragmentSize: opts.FragmentSize,
		MakeBeforeBreak: &opts.MakeBeforeBreak, RekeyOutboundAtOnce: opts.RekeyOutboundAtOnce, CheckpointChildKeys: opts.CheckpointChildKeys,
		GatewayLoad: d.GatewayLoad, ResolveGateway: d.resolveGateway,
	}
	d.openJournal()
	if d.journal != nil {
		cfg.StateSink = d.journal
	}
	if d.fleet != nil {
		// A takeover needs the CHILD_SAs' keys in the records.
		cfg.CheckpointChildKeys = true
		tee := teeSink{fleet: d.fleet}
		if d.journal != nil {
			tee.journal = d.journal
		}
		cfg.StateSink = tee
		cfg.RedirectGateways = d.fleet.redirectGateways
	}
	d.histograms = newSAHistograms()
	d.histograms.observe(&cfg)
	d.engine, err = ike.New(cfg)
	if err != nil {
		return nil, err
	}
	for _, c := range l.Connections {
		if err := d.engine.AddConnection(c); err != nil {
			return nil, err
		}
	}
	d.restore()
	d.compact(false)
	if d.kernel != nil {
		if err := d.watchExpires(); err != nil {
			return nil, err
		}
		if err := d.watchAcquires(); err != nil {
			return nil, err
		}
	}
	socks, err := ikesocket.Listen(ikesocket.Config{Addrs: opts.ListenAddrs, Port: opts.Port, NATTPort: opts.NATTPort,
		NoEncap: opts.DryRun, ReceiveBuffer: opts.SocketReceiveBuffer, SendBuffer: opts.SocketSendBuffer, Log: opts.Logs.Logger("net")})
	if err != nil {
		return nil, err
	}
	d.sockets = socks
	d.sender.mu.Lock()
	d.sender.s = socks
	d.sender.mu.Unlock()
	socks.Run(func(dg ikesocket.Datagram) {
		if d.fleet.refuses(dg.Local.Addr()) {
			d.fleet.ikeDropped.Add(1)
			return
		}
		d.engine.HandleDatagram(ike.Datagram{Local: dg.Local, Remote: dg.Remote, Data: slices.Clone(dg.Data), Received: dg.Received})
	})
	d.log.Info(fmt.Sprintf("listening for IKE on %v", socks.Ports()))
	d.takeOverFile()
	if err := d.listenControl(); err != nil {
		return nil, err
	}
	if opts.Metrics != "" {
		if err := d.serveMetrics(opts.Metrics); err != nil {
			return nil, err
		}
	}
	d.wg.Add(1)
	go d.watch()
	d.wg.Add(1)
	go d.pollGatewayLoads()

	if err := d.watchAddresses(); err != nil {
		// MOBIKE then waits for path probing to find a new path.
		d.knlLog.Warn(fmt.Sprintf("not watching our addresses (MOBIKE): %v", err))
	}
	d.startActions(nil)
	if d.fleet != nil {
		// After the start actions: those from shared addresses wait
		// for the election (fleet.go, lead).
		d.fleet.start()
	}
	ok = true
	return d, nil
}

// openDataplane opens XFRM and the pinned maps, or the dry-run dataplane.
func (d *Daemon) openDataplane() error {
	if d.opts.DryRun {
		d.knlLog.Info("dataplane: dry-run, nothing is installed into the kernel")
		var r maps.SPIRange
		if d.opts.PinDir != "" {
			if s, err := maps.OpenPinned(d.opts.PinDir); err == nil {
				d.maps = s
				r, _ = s.Config.SPIRange()
			}
		}
		d.dp = dataplane.NewDryRunDataplane(d.knlLog, r)
		return nil
	}
	caps, err := xfrm.Probe()
	if err != nil {
		return fmt.Errorf("%w: probing XFRM failed: %v (start with --dataplane=dry-run to negotiate without installing)", ErrNoESP, err)
	}
	if !caps.ESP.Available {
		return fmt.Errorf("%w: %s (start with --dataplane=dry-run to negotiate without installing)", ErrNoESP, caps.ESP.Reason)
	}
	d.knlLog.Info("kernel: " + caps.Summary())
	s, err := maps.OpenPinned(d.opts.PinDir)
	if err != nil {
		return fmt.Errorf("%w: run `xdpsec load --wan IF` first", err)
	}
	d.maps = s
	k, err := xfrm.Open()
	if err != nil {
		return err
	}
	d.kernel = k
	if len(d.loaded.Pools) > 0 {
		d.hashClientPolicies()
	}
	var stash dataplane.Stash
	if err := loader.LiveFrames(); err != nil {
		d.knlLog.Info(fmt.Sprintf("not stashing ESP that arrives before its SA: %v", err))
	} else if r, err := loader.OpenStashRunner(d.opts.PinDir); err != nil {
		d.knlLog.Info(fmt.Sprintf("not stashing ESP that arrives before its SA: %v", err))
	} else {
		d.stash = r
		stash = dataplane.PinnedStash{Set: s, Runner: r}
		d.knlLog.Debug(fmt.Sprintf("ESP for allocated SPIs is held until their SA is in (stash of %d packets)", s.Stash.Capacity()))
	}
	kdp := dataplane.NewKernelDataplane(dataplane.KernelConfig{Kernel: k, BPF: dataplane.PinnedBPF{Set: s}, Log: d.knlLog, Spread: d.opts.Spread,
		Tunnels: dataplane.NewNetlinkTunnels(k, nil), Stash: stash})
	d.dp = kdp
	if err := kdp.AdoptPending(); err != nil {
		d.knlLog.Warn(fmt.Sprintf("taking over pending SPIs: %v", err))
	}
	return nil
}

// hashClientPolicies has the kernel hash policies by their remote
// address from a /32 (IPv4) or /128 (IPv6) on, whatever the local prefix:
// a road warrior's policies (0.0.0.0/0 to its virtual IP) are then found
// by a hash lookup instead of in the inexact policies, which keeps the
// outbound lookup flat with thousands of clients (bench/README.md,
// "Outbound lookup per remote-access client"). Site-to-site policies
// (prefixes on both sides) stay where they were. A kernel that refuses
// is logged; policies still work, only slower with many clients.
func (d *Daemon) hashClientPolicies() {
	for _, f := range []struct {
		v6 bool
		t  xfrm.HashThresholds
	}{{false, xfrm.HashThresholds{Local: 0, Remote: 32}}, {true, xfrm.HashThresholds{Local: 0, Remote: 128}}} {
		if err := d.kernel.SetHashThresholds(f.v6, f.t); err != nil {
			d.knlLog.Info(fmt.Sprintf("virtual IP pools: setting XFRM policy hash thresholds failed: %v", err))
			return
		}
	}
	d.knlLog.Info("virtual IP pools: XFRM policies hashed by the client address (hthresh4 0 32, hthresh6 0 128)")
}

// sourceAddress picks our address towards a peer by a route lookup: the
// local address of a connected UDP socket.
func sourceAddress(remote netip.Addr) (netip.Addr, bool) {
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(remote, ike.PortIKE)))
	if err != nil {
		return netip.Addr{}, false
	}
	defer c.Close()
	a := c.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap()
	return a, a.IsValid()
}

// startActions initiates the connections (all, or those named) that have a
// child with start_action=start and no IKE SA yet, with those children
// only (charon initiates each of them, on one IKE SA).
func (d *Daemon) startActions(only []string) {
	d.reconcileTraps()
	_, conns := d.allConns()
	up := map[string]bool{}
	for _, sa := range d.engine.IKESAs() {
		if sa.State < ike.IKESADeleting {
			up[sa.Name] = true
		}
	}
	done := map[string]bool{}
	for _, sc := range conns {
		c := sc.Connection
		var start []string
		for _, ch := range c.Children {
			if ch.StartAction&ike.ActionStart != 0 {
				start = append(start, ch.Name)
			}
		}
		if len(start) == 0 {
			continue
		}
		if done[c.Name] || up[c.Name] || only != nil && !slices.Contains(only, c.Name) {
			continue
		}
		if d.fleet.refusesAll(c.LocalAddrs) {
			// Another member serves the shared address: its leader
			// starts the connection (after a takeover, here).
			continue
		}
		done[c.Name] = true
		if _, err := d.engine.InitiateChildren(c.Name, start...); err != nil {
			d.log.Warn(fmt.Sprintf("start_action=start of %s failed: %v", c.Name, err))
		}
	}
}

// watch keeps the state file: what the engine changed without handing it over at
// once (message IDs, accounting) is appended twice a second, and the
// file is compacted when its changes outgrow its snapshot (journal.go).
// Changes that matter (an SA installed, rekeyed or removed) the engine
// appends itself before it reports them.
func (d *Daemon) watch() {
	defer d.wg.Done()
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-d.stop:
			return
		case <-t.C:
			d.engine.FlushState()
			if d.journal != nil && d.journal.wantsCompaction() {
				d.compact(true)
			}
		}
	}
}

// Reload reads the configuration again and applies the difference:
// connections added are loaded (and started if start_action=start),
// removed ones are unloaded and their IKE SAs terminated, changed ones are
// replaced (their IKE SAs terminated and started again if so
// configured), unchanged ones are left alone. Secrets are replaced.
func (d *Daemon) Reload() (swanctl.Changes, error) {
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	l, err := LoadConfig(d.opts.ConfigPath)
	if err != nil {
		d.cfgLog.Warn(fmt.Sprintf("reload of %s failed, keeping the loaded configuration: %v", d.opts.ConfigPath, err))
		return swanctl.Changes{}, err
	}
	d.mu.Lock()
	old := d.loaded
	d.mu.Unlock()
	ch := swanctl.Diff(old.File, l.File)
	for _, w := range l.File.Warnings {
		d.cfgLog.Warn(w.Error())
	}
	d.engine.SetCredentials(d.credentials(l))
	d.reloadRadius(l.Connections)
	keepLeases(old, l)
	d.engine.SetPools(d.pools(l))
	if len(l.Pools) > 0 && len(old.Pools) == 0 && d.kernel != nil {
		d.hashClientPolicies()
	}
	// A file connection skipped for VICI's of the same name is not the
	// engine's: its removal or change leaves VICI's alone.
	ch.Removed = slices.DeleteFunc(ch.Removed, d.VICIOwns)
	ch.Changed = slices.DeleteFunc(ch.Changed, d.VICIOwns)
	for _, name := range append(slices.Clone(ch.Removed), ch.Changed...) {
		d.terminateConn(name)
	}
	for _, name := range ch.Removed {
		if err := d.engine.RemoveConnection(name); err != nil {
			d.cfgLog.Warn(err.Error())
		}
		d.cfgLog.Info(fmt.Sprintf("unloaded connection '%s'", name))
	}
	for _, c := range l.Connections {
		if d.VICIOwns(c.Name) {
			d.cfgLog.Warn(fmt.Sprintf("connection '%s' of %s not loaded: one of that name was loaded over vici (unload-conn it first)", c.Name, d.opts.ConfigPath))
			continue
		}
		if slices.Contains(ch.RedirectChanged, c.Name) {
			// A new redirect rule applies to new clients; the SAs stay.
			if err := d.engine.AddConnection(c); err != nil {
				d.cfgLog.Warn(fmt.Sprintf("loading connection '%s' failed: %v", c.Name, err))
				continue
			}
			d.cfgLog.Info(fmt.Sprintf("reloaded the redirect rule of connection '%s'", c.Name))
		}
		if slices.Contains(ch.Added, c.Name) || slices.Contains(ch.Changed, c.Name) {
			if err := d.engine.AddConnection(c); err != nil {
				d.cfgLog.Warn(fmt.Sprintf("loading connection '%s' failed: %v", c.Name, err))
				continue
			}
			d.cfgLog.Info(fmt.Sprintf("loaded connection '%s'", c.Name))
		}
	}
	d.mu.Lock()
	d.loaded = l
	d.mu.Unlock()
	d.startActions(append(slices.Clone(ch.Added), ch.Changed...))
	d.cfgLog.Info(fmt.Sprintf("reloaded %s: %d added, %d removed, %d changed, secrets changed: %v",
		d.opts.ConfigPath, len(ch.Added), len(ch.Removed), len(ch.Changed), ch.SecretsChanged))
	return ch, nil
}

// keepLeases carries the leases of each pool whose addrs did not change
// over to the reloaded configuration, its other settings (dns, subnet,
// ...) taken from the new one. A pool whose addrs changed starts empty:
// clients connected from the old range keep their addresses until their
// IKE SAs go, and new clients may be given the same ones again, as with
// charon's reload of a changed pool.
func keepLeases(old, l *Loaded) {
	for _, p := range l.File.Pools {
		if o := old.File.Pool(p.Name()); o != nil && o.Addrs == p.Addrs {
			p.Leases = o.Leases
		}
	}
}

// terminateConn deletes the IKE SAs of a connection.
func (d *Daemon) terminateConn(name string) []uint32 {
	var ids []uint32
	for _, sa := range d.engine.IKESAs() {
		if sa.Name == name && sa.State < ike.IKESADeleting {
			if err := d.engine.DeleteIKESA(sa.ID); err == nil {
				ids = append(ids, sa.ID)
			}
		}
	}
	return ids
}

// Stop shuts the daemon down leaving the SAs in the kernel and the BPF
// maps: the engine is detached and its state saved for the next start.
func (d *Daemon) Stop() error {
	d.mu.Lock()
	if d.stopping {
		d.mu.Unlock()
		return nil
	}
	d.stopping = true
	d.mu.Unlock()
	if d.control != nil {
		d.control.Close()
	}
	if d.sockets != nil {
		d.sockets.Close()
	}
	var err error
	if d.engine != nil {
		// Resign at once: a standby takes the shared addresses over.
		d.fleet.close()
		// Trap policies go, as charon's at shutdown: a trap whose
		// reqid another daemon could hand out must not outlive us. The
		// policies a CHILD_SA shares stay with it; start_action = trap
		// installs them again at the next start.
		for _, t := range d.engine.Traps() {
			if err := d.engine.Uninstall(t.Conn, t.Child); err != nil {
				d.knlLog.Warn(fmt.Sprintf("uninstalling trap policy of CHILD_SA %s failed: %v", t.Child, err))
			}
		}
		st := d.engine.Detach()
		if d.journal != nil {
			err = d.journal.rewrite(&st, true)
			d.journal.close()
			if err != nil {
				err = fmt.Errorf("save IKE state: %w", err)
			} else {
				d.log.Info(fmt.Sprintf("saved %d IKE_SAs to %s; their SAs stay installed", len(st.SAs)+len(st.V1), d.opts.StatePath))
			}
		}
		st.Zero()
	}
	d.closeAll()
	return err
}

func (d *Daemon) closeAll() {
	select {
	case <-d.stop:
	default:
		close(d.stop)
	}
	// Resigns: a standby takes the shared addresses over at once.
	d.fleet.close()
	if d.control != nil {
		d.control.Close()
		os.Remove(d.opts.SocketPath)
	}
	if d.sockets != nil {
		d.sockets.Close()
	}
	if d.metrics != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		d.metrics.Shutdown(ctx)
		cancel()
	}
	d.wg.Wait()
	if kdp, ok := d.dp.(*dataplane.KernelDataplane); ok {
		// Its queued SPD changes go in before the maps are closed.
		kdp.Close()
	}
	if d.kernel != nil {
		d.kernel.Close()
		d.kernel = nil
	}
	if d.stash != nil {
		d.stash.Close()
		d.stash = nil
	}
	if d.maps != nil {
		d.maps.Close()
		d.maps = nil
	}
}

// Engine is the daemon's IKE engine (for tests).
func (d *Daemon) Engine() *ike.Engine { return d.engine }

// SocketPath is where the control socket listens.
func (d *Daemon) SocketPath() string { return d.opts.SocketPath }

func ensureDir(path string, mode os.FileMode) error {
	return os.MkdirAll(filepath.Dir(path), mode)
}
