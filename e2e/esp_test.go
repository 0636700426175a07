package e2e

import (
	"fmt"
	"testing"
)

// TestESPTunnel: two sites, manual ESP SAs in tunnel mode, ping between
// their inner addresses. The replies prove both directions decrypt; the
// SAs' counters (as `ip -s xfrm state` shows them) prove the packets went
// through ESP. One pair of namespaces per address family serves every
// transform: making a namespace costs a second or more under TCG.
func TestESPTunnel(t *testing.T) {
	requireModule(t, "esp4")
	requireModule(t, "esp6")
	for _, fam := range []family{ipv4, ipv6} {
		t.Run(fmt.Sprintf("ipv%d", fam), func(t *testing.T) {
			p := newPair(t, fam)
			for i, algo := range []espAlgo{aesGCM, aesCBCSHA256, chacha20Poly1305} {
				t.Run(algo.name, func(t *testing.T) {
					defer p.unprotect(t)
					testPing(t, p, algo, 0xa0001000+uint32(i), 0xb0002000+uint32(i))
				})
			}
		})
	}
}

func testPing(t *testing.T, p *pair, algo espAlgo, spiAB, spiBA uint32) {
	ab, ba := p.protect(t, algo, spiAB, spiBA)
	for _, x := range []sa{ab, ba} {
		if st := x.stateStats(t, p.a); st.packets != 0 {
			t.Fatalf("SA %#x counts %d packets before any traffic", x.spi, st.packets)
		}
	}
	errsBefore := xfrmStat(t, p.b.Netns)
	const n = 10
	if got := ping(t, p.a.Netns, p.a.host, p.b.host, n, 5); got != n {
		t.Fatalf("ping %s → %s through the tunnel: %d of %d answered", p.a.host, p.b.host, got, n)
	}
	// A encrypts with ab, B decrypts it; B answers with ba.
	statsA, statsB := stateStats(t, p.a.Netns), stateStats(t, p.b.Netns)
	for _, c := range []struct {
		spi  uint32
		at   map[uint32]saStats
		site string
		role string
	}{{ab.spi, statsA, "A", "outbound"}, {ab.spi, statsB, "B", "inbound"}, {ba.spi, statsB, "B", "outbound"}, {ba.spi, statsA, "A", "inbound"}} {
		st := c.at[c.spi]
		t.Logf("site %s %s SA %#x: %d packets, %d bytes", c.site, c.role, c.spi, st.packets, st.bytes)
		if st.packets < n || st.bytes == 0 {
			t.Errorf("site %s %s SA %#x counted %d packets, %d bytes; want at least %d packets", c.site, c.role, c.spi, st.packets, st.bytes, n)
		}
	}
	errs := xfrmStat(t, p.b.Netns)
	for _, k := range []string{"XfrmInStateProtoError", "XfrmInNoStates", "XfrmInTmplMismatch", "XfrmInStateInvalid"} {
		if errs[k] != errsBefore[k] {
			t.Errorf("site B's %s went from %d to %d", k, errsBefore[k], errs[k])
		}
	}
}
