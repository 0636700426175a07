package interop

import (
	"fmt"
	"strings"
	"testing"
	"time"

	govici "github.com/strongswan/govici/vici"

	"github.com/xdpsec/xdpsec/internal/testenv"
)

// MOBIKE (RFC 4555) against charon: the original initiator's address
// moves in its namespace, the other side follows, and the IKE SA and
// CHILD_SA keep their SPIs.

const (
	charonAddr2 = "10.99.0.11"
	oursAddr2   = "10.99.0.12"
)

// moveAddr replaces a namespace's address on wan0 by another of the same
// subnet: the new one comes first, then the old one goes (promoted
// secondaries keep the subnet's route).
func moveAddr(t *testing.T, ns *testenv.Netns, from, to string) {
	t.Helper()
	ns.MustRun(t, "sysctl", "-q", "-w", "net.ipv4.conf.wan0.promote_secondaries=1")
	ns.MustRun(t, "ip", "addr", "add", to+wanPrefixLen, "dev", "wan0")
	ns.MustRun(t, "ip", "addr", "del", from+wanPrefixLen, "dev", "wan0")
}

// mobikePeers is the PSK tunnel with MOBIKE on both sides (the default)
// and the roaming side's local_addrs left open: it may send from any.
func mobikePeers(roamer string) (charonSide, oursSide peer) {
	cs, os := pskPeers("aes128gcm16-prfsha256-x25519", "aes128gcm16")
	if roamer == "charon" {
		cs.local, os.remote = "", "%any"
	} else {
		os.local, cs.remote = "", "%any"
	}
	return cs, os
}

// sameIKE checks that the IKE SA survived a move (same SPIs) and that our
// daemon moved the CHILD_SA's SAs (the dry-run dataplane's log) instead
// of negotiating new ones. charon with kernel-libipsec cannot move its
// own (its update_sa is not supported) and rekeys the CHILD_SA after a
// move: its new SPIs are charon's doing, not a failed migration.
func (e *env) sameIKE(before, after []ikeView) {
	e.t.Helper()
	if len(after) != 1 || after[0].spiI != before[0].spiI || after[0].spiR != before[0].spiR {
		e.t.Errorf("the IKE SA changed across the move: %v, then %v", before, after)
	}
	for _, spi := range []string{before[0].children[0].spiIn, before[0].children[0].spiOut} {
		if !strings.Contains(e.ours.log(), "dry-run: would move SA "+spi) {
			e.t.Errorf("our SA %s was not moved in the dataplane", spi)
		}
	}
}

// charonPeerEndpoint is where charon's one IKE SA has its peer.
func (e *env) charonPeerEndpoint() (host, port string) {
	sa := e.charonSA()
	return sa.get("remote-host"), sa.get("remote-port")
}

func TestMOBIKECharonRoams(t *testing.T) {
	e := newEnv(t, envOptions{})
	cs, os := mobikePeers("charon")
	e.load(cs, os, nil, nil)
	e.initiate(charonInitiates)
	before := e.agree(1)
	if sa := e.oursSA(); sa.LocalPort != 4500 || sa.RemotePort != 4500 {
		t.Errorf("IKE SA on ports %d - %d, want 4500 (RFC 4555 section 3.3)", sa.LocalPort, sa.RemotePort)
	}
	// A VICI client hears the move as charon's ike-update.
	s, err := govici.NewSession(govici.WithSocketPath(e.ours.vici))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Subscribe("ike-update"); err != nil {
		t.Fatal(err)
	}
	events := make(chan govici.Event, 16)
	s.NotifyEvents(events)
	moveAddr(t, e.nsC, charonAddr, charonAddr2)
	waitLog(t, "charon", e.charon.log, 20*time.Second, "requesting address change using MOBIKE")
	waitFor(t, 20*time.Second, "our IKE SA to follow charon", func() error {
		if sa := e.oursSA(); sa.RemoteHost != charonAddr2 {
			return fmt.Errorf("remote %s[%d]", sa.RemoteHost, sa.RemotePort)
		}
		return nil
	})
	waitLog(t, "xdpsec", e.ours.log, 5*time.Second, "checking path "+oursAddr+"[4500] - "+charonAddr2+"[4500]",
		"remote address changed from "+charonAddr+" to "+charonAddr2)
	select {
	case ev := <-events:
		sa, _ := ev.Message.Get("c").(*govici.Message)
		if ev.Name != "ike-update" || ev.Message.Get("remote-host") != charonAddr2 || ev.Message.Get("remote-port") != "4500" ||
			sa == nil || sa.Get("remote-host") != charonAddr {
			t.Errorf("ike-update: %s %v", ev.Name, ev.Message)
		}
	case <-time.After(5 * time.Second):
		t.Error("no ike-update event for the move")
	}
	after := e.agree(1)
	e.sameIKE(before, after)
	out := e.ours.cli("list-sas")
	if !strings.Contains(out, "remote 'moon.example.org' @ "+charonAddr2+"[4500]") {
		t.Errorf("list-sas does not show the new remote address:\n%s", out)
	}
	// The moved IKE SA carries on: a CHILD_SA rekey by charon over it.
	e.rekeyChild(charonInitiates)
	e.waitChildReplaced(after[0].children[0].spiIn)
	e.agree(1)
}

