package bpf_test

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/xdpsec/xdpsec/internal/packet"
	"github.com/xdpsec/xdpsec/loader"
	"github.com/xdpsec/xdpsec/maps"
)

var (
	lanHost  = netip.MustParseAddr("10.1.0.10")
	remote   = netip.MustParseAddr("10.2.0.20")
	lanHost6 = netip.MustParseAddr("fd00:1::10")
	remote6  = netip.MustParseAddr("fd00:2::20")
)

func pol(id uint32, src, dst string, action maps.Action, mod ...func(*maps.Policy)) maps.Policy {
	p := maps.Policy{
		ID: id, Src: netip.MustParsePrefix(src), Dst: netip.MustParsePrefix(dst),
		DportLo: 0, DportHi: 0xffff, Action: action,
	}
	if action == maps.ActionProtect {
		p.IfID = 100 + id
	}
	for _, m := range mod {
		m(&p)
	}
	return p
}

func ports(proto uint8, lo, hi uint16) func(*maps.Policy) {
	return func(p *maps.Policy) { p.Proto, p.DportLo, p.DportHi = proto, lo, hi }
}

func prio(n uint32) func(*maps.Policy) { return func(p *maps.Policy) { p.Priority = n } }

func mss(n uint16) func(*maps.Policy) { return func(p *maps.Policy) { p.MSS = n } }

func tcpPkt(src, dst netip.Addr, dport uint16, flags uint8, opts []byte) []byte {
	return packet.Build(packet.Spec{Src: src, Dst: dst, Proto: packet.ProtoTCP,
		Payload: packet.TCP(src, dst, 40000, dport, flags, opts, nil)})
}

func udpPkt(src, dst netip.Addr, dport uint16) []byte {
	return packet.Build(packet.Spec{Src: src, Dst: dst, Proto: packet.ProtoUDP,
		Payload: packet.UDP(src, dst, 40000, dport, []byte("payload"))})
}

type tcFixture struct {
	name     string
	policies []maps.Policy
	packet   []byte
	ret      int32
	policy   uint32 // matched policy ID, 0 for none
	action   maps.Action
	mark     uint32
	counters map[string]uint64
	check    func(*testing.T, loader.TCVerdict)
}

// mssOf finds the MSS option of the TCP segment in an IPv4 frame.
func mssOf(t *testing.T, frame []byte) uint16 {
	t.Helper()
	seg := frame[14+20:]
	hlen := int(seg[12]>>4) * 4
	for i := 20; i < hlen; {
		switch seg[i] {
		case 0:
			t.Fatal("no MSS option")
		case 1:
			i++
			continue
		case 2:
			return binary.BigEndian.Uint16(seg[i+2:])
		}
		i += int(seg[i+1])
	}
	t.Fatal("no MSS option")
	return 0
}

func checkTCP(t *testing.T, frame []byte) {
	t.Helper()
	if !packet.TCPChecksumOK(lanHost, remote, frame[14+20:]) {
		t.Error("TCP checksum wrong after the program ran")
	}
}

