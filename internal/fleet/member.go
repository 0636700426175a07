package fleet

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// Config says how a member joins the fleet.
type Config struct {
	Endpoints   []string      // etcd client URLs
	Member      string        // this gateway's name, unique in the fleet
	Prefix      string        // key prefix, default "/xdpsec"
	Key         []byte        // 32-byte fleet key (LoadKey)
	TTL         time.Duration // etcd lease TTL, default 3s (min 2s); whole seconds, rounded up
	Address     netip.Addr    // this member's own IKE address (redirect target)
	DialTimeout time.Duration // default 5s
	// TLS for https:// endpoints: the CA that signed etcd's certificate
	// and, where etcd asks for one (--client-cert-auth), our certificate
	// (LoadTLS). nil: plain http.
	TLS *tls.Config
}

// DefaultPrefix is where the fleet's keys are when Config.Prefix is empty.
const DefaultPrefix = "/xdpsec"

// DefaultTTL is the etcd lease TTL when Config.TTL is zero: how long a
// member that stopped answering still holds what it held.
const DefaultTTL = 3 * time.Second

// MinTTL is the shortest TTL Join takes (etcd's own minimum with its
// default heartbeat and election timeouts is 2s as well).
const MinTTL = 2 * time.Second

// Member is this gateway in the fleet: an etcd client and a session whose
// lease carries its status, its election keys and its online pool leases.
// A Member is safe for concurrent use.
type Member struct {
	cfg     Config
	client  *clientv3.Client
	session *concurrency.Session
	sealer  *sealer
	leases  *Leases
	cancel  context.CancelFunc // stops the background watches

	mu      sync.Mutex
	leading map[string]*Leadership // campaigns and leaderships, by shared
	closed  bool
}

// Join connects to etcd and starts this member's session (an etcd lease
// kept alive in the background; its keys go when the member stops
// answering for TTL).
func Join(ctx context.Context, cfg Config) (*Member, error) {
	if len(cfg.Endpoints) == 0 {
		return nil, errors.New("fleet: no etcd endpoints")
	}
	if cfg.Member == "" {
		return nil, errors.New("fleet: no member name")
	}
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	cfg.Prefix = strings.TrimRight(cfg.Prefix, "/")
	if !strings.HasPrefix(cfg.Prefix, "/") {
		return nil, fmt.Errorf("fleet: prefix %q does not start with /", cfg.Prefix)
	}
	switch {
	case cfg.TTL == 0:
		cfg.TTL = DefaultTTL
	case cfg.TTL < MinTTL:
		return nil, fmt.Errorf("fleet: lease TTL %v is below the minimum %v", cfg.TTL, MinTTL)
	}
	cfg.TTL = cfg.TTL.Round(time.Second)
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = 5 * time.Second
	}
	s, err := newSealer(cfg.Key)
	if err != nil {
		return nil, fmt.Errorf("fleet: %w", err)
	}
	cfg.Key = nil // the sealer has what it needs; the caller zeroes its copy
	for _, ep := range cfg.Endpoints {
		if strings.HasPrefix(ep, "https://") && cfg.TLS == nil {
			return nil, fmt.Errorf("fleet: endpoint %s is https but no CA or certificate is configured", ep)
		}
	}
	client, err := clientv3.New(clientv3.Config{
		Endpoints:   cfg.Endpoints,
		TLS:         cfg.TLS,
		DialTimeout: cfg.DialTimeout,
		Context:     context.Background(),
		Logger:      quietLogger(),
	})
	if err != nil {
		return nil, fmt.Errorf("fleet: etcd client: %w", err)
	}
	// The first request says whether etcd answers at all, within the
	// caller's deadline and the dial timeout.
	sctx, scancel := context.WithTimeout(ctx, cfg.DialTimeout)
	lease, err := client.Grant(sctx, int64(cfg.TTL/time.Second))
	scancel()
	if err != nil {
		client.Close()
		return nil, fmt.Errorf("fleet: etcd at %s: %w", strings.Join(cfg.Endpoints, ","), err)
	}
	session, err := concurrency.NewSession(client, concurrency.WithLease(lease.ID), concurrency.WithTTL(int(cfg.TTL/time.Second)))
	if err != nil {
		client.Close()
		return nil, fmt.Errorf("fleet: etcd session: %w", err)
	}
	bg, cancel := context.WithCancel(context.Background())
	m := &Member{cfg: cfg, client: client, session: session, sealer: s, cancel: cancel,
		leading: map[string]*Leadership{}}
	lctx, lcancel := context.WithTimeout(ctx, cfg.DialTimeout)
	m.leases, err = newLeases(bg, lctx, m)
	lcancel()
	if err != nil {
		cancel()
		session.Close()
		client.Close()
		return nil, err
	}
	return m, nil
}

// Name is this member's name in the fleet.
func (m *Member) Name() string { return m.cfg.Member }

// TTL is the member's etcd lease TTL.
func (m *Member) TTL() time.Duration { return m.cfg.TTL }

// Done is closed when the member's session is gone: its lease expired
// (the member was paused or cut off from etcd past its TTL) or was
// revoked (Close). Everything it held is lost; a new Join starts over.
func (m *Member) Done() <-chan struct{} { return m.session.Done() }

// Close resigns the member's leaderships, revokes its lease (its status,
// election keys and online leases go at once) and disconnects.
func (m *Member) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	leading := make([]*Leadership, 0, len(m.leading))
	for _, l := range m.leading {
		if l != nil { // nil: a campaign under way, ended by m.cancel
			leading = append(leading, l)
		}
	}
	m.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), resignTimeout)
	defer cancel()
	for _, l := range leading {
		l.Resign(ctx)
	}
	m.cancel()
	err := m.session.Close() // revokes the lease
	if cerr := m.client.Close(); err == nil {
		err = cerr
	}
	m.leases.wait()
	return err
}

// Status is what a member publishes about itself.
type Status struct {
	Member         string
	Address        netip.Addr
	IKESAs         int
	ChildSAs       int
	Holds          []string  // shared addresses it leads
	LastCheckpoint time.Time // of its last saved record
	Updated        time.Time
}

// Publish writes s as this member's status, under its lease. Member is
// set to this member's name and Updated to now when zero.
func (m *Member) Publish(ctx context.Context, s Status) error {
	s.Member = m.cfg.Member
	if !s.Address.IsValid() {
		s.Address = m.cfg.Address
	}
	if s.Updated.IsZero() {
		s.Updated = time.Now()
	}
	b, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("fleet: status: %w", err)
	}
	if _, err := m.client.Put(ctx, m.memberKey(m.cfg.Member), string(b), clientv3.WithLease(m.session.Lease())); err != nil {
		return fmt.Errorf("fleet: publish status: %w", err)
	}
	return nil
}

// Members lists the statuses of the members alive (whose lease holds),
// by name. A member that joined and has not published yet is not listed.
func (m *Member) Members(ctx context.Context) ([]Status, error) {
	resp, err := m.client.Get(ctx, m.cfg.Prefix+"/members/", clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("fleet: members: %w", err)
	}
	out := make([]Status, 0, len(resp.Kvs))
	var errs []error
	for _, kv := range resp.Kvs {
		var s Status
		if err := json.Unmarshal(kv.Value, &s); err != nil {
			errs = append(errs, fmt.Errorf("fleet: status %s: %w", kv.Key, err))
			continue
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Member < out[j].Member })
	return out, errors.Join(errs...)
}

func (m *Member) memberKey(name string) string {
	return m.cfg.Prefix + "/members/" + seg(name)
}

// seg escapes a name for use as one segment of a key.
func seg(name string) string { return url.PathEscape(name) }
