package e2e

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/xdpsec/xdpsec/internal/daemon"
	"github.com/xdpsec/xdpsec/internal/fleet/fleettest"
	"github.com/xdpsec/xdpsec/internal/testenv"
)

// The fleet of issue 20 in the guest: two gateways share the public
// address 192.0.2.1, which keepalived (VRRP) moves between them together
// with the LAN's gateway address 10.2.0.1; each runs its own daemon with
// its own WAN address, both members of one fleet in one etcd. charon is
// the peer site, with a net-to-net tunnel to the shared address:
//
//	                     WAN br0 192.0.2.0/24        LAN br1 10.2.0.0/24
//	peer 192.0.2.20 ──┐          ┌─ gw1 192.0.2.11 ─┐ 10.2.0.2
//	  (charon)        ├── br0 ───┤   (+192.0.2.1)   ├── br1 ── LAN host 10.2.0.10
//	etcd 192.0.2.30 ──┘          └─ gw2 192.0.2.12 ─┘ 10.2.0.3 (+10.2.0.1 with the master)
//	LAN host 10.1.0.2 behind the peer (10.1.0.0/24)
const (
	fleetShared  = "192.0.2.1"
	fleetLANVIP  = "10.2.0.1"
	fleetEtcd    = "192.0.2.30"
	fleetPeer    = "192.0.2.20"
	fleetSecret  = "an end-to-end fleet test's shared secret"
	fleetLANHost = "10.2.0.10"
)

// fleetNet is the topology above.
type fleetNet struct {
	br    *testenv.Netns
	gw    [2]*site // gw1, gw2: outer is the gateway's own WAN address
	peer  *site    // charon's, with its LAN host
	lan   *testenv.Netns
	lanA  netip.Addr
	etcd  *testenv.Netns
	inner netip.Prefix // the gateways' LAN
}

func newFleetNet(t *testing.T) *fleetNet {
	t.Helper()
	n := &fleetNet{br: newNetns(t, "fl-br"), inner: netip.MustParsePrefix("10.2.0.0/24"),
		lanA: netip.MustParseAddr(fleetLANHost)}
	ip(t, n.br, "link set lo up", "link add br0 type bridge", "link set br0 up",
		"link add br1 type bridge", "link set br1 up")
	// port links dev in ns to bridge br under the name port.
	port := func(ns *testenv.Netns, dev, br, port string) {
		ip(t, ns, "link add "+dev+" type veth peer name "+port+" netns "+n.br.Name)
		ip(t, n.br, "link set "+port+" master "+br, "link set "+port+" up")
	}
	for i := range n.gw {
		name := fmt.Sprintf("gw%d", i+1)
		s := &site{Netns: newNetns(t, "fl-"+name), name: name, wan: "wan-" + name, lan: "lan-" + name,
			outer: netip.AddrFrom4([4]byte{192, 0, 2, byte(11 + i)}), inner: n.inner,
			host: netip.AddrFrom4([4]byte{10, 2, 0, byte(2 + i)})}
		port(s.Netns, s.wan, "br0", "bw-"+name)
		port(s.Netns, s.lan, "br1", "bl-"+name)
		sysctl(t, s.Netns, "net.ipv4.ip_forward", "1")
		ip(t, s.Netns, "link set lo up", addrCmd(s.wan, netip.PrefixFrom(s.outer, 24)), "link set "+s.wan+" up",
			addrCmd(s.lan, netip.PrefixFrom(s.host, 24)), "link set "+s.lan+" up",
			"route add 10.1.0.0/24 via "+fleetPeer)
		n.gw[i] = s
	}
	n.lan = newNetns(t, "fl-lan")
	port(n.lan, "lan0", "br1", "bl-host")
	ip(t, n.lan, "link set lo up", addrCmd("lan0", netip.PrefixFrom(n.lanA, 24)), "link set lan0 up",
		"route add default via "+fleetLANVIP)

	n.peer = &site{Netns: newNetns(t, "fl-peer"), name: "peer", wan: "wan-peer",
		outer: netip.MustParseAddr(fleetPeer), inner: netip.MustParsePrefix("10.1.0.0/24"),
		host: netip.MustParseAddr("10.1.0.1")}
	port(n.peer.Netns, n.peer.wan, "br0", "bw-peer")
	sysctl(t, n.peer.Netns, "net.ipv4.ip_forward", "1")
	hostAddr := addLAN(t, n.peer)
	ip(t, n.peer.Netns, "link set lo up", addrCmd(n.peer.wan, netip.PrefixFrom(n.peer.outer, 24)),
		"link set "+n.peer.wan+" up", hostAddr, "link set "+n.peer.lan+" up",
		"route add "+n.inner.String()+" via "+fleetShared+" src "+n.peer.host.String())

	n.etcd = newNetns(t, "fl-etcd")
	port(n.etcd, "wan-etcd", "br0", "bw-etcd")
	ip(t, n.etcd, "link set lo up", "addr add "+fleetEtcd+"/24 dev wan-etcd", "link set wan-etcd up")
	return n
}

