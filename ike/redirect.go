package ike

import (
	"bytes"
	"errors"
	"fmt"
	"hash/fnv"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/xdpsec/xdpsec/ike/message"
)

// IKEv2 redirect (RFC 5685), in both roles, after charon:
//
//   - Gateway, IKE_SA_INIT: a connection with a redirect rule
//     (Connection.Redirect) answers a client that announced
//     REDIRECT_SUPPORTED (or REDIRECTED_FROM) with a lone N(REDIRECT)
//     naming another gateway of the rule and echoing the client's Ni;
//     the responder IKE SA is gone at once. The rule chooses by the
//     gateways' current load (established IKE SAs, Config.GatewayLoad) or
//     by a hash of the client's address; the choice falling on ourselves
//     means no redirect.
//
//     Initiator                         Responder (this gateway)
//     -------------------------------------------------------------------
//     HDR(A,0), SAi1, KEi, Ni,
//     N(REDIRECT_SUPPORTED)    -->
//     <--  HDR(A,0), N(REDIRECT, New_GW_ID, Ni)
//
//   - Gateway, IKE_AUTH (a rule with During RedirectInAuth): the client
//     is authenticated first, then answered with IDr, AUTH and
//     N(REDIRECT, New_GW_ID), no CHILD_SA.
//   - Gateway, established IKE SA (Engine.RedirectIKESA, `xdpsec
//     redirect`): an INFORMATIONAL with N(REDIRECT, New_GW_ID) and no
//     nonce. The client deletes the IKE SA (of this or the IKE_AUTH
//     case) and goes to the new gateway, else we delete it after
//     Config.HalfOpenTimeout (charon's half_open_timeout).
//   - Client: a REDIRECT in the IKE_SA_INIT response (its nonce must be
//     our Ni, else the response is dropped as charon's pre-processing
//     does), in the IKE_AUTH response or in an INFORMATIONAL of an
//     established IKE SA is followed: the IKE_SA_INIT starts again
//     towards the new gateway, or the old IKE SA is deleted and a new one
//     established there with its CHILD_SAs (as in a break-before-make
//     reauthentication: their policies toward two gateways could not
//     stand side by side). The new IKE_SA_INIT carries
//     N(REDIRECTED_FROM) with the gateway that redirected us instead of
//     REDIRECT_SUPPORTED. At most maxRedirects redirects are followed
//     within redirectLoopPeriod (charon's MAX_REDIRECTS and
//     REDIRECT_LOOP_DETECT_PERIOD). A gateway named by a domain name is
//     resolved through Config.ResolveGateway, outside the engine lock.

const (
	maxRedirects       = 5
	redirectLoopPeriod = 300 * time.Second
)

// RedirectChoice is how a redirect rule picks a gateway (choose).
type RedirectChoice uint8

const (
	// RedirectByLoad: the gateway with the fewest established IKE SAs,
	// ties broken by the hash; gateways whose load is unknown are
	// skipped, and with none known the hash decides.
	RedirectByLoad RedirectChoice = iota
	// RedirectByHash: a hash of the client's address, so that a client
	// lands on the same gateway each time while the list stays the same.
	RedirectByHash
)

func (c RedirectChoice) String() string { return enumName(c, "load", "hash") }

// RedirectPhase is the exchange in which a rule redirects (during).
type RedirectPhase uint8

const (
	// RedirectInInit: in the IKE_SA_INIT response, before any
	// cryptography (RFC 5685 section 4), the cheapest for the gateway.
	RedirectInInit RedirectPhase = iota
	// RedirectInAuth: in the IKE_AUTH response, once the client is
	// authenticated (section 5): with IDr and AUTH and no CHILD_SA; the
	// client establishes with the new gateway and deletes this IKE SA,
	// else we do after Config.HalfOpenTimeout.
	RedirectInAuth
)

func (p RedirectPhase) String() string { return enumName(p, "ike_sa_init", "ike_auth") }

