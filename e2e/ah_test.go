package e2e

import (
	"fmt"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/xdpsec/xdpsec/internal/packet"
	"github.com/xdpsec/xdpsec/maps"
)

// AH (RFC 4302) CHILD_SAs over the guest kernel: our daemon on both
// gateways and against charon (kernel-netlink), both IKE versions,
// tunnel and transport mode; xdp_wan looks AH up by SPI like ESP.

// wantAH checks a gateway's CHILD_SA net is AH everywhere: list-sas, the
// kernel's SAs (`ip xfrm state`: proto ah, hmac(sha256), no encryption)
// and policies (tmpl proto ah), and xdp_wan's SA table (an AH entry for
// the inbound SPI that saw at least what the kernel authenticated).
func wantAH(t *testing.T, g *gateway) {
	t.Helper()
	c := g.child("net")
	if c.Protocol != "AH" || !strings.HasPrefix(c.Proposal, "AH:HMAC_SHA2_256_128") || c.Encap {
		t.Errorf("site %s: CHILD_SA net %s %s encap %v, want AH:HMAC_SHA2_256_128 without encapsulation", g.name, c.Protocol, c.Proposal, c.Encap)
	}
	if out := g.ok("list-sas"); !strings.Contains(out, "AH:HMAC_SHA2_256_128") {
		t.Errorf("site %s: list-sas does not show AH:\n%s", g.name, out)
	}
	states, _ := run(g.Netns, "", "ip", "xfrm", "state")
	for _, spi := range []string{c.SPIIn, c.SPIOut} {
		if !strings.Contains(states, "proto ah spi 0x"+spi) {
			t.Errorf("site %s: no AH SA with SPI %s in `ip xfrm state`:\n%s", g.name, spi, states)
		}
	}
	if !strings.Contains(states, "auth-trunc hmac(sha256)") || strings.Contains(states, "proto esp") || strings.Contains(states, "enc ") {
		t.Errorf("site %s: `ip xfrm state` is not AH with hmac(sha256) alone:\n%s", g.name, states)
	}
	if g.outer.Is4() != strings.Contains(states, "align4") {
		// RFC 4302 3.3.3.2.1: 32-bit alignment over IPv4, 64 over IPv6.
		t.Errorf("site %s: AH SAs over %s with the wrong ICV alignment:\n%s", g.name, g.outer, states)
	}
	if pol, _ := run(g.Netns, "", "ip", "xfrm", "policy"); !strings.Contains(pol, "proto ah") || strings.Contains(pol, "proto esp") {
		t.Errorf("site %s: policy templates are not AH:\n%s", g.name, pol)
	}
	st := stateStats(t, g.Netns)
	if in := st[parseSPI(t, c.SPIIn)]; in.packets == 0 || in.packets != c.PacketsIn {
		t.Errorf("site %s: inbound AH SA %s: kernel %d packets, list-sas %d", g.name, c.SPIIn, in.packets, c.PacketsIn)
	}
	s, err := g.maps.SA.Get(maps.SAProtoAH, parseSPI(t, c.SPIIn), g.outer)
	if err != nil {
		t.Errorf("site %s: AH SA %s in the BPF table: %v", g.name, c.SPIIn, err)
	} else if s.RxSeenPackets < c.PacketsIn || s.RxSeenPackets != c.RxSeenPackets {
		t.Errorf("site %s: xdp_wan's rx_seen %d for AH SA %s, list-sas %d, the kernel authenticated %d",
			g.name, s.RxSeenPackets, c.SPIIn, c.RxSeenPackets, c.PacketsIn)
	}
	if _, err := g.maps.SA.Get(maps.SAProtoESP, parseSPI(t, c.SPIIn), g.outer); err == nil {
		t.Errorf("site %s: the AH SPI %s is in the BPF table as ESP too", g.name, c.SPIIn)
	}
}

