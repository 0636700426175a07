package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/xdpsec/xdpsec/ike/transform"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/xdpsec/xdpsec/ike"
	"github.com/xdpsec/xdpsec/internal/ikesocket"
)

// The load generator: our IKE engines as initiators with a null
// dataplane, on one set of IKE sockets in the generator namespace, each
// IKE SA (with one CHILD_SA) from a source address of its own out of
// legitPrefix. There is one engine per CPU (an engine serialises its
// work under one lock), each owning every K-th source address, and
// received datagrams go to the engine that owns their destination.

// genConn is the connection every generator engine initiates.
const genConn = "bench"

// loadGen is the generator's engines and sockets.
type loadGen struct {
	socks   *ikesocket.Sockets
	engines []*genEngine

	established, failed atomic.Int64
	// cookies counts COOKIE challenges received (IKE_SA_INIT responses
	// carrying only a COOKIE notify).
	cookies atomic.Int64
	wg      sync.WaitGroup

	// connFor is the connection of the IKE SA an engine opens next, from
	// a source address of its own.
	connFor func(p Proposal, src netip.Addr) *ike.Connection
	// vipPool, where valid, is the pool remote-access initiators get
	// their virtual IP from: a CHILD_SA counts as established only when
	// its local selector is an address of it, else as failed (noVIP).
	vipPool netip.Prefix
	// noVIP counts CHILD_SAs established without a virtual IP of the
	// pool, dns the DNS servers received in configuration payloads.
	noVIP, dns atomic.Int64
	// atMark, if set, is called by closedLoop each time it notes a
	// further tenth of the SAs done (from its one polling goroutine).
	atMark func()
	// additionalKE counts IKE SAs whose selected proposal has an
	// additional key exchange (RFC 9370: KE1_... in the initiator's
	// "selected proposal: IKE:..." line).
	additionalKE atomic.Int64
	// retransmits counts requests the initiators sent again.
	retransmits atomic.Int64
}

// genOptions say what the generator's initiators authenticate with and
// which connection each IKE SA uses.
type genOptions struct {
	credentials ike.Credentials
	connFor     func(p Proposal, src netip.Addr) *ike.Connection
	vipPool     netip.Prefix
}

// pskGen is the generator of the PSK runs: genConnection from each
// source address.
var pskGen = genOptions{
	credentials: ike.Credentials{Shared: []ike.SharedKey{{Secret: []byte(ikePSK)}}},
	connFor:     genConnection,
}

// genEngine is one initiator engine and its share of the source addresses.
type genEngine struct {
	g    *loadGen
	e    *ike.Engine
	in   chan ike.Datagram
	k, n int    // this engine's index, the number of engines
	next uint32 // next source address index
	// slots, if set, gets a token back when an IKE SA of this engine is
	// established or fails (the closed loop's window).
	slots atomic.Pointer[chan struct{}]
}

// genHandler counts established CHILD_SAs and failed IKE SAs from an
// engine's log lines (Info and above, as a daemon logs).
type genHandler struct {
	g  *loadGen
	ge *genEngine
}

func (h genHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelInfo }
func (h genHandler) Handle(_ context.Context, r slog.Record) error {
	m := r.Message
	switch {
	case strings.HasPrefix(m, "CHILD_SA ") && strings.Contains(m, " established with SPIs"):
		if h.g.vipPool.IsValid() && !localTSIn(m, h.g.vipPool) {
			h.g.noVIP.Add(1)
			h.g.failed.Add(1)
		} else {
			h.g.established.Add(1)
		}
	case strings.HasPrefix(m, "received DNS server "):
		h.g.dns.Add(1)
		return nil
	case strings.HasPrefix(m, "sending retransmit "):
		h.g.retransmits.Add(1)
		return nil
	case strings.HasPrefix(m, "selected proposal: IKE:"):
		if strings.Contains(m, "/KE1_") {
			h.g.additionalKE.Add(1)
		}
		return nil
	case strings.HasPrefix(m, "establishing IKE_SA ") && strings.HasSuffix(m, " failed, peer not responding"),
		strings.HasPrefix(m, "received COOKIE notify too often"),
		strings.Contains(m, "AUTHENTICATION_FAILED"), strings.Contains(m, "NO_PROPOSAL_CHOSEN"):
		h.g.failed.Add(1)
	default:
		return nil
	}
	if s := h.ge.slots.Load(); s != nil {
		select {
		case <-*s:
		default:
		}
	}
	return nil
}

