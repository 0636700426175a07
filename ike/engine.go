package ike

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/xdpsec/xdpsec/ike/isakmp"
	"github.com/xdpsec/xdpsec/ike/message"
)

// Config is what an Engine needs from its surroundings. Logger, Sender and
// Dataplane are required.
type Config struct {
	Logger    *slog.Logger
	Sender    Sender
	Dataplane Dataplane
	Clock     Clock     // default SystemClock
	Rand      io.Reader // default crypto/rand

	Credentials Credentials
	// EAPBackend relays the EAP of connections whose remote round is
	// eap-radius (eap_backend.go); nil refuses those peers with
	// AUTHENTICATION_FAILED.
	EAPBackend EAPBackend
	// XAuthBackend checks the user names and passwords of IKEv1 XAuth
	// rounds that are xauth-radius (xauth_backend.go); nil refuses those
	// users.
	XAuthBackend XAuthBackend
	// Pools are the virtual IP address pools connections name (pools);
	// SetPools replaces them.
	Pools []*Pool

	// SourceAddress picks our address towards a peer when a connection
	// has no local_addrs (a route lookup in the daemon). Without it, such
	// connections send from an unspecified address and learn theirs from
	// the first response.
	SourceAddress func(remote netip.Addr) (netip.Addr, bool)

	// Retransmission (RFC 7296 section 2.1), as charon's
	// retransmit_timeout, retransmit_base and retransmit_tries: the n-th
	// retransmit is sent Timeout*Base^n after the previous one, and the
	// exchange fails Timeout*Base^Tries after the last. Defaults 4s, 1.8, 5.
	RetransmitTimeout time.Duration
	RetransmitBase    float64
	RetransmitTries   int

	// CookieThreshold is the number of half-open IKE SAs from which
	// IKE_SA_INIT requests must carry a COOKIE (RFC 7296 section 2.6;
	// charon's cookie_threshold, default 30). Negative disables cookies.
	CookieThreshold int
	// BlockThreshold is how many half-open responder IKE SAs (IKEv2, and
	// IKEv1 Main and Aggressive Mode) one source address may hold: further
	// requests for new IKE SAs from it are dropped, counted in
	// Stats.DroppedBlocked, until one of its SAs is established or
	// destroyed (charon's block_threshold; default DefaultBlockThreshold,
	// 5). Negative disables the limit (charon's block_threshold = 0; here
	// zero takes the default, as for the other fields).
	BlockThreshold int
	// CookieSecretLifetime is how often the cookie secret is replaced
	// (the previous one stays valid for one more period). Default 1 minute.
	CookieSecretLifetime time.Duration
	// HalfOpenTimeout destroys responder IKE SAs whose IKE_AUTH does not
	// complete in time (charon's half_open_timeout, default 30s).
	HalfOpenTimeout time.Duration
	// FragmentSize is the largest IP datagram of a fragmented IKE message
	// (charon's fragment_size, default 1280).
	FragmentSize int
	// MakeBeforeBreak reauthenticates an IKE SA (reauth_time) by
	// establishing the new IKE SA and its CHILD_SAs before deleting the old
	// ones, without a gap in traffic (charon's make_before_break); false
	// deletes the old IKE SA first (break-before-make, charon 5.9's
	// default). Nil means yes, strongSwan 6's default.
	MakeBeforeBreak *bool
	// RekeyOutboundAtOnce: as the responder of a CHILD_SA rekey, install
	// the new outbound SA with the inbound one and send on it at once,
	// as RFC 7296 allows. By default the outbound SA waits for the
	// peer's DELETE of the old CHILD_SA, as charon's does, so that
	// nothing arrives at the peer before its inbound SA is in. For tests
	// of the initiator's side: a peer that does not wait.
	RekeyOutboundAtOnce bool

	// Port and NATTPort are the ports the daemon's IKE sockets listen on
	// (charon's port and port_nat_t, defaults 500 and 4500). Messages on
	// NATTPort carry the non-ESP marker. Connections without local_port
	// use Port, and an IKE SA on Port floats to NATTPort when a NAT is
	// detected, as charon's do.
	Port, NATTPort uint16
	// KeepAlive is the interval of NAT-T keepalives (RFC 3948 section 4)
	// sent while we are behind a NAT and nothing else was sent to the peer
	// (charon's keep_alive, default 20s). Negative disables them.
	KeepAlive time.Duration
	// OnPanic, if set, is told of each panic the safety net recovered
	// (after it is logged and counted): fuzz targets and tests fail on it.
	OnPanic func(recovered any)
	// OnIKESAEstablished and OnChildSAInstalled, if set, are told of each
	// IKE SA established from an IKE_SA_INIT (IKEv1: phase 1) and each CHILD_SA
	// installed, with how long that took (the daemon's histograms). They
	// are called under the engine lock: they must return at once and not
	// call the engine.
	OnIKESAEstablished func(SAEvent)
	OnChildSAInstalled func(SAEvent)

	// StateSink, if set, is handed the records of the IKE SAs as they
	// change (state_journal.go): the daemon's journal, from which a
	// restart takes them back (Import).
	StateSink StateSink

	// FollowRedirects follows a gateway's REDIRECT (RFC 5685) and
	// announces REDIRECT_SUPPORTED in IKE_SA_INIT (charon's
	// follow_redirects); nil means yes.
	FollowRedirects *bool
	// ResolveGateway looks up the address of a gateway a REDIRECT names
	// by domain name, and calls done with it, at once or later from any
	// goroutine (the daemon resolves in the background), but always
	// eventually: a client redirected in IKE_SA_INIT waits for it. Nil:
	// such redirects fail.
	ResolveGateway func(name string, done func(netip.Addr, error))
	// GatewayLoad reports the current load (established IKE SAs) of a
	// gateway of a connection's redirect rule, false if unknown (its
	// metrics did not answer). It is called under the engine lock, for
	// each IKE_SA_INIT a load rule redirects: it must answer from what it
	// has, without waiting. Nil: loads are unknown and the hash decides.
	GatewayLoad func(conn string, gw RedirectGateway) (int, bool)
	// RedirectGateways are the gateways a redirect rule with Fleet set
	// chooses from besides its own (the other members of a fleet, their
	// loads answered by GatewayLoad). Called under the engine lock, like
	// GatewayLoad: it must answer from what it has.
	RedirectGateways func(conn string) []RedirectGateway

	// DeleteRekeyedDelay keeps the inbound SA of a rekeyed CHILD_SA for
	// this long after the CHILD_SA is deleted, so that packets the peer
	// sent on it just before it switched still arrive (charon's
	// delete_rekeyed_delay, default 5s). Negative deletes at once.
	DeleteRekeyedDelay time.Duration

	// CheckpointChildKeys keeps a copy of each CHILD_SA's keys while it
	// is installed and exports them (ExportedChildSA.Keys), so that
	// another member of a fleet can install its SAs (TakeOver). Off, the
	// keys live in the dataplane only.
	CheckpointChildKeys bool
}

