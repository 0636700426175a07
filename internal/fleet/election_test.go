package fleet

import (
	"context"
	"errors"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

const childTTL = 2 * time.Second

// holderLog polls Holder and keeps what it saw, with the time each Get
// was sent.
type holderLog struct {
	mu   sync.Mutex
	seen []holderSeen
	stop chan struct{}
	done chan struct{}
}

type holderSeen struct {
	sent   time.Time
	holder string
}

func watchHolder(m *Member, shared string) *holderLog {
	h := &holderLog{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(h.done)
		for {
			select {
			case <-h.stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			sent := time.Now()
			who, err := m.Holder(ctx, shared)
			cancel()
			if err == nil {
				h.mu.Lock()
				h.seen = append(h.seen, holderSeen{sent, who})
				h.mu.Unlock()
			}
		}
	}()
	return h
}

func (h *holderLog) end() []holderSeen {
	close(h.stop)
	<-h.done
	return h.seen
}

func TestFleetElectionHandover(t *testing.T) {
	ep := startEtcd(t)
	const shared = "192.0.2.1"
	gw1 := startChild(t, ep, "gw1", shared)
	gw1.expect("LEADER", 15*time.Second)
	gw2 := join(t, ep, "gw2", childTTL)
	gw3 := join(t, ep, "gw3", childTTL)
	if who, err := gw2.Holder(ctxT(t, 5*time.Second), shared); err != nil || who != "gw1" {
		t.Fatalf("holder %q (%v), want gw1", who, err)
	}
	log := watchHolder(gw3, shared)

	type win struct {
		l  *Leadership
		at time.Time
	}
	wins := make(chan win, 2)
	ctx := ctxT(t, 60*time.Second)
	var leaders sync.Map // members whose Campaign returned and who have not resigned
	for _, m := range []*Member{gw2, gw3} {
		go func() {
			l, err := m.Campaign(ctx, shared)
			if err != nil {
				t.Error(err)
				wins <- win{}
				return
			}
			at := time.Now()
			leaders.Store(m.Name(), true)
			n := 0
			leaders.Range(func(any, any) bool { n++; return true })
			if n > 1 {
				t.Errorf("%s leads while another member leads too", m.Name())
			}
			wins <- win{l, at}
		}()
	}
	// Both candidates wait while gw1 lives.
	select {
	case w := <-wins:
		t.Fatalf("a member won while gw1 leads: %+v", w)
	case <-time.After(childTTL + time.Second):
	}
	killed := time.Now()
	if err := gw1.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var first win
	select {
	case first = <-wins:
	case <-time.After(childTTL + 5*time.Second):
		t.Fatalf("no member took over within %v of gw1's death", childTTL+5*time.Second)
	}
	if first.l == nil {
		t.FailNow()
	}
	takeover := first.at.Sub(killed)
	winner := first.l.m.Name()
	t.Logf("%s took over %v after gw1 was killed (lease TTL %v)", winner, takeover.Round(time.Millisecond), childTTL)
	if takeover > childTTL+3*time.Second {
		t.Errorf("takeover after %v: longer than gw1's lease TTL %v allows", takeover, childTTL)
	}
	// Only one of the two candidates leads; the other still waits.
	select {
	case w := <-wins:
		t.Fatalf("both candidates lead: %s and %s", winner, w.l.m.Name())
	case <-time.After(500 * time.Millisecond):
	}
	if who, _ := gw2.Holder(ctx, shared); who != winner {
		t.Fatalf("holder %q, want %s", who, winner)
	}
	if err := first.l.Save(ctx, map[string][]byte{"owner": []byte(winner)}, nil); err != nil {
		t.Fatalf("the new leader cannot save: %v", err)
	}
	// A resignation hands over at once to the one waiting.
	leaders.Delete(winner)
	resigned := time.Now()
	if err := first.l.Resign(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-first.l.Lost():
	default:
		t.Error("Lost not closed after Resign")
	}
	if err := first.l.Save(ctx, map[string][]byte{"owner": []byte(winner)}, nil); !errors.Is(err, ErrStale) {
		t.Errorf("Save after Resign: %v, want ErrStale", err)
	}
	var second win
	select {
	case second = <-wins:
	case <-time.After(5 * time.Second):
		t.Fatal("the other candidate did not take over after the resignation")
	}
	if second.l == nil {
		t.FailNow()
	}
	t.Logf("%s took over %v after %s resigned", second.l.m.Name(), second.at.Sub(resigned).Round(time.Millisecond), winner)
	time.Sleep(100 * time.Millisecond)
	seen := log.end()

	// Holder never named gw1 in a Get sent after the winner's Campaign
	// returned: the two never held at once.
	// And gw1 held on after its death, until its lease expired: the
	// winner waited for that (a poll sent after the kill named gw1).
	var sawGw1, sawWinner, deadHeld bool
	for _, s := range seen {
		switch {
		case s.holder == "gw1":
			sawGw1 = true
			deadHeld = deadHeld || s.sent.After(killed)
			if s.sent.After(first.at) {
				t.Errorf("gw1 still held at %v, after %s won at %v", s.sent.Format("15:04:05.000"), winner, first.at.Format("15:04:05.000"))
			}
		case s.holder == winner:
			sawWinner = true
		}
	}
	if !deadHeld {
		t.Errorf("no poll after gw1's death saw it still hold: was its lease waited for?")
	}
	if !sawGw1 || !sawWinner || len(seen) < 10 {
		t.Errorf("the observer saw too little (%d observations, gw1 %v, %s %v)", len(seen), sawGw1, winner, sawWinner)
	}
	second.l.Resign(ctx)
}

func TestFleetStaleMemberRefused(t *testing.T) {
	ep := startEtcd(t)
	const shared = "wan"
	gw1 := startChild(t, ep, "gw1", shared)
	gw1.expect("LEADER", 15*time.Second)
	gw1.say("SAVE")
	gw1.expect("SAVE ok", 10*time.Second)

	gw2 := join(t, ep, "gw2", childTTL)
	ctx := ctxT(t, 60*time.Second)
	// gw1 is paused: its process lives, its keepalives stop.
	paused := time.Now()
	if err := gw1.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	l2, err := gw2.Campaign(ctx, shared)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("gw2 won %v after gw1 was paused", time.Since(paused).Round(time.Millisecond))
	if err := l2.Save(ctx, map[string][]byte{"owner": []byte("gw2")}, nil); err != nil {
		t.Fatal(err)
	}
	// gw1 wakes with its old view and tries to write: refused.
	if err := gw1.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	gw1.say("SAVE")
	gw1.expect("SAVE stale", 10*time.Second)
	gw1.say("LOST")
	gw1.expect("LOST yes", 10*time.Second)
	recs, err := gw2.Load(ctx, shared)
	if err != nil {
		t.Fatal(err)
	}
	if string(recs["owner"]) != "gw2" {
		t.Fatalf("the record says %q after gw1's stale write, want gw2", recs["owner"])
	}
	if who, _ := gw2.Holder(ctx, shared); who != "gw2" {
		t.Fatalf("holder %q, want gw2", who)
	}
	select {
	case <-l2.Lost():
		t.Fatal("gw2 lost its leadership")
	default:
	}
}

// An in-process member whose keepalives stop (the session orphaned: its
// lease is not revoked, as with a gateway cut off from etcd): Lost closes
// as soon as the session ends, a second member wins once the lease
// expired, and the old leader's writes are refused by the transaction
// itself, not only by its own bookkeeping.
func TestFleetStaleMemberLostWithoutPause(t *testing.T) {
	ep := startEtcd(t)
	ctx := ctxT(t, 60*time.Second)
	gw1 := join(t, ep, "gw1", childTTL)
	l1, err := gw1.Campaign(ctx, "wan")
	if err != nil {
		t.Fatal(err)
	}
	gw2 := join(t, ep, "gw2", childTTL)
	won := make(chan *Leadership, 1)
	go func() {
		l, err := gw2.Campaign(ctx, "wan")
		if err != nil {
			t.Error(err)
		}
		won <- l
	}()
	// Cut gw1's keepalives: the session's context ends, the lease is not
	// revoked.
	gw1.session.Orphan()
	select {
	case <-l1.Lost():
	case <-time.After(5 * time.Second):
		t.Fatal("Lost not closed after the session stopped")
	}
	l2 := <-won
	if l2 == nil {
		t.FailNow()
	}
	err = l1.Save(ctx, map[string][]byte{"x": []byte("1")}, nil)
	if !errors.Is(err, ErrStale) {
		t.Fatalf("stale Save: %v", err)
	}
	// Bypass the Lost shortcut: the transaction itself is refused.
	if err := l1.save(ctx, map[string][]byte{"x": []byte("1")}, nil); !errors.Is(err, ErrStale) {
		t.Fatalf("stale Save (transaction): %v", err)
	}
	raw := rawClient(t, ep)
	if r, err := raw.Get(ctx, "/xdpsec/sa/", clientv3.WithPrefix(), clientv3.WithCountOnly()); err != nil || r.Count != 0 {
		t.Fatalf("a stale write landed: %d records (%v)", r.Count, err)
	}
	if !strings.Contains(ErrStale.Error(), "stale") {
		t.Fatal(ErrStale)
	}
}

// The election key deleted under a live leader (by hand, with etcdctl):
// Lost closes, Save is refused, and the member may campaign again.
func TestFleetElectionKeyDeleted(t *testing.T) {
	ep := startEtcd(t)
	ctx := ctxT(t, 30*time.Second)
	gw1 := join(t, ep, "gw1", 0)
	l, err := gw1.Campaign(ctx, "wan")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := gw1.Campaign(ctx, "wan"); err == nil {
		t.Fatal("a second campaign for a shared address it leads")
	}
	raw := rawClient(t, ep)
	if _, err := raw.Delete(ctx, "/xdpsec/elect/wan/", clientv3.WithPrefix()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-l.Lost():
	case <-time.After(5 * time.Second):
		t.Fatal("Lost not closed when the election key went")
	}
	if err := l.Save(ctx, map[string][]byte{"x": nil}, nil); !errors.Is(err, ErrStale) {
		t.Fatalf("Save after the key went: %v", err)
	}
	l2, err := gw1.Campaign(ctx, "wan")
	if err != nil {
		t.Fatalf("campaign again: %v", err)
	}
	if err := l2.Save(ctx, map[string][]byte{"x": []byte("1")}, nil); err != nil {
		t.Fatal(err)
	}
}