// RedirectRule sends new clients of a connection to other gateways during
// IKE_SA_INIT or IKE_AUTH (the redirect section of an xdpsec swanctl.conf
// connection; strongSwan has a plugin interface instead).
type RedirectRule struct {
	// Gateways are the candidates, ourselves possibly among them (a
	// gateway whose address is the one the client reached us on, or one
	// of local_addrs): a choice that falls on us serves the client here.
	Gateways []RedirectGateway
	Choose   RedirectChoice
	During   RedirectPhase
	// Fleet takes the gateways from Config.RedirectGateways at each
	// choice (the other members of the daemon's fleet), after those of
	// Gateways.
	Fleet bool
}

// RedirectGateway is one gateway of a redirect rule.
type RedirectGateway struct {
	Name string // its section name, for logs and metrics
	// Address is what the REDIRECT names: an IP address or a domain name
	// the client resolves.
	Address string
	// Metrics is where its load is read (the daemon polls the
	// Prometheus endpoint of its xdpsec daemon); the engine asks
	// Config.GatewayLoad and does not use it.
	Metrics string
}

// resolveRedirect checks a redirect rule.
func resolveRedirect(r *RedirectRule) error {
	if r.Choose > RedirectByHash {
		return fmt.Errorf("choose: %v is not load or hash", r.Choose)
	}
	if r.During > RedirectInAuth {
		return fmt.Errorf("during: %v is not ike_sa_init or ike_auth", r.During)
	}
	if len(r.Gateways) == 0 && !r.Fleet {
		return errors.New("gateways: none configured")
	}
	for _, g := range r.Gateways {
		if _, err := message.ParseGateway(g.Address); err != nil {
			return fmt.Errorf("gateways: %s: %v", g.Name, err)
		}
	}
	return nil
}

// followRedirects reports whether we follow a gateway's REDIRECT
// (charon's follow_redirects, default yes).
func (e *Engine) followRedirects() bool {
	return e.cfg.FollowRedirects == nil || *e.cfg.FollowRedirects
}

// isSelf reports whether a gateway is this one as the client sees it.
func (c *connection) isSelf(g message.Gateway, local netip.Addr) bool {
	if g.IsFQDN() {
		return false
	}
	return g.Addr == local.Unmap() || slices.Contains(c.LocalAddrs, g.Addr)
}

// clientHash spreads clients over n gateways by their address.
func clientHash(client netip.Addr, n int) int {
	h := fnv.New32a()
	h.Write(client.Unmap().AsSlice())
	return int(h.Sum32() % uint32(n))
}

// chooseGateway applies the connection's redirect rule to a client that
// reached us on local: the gateway to redirect it to, or false to serve
// it here (no rule, or the choice is ourselves).
func (e *Engine) chooseGateway(c *connection, local, client netip.Addr) (message.Gateway, bool) {
	r := c.Redirect
	if r == nil {
		return message.Gateway{}, false
	}
	candidates := r.Gateways
	if r.Fleet && e.cfg.RedirectGateways != nil {
		candidates = append(slices.Clip(candidates), e.cfg.RedirectGateways(c.Name)...)
	}
	var gws []message.Gateway
	var cands []RedirectGateway
	for _, g := range candidates {
		// Those of the rule were checked by resolveRedirect; the fleet's
		// are skipped when bad.
		if gw, err := message.ParseGateway(g.Address); err == nil {
			gws, cands = append(gws, gw), append(cands, g)
		}
	}
	if len(gws) == 0 {
		return message.Gateway{}, false
	}
	pick := clientHash(client, len(gws))
	if r.Choose == RedirectByLoad {
		best, bestLoad, known := -1, 0, false
		var tied []int
		for i, g := range cands {
			var load int
			var ok bool
			if c.isSelf(gws[i], local) {
				load, ok = e.establishedCount(), true
			} else if e.cfg.GatewayLoad != nil {
				load, ok = e.cfg.GatewayLoad(c.Name, g)
				known = known || ok
			}
			if !ok {
				continue
			}
			switch {
			case best < 0 || load < bestLoad:
				best, bestLoad, tied = i, load, []int{i}
			case load == bestLoad:
				tied = append(tied, i)
			}
		}
		// Only our own figure known: the others are all unreachable, and
		// the hash decides as if no load were known.
		if known && best >= 0 {
			pick = tied[clientHash(client, len(tied))]
		}
	}
	if c.isSelf(gws[pick], local) {
		return message.Gateway{}, false
	}
	return gws[pick], true
}