// startEtcd runs a one-member etcd (Debian's etcd-server, 3.4) in ns
// serving clients at addr:2379, with its data in a temporary directory;
// it stops when the test ends. It returns the client URL. Unlike
// fleettest.StartWith it fails without etcd: the guest must have it.
func startEtcd(t *testing.T, ns *testenv.Netns, addr string) string {
	t.Helper()
	if _, err := os.Stat(fleettest.Binary()); err != nil {
		t.Fatalf("etcd is not installed on the host (etcd-server): %v", err)
	}
	dir := t.TempDir()
	url, stop, err := fleettest.StartServerWith(fleettest.Options{Dir: dir, Netns: ns, Host: addr, Port: 2379})
	if err != nil {
		t.Fatalf("etcd: %v", err)
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "etcd.log"))
			t.Logf("etcd log:\n%s", b)
		}
	})
	return url
}

const keepalivedBin = "/usr/sbin/keepalived"

// vrrp is one gateway's keepalived: instances wan (the shared address on
// the WAN) and lan (the LAN's gateway address) in one sync group, both
// down (FAULT) while the gateway's daemon is not running; the notify
// script of wan tells the daemon (`xdpsec fleet notify`).
type vrrp struct {
	g         *gateway
	conf      string
	notifyLog string
	pidFile   string // the daemon's PID, for the check
	cmd       *exec.Cmd
	exited    chan error
	logPath   string
}

// keepalivedConf is what the README's fleet section shows, with the
// test's paths and interfaces.
func keepalivedConf(g *gateway, priority int, check, notify string) string {
	return fmt.Sprintf(`global_defs {
   router_id %[1]s
   script_user root
}
# The daemon is alive: a SIGKILLed daemon takes both addresses away
# within a second or so (track_process needs the process connector,
# which works in the initial network namespace only). A check that
# overruns its timeout fails: under TCG on a busy host one took 3 s.
vrrp_script xdpsec_alive {
   script "%[2]s"
   interval 1
   timeout 10
   fall 1
   rise 1
}
vrrp_sync_group fleet {
   group {
      wan
      lan
   }
}
vrrp_instance wan {
   state BACKUP
   nopreempt
   interface %[3]s
   virtual_router_id 20
   priority %[4]d
   advert_int 1
   virtual_ipaddress {
      %[5]s/24 dev %[3]s
   }
   track_script {
      xdpsec_alive
   }
   notify "%[6]s"
}
vrrp_instance lan {
   state BACKUP
   nopreempt
   interface %[7]s
   virtual_router_id 21
   priority %[4]d
   advert_int 1
   virtual_ipaddress {
      %[8]s/24 dev %[7]s
   }
   track_script {
      xdpsec_alive
   }
}
`, g.name, check, g.wan, priority, fleetShared, notify, g.lan, fleetLANVIP)
}

// startVRRP writes g's keepalived configuration, check and notify
// scripts and runs keepalived (VRRP only) in g's namespace; it stops when
// the test ends. The daemon must be running: the check is that its
// process is alive, by kill -0 on the PID writeDaemonPID writes, in a
// shell script that runs nothing else. It was pgrep -F: pgrep reads
// /proc/N/cmdline of every process, which waits while that process's
// memory map is busy, and on the one-CPU guest both gateways' checks ran
// past their 10 s timeout with keepalived itself answering every second
// (both instances in FAULT, daemons alive).
func startVRRP(t *testing.T, g *gateway, priority int) *vrrp {
	t.Helper()
	if _, err := os.Stat(keepalivedBin); err != nil {
		t.Fatalf("keepalived is not installed on the host (keepalived): %v", err)
	}
	dir := t.TempDir()
	v := &vrrp{g: g, conf: filepath.Join(dir, "keepalived.conf"), notifyLog: filepath.Join(dir, "notify.log"),
		pidFile: filepath.Join(dir, "xdpsec.pid"), logPath: filepath.Join(dir, "keepalived.log"), exited: make(chan error, 1)}
	if g.cmd == nil {
		t.Fatalf("site %s: keepalived tracks the daemon, which is not running", g.name)
	}
	v.writeDaemonPID()
	check := filepath.Join(dir, "xdpsec-alive")
	notify := filepath.Join(dir, "xdpsec-notify")
	scripts := map[string]string{
		check: fmt.Sprintf("#!/bin/sh\nread -r pid <%s && kill -0 \"$pid\"\n", v.pidFile),
		// keepalived calls it with TYPE NAME STATE PRIORITY; the CLI
		// takes keepalived's order.
		notify: fmt.Sprintf("#!/bin/sh\necho \"$(date +%%s.%%N) $*\" >>%[1]s\nXDPSEC_SOCKET=%[2]s exec %[3]s fleet notify \"$@\" >>%[1]s 2>&1\n",
			v.notifyLog, g.sock, g.bin),
		v.conf: keepalivedConf(g, priority, check, notify),
	}
	for p, c := range scripts {
		mode := os.FileMode(0o700)
		if p == v.conf { // keepalived skips an executable configuration
			mode = 0o600
		}
		if err := os.WriteFile(p, []byte(c), mode); err != nil {
			t.Fatal(err)
		}
	}
	logf, err := os.Create(v.logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	v.cmd = exec.Command(keepalivedBin, "--dont-fork", "--log-console", "--log-detail", "--vrrp",
		"--use-file", v.conf, "--pid", filepath.Join(dir, "keepalived.pid"), "--vrrp_pid", filepath.Join(dir, "vrrp.pid"))
	v.cmd.Stdout, v.cmd.Stderr = logf, logf
	if err := g.Do(v.cmd.Start); err != nil {
		t.Fatalf("site %s: start keepalived: %v", g.name, err)
	}
	go func() { v.exited <- v.cmd.Wait() }()
	t.Cleanup(func() {
		v.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-v.exited:
		case <-time.After(10 * time.Second):
			v.cmd.Process.Kill()
			<-v.exited
		}
		if t.Failed() {
			b, _ := os.ReadFile(v.logPath)
			n, _ := os.ReadFile(v.notifyLog)
			t.Logf("site %s keepalived log:\n%s\nnotify log:\n%s", g.name, b, n)
		}
	})
	return v
}