// TestDaemonAH: our daemons negotiate AH CHILD_SAs (ah_proposals =
// sha256) and ping over them through the guest kernel: tunnel mode
// policy- and route-based (IPv6 outer addresses too), transport mode
// between the gateways, and IKEv1 Quick Mode.
func TestDaemonAH(t *testing.T) {
	for _, v := range []struct {
		name string
		fam  family
		conf tunnelConf
	}{
		{"tunnel", ipv4, tunnelConf{ah: "sha256"}},
		{"tunnel route-based ipv6", ipv6, tunnelConf{ah: "sha256", ifID: 0x51}},
		{"transport", ipv4, tunnelConf{ah: "sha256", mode: "transport"}},
		{"transport ipv6", ipv6, tunnelConf{ah: "sha256", mode: "transport"}},
		{"ikev1 tunnel", ipv4, tunnelConf{ah: "sha256", ikev1: true}},
		{"ikev1 transport", ipv4, tunnelConf{ah: "sha256", ikev1: true, mode: "transport"}},
	} {
		t.Run(strings.ReplaceAll(v.name, " ", "-"), func(t *testing.T) {
			dp := newDaemonPair(t, v.fam, v.conf)
			p := dp.pair
			const n = 10
			ns, src, dst := p.a.lanH, p.a.lanA, p.b.lanA
			if v.conf.mode == "transport" {
				ns, src, dst = p.a.Netns, p.a.outer, p.b.outer
			}
			if got := ping(t, ns, src, dst, n, 5); got != n {
				t.Fatalf("ping %s → %s over AH: %d of %d answered", src, dst, got, n)
			}
			wantAH(t, dp.ga)
			wantAH(t, dp.gb)
			ca, cb := dp.ga.child("net"), dp.gb.child("net")
			if ca.SPIIn != cb.SPIOut || ca.SPIOut != cb.SPIIn {
				t.Errorf("SPIs: A in/out %s/%s, B in/out %s/%s", ca.SPIIn, ca.SPIOut, cb.SPIIn, cb.SPIOut)
			}
			if ca.PacketsOut < n || cb.PacketsIn < n {
				t.Errorf("A sent %d packets on AH SA %s, B authenticated %d: want at least %d", ca.PacketsOut, ca.SPIOut, cb.PacketsIn, n)
			}
		})
	}
}

// rawAHSocket is a raw socket for AH payloads to dst (the kernel makes
// the IP header).
func rawAHSocket(dst netip.Addr) (int, unix.Sockaddr, error) {
	if dst.Is6() {
		fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_RAW, unix.IPPROTO_AH)
		return fd, &unix.SockaddrInet6{Addr: dst.As16()}, err
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_AH)
	return fd, &unix.SockaddrInet4{Addr: dst.As4()}, err
}

