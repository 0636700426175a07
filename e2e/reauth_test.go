package e2e

import (
	"fmt"
	"net/netip"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xdpsec/xdpsec/internal/testenv"
)

// TestDaemonReauth: site A has reauth_time = 5s; a ping from LAN A to LAN
// B runs through two reauthentications (a new IKE SA with IKE_SA_INIT and
// IKE_AUTH, a new CHILD_SA, the old ones deleted). With make-before-break
// not one echo is lost and xdp_wan drops nothing as no_sa; without, the
// tunnel is back after each one.
func TestDaemonReauth(t *testing.T) {
	for _, mbb := range []string{"yes", "no"} {
		t.Run("make-before-break="+mbb, func(t *testing.T) {
			dp := newDaemonPair(t, ipv4, tunnelConf{connA: "reauth_time = 5s\nover_time = 30s\nrand_time = 0\n",
				daemonArgs: []string{"--make-before-break=" + mbb}})
			p := dp.pair
			first := dp.ga.waitChild("net", 10*time.Second)
			noSA := [2]uint64{dp.ga.counter("no_sa"), dp.gb.counter("no_sa")}
			reauths := func() int {
				log, _ := os.ReadFile(dp.ga.logPath)
				return strings.Count(string(log), "reauthenticating IKE_SA site[")
			}
			before := reauths()
			sent, got := pingEvery(t, p.a.lanH, p.a.lanA, p.b.lanA, 60, "0.2")
			n := reauths() - before
			t.Logf("ping during %d reauthentications: %d of %d answered", n, got, sent)
			if n < 1 {
				t.Fatalf("site A reauthenticated %d times in 12 s with reauth_time 5s", n)
			}
			now := dp.ga.waitChild("net", 10*time.Second)
			if now.SPIIn == first.SPIIn {
				t.Errorf("CHILD_SA net still has SPI %s", now.SPIIn)
			}
			if mbb == "yes" {
				if got != sent {
					// Say where they went: xdp_wan's stash and drops, the
					// kernels' XFRM errors.
					for _, g := range []*gateway{dp.ga, dp.gb} {
						var cs []string
						for _, c := range []string{"no_sa", "stashed", "stash_injected", "stash_full", "stash_too_long", "stash_expired"} {
							cs = append(cs, fmt.Sprintf("%s %d", c, g.counter(c)))
						}
						for k, v := range xfrmStat(t, g.Netns) {
							if v != 0 {
								cs = append(cs, fmt.Sprintf("%s %d", k, v))
							}
						}
						t.Logf("site %s: %s", g.name, strings.Join(cs, ", "))
					}
					t.Errorf("make-before-break: %d of %d echo requests lost", sent-got, sent)
				}
				for i, g := range []*gateway{dp.ga, dp.gb} {
					if d := g.counter("no_sa") - noSA[i]; d != 0 {
						t.Errorf("site %s: xdp_wan dropped %d ESP packets as no_sa", g.name, d)
					}
				}
			}
			if got := ping(t, p.a.lanH, p.a.lanA, p.b.lanA, 3, 5); got != 3 {
				t.Errorf("after the reauthentications: %d of 3 pings answered", got)
			}
			for _, g := range []*gateway{dp.ga, dp.gb} {
				if out := g.ok("list-sas"); strings.Count(out, "site: #") != 1 {
					t.Errorf("site %s: want one IKE SA:\n%s", g.name, out)
				}
			}
		})
	}
}

// pingEvery sends count echo requests from src to dst in ns, one every
// interval seconds, and returns how many were sent and answered.
func pingEvery(t *testing.T, ns *testenv.Netns, src, dst netip.Addr, count int, interval string) (sent, got int) {
	t.Helper()
	args := append(pingCmd(), "-c", strconv.Itoa(count), "-i", interval, "-W", "2", "-I", src.String(), dst.String())
	out, _ := run(ns, "", args...)
	m := regexp.MustCompile(`(\d+) packets transmitted, (\d+) (?:packets )?received`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("ping %s → %s: no summary in:\n%s", src, dst, out)
	}
	sent, _ = strconv.Atoi(m[1])
	got, _ = strconv.Atoi(m[2])
	if sent != count {
		t.Logf("ping: %s", fmt.Sprint(out))
	}
	return sent, got
}
