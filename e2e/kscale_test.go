package e2e

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xdpsec/xdpsec/ike"
	"github.com/xdpsec/xdpsec/ike/transform"
	"github.com/xdpsec/xdpsec/internal/ikesocket"
	"github.com/xdpsec/xdpsec/internal/testenv"
)

// kscaleEnv sets the number of tunnels of TestKernelScale; `make
// bench-kernel` asks for 10,000.
const kscaleEnv = "XDPSEC_KSCALE_TUNNELS"

// The address plan of TestKernelScale: the responder's WAN and LAN, the
// initiators' outer addresses (one AnyIP route answers for all of them)
// and their inner ones, the traffic selectors.
var (
	kscaleResp      = netip.MustParseAddr("192.0.2.1")
	kscaleHop       = netip.MustParseAddr("192.0.2.2")
	kscaleRespLAN   = netip.MustParsePrefix("10.1.0.0/24")
	kscaleOuter     = netip.MustParsePrefix("10.200.0.0/16")
	kscaleInner     = netip.MustParsePrefix("10.208.0.0/16")
	kscalePSK       = "kernel scale test's shared secret"
	kscaleProposals = kscaleProposal{"aes128gcm16-prfsha256-x25519", "aes128gcm16"}
)

// kscaleProposal is an IKE proposal and its ESP one.
type kscaleProposal struct{ IKE, ESP string }

// kscaleAddr is tunnel i's address (1-based) in prefix: .0.1, .0.2, ...,
// skipping the .0 and .255 of each /24.
func kscaleAddr(prefix netip.Prefix, i int) netip.Addr {
	b := prefix.Addr().As4()
	i--
	b[2], b[3] = byte(i/254), byte(i%254+1)
	return netip.AddrFrom4(b)
}

// kscaleConf is the responder's swanctl.conf, the same for our daemon and
// for charon: one connection per tunnel, from its initiator's outer
// address, with a CHILD_SA from the responder's LAN to the initiator's
// inner address on if_id i (route-based: an XFRM interface per tunnel).
func kscaleConf(n int) string {
	var b strings.Builder
	b.WriteString("connections {\n")
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, `   t%[1]d {
      local_addrs = %[2]s
      remote_addrs = %[3]s
      proposals = %[6]s
      local {
         auth = psk
      }
      remote {
         auth = psk
      }
      children {
         net {
            local_ts = %[4]s
            remote_ts = %[5]s/32
            esp_proposals = %[7]s
            if_id_in = %[1]d
            if_id_out = %[1]d
         }
      }
   }
`, i, kscaleResp, kscaleAddr(kscaleOuter, i), kscaleRespLAN, kscaleAddr(kscaleInner, i), kscaleProposals.IKE, kscaleProposals.ESP)
	}
	fmt.Fprintf(&b, "}\nsecrets {\n   ike-any {\n      secret = \"%s\"\n   }\n}\n", kscalePSK)
	return b.String()
}

// kscaleResult is one responder's bring-up of n tunnels.
type kscaleResult struct {
	name     string
	n        int
	load     time.Duration // configuration loaded (daemon start, swanctl --load-all)
	bringUp  time.Duration // first IKE_SA_INIT to the last CHILD_SA established
	kernel   time.Duration // ... to the last SA in the kernel's SAD
	cpu      time.Duration // the responder's utime+stime during the bring-up
	rssKiB   int64         // the responder's VmRSS afterwards
	hwmKiB   int64         // and its VmHWM
	states   int           // XFRM states in the SAD afterwards
	policies [3]int        // XFRM policies: in, out, fwd
	retrans  int64         // the initiators' retransmissions
	failed   int64
	sysCPU   time.Duration // the whole guest's busy time during the bring-up
}

func (r kscaleResult) perSec() float64 { return float64(r.n) / r.bringUp.Seconds() }
func (r kscaleResult) cpuPerTunnel() time.Duration {
	return r.cpu / time.Duration(max(r.n, 1))
}