// writeDaemonPID records the running daemon's PID for the check.
func (v *vrrp) writeDaemonPID() {
	if err := os.WriteFile(v.pidFile, []byte(strconv.Itoa(v.g.cmd.Process.Pid)+"\n"), 0o644); err != nil {
		v.g.t.Fatal(err)
	}
}

// holds reports whether the gateway has addr on one of its interfaces.
func holds(g *gateway, addr string) bool {
	out, _ := run(g.Netns, "", "ip", "-4", "-o", "addr", "show")
	return regexp.MustCompile(`inet ` + regexp.QuoteMeta(addr) + `/`).MatchString(out)
}

// notified is what keepalived told the notify script so far.
func (v *vrrp) notified() string {
	b, _ := os.ReadFile(v.notifyLog)
	return string(b)
}

// waitMaster waits until v's gateway holds both addresses and its notify
// script was called with MASTER for wan.
func (v *vrrp) waitMaster(timeout time.Duration) {
	v.g.t.Helper()
	waitUntil(v.g.t, timeout, "site "+v.g.name+" VRRP master", func() error {
		select {
		case err := <-v.exited:
			v.exited <- err // for the cleanup
			b, _ := os.ReadFile(v.logPath)
			v.g.t.Fatalf("site %s: keepalived exited: %v\n%s", v.g.name, err, b)
		default:
		}
		if !holds(v.g, fleetShared) || !holds(v.g, fleetLANVIP) {
			return fmt.Errorf("%s and %s not both held", fleetShared, fleetLANVIP)
		}
		if !strings.Contains(v.notified(), "INSTANCE wan MASTER") {
			return fmt.Errorf("notify script not called with MASTER: %q", v.notified())
		}
		return nil
	})
}

// fleetSettings is a member's xdpsec.conf.
func fleetSettings(member string, own netip.Addr, etcd, keyFile string) string {
	return fmt.Sprintf(`fleet {
   member = %s
   endpoints = %s
   key_file = %s
   lease_ttl = 2s
   address = %s
   checkpoint_interval = 500ms
   shared {
      wan {
         address = %s
         follow = keepalived
      }
   }
}
`, member, etcd, keyFile, own, fleetShared)
}

// fleetGatewayConf is both gateways' swanctl.conf: one connection from
// the shared address to the peer site.
func fleetGatewayConf() string {
	return fleetSiteConf(fleetShared, fleetPeer, "gw", "peer", "10.2.0.0/24", "10.1.0.0/24")
}

// fleetPeerConf is charon's side, the mirror of fleetGatewayConf.
func fleetPeerConf() string {
	return fleetSiteConf(fleetPeer, fleetShared, "peer", "gw", "10.1.0.0/24", "10.2.0.0/24")
}

// fleetSiteConf is one side of the PSK site-to-site connection between
// the fleet's shared address and the peer: its addresses, the host part
// of its own and the other side's identity, and its selectors.
func fleetSiteConf(local, remote, localID, remoteID, localTS, remoteTS string) string {
	return fmt.Sprintf(`connections {
   site {
      local_addrs = %s
      remote_addrs = %s
      proposals = aes128gcm16-prfsha256-x25519
      local {
         auth = psk
         id = %s.xdpsec.example
      }
      remote {
         auth = psk
         id = %s.xdpsec.example
      }
      children {
         net {
            local_ts = %s
            remote_ts = %s
            esp_proposals = aes128gcm16
         }
      }
   }
}
secrets {
   ike-site {
      id-a = gw.xdpsec.example
      id-b = peer.xdpsec.example
      secret = "%s"
   }
}
`, local, remote, localID, remoteID, localTS, remoteTS, fleetSecret)
}

