package xfrm

import (
	"errors"
	"net"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/vishvananda/netns"
)

// inNetns runs fn on a thread in the namespace; sockets it opens stay
// there.
func inNetns(t *testing.T, ns netns.NsHandle, fn func()) {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	if err := netns.Set(ns); err != nil {
		t.Fatal(err)
	}
	fn()
	if err := netns.Set(orig); err != nil {
		t.Fatal(err)
	}
}

// A packet that matches a policy whose template has no SA makes the
// kernel send an acquire naming the template's reqid and the packet.
func TestAcquire(t *testing.T) {
	kernelCaps(t)
	c, ns := newConn(t)
	ns.MustRun(t, "ip", "link", "add", "d0", "type", "veth", "peer", "name", "d1")
	ns.MustRun(t, "ip", "link", "set", "d1", "up")
	ns.MustRun(t, "ip", "addr", "add", "192.0.2.1/24", "dev", "d0")
	ns.MustRun(t, "ip", "addr", "add", "10.1.0.1/16", "dev", "d0")
	ns.MustRun(t, "ip", "link", "set", "d0", "up")
	ns.MustRun(t, "ip", "route", "add", "10.2.0.0/16", "via", "192.0.2.2")
	policies, err := PolicyBasedPolicies(Tunnel{Local: addrA, Remote: addrB, Reqid: 42, Priority: 100}, ModeTunnel, TrafficSelectors{
		Local: netip.MustParsePrefix("10.1.0.0/16"), Remote: netip.MustParsePrefix("10.2.0.0/16"),
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range policies {
		if err := c.AddPolicy(p); err != nil {
			t.Fatal(err)
		}
	}
	var l *AcquireListener
	inNetns(t, ns.Handle, func() {
		if l, err = ListenAcquires(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		// The send fails or is dropped: there is no SA. The acquire is
		// what counts.
		c, err := net.DialUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("10.1.0.1:0")),
			net.UDPAddrFromAddrPort(netip.MustParseAddrPort("10.2.0.7:9")))
		if err != nil {
			t.Logf("dial: %v", err)
			return
		}
		_, err = c.Write([]byte("x"))
		t.Logf("send without an SA: %v", err)
		c.Close()
	})
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		acqs, err := l.Receive()
		if errors.Is(err, ErrNoAcquire) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range acqs {
			if a.Reqid != 42 || a.Src != addrA || a.Dst != addrB || a.Dir != DirOut ||
				a.Packet.Src.Addr() != netip.MustParseAddr("10.1.0.1") || a.Packet.Dst.Addr() != netip.MustParseAddr("10.2.0.7") ||
				a.Policy.Src != netip.MustParsePrefix("10.1.0.0/16") {
				t.Errorf("acquire %+v", a)
			}
			return
		}
	}
	t.Fatal("no acquire within 5 s of a packet matching the policy")
}
