package ike

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/xdpsec/xdpsec/ike/isakmp"
	"github.com/xdpsec/xdpsec/ike/message"
)

// ICMP selectors carry the message type in the high byte of the port and
// the code in the low one (RFC 7296 section 3.13.1); the syntax and the
// printed form are strongSwan's.
func TestICMPSelectorParseAndPrint(t *testing.T) {
	tests := []struct {
		in         string
		from, to   uint16
		proto      uint8
		logged     string // TrafficSelector.String, as charon logs it
		configured string // TSSpec.String, read back by ParseTSSpec
	}{
		{"10.1.0.0/16[icmp/8]", 0x0800, 0x0800, 1, "10.1.0.0/16[icmp/8]", "10.1.0.0/16[icmp/8]"},
		{"10.1.0.0/16[icmp/0]", 0x0000, 0x0000, 1, "10.1.0.0/16[icmp/0]", "10.1.0.0/16[icmp/0]"},
		{"10.1.0.0/16[1/8]", 0x0800, 0x0800, 1, "10.1.0.0/16[icmp/8]", "10.1.0.0/16[icmp/8]"},
		{"10.1.0.0/16[icmp/2049]", 0x0801, 0x0801, 1, "10.1.0.0/16[icmp/8(1)]", "10.1.0.0/16[icmp/8(1)]"},
		{"10.1.0.0/16[icmp/0x0304]", 0x0304, 0x0304, 1, "10.1.0.0/16[icmp/3(4)]", "10.1.0.0/16[icmp/3(4)]"},
		{"10.1.0.0/16[icmp/3(4)]", 0x0304, 0x0304, 1, "10.1.0.0/16[icmp/3(4)]", "10.1.0.0/16[icmp/3(4)]"},
		{"10.1.0.0/16[icmp/0(3)]", 0x0003, 0x0003, 1, "10.1.0.0/16[icmp/0(3)]", "10.1.0.0/16[icmp/0(3)]"},
		{"10.1.0.0/16[icmp/8-9]", 0x0800, 0x0900, 1, "10.1.0.0/16[icmp/8-9]", "10.1.0.0/16[icmp/8-9]"},
		{"10.1.0.0/16[icmp/8-2303]", 0x0800, 0x08ff, 1, "10.1.0.0/16[icmp/8-8(255)]", "10.1.0.0/16[icmp/8-8(255)]"},
		{"10.1.0.0/16[icmp]", 0, 0xffff, 1, "10.1.0.0/16[icmp]", "10.1.0.0/16[icmp]"},
		{"fec1::/16[ipv6-icmp/128]", 0x8000, 0x8000, 58, "fec1::/16[ipv6-icmp/128]", "fec1::/16[ipv6-icmp/128]"},
		{"fec1::/16[icmpv6/135]", 0x8700, 0x8700, 58, "fec1::/16[ipv6-icmp/135]", "fec1::/16[ipv6-icmp/135]"},
		{"fec1::/16[58/1(4)]", 0x0104, 0x0104, 58, "fec1::/16[ipv6-icmp/1(4)]", "fec1::/16[ipv6-icmp/1(4)]"},
		{"dynamic[icmp/8]", 0x0800, 0x0800, 1, "", "dynamic[icmp/8]"},
		// Other protocols keep their ports as they are.
		{"10.1.0.0/16[udp/8]", 8, 8, 17, "10.1.0.0/16[udp/8]", "10.1.0.0/16[udp/8]"},
	}
	for _, tt := range tests {
		spec, err := ParseTSSpec(tt.in)
		if err != nil {
			t.Errorf("ParseTSSpec(%q): %v", tt.in, err)
			continue
		}
		ts := spec.TS
		if ts.Protocol != tt.proto || ts.StartPort != tt.from || ts.EndPort != tt.to {
			t.Errorf("ParseTSSpec(%q): proto %d ports %#04x-%#04x, want %d %#04x-%#04x",
				tt.in, ts.Protocol, ts.StartPort, ts.EndPort, tt.proto, tt.from, tt.to)
		}
		if !spec.Dynamic && ts.String() != tt.logged {
			t.Errorf("ParseTSSpec(%q).TS.String() = %s, want %s", tt.in, ts, tt.logged)
		}
		if got := spec.String(); got != tt.configured {
			t.Errorf("ParseTSSpec(%q).String() = %s, want %s", tt.in, got, tt.configured)
		}
		back, err := ParseTSSpec(spec.String())
		if err != nil || back != spec {
			t.Errorf("%q printed as %q reads back as %+v (%v), want %+v", tt.in, spec.String(), back, err, spec)
		}
	}
	for _, in := range []string{"10.1.0.0/16[icmp/echo]", "10.1.0.0/16[icmp/8(256)]", "10.1.0.0/16[icmp/256(1)]",
		"10.1.0.0/16[icmp/9-8]", "10.1.0.0/16[icmp/8/0]", "10.1.0.0/16[icmp/70000]"} {
		if _, err := ParseTSSpec(in); err == nil {
			t.Errorf("ParseTSSpec(%q) accepted", in)
		}
	}
}

