package bench

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xdpsec/xdpsec/internal/daemon"
)

// killRounds is how many responders TestKilledResponderTakesBack runs,
// each killed killsPerRound times: `go test ./bench/ -run
// TestKilledResponderTakesBack -args -kill-rounds=100` for a long run.
var killRounds = flag.Int("kill-rounds", 3, "responders TestKilledResponderTakesBack runs (each is killed 3 times)")

const killsPerRound = 3

// killConf is the responder's configuration: short rekey times, so that
// its IKE SAs and CHILD_SAs rekey while it is killed.
func killConf(p Proposal) string {
	return strings.Replace(strings.Replace(responderConf(p),
		"\t\tremote_addrs = %any\n", "\t\tremote_addrs = %any\n\t\trekey_time = 6s\n", 1),
		"\t\t\t\tesp_proposals", "\t\t\t\trekey_time = 3s\n\t\t\t\tlife_time = 8s\n\t\t\t\trand_time = 1s\n\t\t\t\tesp_proposals", 1)
}

// TestKilledResponderTakesBack kills our responder with SIGKILL at random
// moments while a load generator establishes, rekeys and deletes IKE SAs
// against it (and it rekeys its own), restarts it on its state file, and
// checks what it took back against its log up to the kill:
//   - every CHILD_SA it reported established (and not closing, nor its
//     IKE SA going) is taken back, and
//   - every CHILD_SA taken back has its inbound SA in the (dry-run)
//     dataplane: installed, and not deleted, before the kill.
func TestKilledResponderTakesBack(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped: starts daemons (-short)")
	}
	if err := RequireIKE([]ResponderKind{Ours}); err != nil {
		t.Skipf("skipped: %v", err)
	}
	bin := xdpsecBinary(t)
	n, err := newIKENet()
	if err != nil {
		t.Fatal(err)
	}
	defer n.close()
	g, err := newLoadGen(n.gen, pskGen)
	if err != nil {
		t.Fatal(err)
	}
	defer g.close()
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, seed>>1))
	p := BenchProposals[0]
	total := 0
	for round := range *killRounds {
		dir := t.TempDir()
		settings := respSettings{proposal: p, conf: killConf(p), cookieThreshold: -1,
			state: filepath.Join(dir, "ike-state"), confPath: filepath.Join(dir, "swanctl.conf"), logs: "any=0,ike=1,knl=1"}
		r, err := startOurs(bin, n.resp, settings)
		if err != nil {
			t.Fatal(err)
		}
		// present are the CHILD_SAs (by inbound SPI) the running daemon
		// has in its dataplane from its start: those it took back.
		present := map[string]string{}
		for kill := range killsPerRound {
			stop := make(chan struct{})
			done := make(chan struct{})
			go func() { defer close(done); churn(g, p, rng.Uint64(), stop) }()
			time.Sleep(time.Duration(200+rng.IntN(1800)) * time.Millisecond)
			syscall.Kill(r.pid, syscall.SIGKILL)
			<-r.exited
			r.cmd = nil
			close(stop)
			<-done
			log, _ := os.ReadFile(filepath.Join(r.dir, "daemon.log"))
			os.RemoveAll(r.dir)
			want, installed := readKillLog(log, present)
			// The generator's retransmissions and new IKE SAs wait until
			// what was taken back is listed: the restarted daemon would
			// otherwise rekey, replace or add SAs before the listing.
			if err := n.gen.run("ip", "link", "set", "gen0", "down"); err != nil {
				t.Fatal(err)
			}
			if r, err = startOurs(bin, n.resp, settings); err != nil {
				t.Fatal(err)
			}
			got := takenBack(t, bin, filepath.Join(r.dir, "xdpsec.sock"))
			if err := n.gen.run("ip", "link", "set", "gen0", "up"); err != nil {
				t.Fatal(err)
			}
			if len(got) == 0 && len(want) > 0 {
				b, _ := os.ReadFile(filepath.Join(r.dir, "daemon.log"))
				t.Logf("restarted daemon's log:\n%s", b[:min(len(b), 3000)])
			}
			var missing, phantom []string
			for spi := range want {
				if _, ok := got[spi]; !ok {
					missing = append(missing, spi)
				}
			}
			for spi := range got {
				if !installed[spi] {
					phantom = append(phantom, spi)
				}
			}
			sort.Strings(missing)
			sort.Strings(phantom)
			for _, spi := range append(phantom[:min(len(phantom), 2)], missing[:min(len(missing), 2)]...) {
				for _, l := range strings.Split(string(log), "\n") {
					if strings.Contains(l, spi) || strings.Contains(l, ikeOfSPI(log, spi)) {
						t.Logf("killed daemon's log on %s: %s", spi, l)
					}
				}
				b, _ := os.ReadFile(filepath.Join(r.dir, "daemon.log"))
				for _, l := range strings.Split(string(b), "\n") {
					if strings.Contains(l, spi) || strings.Contains(l, "taking back") || strings.Contains(l, "took back") || strings.Contains(l, "[DMN]") {
						t.Logf("restarted daemon's log on %s: %s", spi, l)
					}
				}
			}
			if len(missing) > 0 || len(phantom) > 0 {
				t.Errorf("round %d, kill %d: %d CHILD_SAs reported established were not taken back %v; %d taken back were not in the dataplane %v\nlog before the kill (tail):\n%s",
					round, kill, len(missing), missing, len(phantom), phantom, tail(log, 60))
			}
			t.Logf("round %d, kill %d: %d CHILD_SAs reported up at the kill, %d taken back", round, kill, len(want), len(got))
			total += len(got)
			present = got
		}
		r.stop()
	}
	if total == 0 {
		t.Error("no kill left anything to take back: the load did not establish anything")
	}
}

