package daemon

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/xdpsec/xdpsec/ike"
	"github.com/xdpsec/xdpsec/ike/swanctl"
	"github.com/xdpsec/xdpsec/internal/radius"
)

// LoadRadius reads the radius section of xdpsec.conf at path and makes
// the RADIUS client the eap-radius connections relay to: nil without a
// radius section, or without the file when it is the default path (a
// named file must exist). Every mistake is reported, naming the file,
// line and key, or the server.
func LoadRadius(path string, log *slog.Logger) (*radius.Client, error) {
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
	if st.Radius == nil {
		return nil, nil
	}
	r := st.Radius
	cfg := radius.Config{
		Timeout: r.Timeout, Tries: r.RetransmitTries, NASIdentifier: r.NASIdentifier,
		Accounting: r.Accounting, AccountingInterval: r.AccountingInterval, FramedIP: r.UseFramedIP, Logger: log,
	}
	for _, s := range r.Servers {
		cfg.Servers = append(cfg.Servers, radius.Server{
			Name: s.Name, Address: s.Address, AuthPort: s.AuthPort, AcctPort: s.AcctPort,
			Secret: radius.NewSecret(string(s.Secret.Bytes())), Preference: s.Preference,
		})
	}
	c, err := radius.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// eapBackend makes the engine's EAP backend of a RADIUS client (nil:
// none) and starts its accounting goroutine, which runs until the daemon
// stops or a reload replaces the backend (retire).
func (d *Daemon) eapBackend(rc *radius.Client) ike.EAPBackend {
	if rc == nil {
		return nil
	}
	rb := newRadiusBackend(rc, d.cfgLog)
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		rb.runAccounting(d.stop)
	}()
	return rb
}

// setEAPBackend makes b the engine's EAP backend and retires the one it
// replaces: the engine sends every later record (the Stops of sessions
// the old one started too) to b, so the old goroutine ends once it has
// sent what it has queued.
func (d *Daemon) setEAPBackend(b ike.EAPBackend) {
	d.engine.SetXAuthBackend(xauthBackend(b))
	old := d.engine.SetEAPBackend(b)
	if rb, ok := old.(*radiusBackend); ok {
		rb.retire()
	}
}

// reloadRadius rereads xdpsec.conf on reload when it changed: a file
// that fails to load keeps the servers loaded before, with a warning, and
// so does a reload that would leave eap-radius connections without
// servers.
//
// It returns why a changed file was not taken (the error is logged too).
func (d *Daemon) reloadRadius(conns []*ike.Connection) error {
	path := d.opts.SettingsPath
	b, _ := os.ReadFile(path)
	sum := sha256.Sum256(b)
	if sum == d.settingsSum {
		if !d.hasRadius {
			if err := checkEAPRadius(conns, nil, path); err != nil {
				d.cfgLog.Warn(fmt.Sprintf("%v: its peers will be refused", err))
			}
		}
		return nil
	}
	rc, err := LoadRadius(path, d.cfgLog)
	if err == nil {
		err = checkEAPRadius(conns, rc, path)
	}
	if err != nil {
		d.cfgLog.Warn(fmt.Sprintf("reload of %s failed, keeping the RADIUS servers loaded: %v", path, err))
		return err
	}
	d.settingsSum, d.hasRadius = sum, rc != nil
	d.setEAPBackend(d.eapBackend(rc))
	d.cfgLog.Info(fmt.Sprintf("reloaded %s", path))
	d.fleetSettingsChanged(path)
	return nil
}

// ReloadSettings rereads xdpsec.conf (the RADIUS servers), as VICI's
// reload-settings has charon reread strongswan.conf; connections are left
// as they are.
func (d *Daemon) ReloadSettings() error {
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	_, conns := d.allConns()
	var ic []*ike.Connection
	for _, c := range conns {
		ic = append(ic, c.Connection)
	}
	return d.reloadRadius(ic)
}

