package ike_test

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
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
func (l *eventLog) IKEUpdate(sa ike.IKESAInfo, local, remote netip.AddrPort) {
	l.add("ike-update %s[%d] %s - %s -> %s - %s", sa.Name, sa.ID, sa.Local, sa.Remote, local, remote)
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

// The counters count as charon's counters plugin does.
func TestCounters(t *testing.T) {
	tb := newTestbed(t, bedOptions{})
	id := tb.establish()
	a, b := tb.a.e.Counters(""), tb.b.e.Counters("gw")
	for _, tc := range []struct {
		c    ike.Counters
		name ike.Counter
		want uint64
	}{
		{a, ike.CounterIKEInitOutReq, 1}, {a, ike.CounterIKEInitInResp, 1}, {a, ike.CounterIKEAuthOutReq, 1}, {a, ike.CounterIKEAuthInResp, 1},
		{a, ike.CounterIKEInitInReq, 0}, {b, ike.CounterIKEInitInReq, 1}, {b, ike.CounterIKEInitOutResp, 1}, {b, ike.CounterIKEAuthInReq, 1},
		{b, ike.CounterIKEAuthOutResp, 1},
	} {
		if tc.c[tc.name] != tc.want {
			t.Errorf("%v = %d, want %d", tc.name, tc.c[tc.name], tc.want)
		}
	}
	if err := tb.a.e.RekeyChildSA(tb.children(tb.a)[0].ID); err != nil {
		t.Fatal(err)
	}
	tb.net.Flush()
	if err := tb.a.e.RekeyIKESA(id); err != nil {
		t.Fatal(err)
	}
	tb.net.Flush()
	a, b = tb.a.e.Counters("gw"), tb.b.e.Counters("gw")
	if a[ike.CounterChildRekey] != 1 || b[ike.CounterChildRekey] != 1 || a[ike.CounterIKERekeyInit] != 1 || b[ike.CounterIKERekeyResp] != 1 ||
		a[ike.CounterCreateChildOutReq] != 2 || b[ike.CounterCreateChildInReq] != 2 || a[ike.CounterInfoOutReq] == 0 {
		t.Errorf("after rekeys: a %v, b %v", a, b)
	}
	if got := tb.a.e.CounterConns(); !slices.Equal(got, []string{"gw"}) {
		t.Errorf("CounterConns: %v", got)
	}
	tb.a.e.ResetCounters("")
	if c := tb.a.e.Counters(""); c != (ike.Counters{}) {
		t.Errorf("after reset: %v", c)
	}
	if ike.CounterInfoOutResp.String() != "info-out-resp" || ike.CounterIKERekeyInit.String() != "ike-rekey-init" {
		t.Error("names")
	}
}

// IKEv1: phase 1 and Quick Mode come up, a Quick Mode rekey is a
// child-rekey, and a delete takes the IPsec SA down before the ISAKMP SA.
func TestObserverEventsV1(t *testing.T) {
	v := v1("aes128-sha256-modp2048", "aes128-sha256")
	tb := newTestbed(t, bedOptions{connA: v, connB: v})
	var la, lb eventLog
	tb.a.e.SetObserver(&la)
	tb.b.e.SetObserver(&lb)
	tb.establish()
	tb.wantV1Established()
	sa := tb.established(tb.a)
	child := sa.Children[0]
	want := []string{fmt.Sprintf("ike gw[%d] up=true ESTABLISHED children=0", sa.ID), fmt.Sprintf("child net{%d} up=true INSTALLED", child.ID)}
	if got := la.take(); !slices.Equal(got, want) {
		t.Errorf("establish:\n got %q\nwant %q", got, want)
	}
	if got := lb.take(); len(got) != 2 {
		t.Errorf("establish (responder): %q", got)
	}
	if err := tb.a.e.RekeyChildSA(child.ID); err != nil {
		t.Fatal(err)
	}
	tb.net.Flush()
	newChild := tb.established(tb.a).Children[0]
	if got, want := la.take(), []string{fmt.Sprintf("child-rekey net{%d} -> {%d} INSTALLED", child.ID, newChild.ID)}; !slices.Equal(got, want) {
		t.Errorf("rekey:\n got %q\nwant %q", got, want)
	}
	lb.take()
	if err := tb.a.e.DeleteIKESA(sa.ID); err != nil {
		t.Fatal(err)
	}
	tb.net.Flush()
	got := la.take()
	if len(got) != 2 || got[0] != fmt.Sprintf("child net{%d} up=false INSTALLED", newChild.ID) || !strings.HasPrefix(got[1], fmt.Sprintf("ike gw[%d] up=false", sa.ID)) {
		t.Errorf("delete: %q", got)
	}
	if c := tb.a.e.Counters("gw"); c[ike.CounterChildRekey] != 1 {
		t.Errorf("child-rekey counter %d", c[ike.CounterChildRekey])
	}
}