// TestKernelScale: N route-based tunnels (IKE SA, CHILD_SA with an if_id
// of its own, real XFRM SAs and policies) brought up against a responder
// in the guest, first our daemon (xdp_wan attached, the kernel dataplane),
// then strongSwan's charon (kernel-netlink) with the same swanctl.conf and
// the same initiators (our IKE engines, in a namespace of their own, each
// tunnel from an address of its own). Each responder gets a fresh
// namespace with the N XFRM interfaces made beforehand (charon makes
// none; our daemon takes the ones it finds). Reported: the time to bring
// all N up, establishments per second, the responder's CPU time per
// tunnel and its memory, the SAs and policies in the kernel afterwards
// (checked: 2N SAs, N policies per direction), and ours against charon's
// as ratios. N is small in the VM test suite and 10,000 with `make
// bench-kernel` ($XDPSEC_KSCALE_TUNNELS).
func TestKernelScale(t *testing.T) {
	if _, err := os.Stat(charonBin); err != nil {
		t.Skipf("skipped: charon is not installed on the host (strongswan-charon): %v", err)
	}
	requireModule(t, "xfrm_interface")
	n := 50 // the VM test suite: a functional check, about 20 s
	if os.Getenv(benchEnv) != "" {
		n = 10000
	}
	if v := os.Getenv(kscaleEnv); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 || n > 254*250 {
			t.Fatalf("%s=%q: want a number of tunnels from 1 to %d", kscaleEnv, v, 254*250)
		}
	}
	conf := kscaleConf(n)
	var results []kscaleResult
	for _, name := range []string{"ours", "charon"} {
		ok := t.Run(name, func(t *testing.T) {
			results = append(results, kscaleRun(t, name, n, conf))
		})
		if !ok {
			return
		}
	}
	ours, theirs := results[0], results[1]
	for _, r := range results {
		t.Logf("%s: %d tunnels up in %v (%.1f/s; kernel SAD complete after %v), configuration loaded in %v, CPU %v (%v per tunnel), RSS %d KiB (peak %d), %d SAs, policies in/out/fwd %v, %d retransmissions",
			r.name, r.n, r.bringUp.Round(time.Millisecond), r.perSec(), r.kernel.Round(time.Millisecond), r.load.Round(time.Millisecond),
			r.cpu.Round(time.Millisecond), r.cpuPerTunnel().Round(time.Microsecond), r.rssKiB, r.hwmKiB, r.states, r.policies, r.retrans)
	}
	t.Logf("ours/charon: bring-up time %.2f, CPU per tunnel %.2f, RSS %.2f",
		ours.bringUp.Seconds()/theirs.bringUp.Seconds(), ours.cpu.Seconds()/theirs.cpu.Seconds(), float64(ours.rssKiB)/float64(theirs.rssKiB))
	release, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	line := fmt.Sprintf("%s vm-kscale kernel=%s tunnels=%d", benchLine, strings.TrimSpace(string(release)), n)
	for _, r := range results {
		for _, kv := range []struct {
			key, val string
		}{
			{"s", fmt.Sprintf("%.3f", r.bringUp.Seconds())}, {"kernel_s", fmt.Sprintf("%.3f", r.kernel.Seconds())},
			{"load_s", fmt.Sprintf("%.3f", r.load.Seconds())}, {"cpu_s", fmt.Sprintf("%.3f", r.cpu.Seconds())},
			{"rss_kib", strconv.FormatInt(r.rssKiB, 10)}, {"hwm_kib", strconv.FormatInt(r.hwmKiB, 10)},
			{"states", strconv.Itoa(r.states)}, {"policies", fmt.Sprintf("%d/%d/%d", r.policies[0], r.policies[1], r.policies[2])},
			{"retrans", strconv.FormatInt(r.retrans, 10)}, {"guest_busy_s", fmt.Sprintf("%.3f", r.sysCPU.Seconds())},
		} {
			line += " " + r.name + "_" + kv.key + "=" + kv.val
		}
	}
	fmt.Println(line)
}

