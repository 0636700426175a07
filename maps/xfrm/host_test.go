package xfrm

// Tests against this machine's kernel, as root, each in its own network
// namespace. They need no ESP transform.

import (
	"encoding/hex"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/xdpsec/xdpsec/ike/transform"
	"github.com/xdpsec/xdpsec/maps"
)

func TestCapabilities(t *testing.T) {
	c := kernelCaps(t)
	t.Logf("XFRM: %s", c.Summary())
	if len(c.Algorithms) != len(probeAlgorithms) {
		t.Errorf("%d algorithms probed, want %d", len(c.Algorithms), len(probeAlgorithms))
	}
	for _, f := range []struct {
		name string
		f    Feature
	}{{"ESP", c.ESP}, {"ESP6", c.ESP6}, {"ESN", c.ESN}, {"Offload", c.Offload}, {"Interface", c.Interface}, {"ExternalInterface", c.ExternalInterface}} {
		if !f.f.Available && f.f.Reason == "" {
			t.Errorf("%s missing without a reason", f.name)
		}
	}
	if !c.ESP.Available {
		if !strings.Contains(c.ESP.Reason, "ESP") {
			t.Errorf("ESP reason %q does not say ESP is missing", c.ESP.Reason)
		}
		if !strings.Contains(c.Summary(), "ESP no (") {
			t.Errorf("summary %q does not say ESP is unavailable", c.Summary())
		}
		if c.ESN.Available || c.ESP6.Available {
			t.Error("ESN or ESP6 reported without ESP")
		}
	}
	if !c.Interface.Available && !strings.Contains(c.Interface.Reason, "xfrm_interface") {
		t.Errorf("interface reason %q does not name xfrm_interface", c.Interface.Reason)
	}
}

func TestStateWithoutESP(t *testing.T) {
	requireNoESP(t)
	c, _ := newConn(t)
	for _, a := range testAlgorithms {
		t.Run(a.name, func(t *testing.T) {
			cr := testCrypto(t, a.encr, a.keyBits, a.integ)
			keys := [][]byte{cloneCrypto(cr).EncrKey, cloneCrypto(cr).IntegKey}
			s := State{Src: addrA, Dst: addrB, SPI: 0xc0000001, Mode: ModeTunnel, Crypto: cr, ReplayWindow: 32}
			_, err := c.AddState(s)
			if !errors.Is(err, ErrNoESP) && !errors.Is(err, ErrNoAlgorithm) {
				t.Fatalf("err = %v, want ErrNoESP or ErrNoAlgorithm", err)
			}
			if !strings.HasPrefix(err.Error(), "add SA 0xc0000001 dst 192.0.2.2: ") {
				t.Errorf("error %q does not name the SA", err)
			}
			for _, k := range keys {
				if len(k) > 0 && strings.Contains(err.Error(), hex.EncodeToString(k[:4])) {
					t.Errorf("error %q shows a key", err)
				}
			}
			if _, err := c.UpdateState(s); !errors.Is(err, ErrNoESP) && !errors.Is(err, ErrNoAlgorithm) {
				t.Errorf("update: %v", err)
			}
		})
	}
	id := SAID{Dst: addrB, SPI: 0xc0000001}
	if _, err := c.GetState(id); !errors.Is(err, ErrNoSA) {
		t.Errorf("get: %v, want ErrNoSA", err)
	}
	if err := c.DeleteState(id); !errors.Is(err, ErrNoSA) || !strings.Contains(err.Error(), "0xc0000001") {
		t.Errorf("delete: %v, want ErrNoSA naming the SPI", err)
	}
	if sas, err := c.ListStates(); err != nil || len(sas) != 0 {
		t.Errorf("list: %v %v", sas, err)
	}
}

