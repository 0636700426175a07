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

func mustPrefix(t *testing.T, s string) *Pool {
	t.Helper()
	p, err := FromPrefix("p", netip.MustParsePrefix(s))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func acquire(t *testing.T, p *Pool, id string) netip.Addr {
	t.Helper()
	a, _, err := p.Acquire(id, netip.Addr{})
	if err != nil {
		t.Fatalf("Acquire(%s): %v", id, err)
	}
	return a
}

func TestPrefixBounds(t *testing.T) {
	for _, tc := range []struct {
		prefix, first, last string
		size                uint64
	}{
		{"10.3.200.0/24", "10.3.200.1", "10.3.200.254", 254},
		{"10.3.200.100/24", "10.3.200.100", "10.3.200.254", 155},
		{"10.0.0.0/30", "10.0.0.1", "10.0.0.2", 2},
		{"10.0.0.0/31", "10.0.0.0", "10.0.0.1", 2},
		{"10.0.0.7/32", "10.0.0.7", "10.0.0.7", 1},
		{"fd00::/120", "fd00::1", "fd00::fe", 254},
		{"fd00::/64", "fd00::1", "fd00::ffff:ffff:ffff:fffe", maxSize},
	} {
		p := mustPrefix(t, tc.prefix)
		first, last := p.Range()
		size, _, _ := p.Stats()
		if first.String() != tc.first || size != tc.size {
			t.Errorf("%s: first %v size %d, want %s %d", tc.prefix, first, size, tc.first, tc.size)
		}
		if size < maxSize && last.String() != tc.last {
			t.Errorf("%s: last %v, want %s", tc.prefix, last, tc.last)
		}
		if !p.Contains(netip.MustParseAddr(tc.first)) || p.Contains(first.Prev()) {
			t.Errorf("%s: Contains wrong at the start", tc.prefix)
		}
	}
}

func TestRangeErrors(t *testing.T) {
	for _, tc := range [][2]string{{"10.0.0.9", "10.0.0.1"}, {"10.0.0.1", "fd00::1"}} {
		_, err := FromRange("p", netip.MustParseAddr(tc[0]), netip.MustParseAddr(tc[1]))
		if err == nil {
			t.Errorf("%s-%s: no error", tc[0], tc[1])
		}
	}
	p, err := FromRange("p", netip.MustParseAddr("::ffff:10.0.0.1"), netip.MustParseAddr("10.0.0.3"))
	if err != nil || !p.Is4() {
		t.Fatalf("mapped IPv4 range: %v", err)
	}
	if size, _, _ := p.Stats(); size != 3 {
		t.Errorf("size %d, want 3", size)
	}
}

func TestSameUserSameAddress(t *testing.T) {
	p := mustPrefix(t, "10.3.200.0/24")
	alice := acquire(t, p, "alice")
	bob := acquire(t, p, "bob")
	if alice == bob {
		t.Fatal("two users got one address")
	}
	if !p.Release("alice", alice) {
		t.Fatal("Release of alice's lease failed")
	}
	if p.Release("alice", alice) {
		t.Fatal("a second Release of an offline lease succeeded")
	}
	if p.Release("bob", alice) {
		t.Fatal("bob released alice's lease")
	}
	carol := acquire(t, p, "carol")
	if carol == alice {
		t.Fatal("a new user got an offline lease while unused addresses were left")
	}
	a, reused, err := p.Acquire("alice", netip.Addr{})
	if err != nil || a != alice || !reused {
		t.Fatalf("alice came back with %v reused=%v err=%v, want %v", a, reused, err, alice)
	}
	if size, online, offline := p.Stats(); size != 254 || online != 3 || offline != 0 {
		t.Fatalf("stats %d/%d/%d", size, online, offline)
	}
}

func TestRequestedAddress(t *testing.T) {
	p := mustPrefix(t, "10.0.0.0/29")
	a := acquire(t, p, "alice")
	b := acquire(t, p, "alice") // a second device of alice
	if a == b {
		t.Fatal("one address for two online SAs of one user")
	}
	// A reauthentication asks for the address it has: the same lease,
	// used twice until the old IKE SA goes.
	got, reused, err := p.Acquire("alice", b)
	if err != nil || got != b || !reused {
		t.Fatalf("requested own address: got %v %v %v", got, reused, err)
	}
	p.Release("alice", b)
	if _, online, _ := p.Stats(); online != 2 {
		t.Fatalf("online %d after one of two uses ended, want 2", online)
	}
	// Asking for another user's address gets an address of one's own.
	got, _, err = p.Acquire("mallory", a)
	if err != nil || got == a || got == b {
		t.Fatalf("mallory asked for alice's %v and got %v (%v)", a, got, err)
	}
}

func TestExhaustedAndReassigned(t *testing.T) {
	p, err := FromRange("two", netip.MustParseAddr("10.3.200.1"), netip.MustParseAddr("10.3.200.2"))
	if err != nil {
		t.Fatal(err)
	}
	a := acquire(t, p, "alice")
	acquire(t, p, "bob")
	if _, _, err := p.Acquire("carol", netip.Addr{}); !errors.Is(err, ErrExhausted) || !strings.Contains(err.Error(), `pool "two"`) {
		t.Fatalf("third client: %v, want ErrExhausted naming the pool", err)
	}
	p.Release("alice", a)
	got := acquire(t, p, "carol")
	if got != a {
		t.Fatalf("carol got %v, want alice's offline %v", got, a)
	}
	for _, l := range p.Leases() {
		if l.Addr == a && (l.Identity != "carol" || !l.Online) {
			t.Fatalf("lease %+v, want carol online", l)
		}
	}
	// alice lost her lease: she is refused now, not given carol's.
	if _, _, err := p.Acquire("alice", a); !errors.Is(err, ErrExhausted) {
		t.Fatalf("alice after reassignment: %v", err)
	}
}

func TestReassignOldestFirst(t *testing.T) {
	p := mustPrefix(t, "10.0.0.0/29") // 6 addresses
	addrs := map[string]netip.Addr{}
	for i := range 6 {
		id := fmt.Sprint("u", i)
		addrs[id] = acquire(t, p, id)
	}
	for _, id := range []string{"u3", "u1", "u5"} {
		p.Release(id, addrs[id])
	}
	// u1 comes back: its own lease, and it leaves the offline queue.
	if a := acquire(t, p, "u1"); a != addrs["u1"] {
		t.Fatalf("u1 got %v", a)
	}
	if a := acquire(t, p, "n1"); a != addrs["u3"] {
		t.Fatalf("n1 got %v, want u3's %v (released first)", a, addrs["u3"])
	}
	if a := acquire(t, p, "n2"); a != addrs["u5"] {
		t.Fatalf("n2 got %v, want u5's %v", a, addrs["u5"])
	}
}

func TestRestore(t *testing.T) {
	p := mustPrefix(t, "10.0.0.0/28")
	a := acquire(t, p, "alice")
	b := acquire(t, p, "bob")
	c := acquire(t, p, "carol")
	p.Release("bob", b)
	saved := p.Leases()

	q := mustPrefix(t, "10.0.0.0/28")
	// A lease outside the pool and a duplicate are refused; the rest is
	// taken.
	bad := append(append([]Lease(nil), saved...), Lease{Addr: netip.MustParseAddr("10.9.9.9"), Identity: "x"}, saved[0])
	err := q.Restore(bad)
	if err == nil || !strings.Contains(err.Error(), "10.9.9.9") || !strings.Contains(err.Error(), "twice") {
		t.Fatalf("Restore: %v", err)
	}
	if _, online, offline := q.Stats(); online != 0 || offline != 3 {
		t.Fatalf("restored %d online %d offline, want 0/3", online, offline)
	}
	// A new client gets an address nobody held, not a restored one.
	d := acquire(t, q, "dave")
	if d == a || d == b || d == c {
		t.Fatalf("dave got restored %v", d)
	}
	// The taken-back SAs and returning users get theirs.
	for id, want := range map[string]netip.Addr{"alice": a, "bob": b, "carol": c} {
		if got, reused, _ := q.Acquire(id, want); got != want || !reused {
			t.Fatalf("%s got %v, want %v", id, got, want)
		}
	}
	if err := q.Restore(saved); err == nil {
		t.Fatal("Restore into a pool with leases succeeded")
	}
}

func TestRestoreFreesGaps(t *testing.T) {
	p, _ := FromRange("p", netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.4"))
	// Saved: only .3 (the others were reassigned and then the pool shrank
	// and grew, or their users were removed from the file by hand).
	if err := p.Restore([]Lease{{Addr: netip.MustParseAddr("10.0.0.3"), Identity: "x"}}); err != nil {
		t.Fatal(err)
	}
	var got []string
	for i := range 3 {
		got = append(got, acquire(t, p, fmt.Sprint("n", i)).String())
	}
	if strings.Join(got, " ") != "10.0.0.1 10.0.0.2 10.0.0.4" {
		t.Fatalf("after restore new clients got %v", got)
	}
	if a := acquire(t, p, "n3"); a.String() != "10.0.0.3" {
		t.Fatalf("last client got %v, want x's offline 10.0.0.3", a)
	}
}

// TestRandomOperations checks the pool's invariants under random
// acquire/release sequences: no address is online for two identities,
// the counts add up, and Acquire fails only when every address is
// online.
func TestRandomOperations(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	p, _ := FromRange("p", netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.8"))
	uses := map[netip.Addr]map[string]int{}
	for range 20000 {
		id := fmt.Sprint("u", r.IntN(12))
		if r.IntN(2) == 0 {
			a, _, err := p.Acquire(id, netip.Addr{})
			total := 0
			for _, m := range uses {
				for _, n := range m {
					if n > 0 {
						total++
					}
				}
			}
			if err != nil {
				if total != 8 {
					t.Fatalf("exhausted with %d addresses online", total)
				}
				continue
			}
			if uses[a] == nil {
				uses[a] = map[string]int{}
			}
			for other, n := range uses[a] {
				if other != id && n > 0 {
					t.Fatalf("%v online for %s and %s", a, other, id)
				}
			}
			uses[a][id]++
		} else {
			for a, m := range uses {
				if m[id] > 0 {
					if !p.Release(id, a) {
						t.Fatalf("Release(%s, %v) failed", id, a)
					}
					m[id]--
					break
				}
			}
		}
		online := 0
		for _, m := range uses {
			for _, n := range m {
				if n > 0 {
					online++
				}
			}
		}
		if _, got, _ := p.Stats(); got != online {
			t.Fatalf("online %d, want %d", got, online)
		}
	}
}

func TestConcurrent(t *testing.T) {
	p := mustPrefix(t, "10.0.0.0/22")
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 200 {
				id := fmt.Sprint(w, "-", i%50)
				a, _, err := p.Acquire(id, netip.Addr{})
				if err != nil {
					t.Error(err)
					return
				}
				p.Leases()
				p.Release(id, a)
			}
		})
	}
	wg.Wait()
	if _, online, offline := p.Stats(); online != 0 || offline != 400 {
		t.Fatalf("%d online %d offline, want 0/400", online, offline)
	}
}