// kscaleRun brings n tunnels up against one responder ("ours" or
// "charon") in namespaces of its own.
func kscaleRun(t *testing.T, name string, n int, conf string) kscaleResult {
	res := kscaleResult{name: name, n: n}
	resp := &site{Netns: newNetns(t, "kresp"), name: "R", wan: "wan-r", outer: kscaleResp}
	gen := newNetns(t, "kgen")
	ip(t, resp.Netns, "link add wan-r type veth peer name wan-g netns "+gen.Name)
	sysctl(t, resp.Netns, "net.ipv6.conf.default.disable_ipv6", "1")
	ip(t, resp.Netns, "link set lo up", "addr add "+kscaleResp.String()+"/24 dev wan-r", "link set wan-r up",
		"addr add "+kscaleRespLAN.Addr().Next().String()+"/32 dev lo",
		"route add "+kscaleOuter.String()+" via "+kscaleHop.String())
	ip(t, gen, "link set lo up", "addr add "+kscaleHop.String()+"/24 dev wan-g", "link set wan-g up",
		"route add local "+kscaleOuter.String()+" dev lo")
	// The XFRM interfaces, one per if_id, as an operator makes them for
	// charon; our daemon finds them.
	start := time.Now()
	var cmds []string
	for i := 1; i <= n; i++ {
		cmds = append(cmds, fmt.Sprintf("link add xfrm%d type xfrm if_id %d", i, i), fmt.Sprintf("link set xfrm%d up", i))
	}
	for c := range slices.Chunk(cmds, 2000) {
		ip(t, resp.Netns, c...)
	}
	t.Logf("%s: %d XFRM interfaces made in %v", name, n, time.Since(start).Round(time.Millisecond))

	var pid int
	start = time.Now()
	switch name {
	case "ours":
		g := newGateway(t, resp, conf)
		g.args = []string{"--cookie-threshold", "-1", "--block-threshold", "0", "--vici", ""}
		// Thousands of connections under TCG: minutes.
		g.startTimeout = 60*time.Second + time.Duration(n)*30*time.Millisecond
		if os.Getenv(kscaleProfileEnv) != "" {
			g.args = append(g.args, "--cpuprofile", filepath.Join(g.dir, "cpu.prof"))
		}
		start = time.Now() // xdpsec load is not the configuration's
		g.start()
		pid = g.cmd.Process.Pid
		res.load = time.Since(start)
		// The daemon's start as it logged it (one line per step,
		// connections listed on one line, cut short here).
		if b, err := os.ReadFile(g.logPath); err == nil {
			for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
				if len(l) > 160 {
					l = l[:160] + "..."
				}
				t.Logf("daemon| %s", l)
			}
		}
		defer func() {
			if os.Getenv(kscaleProfileEnv) != "" {
				g.stop()
				kscaleProfile(t, filepath.Join(g.dir, "cpu.prof"))
			}
		}()
	case "charon":
		startCharonWith(t, resp, conf, charonOptions{pid: &pid,
			settings: "   cookie_threshold = 1000000\n   block_threshold = 1000000\n"})
		res.load = time.Since(start)
	}
	t.Logf("%s: %d connections loaded in %v", name, n, res.load.Round(time.Millisecond))

	g, err := newKscaleGen(gen, n)
	if err != nil {
		t.Fatal(err)
	}
	defer g.close()
	cpu0, err := procCPU(pid)
	if err != nil {
		t.Fatal(err)
	}
	sys0 := guestBusy()
	start = time.Now()
	// The stall limit outlasts the initiators' whole retransmission
	// schedule (10+20+40+80+160 s): a tunnel whose datagrams were lost in
	// the slow guest is still being retried, not lost, until then.
	if err := g.bringUp(n, 32, 320*time.Second, func(f string, a ...any) { t.Logf(name+": "+f, a...) }); err != nil {
		// Which side lost them: the initiators' count, or the
		// responder's tunnels.
		t.Fatalf("%s: %v (the responder's SAD holds %d SAs, the initiators sent %d retransmissions)",
			name, err, xfrmStateCount(t, resp.Netns), g.retrans.Load())
	}
	res.bringUp = time.Since(start)
	res.retrans, res.failed = g.retrans.Load(), g.failed.Load()
	// Both responders install the SAs before they answer IKE_AUTH: the
	// SAD is complete at once; waited for in case one does not.
	deadline := time.Now().Add(time.Minute)
	for {
		res.states = xfrmStateCount(t, resp.Netns)
		if res.states >= 2*n || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	res.kernel = time.Since(start)
	cpu1, err := procCPU(pid)
	if err != nil {
		t.Fatal(err)
	}
	res.cpu = cpu1 - cpu0
	res.sysCPU = guestBusy() - sys0
	res.rssKiB, res.hwmKiB = procMem(t, pid)
	res.policies = xfrmPolicyCount(t, resp.Netns)
	if res.states != 2*n {
		t.Errorf("%s: %d XFRM states in the SAD, want %d (two per tunnel)", name, res.states, 2*n)
	}
	for i, dir := range []string{"in", "out", "fwd"} {
		if res.policies[i] != n {
			t.Errorf("%s: %d XFRM policies %s, want %d (one per tunnel)", name, res.policies[i], dir, n)
		}
	}
	// Each tunnel's SAs carry its if_id: the last one's are there.
	out, _ := run(resp.Netns, "", "ip", "xfrm", "state", "list", "src", kscaleAddr(kscaleOuter, n).String())
	if !strings.Contains(out, fmt.Sprintf("if_id %#x", n)) {
		t.Errorf("%s: tunnel %d's inbound SA has no if_id %#x:\n%s", name, n, n, out)
	}
	t.Logf("%s: %d tunnels in %v (%.1f/s), responder CPU %v (%v per tunnel; guest busy %v), RSS %d KiB, %d SAs, policies in/out/fwd %v, %d retransmissions",
		name, n, res.bringUp.Round(time.Millisecond), res.perSec(), res.cpu, res.cpuPerTunnel(), res.sysCPU.Round(time.Millisecond),
		res.rssKiB, res.states, res.policies, res.retrans)
	return res
}

