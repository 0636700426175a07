package loader_test

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/xdpsec/xdpsec/bpf"
	"github.com/xdpsec/xdpsec/internal/packet"
	"github.com/xdpsec/xdpsec/internal/testenv"
	"github.com/xdpsec/xdpsec/loader"
	"github.com/xdpsec/xdpsec/maps"
)

// gateway is a namespace with xdpsec's WAN and LAN veths, and the peer
// namespace on the other end of the WAN.
type gateway struct {
	gw, peer *testenv.Netns
	pinDir   string
	wanAddr  netip.Addr
}

func newGateway(t *testing.T) *gateway {
	testenv.RequireBPF(t)
	g := &gateway{
		gw:      testenv.NewNetns(t, "xdpsec-gw"),
		peer:    testenv.NewNetns(t, "xdpsec-peer"),
		wanAddr: netip.MustParseAddr("10.99.0.1"),
	}
	lanHost := testenv.NewNetns(t, "xdpsec-lan")
	testenv.Veth(t, g.gw, "wan0", "10.99.0.1/24", g.peer, "wan1", "10.99.0.2/24")
	testenv.Veth(t, g.gw, "lan0", "10.98.0.1/24", lanHost, "lan1", "10.98.0.2/24")
	g.pinDir = fmt.Sprintf("/sys/fs/bpf/xdpsec-test-%06x", rand.Uint32()&0xffffff)
	t.Cleanup(func() {
		g.gw.Do(func() error { return loader.Unload(g.pinDir) })
		os.RemoveAll(g.pinDir)
	})
	return g
}

func (g *gateway) load(t *testing.T, tc loader.TCMode) {
	t.Helper()
	err := g.gw.Do(func() error {
		l, err := loader.Load(loader.Options{WAN: "wan0", LAN: []string{"lan0"}, TCMode: tc, PinDir: g.pinDir,
			MaxSAs: 1024, MaxPolicies: 256, IKERate: maps.IKERateLimit{Rate: 20, Burst: 40}})
		if err != nil {
			return err
		}
		l.Close()
		return nil
	})
	if err != nil {
		t.Fatalf("load: %v", err)
	}
}

// sendESP sends n ESP packets with spi from the peer namespace to the
// gateway's WAN address through a raw IP socket.
func (g *gateway) sendESP(t *testing.T, spi uint32, n int) {
	t.Helper()
	err := g.peer.Do(func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW, packet.ProtoESP)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		to := &unix.SockaddrInet4{Addr: g.wanAddr.As4()}
		for i := range n {
			if err := unix.Sendto(fd, packet.ESP(spi, uint32(i+1), 48), 0, to); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("send ESP: %v", err)
	}
}

