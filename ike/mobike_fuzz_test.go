package ike_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/xdpsec/xdpsec/ike"
	"github.com/xdpsec/xdpsec/ike/message"
)

// FuzzMOBIKE runs address-update sequences between two MOBIKE engines:
// a program's steps move the initiator (into and out of a NAT), inject
// authentic INFORMATIONAL requests with arbitrary MOBIKE notifies
// (UPDATE_SA_ADDRESSES, COOKIE2, ADDITIONAL_*_ADDRESS, NAT detection) and
// message IDs, from arbitrary addresses and to either end, and reorder,
// lose and delay datagrams. Whatever happens, nothing panics, and each
// end's ESP SAs and policies sit on its IKE SA's path with the UDP
// encapsulation its NAT state asks for, with the SPIs they were made
// with: no update, however forged or late, leaves the dataplane somewhere
// the IKE SA is not.
//
//	go test ./ike -run '^$' -fuzz FuzzMOBIKE -fuzztime 2m
func FuzzMOBIKE(f *testing.F) {
	f.Add([]byte{0, 1, 3, 0, 3, 0})
	f.Add([]byte{1, 0x01, 2, 0, 1, 0x0f, 2, 1, 3, 0})
	f.Add([]byte{0, 3, 3, 0, 0, 2, 3, 2, 4, 0})
	f.Add([]byte{2, 0x03, 0, 0, 1, 0x31, 3, 2, 0, 1})
	addrs := []netip.Addr{addrA, addrA2, addrA3, insideA, netip.MustParseAddr("2001:db8::1"), spoofer}
	f.Fuzz(func(t *testing.T, prog []byte) {
		if len(prog) > 64 {
			return
		}
		panicked := func(c *ike.Config) {
			c.OnPanic = func(r any) { t.Fatalf("the engine panicked: %v", r) }
			c.RetransmitTimeout, c.RetransmitBase, c.RetransmitTries = time.Second, 1.5, 2
		}
		tb := newMobikeBed(t, bedOptions{cfgA: panicked, cfgB: panicked, quiet: true})
		tb.net.AddNAT(natInner, natPubA, 30000)
		spisBefore := spis(tb.a)
		at := addrA
		for len(prog) >= 2 {
			op, arg := prog[0], prog[1]
			prog = prog[2:]
			switch op % 5 {
			case 0: // a roams
				to := addrs[int(arg)%4]
				if to != at {
					tb.net.Attach(at, nil)
					tb.net.Attach(to, tb.a.e)
					at = to
				}
				tb.a.e.AddressesChanged([]netip.Addr{to})
			case 1, 2: // an authentic request with MOBIKE notifies, to b (1) or a (2)
				var ns []*message.Notify
				if arg&1 != 0 {
					ns = append(ns, mkNotify(message.UPDATE_SA_ADDRESSES, nil))
				}
				if arg&2 != 0 {
					ns = append(ns, mkNotify(message.COOKIE2, make([]byte, int(arg>>4)*5)))
				}
				if arg&4 != 0 {
					ns = append(ns, mkNotify(message.ADDITIONAL_IP4_ADDRESS, []byte{192, 0, 2, arg}))
					ns = append(ns, mkNotify(message.ADDITIONAL_IP6_ADDRESS, make([]byte, int(arg)%17)))
				}
				if arg&8 != 0 {
					ns = append(ns, mkNotify(message.NO_ADDITIONAL_ADDRESSES, nil))
				}
				if arg&0x40 != 0 {
					ns = append(ns, mkNotify(message.NAT_DETECTION_SOURCE_IP, make([]byte, 20)), mkNotify(message.NAT_DETECTION_DESTINATION_IP, make([]byte, 20)))
				}
				to, flags := tb.b, message.FlagInitiator
				if op%5 == 2 {
					to, flags = tb.a, 0
				}
				sas := to.sas()
				if len(sas) == 0 || len(ns) == 0 {
					continue
				}
				data, err := to.e.SealAsPeer(sas[0].ID, message.Header{ExchangeType: message.INFORMATIONAL, MessageID: uint32(arg>>5) % 5, Flags: flags},
					message.PayloadN, notifyChain(ns...))
				if err != nil {
					continue
				}
				from := netip.AddrPortFrom(addrs[int(arg>>3)%len(addrs)], ike.PortNATT)
				to.e.HandleDatagram(ike.Datagram{Local: sas[0].Local, Remote: from, Data: withMarker(data)})
			case 3: // the network
				switch arg % 4 {
				case 0:
					tb.net.Deliver()
				case 1:
					tb.net.DropAt(int(arg>>2) % 4)
				case 2:
					tb.net.Reverse()
				case 3:
					tb.net.Flush()
				}
			case 4:
				tb.advance(time.Duration(arg%16) * time.Second)
			}
		}
		tb.advance(60 * time.Second)
		for _, p := range []*peer{tb.a, tb.b} {
			sas := p.sas()
			if len(sas) == 0 {
				if n := len(p.dp.SAs()); n != 0 {
					t.Fatalf("%s: no IKE_SA, %d ESP SAs left", p.name, n)
				}
				continue
			}
			sa := sas[0]
			if sa.State != ike.IKESAEstablished {
				continue
			}
			if got := spis(p); len(got) != len(spisBefore) || (len(got) > 0 && got[0] != spisBefore[0]) {
				continue // a DELETE went through: other SPIs are fine
			}
			wantPath(t, p, sa.Local.Addr(), sa.Remote.Addr(), sa.NATLocal || sa.NATRemote)
		}
	})
}
