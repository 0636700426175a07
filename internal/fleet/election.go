package fleet

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// ErrStale is returned by Leadership.Save when the leadership is gone: its
// election key no longer exists with this member's lease (the lease
// expired while the member was paused or cut off, or it resigned). The
// member must stop serving the shared address: another may serve it now.
var ErrStale = errors.New("fleet: leadership lost (stale view): another member may serve the shared address")

// resignTimeout bounds the resignations we make on our own (a campaign
// that cannot be used, Close): the key goes with the lease anyway.
const resignTimeout = 2 * time.Second

// maxTxnOps is how many writes go into one transaction: etcd refuses
// more than --max-txn-ops (128 by default).
const maxTxnOps = 100

// maxTxnBytes bounds the values of one transaction below etcd's default
// request limit (--max-request-bytes, 1.5 MiB).
const maxTxnBytes = 1 << 20

// Leadership is this member's hold of a shared address, from a won
// Campaign to its loss or Resign.
type Leadership struct {
	m      *Member
	shared string
	e      *concurrency.Election
	key    string // the election key, under our lease
	rev    int64  // its create revision

	lostOnce sync.Once
	lost     chan struct{}
	stop     context.CancelFunc
}

// Campaign waits until this member leads the election of shared (at most
// one member at a time does) or ctx is done. It returns only once every
// earlier candidate's key is gone: a leader that died is replaced only
// after its lease expired (TTL).
func (m *Member) Campaign(ctx context.Context, shared string) (*Leadership, error) {
	if shared == "" {
		return nil, errors.New("fleet: campaign for an empty shared name")
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, errors.New("fleet: member closed")
	}
	if _, ok := m.leading[shared]; ok {
		m.mu.Unlock()
		return nil, fmt.Errorf("fleet: %s: already campaigning or leading", shared)
	}
	// A placeholder so that a second Campaign for shared is refused.
	m.leading[shared] = nil
	m.mu.Unlock()
	l, err := m.campaign(ctx, shared)
	m.mu.Lock()
	if err != nil || m.closed || l.isLost() {
		// A leadership lost before it was recorded frees its
		// place at once (the watch could not).
		delete(m.leading, shared)
	} else {
		m.leading[shared] = l
	}
	closed := m.closed
	m.mu.Unlock()
	if err == nil && closed {
		rctx, cancel := context.WithTimeout(context.Background(), resignTimeout)
		l.Resign(rctx)
		cancel()
		return nil, errors.New("fleet: member closed")
	}
	return l, err
}

func (m *Member) campaign(ctx context.Context, shared string) (*Leadership, error) {
	e := concurrency.NewElection(m.session, m.electKey(shared))
	if err := e.Campaign(ctx, m.cfg.Member); err != nil {
		return nil, fmt.Errorf("fleet: campaign for %s: %w", shared, err)
	}
	key, rev := e.Key(), e.Rev()
	// Campaign may return after our lease expired while it waited:
	// leading is holding the key, so check that it is still there.
	resp, err := m.client.Get(ctx, key)
	if err != nil {
		rctx, cancel := context.WithTimeout(context.Background(), resignTimeout)
		e.Resign(rctx)
		cancel()
		return nil, fmt.Errorf("fleet: campaign for %s: %w", shared, err)
	}
	if len(resp.Kvs) == 0 || resp.Kvs[0].CreateRevision != rev {
		return nil, fmt.Errorf("fleet: campaign for %s: %w", shared, ErrStale)
	}
	wctx, stop := context.WithCancel(context.Background())
	l := &Leadership{m: m, shared: shared, e: e, key: key, rev: rev, lost: make(chan struct{}), stop: stop}
	go l.watch(wctx, resp.Header.Revision)
	return l, nil
}

// watch closes lost when the session ends or the election key goes.
func (l *Leadership) watch(ctx context.Context, rev int64) {
	defer l.markLost()
	wch := l.m.client.Watch(clientv3.WithRequireLeader(ctx), l.key, clientv3.WithRev(rev+1))
	for {
		select {
		case <-ctx.Done():
			return
		case <-l.m.session.Done():
			return
		case resp, ok := <-wch:
			if !ok {
				return
			}
			if err := resp.Err(); err != nil {
				// No leader or a compaction: watch again from
				// where we are; a gone key shows on the Get.
				if ctx.Err() != nil {
					return
				}
				g, err := l.m.client.Get(ctx, l.key)
				if err == nil && (len(g.Kvs) == 0 || g.Kvs[0].CreateRevision != l.rev) {
					return
				}
				if err == nil {
					rev = g.Header.Revision
				}
				wch = l.m.client.Watch(clientv3.WithRequireLeader(ctx), l.key, clientv3.WithRev(rev+1))
				continue
			}
			for _, ev := range resp.Events {
				if ev.Type == clientv3.EventTypeDelete {
					return
				}
			}
			rev = resp.Header.Revision
		}
	}
}

