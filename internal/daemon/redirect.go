package daemon

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/xdpsec/xdpsec/ike"
	"github.com/xdpsec/xdpsec/ike/swanctl"
)

// Redirect (RFC 5685) in the daemon: the loads of the gateways of
// redirect rules with choose = load, read from their Prometheus
// endpoints in the background (the engine asks GatewayLoad under its
// lock and must not wait); domain names of gateways a REDIRECT sends us
// to, resolved outside the engine; and the control socket's redirect
// command.

// loadGauge is the sample a gateway's load is read from: its daemon's
// established IKE SAs.
const loadGauge = `xdpsec_ike_sas{state="ESTABLISHED"}`

// gatewayKey names a gateway of a connection's redirect rule.
type gatewayKey struct{ conn, name, metrics string }

// gatewayLoads are the last loads read, by gateway.
type gatewayLoads struct {
	mu    sync.Mutex // guards below
	byKey map[gatewayKey]*gatewayLoad
}

type gatewayLoad struct {
	load     int
	ok       bool      // the last poll answered
	at       time.Time // of the last answer
	polled   time.Time // last poll started
	interval time.Duration
	inFlight bool
	failures int // polls in a row without an answer, for logs
}

// GatewayLoad is the engine's Config.GatewayLoad: the load read at the
// last poll, if that poll answered and is recent (three intervals). It
// takes only the loads' lock: the engine calls it under its own.
func (d *Daemon) GatewayLoad(conn string, gw ike.RedirectGateway) (int, bool) {
	if gw.Metrics == "" {
		if d.fleet != nil {
			// A member of the fleet (gateways = fleet): its load as
			// it published it.
			return d.fleet.memberLoad(gw)
		}
		return 0, false
	}
	d.loads.mu.Lock()
	defer d.loads.mu.Unlock()
	l := d.loads.byKey[gatewayKey{conn, gw.Name, gw.Metrics}]
	if l == nil || !l.ok || time.Since(l.at) > 3*l.interval {
		return 0, false
	}
	return l.load, true
}

// redirectRules are the load rules of the loaded configuration, with
// their poll intervals.
func (d *Daemon) redirectRules() map[string]*swanctl.Redirect {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := map[string]*swanctl.Redirect{}
	if d.loaded == nil || d.loaded.File == nil {
		return out
	}
	for _, c := range d.loaded.File.Connections {
		if c.Redirect != nil && c.Redirect.Choose == ike.RedirectByLoad {
			out[c.Name] = c.Redirect
		}
	}
	return out
}

// pollGatewayLoads reads the loads of the gateways of every load rule,
// each at its rule's poll_interval, until the daemon stops. A reload's
// new rules are picked up at the next round.
func (d *Daemon) pollGatewayLoads() {
	defer d.wg.Done()
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil}}
	for {
		now := time.Now()
		wanted := map[gatewayKey]bool{}
		for conn, r := range d.redirectRules() {
			for _, gw := range r.Gateways {
				if gw.Metrics == "" {
					continue
				}
				k := gatewayKey{conn, gw.Name, gw.Metrics}
				wanted[k] = true
				d.loads.mu.Lock()
				l := d.loads.byKey[k]
				if l == nil {
					l = &gatewayLoad{}
					d.loads.byKey[k] = l
				}
				l.interval = max(r.PollInterval, 100*time.Millisecond)
				due := !l.inFlight && now.Sub(l.polled) >= l.interval
				if due {
					l.inFlight, l.polled = true, now
				}
				d.loads.mu.Unlock()
				if due {
					timeout := min(r.PollInterval, 2*time.Second)
					d.wg.Add(1)
					go func() {
						defer d.wg.Done()
						load, err := scrapeLoad(client, k.metrics, timeout)
						d.noteLoad(k, load, err)
					}()
				}
			}
		}
		d.loads.mu.Lock()
		for k := range d.loads.byKey {
			if !wanted[k] && !d.loads.byKey[k].inFlight {
				delete(d.loads.byKey, k)
			}
		}
		d.loads.mu.Unlock()
		select {
		case <-d.stop:
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (d *Daemon) noteLoad(k gatewayKey, load int, err error) {
	d.loads.mu.Lock()
	defer d.loads.mu.Unlock()
	l := d.loads.byKey[k]
	if l == nil {
		return
	}
	l.inFlight = false
	if err != nil {
		if l.ok || l.failures == 0 {
			d.cfgLog.Info(fmt.Sprintf("redirect gateway %s of %s not answering, skipped: %v", k.name, k.conn, err))
		}
		l.ok = false
		l.failures++
		return
	}
	switch {
	case l.at.IsZero():
		d.cfgLog.Info(fmt.Sprintf("redirect gateway %s of %s answers, load %d", k.name, k.conn, load))
	case !l.ok && l.failures > 0:
		d.cfgLog.Info(fmt.Sprintf("redirect gateway %s of %s answering again, load %d", k.name, k.conn, load))
	}
	l.load, l.ok, l.at, l.failures = load, true, time.Now(), 0
}

// scrapeLoad reads the established IKE SAs from a Prometheus endpoint
// of an xdpsec daemon.
func scrapeLoad(client *http.Client, url string, timeout time.Duration) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("%s: %s", url, resp.Status)
	}
	return parseLoad(bufio.NewScanner(io.LimitReader(resp.Body, 4<<20)))
}

