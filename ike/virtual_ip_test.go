package ike_test

import (
	"crypto/x509"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/xdpsec/xdpsec/ike"
	"github.com/xdpsec/xdpsec/ike/dataplanetest"
	"github.com/xdpsec/xdpsec/ike/eap"
)

// eventIndex is the position of the first event starting with prefix, -1
// if none.
func eventIndex(events []string, prefix string) int {
	return slices.IndexFunc(events, func(e string) bool { return strings.HasPrefix(e, prefix) })
}

// TestClientVirtualIPInstalled: the client role's virtual IP goes into
// the dataplane before the CHILD_SA's policies, whose outbound one names
// it as the source of its routes; an IKE rekey keeps it without removing
// it; a restart with saved state takes it back once; deleting the IKE SA
// removes it after the policies. The DNS server is logged and listed.
func TestClientVirtualIPInstalled(t *testing.T) {
	rb := newRABed(t, raOptions{})
	rb.establish()
	vip := netip.MustParseAddr("10.3.200.1")
	a := rb.a
	if got := a.dp.VirtualIPs(); !slices.Equal(got, []netip.Addr{vip}) {
		t.Fatalf("client's dataplane virtual IPs %v, want %s", got, vip)
	}
	if got := rb.b.dp.VirtualIPs(); len(got) != 0 {
		t.Errorf("the gateway installed virtual IPs %v", got)
	}
	wantLog(t, a, "installing new virtual IP 10.3.200.1", "received DNS server 10.3.0.1")
	ev := a.dp.Events()
	if iv, ip := eventIndex(ev, "add virtual IP 10.3.200.1"), eventIndex(ev, "add policy"); iv < 0 || ip < 0 || iv > ip {
		t.Errorf("virtual IP not installed before the policies: %v", ev)
	}
	var out int
	for _, p := range a.dp.Policies() {
		want := netip.Addr{}
		if p.Dir == ike.DirOut {
			want = vip
			out++
		}
		if p.RouteSrc != want {
			t.Errorf("policy %s === %s %v: RouteSrc %v, want %v", p.Src, p.Dst, p.Dir, p.RouteSrc, want)
		}
	}
	if out != 1 {
		t.Errorf("%d outbound policies, want 1", out)
	}
	if c := rb.established(a); !slices.Equal(c.DNSServers, []netip.Addr{netip.MustParseAddr("10.3.0.1")}) {
		t.Errorf("listed DNS servers %v", c.DNSServers)
	}

	// An IKE rekey hands the virtual IP to the new IKE SA.
	if err := a.e.RekeyIKESA(rb.established(a).ID); err != nil {
		t.Fatal(err)
	}
	rb.net.Flush()
	if c := rb.established(a); !slices.Equal(c.LocalVIPs, []netip.Addr{vip}) {
		t.Fatalf("after the IKE rekey: %v", c.LocalVIPs)
	}
	if ev := a.dp.Events(); eventIndex(ev, "delete virtual IP") >= 0 || !slices.Equal(a.dp.VirtualIPs(), []netip.Addr{vip}) {
		t.Fatalf("the IKE rekey removed the virtual IP: %v", ev)
	}

	// A restart takes it back, once.
	st := a.e.Detach()
	conn := baseConn(addrA, addrB, "carol", "sun.example.org", "10.1.0.0/16", "10.2.0.0/16")
	rb.clientConn(conn, "carol", []eap.Type{eap.TypeMSCHAPv2})
	a = rb.restartPeer(a, st, conn, 0xc7000000, func(c *ike.Config) {
		c.Credentials = ike.Credentials{CAs: []*x509.Certificate{rb.ca.Cert}, EAP: []ike.EAPSecret{{IDs: []string{"carol"}, Secret: []byte("carol's password")}}}
	})
	rb.a = a
	ev = a.dp.Events()
	if n := len(slices.DeleteFunc(slices.Clone(ev), func(e string) bool { return !strings.HasPrefix(e, "add virtual IP") })); n != 1 {
		t.Errorf("after the restart: %d virtual IP installs, want 1: %v", n, ev)
	}
	if iv, ip := eventIndex(ev, "add virtual IP"), eventIndex(ev, "add policy"); iv < 0 || iv > ip {
		t.Errorf("taken back: virtual IP not before the policies: %v", ev)
	}
	if a.log.contains("installing new virtual IP") {
		t.Error("a taken-back virtual IP logged as new")
	}

	// Deleting the IKE SA removes it, after the policies.
	if err := a.e.DeleteIKESA(rb.established(a).ID); err != nil {
		t.Fatal(err)
	}
	rb.net.Flush()
	if got := a.dp.VirtualIPs(); len(got) != 0 {
		t.Fatalf("virtual IPs left after the delete: %v", got)
	}
	ev = a.dp.Events()
	if iv, ip := eventIndex(ev, "delete virtual IP 10.3.200.1"), eventIndex(ev, "delete policy"); iv < 0 || iv < ip || eventIndex(ev[ip:], "delete virtual IP") < 0 {
		t.Errorf("virtual IP not removed after the policies: %v", ev)
	}
	rb.wantNoSAs(a)
}

// TestClientVirtualIPRefused: a CFG_REPLY whose address no host can hold
// is ignored with a log line, and nothing is installed.
func TestClientVirtualIPRefused(t *testing.T) {
	rb := newRABed(t, raOptions{poolAddrs: "224.0.0.1-224.0.0.2"})
	rb.establish()
	if got := rb.a.dp.VirtualIPs(); len(got) != 0 {
		t.Errorf("installed %v", got)
	}
	wantLog(t, rb.a, "ignoring virtual IP 224.0.0.1: not a unicast address")
}

// TestClientVirtualIPImportRefused: a saved IKE SA whose virtual IP is
// not an address (a damaged state file) is refused with an error naming
// it, and nothing is installed.
func TestClientVirtualIPImportRefused(t *testing.T) {
	rb := newRABed(t, raOptions{})
	rb.establish()
	st := rb.a.e.Detach()
	if len(st.SAs) != 1 {
		t.Fatalf("%d IKE SAs saved", len(st.SAs))
	}
	st.SAs[0].LocalVIPs = []netip.Addr{netip.IPv4Unspecified()}
	conn := baseConn(addrA, addrB, "carol", "sun.example.org", "10.1.0.0/16", "10.2.0.0/16")
	rb.clientConn(conn, "carol", []eap.Type{eap.TypeMSCHAPv2})
	dp := dataplanetest.New(0xc8000000)
	e, err := ike.New(ike.Config{Logger: slog.New(newLogRecorder()), Sender: rb.net.Sender(), Dataplane: dp, Clock: rb.clock})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if err := e.AddConnection(conn); err != nil {
		t.Fatal(err)
	}
	errs := e.Import(st)
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "invalid virtual IP") {
		t.Fatalf("Import: %v", errs)
	}
	if len(e.IKESAs()) != 0 || len(dp.VirtualIPs()) != 0 {
		t.Errorf("taken back anyway: %+v, virtual IPs %v", e.IKESAs(), dp.VirtualIPs())
	}
}