func TestTCLanFixtures(t *testing.T) {
	protect := maps.ActionProtect
	fixtures := []tcFixture{
		{
			name: "no policies: passed, counted", packet: udpPkt(lanHost, remote, 53),
			ret: loader.TCActUnspec, counters: map[string]uint64{"no_policy": 1},
		},
		{
			name:     "ipv4 protect sets the tunnel's if_id",
			policies: []maps.Policy{pol(1, "10.1.0.0/16", "10.2.0.0/16", protect)},
			packet:   udpPkt(lanHost, remote, 53),
			ret:      loader.TCActUnspec, policy: 1, action: protect, mark: 101,
			counters: map[string]uint64{"protect": 1},
		},
		{
			name:     "bypass",
			policies: []maps.Policy{pol(1, "10.1.0.0/16", "10.2.0.0/16", maps.ActionBypass)},
			packet:   udpPkt(lanHost, remote, 53),
			ret:      loader.TCActUnspec, policy: 1, action: maps.ActionBypass,
			counters: map[string]uint64{"bypass": 1},
		},
		{
			name:     "discard drops",
			policies: []maps.Policy{pol(1, "0.0.0.0/0", "10.2.0.0/16", maps.ActionDiscard)},
			packet:   udpPkt(lanHost, remote, 53),
			ret:      loader.TCActShot, policy: 1, action: maps.ActionDiscard,
			counters: map[string]uint64{"discard": 1},
		},
		{
			name: "destination specificity beats source specificity",
			policies: []maps.Policy{
				pol(1, "10.1.0.10/32", "10.0.0.0/8", maps.ActionDiscard),
				pol(2, "0.0.0.0/0", "10.2.0.0/24", protect),
			},
			packet: udpPkt(lanHost, remote, 53),
			ret:    loader.TCActUnspec, policy: 2, action: protect, mark: 102,
			counters: map[string]uint64{"protect": 1},
		},
		{
			name: "same destination: longer source wins",
			policies: []maps.Policy{
				pol(1, "10.0.0.0/8", "10.2.0.0/16", maps.ActionBypass),
				pol(2, "10.1.0.0/16", "10.2.0.0/16", protect),
			},
			packet: udpPkt(lanHost, remote, 53),
			ret:    loader.TCActUnspec, policy: 2, action: protect, mark: 102,
			counters: map[string]uint64{"protect": 1},
		},
		{
			name: "equal selectors: lower priority value wins",
			policies: []maps.Policy{
				pol(1, "10.1.0.0/16", "10.2.0.0/16", maps.ActionBypass, prio(20)),
				pol(2, "10.1.0.0/16", "10.2.0.0/16", maps.ActionDiscard, prio(10)),
			},
			packet: udpPkt(lanHost, remote, 53),
			ret:    loader.TCActShot, policy: 2, action: maps.ActionDiscard,
			counters: map[string]uint64{"discard": 1},
		},
		{
			name: "port range matches",
			policies: []maps.Policy{
				pol(1, "10.1.0.0/16", "10.2.0.0/16", protect, ports(6, 440, 450)),
				pol(2, "10.1.0.0/16", "10.2.0.0/16", maps.ActionBypass, prio(5)),
			},
			packet: tcpPkt(lanHost, remote, 443, packet.TCPAck, nil),
			ret:    loader.TCActUnspec, policy: 1, action: protect, mark: 101,
			counters: map[string]uint64{"protect": 1},
		},
		{
			name: "port outside the range falls to the next policy",
			policies: []maps.Policy{
				pol(1, "10.1.0.0/16", "10.2.0.0/16", protect, ports(6, 440, 450)),
				pol(2, "10.1.0.0/16", "10.2.0.0/16", maps.ActionBypass, prio(5)),
			},
			packet: tcpPkt(lanHost, remote, 80, packet.TCPAck, nil),
			ret:    loader.TCActUnspec, policy: 2, action: maps.ActionBypass,
			counters: map[string]uint64{"bypass": 1},
		},
		{
			name: "protocol mismatch falls back to a shorter destination",
			policies: []maps.Policy{
				pol(1, "10.1.0.0/16", "10.2.0.20/32", maps.ActionDiscard, ports(6, 0, 0xffff)),
				pol(2, "10.1.0.0/16", "10.2.0.0/16", protect),
			},
			packet: udpPkt(lanHost, remote, 53),
			ret:    loader.TCActUnspec, policy: 2, action: protect, mark: 102,
			counters: map[string]uint64{"protect": 1},
		},
		{
			name:     "ipv6 protect",
			policies: []maps.Policy{pol(7, "fd00:1::/64", "fd00:2::/64", protect)},
			packet:   udpPkt(lanHost6, remote6, 53),
			ret:      loader.TCActUnspec, policy: 7, action: protect, mark: 107,
			counters: map[string]uint64{"protect": 1},
		},
		{
			name:     "ipv4 policies do not match ipv6",
			policies: []maps.Policy{pol(1, "0.0.0.0/0", "0.0.0.0/0", maps.ActionDiscard)},
			packet:   udpPkt(lanHost6, remote6, 53),
			ret:      loader.TCActUnspec, counters: map[string]uint64{"no_policy": 1},
		},
		{
			name:     "VLAN-tagged frame",
			policies: []maps.Policy{pol(1, "10.1.0.0/16", "10.2.0.0/16", maps.ActionDiscard)},
			packet: packet.Build(packet.Spec{Src: lanHost, Dst: remote, VLAN: 12, Proto: packet.ProtoUDP,
				Payload: packet.UDP(lanHost, remote, 1, 2, nil)}),
			ret: loader.TCActShot, policy: 1, action: maps.ActionDiscard,
			counters: map[string]uint64{"discard": 1},
		},
		{
			name: "non-first fragment matches only port-less policies",
			policies: []maps.Policy{
				pol(1, "10.1.0.0/16", "10.2.0.0/16", maps.ActionDiscard, ports(17, 53, 53)),
				pol(2, "10.1.0.0/16", "10.2.0.0/16", protect, ports(17, 0, 0xffff), prio(9)),
			},
			packet: packet.Build(packet.Spec{Src: lanHost, Dst: remote, Proto: packet.ProtoUDP,
				Fragment: true, FragOffset: 100, Payload: make([]byte, 64)}),
			ret: loader.TCActUnspec, policy: 2, action: protect, mark: 102,
			counters: map[string]uint64{"protect": 1, "tc_fragment": 1},
		},
		{
			name:     "MSS of a protected SYN clamped, checksum fixed",
			policies: []maps.Policy{pol(1, "10.1.0.0/16", "10.2.0.0/16", protect, mss(1360))},
			packet:   tcpPkt(lanHost, remote, 443, packet.TCPSyn, packet.MSSOption(1460)),
			ret:      loader.TCActUnspec, policy: 1, action: protect, mark: 101,
			counters: map[string]uint64{"protect": 1, "mss_clamp": 1},
			check: func(t *testing.T, v loader.TCVerdict) {
				if got := mssOf(t, v.Packet); got != 1360 {
					t.Errorf("MSS %d after clamping, want 1360", got)
				}
				checkTCP(t, v.Packet)
			},
		},
		{
			name:     "MSS option after NOPs and timestamps found and clamped",
			policies: []maps.Policy{pol(1, "10.1.0.0/16", "10.2.0.0/16", protect, mss(1200))},
			packet: tcpPkt(lanHost, remote, 443, packet.TCPSyn,
				append([]byte{1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7}, packet.MSSOption(1460)...)),
			ret: loader.TCActUnspec, policy: 1, action: protect, mark: 101,
			counters: map[string]uint64{"protect": 1, "mss_clamp": 1},
			check: func(t *testing.T, v loader.TCVerdict) {
				if got := mssOf(t, v.Packet); got != 1200 {
					t.Errorf("MSS %d after clamping, want 1200", got)
				}
				checkTCP(t, v.Packet)
			},
		},
		{
			name:     "MSS already below the clamp left alone",
			policies: []maps.Policy{pol(1, "10.1.0.0/16", "10.2.0.0/16", protect, mss(1360))},
			packet:   tcpPkt(lanHost, remote, 443, packet.TCPSyn, packet.MSSOption(1300)),
			ret:      loader.TCActUnspec, policy: 1, action: protect, mark: 101,
			counters: map[string]uint64{"protect": 1},
			check: func(t *testing.T, v loader.TCVerdict) {
				if got := mssOf(t, v.Packet); got != 1300 {
					t.Errorf("MSS %d, want it untouched at 1300", got)
				}
				checkTCP(t, v.Packet)
			},
		},
		{
			name:     "MSS of a non-SYN segment left alone",
			policies: []maps.Policy{pol(1, "10.1.0.0/16", "10.2.0.0/16", protect, mss(1000))},
			packet:   tcpPkt(lanHost, remote, 443, packet.TCPAck, packet.MSSOption(1460)),
			ret:      loader.TCActUnspec, policy: 1, action: protect, mark: 101,
			counters: map[string]uint64{"protect": 1},
		},
		{
			name:     "protect with a redirect interface",
			policies: []maps.Policy{pol(1, "10.1.0.0/16", "10.2.0.0/16", protect, func(p *maps.Policy) { p.Redirect = 1 })},
			packet:   udpPkt(lanHost, remote, 53),
			ret:      loader.TCActRedirect, policy: 1, action: protect, mark: 101,
			counters: map[string]uint64{"protect": 1},
		},
		{
			name:     "not IP",
			policies: []maps.Policy{pol(1, "0.0.0.0/0", "0.0.0.0/0", maps.ActionDiscard)},
			packet:   append([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1, 0x08, 0x06}, make([]byte, 28)...),
			ret:      loader.TCActUnspec, counters: map[string]uint64{"other": 1},
		},
	}

	for _, f := range fixtures {
		t.Run(f.name, func(t *testing.T) {
			objs, s := loadObjects(t)
			if _, err := s.SPD.Replace(f.policies); err != nil {
				t.Fatal(err)
			}
			v, err := loader.RunTC(objs.TcLan, f.packet)
			if err != nil {
				t.Fatal(err)
			}
			if v.Ret != f.ret || v.PolicyID != f.policy || v.Action != f.action || v.Mark != f.mark {
				t.Errorf("got ret %d policy %d action %s mark %d; want ret %d policy %d action %s mark %d",
					v.Ret, v.PolicyID, maps.ActionName(v.Action), v.Mark, f.ret, f.policy, maps.ActionName(f.action), f.mark)
			}
			checkCounters(t, s, f.counters)
			list, err := s.SPD.List()
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range list {
				want := uint64(0)
				if p.ID == f.policy {
					want = 1
				}
				if p.Packets != want || (want == 1 && p.Bytes != uint64(len(f.packet))) {
					t.Errorf("policy %d counters %d packets %d bytes, want %d packets", p.ID, p.Packets, p.Bytes, want)
				}
			}
			if f.check != nil {
				f.check(t, v)
			}
		})
	}
}

// TestTCLanProbeNotCounted checks that a probe gets the same answer as a
// packet and moves no counter.
func TestTCLanProbeNotCounted(t *testing.T) {
	objs, s := loadObjects(t)
	if _, err := s.SPD.Replace([]maps.Policy{pol(3, "10.1.0.0/16", "10.2.0.0/16", maps.ActionDiscard)}); err != nil {
		t.Fatal(err)
	}
	v, err := loader.ProbeTC(objs.TcLan, udpPkt(lanHost, remote, 53))
	if err != nil {
		t.Fatal(err)
	}
	if v.PolicyID != 3 || v.Action != maps.ActionDiscard || v.Ret != loader.TCActShot {
		t.Errorf("probe answered policy %d action %s ret %d", v.PolicyID, maps.ActionName(v.Action), v.Ret)
	}
	checkCounters(t, s, nil)
	list, _ := s.SPD.List()
	if list[0].Packets != 0 {
		t.Errorf("probe counted on the policy")
	}
	if _, err := loader.RunTC(objs.TcLan, udpPkt(lanHost, remote, 53)); err != nil {
		t.Fatal(err)
	}
	checkCounters(t, s, map[string]uint64{"discard": 1})
}