// On the wire the type and code are the 16-bit port value, in both IKEv2
// TS payloads and IKEv1 Quick Mode ID payloads (as charon sends them).
func TestICMPSelectorWire(t *testing.T) {
	ts, err := ParseTS("10.1.0.0/16[icmp/8]")
	if err != nil {
		t.Fatal(err)
	}
	v6, err := ParseTS("fec1::/16[ipv6-icmp/1(4)]")
	if err != nil {
		t.Fatal(err)
	}
	m := &message.Message{Payloads: []message.Payload{&message.TSi{TrafficSelectors: tsToWire([]TrafficSelector{ts, v6})}}}
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	// TSi body: number of TSs, reserved; then type, protocol, length, ports.
	body := b[message.HeaderLen+4:]
	if want := []byte{2, 0, 0, 0, byte(message.TS_IPV4_ADDR_RANGE), 1, 0, 16, 0x08, 0x00, 0x08, 0x00, 10, 1, 0, 0, 10, 1, 255, 255}; !bytes.Equal(body[:len(want)], want) {
		t.Errorf("TSi body % x, want % x", body[:len(want)], want)
	}
	if want := []byte{byte(message.TS_IPV6_ADDR_RANGE), 58, 0, 40, 0x01, 0x04, 0x01, 0x04}; !bytes.Equal(body[20:28], want) {
		t.Errorf("IPv6 selector header % x, want % x", body[20:28], want)
	}
	back, err := message.Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	got := tsFromWire(back.Payloads[0].(*message.TSi).TrafficSelectors)
	if len(got) != 2 || got[0] != ts || got[1] != v6 {
		t.Errorf("decoded %v, want %v %v", got, ts, v6)
	}
	if got[0].String() != "10.1.0.0/16[icmp/8]" || got[1].String() != "fec1::/16[ipv6-icmp/1(4)]" {
		t.Errorf("decoded selectors print as %s %s", got[0], got[1])
	}

	id := tsID(ts)
	if id.Protocol != 1 || id.Port != 0x0800 {
		t.Errorf("IKEv1 ID for %s: protocol %d port %#04x, want 1 0x0800", ts, id.Protocol, id.Port)
	}
	if back, err := idTS(id); err != nil || back != ts {
		t.Errorf("IKEv1 ID %+v reads back as %v (%v), want %v", id, back, err, ts)
	}
	sub, _ := netip.ParsePrefix("10.1.0.0/16")
	if back, err := idTS(isakmp.SubnetID(sub, 1, 0x0304)); err != nil || back.String() != "10.1.0.0/16[icmp/3(4)]" {
		t.Errorf("IKEv1 ID with ICMP port 0x0304 reads as %v (%v)", back, err)
	}
}

// Narrowing intersects the type/code ranges like port ranges: a type
// matches itself and an any-ICMP selector, not another type.
func TestICMPSelectorNarrowing(t *testing.T) {
	must := func(s string) TrafficSelector {
		ts, err := ParseTS(s)
		if err != nil {
			t.Fatal(err)
		}
		return ts
	}
	tests := []struct {
		configured, proposed string
		want                 string // "" for no match
	}{
		{"10.1.0.0/16[icmp/8]", "10.1.0.0/16[icmp/8]", "10.1.0.0/16[icmp/8]"},
		{"10.1.0.0/16[icmp/8]", "10.1.2.0/24[icmp/8]", "10.1.2.0/24[icmp/8]"},
		{"10.1.0.0/16", "10.1.0.0/16[icmp/8]", "10.1.0.0/16[icmp/8]"},
		{"10.1.0.0/16[icmp]", "10.1.0.0/16[icmp/3(4)]", "10.1.0.0/16[icmp/3(4)]"},
		{"10.1.0.0/16[icmp/8]", "10.1.0.0/16", "10.1.0.0/16[icmp/8]"},
		{"10.1.0.0/16[icmp/8-8(255)]", "10.1.0.0/16[icmp/8(3)]", "10.1.0.0/16[icmp/8(3)]"},
		{"10.1.0.0/16[icmp/8]", "10.1.0.0/16[icmp/0]", ""},
		{"10.1.0.0/16[icmp/8]", "10.1.0.0/16[icmp/8(1)]", ""},
		{"10.1.0.0/16[icmp/8]", "10.1.0.0/16[udp/2048]", ""},
		{"fec1::/16[ipv6-icmp/128]", "fec1::/16[icmpv6/128]", "fec1::/16[ipv6-icmp/128]"},
		{"fec1::/16[ipv6-icmp/128]", "fec1::/16[ipv6-icmp/129]", ""},
	}
	for _, tt := range tests {
		got := narrowTS([]TrafficSelector{must(tt.configured)}, []TrafficSelector{must(tt.proposed)})
		switch {
		case tt.want == "" && len(got) != 0:
			t.Errorf("narrow %s by %s = %v, want no match", tt.proposed, tt.configured, got)
		case tt.want != "" && (len(got) != 1 || got[0].String() != tt.want):
			t.Errorf("narrow %s by %s = %v, want %s", tt.proposed, tt.configured, got, tt.want)
		}
	}
}