// localTSIn says whether the local selector of a "CHILD_SA ... established
// with SPIs ... and TS LOCAL === REMOTE" line is a single address of
// pool: a virtual IP the responder assigned.
func localTSIn(line string, pool netip.Prefix) bool {
	_, ts, ok := strings.Cut(line, " and TS ")
	if !ok {
		return false
	}
	local, _, _ := strings.Cut(ts, " === ")
	f := strings.Fields(local)
	if len(f) != 1 {
		return false
	}
	p, err := netip.ParsePrefix(f[0])
	return err == nil && p.IsSingleIP() && pool.Contains(p.Addr())
}

func (h genHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h genHandler) WithGroup(string) slog.Handler      { return h }

// legitAddr is the i-th source address of legitPrefix (1-based, below
// the last).
func legitAddr(i uint32) netip.Addr {
	b := legitPrefix.Addr().As4()
	i = i%(1<<(32-legitPrefix.Bits())-2) + 1
	b[1] += byte(i >> 16)
	b[2], b[3] = byte(i>>8), byte(i)
	return netip.AddrFrom4(b)
}

// newLoadGen starts the generator's engines in the namespace.
func newLoadGen(ns *namedNetns, o genOptions) (*loadGen, error) {
	g := &loadGen{connFor: o.connFor, vipPool: o.vipPool}
	err := ns.Do(func() (err error) {
		g.socks, err = ikesocket.Listen(ikesocket.Config{Addrs: []netip.Addr{netip.IPv4Unspecified()}, NoEncap: true})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("load generator: %w", err)
	}
	n := max(runtime.NumCPU(), 1)
	for k := range n {
		ge := &genEngine{g: g, in: make(chan ike.Datagram, 4096), k: k, n: n}
		e, err := ike.New(ike.Config{
			Logger: slog.New(genHandler{g, ge}), Sender: genSender{g.socks}, Dataplane: &nullDataplane{},
			Credentials: o.credentials,
			// Lost datagrams are retried sooner than charon's 4s, so that
			// a loss shows in a few seconds' window.
			RetransmitTimeout: time.Second, RetransmitTries: 3,
		})
		if err != nil {
			g.close()
			return nil, fmt.Errorf("load generator: %w", err)
		}
		ge.e = e
		g.engines = append(g.engines, ge)
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			for d := range ge.in {
				ge.e.HandleDatagram(d)
			}
		}()
	}
	g.socks.Run(g.dispatch)
	return g, nil
}

// genConnection is an IKE SA from the source address with one CHILD_SA
// between the source's inner address (10.208.x.y for 10.200.x.y,
// 10.209.x.y for 10.201.x.y and so on: a
// selector holding the IKE peer's own address would have charon's
// kernel-libipsec route the IKE traffic into the tunnel) and the
// responder's LAN.
func genConnection(p Proposal, src netip.Addr) *ike.Connection {
	b := src.As4()
	b[1] += innerPrefix.Addr().As4()[1] - legitPrefix.Addr().As4()[1]
	return &ike.Connection{
		Name: genConn, LocalAddrs: []netip.Addr{src}, RemoteAddrs: []netip.Addr{respAddr},
		Proposals: transform.MustParseProposals(transform.ProtoIKE, p.IKE),
		Local:     []*ike.AuthConfig{{Auth: ike.AuthPSK}},
		Remote:    []*ike.AuthConfig{{Auth: ike.AuthPSK}},
		Children: []*ike.ChildConfig{{Name: "net", LocalTS: []ike.TSSpec{{TS: ike.HostTS(netip.AddrFrom4(b))}}, RemoteTS: ike.MustParseTSSpecs(respLAN),
			ESPProposals: transform.MustParseProposals(transform.ProtoESP, p.ESP)}},
	}
}

