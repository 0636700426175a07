package e2e

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/xdpsec/xdpsec/internal/vm"
)

// benchLine starts the machine-readable result lines guest tests print on
// their own line; bench/mkreport reads them from the vmtest output.
const benchLine = "XDPSEC-BENCH"

// benchEnv, set (by `make bench-vm`, through vmtest), makes the guest
// tests that measure measure in earnest: more rounds, more bytes.
const benchEnv = "XDPSEC_VM_BENCH"

// TestTransferOursVsCharon: the same TCP transfer (LAN host A to LAN host
// B) through a policy-based tunnel negotiated by our daemons on both
// gateways (with xdp_wan and tc_lan attached) and through one negotiated
// by strongSwan's charon (kernel-netlink, no BPF) on both gateways, with
// the same proposals. Both tunnels are set up side by side in their own
// namespaces and the rounds alternate between them, so that the other
// load on a shared machine falls on both alike; each side's figure is its
// fastest round. The ESP itself is the kernel's in both: the ratio shows
// what our per-packet programs cost, not a different dataplane. Under TCG
// the rates are functional numbers only, not comparable with hardware.
func TestTransferOursVsCharon(t *testing.T) {
	if _, err := os.Stat(charonBin); err != nil {
		t.Skipf("skipped: charon is not installed on the host (strongswan-charon): %v", err)
	}
	// In the VM test suite one small round checks that both tunnels work
	// and the result line comes out; `make bench-vm` asks for the
	// measurement.
	size, rounds := int64(4<<20), 1
	if os.Getenv(benchEnv) != "" {
		size, rounds = 16<<20, 3
	}
	c := tunnelConf{}

	ours := newDaemonPair(t, ipv4, c)

	theirs := newPairWithLANs(t, ipv4)
	_, viciA := startCharon(t, theirs.a, swanctlConf(theirs, theirs.a, c))
	startCharon(t, theirs.b, swanctlConf(theirs, theirs.b, c))
	start := time.Now()
	if out, err := run(theirs.a.Netns, "", "swanctl", "--initiate", "--child", "net", "--timeout", "30", "--uri", viciA); err != nil {
		t.Fatalf("charon on A: swanctl --initiate: %v\n%s", err, out)
	}
	t.Logf("charon ↔ charon: IKE_SA and CHILD_SA net established in %v", time.Since(start).Round(time.Millisecond))
	for _, p := range []*pair{ours.pair, theirs} {
		if got := ping(t, p.a.lanH, p.a.lanA, p.b.lanA, 3, 5); got != 3 {
			t.Fatalf("ping LAN A → LAN B: %d of 3 answered", got)
		}
	}

	var oursMBps, theirsMBps []float64
	for r := range rounds {
		for _, x := range []struct {
			name  string
			p     *pair
			rates *[]float64
		}{{"ours", ours.pair, &oursMBps}, {"charon", theirs, &theirsMBps}} {
			res := tcpTransfer(t, x.p.a.lanH, x.p.a.lanA, x.p.b.lanH, x.p.b.lanA, size, 10*time.Minute, nil)
			mbps := float64(res.bytes) / (1 << 20) / res.duration.Seconds()
			*x.rates = append(*x.rates, mbps)
			t.Logf("round %d, %s ↔ %s: %v", r+1, x.name, x.name, res)
		}
	}
	// Both tunnels carried the transfers in ESP: the kernel's SAs counted
	// them on both sides.
	for _, x := range []struct {
		name string
		p    *pair
	}{{"ours", ours.pair}, {"charon", theirs}} {
		var most uint64
		for _, st := range stateStats(t, x.p.b.Netns) {
			most = max(most, st.bytes)
		}
		if most < uint64(rounds)*uint64(size) {
			t.Errorf("%s: site B's SAs decrypted at most %d bytes, want the %d of the transfers", x.name, most, int64(rounds)*size)
		}
	}
	best := func(v []float64) float64 { return slices.Max(v) }
	ratio := best(oursMBps) / best(theirsMBps)
	t.Logf("TCP %d MiB LAN A → LAN B, fastest of %d rounds: ours %.2f MiB/s, charon %.2f MiB/s, ratio %.2f",
		size>>20, rounds, best(oursMBps), best(theirsMBps), ratio)
	// One line for bench/mkreport, on its own so that test log prefixes
	// do not get in its way.
	release, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	fmt.Printf("%s vm-transfer guest=%t kernel=%s bytes=%d rounds=%d ours_MBps=%.2f charon_MBps=%.2f ratio=%.3f ours_rounds=%s charon_rounds=%s\n",
		benchLine, os.Getenv(vm.GuestEnv) == "1", strings.TrimSpace(string(release)), size, rounds,
		best(oursMBps), best(theirsMBps), ratio, joinRates(oursMBps), joinRates(theirsMBps))
}

func joinRates(v []float64) string {
	s := make([]string, len(v))
	for i, r := range v {
		s[i] = fmt.Sprintf("%.2f", r)
	}
	return strings.Join(s, ",")
}