// establishedCount is our own load: established IKE SAs. It walks all
// SAs, so it is done for a load rule that lists ourselves only, and at
// most once a second: an IKE_SA_INIT flood must not make each request cost
// as much as there are IKE SAs (the others' figures are older anyway).
func (e *Engine) establishedCount() int {
	now := e.clock.Now()
	if !e.selfLoadAt.IsZero() && now.Sub(e.selfLoadAt) < time.Second {
		return e.selfLoad
	}
	n := 0
	for spi, sa := range e.sas {
		if spi == sa.ourSPI() && sa.state == IKESAEstablished {
			n++
		}
	}
	e.selfLoad, e.selfLoadAt = n, now
	return n
}

// redirectOnInit decides, for a responder's IKE_SA_INIT request whose
// client supports redirection, whether to redirect it: the REDIRECT
// notify to answer with, or nil.
func (t *ikeInit) redirectOnInit(ni []byte) *message.Notify {
	sa := t.sa
	if !sa.peerRedirect || sa.conn.Redirect == nil || sa.conn.Redirect.During != RedirectInInit {
		return nil
	}
	gw, ok := sa.e.chooseGateway(sa.conn, sa.local.Addr(), sa.remote.Addr())
	if !ok {
		return nil
	}
	data, err := message.Redirect{Gateway: gw, Nonce: ni}.Marshal()
	if err != nil {
		return nil
	}
	infof(sa.log, "redirecting peer to %s", gw)
	sa.e.stats.RedirectsSent++
	return notify(message.REDIRECT, data)
}

// redirectOnAuth decides, for a responder's IKE_AUTH request that
// authenticated the client, whether to redirect it (a rule with during =
// ike_auth): the gateway, or false.
func (sa *ikeSA) redirectOnAuth() (message.Gateway, bool) {
	if !sa.peerRedirect || sa.conn.Redirect == nil || sa.conn.Redirect.During != RedirectInAuth {
		return message.Gateway{}, false
	}
	return sa.e.chooseGateway(sa.conn, sa.local.Addr(), sa.remote.Addr())
}

// redirectNotify is the gateway's REDIRECT of an authenticated IKE SA
// (IKE_AUTH response or INFORMATIONAL): the identity alone. The IKE SA
// is deleted if the client keeps it.
func (sa *ikeSA) redirectNotify(gw message.Gateway) *message.Notify {
	data, err := message.Redirect{Gateway: gw}.Marshal()
	if err != nil {
		return nil
	}
	infof(sa.log, "redirecting peer to %s", gw)
	sa.redirected = true
	return notify(message.REDIRECT, data)
}

// redirectState is what redirects keep of an IKE SA. redirected says
// whether a REDIRECT was sent (gateway) or followed (client) for it; timer
// deletes it if the client does not. from is the gateway that redirected
// us here, at when the redirects of this attempt to connect happened
// (the loop limit). Few IKE SAs are ever redirected: nil until one is.
type redirectState struct {
	timer Timer
	from  netip.Addr
	at    []time.Time
}

// redirects is the IKE SA's redirectState, made on first use.
func (sa *ikeSA) redirects() *redirectState {
	if sa.redir == nil {
		sa.redir = &redirectState{}
	}
	return sa.redir
}

// redirectHistory is a copy of the times of the redirects so far.
func (sa *ikeSA) redirectHistory() []time.Time {
	if sa.redir == nil {
		return nil
	}
	return slices.Clone(sa.redir.at)
}

// armRedirectDelete deletes a redirected IKE SA after the half-open
// timeout unless the client did (charon's delete_ike_sa_job after
// ike_redirect).
func (sa *ikeSA) armRedirectDelete() {
	r := sa.redirects()
	if r.timer != nil {
		r.timer.Stop()
	}
	r.timer = sa.e.afterFuncFor(sa, sa.e.cfg.HalfOpenTimeout, func() {
		r.timer = nil
		if sa.state == IKESAEstablished || sa.state == IKESARekeying {
			infof(sa.log, "IKE_SA %s still there after its redirect, deleting it", sa.name())
			sa.ending(EndAdmin)
			sa.delete()
		}
	})
}