// sendAH sends n AH packets with the SPI (sequence numbers from 1, a
// made-up ICV) from s to dst.
func sendAH(t *testing.T, s *site, dst netip.Addr, spi uint32, n int) {
	t.Helper()
	err := s.Do(func() error {
		fd, to, err := rawAHSocket(dst)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		for i := range n {
			if err := unix.Sendto(fd, packet.AH(spi, uint32(i+1), 64), 0, to); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("send AH from site %s: %v", s.name, err)
	}
}

// TestDaemonInjectedAH: on an established AH tunnel, AH with an SPI A
// does not have is dropped by xdp_wan (no_sa, as `xdpsec stats` shows)
// before the kernel sees it; AH with the SPI of A's inbound ESP-less SA
// but sent as ESP is dropped too: the table keys SAs by protocol.
func TestDaemonInjectedAH(t *testing.T) { forFamilies(t, testDaemonInjectedAH) }

func testDaemonInjectedAH(t *testing.T, f family) {
	dp := newDaemonPair(t, f, tunnelConf{ah: "sha256"})
	p := dp.pair
	spiIn := parseSPI(t, dp.ga.child("net").SPIIn)
	noSA, noStates := dp.ga.counter("no_sa"), xfrmStat(t, p.a.Netns)["XfrmInNoStates"]
	const forged = 25
	sendAH(t, p.b, p.a.outer, spiIn^0x0000ff00, forged)
	sendESP(t, p.b, p.a.outer, spiIn, forged) // the AH SA's SPI, as ESP
	if got := dp.ga.counter("no_sa") - noSA; got != 2*forged {
		t.Errorf("no_sa moved by %d, sent %d AH packets for an unknown SPI and %d ESP packets for the AH SA's SPI", got, forged, forged)
	}
	if got := xfrmStat(t, p.a.Netns)["XfrmInNoStates"] - noStates; got != 0 {
		t.Errorf("the kernel saw %d of the dropped packets (XfrmInNoStates)", got)
	}
	stats := dp.ga.ok("stats")
	if m := regexp.MustCompile(`(?m)^xdp_wan\s+drop\s+no_sa\s+(\d+)`).FindStringSubmatch(stats); m == nil || m[1] != fmt.Sprint(dp.ga.counter("no_sa")) {
		t.Errorf("`xdpsec stats` does not show no_sa %d:\n%s", dp.ga.counter("no_sa"), stats)
	}
	if got := ping(t, p.a.lanH, p.a.lanA, p.b.lanA, 3, 5); got != 3 {
		t.Errorf("after the injection: %d of 3 pings answered over AH", got)
	}
}

// TestAHWithCharon: our daemon on gateway A, charon (kernel-netlink) on
// B, an AH CHILD_SA in tunnel mode negotiated in IKEv2 and IKEv1, each
// side initiating; LAN A pings LAN B over it, and both kernels hold the
// same AH SAs.
func TestAHWithCharon(t *testing.T) {
	for _, ikev1 := range []bool{false, true} {
		for _, charonInitiates := range []bool{false, true} {
			name := map[bool]string{false: "ikev2", true: "ikev1"}[ikev1] + map[bool]string{false: "/ours-initiates", true: "/charon-initiates"}[charonInitiates]
			t.Run(name, func(t *testing.T) {
				p := newPairWithLANs(t, ipv4)
				c := tunnelConf{ah: "sha256", ikev1: ikev1}
				ga := newGateway(t, p.a, swanctlConf(p, p.a, c))
				ga.start()
				_, vici := startCharon(t, p.b, swanctlConf(p, p.b, c))
				if charonInitiates {
					if out, err := run(p.b.Netns, "", "swanctl", "--initiate", "--child", "net", "--timeout", "30", "--uri", vici); err != nil {
						t.Fatalf("swanctl --initiate: %v\n%s", err, out)
					}
				} else {
					ga.ok("initiate", "--child", "net", "--timeout", "30s")
				}
				ga.waitChild("net", 10*time.Second)
				if got := ping(t, p.a.lanH, p.a.lanA, p.b.lanA, 10, 5); got != 10 {
					for _, s := range []*site{p.a, p.b} {
						states, _ := run(s.Netns, "", "ip", "-s", "xfrm", "state")
						pols, _ := run(s.Netns, "", "ip", "xfrm", "policy")
						var errs []string
						for k, v := range xfrmStat(t, s.Netns) {
							if v != 0 {
								errs = append(errs, fmt.Sprintf("%s %d", k, v))
							}
						}
						t.Logf("site %s: XFRM errors %v\n%s\n%s", s.name, errs, states, pols)
					}
					t.Fatalf("ping LAN A → LAN B over AH with charon: %d of 10 answered", got)
				}
				wantAH(t, ga)
				ca := ga.child("net")
				theirs, _ := run(p.b.Netns, "", "ip", "-s", "xfrm", "state")
				for _, spi := range []string{ca.SPIIn, ca.SPIOut} {
					if !strings.Contains(theirs, "proto ah spi 0x"+spi) {
						t.Errorf("charon's kernel has no AH SA %s:\n%s", spi, theirs)
					}
				}
				if b := stateStats(t, p.b.Netns)[parseSPI(t, ca.SPIOut)]; b.packets < 10 {
					t.Errorf("charon's inbound AH SA %s authenticated %d packets, want at least 10", ca.SPIOut, b.packets)
				}
			})
		}
	}
}