// FuzzRestore feeds saved leases (a state file anyone could have edited)
// and checks that the pool never hands out one address twice afterwards.
func FuzzRestore(f *testing.F) {
	f.Add([]byte{1, 2, 2, 3, 250, 0}, uint8(5))
	f.Fuzz(func(t *testing.T, offs []byte, clients uint8) {
		p, _ := FromRange("p", netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.16"))
		var saved []Lease
		for i, o := range offs {
			saved = append(saved, Lease{Addr: netip.AddrFrom4([4]byte{10, 0, 0, o}), Identity: fmt.Sprint("s", i%4)})
		}
		_ = p.Restore(saved)
		seen := map[netip.Addr]string{}
		for i := range int(clients) {
			id := fmt.Sprint("c", i)
			a, _, err := p.Acquire(id, netip.Addr{})
			if err != nil {
				if !errors.Is(err, ErrExhausted) {
					t.Fatal(err)
				}
				continue
			}
			if !p.Contains(a) {
				t.Fatalf("%v outside the pool", a)
			}
			if prev, ok := seen[a]; ok {
				t.Fatalf("%v handed to %s and %s", a, prev, id)
			}
			seen[a] = id
		}
	})
}

// TestAcquireAddr: an address chosen elsewhere is leased exactly, kept
// from other clients while online, taken over from an offline lease, and
// refused outside the pool.
func TestAcquireAddr(t *testing.T) {
	p := mustPrefix(t, "10.0.0.0/29") // .1 to .6
	fixed := netip.MustParseAddr("10.0.0.3")
	if err := p.AcquireAddr("alice", fixed); err != nil {
		t.Fatal(err)
	}
	// Nobody else gets it while alice is online, however many ask.
	for i := range 5 {
		if a := acquire(t, p, fmt.Sprint("u", i)); a == fixed {
			t.Fatalf("pool handed %v, leased to alice, to u%d", a, i)
		}
	}
	if _, _, err := p.Acquire("u5", netip.Addr{}); !errors.Is(err, ErrExhausted) {
		t.Fatalf("6 addresses, 6 online: %v, want ErrExhausted", err)
	}
	if err := p.AcquireAddr("bob", fixed); !errors.Is(err, ErrInUse) {
		t.Fatalf("AcquireAddr of alice's online address for bob: %v, want ErrInUse", err)
	}
	// alice reconnects without a Framed-IP: her lease is the same address.
	if !p.Release("alice", fixed) {
		t.Fatal("Release(alice) found no lease")
	}
	if a := acquire(t, p, "alice"); a != fixed {
		t.Fatalf("alice came back to %v, want %v", a, fixed)
	}
	p.Release("alice", fixed)
	// Offline, the RADIUS server may give it to bob.
	if err := p.AcquireAddr("bob", fixed); err != nil {
		t.Fatal(err)
	}
	for _, l := range p.Leases() {
		if l.Addr == fixed && (l.Identity != "bob" || !l.Online) {
			t.Fatalf("lease of %v: %+v, want bob online", fixed, l)
		}
	}
	if err := p.AcquireAddr("bob", netip.MustParseAddr("10.0.0.7")); err == nil {
		t.Fatal("AcquireAddr outside the pool accepted")
	}
	if _, online, offline := p.Stats(); online != 6 || offline != 0 {
		t.Fatalf("stats online %d offline %d, want 6 and 0", online, offline)
	}
}

func TestBase(t *testing.T) {
	for _, tc := range []struct {
		prefix, base, first string
	}{
		{"10.9.0.0/24", "10.9.0.0", "10.9.0.1"},
		{"10.9.0.100/24", "10.9.0.100", "10.9.0.100"},
		{"10.9.0.7/32", "10.9.0.7", "10.9.0.7"},
	} {
		p, err := FromPrefix("rw", netip.MustParsePrefix(tc.prefix))
		if err != nil {
			t.Fatal(err)
		}
		if first, _ := p.Range(); p.Base().String() != tc.base || first.String() != tc.first {
			t.Errorf("%s: base %v first %v, want %s %s", tc.prefix, p.Base(), first, tc.base, tc.first)
		}
	}
	r, _ := FromRange("rw", netip.MustParseAddr("10.9.0.10"), netip.MustParseAddr("10.9.0.20"))
	if r.Base().String() != "10.9.0.10" {
		t.Errorf("range: base %v", r.Base())
	}
}

// TrackChanges notes the addresses whose identity changed: a new lease,
// one taken over by another identity; not a lease going online or
// offline again for the same identity.
func TestTrackChanges(t *testing.T) {
	p, err := FromPrefix("p", netip.MustParsePrefix("10.3.0.0/30"))
	if err != nil {
		t.Fatal(err)
	}
	a, _, _ := p.Acquire("alice", netip.Addr{})
	if ch := p.TakeChanges(); ch != nil {
		t.Fatalf("changes noted before TrackChanges: %v", ch)
	}
	p.TrackChanges()
	p.Release("alice", a)
	p.Acquire("alice", netip.Addr{})
	if ch := p.TakeChanges(); len(ch) != 0 {
		t.Fatalf("alice's own lease again noted as a change: %v", ch)
	}
	b, _, _ := p.Acquire("bob", netip.Addr{})
	p.Release("alice", a)
	// The pool (a /30: two addresses) is full: carol takes alice's.
	c, _, err := p.Acquire("carol", netip.Addr{})
	if err != nil || c != a {
		t.Fatalf("carol got %v, %v; want alice's %v", c, err, a)
	}
	ch := p.TakeChanges()
	want := []Lease{{Addr: a, Identity: "carol", Online: true}, {Addr: b, Identity: "bob", Online: true}}
	if len(ch) != 2 || ch[0] != want[0] || ch[1] != want[1] {
		t.Fatalf("changes %v, want %v", ch, want)
	}
	if ch := p.TakeChanges(); len(ch) != 0 {
		t.Fatalf("changes taken twice: %v", ch)
	}
	p.Unsaved(want[:1])
	if ch := p.TakeChanges(); len(ch) != 1 || ch[0] != want[0] {
		t.Fatalf("unsaved change not noted again: %v", ch)
	}
}