func (g *gateway) maps(t *testing.T) *maps.Set {
	t.Helper()
	s, err := maps.OpenPinned(g.pinDir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func counter(t *testing.T, s *maps.Set, name string) uint64 {
	t.Helper()
	all, err := s.Counters.ByName()
	if err != nil {
		t.Fatal(err)
	}
	c, ok := all[name]
	if !ok {
		t.Fatalf("no counter %s", name)
	}
	return c.Packets
}

// attached reports what xdpsec left on the gateway's interfaces.
func (g *gateway) attached(t *testing.T) (xdp bool, tcx int, clsact int) {
	t.Helper()
	err := g.gw.Do(func() error {
		wan, err := netlink.LinkByName("wan0")
		if err != nil {
			return err
		}
		xdp = wan.Attrs().Xdp != nil && wan.Attrs().Xdp.Attached
		lan, err := netlink.LinkByName("lan0")
		if err != nil {
			return err
		}
		res, err := link.QueryPrograms(link.QueryOptions{Target: lan.Attrs().Index, Attach: ebpf.AttachTCXIngress})
		if err == nil {
			tcx = len(res.Programs)
		}
		filters, _ := netlink.FilterList(lan, netlink.HANDLE_MIN_INGRESS)
		clsact = len(filters)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return xdp, tcx, clsact
}

func TestAttachCountsRealESP(t *testing.T) {
	g := newGateway(t)
	g.load(t, loader.TCAuto)
	if xdp, tcx, clsact := g.attached(t); !xdp || tcx+clsact != 1 {
		t.Fatalf("after load: xdp attached %v, tc programs %d tcx + %d clsact; want xdp and one tc", xdp, tcx, clsact)
	}

	s := g.maps(t)
	// One SPI from the allocated range (found by index), one from outside
	// it (found by hash), one unknown.
	const known, foreign, unknown = maps.DefaultSPIBase + 10, 0x1000a, 0x2000b
	for _, spi := range []uint32{known, foreign} {
		if err := s.SA.Put(maps.InboundSA{SPI: spi, Dst: g.wanAddr, CPU: maps.NoCPU}); err != nil {
			t.Fatal(err)
		}
	}
	const nKnown, nForeign, nUnknown = 37, 11, 23
	g.sendESP(t, known, nKnown)
	g.sendESP(t, foreign, nForeign)
	g.sendESP(t, unknown, nUnknown)
	if sa, err := s.SA.Get(maps.SAProtoESP, foreign, g.wanAddr); err != nil || sa.RxSeenPackets != nForeign {
		t.Errorf("foreign SA: %+v, %v; want %d packets", sa, err, nForeign)
	}

	sa, err := s.SA.Get(maps.SAProtoESP, known, g.wanAddr)
	if err != nil {
		t.Fatal(err)
	}
	if sa.RxSeenPackets != nKnown {
		t.Errorf("rx_seen of SA %#x = %d, sent %d", known, sa.RxSeenPackets, nKnown)
	}
	if sa.RxSeenBytes != nKnown*(20+8+48) {
		t.Errorf("rx_seen bytes = %d, want %d", sa.RxSeenBytes, nKnown*(20+8+48))
	}
	if got := counter(t, s, "rx_seen"); got != nKnown+nForeign {
		t.Errorf("rx_seen counter = %d, want %d", got, nKnown+nForeign)
	}
	if got := counter(t, s, "no_sa"); got != nUnknown {
		t.Errorf("no_sa counter = %d, want %d", got, nUnknown)
	}

	// Loading again upgrades in place and keeps SAs and counters.
	g.load(t, loader.TCAuto)
	if xdp, tcx, clsact := g.attached(t); !xdp || tcx+clsact != 1 {
		t.Fatalf("after reload: xdp %v, tc %d+%d", xdp, tcx, clsact)
	}
	g.sendESP(t, known, 3)
	sa, err = s.SA.Get(maps.SAProtoESP, known, g.wanAddr)
	if err != nil {
		t.Fatal(err)
	}
	if sa.RxSeenPackets != nKnown+3 {
		t.Errorf("after reload rx_seen = %d, want %d", sa.RxSeenPackets, nKnown+3)
	}

	if err := g.gw.Do(func() error { return loader.Unload(g.pinDir) }); err != nil {
		t.Fatalf("unload: %v", err)
	}
	if xdp, tcx, clsact := g.attached(t); xdp || tcx != 0 || clsact != 0 {
		t.Errorf("after unload: xdp %v, tcx %d, clsact filters %d; want nothing", xdp, tcx, clsact)
	}
	if _, err := os.Stat(g.pinDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pin dir %s still exists after unload (%v)", g.pinDir, err)
	}
}

func TestAttachClsactAndUnload(t *testing.T) {
	g := newGateway(t)
	g.load(t, loader.TCClsact)
	xdp, tcx, clsact := g.attached(t)
	if !xdp || tcx != 0 || clsact != 1 {
		t.Fatalf("clsact load: xdp %v, tcx %d, clsact %d; want xdp, 0, 1", xdp, tcx, clsact)
	}
	var atts []loader.Attachment
	if err := g.gw.Do(func() (err error) { atts, err = loader.Attachments(g.pinDir); return err }); err != nil {
		t.Fatal(err)
	}
	if len(atts) != 2 {
		t.Errorf("attachments %+v, want xdp_wan and tc_lan", atts)
	}
	// Switching to tcx replaces the filter rather than adding to it.
	g.load(t, loader.TCAuto)
	if xdp, tcx, clsact := g.attached(t); !xdp || tcx+clsact != 1 {
		t.Fatalf("after switching tc mode: xdp %v, tcx %d, clsact %d", xdp, tcx, clsact)
	}
	if err := g.gw.Do(func() error { return loader.Unload(g.pinDir) }); err != nil {
		t.Fatal(err)
	}
	if xdp, tcx, clsact := g.attached(t); xdp || tcx != 0 || clsact != 0 {
		t.Errorf("after unload: xdp %v, tcx %d, clsact %d", xdp, tcx, clsact)
	}
	entries, _ := filepath.Glob(g.pinDir + "/*")
	if len(entries) != 0 {
		t.Errorf("pins left: %v", entries)
	}
}

func TestLoadErrors(t *testing.T) {
	testenv.RequireBPF(t)
	ns := testenv.NewNetns(t, "xdpsec-err")
	err := ns.Do(func() error {
		_, err := loader.Load(loader.Options{WAN: "nosuch0", PinDir: "/sys/fs/bpf/xdpsec-test-err"})
		return err
	})
	if !errors.Is(err, loader.ErrNoInterface) {
		t.Errorf("load on a missing interface: %v, want ErrNoInterface", err)
	}
	if _, err := os.Stat("/sys/fs/bpf/xdpsec-test-err"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a failed load left a pin dir behind")
		os.RemoveAll("/sys/fs/bpf/xdpsec-test-err")
	}
}

// TestXDPFallsBackToGeneric attaches to loopback, which has no native XDP:
// auto mode falls back to generic with a log line, native mode fails.
func TestXDPFallsBackToGeneric(t *testing.T) {
	testenv.RequireBPF(t)
	ns := testenv.NewNetns(t, "xdpsec-lo")
	dir := fmt.Sprintf("/sys/fs/bpf/xdpsec-test-%06x", rand.Uint32()&0xffffff)
	t.Cleanup(func() {
		ns.Do(func() error { return loader.Unload(dir) })
		os.RemoveAll(dir)
	})
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	err := ns.Do(func() error {
		if _, err := loader.Load(loader.Options{WAN: "lo", XDPMode: loader.XDPNative, PinDir: dir, MaxSAs: 64, MaxPolicies: 16, Log: log}); err == nil {
			return errors.New("native XDP on loopback succeeded")
		}
		l, err := loader.Load(loader.Options{WAN: "lo", PinDir: dir, MaxSAs: 64, MaxPolicies: 16, Log: log})
		if err != nil {
			return err
		}
		l.Close()
		atts, err := loader.Attachments(dir)
		if err != nil {
			return err
		}
		if len(atts) != 1 || atts[0].Hook != "xdp generic" {
			return fmt.Errorf("attachments %+v, want xdp generic on lo", atts)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "falling back to generic XDP") {
		t.Errorf("no fallback log line:\n%s", logs.String())
	}
}

// TestOutdatedPins: pins of an older xdpsec (a map this one needs is not
// there) are refused with the remedy, and `load` again upgrades them in
// place.
func TestOutdatedPins(t *testing.T) {
	g := newGateway(t)
	g.load(t, loader.TCAuto)
	if err := os.Remove(filepath.Join(g.pinDir, maps.MapsDir, maps.PinSPDPrefix6)); err != nil {
		t.Fatal(err)
	}
	_, err := maps.OpenPinned(g.pinDir)
	if !errors.Is(err, maps.ErrOutdated) || !strings.Contains(err.Error(), "xdpsec load") || !strings.Contains(err.Error(), maps.PinSPDPrefix6) {
		t.Fatalf("opening pins without %s: %v, want ErrOutdated naming it and the remedy", maps.PinSPDPrefix6, err)
	}
	g.load(t, loader.TCAuto)
	g.maps(t)
}

// TestUpgradeKeepsCounters: pins of an older xdpsec with fewer counters
// (its stats map is smaller) are upgraded in place, their counts kept.
func TestUpgradeKeepsCounters(t *testing.T) {
	g := newGateway(t)
	g.load(t, loader.TCAuto)
	path := filepath.Join(g.pinDir, maps.MapsDir, maps.PinStats)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	ncpu, err := ebpf.PossibleCPU()
	if err != nil {
		t.Fatal(err)
	}
	older, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.PerCPUArray, KeySize: 4, ValueSize: 16, MaxEntries: 17})
	if err != nil {
		t.Fatal(err)
	}
	defer older.Close()
	vals := make([]bpf.XdpsecXsCounterValue, ncpu)
	vals[0] = bpf.XdpsecXsCounterValue{Packets: 7, Bytes: 700}
	if err := older.Put(uint32(bpf.XdpsecXsCounterXS_CNT_DROP_NO_SA), vals); err != nil {
		t.Fatal(err)
	}
	if err := older.Pin(path); err != nil {
		t.Fatal(err)
	}
	g.load(t, loader.TCAuto)
	s := g.maps(t)
	if got := counter(t, s, "no_sa"); got != 7 {
		t.Errorf("no_sa after the upgrade = %d, want the 7 counted before", got)
	}
	if got := counter(t, s, "stashed"); got != 0 {
		t.Errorf("stashed after the upgrade = %d, want 0", got)
	}
}
