package ike_test

import (
	"testing"
	"time"

	"github.com/xdpsec/xdpsec/ike"
)

// TestObserveEstablishment steps the exchanges one datagram per 100ms and
// checks what each side's observers are told:
//
//	 0ms a: IKE_SA_INIT request        100ms b: IKE_SA_INIT response
//	200ms a: IKE_AUTH request (CHILD_SA) 300ms b: established, CHILD_SA installed
//	400ms a: established, CHILD_SA installed
func TestObserveEstablishment(t *testing.T) {
	var ikeA, ikeB, childA, childB []ike.SAEvent
	tb := newTestbed(t, bedOptions{
		cfgA: func(c *ike.Config) {
			c.OnIKESAEstablished = func(e ike.SAEvent) { ikeA = append(ikeA, e) }
			c.OnChildSAInstalled = func(e ike.SAEvent) { childA = append(childA, e) }
		},
		cfgB: func(c *ike.Config) {
			c.OnIKESAEstablished = func(e ike.SAEvent) { ikeB = append(ikeB, e) }
			c.OnChildSAInstalled = func(e ike.SAEvent) { childB = append(childB, e) }
		},
	})
	if _, err := tb.a.e.Initiate("gw"); err != nil {
		t.Fatal(err)
	}
	const step = 100 * time.Millisecond
	for len(tb.net.Queued()) > 0 {
		tb.clock.Advance(step)
		tb.net.Deliver()
	}
	tb.established(tb.a)

	want := func(who string, got []ike.SAEvent, w ike.SAEvent) {
		t.Helper()
		if len(got) != 1 || got[0] != w {
			t.Errorf("%s: %+v, want %+v", who, got, w)
		}
	}
	want("a IKE", ikeA, ike.SAEvent{Conn: "gw", Initiator: true, Took: 4 * step})
	want("b IKE", ikeB, ike.SAEvent{Conn: "gw", Took: 2 * step})
	want("a CHILD", childA, ike.SAEvent{Conn: "gw", Child: "net", Initiator: true, Took: 2 * step, SinceInit: 4 * step})
	want("b CHILD", childB, ike.SAEvent{Conn: "gw", Child: "net", Took: 0, SinceInit: 2 * step})

	// A rekeyed CHILD_SA is a CHILD_SA set up, not one from IKE_SA_INIT;
	// the IKE SA is not established again.
	ikeA, childA, childB = nil, nil, nil
	if err := tb.a.e.RekeyChildSA(tb.children(tb.a)[0].ID); err != nil {
		t.Fatal(err)
	}
	for len(tb.net.Queued()) > 0 {
		tb.clock.Advance(step)
		tb.net.Deliver()
	}
	want("a rekeyed CHILD", childA, ike.SAEvent{Conn: "gw", Child: "net", Initiator: true, Rekey: true, Took: 2 * step})
	want("b rekeyed CHILD", childB, ike.SAEvent{Conn: "gw", Child: "net", Rekey: true})
	if len(ikeA) != 0 {
		t.Errorf("IKE SA observed again on a CHILD_SA rekey: %+v", ikeA)
	}
}

// TestObserveEstablishmentV1: Main Mode and Quick Mode, one datagram per
// 100ms, as for IKEv2:
//
//	  0ms a: MM1   100ms b: MM2   200ms a: MM3   300ms b: MM4   400ms a: MM5
//	500ms b: MM6, established   600ms a: established, QM1
//	700ms b: QM2   800ms a: installed, QM3   900ms b: installed
func TestObserveEstablishmentV1(t *testing.T) {
	var ikeA, ikeB, childA, childB []ike.SAEvent
	f := both(v1("aes128-sha256-modp2048", "aes128-sha256"))
	tb := newTestbed(t, bedOptions{connA: f, connB: f,
		cfgA: func(c *ike.Config) {
			c.OnIKESAEstablished = func(e ike.SAEvent) { ikeA = append(ikeA, e) }
			c.OnChildSAInstalled = func(e ike.SAEvent) { childA = append(childA, e) }
		},
		cfgB: func(c *ike.Config) {
			c.OnIKESAEstablished = func(e ike.SAEvent) { ikeB = append(ikeB, e) }
			c.OnChildSAInstalled = func(e ike.SAEvent) { childB = append(childB, e) }
		},
	})
	if _, err := tb.a.e.Initiate("gw"); err != nil {
		t.Fatal(err)
	}
	const step = 100 * time.Millisecond
	for len(tb.net.Queued()) > 0 {
		tb.clock.Advance(step)
		tb.net.Deliver()
	}
	tb.wantV1Established()
	want := func(who string, got []ike.SAEvent, w ike.SAEvent) {
		t.Helper()
		if len(got) != 1 || got[0] != w {
			t.Errorf("%s: %+v, want %+v", who, got, w)
		}
	}
	want("a IKE", ikeA, ike.SAEvent{Conn: "gw", Initiator: true, Took: 6 * step})
	want("b IKE", ikeB, ike.SAEvent{Conn: "gw", Took: 4 * step})
	want("a CHILD", childA, ike.SAEvent{Conn: "gw", Child: "net", Initiator: true, Took: 2 * step, SinceInit: 8 * step})
	want("b CHILD", childB, ike.SAEvent{Conn: "gw", Child: "net", Took: 2 * step, SinceInit: 8 * step})
}