// parseLoad finds the established IKE SAs gauge in a text exposition.
func parseLoad(s *bufio.Scanner) (int, error) {
	s.Buffer(make([]byte, 64<<10), 64<<10)
	for s.Scan() {
		rest, ok := strings.CutPrefix(s.Text(), loadGauge)
		if !ok || !strings.HasPrefix(rest, " ") {
			continue
		}
		f := strings.Fields(rest)
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil || v < 0 || v > 1<<31 {
			return 0, fmt.Errorf("%s: bad value %q", loadGauge, f[0])
		}
		return int(v), nil
	}
	if err := s.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("no %s sample (not an xdpsec daemon?)", loadGauge)
}

// resolveGateway is the engine's Config.ResolveGateway: the lookup runs
// in the background, five seconds at most.
func (d *Daemon) resolveGateway(name string, done func(netip.Addr, error)) {
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", name)
		if err == nil && len(addrs) == 0 {
			err = errors.New("no address")
		}
		if err != nil {
			done(netip.Addr{}, err)
			return
		}
		// IPv4 first, as the gateways of most clusters are reached.
		for _, a := range addrs {
			if a.Unmap().Is4() {
				done(a.Unmap(), nil)
				return
			}
		}
		done(addrs[0], nil)
	}()
}

// redirect sends established IKE SAs to another gateway (swanctl
// --redirect): by connection name, unique ID or the peer's address (or
// a prefix of addresses).
func (d *Daemon) redirect(req Request) (*Response, error) {
	if req.Gateway == "" {
		return nil, errors.New("redirect needs --gateway")
	}
	if req.IKE == "" && req.IKEID == 0 && req.Peer == "" {
		return nil, errors.New("redirect needs --ike, --ike-id or --peer")
	}
	var peer netip.Prefix
	if req.Peer != "" {
		var err error
		if peer, err = netip.ParsePrefix(req.Peer); err != nil {
			a, aerr := netip.ParseAddr(req.Peer)
			if aerr != nil {
				return nil, fmt.Errorf("--peer: %q is neither an address nor a prefix", req.Peer)
			}
			peer = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
		}
	}
	var msgs []string
	var errs []error
	for _, sa := range d.engine.IKESAs() {
		if sa.State != ike.IKESAEstablished && sa.State != ike.IKESARekeying {
			continue
		}
		if (req.IKE != "" && sa.Name != req.IKE) || (req.IKEID != 0 && sa.ID != req.IKEID) ||
			(peer.IsValid() && !peer.Contains(sa.Remote.Addr().Unmap())) {
			continue
		}
		if err := d.engine.RedirectIKESA(sa.ID, req.Gateway); err != nil {
			errs = append(errs, err)
			continue
		}
		msgs = append(msgs, fmt.Sprintf("redirect IKE_SA %s[%d] (%s) to %s", sa.Name, sa.ID, sa.Remote.Addr(), req.Gateway))
	}
	if len(msgs) == 0 && len(errs) == 0 {
		return nil, errors.New("no matching IKE_SA found")
	}
	if len(errs) > 0 {
		if len(msgs) > 0 {
			// Some went: say which, before what failed.
			errs = append([]error{errors.New(strings.Join(msgs, ", "))}, errs...)
		}
		return nil, errors.Join(errs...)
	}
	return &Response{Message: strings.Join(msgs, ", ")}, nil
}

// collectRedirectMetrics sends the loads of the redirect rules' gateways
// as last read; a gateway that does not answer has no sample.
func (d *Daemon) collectRedirectMetrics(f *family) {
	d.mu.Lock()
	l := d.loaded
	d.mu.Unlock()
	if l == nil || l.File == nil {
		return
	}
	for _, c := range l.File.Connections {
		if c.Redirect == nil {
			continue
		}
		for _, g := range c.Redirect.Gateways {
			if n, ok := d.GatewayLoad(c.Name, g); ok {
				f.sample(uint64(n), "conn", c.Name, "gateway", g.Name)
			}
		}
	}
}
