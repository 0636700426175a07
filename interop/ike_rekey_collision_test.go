package interop

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xdpsec/xdpsec/internal/testenv"
)

// TestIKERekeyCollisionRepeated has both sides rekey the IKE SA at once,
// round after round on one connection, with each side's first rekey
// request dropped (nftables in each namespace) so that both requests are
// outstanding when the retransmits cross; which side starts first and by
// how much varies from round to round. After every round each side has
// exactly one IKE SA, the same one, with the CHILD_SA: a redundant IKE SA
// left by the collision (one the peer abandoned without deleting it) is
// deleted within the short time the rounds allow. 40 rounds by default,
// XDPSEC_COLLISION_ROUNDS sets another count.
func TestIKERekeyCollisionRepeated(t *testing.T) {
	rounds := 40
	if s := os.Getenv("XDPSEC_COLLISION_ROUNDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("XDPSEC_COLLISION_ROUNDS=%q", s)
		}
		rounds = n
	}
	e := newEnv(t, envOptions{charonSettings: "\tretransmit_timeout = 0.5\n\tretransmit_base = 1.2\n",
		daemonArgs: []string{"--retransmit-timeout", "500ms", "--retransmit-base", "1.2"}})
	cs, os := pskPeers("aes128gcm16-prfsha256-x25519", "aes128gcm16")
	e.load(cs, os, nil, nil)
	e.initiate(oursInitiate)
	before := e.agree(1)
	start := time.Now()
	collisions, cleaned, unnoticed := 0, 0, 0
	for round := range rounds {
		for _, ns := range []*testenv.Netns{e.nsC, e.nsO} {
			nft(t, ns, "add table inet loss; add chain inet loss out { type filter hook output priority 0; }; "+
				"add rule inet loss out udp dport 4500 quota until 400 bytes counter drop")
		}
		if round%3 == 2 {
			// Our first CREATE_CHILD_SA response is lost too (after the
			// non-ESP marker and the SPIs: exchange type 36, flag R):
			// if we win, the old IKE SA's DELETE reaches charon before
			// the retransmitted response, charon aborts its rekey and
			// abandons its new IKE SA, which we have.
			nft(t, e.nsO, "add rule inet loss out udp dport 4500 @th,240,8 36 @th,248,8 & 0x20 == 0x20 quota until 400 bytes counter drop")
		}
		oursLog, charonLog := len(e.ours.log()), len(e.charon.log())
		// Rounds alternate which side goes first, by 0 to 550 ms: up to
		// the first retransmission and past it (500 ms on both sides).
		lags := []time.Duration{0, 50, 150, 300, 450, 500, 550}
		lag := lags[round%len(lags)] * time.Millisecond
		first, second := charonInitiates, oursInitiate
		if round%2 == 1 {
			first, second = second, first
		}
		done := make(chan string, 2)
		rekey := func(r string) {
			var out string
			var err error
			if r == charonInitiates {
				out, err = e.charon.swanctlRun("--rekey", "--ike", "c")
			} else {
				out, err = e.ours.cliRun("rekey", "--ike", "c", "--timeout", "10s")
			}
			if err != nil {
				done <- fmt.Sprintf("%s: %v: %s", actor(r), err, strings.TrimSpace(out))
				return
			}
			done <- ""
		}
		go rekey(first)
		time.Sleep(lag)
		go rekey(second)
		for range 2 {
			if msg := <-done; msg != "" {
				t.Logf("round %d: %s", round, msg) // one side may find its SA already replaced
			}
		}
		var last string
		waitFor(t, 15*time.Second, fmt.Sprintf("round %d: one IKE SA, the same on both sides, nothing else left", round), func() error {
			c, o := e.charonView(), e.oursView()
			if len(c) != 1 || len(o) != 1 || len(c[0].children) != 1 || c[0].String() != o[0].String() || c[0].spiI == before[0].spiI {
				return fmt.Errorf("charon %v, xdpsec %v", c, o)
			}
			// No IKE SA in any other state either (DELETING, REKEYED,
			// CONNECTING, a childless ESTABLISHED one).
			cAll, oAll := e.charon.sas(), e.ours.sas()
			if len(cAll) != 1 || len(oAll) != 1 {
				last = fmt.Sprintf("charon:\n%s\nxdpsec:\n%s", e.charon.swanctl("--list-sas"), e.ours.cli("list-sas"))
				return fmt.Errorf("charon has %d IKE SAs, xdpsec %d:\n%s", len(cAll), len(oAll), last)
			}
			return nil
		})
		ol, cl := e.ours.log()[oursLog:], e.charon.log()[charonLog:]
		if strings.Contains(ol, "rekey collision") || strings.Contains(cl, "collision") {
			collisions++
		}
		if strings.Contains(ol, "neither used nor deleted by the peer") {
			cleaned++
		}
		if strings.Contains(cl, "peer did not notice IKE_SA rekey collision") {
			unnoticed++
		}
		for _, ns := range []*testenv.Netns{e.nsC, e.nsO} {
			ns.MustRun(t, "nft", "delete", "table", "inet", "loss")
		}
		before = e.agree(1)
	}
	t.Logf("%d rounds in %v: %d with a rekey collision logged, %d where charon's rekey was aborted "+
		"(\"peer did not notice IKE_SA rekey collision\"), %d with a redundant IKE SA deleted by us",
		rounds, time.Since(start).Round(time.Millisecond), collisions, unnoticed, cleaned)
	if collisions < rounds/2 {
		t.Errorf("only %d of %d rounds collided", collisions, rounds)
	}
}