// The kernel allocates SPIs without the ESP transform, so this runs
// everywhere; completing the larval SA is tested with ESP.
func TestAllocSPI(t *testing.T) {
	kernelCaps(t)
	c, ns := newConn(t)
	r := maps.SPIRange{Base: maps.DefaultSPIBase, Count: 1024}
	spi1, err := c.AllocSPI(ProtoESP, addrA, addrB, r)
	if err != nil {
		t.Fatal(err)
	}
	spi2, err := c.AllocSPI(ProtoESP, addrA, addrB, r)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Contains(spi1) || !r.Contains(spi2) || spi1 == spi2 {
		t.Errorf("SPIs %#x, %#x: want two distinct ones in %#x+%d", spi1, spi2, r.Base, r.Count)
	}
	got, err := c.GetState(SAID{Dst: addrB, SPI: spi1})
	if err != nil {
		t.Fatal(err)
	}
	if !got.Larval || got.Src != addrA || got.Dst != addrB {
		t.Errorf("larval SA %+v", got)
	}
	if out := ns.MustRun(t, "ip", "xfrm", "state"); !strings.Contains(out, "spi 0x"+hex.EncodeToString([]byte{byte(spi1 >> 24), byte(spi1 >> 16), byte(spi1 >> 8), byte(spi1)})) {
		t.Errorf("ip xfrm state does not show SPI %#x:\n%s", spi1, out)
	}

	// A range of one SPI, taken: the kernel has nothing to give.
	one := maps.SPIRange{Base: spi1, Count: 1}
	if spi, err := c.AllocSPI(ProtoESP, addrA, addrB, one); err == nil {
		t.Errorf("allocated %#x from a used one-SPI range", spi)
	}

	if !kernelCaps(t).ESP.Available {
		s := State{Src: addrA, Dst: addrB, SPI: spi1, Mode: ModeTunnel, Inbound: true,
			Crypto: testCrypto(t, transform.ENCR_AES_CBC, 128, transform.AUTH_HMAC_SHA2_256_128)}
		if _, err := c.UpdateState(s); !errors.Is(err, ErrNoESP) {
			t.Errorf("completing the larval SA without ESP: %v", err)
		}
		if got, err := c.GetState(SAID{Dst: addrB, SPI: spi1}); err != nil || !got.Larval {
			t.Errorf("larval SA after a failed update: %+v %v", got, err)
		}
	}
	for _, spi := range []uint32{spi1, spi2} {
		if err := c.DeleteState(SAID{Dst: addrB, SPI: spi}); err != nil {
			t.Error(err)
		}
	}
	// The failed allocation leaves a keyless acquire state with SPI 0 until
	// net.core.xfrm_acq_expires; nothing else may remain.
	sas, _ := c.ListStates()
	for _, sa := range sas {
		if sa.SPI != 0 || !sa.Larval {
			t.Errorf("left behind: %+v", sa)
		}
	}
}

func TestPolicies(t *testing.T) {
	kernelCaps(t)
	c, ns := newConn(t)
	tun := Tunnel{Local: addrA, Remote: netip.MustParseAddr("198.51.100.2"), Reqid: 5, IfID: 7, Priority: 100}
	route, err := RouteBasedPolicies(tun)
	if err != nil {
		t.Fatal(err)
	}
	classic, err := PolicyBasedPolicies(Tunnel{Local: addrA6, Remote: addrB6, Reqid: 6, Mark: Mark{Value: 0x42}, Priority: 200}, ModeTunnel, TrafficSelectors{
		Local: netip.MustParsePrefix("2001:db8:1::/48"), Remote: netip.MustParsePrefix("2001:db8:2::/48"),
		Proto: unix.IPPROTO_TCP, RemotePort: 443,
	})
	if err != nil {
		t.Fatal(err)
	}
	block := Policy{Selector: Selector{Dst: netip.MustParsePrefix("10.9.0.0/16")}, Dir: DirFwd, Action: ActionBlock, Priority: 10}
	all := append(append(route, classic...), block)
	for _, p := range all {
		if err := c.AddPolicy(p); err != nil {
			t.Fatal(err)
		}
	}
	err = c.AddPolicy(route[0])
	if !errors.Is(err, ErrExists) || !strings.Contains(err.Error(), "policy out 0.0.0.0/0 === 0.0.0.0/0 if_id 0x7") {
		t.Errorf("adding twice: %v, want ErrExists naming the policy", err)
	}

	got, err := c.ListPolicies()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(all) {
		t.Fatalf("%d policies listed, want %d: %+v", len(got), len(all), got)
	}
	for _, want := range all {
		found := false
		for _, p := range got {
			if p.Selector == want.Selector.normalized() && p.Dir == want.Dir && p.IfID == want.IfID {
				found = true
				wantMark := want.Mark
				if wantMark.isSet() && wantMark.Mask == 0 {
					wantMark.Mask = 0xffffffff
				}
				if p.Action != want.Action || p.Priority != want.Priority || p.Mark != wantMark || len(p.Templates) != len(want.Templates) || p.Index == 0 {
					t.Errorf("listed %+v, want %+v", p, want)
				} else if len(p.Templates) > 0 && p.Templates[0] != want.Templates[0] {
					t.Errorf("template %+v, want %+v", p.Templates[0], want.Templates[0])
				}
			}
		}
		if !found {
			t.Errorf("%v not listed", &want)
		}
	}

	// iproute2 reads what we wrote the same way.
	out := ns.MustRun(t, "ip", "xfrm", "policy")
	for _, want := range []string{
		"src 0.0.0.0/0 dst 0.0.0.0/0", "dir fwd priority 100", "if_id 0x7",
		"tmpl src 198.51.100.2 dst 192.0.2.1", "proto esp reqid 5 mode tunnel",
		"src 2001:db8:1::/48 dst 2001:db8:2::/48 proto tcp dport 443", "mark 0x42/0xffffffff",
		"src 0.0.0.0/0 dst 10.9.0.0/16", "action block",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("ip xfrm policy lacks %q:\n%s", want, out)
		}
	}

	upd := route[0]
	upd.Priority = 50
	if err := c.UpdatePolicy(upd); err != nil {
		t.Fatal(err)
	}
	got, _ = c.ListPolicies()
	for _, p := range got {
		if p.Dir == DirOut && p.IfID == 7 && p.Selector == upd.Selector && p.Priority != 50 {
			t.Errorf("priority after update %d", p.Priority)
		}
	}

	for _, p := range all {
		if err := c.DeletePolicy(p); err != nil {
			t.Error(err)
		}
	}
	if err := c.DeletePolicy(route[0]); !errors.Is(err, ErrNoPolicy) {
		t.Errorf("deleting twice: %v, want ErrNoPolicy", err)
	}
	if got, _ := c.ListPolicies(); len(got) != 0 {
		t.Errorf("left behind: %+v", got)
	}
}

