package pool

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"sync"
	"testing"
)

// fakeFleet is what the etcd arbiter keeps, in memory: who holds each
// address, where it is online, and each identity's address.
type fakeFleet struct {
	mu     sync.Mutex
	holder map[netip.Addr]string
	online map[netip.Addr]string // gateway
	byID   map[string]netip.Addr
	fail   error
	claims int
}

func newFakeFleet() *fakeFleet {
	return &fakeFleet{holder: map[netip.Addr]string{}, online: map[netip.Addr]string{}, byID: map[string]netip.Addr{}}
}

// fakeArbiter is one gateway's view of a fakeFleet.
type fakeArbiter struct {
	f       *fakeFleet
	gateway string
}

func (a fakeArbiter) Claim(pool string, addr netip.Addr, id, prev string) (bool, string, error) {
	f := a.f
	f.mu.Lock()
	defer f.mu.Unlock()
	f.claims++
	if f.fail != nil {
		return false, "", f.fail
	}
	h, on := f.holder[addr], f.online[addr]
	free := on == "" || on == a.gateway
	if free && (h == "" || h == id || (prev != "" && h == prev)) {
		f.holder[addr], f.online[addr], f.byID[id] = id, a.gateway, addr
		return true, "", nil
	}
	return false, h, nil
}

func (a fakeArbiter) Known(pool, id string) (netip.Addr, bool) {
	a.f.mu.Lock()
	defer a.f.mu.Unlock()
	addr, ok := a.f.byID[id]
	return addr, ok && a.f.holder[addr] == id
}

func (a fakeArbiter) Released(pool string, addr netip.Addr, id string) {
	a.f.mu.Lock()
	defer a.f.mu.Unlock()
	if a.f.online[addr] == a.gateway && a.f.holder[addr] == id {
		delete(a.f.online, addr)
	}
}

// fleetPools makes n pools of one name, one per gateway, on one fake fleet.
func fleetPools(t *testing.T, n int, prefix string) ([]*Pool, *fakeFleet) {
	t.Helper()
	f := newFakeFleet()
	var pools []*Pool
	for i := range n {
		p, err := FromPrefix("rw", netip.MustParsePrefix(prefix))
		if err != nil {
			t.Fatal(err)
		}
		p.SetArbiter(fakeArbiter{f, fmt.Sprintf("gw%d", i+1)})
		pools = append(pools, p)
	}
	return pools, f
}

func TestArbiterReturningIdentityKeepsAddress(t *testing.T) {
	pools, _ := fleetPools(t, 2, "10.3.0.0/24")
	a, b := pools[0], pools[1]
	alice := acquire(t, a, "alice")
	bob := acquire(t, b, "bob")
	if alice == bob {
		t.Fatalf("alice and bob both got %v on two gateways", alice)
	}
	a.Release("alice", alice)
	got, reused, err := b.Acquire("alice", netip.Addr{})
	if err != nil || got != alice || !reused {
		t.Fatalf("alice on the other gateway got %v reused=%v err=%v, want %v", got, reused, err, alice)
	}
	// Back on the first gateway while online on the second (a second
	// device): not the same address.
	if other := acquire(t, a, "alice"); other == alice {
		t.Fatalf("alice's address %v handed out on two gateways at once", alice)
	}
}

func TestArbiterRefusedAddressRecordedForHolder(t *testing.T) {
	pools, _ := fleetPools(t, 2, "10.0.0.0/29")
	a, b := pools[0], pools[1]
	bob := acquire(t, a, "bob")
	carol := acquire(t, b, "carol")
	if carol == bob {
		t.Fatal("carol got bob's address")
	}
	var found bool
	for _, l := range b.Leases() {
		if l.Addr == bob {
			found = true
			if l.Identity != "bob" || l.Online {
				t.Fatalf("the refused address is recorded as %+v, want bob's, offline", l)
			}
		}
	}
	if !found {
		t.Fatalf("the refused address %v is not recorded: %+v", bob, b.Leases())
	}
}

func TestArbiterTakesBackOnlyWhatIsOfflineEverywhere(t *testing.T) {
	pools, _ := fleetPools(t, 2, "10.0.0.0/30") // .1 and .2
	a, b := pools[0], pools[1]
	x := acquire(t, a, "x")
	a.Release("x", x)
	if got := acquire(t, b, "x"); got != x {
		t.Fatalf("x came back on b with %v, want %v", got, x)
	}
	y := acquire(t, a, "y")
	if y == x {
		t.Fatal("y got x's address while x is online on b")
	}
	// a's only offline lease is x's, online on b: exhausted.
	if got, _, err := a.Acquire("z", netip.Addr{}); !errors.Is(err, ErrExhausted) {
		t.Fatalf("z got %v (%v), want exhaustion: x's address is online on b", got, err)
	}
	b.Release("x", x)
	got, reused, err := a.Acquire("z", netip.Addr{})
	if err != nil || got != x || reused {
		t.Fatalf("z got %v reused=%v err=%v, want x's offline %v", got, reused, err, x)
	}
	// x comes back on b: its address is z's now; b learns it and gives x
	// nothing (the pool is full).
	if got, _, err := b.Acquire("x", netip.Addr{}); !errors.Is(err, ErrExhausted) {
		t.Fatalf("x got %v (%v) on b, want exhaustion", got, err)
	}
}