// checkEAPRadius refuses connections with remote.auth = eap-radius when
// no RADIUS server is configured: every peer would be refused.
func checkEAPRadius(conns []*ike.Connection, c *radius.Client, settings string) error {
	if c != nil {
		return nil
	}
	var errs []error
	for _, conn := range conns {
		for _, r := range conn.Remote {
			if r.Auth == ike.AuthEAPRadius {
				errs = append(errs, fmt.Errorf("connection %s: remote.auth = eap-radius needs a radius section with servers in %s", conn.Name, settings))
			}
			if r.Auth == ike.AuthXAuthRadius {
				errs = append(errs, fmt.Errorf("connection %s: remote XAuth round auth = xauth-radius needs a radius section with servers in %s", conn.Name, settings))
			}
		}
	}
	return errors.Join(errs...)
}

// radiusBackend relays eap-radius connections' EAP to the RADIUS
// servers (ike.EAPBackend over internal/radius), and sends their
// accounting records (ike.EAPAccounting) in order from one goroutine
// (runAccounting), as the engine calls it under its lock.
type radiusBackend struct {
	c       *radius.Client
	log     *slog.Logger
	acct    chan func(context.Context)
	retired chan struct{} // closed by retire
	once    sync.Once
}

var _ ike.EAPAccounting = (*radiusBackend)(nil)

func newRadiusBackend(c *radius.Client, log *slog.Logger) *radiusBackend {
	return &radiusBackend{c: c, log: log, acct: make(chan func(context.Context), acctQueue), retired: make(chan struct{})}
}

// retire ends the accounting goroutine after the records queued so far.
func (b *radiusBackend) retire() { b.once.Do(func() { close(b.retired) }) }

// acctQueue is how many accounting records may wait for a slow server
// before more are dropped (with a log line).
const acctQueue = 4096

// runAccounting sends the queued accounting records until stop, or
// until retired and the queue is empty. At stop the records still queued
// get stopDrain to go out; those left are counted in a log line.
func (b *radiusBackend) runAccounting(stop <-chan struct{}) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-stop
		cancel()
	}()
	retired, draining := b.retired, false
	for {
		select {
		case f := <-b.acct:
			f(ctx)
		case <-stop:
			b.drainAtStop()
			return
		case <-retired:
			retired, draining = nil, true
		}
		if draining && len(b.acct) == 0 {
			return
		}
	}
}

// stopDrain is how long records queued when the daemon stops may take.
const stopDrain = 2 * time.Second

func (b *radiusBackend) drainAtStop() {
	ctx, cancel := context.WithTimeout(context.Background(), stopDrain)
	defer cancel()
	for ctx.Err() == nil {
		select {
		case f := <-b.acct:
			f(ctx)
		default:
			return
		}
	}
	if n := len(b.acct); n > 0 {
		b.log.Info(fmt.Sprintf("daemon stopping: %d RADIUS accounting records not sent", n))
	}
}

func (b *radiusBackend) queue(what string, f func(context.Context)) {
	select {
	case b.acct <- f:
	default:
		b.log.Info(fmt.Sprintf("RADIUS accounting queue full, %s dropped", what))
	}
}

func acctSession(s ike.EAPSession) *radius.AcctSession {
	a := &radius.AcctSession{
		// Unique per session across restarts: the start time and the IKE
		// SA's unique ID.
		ID:       fmt.Sprintf("%08X-%08X", s.Started.Unix(), s.IKESAID),
		UserName: s.Identity, Calling: s.Remote, Called: s.Local,
		NASPort: s.IKESAID, NASPortID: s.Connection, Started: s.Started, Class: s.Class,
	}
	for _, v := range s.VIPs {
		if v.Is4() {
			a.FramedIP = v
			break
		}
	}
	return a
}

func (b *radiusBackend) AccountingStart(s ike.EAPSession) {
	a := acctSession(s)
	b.queue("Start of "+a.ID, func(ctx context.Context) {
		if err := b.c.AccountingStart(ctx, a); err != nil {
			b.log.Info(fmt.Sprintf("RADIUS accounting Start for '%s' failed: %v", a.UserName, err))
		}
	})
}

