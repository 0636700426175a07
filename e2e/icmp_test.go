package e2e

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xdpsec/xdpsec/internal/testenv"
)

// TestDaemonICMPSelectors: policy-based, CHILD_SA net protects echo
// requests (ICMP type 8, ICMPv6 128) and CHILD_SA reply echo replies (0,
// 129) between the LANs (charon's semantics: one type per selector pair,
// in both directions). The kernel policies carry the types (type in the
// source port, code in the destination port), a ping passes through the
// two CHILD_SAs, and a type no selector allows (ICMP timestamp request 13,
// ICMPv6 node information query 139) does not go into the tunnel.
func TestDaemonICMPSelectors(t *testing.T) { forFamilies(t, testDaemonICMPSelectors) }

func testDaemonICMPSelectors(t *testing.T, f family) {
	proto, request, reply, other := "icmp", 8, 0, byte(13)
	if f == ipv6 {
		proto, request, reply, other = "ipv6-icmp", 128, 129, 139
	}
	dp := newDaemonPair(t, f, tunnelConf{tsSuffix: fmt.Sprintf("[%s/%d]", proto, request),
		moreChildren: []childConf{{"reply", fmt.Sprintf("[%s/%d]", proto, reply)}}})
	p := dp.pair
	// Initiating net brought up net alone (issue 22, defect 2): reply
	// comes by its own name.
	if hasChild(dp.ga, "reply") {
		t.Error("initiate --child net brought up reply as well")
	}
	if out := dp.ga.ok("initiate", "--child", "reply", "--timeout", "30s"); !strings.Contains(out, "established") {
		t.Errorf("initiate reply said: %s", out)
	}
	dp.ga.waitChild("reply", 10*time.Second)
	dp.gb.waitChild("reply", 10*time.Second)
	for _, g := range []*gateway{dp.ga, dp.gb} {
		out, err := run(g.Netns, "", "ip", "xfrm", "policy")
		if err != nil {
			t.Fatal(err)
		}
		for _, typ := range []int{request, reply} {
			if want := fmt.Sprintf("proto %s type %d code 0", proto, typ); !strings.Contains(out, want) {
				t.Errorf("site %s: `ip xfrm policy` lacks %q:\n%s", g.name, want, out)
			}
		}
	}

	const n = 5
	if got := ping(t, p.a.lanH, p.a.lanA, p.b.lanA, n, 5); got != n {
		t.Fatalf("ping LAN A %s → LAN B %s: %d of %d answered", p.a.lanA, p.b.lanA, got, n)
	}
	req, rep := dp.ga.child("net"), dp.ga.child("reply")
	if req.PacketsOut < n || rep.PacketsIn < n {
		t.Errorf("site A: CHILD_SA net sent %d packets, reply received %d: want the %d echo requests and replies", req.PacketsOut, rep.PacketsIn, n)
	}

	before := stateStats(t, dp.ga.Netns)
	if err := sendICMP(p.a.lanH, p.a.lanA, p.b.lanA, other, n); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	after := stateStats(t, dp.ga.Netns)
	for spi, s := range after {
		if s != before[spi] {
			t.Errorf("site A: SA %.8x counted %d packets of type %d, which no selector allows", spi, s.packets-before[spi].packets, other)
		}
	}
	if b := dp.gb.child("net"); b.PacketsIn != req.PacketsOut {
		t.Errorf("site B: CHILD_SA net received %d packets, A sent %d before the type %d messages", b.PacketsIn, req.PacketsOut, other)
	}
}

// hasChild reports whether g has an installed CHILD_SA of that name.
func hasChild(g *gateway, name string) bool {
	for _, sa := range g.sas() {
		for _, c := range sa.Children {
			if c.Name == name && c.State == "INSTALLED" {
				return true
			}
		}
	}
	return false
}

// sendICMP sends count ICMP or ICMPv6 messages of type typ (code 0, 20
// bytes) from src to dst in ns through a raw socket; the kernel fills in
// an ICMPv6 checksum.
func sendICMP(ns *testenv.Netns, src, dst netip.Addr, typ byte, count int) error {
	return ns.Do(func() error {
		af, proto := syscall.AF_INET6, syscall.IPPROTO_ICMPV6
		var from, to syscall.Sockaddr = &syscall.SockaddrInet6{Addr: src.As16()}, &syscall.SockaddrInet6{Addr: dst.As16()}
		if dst.Is4() {
			af, proto = syscall.AF_INET, syscall.IPPROTO_ICMP
			from, to = &syscall.SockaddrInet4{Addr: src.As4()}, &syscall.SockaddrInet4{Addr: dst.As4()}
		}
		fd, err := syscall.Socket(af, syscall.SOCK_RAW, proto)
		if err != nil {
			return err
		}
		defer syscall.Close(fd)
		if err := syscall.Bind(fd, from); err != nil {
			return err
		}
		for seq := range count {
			msg := make([]byte, 20)
			msg[0] = typ
			binary.BigEndian.PutUint16(msg[4:], 0x1cc)
			binary.BigEndian.PutUint16(msg[6:], uint16(seq))
			if !dst.Is6() {
				binary.BigEndian.PutUint16(msg[2:], icmpChecksum(msg))
			}
			if err := syscall.Sendto(fd, msg, 0, to); err != nil {
				return err
			}
		}
		return nil
	})
}

// icmpChecksum is the Internet checksum (RFC 1071) of an ICMP message
// whose checksum field is zero.
func icmpChecksum(b []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}
