// Package fleet: TEMPORARY stub with the signatures of /work/fleet-spec.md
// so that the daemon compiles until helper A's branch is merged. Deleted
// before that merge.
package fleet

import (
	"context"
	"errors"
	"net/netip"
	"time"
)

type Config struct {
	Endpoints   []string
	Member      string
	Prefix      string
	Key         []byte
	TTL         time.Duration
	Address     netip.Addr
	DialTimeout time.Duration
}

var errStub = errors.New("fleet: not built yet")

func LoadKey(path string) ([]byte, error)                   { return nil, errStub }
func Join(ctx context.Context, cfg Config) (*Member, error) { return nil, errStub }

type Member struct{}

func (m *Member) Close() error { return nil }
func (m *Member) Name() string { return "" }

type Status struct {
	Member           string
	Address          netip.Addr
	IKESAs, ChildSAs int
	Holds            []string
	LastCheckpoint   time.Time
	Updated          time.Time
}

func (m *Member) Publish(ctx context.Context, s Status) error   { return errStub }
func (m *Member) Members(ctx context.Context) ([]Status, error) { return nil, errStub }
func (m *Member) Campaign(ctx context.Context, shared string) (*Leadership, error) {
	return nil, errStub
}
func (m *Member) Holder(ctx context.Context, shared string) (string, error) { return "", errStub }

type Leadership struct{}

func (l *Leadership) Shared() string                   { return "" }
func (l *Leadership) Lost() <-chan struct{}            { return nil }
func (l *Leadership) Resign(ctx context.Context) error { return errStub }

var ErrStale = errors.New("fleet: stale")

func (l *Leadership) Save(ctx context.Context, put map[string][]byte, del []string) error {
	return errStub
}
func (m *Member) Load(ctx context.Context, shared string) (map[string][]byte, error) {
	return nil, errStub
}

type Leases struct{}

func (l *Leases) Claim(pool string, addr netip.Addr, id, prev string) (bool, string, error) {
	return false, "", errStub
}
func (l *Leases) Known(pool, id string) (netip.Addr, bool) { return netip.Addr{}, false }
func (m *Member) Leases() *Leases                          { return &Leases{} }