// initiate opens the engine's next IKE SA: from its next source
// address, with that address's inner address as its traffic selector.
// Only one goroutine at a time initiates on an engine: the connection
// is replaced for each IKE SA (established ones keep theirs).
func (ge *genEngine) initiate(p Proposal) error {
	i := ge.next*uint32(ge.n) + uint32(ge.k)
	ge.next++
	if err := ge.e.AddConnection(ge.g.connFor(p, legitAddr(i))); err != nil {
		return err
	}
	_, err := ge.e.Initiate(genConn)
	return err
}

type genSender struct{ s *ikesocket.Sockets }

func (s genSender) Send(d ike.Datagram) error {
	return s.s.Send(ikesocket.Datagram{Local: d.Local, Remote: d.Remote, Data: d.Data})
}

// dispatch hands a received datagram to the engine owning its destination.
func (g *loadGen) dispatch(d ikesocket.Datagram) {
	a := d.Local.Addr()
	if !legitPrefix.Contains(a) {
		return
	}
	b := a.As4()
	i := (uint32(b[2])<<8 | uint32(b[3])) - 1
	if isCookieChallenge(d.Data) {
		g.cookies.Add(1)
	}
	ge := g.engines[int(i)%len(g.engines)]
	ge.in <- ike.Datagram{Local: d.Local, Remote: d.Remote, Data: slices.Clone(d.Data)}
}

// isCookieChallenge reports an IKE_SA_INIT response whose first payload
// is a COOKIE notify (RFC 7296 section 2.6).
func isCookieChallenge(b []byte) bool {
	const hdr = 28
	if len(b) < hdr+8 {
		return false
	}
	const payloadNotify, ikeSAInit, flagResponse, notifyCookie = 41, 34, 0x20, 16390
	return b[16] == payloadNotify && b[18] == ikeSAInit && b[19]&flagResponse != 0 &&
		binary.BigEndian.Uint16(b[hdr+6:]) == notifyCookie
}

func (g *loadGen) close() {
	if g.socks != nil {
		g.socks.Close()
	}
	for _, ge := range g.engines {
		close(ge.in)
	}
	g.wg.Wait()
	for _, ge := range g.engines {
		ge.e.Close()
	}
}

// errStalled is returned when establishments stop making progress.
var errStalled = errors.New("establishments stalled")

// closedLoop opens n IKE SAs keeping at most window of them in flight,
// and returns when all are established (or failed), or when nothing
// happened for stall. marks, if not nil, gets the time since the start
// at which each further tenth of the SAs was done.
func (g *loadGen) closedLoop(p Proposal, n, window int, stall time.Duration, marks *[]time.Duration) (time.Duration, error) {
	start := time.Now()
	base := g.established.Load() + g.failed.Load()
	var started atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, len(g.engines))
	stop := make(chan struct{})
	for _, ge := range g.engines {
		slots := make(chan struct{}, max(window/len(g.engines), 1))
		ge.slots.Store(&slots)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for started.Add(1) <= int64(n) {
				select {
				case slots <- struct{}{}:
				case <-stop:
					return
				}
				if err := ge.initiate(p); err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	defer func() {
		close(stop)
		wg.Wait()
		for _, ge := range g.engines {
			ge.slots.Store(nil)
		}
	}()
	last, lastDone := time.Now(), int64(-1)
	for {
		done := g.established.Load() + g.failed.Load() - base
		for marks != nil && len(*marks) < 10 && done >= int64(n)*int64(len(*marks)+1)/10 {
			*marks = append(*marks, time.Since(start))
			if g.atMark != nil {
				g.atMark()
			}
		}
		if done >= int64(n) {
			return time.Since(start), nil
		}
		select {
		case err := <-errc:
			return time.Since(start), err
		default:
		}
		if done != lastDone {
			last, lastDone = time.Now(), done
		} else if time.Since(last) > stall {
			return time.Since(start), fmt.Errorf("%w: %d of %d done after %s", errStalled, done, n, time.Since(start).Round(time.Millisecond))
		}
		time.Sleep(time.Millisecond)
	}
}

// openLoop initiates IKE SAs at rate per second for d, spread over the
// engines, and returns how many it initiated and how many were
// established during d.
func (g *loadGen) openLoop(p Proposal, rate float64, d time.Duration) (initiated, established int64, err error) {
	base := g.established.Load()
	var total atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, len(g.engines))
	start := time.Now()
	each := rate / float64(len(g.engines))
	for _, ge := range g.engines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var sent int64
			for {
				el := time.Since(start)
				if el >= d {
					return
				}
				for want := int64(el.Seconds() * each); sent < want; sent++ {
					if err := ge.initiate(p); err != nil {
						errc <- err
						return
					}
					total.Add(1)
				}
				time.Sleep(time.Millisecond)
			}
		}()
	}
	time.Sleep(time.Until(start.Add(d)))
	established = g.established.Load() - base
	wg.Wait()
	select {
	case err = <-errc:
	default:
	}
	return total.Load(), established, err
}