// redirectCapability is what an initiator's IKE_SA_INIT announces:
// REDIRECTED_FROM after a redirect, else REDIRECT_SUPPORTED; nothing when
// we do not follow redirects.
func (sa *ikeSA) redirectCapability() *message.Notify {
	if !sa.initiator || !sa.e.followRedirects() {
		return nil
	}
	if sa.redir != nil && sa.redir.from.IsValid() {
		data, err := message.Redirect{Gateway: message.Gateway{Addr: sa.redir.from}}.Marshal()
		if err == nil {
			return notify(message.REDIRECTED_FROM, data)
		}
	}
	return notify(message.REDIRECT_SUPPORTED, nil)
}

// processRedirectCapability notes a client's support of redirection
// (responder, IKE_SA_INIT request).
func (sa *ikeSA) processRedirectCapability(m *message.Message) {
	if n := findNotify(m, message.REDIRECTED_FROM); n != nil {
		r, err := message.UnmarshalRedirect(n.Data)
		if err != nil {
			sa.log.Info("received invalid REDIRECTED_FROM notify, ignored")
		} else {
			infof(sa.log, "client got redirected from %s", r.Gateway)
			sa.peerRedirect = true
		}
	}
	if findNotify(m, message.REDIRECT_SUPPORTED) != nil {
		sa.peerRedirect = true
	}
}

// screen drops an IKE_SA_INIT response whose REDIRECT is not for us
// before anything of the exchange changes: a wrong or missing nonce
// (RFC 5685 section 4) means someone else's answer, or a forgery.
func (t *ikeInit) screen(m *message.Message) bool {
	n := findNotify(m, message.REDIRECT)
	if n == nil {
		return true
	}
	r, err := message.UnmarshalRedirect(n.Data)
	if err != nil || !bytes.Equal(r.Nonce, t.sa.ni) {
		t.sa.e.stats.InvalidRedirects++
		t.sa.log.Info("received invalid REDIRECT notify")
		return false
	}
	return true
}

// mayFollow checks, for a REDIRECT received, that we follow redirects
// and are under the limit, and notes the redirect in the SA's history.
func (sa *ikeSA) mayFollow(gw message.Gateway) bool {
	infof(sa.log, "redirected to %s", gw)
	if !sa.e.followRedirects() {
		sa.log.Info("server sent REDIRECT even though we disabled it")
		return false
	}
	if !sa.originalInitiator {
		sa.log.Info("REDIRECT from the client of the IKE_SA, ignored")
		return false
	}
	now := sa.e.clock.Now()
	r := sa.redirects()
	r.at = slices.DeleteFunc(r.at, func(t time.Time) bool { return now.Sub(t) >= redirectLoopPeriod })
	if len(r.at) >= maxRedirects {
		infof(sa.log, "only %d redirects are allowed within %d seconds", maxRedirects, int(redirectLoopPeriod/time.Second))
		return false
	}
	r.at = append(r.at, now)
	return true
}

// followInit follows a REDIRECT in the IKE_SA_INIT response (screened):
// the same IKE SA starts its IKE_SA_INIT again towards the new gateway,
// with a fresh nonce and key exchange.
func (t *ikeInit) followInit(n *message.Notify) error {
	sa := t.sa
	r, err := message.UnmarshalRedirect(n.Data)
	if err != nil || !sa.mayFollow(r.Gateway) {
		return errDestroy
	}
	ran := sa.e.resolveGateway(sa, r.Gateway, func(addr netip.Addr, err error) {
		if sa.state == IKESADestroying || sa.tm.active != t {
			return
		}
		if err != nil {
			infof(sa.log, "unable to resolve gateway ID '%s', redirect failed", r.Gateway)
			sa.destroy()
			return
		}
		t.retarget(addr)
	})
	if ran {
		if sa.state == IKESADestroying {
			return errDestroy
		}
		return errRetry
	}
	// The answer comes under the engine lock, after this returns.
	t.resumeSend = true
	return errPending
}

