package dataplane

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/xdpsec/xdpsec/ike"
	"github.com/xdpsec/xdpsec/internal/testenv"
	"github.com/xdpsec/xdpsec/loader"
	"github.com/xdpsec/xdpsec/maps"
	"github.com/xdpsec/xdpsec/maps/xfrm"
)

// TestKernelDataplane drives the real dataplane against the kernel's XFRM
// in a throwaway namespace and freshly loaded, pinned BPF maps: SPIs come
// from ALLOCSPI in the pinned range, route-based policies become catch-all
// XFRM policies and SPD entries, and an SA the kernel refuses leaves no
// BPF entry behind.
func TestKernelDataplane(t *testing.T) {
	testenv.RequireBPF(t)
	ns := testenv.NewNetns(t, "xdpsec-dp")
	pinDir := fmt.Sprintf("/sys/fs/bpf/xdpsec-dptest-%06x", rand.Uint32()&0xffffff)
	t.Cleanup(func() {
		ns.Do(func() error { return loader.Unload(pinDir) })
		os.RemoveAll(pinDir)
	})
	var set *maps.Set
	if err := ns.Do(func() error {
		l, err := loader.Load(loader.Options{PinDir: pinDir, MaxSAs: 1024})
		if err != nil {
			return err
		}
		l.Close()
		set, err = maps.OpenPinned(pinDir)
		return err
	}); err != nil {
		t.Skipf("skipped: cannot load the BPF objects: %v", err)
	}
	defer set.Close()
	k, err := xfrm.OpenAt(ns.Handle)
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	d := NewKernelDataplane(KernelConfig{Kernel: k, BPF: PinnedBPF{Set: set}, Log: testenv.Logger(t), Spread: SpreadNone})
	defer d.Close()

	r, _ := set.Config.SPIRange()
	spi, err := d.AllocateSPI(ike.SAProtoESP, them, us)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Contains(spi) {
		t.Errorf("SPI %.8x outside the pinned range %#x+%d", spi, r.Base, r.Count)
	}

	local, _ := ike.ParseTS("10.1.0.0/16")
	remote, _ := ike.ParseTS("10.2.0.0/16")
	pols := []*ike.Policy{
		{Dir: ike.DirOut, Src: local, Dst: remote, TmplSrc: us, TmplDst: them, ReqID: 1, IfID: 9},
		{Dir: ike.DirIn, Src: remote, Dst: local, TmplSrc: them, TmplDst: us, ReqID: 1, IfID: 9},
		{Dir: ike.DirFwd, Src: remote, Dst: local, TmplSrc: them, TmplDst: us, ReqID: 1, IfID: 9},
	}
	for _, p := range pols {
		if err := d.AddPolicy(p); err != nil {
			t.Fatal(err)
		}
	}
	kp, err := k.ListPolicies()
	if err != nil {
		t.Fatal(err)
	}
	if len(kp) != 3 {
		t.Errorf("kernel policies: %v", kp)
	}
	for _, p := range kp {
		if p.IfID != 9 || p.Selector.Src.Bits() != 0 {
			t.Errorf("not a catch-all for if_id 9: %v", &p)
		}
	}
	d.Flush()
	sp, _ := set.SPD.Policies()
	if len(sp) != 1 || sp[0].Action != maps.ActionProtect || sp[0].IfID != 9 {
		t.Errorf("SPD: %+v", sp)
	}

	sa := testSA(spi, true)
	sa.Src, sa.Dst = them, us
	err = d.AddSA(sa)
	caps, _ := xfrm.Probe()
	if !caps.ESP.Available {
		if !errors.Is(err, xfrm.ErrNoESP) && !errors.Is(err, xfrm.ErrNoAlgorithm) {
			t.Errorf("AddSA without ESP = %v", err)
		}
		if _, gerr := set.SA.Get(maps.SAProtoESP, spi, us); !errors.Is(gerr, maps.ErrNoSA) {
			t.Errorf("BPF entry left after the kernel refused the SA: %v", gerr)
		}
	} else {
		if err != nil {
			t.Fatal(err)
		}
		if _, err := set.SA.Get(maps.SAProtoESP, spi, us); err != nil {
			t.Errorf("no BPF entry: %v", err)
		}
	}
	if err := d.DeleteSA(sa.SAID); err != nil {
		t.Errorf("DeleteSA: %v", err)
	}
	if _, gerr := set.SA.Get(maps.SAProtoESP, spi, us); !errors.Is(gerr, maps.ErrNoSA) {
		t.Errorf("BPF entry left after DeleteSA: %v", gerr)
	}
	for _, p := range pols {
		if err := d.DeletePolicy(p); err != nil {
			t.Error(err)
		}
	}
	if kp, _ := k.ListPolicies(); len(kp) != 0 {
		t.Errorf("kernel policies left: %v", kp)
	}
	d.Flush()
	if sp, _ := set.SPD.Policies(); len(sp) != 0 {
		t.Errorf("SPD left: %+v", sp)
	}
}