// writeFleetKey writes a fresh 32-byte fleet key (64 hex digits, root
// only) and returns its path.
func writeFleetKey(t *testing.T) string {
	t.Helper()
	k := make([]byte, 32)
	rand.Read(k)
	p := filepath.Join(t.TempDir(), "fleet.key")
	if err := os.WriteFile(p, []byte(hex.EncodeToString(k)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// charonSA is one IKE SA as `swanctl --list-sas` shows it.
type charonSA struct {
	name, id, state string
	spiI, spiR      string
	childIn         []string // inbound SPIs of its installed CHILD_SAs
}

var (
	charonIKELine   = regexp.MustCompile(`(?m)^(\S+): #(\d+), (\w+), IKEv2, ([0-9a-f]{16})_i\*? ([0-9a-f]{16})_r\*?`)
	charonChildLine = regexp.MustCompile(`(?m)^\s+in\s+([0-9a-f]{8})`)
)

// charonSAs lists charon's IKE SAs over its vici socket.
func charonSAs(t *testing.T, ns *testenv.Netns, vici string) []charonSA {
	t.Helper()
	out, err := run(ns, "", "swanctl", "--list-sas", "--uri", vici)
	if err != nil {
		t.Fatalf("swanctl --list-sas: %v\n%s", err, out)
	}
	var sas []charonSA
	idx := charonIKELine.FindAllStringSubmatchIndex(out, -1)
	for i, m := range idx {
		end := len(out)
		if i+1 < len(idx) {
			end = idx[i+1][0]
		}
		sa := charonSA{name: out[m[2]:m[3]], id: out[m[4]:m[5]], state: out[m[6]:m[7]], spiI: out[m[8]:m[9]], spiR: out[m[10]:m[11]]}
		for _, c := range charonChildLine.FindAllStringSubmatch(out[m[1]:end], -1) {
			sa.childIn = append(sa.childIn, c[1])
		}
		sas = append(sas, sa)
	}
	return sas
}

// charonOneSA is charon's one ESTABLISHED IKE SA with one CHILD_SA.
func charonOneSA(t *testing.T, ns *testenv.Netns, vici string) (charonSA, error) {
	sas := charonSAs(t, ns, vici)
	if len(sas) != 1 || sas[0].state != "ESTABLISHED" || len(sas[0].childIn) != 1 {
		return charonSA{}, fmt.Errorf("charon's IKE SAs: %+v", sas)
	}
	return sas[0], nil
}

// tcpRetransmits is the RetransSegs counter of ns (/proc/net/snmp).
func tcpRetransmits(t *testing.T, ns *testenv.Netns) uint64 {
	t.Helper()
	var b []byte
	if err := ns.Do(func() (err error) { b, err = os.ReadFile("/proc/thread-self/net/snmp"); return err }); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) == 0 || f[0] != "Tcp:" {
			continue
		}
		if names == nil {
			names = f
			continue
		}
		if i := slices.Index(names, "RetransSegs"); i > 0 && i < len(f) {
			n, _ := strconv.ParseUint(f[i], 10, 64)
			return n
		}
	}
	t.Fatalf("no Tcp RetransSegs in /proc/net/snmp:\n%s", b)
	return 0
}

// echoStream sends a UDP datagram with a sequence number every interval
// from src (in srcNS) to an echo server at dst (in dstNS) and records
// when each answer came back: the packets lost in a failover, and how
// long the path was down.
type echoStream struct {
	conn   *net.UDPConn
	srv    *net.UDPConn
	stop   chan struct{}
	done   sync.WaitGroup
	mu     sync.Mutex
	sent   []time.Time          // by sequence number
	answer map[uint32]time.Time // arrival of the answer, by sequence number
}

func startEchoStream(t *testing.T, srcNS *testenv.Netns, src netip.Addr, dstNS *testenv.Netns, dst netip.Addr, interval time.Duration) *echoStream {
	t.Helper()
	e := &echoStream{stop: make(chan struct{}), answer: map[uint32]time.Time{}}
	if err := dstNS.Do(func() (err error) {
		e.srv, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(dst, 5002)))
		return err
	}); err != nil {
		t.Fatalf("echo server on %s: %v", dst, err)
	}
	t.Cleanup(func() { e.srv.Close() })
	go func() {
		buf := make([]byte, 64)
		for {
			n, from, err := e.srv.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			e.srv.WriteToUDPAddrPort(buf[:n], from)
		}
	}()
	if err := srcNS.Do(func() (err error) {
		e.conn, err = net.DialUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(src, 0)),
			net.UDPAddrFromAddrPort(netip.AddrPortFrom(dst, 5002)))
		return err
	}); err != nil {
		t.Fatalf("echo client %s → %s: %v", src, dst, err)
	}
	e.done.Add(2)
	go func() { // answers
		defer e.done.Done()
		buf := make([]byte, 64)
		for {
			n, err := e.conn.Read(buf)
			if err != nil {
				return
			}
			if n >= 4 {
				seq := binary.BigEndian.Uint32(buf)
				e.mu.Lock()
				if _, dup := e.answer[seq]; !dup {
					e.answer[seq] = time.Now()
				}
				e.mu.Unlock()
			}
		}
	}()
	go func() { // requests
		defer e.done.Done()
		tick := time.NewTicker(interval)
		defer tick.Stop()
		var b [32]byte
		for {
			select {
			case <-e.stop:
				return
			case <-tick.C:
			}
			e.mu.Lock()
			seq := uint32(len(e.sent))
			e.sent = append(e.sent, time.Now())
			e.mu.Unlock()
			binary.BigEndian.PutUint32(b[:], seq)
			e.conn.Write(b[:]) // a refused send is a lost packet
		}
	}()
	return e
}