// initTemplate is an IKE_SA_INIT request of the proposal, as our
// initiator sends it to the responder, for the flood to replay with
// other SPIs from spoofed sources: the responder does the same work for
// it as for a legitimate one.
func initTemplate(p Proposal) ([]byte, error) {
	var cap captureSender
	e, err := ike.New(ike.Config{Logger: slog.New(slog.DiscardHandler), Sender: &cap, Dataplane: &nullDataplane{},
		Credentials: ike.Credentials{Shared: []ike.SharedKey{{Secret: []byte(ikePSK)}}}})
	if err != nil {
		return nil, err
	}
	defer e.Close()
	if err := e.AddConnection(genConnection(p, spoofPrefix.Addr().Next())); err != nil {
		return nil, err
	}
	if _, err := e.Initiate(genConn); err != nil {
		return nil, err
	}
	cap.mu.Lock()
	defer cap.mu.Unlock()
	if cap.first == nil {
		return nil, errors.New("flood: no IKE_SA_INIT request to copy")
	}
	return cap.first, nil
}

type captureSender struct {
	mu    sync.Mutex
	first []byte
}

func (c *captureSender) Send(d ike.Datagram) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.first == nil {
		c.first = slices.Clone(d.Data)
	}
	return nil
}

// flooder sends IKE_SA_INIT requests from spoofed sources.
type flooder struct {
	conn    *net.UDPConn
	tmpl    []byte
	sources [][]byte // IP_PKTINFO control messages, one per source
	sent    atomic.Int64
	errs    atomic.Int64
	stop    chan struct{}
	done    chan struct{}
}

// floodPort is the flood's source port: answers to it land on a socket
// nobody reads, with a small buffer, and are dropped there.
const floodPort = 501

// newFlooder opens the flood's socket in the generator namespace, with
// nsources spoofed source addresses from spoofPrefix.
func newFlooder(ns *namedNetns, p Proposal, nsources int) (*flooder, error) {
	tmpl, err := initTemplate(p)
	if err != nil {
		return nil, err
	}
	f := &flooder{tmpl: tmpl}
	err = ns.Do(func() error {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{Port: floodPort})
		if err != nil {
			return err
		}
		c.SetReadBuffer(4096)
		f.conn = c
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("flood: %w", err)
	}
	for i := range nsources {
		b := spoofPrefix.Addr().As4()
		b[2], b[3] = byte((i+1)>>8), byte(i+1)
		var pi unix.Inet4Pktinfo
		pi.Spec_dst = b
		f.sources = append(f.sources, unix.PktInfo4(&pi))
	}
	return f, nil
}

// start sends at rate datagrams per second until stopped.
func (f *flooder) start(rate float64) {
	f.stop, f.done = make(chan struct{}), make(chan struct{})
	dst := netip.AddrPortFrom(respAddr, ike.PortIKE)
	go func() {
		defer close(f.done)
		buf := slices.Clone(f.tmpl)
		start := time.Now()
		var n int64
		for {
			select {
			case <-f.stop:
				return
			default:
			}
			for want := int64(time.Since(start).Seconds() * rate); n < want; n++ {
				binary.BigEndian.PutUint64(buf, uint64(n)<<16|0x5bad)
				if _, _, err := f.conn.WriteMsgUDPAddrPort(buf, f.sources[n%int64(len(f.sources))], dst); err != nil {
					f.errs.Add(1)
				} else {
					f.sent.Add(1)
				}
			}
			time.Sleep(500 * time.Microsecond)
		}
	}()
}

func (f *flooder) halt() {
	if f.stop != nil {
		close(f.stop)
		<-f.done
		f.stop = nil
	}
}

func (f *flooder) close() {
	f.halt()
	f.conn.Close()
}
