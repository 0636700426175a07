package dataplane

import (
	"bytes"
	"log/slog"
	"net/netip"
	"strings"
	"testing"

	"github.com/xdpsec/xdpsec/ike"
	"github.com/xdpsec/xdpsec/maps"
	"github.com/xdpsec/xdpsec/maps/xfrm"
)

// ICMP selectors (type<<8|code in the port range) become the kernel's
// type-in-sport, code-in-dport selector.
func TestICMPPolicySelector(t *testing.T) {
	tests := []struct {
		src, dst string
		want     xfrm.Selector // ports only
	}{
		{"10.1.0.0/16[icmp/8]", "10.2.0.0/16[icmp]", xfrm.Selector{SrcPort: 8, SrcPortMask: 0xffff, DstPortMask: 0xffff}},
		{"10.1.0.0/16[icmp]", "10.2.0.0/16[icmp/8]", xfrm.Selector{SrcPort: 8, SrcPortMask: 0xffff, DstPortMask: 0xffff}},
		{"10.1.0.0/16[icmp/0]", "10.2.0.0/16", xfrm.Selector{SrcPortMask: 0xffff, DstPortMask: 0xffff}},
		{"10.1.0.0/16[icmp/8]", "10.2.0.0/16[icmp/0]", xfrm.Selector{SrcPort: 8, SrcPortMask: 0xffff, DstPortMask: 0xffff}},
		{"10.1.0.0/16[icmp/0]", "10.2.0.0/16[icmp/8]", xfrm.Selector{SrcPort: 8, SrcPortMask: 0xffff, DstPortMask: 0xffff}},
		{"10.1.0.0/16[icmp/3(4)]", "10.2.0.0/16", xfrm.Selector{SrcPort: 3, SrcPortMask: 0xffff, DstPort: 4, DstPortMask: 0xffff}},
		{"10.1.0.0/16[icmp/3-3(255)]", "10.2.0.0/16", xfrm.Selector{SrcPort: 3, SrcPortMask: 0xffff}},
		{"10.1.0.0/16[icmp/8-9]", "10.2.0.0/16", xfrm.Selector{}},
		{"10.1.0.0/16[icmp]", "10.2.0.0/16[icmp]", xfrm.Selector{}},
		{"fec1::/16[ipv6-icmp/128]", "fec2::/16[ipv6-icmp]", xfrm.Selector{SrcPort: 128, SrcPortMask: 0xffff, DstPortMask: 0xffff}},
		{"10.1.0.0/16[udp/2048]", "10.2.0.0/16[udp/53]", xfrm.Selector{SrcPort: 2048, DstPort: 53}},
		{"10.1.0.0/16[udp/1000-2000]", "10.2.0.0/16[udp]", xfrm.Selector{}},
	}
	for _, tt := range tests {
		src, err1 := ike.ParseTS(tt.src)
		dst, err2 := ike.ParseTS(tt.dst)
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		sel := xfrm.Selector{Proto: max(src.Protocol, dst.Protocol)}
		setPorts(&sel, src, dst)
		tt.want.Proto = sel.Proto
		if sel != tt.want {
			t.Errorf("%s === %s: ports %d/%#x %d/%#x, want %d/%#x %d/%#x", tt.src, tt.dst,
				sel.SrcPort, sel.SrcPortMask, sel.DstPort, sel.DstPortMask,
				tt.want.SrcPort, tt.want.SrcPortMask, tt.want.DstPort, tt.want.DstPortMask)
		}
	}
}

// In classic mode the kernel policy carries the ICMP type and code; the
// SPD, which reads no ICMP header, counts all ICMP of the prefixes and
// leaves the decision to that policy.
func TestDataplaneClassicICMPPolicy(t *testing.T) {
	d, k, b, _ := newFakeDataplane(t)
	local, _ := ike.ParseTS("10.1.0.0/16[icmp/8]")
	remote, _ := ike.ParseTS("10.2.0.0/16[icmp]")
	p := &ike.Policy{Dir: ike.DirOut, Src: local, Dst: remote, TmplSrc: us, TmplDst: them, ReqID: 3}
	if err := d.AddPolicy(p); err != nil {
		t.Fatal(err)
	}
	if len(k.policies) != 1 {
		t.Fatalf("kernel policies: %v", k.policies)
	}
	if got := k.policies[0].Selector.String(); got != "10.1.0.0/16[8] === 10.2.0.0/16[0] proto 1" {
		t.Errorf("kernel selector %s", got)
	}
	d.Flush()
	if len(b.policies) != 1 || b.policies[0].Proto != 1 || !b.policies[0].AnyPorts() || b.policies[0].Action != maps.ActionBypass {
		t.Errorf("SPD %+v", b.policies)
	}
	if err := d.DeletePolicy(p); err != nil {
		t.Fatal(err)
	}
}

// Route-based, tc_lan steers by addresses, protocol and destination port
// only: an ICMP type selector covers all ICMP there, which is logged.
func TestDataplaneRouteBasedICMPPolicyWarns(t *testing.T) {
	var logged bytes.Buffer
	ev := &events{}
	k := &fakeKernel{ev: ev, states: map[uint32]xfrm.State{}}
	b := &fakeBPF{ev: ev, sas: map[uint32]maps.InboundSA{}, cpus: []int{0, 1}}
	d := NewKernelDataplane(KernelConfig{Kernel: k, BPF: b, Log: slog.New(slog.NewTextHandler(&logged, nil)),
		Device: func(netip.Addr) (string, error) { return "wan0", nil }})
	t.Cleanup(d.Close)
	local, _ := ike.ParseTS("10.1.0.0/16[icmp/8]")
	remote, _ := ike.ParseTS("10.2.0.0/16[icmp/8]")
	if err := d.AddPolicy(&ike.Policy{Dir: ike.DirOut, Src: local, Dst: remote, TmplSrc: us, TmplDst: them, ReqID: 1, IfID: 7}); err != nil {
		t.Fatal(err)
	}
	d.Flush()
	if len(b.policies) != 1 || b.policies[0].Proto != 1 || !b.policies[0].AnyPorts() || b.policies[0].Action != maps.ActionProtect {
		t.Errorf("SPD %+v", b.policies)
	}
	if !strings.Contains(logged.String(), "tc_lan does not read ICMP types") {
		t.Errorf("no warning about the ICMP types in the log:\n%s", logged.String())
	}
}