func (b *radiusBackend) AccountingInterim(s ike.EAPSession, u ike.EAPUsage) {
	a := acctSession(s)
	usage := acctUsage(u)
	b.queue("Interim-Update of "+a.ID, func(ctx context.Context) {
		if err := b.c.AccountingInterim(ctx, a, usage); err != nil {
			b.log.Info(fmt.Sprintf("RADIUS accounting Interim-Update for '%s' failed: %v", a.UserName, err))
		}
	})
}

func (b *radiusBackend) AccountingStop(s ike.EAPSession, u ike.EAPUsage) {
	a := acctSession(s)
	usage, cause := acctUsage(u), terminateCause(u.Cause)
	b.queue("Stop of "+a.ID, func(ctx context.Context) {
		if err := b.c.AccountingStop(ctx, a, usage, cause); err != nil {
			b.log.Info(fmt.Sprintf("RADIUS accounting Stop for '%s' failed: %v", a.UserName, err))
		}
	})
}

func (b *radiusBackend) AccountingInterval() time.Duration { return b.c.AccountingInterval() }

func acctUsage(u ike.EAPUsage) radius.Usage {
	return radius.Usage{InOctets: u.BytesIn, OutOctets: u.BytesOut, InPackets: u.PacketsIn, OutPackets: u.PacketsOut}
}

// terminateCause is the Acct-Terminate-Cause (RFC 2866 section 5.10) of
// why an IKE SA went.
func terminateCause(c ike.EndCause) radius.TerminateCause {
	switch c {
	case ike.EndPeerDeleted:
		return radius.CauseUserRequest
	case ike.EndPeerDead:
		return radius.CauseLostCarrier
	case ike.EndExpired:
		return radius.CauseSessionTimeout
	case ike.EndAdmin:
		return radius.CauseAdminReset
	case ike.EndReplaced:
		return radius.CausePortPreempted
	case ike.EndShutdown:
		return radius.CauseNASReboot
	}
	return radius.CauseNASRequest
}

func (b *radiusBackend) NewConversation(p ike.EAPPeer) (ike.EAPConversation, error) {
	s, err := b.c.NewSession(radius.Peer{
		UserName: p.Identity, Calling: p.Remote, Called: p.Local,
		NASPort: p.IKESAID, NASPortID: p.Connection,
	})
	if err != nil {
		return nil, err
	}
	return radiusConversation{s}, nil
}

type radiusConversation struct{ s *radius.Session }

func (c radiusConversation) Exchange(ctx context.Context, eap []byte) (ike.EAPReply, error) {
	r, err := c.s.Exchange(ctx, eap)
	if err != nil {
		return ike.EAPReply{}, err
	}
	out := ike.EAPReply{EAP: r.EAP, Server: r.Server}
	switch r.Outcome {
	case radius.Challenge:
		out.Outcome = ike.EAPChallenge
	case radius.Accept:
		out.Outcome = ike.EAPAccept
		out.MSK, out.FramedIP = r.MSK, r.FramedIP
		out.Class, out.InterimInterval = r.Class, r.InterimInterval
	default:
		out.Outcome = ike.EAPReject
	}
	return out, nil
}

var _ ike.XAuthBackend = (*radiusBackend)(nil)

// Authenticate checks an XAuth user's name and password with the RADIUS
// servers (ike.XAuthBackend): one PAP Access-Request.
func (b *radiusBackend) Authenticate(ctx context.Context, r ike.XAuthRequest) (ike.XAuthResult, error) {
	s, err := b.c.NewSession(radius.Peer{UserName: r.User, Calling: r.Remote, Called: r.Local, NASPort: r.IKESAID, NASPortID: r.Connection})
	if err != nil {
		return ike.XAuthResult{}, err
	}
	rep, err := s.Authenticate(ctx, r.Password)
	if err != nil {
		return ike.XAuthResult{}, err
	}
	return ike.XAuthResult{Accept: rep.Outcome == radius.Accept, FramedIP: rep.FramedIP, Server: rep.Server}, nil
}

// xauthBackend is the XAuth side of the RADIUS backend, nil without.
func xauthBackend(b ike.EAPBackend) ike.XAuthBackend {
	if rb, ok := b.(*radiusBackend); ok {
		return rb
	}
	return nil
}