func TestArbiterErrorFailsAcquire(t *testing.T) {
	pools, f := fleetPools(t, 1, "10.0.0.0/29")
	p := pools[0]
	f.fail = errors.New("etcd unreachable")
	if _, _, err := p.Acquire("alice", netip.Addr{}); err == nil || !errors.Is(err, f.fail) {
		t.Fatalf("Acquire with a failing arbiter: %v", err)
	}
	if err := p.AcquireAddr("alice", netip.MustParseAddr("10.0.0.3")); err == nil {
		t.Fatal("AcquireAddr with a failing arbiter succeeded")
	}
	if _, online, offline := p.Stats(); online != 0 || offline != 0 {
		t.Fatalf("a failed Acquire left leases: %d online, %d offline", online, offline)
	}
	f.fail = nil
	acquire(t, p, "alice")
}

func TestArbiterAcquireAddrRefusedInFleet(t *testing.T) {
	pools, _ := fleetPools(t, 2, "10.0.0.0/29")
	a := acquire(t, pools[0], "alice")
	if err := pools[1].AcquireAddr("bob", a); !errors.Is(err, ErrInUse) {
		t.Fatalf("bob took alice's fleet address on another gateway: %v", err)
	}
}

// Many identities on three gateways at once, a pool much smaller than
// them: an address is never online for two identities, nor on two
// gateways.
func TestArbiterNoCollisionConcurrent(t *testing.T) {
	pools, f := fleetPools(t, 3, "10.0.0.0/28") // 14 addresses
	var mu sync.Mutex
	online := map[netip.Addr]string{} // address -> "gateway identity"
	type held struct {
		gw   int
		id   string
		addr netip.Addr
	}
	var mine []held // leased now, all gateways
	var wg sync.WaitGroup
	var exhausted, leased int
	for w := range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 1))
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
			for range 400 {
				// More acquisitions than releases: the pool fills up
				// and new identities take offline leases back.
				mu.Lock()
				n := len(mine)
				mu.Unlock()
				if n > 0 && r.IntN(5) < 2 {
					release(r.IntN(n))
					continue
				}
				gw := r.IntN(3)
				id := fmt.Sprintf("user%d", r.IntN(60))
				a, _, err := pools[gw].Acquire(id, netip.Addr{})
				if errors.Is(err, ErrExhausted) {
					mu.Lock()
					exhausted++
					mu.Unlock()
					continue
				}
				if err != nil {
					t.Error(err)
					return
				}
				who := fmt.Sprintf("gw%d %s", gw+1, id)
				mu.Lock()
				if prev, ok := online[a]; ok {
					mu.Unlock()
					t.Errorf("%v leased to %s while online for %s", a, who, prev)
					return
				}
				online[a] = who
				leased++
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
	if leased == 0 || exhausted == 0 {
		t.Fatalf("leased %d, exhausted %d: the test did not reach reuse and exhaustion", leased, exhausted)
	}
	t.Logf("%d leases, %d exhausted, %d claims", leased, exhausted, f.claims)
}

// Leases online before the arbiter is set (taken back at a restart, or a
// new etcd session) are claimed when it is set; a conflict is an error
// naming the address.
func TestArbiterSetClaimsOnlineLeases(t *testing.T) {
	f := newFakeFleet()
	p := mustPrefix(t, "10.0.0.0/29")
	a := acquire(t, p, "alice")
	b := acquire(t, p, "bob")
	c := acquire(t, p, "carol")
	p.Release("carol", c) // offline: not claimed
	// bob's address went to dave on another gateway meanwhile.
	if ok, _, _ := (fakeArbiter{f, "gw2"}).Claim("rw", b, "dave", ""); !ok {
		t.Fatal("setup claim refused")
	}
	err := p.SetArbiter(fakeArbiter{f, "gw1"})
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf(`%v online here for "bob" is "dave"'s in the fleet`, b)) {
		t.Fatalf("SetArbiter: %v", err)
	}
	if f.holder[a] != "alice" || f.online[a] != "gw1" {
		t.Fatalf("alice's online lease not claimed: %q on %q", f.holder[a], f.online[a])
	}
	if _, ok := f.holder[c]; ok {
		t.Fatal("an offline lease was claimed")
	}
	if err := p.SetArbiter(fakeArbiter{f, "gw1"}); err == nil {
		t.Fatal("second SetArbiter: bob's conflict not reported again")
	}
	if err := p.SetArbiter(nil); err != nil {
		t.Fatal(err)
	}
}
