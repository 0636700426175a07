package fleet

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/xdpsec/xdpsec/ike/pool"
	"github.com/xdpsec/xdpsec/internal/fleet/fleettest"
)

// Compile-time check: the fleet's leases are a pool arbiter.
var _ pool.Arbiter = (*Leases)(nil)

func TestFleetLeasesNoCollision(t *testing.T) {
	ep := startEtcd(t)
	const members, workersPer, identities, rounds = 3, 4, 300, 120
	var ms []*Member
	var pools []*pool.Pool
	for i := range members {
		m := join(t, ep, fmt.Sprintf("gw%d", i+1), 0)
		p, err := pool.FromPrefix("rw", netip.MustParsePrefix("10.9.0.0/28")) // 14 addresses
		if err != nil {
			t.Fatal(err)
		}
		p.SetArbiter(m.Leases())
		ms = append(ms, m)
		pools = append(pools, p)
	}
	var mu sync.Mutex
	online := map[netip.Addr]string{} // address -> "member identity", while leased
	var leased, exhausted, reused int
	type held struct {
		gw   int
		id   string
		addr netip.Addr
	}
	var mine []held // leased now, all gateways
	var wg sync.WaitGroup
	start := time.Now()
	for w := range members * workersPer {
		wg.Add(1)
		go func() {
			defer wg.Done()
			gw := w % members
			p := pools[gw]
			r := rand.New(rand.NewPCG(uint64(w), 7))
			release := func(i int) {
				mu.Lock()
				if i >= len(mine) {
					mu.Unlock()
					return
				}
				h := mine[i]
				mine = append(mine[:i], mine[i+1:]...)
				delete(online, h.addr)
				mu.Unlock()
				pools[h.gw].Release(h.id, h.addr)
			}
			for range rounds {
				// More acquisitions than releases: the pool fills up
				// and new identities take offline leases back.
				mu.Lock()
				n := len(mine)
				mu.Unlock()
				if n > 0 && r.IntN(5) < 2 {
					release(r.IntN(n))
					continue
				}
				id := fmt.Sprintf("user%03d", r.IntN(identities))
				a, again, err := p.Acquire(id, netip.Addr{})
				if errors.Is(err, pool.ErrExhausted) {
					mu.Lock()
					exhausted++
					mu.Unlock()
					continue
				}
				if err != nil {
					t.Errorf("gw%d: %v", gw+1, err)
					return
				}
				who := fmt.Sprintf("gw%d %s", gw+1, id)
				mu.Lock()
				if prev, ok := online[a]; ok {
					mu.Unlock()
					t.Errorf("%v leased to %s while leased to %s", a, who, prev)
					return
				}
				online[a] = who
				leased++
				if again {
					reused++
				}
				mine = append(mine, held{gw, id, a})
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for _, h := range mine {
		pools[h.gw].Release(h.id, h.addr)
	}
	mine = nil
	took := time.Since(start)
	t.Logf("%d leases (%d to a returning identity), %d exhausted, in %v (%v per Acquire/Release)",
		leased, reused, exhausted, took.Round(time.Millisecond), (took / time.Duration(leased+exhausted)).Round(time.Microsecond))
	if leased < 200 || exhausted == 0 {
		t.Fatalf("leased %d, exhausted %d: the test did not reach reuse and exhaustion", leased, exhausted)
	}
	// What etcd holds: every address of the pool leased to one identity
	// whose identity key names it back, online nowhere now.
	raw := rawClient(t, ep)
	resp, err := raw.Get(context.Background(), "/xdpsec/leases/rw/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	addrs, ids := map[string]string{}, map[string]string{}
	for _, kv := range resp.Kvs {
		k := string(kv.Key)
		switch {
		case strings.HasPrefix(k, "/xdpsec/leases/rw/addr/"):
			addrs[strings.TrimPrefix(k, "/xdpsec/leases/rw/addr/")] = string(kv.Value)
		case strings.HasPrefix(k, "/xdpsec/leases/rw/id/"):
			ids[strings.TrimPrefix(k, "/xdpsec/leases/rw/id/")] = string(kv.Value)
		default:
			t.Errorf("%s = %s after every lease was released", k, kv.Value)
		}
	}
	if len(addrs) != 14 {
		t.Errorf("%d addresses leased in etcd, want all 14", len(addrs))
	}
	for id, a := range ids {
		if addrs[a] != id {
			t.Errorf("identity key %s names %s, which is %q's", id, a, addrs[a])
		}
	}

	// A returning identity keeps its address on another member.
	a, _, err := pools[0].Acquire("roamer", netip.Addr{})
	if err != nil {
		// Every address is some identity's offline lease: the pool takes
		// one back.
		t.Fatal(err)
	}
	pools[0].Release("roamer", a)
	deadline := time.Now().Add(5 * time.Second)
	for {
		if got, ok := ms[1].Leases().Known("rw", "roamer"); ok && got == a {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("gw2 does not know roamer's address 5 s after gw1 leased it")
		}
		time.Sleep(10 * time.Millisecond)
	}
	got, again, err := pools[1].Acquire("roamer", netip.Addr{})
	if err != nil || got != a || !again {
		t.Fatalf("roamer on gw2 got %v (again %v, %v), want its %v from gw1", got, again, err, a)
	}
	// While it is online on gw2, gw1 and gw3 cannot give the address to
	// anyone else, even taking offline leases back.
	for i := 0; i < 40; i++ {
		for _, p := range []*pool.Pool{pools[0], pools[2]} {
			b, _, err := p.Acquire(fmt.Sprintf("late%d", i), netip.Addr{})
			if err == nil && b == a {
				t.Fatalf("%v handed out while online for roamer on gw2", a)
			}
		}
	}
}

func TestFleetLeasesClaim(t *testing.T) {
	ep := startEtcd(t)
	gw1, gw2 := join(t, ep, "gw1", 0), join(t, ep, "gw2", 0)
	l1, l2 := gw1.Leases(), gw2.Leases()
	a := netip.MustParseAddr("10.0.0.1")
	check := func(ok bool, holder string, err error, wantOK bool, wantHolder string) {
		t.Helper()
		if err != nil || ok != wantOK || holder != wantHolder {
			t.Fatalf("claim: ok %v holder %q err %v; want %v %q", ok, holder, err, wantOK, wantHolder)
		}
	}
	ok, h, err := l1.Claim("p", a, "alice", "")
	check(ok, h, err, true, "")
	// Online on gw1: refused to bob, to alice on gw2, to a taker-back.
	ok, h, err = l2.Claim("p", a, "bob", "")
	check(ok, h, err, false, "alice")
	ok, h, err = l2.Claim("p", a, "alice", "")
	check(ok, h, err, false, "alice")
	ok, h, err = l2.Claim("p", a, "bob", "alice")
	check(ok, h, err, false, "alice")
	// Offline: alice anywhere, or taken back from alice.
	l1.Released("p", a, "alice")
	waitKnownOffline(t, l2, "p", a)
	ok, h, err = l2.Claim("p", a, "bob", "carol") // prev is not the holder
	check(ok, h, err, false, "alice")
	ok, h, err = l2.Claim("p", a, "bob", "alice")
	check(ok, h, err, true, "")
	if _, ok := l1.Known("p", "alice"); ok {
		// The watch may lag; wait for bob's claim to arrive.
		deadline := time.Now().Add(3 * time.Second)
		for ok && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
			_, ok = l1.Known("p", "alice")
		}
		if ok {
			t.Fatal("alice still knows the address bob took back")
		}
	}
	// A member's online leases go with it.
	gw2.Close()
	ok, h, err = l1.Claim("p", a, "alice", "bob")
	check(ok, h, err, true, "")
}

// With etcd gone, a claim is an error within its timeout (the pool's
// Acquire fails, the engine answers INTERNAL_ADDRESS_FAILURE) instead of
// holding the engine; Known still answers from the local copy.
func TestFleetLeasesEtcdDown(t *testing.T) {
	if _, err := os.Stat(fleettest.Binary()); err != nil {
		if fleettest.Required() {
			t.Fatal(err)
		}
		t.Skipf("skipped: etcd server %s missing: %v", fleettest.Binary(), err)
	}
	ep, stop, err := fleettest.StartServer(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	m := join(t, ep, "gw1", 0)
	p, err := pool.FromPrefix("rw", netip.MustParsePrefix("10.9.0.0/29"))
	if err != nil {
		t.Fatal(err)
	}
	p.SetArbiter(m.Leases())
	a, _, err := p.Acquire("alice", netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	p.Release("alice", a)
	stop()
	start := time.Now()
	if _, _, err := p.Acquire("bob", netip.Addr{}); err == nil {
		t.Fatal("Acquire succeeded with etcd down")
	} else {
		t.Logf("with etcd down: %v after %v", err, time.Since(start).Round(time.Millisecond))
	}
	if took := time.Since(start); took > claimTimeout+time.Second {
		t.Fatalf("the failing claim took %v, more than its timeout %v", took, claimTimeout)
	}
	if got, ok := m.Leases().Known("rw", "alice"); !ok || got != a {
		t.Fatalf("Known without etcd: %v %v, want %v", got, ok, a)
	}
}

func waitKnownOffline(t *testing.T, l *Leases, p string, a netip.Addr) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		if h, ok := l.Holders(p)[a]; ok && h.OnlineOn == "" {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%v still online in the local copy", a)
}

// A member whose etcd session expired joins again: its pools' online
// leases went with the old lease, and setting the new member's arbiter
// claims them again, so no other member takes them back meanwhile.
func TestFleetLeasesRejoin(t *testing.T) {
	ep := startEtcd(t)
	old := join(t, ep, "gw1", childTTL)
	gw2 := join(t, ep, "gw2", childTTL)
	p1, _ := pool.FromPrefix("rw", netip.MustParsePrefix("10.9.0.0/30")) // 2 addresses
	p2, _ := pool.FromPrefix("rw", netip.MustParsePrefix("10.9.0.0/30"))
	p1.SetArbiter(old.Leases())
	p2.SetArbiter(gw2.Leases())
	a, _, err := p1.Acquire("alice", netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	old.session.Orphan() // cut off: the lease expires within its TTL
	deadline := time.Now().Add(childTTL + 3*time.Second)
	for {
		if h := gw2.Leases().Holders("rw")[a]; h.Identity == "alice" && h.OnlineOn == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("alice's address still online after gw1's session expired")
		}
		time.Sleep(20 * time.Millisecond)
	}
	gw1 := join(t, ep, "gw1", childTTL)
	if err := p1.SetArbiter(gw1.Leases()); err != nil {
		t.Fatal(err)
	}
	// gw2 fills its pool: it may have the other address, never alice's.
	for i := range 3 {
		if b, _, err := p2.Acquire(fmt.Sprintf("u%d", i), netip.Addr{}); err == nil && b == a {
			t.Fatalf("gw2 gave alice's online address %v to u%d", a, i)
		}
	}
	if h := gw1.Leases().Holders("rw")[a]; h.Identity != "alice" || h.OnlineOn != "gw1" {
		// The watch may lag behind our own claim's revision: read again.
		time.Sleep(200 * time.Millisecond)
		if h := gw1.Leases().Holders("rw")[a]; h.Identity != "alice" || h.OnlineOn != "gw1" {
			t.Fatalf("alice's address after the new session: %+v", h)
		}
	}
}

// BenchmarkFleetAcquire is the cost of a fleet lease: an Acquire of a
// never-used address (one etcd transaction) and its Release (one more),
// against etcd on loopback.
func BenchmarkFleetAcquire(b *testing.B) {
	ep := fleettest.Start(b)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	m, err := Join(ctx, Config{Endpoints: []string{ep}, Member: "gw1", Key: testKey})
	cancel()
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	p, err := pool.FromPrefix("rw", netip.MustParsePrefix("10.64.0.0/10"))
	if err != nil {
		b.Fatal(err)
	}
	p.SetArbiter(m.Leases())
	b.ResetTimer()
	for i := range b.N {
		id := fmt.Sprintf("user%d", i)
		a, _, err := p.Acquire(id, netip.Addr{})
		if err != nil {
			b.Fatal(err)
		}
		p.Release(id, a)
	}
}