func TestMOBIKEOursRoam(t *testing.T) {
	e := newEnv(t, envOptions{})
	cs, os := mobikePeers("ours")
	e.load(cs, os, nil, nil)
	e.initiate(oursInitiate)
	before := e.agree(1)
	moveAddr(t, e.nsO, oursAddr, oursAddr2)
	waitLog(t, "xdpsec", e.ours.log, 20*time.Second, "requesting address change using MOBIKE")
	waitFor(t, 20*time.Second, "charon to follow us", func() error {
		if h, p := e.charonPeerEndpoint(); h != oursAddr2 {
			return fmt.Errorf("charon's remote %s[%s]", h, p)
		}
		return nil
	})
	if sa := e.oursSA(); sa.LocalHost != oursAddr2 {
		t.Errorf("our IKE SA is on %s", sa.LocalHost)
	}
	after := e.agree(1)
	e.sameIKE(before, after)
	// Over the new path: a CHILD_SA rekey by us, and a DPD by charon.
	e.rekeyChild(oursInitiate)
	e.waitChildReplaced(after[0].children[0].spiIn)
	e.agree(1)
}

// TestMOBIKENAT moves our daemon, the initiator, behind a NAT (a second
// way to charon through a masquerading namespace) and back: charon sees
// us at the NAT's address and port, then at our own again, and the NAT
// detection of each update says so on both sides.
func TestMOBIKENAT(t *testing.T) {
	testenv.RequireCommand(t, "nft")
	e := newEnv(t, envOptions{})
	// ours wan1 192.168.77.2 -- in0 [NAT] out0 10.97.0.2 -- wan1 10.97.0.1 charon
	nsNAT := testenv.NewNetns(t, "xi-mnat")
	testenv.Veth(t, e.nsC, "wan1", "10.97.0.1/24", nsNAT, "out0", "10.97.0.2/24")
	testenv.Veth(t, nsNAT, "in0", "192.168.77.1/24", e.nsO, "wan1", "192.168.77.2/24")
	nsNAT.MustRun(t, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
	nsNAT.MustRun(t, "ip", "route", "add", charonAddr+"/32", "via", "10.97.0.1")
	nsNAT.MustRun(t, "nft", "add table ip nat; add chain ip nat post { type nat hook postrouting priority 100; }; "+
		"add rule ip nat post oifname out0 meta l4proto udp masquerade to :30000-30100; add rule ip nat post oifname out0 masquerade")
	cs, os := mobikePeers("ours")
	e.load(cs, os, nil, nil)
	e.initiate(oursInitiate)
	before := e.agree(1)

	// Into the NAT: our direct address goes, the way to charon is now
	// through the NAT.
	e.nsO.MustRun(t, "ip", "addr", "del", oursAddr+wanPrefixLen, "dev", "wan0")
	e.nsO.MustRun(t, "ip", "route", "add", charonAddr+"/32", "via", "192.168.77.1")
	waitFor(t, 20*time.Second, "charon to see us behind the NAT", func() error {
		sa := e.charonSA()
		if sa.get("remote-host") != "10.97.0.2" || !strings.HasPrefix(sa.get("remote-port"), "30") || sa.get("nat-remote") != "yes" {
			return fmt.Errorf("charon's remote %s[%s] nat-remote %q", sa.get("remote-host"), sa.get("remote-port"), sa.get("nat-remote"))
		}
		return nil
	})
	if sa := e.oursSA(); sa.LocalHost != "192.168.77.2" || !sa.NATLocal {
		t.Errorf("our IKE SA is on %s, NAT local %v; want 192.168.77.2 behind a NAT", sa.LocalHost, sa.NATLocal)
	}
	inNAT := e.agree(1)
	e.sameIKE(before, inNAT)
	waitLog(t, "xdpsec", e.ours.log, 5*time.Second, "local host is behind NAT, sending keep alives")

	// Out of the NAT again.
	e.nsO.MustRun(t, "ip", "route", "del", charonAddr+"/32", "via", "192.168.77.1")
	e.nsO.MustRun(t, "ip", "addr", "del", "192.168.77.2/24", "dev", "wan1")
	e.nsO.MustRun(t, "ip", "addr", "add", oursAddr+wanPrefixLen, "dev", "wan0")
	waitFor(t, 20*time.Second, "charon to see us without the NAT", func() error {
		sa := e.charonSA()
		if sa.get("remote-host") != oursAddr || sa.get("remote-port") != "4500" || sa.get("nat-remote") == "yes" {
			return fmt.Errorf("charon's remote %s[%s] nat-remote %q", sa.get("remote-host"), sa.get("remote-port"), sa.get("nat-remote"))
		}
		return nil
	})
	if sa := e.oursSA(); sa.LocalHost != oursAddr || sa.NATLocal {
		t.Errorf("our IKE SA is on %s, NAT local %v; want %s without a NAT", sa.LocalHost, sa.NATLocal, oursAddr)
	}
	after := e.agree(1)
	e.sameIKE(inNAT, after)
}