// echoResult is what an echo stream saw around an event (a kill).
type echoResult struct {
	sent, lost int
	// outage is the longest time without an answer after the event;
	// recovered, from the event to the first answer after that gap.
	outage, recovered time.Duration
	// lostInOutage were sent from a second before the gap to its end
	// (a lost packet's answer would have been due in the gap).
	lostInOutage int
}

// finish stops sending, waits a second for the last answers and
// measures around the event at.
func (e *echoStream) finish(at time.Time) echoResult {
	close(e.stop)
	time.Sleep(time.Second)
	e.conn.Close()
	e.done.Wait()
	e.mu.Lock()
	defer e.mu.Unlock()
	r := echoResult{sent: len(e.sent)}
	// The answers by arrival: the longest gap between two of them (or
	// the event and the first) after the event is the outage.
	var arrivals []time.Time
	for seq := range e.sent {
		if a, ok := e.answer[uint32(seq)]; ok {
			arrivals = append(arrivals, a)
		} else {
			r.lost++
		}
	}
	slices.SortFunc(arrivals, func(a, b time.Time) int { return a.Compare(b) })
	prev := at
	var gapStart, gapEnd time.Time
	for _, a := range arrivals {
		if a.Before(at) {
			continue
		}
		if d := a.Sub(prev); d > r.outage {
			r.outage, gapStart, gapEnd = d, prev, a
		}
		prev = a
	}
	if !gapEnd.IsZero() {
		r.recovered = gapEnd.Sub(at)
		for seq, s := range e.sent {
			if _, ok := e.answer[uint32(seq)]; !ok && !s.Before(gapStart.Add(-time.Second)) && s.Before(gapEnd) {
				r.lostInOutage++
			}
		}
	}
	return r
}

func (r echoResult) String() string {
	return fmt.Sprintf("%d of %d UDP echoes lost (%d around the failover), longest silence %v, answers again %v after the kill",
		r.lost, r.sent, r.lostInOutage, r.outage.Round(time.Millisecond), r.recovered.Round(time.Millisecond))
}

// fleetStatus is `xdpsec fleet status -o json` of g. A status the daemon
// could not read from etcd in time (a loaded TCG guest's etcd has taken
// seconds to answer) is asked for again, for up to 30 s.
func fleetStatus(g *gateway) daemon.FleetStatus {
	g.t.Helper()
	var out string
	var err error
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(time.Second) {
		if out, err = g.xdpsec("-o", "json", "fleet", "status"); err == nil || time.Now().After(deadline) {
			break
		}
		g.t.Logf("site %s: xdpsec fleet status: %v (asking again)\n%s", g.name, err, out)
	}
	if err != nil {
		g.t.Fatalf("site %s: xdpsec -o json fleet status: %v\n%s", g.name, err, out)
	}
	var st daemon.FleetStatus
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		g.t.Fatalf("site %s: fleet status -o json: %v\n%s", g.name, err, out)
	}
	return st
}

// leads says whether g's daemon leads (serves) the shared address wan.
func leads(g *gateway) error {
	st := fleetStatus(g)
	for _, s := range st.Shared {
		if s.Name == "wan" {
			if !s.Leading {
				return fmt.Errorf("site %s does not lead wan: %+v", g.name, st)
			}
			return nil
		}
	}
	return fmt.Errorf("site %s: no shared address wan: %+v", g.name, st)
}

// notifiedAt is when keepalived first called the notify script with
// state (MASTER, BACKUP, FAULT, STOP) for wan after since.
func (v *vrrp) notifiedAt(state string, since time.Time) (time.Time, bool) {
	for _, l := range strings.Split(v.notified(), "\n") {
		f := strings.Fields(l)
		if len(f) < 4 || f[1] != "INSTANCE" || f[2] != "wan" || f[3] != state {
			continue
		}
		sec, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			continue
		}
		at := time.Unix(0, int64(sec*1e9))
		if at.After(since) {
			return at, true
		}
	}
	return time.Time{}, false
}

