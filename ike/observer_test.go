package ike_test

import (
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/xdpsec/xdpsec/ike"
)

// eventLog records an Observer's events as short strings.
type eventLog struct {
	mu     sync.Mutex
	events []string
}

func (l *eventLog) add(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, fmt.Sprintf(format, args...))
}

func (l *eventLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.events
	l.events = nil
	return e
}

func (l *eventLog) IKEUpDown(sa ike.IKESAInfo, up bool) {
	l.add("ike %s[%d] up=%v %v children=%d", sa.Name, sa.ID, up, sa.State, len(sa.Children))
}
func (l *eventLog) IKERekey(old, new ike.IKESAInfo) {
	l.add("ike-rekey %s[%d] -> [%d] %v", old.Name, old.ID, new.ID, new.State)
}
func (l *eventLog) ChildUpDown(sa ike.IKESAInfo, c ike.ChildSAInfo, up bool) {
	l.add("child %s{%d} up=%v %v", c.Name, c.ID, up, c.State)
}
func (l *eventLog) ChildRekey(sa ike.IKESAInfo, old, new ike.ChildSAInfo) {
	l.add("child-rekey %s{%d} -> {%d} %v", old.Name, old.ID, new.ID, new.State)
}

// The observer hears what charon's bus would say: establishment, rekeys
// of CHILD_SA and IKE SA (no up/down for those), and deletes.
func TestObserverEvents(t *testing.T) {
	tb := newTestbed(t, bedOptions{})
	var la, lb eventLog
	tb.a.e.SetObserver(&la)
	tb.b.e.SetObserver(&lb)
	id := tb.establish()
	for _, l := range []*eventLog{&la, &lb} {
		got := l.take()
		want := []string{fmt.Sprintf("ike gw[%d] up=true ESTABLISHED children=0", tb.established(tb.a).ID), "child net{1} up=true INSTALLED"}
		if l == &lb {
			want[0] = fmt.Sprintf("ike gw[%d] up=true ESTABLISHED children=0", tb.established(tb.b).ID)
		}
		if !slices.Equal(got, want) {
			t.Errorf("establish:\n got %q\nwant %q", got, want)
		}
	}
	child := tb.children(tb.a)[0]
	if err := tb.a.e.RekeyChildSA(child.ID); err != nil {
		t.Fatal(err)
	}
	tb.net.Flush()
	newChild := tb.children(tb.a)[0]
	if got, want := la.take(), []string{fmt.Sprintf("child-rekey net{%d} -> {%d} INSTALLED", child.ID, newChild.ID)}; !slices.Equal(got, want) {
		t.Errorf("child rekey (initiator):\n got %q\nwant %q", got, want)
	}
	if got := lb.take(); len(got) != 1 || !slices.Contains([]string{"child-rekey"}, got[0][:11]) {
		t.Errorf("child rekey (responder): %q", got)
	}
	if err := tb.a.e.RekeyIKESA(id); err != nil {
		t.Fatal(err)
	}
	tb.net.Flush()
	newID := tb.established(tb.a).ID
	if got, want := la.take(), []string{fmt.Sprintf("ike-rekey gw[%d] -> [%d] ESTABLISHED", id, newID)}; !slices.Equal(got, want) {
		t.Errorf("IKE rekey:\n got %q\nwant %q", got, want)
	}
	lb.take()
	if err := tb.a.e.DeleteIKESA(newID); err != nil {
		t.Fatal(err)
	}
	tb.net.Flush()
	want := []string{fmt.Sprintf("child net{%d} up=false INSTALLED", newChild.ID), fmt.Sprintf("ike gw[%d] up=false DELETING children=0", newID)}
	if got := la.take(); !slices.Equal(got, want) {
		t.Errorf("delete:\n got %q\nwant %q", got, want)
	}
	if got := lb.take(); len(got) != 2 || got[1][:4] != "ike " {
		t.Errorf("delete (responder): %q", got)
	}
	// Without an observer nothing is reported (and nothing breaks).
	tb.a.e.SetObserver(nil)
	tb.establish()
	if got := la.take(); len(got) != 0 {
		t.Errorf("events without an observer: %q", got)
	}
}
