package ike

import (
	"encoding/binary"
	"log/slog"
	"net/netip"
	"testing"

	"github.com/xdpsec/xdpsec/ike/message"
	"github.com/xdpsec/xdpsec/ike/pool"
)

// cpSA is an IKE SA of a connection with a v4 and a v6 pool, enough for
// the configuration payload's handling.
func cpSA(t testing.TB) (*ikeSA, *pool.Pool, *pool.Pool) {
	p4, err := pool.FromRange("v4", netip.MustParseAddr("10.3.200.1"), netip.MustParseAddr("10.3.200.2"))
	if err != nil {
		t.Fatal(err)
	}
	p6, err := pool.FromPrefix("v6", netip.MustParsePrefix("fd00::/126"))
	if err != nil {
		t.Fatal(err)
	}
	e := &Engine{cfg: Config{Pools: []*Pool{
		{Leases: p4, DNS: []netip.Addr{netip.MustParseAddr("10.3.0.1"), netip.MustParseAddr("fd00::53")},
			Subnets: []netip.Prefix{netip.MustParsePrefix("10.3.0.0/16"), netip.MustParsePrefix("fd00:1::/64")}, DNSDomains: []string{"corp.example"}},
		{Leases: p6},
	}}}
	c := &connection{Connection: Connection{Name: "rw", Pools: []string{"v4", "v6", "gone"}}}
	sa := &ikeSA{ikeSACommon: ikeSACommon{e: e, conn: c, log: slog.New(slog.DiscardHandler), remoteID: MustParseIdentity("carol")}}
	return sa, p4, p6
}

// FuzzConfigRequest: whatever attributes a CFG_REQUEST holds, the
// gateway leases only addresses of its pools, answers with well-formed
// attributes, and gives every lease back when the SA goes.
func FuzzConfigRequest(f *testing.F) {
	f.Add([]byte{0, 1, 0, 0, 0, 3, 0, 0})
	f.Add([]byte{0, 1, 0, 4, 10, 3, 200, 2, 0, 8, 0, 0})
	f.Add([]byte{0, 8, 0, 17, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 128})
	f.Add([]byte{0, 1, 0, 4, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0})
	f.Fuzz(func(t *testing.T, raw []byte) {
		sa, p4, p6 := cpSA(t)
		cp := &message.Configuration{CFGType: message.CFG_REQUEST}
		for len(raw) >= 4 && len(cp.Attributes) < 32 {
			typ := message.CPAttributeType(binary.BigEndian.Uint16(raw) & 0x7fff)
			n := min(int(binary.BigEndian.Uint16(raw[2:])), len(raw)-4)
			cp.Attributes = append(cp.Attributes, message.ConfigAttribute{Type: typ, Value: raw[4 : 4+n]})
			raw = raw[4+n:]
		}
		task := &ikeAuth{sa: sa}
		failure := task.configRequest(&message.Message{Payloads: []message.Payload{cp}})
		for _, v := range sa.vips {
			if !p4.Contains(v.addr) && !p6.Contains(v.addr) {
				t.Fatalf("leased %v outside the pools", v.addr)
			}
		}
		if failure && len(sa.vips) > 0 {
			t.Fatal("address failure with addresses leased")
		}
		if len(sa.vips) > 2 {
			t.Fatalf("%d addresses leased to one IKE SA", len(sa.vips))
		}
		if task.cpReply != nil {
			if _, err := (&message.Message{Payloads: []message.Payload{task.cpReply}}).Marshal(); err != nil {
				t.Fatalf("reply does not encode: %v", err)
			}
		}
		sa.releaseVIPs()
		for _, p := range []*pool.Pool{p4, p6} {
			if _, online, _ := p.Stats(); online != 0 {
				t.Fatalf("pool %s: %d leases online after the SA went", p.Name(), online)
			}
		}
	})
}

// TestConfigRequestAttributes: a request for both families gets an
// address of each and the pools' attributes, in their wire forms.
func TestConfigRequestAttributes(t *testing.T) {
	sa, _, _ := cpSA(t)
	task := &ikeAuth{sa: sa}
	cp := &message.Configuration{CFGType: message.CFG_REQUEST, Attributes: []message.ConfigAttribute{
		{Type: message.INTERNAL_IP4_ADDRESS}, {Type: message.INTERNAL_IP6_ADDRESS}, {Type: message.INTERNAL_IP4_DNS},
	}}
	if task.configRequest(&message.Message{Payloads: []message.Payload{cp}}) {
		t.Fatal("address failure")
	}
	got := map[message.CPAttributeType][]string{}
	for _, a := range task.cpReply.Attributes {
		got[a.Type] = append(got[a.Type], string(a.Value))
	}
	want := map[message.CPAttributeType][]string{
		message.INTERNAL_IP4_ADDRESS: {"\x0a\x03\xc8\x01"},
		message.INTERNAL_IP6_ADDRESS: {"\xfd\x00" + string(make([]byte, 13)) + "\x01\x80"},
		message.INTERNAL_IP4_DNS:     {"\x0a\x03\x00\x01"},
		message.INTERNAL_IP6_DNS:     {"\xfd\x00" + string(make([]byte, 12)) + "\x00\x53"},
		message.INTERNAL_IP4_SUBNET:  {"\x0a\x03\x00\x00\xff\xff\x00\x00"},
		message.INTERNAL_IP6_SUBNET:  {"\xfd\x00\x00\x01" + string(make([]byte, 12)) + "\x40"},
		message.INTERNAL_DNS_DOMAIN:  {"corp.example"},
	}
	for typ, w := range want {
		if len(got[typ]) != len(w) || (len(w) > 0 && got[typ][0] != w[0]) {
			t.Errorf("%v: got %q, want %q", typ, got[typ], w)
		}
	}
}