// TestFleetFailover (issue 20): gw1 and gw2 share 192.0.2.1 through
// keepalived and their IKE SAs through etcd; charon's peer site has its
// tunnel with the shared address, which gw1 serves. 30 MB go from the
// peer's LAN to the gateways' LAN, and a UDP echo every 10 ms, when gw1's
// daemon is SIGKILLed after the first megabyte: keepalived moves both
// addresses to gw2, whose daemon wins the election once gw1's etcd lease
// is gone and takes the SAs over from etcd (CHILD_SA keys, outbound ESP
// sequence numbers past gw1's, message IDs synchronised with RFC 6311).
// The transfer completes with its SHA-256, charon keeps the same IKE SA
// (SPIs, unique ID) and CHILD_SA, the standby carried the rest of the
// transfer, and a CHILD_SA rekey from ours and an IKE_SA rekey from charon
// then work. The takeover time and the lost packets are reported. Last,
// gw1's daemon starts again and stays a standby that serves nothing.
func TestFleetFailover(t *testing.T) {
	n := newFleetNet(t)
	etcd := startEtcd(t, n.etcd, fleetEtcd)
	key := writeFleetKey(t)
	var gws [2]*gateway
	for i, s := range n.gw {
		g := newGateway(t, s, fleetGatewayConf())
		settings := filepath.Join(g.dir, "xdpsec.conf")
		if err := os.WriteFile(settings, []byte(fleetSettings(s.name, s.outer, etcd, key)), 0o600); err != nil {
			t.Fatal(err)
		}
		g.args = []string{"--settings", settings}
		g.start()
		gws[i] = g
	}
	gw1, gw2 := gws[0], gws[1]
	// gw1 first: with nopreempt on both, whichever VRRP instance times
	// out first becomes master; gw2 then joins as backup.
	var vr [2]*vrrp
	start := time.Now()
	vr[0] = startVRRP(t, gw1, 150)
	vr[0].waitMaster(60 * time.Second)
	vr[1] = startVRRP(t, gw2, 100)
	waitUntil(t, 30*time.Second, "gw2 VRRP backup", func() error {
		if !strings.Contains(vr[1].notified(), "INSTANCE wan BACKUP") {
			return fmt.Errorf("gw2's notify script not called with BACKUP: %q", vr[1].notified())
		}
		return nil
	})
	waitUntil(t, 30*time.Second, "gw1 leading wan", func() error { return leads(gw1) })
	t.Logf("gw1 holds %s and leads wan %v after keepalived started", fleetShared, time.Since(start).Round(time.Millisecond))
	if holds(gw2, fleetShared) || holds(gw2, fleetLANVIP) {
		t.Fatalf("gw2 holds a shared address too")
	}
	if err := leads(gw2); err == nil {
		t.Fatalf("gw2 leads wan too")
	}

	_, vici := startCharon(t, n.peer, fleetPeerConf())
	start = time.Now()
	if out, err := run(n.peer.Netns, "", "swanctl", "--initiate", "--ike", "site", "--child", "net", "--timeout", "30", "--uri", vici); err != nil {
		t.Fatalf("charon: swanctl --initiate: %v\n%s", err, out)
	}
	t.Logf("charon's IKE_SA and CHILD_SA net with %s established in %v", fleetShared, time.Since(start).Round(time.Millisecond))
	child := gw1.waitChild("net", 10*time.Second)
	if sas := gw2.sas(); len(sas) != 0 {
		t.Fatalf("the standby gw2 has IKE SAs: %+v", sas)
	}
	before, err := charonOneSA(t, n.peer.Netns, vici)
	if err != nil {
		t.Fatal(err)
	}
	if got := ping(t, n.peer.lanH, n.peer.lanA, n.lanA, 5, 5); got != 5 {
		t.Fatalf("ping peer LAN %s → LAN %s: %d of 5 answered", n.peer.lanA, n.lanA, got)
	}
	// The standby sees gw1's checkpoint in etcd.
	waitUntil(t, 30*time.Second, "gw1's checkpoint as gw2 sees it", func() error {
		for _, m := range fleetStatus(gw2).Members {
			if m.Name == "gw1" && m.IKESAs == 1 && m.ChildSAs == 1 && m.CheckpointAge != nil {
				return nil
			}
		}
		return fmt.Errorf("%+v", fleetStatus(gw2).Members)
	})

	retrans := tcpRetransmits(t, n.peer.lanH)
	noSA := gw2.counter("no_sa")
	xfrmBefore := [2]map[string]uint64{xfrmStat(t, n.peer.Netns), xfrmStat(t, gw2.Netns)}
	echo := startEchoStream(t, n.peer.lanH, n.peer.lanA, n.lan, n.lanA, 10*time.Millisecond)
	time.Sleep(500 * time.Millisecond)
	killed := make(chan time.Time, 1)
	const size = 30 << 20
	res := tcpTransfer(t, n.peer.lanH, n.peer.lanA, n.lan, n.lanA, size, 2*time.Minute, func() {
		at := time.Now()
		gw1.kill()
		killed <- at
	})
	killAt := <-killed
	t.Logf("TCP peer LAN → LAN, gw1's daemon SIGKILLed after the first MB: %v", res)
	vr[1].waitMaster(30 * time.Second)
	waitUntil(t, 30*time.Second, "gw2 leading wan", func() error { return leads(gw2) })
	time.Sleep(500 * time.Millisecond) // a few echoes after the transfer
	er := echo.finish(killAt)
	retrans = tcpRetransmits(t, n.peer.lanH) - retrans

	// The same IKE SA and CHILD_SA on charon's side, now with gw2.
	after, err := charonOneSA(t, n.peer.Netns, vici)
	if err != nil {
		t.Fatal(err)
	}
	if after.id != before.id || after.spiI != before.spiI || after.spiR != before.spiR || !slices.Equal(after.childIn, before.childIn) {
		t.Errorf("charon's IKE SA changed in the failover: before %+v, after %+v", before, after)
	}
	sa, err := clientSA(gw2, fleetPeer)
	if err != nil {
		t.Fatal(err)
	}
	if sa.SPIi != before.spiI || sa.SPIr != before.spiR {
		t.Errorf("gw2 serves IKE SA %s_%s, charon has %s_%s", sa.SPIi, sa.SPIr, before.spiI, before.spiR)
	}
	c2 := sa.Children[0]
	if c2.SPIIn != child.SPIIn || c2.SPIOut != child.SPIOut {
		t.Errorf("gw2's CHILD_SA net has SPIs %s/%s, gw1's were %s/%s", c2.SPIIn, c2.SPIOut, child.SPIIn, child.SPIOut)
	}
	// The standby carried the rest of the transfer.
	if c2.BytesIn < 1<<20 {
		t.Errorf("gw2 decrypted %d bytes of the transfer on CHILD_SA net", c2.BytesIn)
	}
	gw2.waitLogLines(10*time.Second, "fleet: elected for wan", "taken over, established between", "CHILD_SA net{", "synchronised")
	if holds(gw1, fleetShared) || holds(gw1, fleetLANVIP) {
		t.Errorf("gw1 still holds a shared address after its daemon died")
	}
	if !strings.Contains(vr[0].notified(), "INSTANCE wan FAULT") {
		t.Errorf("gw1's notify script was not called with FAULT: %q", vr[0].notified())
	}

	// ESP from gw2 starts past what gw1 sent, and charon's next packets
	// pass gw2's replay window: neither kernel refuses them as replays.
	for i, ns := range []*testenv.Netns{n.peer.Netns, gw2.Netns} {
		var moved []string
		for k, v := range xfrmStat(t, ns) {
			if d := v - xfrmBefore[i][k]; d != 0 {
				moved = append(moved, fmt.Sprintf("%s %d", k, d))
			}
		}
		slices.Sort(moved)
		t.Logf("%s: XFRM errors during the failover: %v", []string{"peer (charon)", "gw2"}[i], moved)
		if d := xfrmStat(t, ns)["XfrmInStateSeqError"] - xfrmBefore[i]["XfrmInStateSeqError"]; d != 0 {
			t.Errorf("%s: the kernel refused %d ESP packets as replays (XfrmInStateSeqError) across the failover",
				[]string{"peer (charon)", "gw2"}[i], d)
		}
	}

	// gw2's side of it, for the record.
	if b, err := os.ReadFile(gw2.logPath); err == nil {
		var lines []string
		for _, l := range strings.Split(string(b), "\n") {
			if strings.Contains(l, "fleet:") || strings.Contains(l, "taken over") || strings.Contains(l, "MSG_ID_SYN") || strings.Contains(l, "synchronised") {
				lines = append(lines, l)
			}
		}
		t.Logf("gw2's takeover, from its log:\n%s", strings.Join(lines, "\n"))
	}

	// Timings: from the kill to keepalived's MASTER on gw2, to the
	// daemon's takeover, to the first echo answered again.
	master, _ := vr[1].notifiedAt("MASTER", killAt)
	var took string
	if b, err := os.ReadFile(gw2.logPath); err == nil {
		if m := regexp.MustCompile(`elected for wan \([^)]*\): took over \d+ of \d+ IKE_SAs in (\S+)`).FindSubmatch(b); m != nil {
			took = string(m[1])
		}
	}
	t.Logf("failover: keepalived MASTER on gw2 %v after the kill; gw2's takeover took %s; %v; %d TCP retransmits by the sender; xdp_wan on gw2 dropped %d packets as no_sa",
		master.Sub(killAt).Round(time.Millisecond), took, er, retrans, gw2.counter("no_sa")-noSA)
	fmt.Printf("TestFleetFailover: takeover %v (kill → first packet through again), %d of %d packets lost (UDP echo every 10 ms), %d TCP retransmits, keepalived %v, daemon takeover %s\n",
		er.recovered.Round(time.Millisecond), er.lost, er.sent, retrans, master.Sub(killAt).Round(time.Millisecond), took)
	if er.recovered == 0 || er.lost == er.sent {
		t.Errorf("the echoes never came back after the kill: %v", er)
	}

	// Rekeys after the takeover: the CHILD_SA from ours, the IKE SA from
	// charon; traffic flows over the successors.
	gw2.ok("rekey", "--child", "net", "--timeout", "30s")
	waitUntil(t, 30*time.Second, "CHILD_SA net rekeyed by gw2", func() error {
		c, err := charonOneSA(t, n.peer.Netns, vici)
		if err != nil {
			return err
		}
		if slices.Equal(c.childIn, before.childIn) {
			return fmt.Errorf("charon's CHILD_SA still has SPI in %v", c.childIn)
		}
		return nil
	})
	if out, err := run(n.peer.Netns, "", "swanctl", "--rekey", "--ike", "site", "--uri", vici); err != nil {
		t.Fatalf("charon: swanctl --rekey --ike site: %v\n%s", err, out)
	}
	waitUntil(t, 30*time.Second, "IKE_SA rekeyed by charon", func() error {
		c, err := charonOneSA(t, n.peer.Netns, vici)
		if err != nil {
			return err
		}
		if c.spiI == before.spiI {
			return fmt.Errorf("charon's IKE SA still has SPIs %s_%s", c.spiI, c.spiR)
		}
		sa, err := clientSA(gw2, fleetPeer)
		if err != nil {
			return err
		}
		if sa.SPIi != c.spiI || sa.SPIr != c.spiR {
			return fmt.Errorf("gw2's IKE SA %s_%s, charon's %s_%s", sa.SPIi, sa.SPIr, c.spiI, c.spiR)
		}
		return nil
	})
	if got := ping(t, n.peer.lanH, n.peer.lanA, n.lanA, 5, 5); got != 5 {
		t.Errorf("after the rekeys: %d of 5 pings answered", got)
	}
	rekeyed, err := charonOneSA(t, n.peer.Netns, vici)
	if err != nil {
		t.Fatal(err)
	}

	// gw1's daemon comes back, a standby: keepalived's check passes
	// again and (nopreempt) it stays BACKUP; the daemon releases the SAs
	// it took back from its own state file (gw2 serves them, rekeyed
	// since), its kernel keeps none, and it serves nothing. The peer's
	// IKE SA stays with gw2.
	restart := time.Now()
	gw1.start()
	vr[0].writeDaemonPID()
	waitUntil(t, 30*time.Second, "gw1 back as VRRP backup", func() error {
		if _, ok := vr[0].notifiedAt("BACKUP", restart); !ok {
			return fmt.Errorf("gw1's notify script not called with BACKUP: %q", vr[0].notified())
		}
		return nil
	})
	gw1.waitLogLines(10*time.Second, "fleet: released 1 IKE_SAs on shared addresses until elected")
	if sas := gw1.sas(); len(sas) != 0 {
		t.Errorf("gw1 restarted lists IKE SAs: %+v", sas)
	}
	if out, _ := run(gw1.Netns, "", "ip", "xfrm", "state"); strings.TrimSpace(out) != "" {
		t.Errorf("gw1 restarted keeps XFRM SAs:\n%s", out)
	}
	if out, _ := run(gw1.Netns, "", "ip", "xfrm", "policy"); strings.Contains(out, "10.1.0.0/24") {
		t.Errorf("gw1 restarted keeps the tunnel's XFRM policies:\n%s", out)
	}
	if holds(gw1, fleetShared) || leads(gw1) == nil {
		t.Errorf("gw1 restarted holds %s or leads wan", fleetShared)
	}
	if err := leads(gw2); err != nil {
		t.Error(err)
	}
	// gw1's `fleet status`: gw2 holds wan and serves the one IKE SA.
	waitUntil(t, 10*time.Second, "gw1's fleet status", func() error {
		st := fleetStatus(gw1)
		var seen []string
		for _, m := range st.Members {
			seen = append(seen, fmt.Sprintf("%s: %d IKE_SAs, %d CHILD_SAs, holds %v", m.Name, m.IKESAs, m.ChildSAs, m.Holds))
		}
		want := []string{"gw1: 0 IKE_SAs, 0 CHILD_SAs, holds []", "gw2: 1 IKE_SAs, 1 CHILD_SAs, holds [wan]"}
		slices.Sort(seen)
		if !slices.Equal(seen, want) || len(st.Shared) != 1 || st.Shared[0].Holder != "gw2" || st.Shared[0].Leading {
			return fmt.Errorf("members %q, shared %+v", seen, st.Shared)
		}
		return nil
	})
	if got := ping(t, n.peer.lanH, n.peer.lanA, n.lanA, 5, 5); got != 5 {
		t.Errorf("after gw1's restart: %d of 5 pings answered", got)
	}
	if c, err := charonOneSA(t, n.peer.Netns, vici); err != nil || c.id != rekeyed.id || c.spiI != rekeyed.spiI || !slices.Equal(c.childIn, rekeyed.childIn) {
		t.Errorf("charon's IKE SA after gw1's restart: %+v (%v), before %+v", c, err, rekeyed)
	}
}