// churn initiates IKE SAs from the generator's engines until stop, and
// now and then deletes one or rekeys a CHILD_SA from the initiator side.
func churn(g *loadGen, p Proposal, seed uint64, stop <-chan struct{}) {
	rng := rand.New(rand.NewPCG(seed, 1))
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		case <-time.After(2 * time.Millisecond):
		}
		ge := g.engines[i%len(g.engines)]
		if i%10 != 9 {
			ge.initiate(p)
			continue
		}
		sas := ge.e.IKESAs()
		if len(sas) == 0 {
			continue
		}
		sa := sas[rng.IntN(len(sas))]
		switch {
		case rng.IntN(2) == 0:
			ge.e.DeleteIKESA(sa.ID)
		case len(sa.Children) > 0:
			ge.e.RekeyChildSA(sa.Children[0].ID)
		}
	}
}

var (
	killLineSA      = regexp.MustCompile(`<([^>]+)> `)
	killEstablished = regexp.MustCompile(`CHILD_SA \S+ established with SPIs ([0-9a-f]{8})_i`)
	killClosing     = regexp.MustCompile(`closing CHILD_SA \S+ with SPIs ([0-9a-f]{8})_i`)
	killIKEGoing    = regexp.MustCompile(`(?i)delet|destroy|giving up|hard lifetime|expired|panic`)
	killInstall     = regexp.MustCompile(`dry-run: would install in SA ([0-9a-f]{8}) `)
	// Only our inbound SAs (to respAddr): the peers' outbound SPIs may
	// have the same values.
	killDelete = regexp.MustCompile(`dry-run: would delete SA ([0-9a-f]{8}) dst ` + regexp.QuoteMeta(respAddr.String()) + `$`)
)

// readKillLog reads a killed responder's log: the inbound SPIs of the
// CHILD_SAs it reported established and not going (want), and those its
// dataplane had at the kill (installed), over what it started with
// (present). The last line may be cut short by the kill: it is ignored.
func readKillLog(log []byte, present map[string]string) (want, installed map[string]bool) {
	want, installed = map[string]bool{}, map[string]bool{}
	ikeOf := map[string]string{} // inbound SPI -> IKE SA
	for spi, sa := range present {
		want[spi], installed[spi] = true, true
		ikeOf[spi] = sa
	}
	if i := bytes.LastIndexByte(log, '\n'); i >= 0 {
		log = log[:i]
	}
	going := map[string]bool{}
	for _, line := range strings.Split(string(log), "\n") {
		var sa string
		if m := killLineSA.FindStringSubmatch(line); m != nil {
			sa = m[1]
		}
		switch m := killEstablished.FindStringSubmatch(line); {
		case m != nil:
			want[m[1]] = true
			ikeOf[m[1]] = sa
			continue
		}
		if m := killClosing.FindStringSubmatch(line); m != nil {
			delete(want, m[1])
		}
		if m := killInstall.FindStringSubmatch(line); m != nil {
			installed[m[1]] = true
		}
		if m := killDelete.FindStringSubmatch(line); m != nil {
			delete(installed, m[1])
			delete(want, m[1])
		}
		if sa != "" && killIKEGoing.MatchString(line) {
			going[sa] = true
		}
	}
	for spi, sa := range ikeOf {
		if going[sa] {
			delete(want, spi)
		}
	}
	return want, installed
}

// takenBack lists the inbound SPIs of the CHILD_SAs the daemon has, with
// their IKE SAs as its log names them.
func takenBack(t *testing.T, bin, sock string) map[string]string {
	t.Helper()
	out, err := exec.Command(bin, "list-sas", "--socket", sock, "-o", "json").Output()
	if err != nil {
		t.Fatalf("list-sas: %v", err)
	}
	var sas []daemon.IKESA
	if err := json.Unmarshal(out, &sas); err != nil {
		t.Fatalf("list-sas: %v\n%s", err, out)
	}
	got := map[string]string{}
	for _, sa := range sas {
		for _, c := range sa.Children {
			got[c.SPIIn] = fmt.Sprintf("%s[%d]", sa.Name, sa.UniqueID)
		}
	}
	return got
}

func tail(b []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(len(lines)-n, 0):], "\n")
}

// ikeOfSPI names the IKE SA whose CHILD_SA with inbound SPI spi the log
// reports established ("<bench[7]>").
func ikeOfSPI(log []byte, spi string) string {
	for _, line := range strings.Split(string(log), "\n") {
		if m := killEstablished.FindStringSubmatch(line); m != nil && m[1] == spi {
			if m := killLineSA.FindStringSubmatch(line); m != nil {
				return "<" + m[1] + ">"
			}
		}
	}
	return "\x00"
}