// Stats count what the engine did with datagrams, mostly the ones it
// dropped and why.
type Stats struct {
	Received, Sent        uint64
	Retransmits           uint64
	DroppedMalformed      uint64 // no valid IKE header, or undecodable unauthenticated message
	DroppedUnknownSA      uint64 // SPIs of no IKE SA of ours
	DroppedAuthentication uint64 // SK/SKF integrity check failed
	DroppedMessageID      uint64 // message ID neither expected nor a retransmit
	DroppedUnexpected     uint64 // right SA and ID, wrong exchange or state
	DroppedESP            uint64 // ESP on the NAT-T port or keepalives
	Panics                uint64 // bugs caught by the safety net (recoverPanic)
	CookiesSent           uint64
	CookiesRejected       uint64
	DroppedBlocked        uint64 // new IKE SA requests from a source at its BlockThreshold
	InvalidSyntaxSent     uint64
	KeepAlivesSent        uint64 // NAT-T keepalives
	KeepAlivesReceived    uint64
	EAPFailures           uint64 // EAP conversations failed or AUTH after EAP wrong
	XAuthFailures         uint64 // IKEv1 XAuth rounds failed (wrong password, unknown user, no answer)
	VIPFailures           uint64 // virtual IP requests no pool could serve
	RedirectsSent         uint64 // clients redirected, in IKE_SA_INIT or established (RFC 5685)
	InvalidRedirects      uint64 // IKE_SA_INIT responses dropped for a REDIRECT with a wrong nonce or undecodable
	MOBIKEUpdates         uint64 // address updates (RFC 4555) sent, or followed once checked
	DroppedMOBIKE         uint64 // MOBIKE notifies refused: UPDATE_SA_ADDRESSES from the responder or stale, COOKIE2 not echoed
	Acquires              uint64 // the kernel's requests for SAs of trap policies (Acquire)
	AcquiresPending       uint64 // of them, dropped while an initiation for the same trap was pending
	AcquiresUnknown       uint64 // of them, for a reqid of no trap policy
	AcquiresInitiated     uint64 // of them, answered by initiating the trapped CHILD_SA
	MIDSyncs              uint64 // RFC 6311 message ID synchronisations completed (either role)
	DroppedMIDSync        uint64 // IKEV2_MESSAGE_ID_SYNC refused: malformed, unannounced, wrong nonce, stale
	// ResponseToInbound measures, for CHILD_SAs we initiated, the time
	// from the arrival of the response that carried the peer's keying
	// material to our inbound SA being installed: the peer may send on
	// the CHILD_SA as soon as it has answered, and what arrives before
	// is dropped as for an unknown SPI.
	ResponseToInbound DurationStats
}