// kscaleProfileEnv, set (by `make bench-kernel`), has our daemon write a
// CPU profile; the test leaves it beside the xdpsec binary as
// kscale-cpu.prof, in the directory vmtest shares with the guest, and
// vmtest copies it to the path the variable names on the host (the
// guest cannot run go tool pprof in reasonable time: it builds pprof).
const kscaleProfileEnv = "XDPSEC_KSCALE_CPUPROFILE"

// kscaleProfile copies the daemon's CPU profile where vmtest finds it.
func kscaleProfile(t *testing.T, path string) {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Errorf("the daemon's CPU profile: %v", err)
		return
	}
	dst := filepath.Join(filepath.Dir(xdpsecBin(t)), "kscale-cpu.prof")
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Errorf("the daemon's CPU profile: %v", err)
		return
	}
	t.Logf("our daemon's CPU profile: %s (%d bytes)", dst, len(b))
}

// procCPU is a process's utime+stime.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name (which may hold spaces) in parens.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: short", pid)
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100, nil // USER_HZ
}

// guestBusy is the time all CPUs spent not idle, from /proc/stat.
func guestBusy() time.Duration {
	b, _ := os.ReadFile("/proc/stat")
	line, _, _ := strings.Cut(string(b), "\n")
	var busy int64
	for i, f := range strings.Fields(line)[1:] {
		v, _ := strconv.ParseInt(f, 10, 64)
		if i != 3 && i != 4 { // idle, iowait
			busy += v
		}
	}
	return time.Duration(busy) * time.Second / 100
}

// procMem is a process's VmRSS and VmHWM in KiB.
func procMem(t *testing.T, pid int) (rss, hwm int64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) >= 2 {
			v, _ := strconv.ParseInt(f[1], 10, 64)
			switch f[0] {
			case "VmRSS:":
				rss = v
			case "VmHWM:":
				hwm = v
			}
		}
	}
	return rss, hwm
}

var (
	sadCount = regexp.MustCompile(`SAD count (\d+)`)
	spdCount = regexp.MustCompile(`SPD IN\s+(\d+) OUT\s+(\d+) FWD\s+(\d+)`)
)

// xfrmStateCount is the number of SAs in the namespace's SAD, as the
// kernel counts them (`ip -s xfrm state count`).
func xfrmStateCount(t *testing.T, ns *testenv.Netns) int {
	out, err := run(ns, "", "ip", "-s", "xfrm", "state", "count")
	m := sadCount.FindStringSubmatch(out)
	if err != nil || m == nil {
		t.Fatalf("ip -s xfrm state count: %v\n%s", err, out)
	}
	v, _ := strconv.Atoi(m[1])
	return v
}

