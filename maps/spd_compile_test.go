package maps_test

import (
	"net/netip"
	"strings"
	"testing"

	. "github.com/xdpsec/xdpsec/maps"
	"github.com/xdpsec/xdpsec/maps/spdtest"
)

func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }

// TestCompiledWalkMatchesReference checks the compiler's layout against the
// reference matcher without a kernel: the Go walk follows the BPF walk.
func TestCompiledWalkMatchesReference(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		for seed, n := range []int{1, 5, 30, 200, 1000} {
			g := spdtest.New(uint64(seed*7+1), v6)
			ps := g.Policies(n)
			for i := range ps {
				ps[i].Normalize()
			}
			walk, err := CompiledWalk(ps)
			if err != nil {
				t.Fatalf("compile %d policies: %v", n, err)
			}
			for i := 0; i < 2000; i++ {
				pkt := g.Packet()
				want, wok := Match(ps, pkt)
				got, gok := walk(pkt)
				if wok != gok || (wok && want.ID != got) {
					t.Fatalf("v6=%v n=%d packet %+v: compiled walk says %d (%v), reference %d (%v)",
						v6, n, pkt, got, gok, want.ID, wok)
				}
			}
		}
	}
}

// TestCompiledWalkHosts is TestCompiledWalkMatchesReference for a
// remote-access set: many host destinations, looked up exactly before the
// shorter prefixes, inside pools the shorter prefixes cover.
func TestCompiledWalkHosts(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		g := spdtest.New(77, v6)
		hs := g.HostSet(2000, 200)
		for _, ps := range [][]Policy{hs.Policies(), hs.ShorterOnly()} {
			walk, err := CompiledWalk(ps)
			if err != nil {
				t.Fatal(err)
			}
			for range 5000 {
				pkt := hs.Packet()
				want, wok := Match(ps, pkt)
				got, gok := walk(pkt)
				if wok != gok || (wok && want.ID != got) {
					t.Fatalf("v6=%v %d policies, packet %+v: compiled walk says %d (%v), reference %d (%v)",
						v6, len(ps), pkt, got, gok, want.ID, wok)
				}
			}
		}
	}
}

func TestCompileRefusesTooLongChains(t *testing.T) {
	var ps []Policy
	for i := 0; i < MaxLookupSteps; i++ {
		p := Policy{ID: uint32(i + 1), Action: ActionBypass, DportLo: uint16(i), DportHi: uint16(i), Proto: 6}
		p.Src = mustPrefix("10.0.0.0/8")
		p.Dst = mustPrefix("10.2.0.0/16")
		ps = append(ps, p)
	}
	_, err := CompiledWalk(ps)
	if err == nil || !strings.Contains(err.Error(), "too complex") {
		t.Fatalf("compile of %d same-selector policies: %v, want a too-complex error", len(ps), err)
	}
	if _, err := CompiledWalk(ps[:MaxLookupSteps-1]); err != nil {
		t.Fatalf("compile of %d: %v", MaxLookupSteps-1, err)
	}
}

func TestPolicyValidate(t *testing.T) {
	ok := Policy{ID: 1, Src: mustPrefix("10.0.0.0/8"), Dst: mustPrefix("10.2.0.0/16"), DportHi: 0xffff, Action: ActionProtect}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	bad := map[string]func(*Policy){
		"mixed families":      func(p *Policy) { p.Dst = mustPrefix("fd00::/8") },
		"ports without proto": func(p *Policy) { p.DportLo, p.DportHi = 80, 80 },
		"empty port range":    func(p *Policy) { p.Proto, p.DportLo, p.DportHi = 6, 90, 80 },
		"no action":           func(p *Policy) { p.Action = 0 },
		"tiny MSS":            func(p *Policy) { p.MSS = 10 },
		"if_id on bypass":     func(p *Policy) { p.Action, p.IfID = ActionBypass, 5 },
		"no selectors": func(p *Policy) {
			p.Src = mustPrefix("10.0.0.0/8")
			p.Dst = p.Dst.Masked()
			*p = Policy{Action: ActionBypass}
		},
	}
	for name, mutate := range bad {
		p := ok
		mutate(&p)
		if err := p.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