// DurationStats sum up measured durations.
type DurationStats struct {
	Count    uint64
	Sum, Max time.Duration
}

func (d *DurationStats) add(v time.Duration) {
	d.Count++
	d.Sum += v
	d.Max = max(d.Max, v)
}

// Engine runs IKEv2 for a set of connections: it takes received datagrams,
// sends through its Sender, installs CHILD_SAs through its Dataplane and
// keeps time with its Clock. All methods are safe for concurrent use; one
// lock serialises everything, which keeps each IKE SA's task manager
// single-threaded as charon's IKE SA checkout does.
type Engine struct {
	mu sync.Mutex // guards everything below
	// followups are the CHILD_SAs whose IKE_FOLLOWUP_KE exchanges the
	// peer has yet to send (RFC 9370), at most one per IKE SA; nil
	// until one is (task_child_followup.go).
	followups              map[*ikeSA]*childFollowup
	cfg                    Config
	log                    *slog.Logger
	clock                  Clock
	rand                   io.Reader
	conns                  []*connection
	sas                    map[uint64]*ikeSA // by our SPI
	init                   map[initKey]*ikeSA
	reqids                 reqidTable
	traps                  map[string]*trap // by connection/child (trap.go)
	cookie                 cookieJar
	stats                  Stats
	nextIKEID, nextChildID uint32
	counters               counterSet
	// observer is told of SA events (observer.go); nil for nobody.
	observer Observer
	// byID are the IKE SAs in sas by unique ID; childIdx the CHILD_SAs
	// of the IKE SAs by unique ID, spiIdx by their inbound and outbound
	// SPIs: lookups that do not walk every SA.
	byID     map[uint32]*ikeSA
	childIdx map[uint32]*childSA
	spiIdx   map[uint32][]*childSA
	// journal are the IKE SAs changed since the StateSink had them.
	journal        stateJournal
	lastInvalidSPI time.Time
	// received is when the datagram being handled arrived, called when
	// HandleDatagram was called with it, locked when it had the lock.
	received, called, locked time.Time
	halfOpenCount            int // responder IKEv2 SAs not yet established
	// halfOpenBySource counts the responder IKE SAs (IKEv2 and IKEv1) not
	// yet established by source address, for BlockThreshold; an address
	// with none has no entry.
	halfOpenBySource   map[netip.Addr]int
	lastBlockLog       time.Time
	blockLogSuppressed uint64 // refusals not logged since lastBlockLog
	ikev1              v1State
	peers              connectedPeers // IKE SAs that are contacts, for uniqueness
	// connecting counts the IKE SAs we initiate that are not yet
	// established, by connection and peer address (INITIAL_CONTACT).
	connecting map[connectingKey]int
	// retired are the inbound SAs of deleted rekeyed CHILD_SAs, removed
	// from the dataplane when their timer fires (DeleteRekeyedDelay).
	retired map[SAID]Timer
	// handling is the IKE SA a datagram or timer is being handled for:
	// what the panic safety net deletes (recoverPanic).
	handling  panicScope
	dpJournal *dataplaneJournal // cfg.Dataplane, noting what it added
	// selfLoad is our established IKE SAs as last counted for a redirect
	// rule (establishedCount), at selfLoadAt.
	selfLoad   int
	selfLoadAt time.Time
	// eapSecrets indexes cfg.Credentials.EAP (eap_secrets.go).
	eapSecrets *eapSecretIndex
	closed     bool
	// localAddrs are our addresses as AddressesChanged last reported
	// them (MOBIKE).
	localAddrs []netip.Addr
}