// xfrmPolicyCount is the number of policies in the namespace's SPD by
// direction (in, out, fwd), socket policies left out.
func xfrmPolicyCount(t *testing.T, ns *testenv.Netns) [3]int {
	out, err := run(ns, "", "ip", "-s", "xfrm", "policy", "count")
	m := spdCount.FindStringSubmatch(out)
	if err != nil || m == nil {
		t.Fatalf("ip -s xfrm policy count: %v\n%s", err, out)
	}
	var c [3]int
	for i := range c {
		c[i], _ = strconv.Atoi(m[i+1])
	}
	t.Logf("ip -s xfrm policy count:\n%s", out)
	return c
}

// kscaleGen is the initiators: our IKE engines (one per CPU, each owning
// every K-th tunnel) on one set of IKE sockets in the generator's
// namespace, with a dataplane that installs nothing.
type kscaleGen struct {
	socks   *ikesocket.Sockets
	engines []*kscaleEngine
	wg      sync.WaitGroup

	established, failed, retrans atomic.Int64
	slots                        chan struct{}
}

type kscaleEngine struct {
	e  *ike.Engine
	in chan ike.Datagram
}

func newKscaleGen(ns *testenv.Netns, n int) (*kscaleGen, error) {
	g := &kscaleGen{}
	err := ns.Do(func() (err error) {
		g.socks, err = ikesocket.Listen(ikesocket.Config{Addrs: []netip.Addr{netip.IPv4Unspecified()}, NoEncap: true, ReceiveBuffer: 8 << 20})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("initiators: %w", err)
	}
	k := 2
	for range k {
		ke := &kscaleEngine{in: make(chan ike.Datagram, 4096)}
		e, err := ike.New(ike.Config{
			Logger: slog.New(kscaleLog{g}), Sender: kscaleSender{g.socks}, Dataplane: &nullDataplane{},
			Credentials:       ike.Credentials{Shared: []ike.SharedKey{{Secret: []byte(kscalePSK)}}},
			RetransmitTimeout: 10 * time.Second, RetransmitTries: 5,
		})
		if err != nil {
			g.close()
			return nil, err
		}
		ke.e = e
		g.engines = append(g.engines, ke)
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			for d := range ke.in {
				ke.e.HandleDatagram(d)
			}
		}()
	}
	for i := 1; i <= n; i++ {
		src, inner := kscaleAddr(kscaleOuter, i), kscaleAddr(kscaleInner, i)
		c := &ike.Connection{
			Name: fmt.Sprintf("t%d", i), LocalAddrs: []netip.Addr{src}, RemoteAddrs: []netip.Addr{kscaleResp},
			NoMobike:  true,
			Proposals: transform.MustParseProposals(transform.ProtoIKE, kscaleProposals.IKE),
			Local:     []*ike.AuthConfig{{Auth: ike.AuthPSK}},
			Remote:    []*ike.AuthConfig{{Auth: ike.AuthPSK}},
			Children: []*ike.ChildConfig{{Name: "net", LocalTS: []ike.TSSpec{{TS: ike.HostTS(inner)}},
				RemoteTS:     ike.MustParseTSSpecs(kscaleRespLAN.String()),
				ESPProposals: transform.MustParseProposals(transform.ProtoESP, kscaleProposals.ESP)}},
		}
		if err := g.engines[i%k].e.AddConnection(c); err != nil {
			g.close()
			return nil, err
		}
	}
	g.socks.Run(g.dispatch)
	return g, nil
}

// dispatch hands a datagram to the engine owning its destination.
func (g *kscaleGen) dispatch(d ikesocket.Datagram) {
	a := d.Local.Addr().Unmap()
	if !kscaleOuter.Contains(a) {
		return
	}
	b := a.As4()
	i := int(b[2])*254 + int(b[3])
	ke := g.engines[i%len(g.engines)]
	ke.in <- ike.Datagram{Local: d.Local, Remote: d.Remote, Data: slices.Clone(d.Data)}
}

