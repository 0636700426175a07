package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/xdpsec/xdpsec/internal/daemon"
	"github.com/xdpsec/xdpsec/internal/testenv"
)

// bulkSAs is how many IKE SAs (each with a CHILD_SA) TestDaemonsTerminateBulk
// establishes and then terminates with one command: the size of the
// terminate that lost DELETE responses in issue 13.
const bulkSAs = 2000

// TestDaemonsTerminateBulk reproduces issue 13 with real sockets: two
// daemons in their own namespaces over a veth pair, bulkSAs IKE SAs of one
// connection from a to b, then `xdpsec terminate --ike site` of all of
// them at once. Started all at once, 2,000 DELETEs brought 2,000
// responses faster than the engine read them, the default UDP receive
// buffer dropped about 250 (RcvbufErrors), and their SAs sat in DELETING
// until the retransmits gave up, past terminate's timeout. The daemon now
// keeps at most maxOutstandingSAOps deletes in flight and gives its IKE
// sockets 8 MiB buffers: the terminate must succeed within its default
// timeout, leave no SA on either side, and no datagram may be dropped for
// want of buffer space in either namespace while it runs.
//
// Left to the scheduler, the two daemons on a 2-core machine drain their
// sockets about as fast as the other fills them, and the old code lost
// nothing. So the test stops them in turns while the terminate runs
// (stallPair). With both fixes reverted (no window, --ike-receive-buffer
// -1) that loses hundreds of datagrams and the terminate times out; with
// either fix alone it passes.
func TestDaemonsTerminateBulk(t *testing.T) {
	if testing.Short() {
		t.Skipf("skipped in -short: establishes and terminates %d IKE SAs between two daemons", bulkSAs)
	}
	testenv.RequireRoot(t)
	testenv.RequireCommand(t, "nsenter")
	nsA := testenv.NewNetns(t, "xdpsec-ba")
	nsB := testenv.NewNetns(t, "xdpsec-bb")
	testenv.Veth(t, nsA, "wan0", "10.93.0.1/24", nsB, "wan0", "10.93.0.2/24")

	// unique = never on a: its IKE SAs started before the first is
	// established would all send INITIAL_CONTACT, and b would destroy
	// those established before the last of them arrived.
	aConf := strings.Replace(siteConf("10.93.0.1", "10.93.0.2", "moon.example.org", "sun.example.org", "10.1.0.0/16", "10.2.0.0/16", ""),
		"      local {", "      unique = never\n      local {", 1)
	a := newSite(t, "a", nsA, aConf)
	b := newSite(t, "b", nsB, siteConf("10.93.0.2", "10.93.0.1", "sun.example.org", "moon.example.org", "10.2.0.0/16", "10.1.0.0/16", ""))
	// Thousands of SAs: charon's lines for each of them would drown a
	// failure's log (printed whole), so only level 0.
	const quiet = "ike=0,knl=0"
	// All of a's IKE SAs come from one address: b must neither ask it for
	// COOKIEs nor limit its half-open SAs (--block-threshold 0: no limit).
	b.flags = []string{"--log", quiet, "--cookie-threshold", "-1", "--block-threshold", "0"}
	// Every initiate writes a's state file before it answers, exporting
	// every IKE SA: 2,000 initiates one after the other took 38 s on a
	// 2-core machine that way (88 s under other load), against 5 s
	// without. The terminate is what this test is about; a saves no state.
	a.flags = []string{"--log", quiet, "--state", "-"}
	a.start()
	b.start()

	// Establish: initiate without waiting, bulkSAs times (the connection
	// has no uniqueness policy, so each one is another IKE SA), then wait
	// until both sides list them all with their CHILD_SAs.
	start := time.Now()
	for i := 0; i < bulkSAs; i++ {
		a.ok("initiate", "--ike", "site", "--timeout=-1s")
	}
	established := func(sas []daemon.IKESA) int {
		n := 0
		for _, sa := range sas {
			if sa.State == "ESTABLISHED" && len(sa.Children) == 1 && sa.Children[0].State == "INSTALLED" {
				n++
			}
		}
		return n
	}
	for _, s := range []*site{a, b} {
		for deadline := time.Now().Add(60 * time.Second); ; {
			sas := s.rawSAs()
			if n := established(sas); n == bulkSAs && len(sas) == bulkSAs {
				break
			} else if time.Now().After(deadline) {
				t.Fatalf("%s: %d of %d IKE SAs established with their CHILD_SA, %d listed, after %v",
					s.name, n, bulkSAs, len(sas), time.Since(start).Round(time.Millisecond))
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
	t.Logf("%d IKE SAs with a CHILD_SA each established in %v", bulkSAs, time.Since(start).Round(time.Millisecond))

	// Terminate them all with one command and its default timeout
	// (10 s), the daemons stalled in turns (stallPair).
	before := [2]int64{udpRcvbufErrors(t, nsA), udpRcvbufErrors(t, nsB)}
	start = time.Now()
	rounds := stallPair(t, a.cmd.Process.Pid, b.cmd.Process.Pid)
	out, err := a.cli("terminate", "--ike", "site")
	took := time.Since(start)
	nRounds := rounds()
	after := [2]int64{udpRcvbufErrors(t, nsA), udpRcvbufErrors(t, nsB)}
	t.Logf("terminate of %d IKE SAs took %v, %d rounds of stops; RcvbufErrors a %d -> %d, b %d -> %d",
		bulkSAs, took.Round(time.Millisecond), nRounds, before[0], after[0], before[1], after[1])
	if err != nil {
		t.Fatalf("terminate --ike site after %v: %v\n%.300s", took.Round(time.Millisecond), err, out)
	}
	if n := strings.Count(out, " terminated"); n != bulkSAs {
		t.Errorf("terminate named %d terminated IKE SAs, want %d", n, bulkSAs)
	}
	for i, s := range []*site{a, b} {
		if after[i] != before[i] {
			t.Errorf("%s: UDP RcvbufErrors grew by %d during the terminate: datagrams dropped for want of socket buffer",
				s.name, after[i]-before[i])
		}
	}
	if sas := a.rawSAs(); len(sas) != 0 {
		t.Errorf("a still lists %d IKE SAs after terminate returned, the first %+v", len(sas), sas[0])
	}
	b.waitSAs("every IKE SA deleted", func(s []daemon.IKESA) bool { return len(s) == 0 })
}

// rawSAs lists the site's SAs straight from the control socket: the
// printed JSON of thousands of SAs would only be decoded again.
func (s *site) rawSAs() []daemon.IKESA {
	s.t.Helper()
	resp, err := daemon.Call(s.sock, daemon.Request{Command: daemon.CmdListSAs})
	if err != nil {
		s.t.Fatalf("%s: list-sas: %v", s.name, err)
	}
	return resp.SAs
}

// udpRcvbufErrors reads the Udp RcvbufErrors counter of the namespace's
// /proc/net/snmp: datagrams the kernel dropped because a UDP socket's
// receive buffer was full. It reads through /proc/thread-self, whose net
// directory is that of the thread inside the namespace (/proc/self/net
// would be the process's, outside it).
func udpRcvbufErrors(t *testing.T, ns *testenv.Netns) int64 {
	t.Helper()
	var n int64
	err := ns.Do(func() error {
		f, err := os.Open("/proc/thread-self/net/snmp")
		if err != nil {
			return err
		}
		defer f.Close()
		var header []string
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) == 0 || fields[0] != "Udp:" {
				continue
			}
			if header == nil {
				header = fields
				continue
			}
			for i, name := range header {
				if name == "RcvbufErrors" && i < len(fields) {
					n, err = strconv.ParseInt(fields[i], 10, 64)
					return err
				}
			}
			break
		}
		if err := sc.Err(); err != nil {
			return err
		}
		return fmt.Errorf("no Udp RcvbufErrors in /proc/net/snmp")
	})
	if err != nil {
		t.Fatalf("in %s: %v", ns.Name, err)
	}
	return n
}

// While the terminate runs, the two daemons are stopped in turns: b
// (a's DELETEs wait in b's socket), then a while b answers them (b's
// responses wait in a's), then both run. It stands for daemons busy or
// not scheduled while their peer goes on, what made the datagrams pile
// up in issue 13, and it makes the pile-up independent of how this
// machine schedules them: whatever its speed, a request keeps at most
// maxOutstandingSAOps datagrams on their way to either socket.
const (
	stallPeer    = 200 * time.Millisecond // b stopped, a running
	stallSelf    = 200 * time.Millisecond // a stopped, b running
	stallRunning = 200 * time.Millisecond // both running
)

// stallPair stops and continues the processes a and b (SIGSTOP,
// SIGCONT) as stallPeer, stallSelf and stallRunning say, until the
// returned function is called, which leaves both running and says how
// many rounds there were.
func stallPair(t *testing.T, a, b int) func() int {
	signal := func(pid int, sig syscall.Signal) bool {
		if err := syscall.Kill(pid, sig); err != nil {
			t.Errorf("kill -%v %d: %v", sig, pid, err)
			return false
		}
		return true
	}
	done, finished := make(chan struct{}), make(chan int)
	go func() {
		rounds := 0
		defer func() {
			syscall.Kill(a, syscall.SIGCONT)
			syscall.Kill(b, syscall.SIGCONT)
			finished <- rounds
		}()
		for {
			rounds++
			if !signal(b, syscall.SIGSTOP) {
				return
			}
			time.Sleep(stallPeer)
			if !signal(a, syscall.SIGSTOP) || !signal(b, syscall.SIGCONT) {
				return
			}
			time.Sleep(stallSelf)
			if !signal(a, syscall.SIGCONT) {
				return
			}
			select {
			case <-done:
				return
			case <-time.After(stallRunning):
			}
		}
	}()
	var rounds int
	var once sync.Once
	stop := func() int {
		once.Do(func() {
			close(done)
			rounds = <-finished
		})
		return rounds
	}
	// Before the sites' cleanups (registered earlier, run later): a
	// stopped daemon would not stop on SIGTERM.
	t.Cleanup(func() { stop() })
	return stop
}
