package ike_test

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/xdpsec/xdpsec/ike"
	"github.com/xdpsec/xdpsec/ike/isakmp"
)

// attrBody encodes an Attribute payload's body, a fuzz seed.
func attrBody(t isakmp.CfgType, attrs ...isakmp.Attribute) []byte {
	b, _ := (&isakmp.ConfigAttributes{CfgType: t, Identifier: 7, Attributes: attrs}).Body()
	return b
}

func seedAttrBodies(f *testing.F) {
	for _, b := range [][]byte{
		attrBody(isakmp.CfgReply, isakmp.ModeCfgAttribute(isakmp.XAuthUserName, []byte("alice")),
			isakmp.ModeCfgAttribute(isakmp.XAuthUserPassword, []byte("alice's password"))),
		attrBody(isakmp.CfgReply, isakmp.ModeCfgAttribute(isakmp.XAuthUserName, nil)),
		attrBody(isakmp.CfgAck, isakmp.ModeCfgAttribute(isakmp.XAuthStatus, nil)),
		attrBody(isakmp.CfgSet, isakmp.BasicAttr(isakmp.XAuthStatus, 1)),
		attrBody(isakmp.CfgRequest, isakmp.ModeCfgAttribute(isakmp.XAuthUserName, nil), isakmp.ModeCfgAttribute(isakmp.XAuthUserPassword, nil)),
		attrBody(isakmp.CfgRequest, isakmp.ModeCfgAttribute(isakmp.InternalIP4Address, nil), isakmp.ModeCfgAttribute(isakmp.InternalIP6Address, make([]byte, 17)),
			isakmp.ModeCfgAttribute(isakmp.InternalIP4DNS, nil), isakmp.ModeCfgAttribute(isakmp.UnitySplitInclude, nil)),
		attrBody(isakmp.CfgReply, isakmp.ModeCfgAttribute(isakmp.InternalIP4Address, []byte{10, 3, 0, 1}),
			isakmp.ModeCfgAttribute(isakmp.InternalIP4DNS, []byte{10, 3, 0, 53})),
		attrBody(isakmp.CfgSet, isakmp.ModeCfgAttribute(isakmp.InternalIP4Address, []byte{10, 3, 0, 1})),
		{}, {9, 0, 0, 0, 0x80},
	} {
		f.Add(uint32(0x01020304), b)
	}
}

// FuzzV1Transaction sends authentic Transaction messages (right keys, IV
// and HASH) with arbitrary attributes to both roles at each point of
// XAuth and Mode Config: the gateway awaiting the XAuth reply and the
// client awaiting the request, each as a new request and as the answer
// to what the other awaits, then on the established SAs. Nothing may
// panic; the engines must still run their timers and shut down clean.
func FuzzV1Transaction(f *testing.F) {
	seedAttrBodies(f)
	f.Fuzz(func(t *testing.T, mid uint32, body []byte) {
		if mid == 0 {
			mid = 1
		}
		tb := newXAuthBed(t, xauthOptions{user: "alice", password: "alice's password"})
		tb.quiet = true
		if _, err := tb.a.e.Initiate("gw"); err != nil {
			t.Fatal(err)
		}
		// Deliver until the gateway sent its XAuth request; lose it.
		for i := 0; i < 20 && tb.gatewayAwaiting() == 0; i++ {
			tb.net.Deliver()
		}
		tb.net.Drop()
		inject := func(p *peer, to netip.Addr, from netip.Addr, sa uint32, m uint32) {
			d, err := p.e.V1TransactionAsPeer(sa, m, body)
			if err != nil {
				return
			}
			binary.BigEndian.PutUint32(d[20:], m)
			p.e.HandleDatagram(ike.Datagram{Local: netip.AddrPortFrom(to, 500), Remote: netip.AddrPortFrom(from, 500), Data: d})
		}
		for _, step := range []string{"xauth", "established"} {
			for _, p := range []*peer{tb.a, tb.b} {
				sas := p.sas()
				if len(sas) == 0 {
					continue
				}
				to, from := addrA, addrB
				if p == tb.b {
					to, from = addrB, addrA
				}
				inject(p, to, from, sas[0].ID, mid)
				if m := p.e.V1AwaitedTransaction(sas[0].ID); m != 0 {
					inject(p, to, from, sas[0].ID, m)
				}
			}
			tb.net.Flush()
			if step == "xauth" {
				tb.advance(3 * time.Second) // the gateway retransmits its request
				tb.net.Flush()
			}
		}
		tb.advance(2 * time.Minute)
	})
}

// gatewayAwaiting is the message ID of the Transaction request the
// gateway (b) awaits an answer to, 0 if none.
func (tb *testbed) gatewayAwaiting() uint32 {
	for _, sa := range tb.b.sas() {
		if m := tb.b.e.V1AwaitedTransaction(sa.ID); m != 0 {
			return m
		}
	}
	return 0
}