// markLost closes lost, and frees the member's place for a new Campaign
// for the shared address.
func (l *Leadership) markLost() {
	l.lostOnce.Do(func() { close(l.lost) })
	l.m.mu.Lock()
	if l.m.leading[l.shared] == l {
		delete(l.m.leading, l.shared)
	}
	l.m.mu.Unlock()
}

func (l *Leadership) isLost() bool {
	select {
	case <-l.lost:
		return true
	default:
		return false
	}
}

// Shared is the shared address (or section name) this leadership is of.
func (l *Leadership) Shared() string { return l.shared }

// Lost is closed when the leadership ends: the member's lease expired or
// was revoked, the election key went, or Resign.
func (l *Leadership) Lost() <-chan struct{} { return l.lost }

// Resign gives the leadership up (the next candidate takes over at once).
func (l *Leadership) Resign(ctx context.Context) error {
	l.markLost()
	l.stop()
	if err := l.e.Resign(ctx); err != nil {
		return fmt.Errorf("fleet: resign %s: %w", l.shared, err)
	}
	return nil
}

// Save writes the records of the shared address: put (sealed) and del,
// each transaction guarded by this leadership (ErrStale when it is gone).
// Up to about a hundred records go in one transaction; a larger Save is
// several, each whole, in order.
func (l *Leadership) Save(ctx context.Context, put map[string][]byte, del []string) error {
	if l.isLost() {
		return ErrStale
	}
	return l.save(ctx, put, del)
}

// save is Save without the shortcut of a leadership known lost: each
// transaction is refused by etcd if the election key is gone.
func (l *Leadership) save(ctx context.Context, put map[string][]byte, del []string) error {
	guard := clientv3.Compare(clientv3.CreateRevision(l.key), "=", l.rev)
	names := make([]string, 0, len(put))
	for name := range put {
		if name == "" {
			return errors.New("fleet: save: a record without a name")
		}
		names = append(names, name)
	}
	sort.Strings(names)
	var ops []clientv3.Op
	size := 0
	flush := func() error {
		if len(ops) == 0 {
			return nil
		}
		resp, err := l.m.client.Txn(ctx).If(guard).Then(ops...).Commit()
		ops, size = ops[:0], 0
		if err != nil {
			return fmt.Errorf("fleet: save records of %s: %w", l.shared, err)
		}
		if !resp.Succeeded {
			l.markLost()
			return ErrStale
		}
		return nil
	}
	for _, name := range names {
		key := l.m.recordKey(l.shared, name)
		sealed, err := l.m.sealer.seal(key, put[name])
		if err != nil {
			return fmt.Errorf("fleet: seal %s: %w", key, err)
		}
		if len(ops) >= maxTxnOps || (size > 0 && size+len(sealed) > maxTxnBytes) {
			if err := flush(); err != nil {
				return err
			}
		}
		ops = append(ops, clientv3.OpPut(key, string(sealed)))
		size += len(key) + len(sealed)
	}
	for _, name := range del {
		if len(ops) >= maxTxnOps {
			if err := flush(); err != nil {
				return err
			}
		}
		if _, dup := put[name]; dup {
			continue // etcd refuses a put and a delete of one key in a transaction
		}
		ops = append(ops, clientv3.OpDelete(l.m.recordKey(l.shared, name)))
	}
	return flush()
}

// Load reads and opens the records of shared, by name. A record that does
// not open (tampered, moved, sealed under another key) is an error naming
// its key; the records that opened are returned with it.
func (m *Member) Load(ctx context.Context, shared string) (map[string][]byte, error) {
	pfx := m.recordKey(shared, "")
	resp, err := m.client.Get(ctx, pfx, clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("fleet: load records of %s: %w", shared, err)
	}
	out := make(map[string][]byte, len(resp.Kvs))
	var errs []error
	for _, kv := range resp.Kvs {
		plain, err := m.sealer.open(string(kv.Key), kv.Value)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out[strings.TrimPrefix(string(kv.Key), pfx)] = plain
	}
	return out, errors.Join(errs...)
}

// Holder is the member leading the election of shared, "" if none. A
// member that died holds until its lease expires.
func (m *Member) Holder(ctx context.Context, shared string) (string, error) {
	resp, err := m.client.Get(ctx, m.electKey(shared)+"/", clientv3.WithFirstCreate()...)
	if err != nil {
		return "", fmt.Errorf("fleet: holder of %s: %w", shared, err)
	}
	if len(resp.Kvs) == 0 {
		return "", nil
	}
	return string(resp.Kvs[0].Value), nil
}

func (m *Member) electKey(shared string) string { return m.cfg.Prefix + "/elect/" + seg(shared) }

func (m *Member) recordKey(shared, name string) string {
	return m.cfg.Prefix + "/sa/" + seg(shared) + "/" + name
}
