package fleet

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// claimTimeout bounds a Claim or Released: the pool calls them under the
// engine's lock.
const claimTimeout = 2 * time.Second

// Leases are the fleet's pool leases: an address is leased to one
// identity fleet-wide, and an identity keeps its address on whichever
// member it lands. It implements ike/pool.Arbiter.
//
// A lease is online on a member while that member's pool uses it (the
// online key is under the member's etcd lease, so it goes when the member
// dies); only a lease online nowhere may be taken back for another
// identity. Leases stay bound to their identity when offline, as in the
// local pool.
type Leases struct {
	m    *Member
	done chan struct{}

	mu sync.Mutex
	// kv is the leases prefix as last seen (an initial Get, then a watch,
	// and the results of our own transactions), by key.
	kv map[string]cached
}

type cached struct {
	value string
	rev   int64 // mod revision of the value, or of its deletion
	gone  bool
}

// Leases is the member's pool arbiter.
func (m *Member) Leases() *Leases { return m.leases }

// newLeases reads the leases (so that Known answers from the first
// Acquire on) and follows them in the background until ctx ends.
func newLeases(ctx, first context.Context, m *Member) (*Leases, error) {
	ls := &Leases{m: m, done: make(chan struct{}), kv: map[string]cached{}}
	rev, err := ls.load(first)
	if err != nil {
		return nil, err
	}
	go ls.follow(ctx, rev)
	return ls, nil
}

func (ls *Leases) wait() { <-ls.done }

func (ls *Leases) prefix() string { return ls.m.cfg.Prefix + "/leases/" }

func (ls *Leases) addrKey(pool string, a netip.Addr) string {
	return ls.prefix() + seg(pool) + "/addr/" + a.String()
}
func (ls *Leases) idKey(pool, id string) string { return ls.prefix() + seg(pool) + "/id/" + seg(id) }
func (ls *Leases) onlineKey(pool string, a netip.Addr) string {
	return ls.prefix() + seg(pool) + "/online/" + a.String()
}

// follow keeps kv in step with etcd: a Get of the prefix, then a watch
// from the revision after it, again after a compaction or an error.
func (ls *Leases) follow(ctx context.Context, rev int64) {
	defer close(ls.done)
	for {
		wch := ls.m.client.Watch(clientv3.WithRequireLeader(ctx), ls.prefix(), clientv3.WithPrefix(), clientv3.WithRev(rev+1))
		for wr := range wch {
			if wr.Err() != nil {
				break
			}
			ls.mu.Lock()
			for _, ev := range wr.Events {
				ls.setLocked(string(ev.Kv.Key), string(ev.Kv.Value), ev.Kv.ModRevision, ev.Type == mvccpb.DELETE)
			}
			ls.mu.Unlock()
			rev = wr.Header.Revision
		}
		// Cancelled, compacted past us, or no etcd leader: read the
		// whole prefix again and watch on from there.
		for {
			if ctx.Err() != nil {
				return
			}
			r, err := ls.load(ctx)
			if err == nil {
				rev = r
				break
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(500 * time.Millisecond):
			}
		}
	}
}

// load reads the leases prefix into kv (keys not there any more are
// marked gone) and returns the revision read.
func (ls *Leases) load(ctx context.Context) (int64, error) {
	resp, err := ls.m.client.Get(ctx, ls.prefix(), clientv3.WithPrefix())
	if err != nil {
		return 0, fmt.Errorf("fleet: read the pool leases: %w", err)
	}
	ls.mu.Lock()
	defer ls.mu.Unlock()
	seen := make(map[string]bool, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		seen[string(kv.Key)] = true
		ls.setLocked(string(kv.Key), string(kv.Value), kv.ModRevision, false)
	}
	for k, c := range ls.kv {
		if !seen[k] && !c.gone && c.rev <= resp.Header.Revision {
			ls.kv[k] = cached{rev: resp.Header.Revision, gone: true}
		}
	}
	return resp.Header.Revision, nil
}

// setLocked takes a value (or a deletion) seen at rev unless a newer one
// is known.
func (ls *Leases) setLocked(key, value string, rev int64, gone bool) {
	if c, ok := ls.kv[key]; ok && c.rev > rev {
		return
	}
	if gone {
		ls.kv[key] = cached{rev: rev, gone: true}
		return
	}
	ls.kv[key] = cached{value: value, rev: rev}
}

func (ls *Leases) get(key string) (string, bool) {
	c, ok := ls.kv[key]
	if !ok || c.gone {
		return "", false
	}
	return c.value, true
}

// Known is the address id holds in pool fleet-wide, from the local copy
// of the leases (no round trip).
func (ls *Leases) Known(pool, id string) (netip.Addr, bool) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	v, ok := ls.get(ls.idKey(pool, id))
	if !ok {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(v)
	if err != nil {
		return netip.Addr{}, false
	}
	// The identity key is a hint; the address key says who holds it.
	if holder, ok := ls.get(ls.addrKey(pool, a)); !ok || holder != id {
		return netip.Addr{}, false
	}
	return a, true
}