// retarget points an initiator's IKE SA in IKE_SA_INIT at another
// gateway and sends the request again (unless called from process, whose
// errRetry sends it).
func (t *ikeInit) retarget(addr netip.Addr) {
	sa := t.sa
	sa.redirects().from = sa.remote.Addr()
	local, remote := sa.e.redirectEnds(sa.conn, sa.local.Addr(), addr)
	sa.local, sa.remote = local, remote
	clear(sa.ni)
	sa.ni = nil
	if t.ke != nil {
		t.ke.Close()
		t.ke = nil
	}
	t.cookie, t.cookieTries = nil, 0
	t.group = firstKE(t.proposals)
	infof(sa.log, "initiating IKE_SA %s to %s", sa.name(), addr)
	if t.resumeSend {
		t.resumeSend = false
		sa.tm.sendRequest()
	}
}

// redirectEnds are the addresses an IKE SA towards a new gateway starts
// with: our address of its family (the connection's, the one we used,
// or the one SourceAddress picks), the connection's ports.
func (e *Engine) redirectEnds(c *connection, used, gw netip.Addr) (local, remote netip.AddrPort) {
	var addr netip.Addr
	for _, a := range c.LocalAddrs {
		if a.Is4() == gw.Is4() {
			addr = a
			break
		}
	}
	if !addr.IsValid() && used.IsValid() && !used.IsUnspecified() && used.Is4() == gw.Is4() && len(c.LocalAddrs) > 0 {
		addr = used
	}
	if !addr.IsValid() && e.cfg.SourceAddress != nil {
		if a, ok := e.cfg.SourceAddress(gw); ok {
			addr = a
		}
	}
	return netip.AddrPortFrom(addr, c.LocalPort), netip.AddrPortFrom(gw, c.RemotePort)
}

// redirectEstablished follows a REDIRECT of an authenticated IKE SA (in
// the IKE_AUTH response or an INFORMATIONAL): the old IKE SA is deleted,
// then a new one with its CHILD_SAs is established with the new gateway
// (charon's redirect_established makes the new one first; its kernel
// interface keeps overlapping policies, ours does not).
func (sa *ikeSA) redirectEstablished(gw message.Gateway, children []*childConfig) {
	if sa.redirected || !sa.mayFollow(gw) {
		return
	}
	sa.redirected = true
	sa.e.resolveGateway(sa, gw, func(addr netip.Addr, err error) {
		if sa.state != IKESAEstablished && sa.state != IKESARekeying {
			return
		}
		if err != nil {
			infof(sa.log, "unable to resolve gateway ID '%s', redirect failed", gw)
			return
		}
		for _, c := range sa.children {
			if (c.state == ChildSAInstalled || c.state == ChildSARekeying) && !slices.Contains(children, c.cfg) {
				children = append(children, c.cfg)
			}
		}
		if len(children) == 0 {
			children = sa.conn.children
		}
		local, remote := sa.e.redirectEnds(sa.conn, sa.local.Addr(), addr)
		from, history, vips := sa.remote.Addr(), sa.redirectHistory(), slices.Clone(sa.localVIPs)
		e, conn := sa.e, sa.conn
		// Break before make: the new CHILD_SAs have the old ones'
		// selectors towards another gateway, and policies of the same
		// selectors cannot stand side by side in the kernel (a
		// reauthentication towards the same peer shares them instead).
		sa.afterDestroy = func() {
			e.startIKESAWith(conn, children, local, remote, nil, func(n *ikeSA) {
				n.redir = &redirectState{from: from, at: history}
				n.reauthVIPs = vips
			})
		}
		sa.ending(EndLocal)
		sa.delete()
	})
}

// redirectConnecting follows a REDIRECT in an IKE_AUTH response that did
// not authenticate the gateway: this IKE SA goes, and a new one starts
// its IKE_SA_INIT with the new gateway.
func (sa *ikeSA) redirectConnecting(gw message.Gateway, first *childConfig) {
	if !sa.mayFollow(gw) {
		return
	}
	e, conn, history := sa.e, sa.conn, sa.redirectHistory()
	from, used := sa.remote.Addr(), sa.local.Addr()
	children := conn.children
	if first != nil {
		children = []*childConfig{first}
	}
	e.resolveGateway(sa, gw, func(addr netip.Addr, err error) {
		if err != nil {
			infof(e.log, "unable to resolve gateway ID '%s', redirect failed", gw)
			return
		}
		local, remote := e.redirectEnds(conn, used, addr)
		e.startIKESAWith(conn, children, local, remote, nil, func(n *ikeSA) {
			n.redir = &redirectState{from: from, at: history}
		})
	})
}