func TestInterfaces(t *testing.T) {
	caps := kernelCaps(t)
	c, ns := newConn(t)
	err := c.AddInterface(Interface{Name: "xfrm7", IfID: 7, Up: true})
	if !caps.Interface.Available {
		if !errors.Is(err, ErrNoXfrmInterface) || !strings.Contains(err.Error(), "xfrm7") {
			t.Fatalf("err = %v, want ErrNoXfrmInterface naming the interface", err)
		}
		t.Skipf("skipped the rest: %s", caps.Interface.Reason)
	}
	if err != nil {
		t.Fatal(err)
	}
	i, err := c.GetInterface("xfrm7")
	if err != nil {
		t.Fatal(err)
	}
	if i.IfID != 7 || i.External || !i.Up || i.Index == 0 {
		t.Errorf("read back %+v", i)
	}
	if out := ns.MustRun(t, "ip", "-d", "link", "show", "xfrm7"); !strings.Contains(out, "if_id 0x7") {
		t.Errorf("ip link:\n%s", out)
	}
	if err := c.AddInterface(Interface{Name: "xfrm7", IfID: 8}); !errors.Is(err, ErrExists) {
		t.Errorf("adding twice: %v", err)
	}
	if err := c.DeleteInterface("lo"); err == nil || !strings.Contains(err.Error(), "not an xfrm interface") {
		t.Errorf("deleting lo: %v", err)
	}
	if err := c.DeleteInterface("xfrm7"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetInterface("xfrm7"); !errors.Is(err, ErrNoDevice) {
		t.Errorf("after delete: %v", err)
	}
	if !caps.ExternalInterface.Available {
		t.Skipf("skipped external mode: %s", caps.ExternalInterface.Reason)
	}
	if err := c.AddInterface(Interface{Name: "ipsec0", External: true}); err != nil {
		t.Fatal(err)
	}
	if i, err := c.GetInterface("ipsec0"); err != nil || !i.External || i.IfID != 0 {
		t.Errorf("external interface %+v %v", i, err)
	}
}

func TestOffloadUnknownDevice(t *testing.T) {
	kernelCaps(t)
	c, _ := newConn(t)
	for _, mode := range []OffloadMode{OffloadYes, OffloadAuto, OffloadPacket} {
		s := State{Src: addrA, Dst: addrB, SPI: 0x1001, Mode: ModeTunnel,
			Crypto:  testCrypto(t, transform.ENCR_AES_CBC, 128, transform.AUTH_HMAC_SHA2_256_128),
			Offload: Offload{Mode: mode, Device: "nosuchdev0"}}
		if _, err := c.AddState(s); !errors.Is(err, ErrNoDevice) || !strings.Contains(err.Error(), "nosuchdev0") {
			t.Errorf("%v: %v, want ErrNoDevice naming the device", mode, err)
		}
	}
}
