package dataplane

import (
	"net/netip"
	"os/exec"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/xdpsec/xdpsec/ike"
	"github.com/xdpsec/xdpsec/internal/testenv"
	"github.com/xdpsec/xdpsec/maps/xfrm"
)

var vip = netip.MustParseAddr("10.3.200.1")

// clientPolicies are a road warrior's policies: its virtual IP to the
// gateway's LAN, policy-based (ifID 0) or route-based.
func clientPolicies(ifID uint32) []*ike.Policy {
	local, _ := ike.ParseTS(vip.String() + "/32")
	remote, _ := ike.ParseTS("10.1.0.0/16")
	return []*ike.Policy{
		{Dir: ike.DirOut, Src: local, Dst: remote, TmplSrc: us, TmplDst: them, ReqID: 1, IfID: ifID, RouteSrc: vip},
		{Dir: ike.DirIn, Src: remote, Dst: local, TmplSrc: them, TmplDst: us, ReqID: 1, IfID: ifID},
		{Dir: ike.DirFwd, Src: remote, Dst: local, TmplSrc: them, TmplDst: us, ReqID: 1, IfID: ifID},
	}
}

// TestDataplaneClientVIP: the virtual IP goes on the interface toward the
// peer; a policy-based outbound policy routes its remote selector in table
// 220 along that path with the virtual IP as source, with the rule that
// looks the table up; a route-based one routes into the XFRM interface
// with it; all of it goes with the policies and the virtual IP.
func TestDataplaneClientVIP(t *testing.T) {
	_, k, b, _ := newFakeDataplane(t)
	tun := newFakeTunnels()
	d := NewKernelDataplane(KernelConfig{Kernel: k, BPF: b, Log: testenv.Logger(t), Tunnels: tun})
	t.Cleanup(d.Close)
	v := &ike.VirtualIP{Addr: vip, Local: us, Peer: them}
	if err := d.AddVirtualIP(v); err != nil {
		t.Fatal(err)
	}
	if err := d.AddVirtualIP(v); err != nil {
		t.Fatalf("adding it again: %v", err)
	}
	if a := tun.addrs[vip]; a.ifindex != 2 || !a.ours {
		t.Fatalf("virtual IP on %+v, want ifindex 2 (the path to the peer)", a)
	}
	pols := clientPolicies(0)
	for _, p := range pols {
		if err := d.AddPolicy(p); err != nil {
			t.Fatal(err)
		}
	}
	lan := netip.MustParsePrefix("10.1.0.0/16")
	want := Route{Dst: lan, Ifindex: 2, Gateway: netip.MustParseAddr("192.0.2.254"), Src: vip, Table: ClientTable}
	if len(tun.table) != 1 || tun.table[lan] != want || !tun.rules[false] {
		t.Errorf("routes %v rules %v, want only %v and the IPv4 rule", tun.table, tun.rules, want)
	}
	for _, p := range pols {
		if err := d.DeletePolicy(p); err != nil {
			t.Fatal(err)
		}
	}
	if len(tun.table) != 0 || len(tun.rules) != 0 {
		t.Errorf("left after the policies went: routes %v rules %v", tun.table, tun.rules)
	}

	pols = clientPolicies(7)
	for _, p := range pols {
		if err := d.AddPolicy(p); err != nil {
			t.Fatal(err)
		}
	}
	want = Route{Dst: lan, Ifindex: tun.ifaces[7], Src: vip}
	if len(tun.table) != 1 || tun.table[lan] != want || len(tun.rules) != 0 {
		t.Errorf("route-based: routes %v rules %v, want only %v", tun.table, tun.rules, want)
	}
	for _, p := range pols {
		if err := d.DeletePolicy(p); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.DeleteVirtualIP(v); err != nil {
		t.Fatal(err)
	}
	if len(tun.addrs) != 0 || len(tun.table) != 0 {
		t.Errorf("left: addresses %v routes %v", tun.addrs, tun.table)
	}

	// A restarted daemon takes back its own address, and removes it.
	tun.addrs[vip] = fakeAddr{ifindex: 2, ours: true}
	d2 := NewKernelDataplane(KernelConfig{Kernel: k, BPF: b, Log: testenv.Logger(t), Tunnels: tun})
	t.Cleanup(d2.Close)
	if err := d2.AddVirtualIP(v); err != nil {
		t.Fatal(err)
	}
	if err := d2.DeleteVirtualIP(v); err != nil || len(tun.addrs) != 0 {
		t.Errorf("taken back and deleted: %v, addresses %v", err, tun.addrs)
	}
	// The operator's own address is used and left in place.
	tun.addrs[vip] = fakeAddr{ifindex: 1}
	if err := d2.AddVirtualIP(v); err != nil {
		t.Fatal(err)
	}
	if err := d2.DeleteVirtualIP(v); err != nil || tun.addrs[vip] != (fakeAddr{ifindex: 1}) {
		t.Errorf("the operator's address: %v, now %+v", err, tun.addrs[vip])
	}
	if err := d2.DeleteVirtualIP(v); err == nil {
		t.Error("deleting a virtual IP not installed: no error")
	}
}

// TestKernelClientVIP installs a road warrior's virtual IP and its
// policy-based and route-based routes into a throwaway namespace's
// kernel, with XFRM policies, and checks them with ip(8): the address as
// a /32 without a prefix route on the interface toward the peer, table
// 220 with `src` and the rule of priority 220 (once, even when a second
// dataplane, a restarted daemon's, adds them again), the route into the
// XFRM interface with `src`; then that everything is gone, and that the
// namespace's other IPv4 addresses and routes (IPv6 link-local ones
// change by themselves: duplicate address detection) and its rules are
// as before.
func TestKernelClientVIP(t *testing.T) {
	ns := testenv.NewNetns(t, "xdpsec-vip")
	sh := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("ip", append([]string{"-n", ns.Name}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	sh("link", "add", "wan0", "type", "veth", "peer", "name", "wan1")
	sh("link", "set", "wan1", "up")
	sh("addr", "add", "192.0.2.1/24", "dev", "wan0")
	sh("link", "set", "wan0", "up")
	sh("route", "add", "default", "via", "192.0.2.254")
	// The addresses one per line (-o: without the link's flags) and the
	// routes without "linkdown": the veth's carrier may come up between
	// two snapshots.
	snapshot := func() string {
		return sh("-4", "-o", "addr") + strings.ReplaceAll(sh("-4", "route", "show", "table", "all"), " linkdown", "") +
			sh("rule") + sh("-6", "rule")
	}
	before := snapshot()

	k, err := xfrm.OpenAt(ns.Handle)
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	h, err := netlink.NewHandleAt(ns.Handle)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	newDP := func() *KernelDataplane {
		_, _, b, _ := newFakeDataplane(t)
		d := NewKernelDataplane(KernelConfig{Kernel: k, BPF: b, Log: testenv.Logger(t), Tunnels: NetlinkTunnels{Kernel: k, Handle: h}})
		t.Cleanup(d.Close)
		return d
	}
	peer := netip.MustParseAddr("198.51.100.1")
	v := &ike.VirtualIP{Addr: vip, Local: us, Peer: peer}
	polsFor := func(ifID uint32) []*ike.Policy {
		pols := clientPolicies(ifID)
		for _, p := range pols {
			p.TmplDst, p.TmplSrc = peer, us
			if p.Dir != ike.DirOut {
				p.TmplDst, p.TmplSrc = us, peer
			}
		}
		return pols
	}
	install := func(t *testing.T, d *KernelDataplane, pols []*ike.Policy) {
		t.Helper()
		if err := d.AddVirtualIP(v); err != nil {
			t.Fatal(err)
		}
		for _, p := range pols {
			if err := d.AddPolicy(p); err != nil {
				t.Fatal(err)
			}
		}
	}
	remove := func(t *testing.T, d *KernelDataplane, pols []*ike.Policy) {
		t.Helper()
		for _, p := range pols {
			if err := d.DeletePolicy(p); err != nil {
				t.Error(err)
			}
		}
		if err := d.DeleteVirtualIP(v); err != nil {
			t.Error(err)
		}
	}
	unchanged := func(t *testing.T) {
		t.Helper()
		if after := snapshot(); after != before {
			t.Errorf("the namespace changed:\nbefore\n%s\nafter\n%s", before, after)
		}
	}
	t.Run("policy-based", func(t *testing.T) {
		pols := polsFor(0)
		install(t, newDP(), pols)
		if out := sh("-o", "addr", "show", "dev", "wan0"); !strings.Contains(out, "inet 10.3.200.1/32") || !strings.Contains(out, "noprefixroute") {
			t.Errorf("virtual IP not on wan0 as a /32 without prefix route:\n%s", out)
		}
		wantRoute := "10.1.0.0/16 via 192.0.2.254 dev wan0 proto static src 10.3.200.1"
		if out := sh("route", "show", "table", "220"); strings.TrimSpace(out) != wantRoute {
			t.Errorf("table 220:\n%s\nwant %s", out, wantRoute)
		}
		// A restarted daemon's dataplane adds them again: no duplicates.
		d2 := newDP()
		install(t, d2, pols)
		if out := sh("rule"); strings.Count(out, "220:") != 1 || !strings.Contains(out, "lookup 220") {
			t.Errorf("rules:\n%s\nwant one of priority 220 looking up table 220", out)
		}
		if out := sh("-o", "addr"); strings.Count(out, "10.3.200.1") != 1 {
			t.Errorf("addresses:\n%s", out)
		}
		remove(t, d2, pols)
		unchanged(t)
	})
	t.Run("route-based", func(t *testing.T) {
		if !xfrmInterfaces(t, k) {
			t.Skip("skipped: no XFRM interfaces in this kernel")
		}
		d := newDP()
		pols := polsFor(0x51)
		install(t, d, pols)
		if out := sh("route", "show", "10.1.0.0/16"); !strings.Contains(out, "dev xdpsec51") || !strings.Contains(out, "src 10.3.200.1") {
			t.Errorf("route-based route:\n%s", out)
		}
		remove(t, d, pols)
		sh("link", "del", "xdpsec51")
		unchanged(t)
	})
}

// xfrmInterfaces says whether the kernel can make XFRM interfaces.
func xfrmInterfaces(t *testing.T, k *xfrm.Conn) bool {
	err := k.AddInterface(xfrm.Interface{Name: "xdpsecprobe", IfID: 0x99, Up: false})
	if err != nil {
		t.Logf("no XFRM interface: %v", err)
		return false
	}
	k.DeleteInterface("xdpsecprobe")
	return true
}