// panicScope is an IKE SA of either version, as the panic safety net
// sees it.
type panicScope interface {
	name() string
	destroy()
}

// initKey finds the IKE SA an IKE_SA_INIT retransmit belongs to before the
// peer knows our SPI.
type initKey struct {
	remote netip.AddrPort
	spiI   uint64
}

var (
	// ErrUnknownConnection is returned for a connection name not loaded.
	ErrUnknownConnection = errors.New("ike: no such connection")
	// ErrUnknownSA is returned for an IKE or CHILD SA ID not known.
	ErrUnknownSA = errors.New("ike: no such SA")
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("ike: engine closed")
)

// New returns an engine with no connections.
func New(cfg Config) (*Engine, error) {
	if cfg.Logger == nil || cfg.Sender == nil || cfg.Dataplane == nil {
		return nil, errors.New("ike: Config needs Logger, Sender and Dataplane")
	}
	if cfg.Clock == nil {
		cfg.Clock = SystemClock{}
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	if cfg.RetransmitTimeout <= 0 {
		cfg.RetransmitTimeout = 4 * time.Second
	}
	if cfg.RetransmitBase < 1 {
		cfg.RetransmitBase = 1.8
	}
	if cfg.RetransmitTries <= 0 {
		cfg.RetransmitTries = 5
	}
	if cfg.CookieThreshold == 0 {
		cfg.CookieThreshold = 30
	}
	if cfg.BlockThreshold == 0 {
		cfg.BlockThreshold = DefaultBlockThreshold
	}
	if cfg.CookieSecretLifetime <= 0 {
		cfg.CookieSecretLifetime = time.Minute
	}
	if cfg.DeleteRekeyedDelay == 0 {
		cfg.DeleteRekeyedDelay = 5 * time.Second
	}
	if cfg.HalfOpenTimeout <= 0 {
		cfg.HalfOpenTimeout = 30 * time.Second
	}
	if cfg.FragmentSize <= 0 {
		cfg.FragmentSize = 1280
	}
	if cfg.Port == 0 {
		cfg.Port = PortIKE
	}
	if cfg.NATTPort == 0 {
		cfg.NATTPort = PortNATT
	}
	if cfg.Port == cfg.NATTPort {
		return nil, errors.New("ike: Config.Port and NATTPort must differ")
	}
	if cfg.KeepAlive == 0 {
		cfg.KeepAlive = 20 * time.Second
	}
	e := &Engine{
		dpJournal: &dataplaneJournal{Dataplane: cfg.Dataplane},
		log:       cfg.Logger, clock: engineClock(cfg.Clock), rand: cfg.Rand,
		sas: map[uint64]*ikeSA{}, init: map[initKey]*ikeSA{}, retired: map[SAID]Timer{},
		halfOpenBySource: map[netip.Addr]int{},
		reqids:           reqidTable{byKey: map[string]*reqidEntry{}},
	}
	cfg.Dataplane = e.dpJournal
	e.cfg = cfg
	e.trackPools()
	e.eapSecrets = newEAPSecretIndex(cfg.Credentials.EAP)
	e.cookie.rand = cfg.Rand
	return e, nil
}

// AddConnection loads a connection (swanctl --load-conns). A connection
// with the same name is replaced for new IKE SAs.
func (e *Engine) AddConnection(c *Connection) error {
	rc, err := resolveConnection(c, e.cfg.Port)
	if err != nil {
		return err
	}
	e.mu.Lock()
	defer e.unlock()
	for i, old := range e.conns {
		if old.Name == c.Name {
			e.conns[i] = rc
			return nil
		}
	}
	e.conns = append(e.conns, rc)
	return nil
}

// Initiate starts the named connection: an IKE SA with all its children
// (swanctl --initiate). It returns the IKE SA's unique ID; the exchanges
// run as datagrams arrive.
func (e *Engine) Initiate(name string) (uint32, error) {
	return e.initiateNamed(name, func(c *connection) ([]*childConfig, error) { return c.children, nil })
}

// initiateNamed starts an IKE SA of the named connection with the
// children pick chooses of it.
func (e *Engine) initiateNamed(name string, pick func(c *connection) ([]*childConfig, error)) (uint32, error) {
	e.mu.Lock()
	defer e.unlock()
	if e.closed {
		return 0, ErrClosed
	}
	c := e.connection(name)
	if c == nil {
		return 0, fmt.Errorf("%w: %q", ErrUnknownConnection, name)
	}
	cfgs, err := pick(c)
	if err != nil {
		return 0, err
	}
	if c.Version == 1 {
		sa, err := e.initiateV1(c, cfgs)
		if err != nil {
			return 0, err
		}
		return sa.id, nil
	}
	sa, err := e.initiate(c, cfgs)
	if err != nil {
		return 0, err
	}
	return sa.id, nil
}

func (e *Engine) connection(name string) *connection {
	for _, c := range e.conns {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// initiatorEnds are the addresses an IKE SA of either version we
// initiate on c starts with: the first remote address, and the first
// local one, else the one SourceAddress picks (unspecified without).
func (e *Engine) initiatorEnds(c *connection) (local, remote netip.AddrPort, err error) {
	if len(c.RemoteAddrs) == 0 {
		return local, remote, fmt.Errorf("ike: connection %q: no remote address to initiate to", c.Name)
	}
	var addr netip.Addr
	if len(c.LocalAddrs) > 0 {
		addr = c.LocalAddrs[0]
	} else if e.cfg.SourceAddress != nil {
		if a, ok := e.cfg.SourceAddress(c.RemoteAddrs[0]); ok {
			addr = a
		}
	}
	return netip.AddrPortFrom(addr, c.LocalPort), netip.AddrPortFrom(c.RemoteAddrs[0], c.RemotePort), nil
}

func (e *Engine) initiate(c *connection, children []*childConfig) (*ikeSA, error) {
	local, remote, err := e.initiatorEnds(c)
	if err != nil {
		return nil, err
	}
	return e.startIKESA(c, children, local, remote, nil), nil
}

// startIKESA initiates an IKE SA between local and remote with the
// children, then runs last (nil for none) once their exchanges are done.
func (e *Engine) startIKESA(c *connection, children []*childConfig, local, remote netip.AddrPort, last task) *ikeSA {
	return e.startIKESAWith(c, children, local, remote, last, nil)
}

// startIKESAWith is startIKESA with prep run on the new IKE SA before
// its first request is built.
func (e *Engine) startIKESAWith(c *connection, children []*childConfig, local, remote netip.AddrPort, last task, prep func(*ikeSA)) *ikeSA {
	sa := e.newIKESA(c, true, local, remote)
	sa.initAt = e.clock.Now()
	if prep != nil {
		prep(sa)
	}
	sa.spiI = e.newSPI()
	e.putSA(sa.spiI, sa)
	infof(sa.log, "initiating IKE_SA %s to %s", sa.name(), sa.remote.Addr())
	sa.tm.queue(newIKEInit(sa, true))
	var first *childConfig
	if len(children) > 0 {
		first = children[0]
	}
	sa.tm.queue(newIKEAuth(sa, true, first))
	for _, cc := range children[min(1, len(children)):] {
		sa.tm.queue(newChildCreate(sa, true, cc, nil))
	}
	if last != nil {
		sa.tm.queue(last)
	}
	sa.tm.initiate()
	return sa
}

// newSPI returns a random IKE SPI not in use.
func (e *Engine) newSPI() uint64 {
	var b [8]byte
	for {
		if _, err := io.ReadFull(e.rand, b[:]); err != nil {
			panic("ike: random source failed: " + err.Error())
		}
		spi := binary.BigEndian.Uint64(b[:])
		if spi != 0 && e.sas[spi] == nil {
			return spi
		}
	}
}

func (e *Engine) randomBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := io.ReadFull(e.rand, b); err != nil {
		panic("ike: random source failed: " + err.Error())
	}
	return b
}

// afterFunc runs f under the engine lock after d, unless the engine is
// closed by then.
func (e *Engine) afterFunc(d time.Duration, f func()) Timer {
	return e.afterFuncFor(nil, d, f)
}

// engineClock is the clock the engine runs its timers on: package time's
// through a timerQueue (a heap entry per timer rather than a runtime
// timer), a test's fake as it is (its tests count its timers).
func engineClock(c Clock) Clock {
	if _, ok := c.(SystemClock); ok {
		return newTimerQueue(c)
	}
	return c
}

// afterFuncFor is afterFunc for a timer of an IKE SA: the one the panic
// safety net deletes if f panics.
func (e *Engine) afterFuncFor(sa panicScope, d time.Duration, f func()) Timer {
	if q, ok := e.clock.(*timerQueue); ok {
		// The queue's entry holds what the closure below would: a few
		// timers of every IKE SA wait, each an allocation smaller.
		return q.afterFuncScoped(d, e, sa, f)
	}
	return e.clock.AfterFunc(d, func() { e.runTimer(sa, f) })
}

// runTimer runs the callback f of a timer of sa (nil: of the engine).
func (e *Engine) runTimer(sa panicScope, f func()) {
	e.mu.Lock()
	defer e.unlock()
	if e.closed {
		return
	}
	defer e.recoverPanic(netip.AddrPort{})
	e.handle(sa)
	f()
}

// Stats returns a copy of the engine's counters.
func (e *Engine) Stats() Stats {
	e.mu.Lock()
	defer e.unlock()
	return e.stats
}

// Close deletes every IKE SA without telling the peers (their CHILD_SAs
// are removed from the dataplane) and stops the engine.
func (e *Engine) Close() {
	e.mu.Lock()
	defer e.unlock()
	for _, sa := range e.allSAs() {
		sa.afterDestroy = nil // no reauthentication starts now
		sa.ending(EndShutdown)
		sa.destroy()
	}
	for _, sa := range e.allV1SAs() {
		sa.destroy()
	}
	e.removeRetired()
	e.closed = true
}

// putSA makes sa found by our SPI spi, and by its unique ID.
func (e *Engine) putSA(spi uint64, sa *ikeSA) {
	e.sas[spi] = sa
	if e.byID == nil {
		e.byID = map[uint32]*ikeSA{}
	}
	e.byID[sa.id] = sa
}

// allSAs are the IKE SAs, each once, in unique-ID order. They are taken
// from byID, which indexes every IKE SA in sas, without a map of its own
// (at 100,000 SAs building one held the engine's lock for hundreds of
// milliseconds at the start of every compaction, with the GC busy), then
// any of sas and init that byID does not have (the half-open ones).
func (e *Engine) allSAs() []*ikeSA {
	out := make([]*ikeSA, 0, len(e.byID)+len(e.init))
	for _, sa := range e.byID {
		out = append(out, sa)
	}
	var extra map[*ikeSA]bool
	add := func(sa *ikeSA) {
		if e.byID[sa.id] == sa || extra[sa] {
			return
		}
		if extra == nil {
			extra = map[*ikeSA]bool{}
		}
		extra[sa] = true
		out = append(out, sa)
	}
	for _, sa := range e.sas {
		add(sa)
	}
	for _, sa := range e.init {
		add(sa)
	}
	sortSAs(out)
	return out
}

// halfOpen is the number of responder IKE SAs whose IKE_AUTH has not
// completed: counted as they come and go, since every IKE_SA_INIT request
// asks and a walk of all SAs would make that cost grow with their number.
func (e *Engine) halfOpen() int { return e.halfOpenCount }

func (e *Engine) send(local, remote netip.AddrPort, packets [][]byte) {
	for _, p := range packets {
		data := p
		if local.Port() == e.cfg.NATTPort {
			data = append(append(make([]byte, 0, 4+len(p)), nonESPMarker...), p...)
		}
		if err := e.cfg.Sender.Send(Datagram{Local: local, Remote: remote, Data: data}); err != nil {
			e.log.Debug("sending packet failed", "err", err)
			continue
		}
		e.stats.Sent++
		debugf(e.log, "sending packet: from %s to %s (%d bytes)", fmtAddr(local), fmtAddr(remote), len(data))
	}
}

func fmtAddr(a netip.AddrPort) addrArg { return addrArg(a) }

// addrArg formats an address and port as charon does ("192.0.2.1[500]")
// when a log line is written, not when it is only considered.
type addrArg netip.AddrPort

func (a addrArg) String() string {
	return fmt.Sprintf("%s[%d]", netip.AddrPort(a).Addr(), netip.AddrPort(a).Port())
}

// HandleDatagram processes one received datagram. It never panics on bad
// input: everything undecodable is counted in Stats and dropped, or
// answered with a notify as RFC 7296 asks.
func (e *Engine) HandleDatagram(d Datagram) {
	called := e.clock.Now()
	e.mu.Lock()
	defer e.unlock()
	if e.closed {
		return
	}
	defer e.recoverPanic(d.Remote)
	e.handle(nil)
	e.stats.Received++
	e.called, e.locked = called, e.clock.Now()
	e.received = d.Received
	if e.received.IsZero() {
		e.received = e.called
	}
	data := d.Data
	if d.Local.Port() == e.cfg.NATTPort {
		if len(data) == 1 && data[0] == 0xff {
			e.stats.KeepAlivesReceived++
			return
		}
		if len(data) < 4 || binary.BigEndian.Uint32(data) != 0 {
			e.stats.DroppedESP++
			return
		}
		data = data[4:]
	}
	if isakmp.MajorVersionOf(data) == isakmp.MajorVersion {
		e.handleV1(data, d)
		return
	}
	h, err := message.UnmarshalHeader(data)
	if err != nil {
		e.stats.DroppedMalformed++
		e.log.Debug("dropping invalid IKE message", "from", d.Remote, "err", err)
		return
	}
	if h.ExchangeType == message.IKE_SA_INIT && !h.IsResponse() && h.ResponderSPI == 0 && h.IsInitiator() {
		e.handleInitRequest(h, data, d)
		return
	}
	ours := h.InitiatorSPI
	if h.IsInitiator() {
		ours = h.ResponderSPI
	}
	sa := e.sas[ours]
	if sa == nil || !sa.matchesSPIs(h) {
		e.stats.DroppedUnknownSA++
		debugf(e.log, "ignoring %v %s for unknown IKE_SA %016x_i %016x_r", h.ExchangeType, reqOrResp(&h), h.InitiatorSPI, h.ResponderSPI)
		e.invalidSPI(h, d)
		return
	}
	e.handling = sa
	sa.receive(h, data, d)
}

func reqOrResp(h *message.Header) string {
	if h.IsResponse() {
		return "response"
	}
	return "request"
}

// handleInitRequest finds the IKE SA of a retransmitted IKE_SA_INIT
// request or creates a responder IKE SA for a new one, after the cookie
// check and the source's half-open limit (in charon's order).
func (e *Engine) handleInitRequest(h message.Header, data []byte, d Datagram) {
	if sa := e.init[initKey{d.Remote, h.InitiatorSPI}]; sa != nil {
		e.handling = sa
		sa.receive(h, data, d)
		return
	}
	m, err := message.Unmarshal(data)
	if err != nil {
		e.stats.DroppedMalformed++
		e.log.Debug("dropping invalid IKE_SA_INIT request", "from", d.Remote, "err", err)
		return
	}
	if !e.checkCookie(m, d) {
		return
	}
	src := halfOpenSource(d.Remote)
	if e.blocked(src) {
		return
	}
	c := e.connectionFor(d.Local.Addr(), d.Remote.Addr())
	if c == nil {
		infof(e.log, "no IKE config found for %s...%s, sending NO_PROPOSAL_CHOSEN", d.Local.Addr(), d.Remote.Addr())
		e.sendUnprotectedNotify(h, d, message.NO_PROPOSAL_CHOSEN, nil)
		return
	}
	infof(e.log, "%s is initiating an IKE_SA", d.Remote.Addr())
	sa := e.newIKESA(c, false, d.Local, d.Remote)
	sa.initAt = e.clock.Now()
	sa.spiI = h.InitiatorSPI
	sa.spiR = e.newSPI()
	e.putSA(sa.spiR, sa)
	sa.initKey, sa.inInit = initKey{d.Remote, h.InitiatorSPI}, true
	e.init[sa.initKey] = sa
	sa.halfOpen = true
	e.halfOpenCount++
	e.enterHalfOpenSource(src)
	sa.halfOpenTimer = e.afterFunc(e.cfg.HalfOpenTimeout, func() {
		if sa.state <= IKESAConnecting {
			infof(sa.log, "IKE_SA %s half-open timeout", sa.name())
			sa.destroy()
		}
	})
	e.handling = sa
	sa.receive(h, data, d)
}

// sendUnprotectedNotify answers an IKE_SA_INIT request with a lone notify
// (RFC 7296 section 2.6, 2.7: COOKIE, INVALID_KE_PAYLOAD,
// NO_PROPOSAL_CHOSEN).
func (e *Engine) sendUnprotectedNotify(req message.Header, d Datagram, t message.NotifyType, data []byte) {
	m := &message.Message{
		Header: message.Header{InitiatorSPI: req.InitiatorSPI, ExchangeType: message.IKE_SA_INIT,
			Flags: message.FlagResponse, MessageID: req.MessageID},
		Payloads: []message.Payload{&message.Notify{NotifyType: t, Data: data}},
	}
	b, err := m.Marshal()
	if err != nil {
		return
	}
	if infoOn(e.log) {
		e.log.Info("generating " + summarize(m))
	}
	e.countMessage("", m.Header, false)
	e.send(d.Local, d.Remote, [][]byte{b})
}

// connectionFor finds the first connection whose addresses allow these.
func (e *Engine) connectionFor(local, remote netip.Addr) *connection {
	for _, c := range e.conns {
		if addrAllowed(c.LocalAddrs, local) && addrAllowed(c.RemoteAddrs, remote) {
			return c
		}
	}
	return nil
}

func addrAllowed(list []netip.Addr, a netip.Addr) bool {
	if len(list) == 0 {
		return true
	}
	for _, x := range list {
		if x == a.Unmap() {
			return true
		}
	}
	return false
}

// invalidSPI answers an encrypted request for an IKE SA we do not have
// with an unprotected INVALID_IKE_SPI notify (RFC 7296 section 2.21.4), at
// most once a second so that we are no amplifier.
func (e *Engine) invalidSPI(h message.Header, d Datagram) {
	if h.IsResponse() || (h.NextPayload != message.PayloadSK && h.NextPayload != message.PayloadSKF) {
		return
	}
	now := e.clock.Now()
	if !e.lastInvalidSPI.IsZero() && now.Sub(e.lastInvalidSPI) < time.Second {
		return
	}
	e.lastInvalidSPI = now
	m := &message.Message{
		Header: message.Header{InitiatorSPI: h.InitiatorSPI, ResponderSPI: h.ResponderSPI, ExchangeType: message.INFORMATIONAL,
			Flags: message.FlagResponse, MessageID: h.MessageID},
		Payloads: []message.Payload{&message.Notify{NotifyType: message.INVALID_IKE_SPI}},
	}
	if !h.IsInitiator() {
		m.Header.Flags |= message.FlagInitiator
	}
	b, err := m.Marshal()
	if err != nil {
		return
	}
	if infoOn(e.log) {
		e.log.Info("generating " + summarize(m))
	}
	e.countMessage("", m.Header, false)
	e.send(d.Local, d.Remote, [][]byte{b})
}