// resolveGateway finds a gateway's address: at once for an IP address,
// else through Config.ResolveGateway, which may answer later from another
// goroutine; then runs under the engine lock either way. It reports
// whether then has already run.
func (e *Engine) resolveGateway(sa *ikeSA, gw message.Gateway, then func(netip.Addr, error)) bool {
	if !gw.IsFQDN() {
		then(gw.Addr, nil)
		return true
	}
	if e.cfg.ResolveGateway == nil {
		then(netip.Addr{}, errors.New("no resolver"))
		return true
	}
	type answer struct {
		addr netip.Addr
		err  error
	}
	var mu sync.Mutex
	inCall, answered := true, false
	var early *answer
	e.cfg.ResolveGateway(gw.FQDN, func(addr netip.Addr, err error) {
		mu.Lock()
		if answered {
			mu.Unlock()
			return
		}
		answered = true
		if inCall {
			early = &answer{addr.Unmap(), err}
			mu.Unlock()
			return
		}
		mu.Unlock()
		e.mu.Lock()
		defer e.unlock()
		if e.closed {
			return
		}
		defer e.recoverPanic(netip.AddrPort{})
		e.handle(sa)
		then(addr.Unmap(), err)
	})
	mu.Lock()
	inCall = false
	a := early
	mu.Unlock()
	if a != nil {
		then(a.addr, a.err)
		return true
	}
	return false
}

// ikeRedirect is the gateway's INFORMATIONAL that redirects an
// established IKE SA (RFC 5685 section 6): HDR, SK {N(REDIRECT,
// New_GW_ID)}, answered empty.
type ikeRedirect struct {
	sa *ikeSA
	gw message.Gateway
}

func (t *ikeRedirect) kind() taskKind                 { return taskIKERedirect }
func (t *ikeRedirect) exchange() message.ExchangeType { return message.INFORMATIONAL }

func (t *ikeRedirect) build(m *message.Message) error {
	if n := t.sa.redirectNotify(t.gw); n != nil {
		m.Payloads = append(m.Payloads, n)
	}
	return nil
}

// process arms the deletion of the IKE SA in case the client keeps it.
func (t *ikeRedirect) process(m *message.Message) error {
	t.sa.armRedirectDelete()
	return nil
}

// ErrRedirect is returned when an IKE SA cannot be redirected (we are
// its initiator, the client does not support redirection, it is not
// established, or the gateway is not an address or domain name).
var ErrRedirect = errors.New("ike: cannot redirect")

// RedirectIKESA redirects an established IKE SA of a client to another
// gateway, an IP address or domain name (swanctl --redirect).
func (e *Engine) RedirectIKESA(id uint32, gateway string) error {
	gw, err := message.ParseGateway(gateway)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrRedirect, err)
	}
	if _, err := (message.Redirect{Gateway: gw}).Marshal(); err != nil {
		return fmt.Errorf("%w: %v", ErrRedirect, err)
	}
	e.mu.Lock()
	defer e.unlock()
	if e.v1SAByID(id) != nil {
		return fmt.Errorf("%w: unable to redirect IKEv1 SA", ErrRedirect)
	}
	sa, err := e.ikeSA(id)
	if err != nil {
		return err
	}
	switch {
	case sa.state != IKESAEstablished && sa.state != IKESARekeying:
		return fmt.Errorf("%w: unable to redirect IKE_SA %s in state %s", ErrRedirect, sa.name(), sa.state)
	case sa.redirected:
		return nil // already redirected
	case sa.originalInitiator:
		return fmt.Errorf("%w: unable to redirect IKE_SA %s as initiator", ErrRedirect, sa.name())
	case !sa.peerRedirect:
		return fmt.Errorf("%w: IKE_SA %s: client does not support IKE redirection", ErrRedirect, sa.name())
	case sa.conn.isSelf(gw, sa.local.Addr()):
		return fmt.Errorf("%w: %s is this gateway", ErrRedirect, gw)
	}
	sa.redirected = true
	e.stats.RedirectsSent++
	sa.tm.queue(&ikeRedirect{sa: sa, gw: gw})
	sa.tm.initiate()
	return nil
}