// Claim leases addr to id fleet-wide and marks it online on this member:
// an address nobody holds, one id holds already and that is online on no
// other member, or one prev holds (an offline lease taken back) and that
// is online nowhere. Otherwise it returns the holder. It is one etcd
// transaction for a free address, and a read and a guarded transaction
// otherwise (again if another member got in between).
func (ls *Leases) Claim(pool string, addr netip.Addr, id, prev string) (bool, string, error) {
	if id == "" {
		return false, "", fmt.Errorf("fleet: claim %v in pool %q: no identity", addr, pool)
	}
	addr = addr.Unmap()
	me := ls.m.cfg.Member
	addrK, idK, onK := ls.addrKey(pool, addr), ls.idKey(pool, id), ls.onlineKey(pool, addr)
	// An address another identity holds, online on another member, is
	// refused from the local copy without a round trip: if the copy is
	// behind, the pool only tries another address. Where id or prev holds
	// it, etcd decides (the copy may not have seen it go offline yet).
	ls.mu.Lock()
	holder, held := ls.get(addrK)
	by, online := ls.get(onK)
	ls.mu.Unlock()
	if held && online && by != me && holder != "" && holder != id && holder != prev {
		return false, holder, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), claimTimeout)
	defer cancel()
	lease := clientv3.WithLease(ls.m.session.Lease())
	take := []clientv3.Op{
		clientv3.OpPut(addrK, id),
		clientv3.OpPut(idK, addr.String()),
		clientv3.OpPut(onK, me, lease),
	}
	resp, err := ls.m.client.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(addrK), "=", 0)).
		Then(take...).
		Else(clientv3.OpGet(addrK), clientv3.OpGet(onK)).Commit()
	for try := 0; ; try++ {
		if err != nil {
			return false, "", fmt.Errorf("fleet lease claim: %w", err)
		}
		if resp.Succeeded {
			ls.took(addrK, id, idK, addr.String(), onK, me, resp.Header.Revision)
			return true, "", nil
		}
		if try == 5 {
			return false, "", errors.New("fleet lease claim: too much contention")
		}
		var holder string
		var addrRev, onRev int64
		var onBy string
		for i, r := range resp.Responses {
			rr := r.GetResponseRange()
			if rr == nil || len(rr.Kvs) == 0 {
				continue
			}
			if i == 0 {
				holder, addrRev = string(rr.Kvs[0].Value), rr.Kvs[0].ModRevision
			} else {
				onBy, onRev = string(rr.Kvs[0].Value), rr.Kvs[0].ModRevision
			}
		}
		free := onBy == "" || onBy == me
		switch {
		case holder == id && free, holder == "" && free, prev != "" && holder == prev && free:
		default:
			ls.mu.Lock()
			ls.setLocked(addrK, holder, addrRev, holder == "")
			ls.mu.Unlock()
			if holder == "" {
				holder = onBy
			}
			return false, holder, nil
		}
		ops := take
		if holder != "" && holder != id {
			// prev's identity key, if it still names this address, goes
			// with the lease.
			prevK := ls.idKey(pool, holder)
			ops = append(ops[:len(take):len(take)], clientv3.OpTxn(
				[]clientv3.Cmp{clientv3.Compare(clientv3.Value(prevK), "=", addr.String())},
				[]clientv3.Op{clientv3.OpDelete(prevK)}, nil))
		}
		resp, err = ls.m.client.Txn(ctx).
			If(clientv3.Compare(clientv3.ModRevision(addrK), "=", addrRev),
				clientv3.Compare(clientv3.ModRevision(onK), "=", onRev)).
			Then(ops...).
			Else(clientv3.OpGet(addrK), clientv3.OpGet(onK)).Commit()
	}
}

// took records our own successful claim in the local copy before the
// watch brings it.
func (ls *Leases) took(addrK, id, idK, addr, onK, me string, rev int64) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	ls.setLocked(addrK, id, rev, false)
	ls.setLocked(idK, addr, rev, false)
	ls.setLocked(onK, me, rev, false)
}

// Released says id's lease of addr went offline on this member (its last
// IKE SA here ended): the address stays id's, but another member may take
// it back for another identity now. Best effort: if etcd does not answer,
// the address stays online until this member's lease ends (conservative).
func (ls *Leases) Released(pool string, addr netip.Addr, id string) {
	addr = addr.Unmap()
	onK := ls.onlineKey(pool, addr)
	ctx, cancel := context.WithTimeout(context.Background(), claimTimeout)
	defer cancel()
	resp, err := ls.m.client.Txn(ctx).
		If(clientv3.Compare(clientv3.Value(onK), "=", ls.m.cfg.Member),
			clientv3.Compare(clientv3.Value(ls.addrKey(pool, addr)), "=", id)).
		Then(clientv3.OpDelete(onK)).Commit()
	if err == nil && resp.Succeeded {
		ls.mu.Lock()
		ls.setLocked(onK, "", resp.Header.Revision, true)
		ls.mu.Unlock()
	}
}

// Holders lists pool's leases as the local copy has them: address ->
// identity, and whether it is online on some member (for status output
// and tests).
func (ls *Leases) Holders(pool string) map[netip.Addr]LeaseHolder {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	base := ls.prefix() + seg(pool)
	out := map[netip.Addr]LeaseHolder{}
	for k, c := range ls.kv {
		if c.gone {
			continue
		}
		if rest, ok := strings.CutPrefix(k, base+"/addr/"); ok {
			if a, err := netip.ParseAddr(rest); err == nil {
				h := out[a]
				h.Identity = c.value
				out[a] = h
			}
		} else if rest, ok := strings.CutPrefix(k, base+"/online/"); ok {
			if a, err := netip.ParseAddr(rest); err == nil {
				h := out[a]
				h.OnlineOn = c.value
				out[a] = h
			}
		}
	}
	return out
}

// LeaseHolder is who holds an address of a fleet pool.
type LeaseHolder struct {
	Identity string
	OnlineOn string // the member it is online on, "" if offline
}