// bringUp initiates tunnels 1..n keeping at most window in flight, and
// returns when all are established, or with an error when one failed or
// nothing happened for stall.
func (g *kscaleGen) bringUp(n, window int, stall time.Duration, logf func(string, ...any)) error {
	g.slots = make(chan struct{}, window)
	errc := make(chan error, 1)
	go func() {
		for i := 1; i <= n; i++ {
			g.slots <- struct{}{}
			if _, err := g.engines[i%len(g.engines)].e.Initiate(fmt.Sprintf("t%d", i)); err != nil {
				errc <- err
				return
			}
		}
	}()
	last, lastDone := time.Now(), int64(-1)
	start, lastLog := time.Now(), time.Now()
	for {
		done := g.established.Load()
		if time.Since(lastLog) >= time.Minute {
			lastLog = time.Now()
			logf("%d of %d established after %v", done, n, time.Since(start).Round(time.Second))
		}
		if f := g.failed.Load(); f > 0 {
			return fmt.Errorf("%d tunnels failed (%d established)", f, done)
		}
		if done >= int64(n) {
			return nil
		}
		select {
		case err := <-errc:
			return err
		default:
		}
		if done != lastDone {
			last, lastDone = time.Now(), done
		} else if time.Since(last) > stall {
			return fmt.Errorf("bring-up stalled: %d of %d established after %v", done, n, time.Since(last))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (g *kscaleGen) close() {
	if g.socks != nil {
		g.socks.Close()
	}
	for _, ke := range g.engines {
		close(ke.in)
	}
	g.wg.Wait()
	for _, ke := range g.engines {
		ke.e.Close()
	}
}

// kscaleLog counts the engines' established CHILD_SAs, failures and
// retransmissions from their log lines.
type kscaleLog struct{ g *kscaleGen }

func (h kscaleLog) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelInfo }
func (h kscaleLog) Handle(_ context.Context, r slog.Record) error {
	m := r.Message
	switch {
	case strings.HasPrefix(m, "CHILD_SA ") && strings.Contains(m, " established with SPIs"):
		h.g.established.Add(1)
	case strings.HasPrefix(m, "sending retransmit "):
		h.g.retrans.Add(1)
		return nil
	case strings.Contains(m, "failed") || strings.Contains(m, "AUTHENTICATION_FAILED") || strings.Contains(m, "no CHILD_SA built") ||
		strings.Contains(m, "NO_PROPOSAL_CHOSEN") || strings.Contains(m, "TS_UNACCEPTABLE"):
		h.g.failed.Add(1)
		fmt.Fprintf(os.Stderr, "initiator: %s\n", m)
	default:
		return nil
	}
	if h.g.slots != nil {
		select {
		case <-h.g.slots:
		default:
		}
	}
	return nil
}
func (h kscaleLog) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h kscaleLog) WithGroup(string) slog.Handler      { return h }

type kscaleSender struct{ s *ikesocket.Sockets }

func (s kscaleSender) Send(d ike.Datagram) error {
	return s.s.Send(ikesocket.Datagram{Local: d.Local, Remote: d.Remote, Data: d.Data})
}

// nullDataplane hands out SPIs and installs nothing: the initiators'
// side of the tunnels is not under test.
type nullDataplane struct{ spi atomic.Uint32 }

func (d *nullDataplane) AllocateSPI(ike.SAProto, netip.Addr, netip.Addr) (uint32, error) {
	return 0xc0000000 + d.spi.Add(1), nil
}
func (d *nullDataplane) AddSA(*ike.SA) error                   { return nil }
func (d *nullDataplane) UpdateSA(*ike.SA) error                { return nil }
func (d *nullDataplane) DeleteSA(ike.SAID) error               { return nil }
func (d *nullDataplane) MigrateSA(ike.SAID, *ike.SA) error     { return nil }
func (d *nullDataplane) MigratePolicy(_, _ *ike.Policy) error  { return nil }
func (d *nullDataplane) AddPolicy(*ike.Policy) error           { return nil }
func (d *nullDataplane) DeletePolicy(*ike.Policy) error        { return nil }
func (d *nullDataplane) QuerySA(ike.SAID) (ike.SAStats, error) { return ike.SAStats{}, nil }
func (d *nullDataplane) AddVirtualIP(*ike.VirtualIP) error     { return nil }
func (d *nullDataplane) DeleteVirtualIP(*ike.VirtualIP) error  { return nil }
