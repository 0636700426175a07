package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/xdpsec/xdpsec/dist"
	"github.com/xdpsec/xdpsec/internal/daemon"
)

// Options say what to run the demo with.
type Options struct {
	Xdpsec string    // the xdpsec binary
	Out    io.Writer // the demo's narration, commands' output, daemon logs
	// Config is gateway A's swanctl.conf; dist.SwanctlConf if "". B's is
	// derived from it (SiteConfs).
	Config        string
	Pings         int   // echo requests LAN A → LAN B; 5 if 0
	TransferBytes int64 // TCP LAN A → LAN B; 8 MiB if 0
	// DaemonLog is the daemons' --log; "ike=1,knl=1,cfg=1" if "".
	DaemonLog string
}

// Report is what the demo saw, for tests to check beyond the narration.
type Report struct {
	Established   time.Duration // daemons started to CHILD_SA installed on both
	PingsSent     int
	PingsAnswered int
	Transfer      Transfer
	Gateways      [2]GatewayReport // A, B
}

// Transfer is the TCP transfer's size and time.
type Transfer struct {
	Bytes    int64
	Duration time.Duration
}

// MBps is the transfer's rate in MiB/s.
func (t Transfer) MBps() float64 { return float64(t.Bytes) / (1 << 20) / t.Duration.Seconds() }

// GatewayReport is one gateway's list-sas and stats at the end.
type GatewayReport struct {
	SAs      []daemon.IKESA
	Counters map[string]uint64 // packets by counter name (xdpsec stats)
}

// ErrNoESP says the kernel cannot run the demo.
var ErrNoESP = errors.New("the kernel has no ESP transform")

// Run runs the demo; see the package documentation. It needs root.
func Run(ctx context.Context, o Options) (rep *Report, err error) {
	if o.Out == nil {
		o.Out = io.Discard
	}
	o.Out = &lockedWriter{w: o.Out}
	if o.Config == "" {
		o.Config = dist.SwanctlConf
	}
	if o.Pings == 0 {
		o.Pings = 5
	}
	if o.TransferBytes == 0 {
		o.TransferBytes = 8 << 20
	}
	if o.DaemonLog == "" {
		o.DaemonLog = "ike=1,knl=1,cfg=1"
	}
	if os.Geteuid() != 0 {
		return nil, errors.New("demo: needs root (network namespaces, BPF, XFRM)")
	}
	d := &run{o: o, rep: &Report{}}
	defer func() {
		if cerr := d.cleanup(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	if err := d.setup(ctx); err != nil {
		return nil, err
	}
	if err := d.traffic(ctx); err != nil {
		return nil, err
	}
	if err := d.show(); err != nil {
		return nil, err
	}
	d.say("tunnel up in %v; %d of %d pings answered; %d MiB of TCP at %.1f MiB/s",
		d.rep.Established.Round(time.Millisecond), d.rep.PingsAnswered, d.rep.PingsSent,
		d.rep.Transfer.Bytes>>20, d.rep.Transfer.MBps())
	return d.rep, nil
}

// run is one run of the demo and what it must undo.
type run struct {
	o      Options
	rep    *Report
	dir    string
	gws    [2]*gateway
	lans   [2]*namespace
	sites  sites
	undo   []undo // done in reverse order
	undone bool
}

// gateway is one site's gateway namespace running xdpsec.
type gateway struct {
	*namespace
	site   string // A or B
	bin    string // xdpsec
	pinDir string
	dir    string
	conf   string
	sock   string
	cmd    *exec.Cmd
	exited chan error
}

func (d *run) say(format string, a ...any) {
	fmt.Fprintf(d.o.Out, "==> "+format+"\n", a...)
}

// undo is one step of the cleanup.
type undo struct {
	what string
	fn   func() error
}

func (d *run) onCleanup(what string, fn func() error) { d.undo = append(d.undo, undo{what, fn}) }

// cleanup undoes everything in reverse order and reports the first error.
func (d *run) cleanup() error {
	if d.undone {
		return nil
	}
	d.undone = true
	d.say("cleaning up: daemons, pins, namespaces")
	start := time.Now()
	defer func() { d.say("cleaned up in %v", time.Since(start).Round(time.Millisecond)) }()
	var first error
	for i := len(d.undo) - 1; i >= 0; i-- {
		step := time.Now()
		err := d.undo[i].fn()
		if took := time.Since(step); took > 2*time.Second {
			fmt.Fprintf(d.o.Out, "cleanup: %s took %v\n", d.undo[i].what, took.Round(time.Millisecond))
		}
		if err != nil {
			fmt.Fprintf(d.o.Out, "cleanup: %v\n", err)
			if first == nil {
				first = err
			}
		}
	}
	return first
}

func (d *run) setup(ctx context.Context) error {
	secret, err := newSecret()
	if err != nil {
		return err
	}
	confA, confB, err := SiteConfs(d.o.Config, secret)
	if err != nil {
		return err
	}
	if d.sites, err = exampleSites(confA); err != nil {
		return err
	}
	s := d.sites
	if d.dir, err = os.MkdirTemp("", "xdpsec-demo-"); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	d.onCleanup("remove "+d.dir, func() error { return os.RemoveAll(d.dir) })

	lanGW := func(p netip.Prefix) netip.Addr { return p.Addr().Next() }
	lanHost := func(p netip.Prefix) netip.Addr { return p.Addr().Next().Next() }
	d.say("topology: LAN host A %s – gateway A %s === WAN === %s gateway B – LAN host B %s",
		lanHost(s.innerA), s.outerA, s.outerB, lanHost(s.innerB))
	for i, role := range []string{"gw-a", "gw-b", "lan-a", "lan-b"} {
		ns, err := newNamespace(role)
		if err != nil {
			return fmt.Errorf("demo: %w", err)
		}
		d.onCleanup("ip netns del "+ns.Name, func() error { ns.Close(); return nil })
		if i < 2 {
			name := string(rune('A' + i))
			dir := filepath.Join(d.dir, "gw-"+strings.ToLower(name))
			if err := os.Mkdir(dir, 0o700); err != nil {
				return fmt.Errorf("demo: %w", err)
			}
			d.gws[i] = &gateway{namespace: ns, site: name, bin: d.o.Xdpsec, dir: dir,
				pinDir: fmt.Sprintf("/sys/fs/bpf/xdpsec-demo-%s-%06x", strings.ToLower(name), rand.Uint32()&0xffffff),
				conf:   filepath.Join(dir, "swanctl.conf"),
				sock:   filepath.Join(dir, "xdpsec.sock")}
		} else {
			d.lans[i-2] = ns
		}
	}
	ga, gb := d.gws[0], d.gws[1]
	if err := ga.ip("link add wan-a type veth peer name wan-b netns " + gb.namespace.Name); err != nil {
		return err
	}
	outer := [2]netip.Addr{s.outerA, s.outerB}
	inner := [2]netip.Prefix{s.innerA, s.innerB}
	for i, g := range d.gws {
		peer := 1 - i
		wan, lan := "wan-"+strings.ToLower(g.site), "lan-"+strings.ToLower(g.site)
		if err := g.ip("link add " + lan + " type veth peer name lan0 netns " + d.lans[i].Name); err != nil {
			return err
		}
		for _, k := range []string{"net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding"} {
			if err := g.sysctl(k, "1"); err != nil {
				return fmt.Errorf("demo: sysctl %s: %w", k, err)
			}
		}
		// The WAN addresses are from different networks, as on the
		// Internet: each gateway reaches the other's directly (peer).
		if err := g.ip("link set lo up",
			addrCmd(wan, outer[i].String()+" peer "+outer[peer].String()),
			"link set "+wan+" up",
			addrCmd(lan, netip.PrefixFrom(lanGW(inner[i]), inner[i].Bits()).String()),
			"link set "+lan+" up",
			// Until the daemon routes the peer's network into its XFRM
			// interface: towards the peer, from the gateway's LAN address.
			"route add "+inner[peer].String()+" via "+outer[peer].String()+" src "+lanGW(inner[i]).String()); err != nil {
			return err
		}
		if err := d.lans[i].ip("link set lo up",
			addrCmd("lan0", netip.PrefixFrom(lanHost(inner[i]), inner[i].Bits()).String()),
			"link set lan0 up",
			"route add default via "+lanGW(inner[i]).String()); err != nil {
			return err
		}
	}
	for i, conf := range []string{confA, confB} {
		if err := os.WriteFile(d.gws[i].conf, []byte(conf), 0o600); err != nil {
			return fmt.Errorf("demo: %w", err)
		}
	}
	d.say("gateway B's swanctl.conf is the example's other side: local and remote swapped, start_action = none")

	for _, g := range d.gws {
		wan, lan := "wan-"+strings.ToLower(g.site), "lan-"+strings.ToLower(g.site)
		if err := d.xdpsec(g, true, "load", "--wan", wan, "--lan", lan); err != nil {
			return err
		}
		d.onCleanup("gateway "+g.site+": xdpsec unload", func() error {
			var err error
			if out, uerr := g.xdpsec("unload"); uerr != nil {
				err = fmt.Errorf("gateway %s: xdpsec unload: %v: %s", g.site, uerr, strings.TrimSpace(out))
			}
			os.RemoveAll(g.pinDir)
			return err
		})
	}
	start := time.Now()
	for _, g := range []*gateway{gb, ga} { // the responder first
		if err := d.startDaemon(ctx, g); err != nil {
			return err
		}
	}
	d.say("gateway A initiates (start_action = start); waiting for the CHILD_SA on both gateways")
	for _, g := range d.gws {
		if err := g.waitInstalled(ctx, 60*time.Second); err != nil {
			return err
		}
	}
	d.rep.Established = time.Since(start)
	d.say("tunnel up %v after the daemons started", d.rep.Established.Round(time.Millisecond))
	return nil
}

// addrCmd adds an address; IPv6 ones skip duplicate address detection.
func addrCmd(dev, addr string) string {
	cmd := "addr add " + addr + " dev " + dev
	if strings.Contains(addr, ":") {
		cmd += " nodad"
	}
	return cmd
}

// env points the CLI and the daemon at the gateway's pins and socket.
func (g *gateway) env() []string {
	return append(os.Environ(), "XDPSEC_PIN_DIR="+g.pinDir, "XDPSEC_SOCKET="+g.sock)
}

// xdpsec runs the xdpsec CLI in the gateway's namespace.
func (g *gateway) xdpsec(args ...string) (string, error) {
	return g.namespace.Command(g.env(), append([]string{g.bin}, args...)...)
}

// xdpsec runs the CLI on g, showing the command and (if show) its output.
func (d *run) xdpsec(g *gateway, show bool, args ...string) error {
	fmt.Fprintf(d.o.Out, "gw-%s# xdpsec %s\n", strings.ToLower(g.site), strings.Join(args, " "))
	out, err := g.xdpsec(args...)
	if show || err != nil {
		io.WriteString(d.o.Out, out)
	}
	if err != nil {
		return fmt.Errorf("gateway %s: xdpsec %s: %w", g.site, strings.Join(args, " "), err)
	}
	return nil
}

// startDaemon runs `xdpsec daemon` on g, its log going to the demo's
// output with the gateway's name in front, and waits for its control
// socket. It is stopped with SIGTERM at cleanup.
func (d *run) startDaemon(ctx context.Context, g *gateway) error {
	args := []string{"daemon", "--dataplane=kernel", "--config", g.conf, "--socket", g.sock,
		"--state", filepath.Join(g.dir, "ike-state.json"), "--log", d.o.DaemonLog}
	fmt.Fprintf(d.o.Out, "gw-%s# xdpsec %s &\n", strings.ToLower(g.site), strings.Join(args, " "))
	cmd := exec.Command(d.o.Xdpsec, args...)
	cmd.Env = g.env()
	log := &prefixWriter{w: d.o.Out, prefix: "  [gw-" + strings.ToLower(g.site) + " daemon] "}
	cmd.Stdout, cmd.Stderr = log, log
	if err := g.Do(cmd.Start); err != nil {
		return fmt.Errorf("gateway %s: start the daemon: %w", g.site, err)
	}
	g.cmd, g.exited = cmd, make(chan error, 1)
	go func() { g.exited <- cmd.Wait(); log.flush() }()
	d.onCleanup("gateway "+g.site+": stop the daemon", func() error {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-g.exited:
			if err != nil {
				return fmt.Errorf("gateway %s: the daemon exited with %v", g.site, err)
			}
			return nil
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			<-g.exited
			return fmt.Errorf("gateway %s: the daemon did not stop on SIGTERM; killed", g.site)
		}
	})
	deadline := time.Now().Add(60 * time.Second) // TCG on a loaded machine is slow
	for {
		if _, err := daemon.Call(g.sock, daemon.Request{Command: daemon.CmdListConns}); err == nil {
			return nil
		}
		select {
		case err := <-g.exited:
			g.exited <- err // for cleanup
			return fmt.Errorf("gateway %s: the daemon exited: %v", g.site, err)
		case <-ctx.Done():
			return fmt.Errorf("demo: %w", ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("gateway %s: the daemon's control socket did not come up in 60s", g.site)
		}
	}
}

// sas is the daemon's list-sas.
func (g *gateway) sas() ([]daemon.IKESA, error) {
	resp, err := daemon.Call(g.sock, daemon.Request{Command: daemon.CmdListSAs})
	if err != nil {
		return nil, fmt.Errorf("gateway %s: list-sas: %w", g.site, err)
	}
	return resp.SAs, nil
}

// waitInstalled polls until the gateway has an ESTABLISHED IKE SA with an
// INSTALLED CHILD_SA.
func (g *gateway) waitInstalled(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		sas, err := g.sas()
		if err != nil {
			return err
		}
		for _, sa := range sas {
			for _, c := range sa.Children {
				if sa.State == "ESTABLISHED" && c.State == "INSTALLED" {
					return nil
				}
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("gateway %s: no CHILD_SA installed after %v", g.site, timeout)
		}
		select {
		case err := <-g.exited:
			g.exited <- err
			return fmt.Errorf("gateway %s: the daemon exited: %v", g.site, err)
		case <-ctx.Done():
			return fmt.Errorf("demo: %w", ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// traffic: LAN A pings LAN B, then sends it TCP.
func (d *run) traffic(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	s := d.sites
	src, dst := s.innerA.Addr().Next().Next(), s.innerB.Addr().Next().Next()
	args := append(pingCmd(), "-c", fmt.Sprint(d.o.Pings), "-i", "0.2", "-W", "2", dst.String())
	fmt.Fprintf(d.o.Out, "lan-a$ %s\n", strings.Join(args, " "))
	out, _ := d.lans[0].Command(nil, args...)
	io.WriteString(d.o.Out, out)
	d.rep.PingsSent = d.o.Pings
	if _, err := fmt.Sscanf(afterLast(out, "transmitted, "), "%d", &d.rep.PingsAnswered); err != nil || d.rep.PingsAnswered == 0 {
		return fmt.Errorf("demo: ping LAN A %s → LAN B %s: no answer", src, dst)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	d.say("TCP: %d MiB from LAN host A %s to LAN host B %s:5001", d.o.TransferBytes>>20, src, dst)
	t, err := tcpTransfer(ctx, d.lans[0], src, d.lans[1], dst, d.o.TransferBytes)
	if err != nil {
		return err
	}
	d.rep.Transfer = t
	d.say("TCP: %d MiB in %v: %.1f MiB/s through ESP", t.Bytes>>20, t.Duration.Round(time.Millisecond), t.MBps())
	return nil
}

// afterLast is what follows the last sep in s ("" without one).
func afterLast(s, sep string) string {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return ""
	}
	return s[i+len(sep):]
}

// pingCmd is iputils' ping if there is one, else busybox's.
func pingCmd() []string {
	if p, err := exec.LookPath("ping"); err == nil {
		return []string{p}
	}
	return []string{"busybox", "ping"}
}

// tcpTransfer sends n bytes over one TCP connection from src in srcNS to
// dst in dstNS and checks they all arrived.
func tcpTransfer(ctx context.Context, srcNS *namespace, src netip.Addr, dstNS *namespace, dst netip.Addr, n int64) (Transfer, error) {
	var ln net.Listener
	to := netip.AddrPortFrom(dst, 5001).String()
	if err := dstNS.Do(func() (err error) { ln, err = net.Listen("tcp", to); return err }); err != nil {
		return Transfer{}, fmt.Errorf("demo: listen on %s: %w", to, err)
	}
	defer ln.Close()
	received := make(chan int64, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			received <- -1
			return
		}
		defer c.Close()
		got, _ := io.Copy(io.Discard, c)
		received <- got
	}()
	var conn net.Conn
	dialer := net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(src, 0)), Timeout: 20 * time.Second}
	if err := srcNS.Do(func() (err error) { conn, err = dialer.DialContext(ctx, "tcp", to); return err }); err != nil {
		return Transfer{}, fmt.Errorf("demo: connect %s → %s: %w", src, to, err)
	}
	defer conn.Close()
	// Cancelling ends the transfer at once.
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()
	start := time.Now()
	conn.SetDeadline(start.Add(10 * time.Minute))
	buf := make([]byte, 64<<10)
	for sent := int64(0); sent < n; {
		k := min(int64(len(buf)), n-sent)
		if _, err := conn.Write(buf[:k]); err != nil {
			if ctx.Err() != nil {
				return Transfer{}, fmt.Errorf("demo: TCP stopped after %d bytes: %w", sent, ctx.Err())
			}
			return Transfer{}, fmt.Errorf("demo: TCP %s → %s after %d bytes: %w", src, to, sent, err)
		}
		sent += k
	}
	conn.(*net.TCPConn).CloseWrite()
	select {
	case got := <-received:
		if got != n {
			return Transfer{}, fmt.Errorf("demo: TCP %s → %s: %d of %d bytes arrived", src, to, got, n)
		}
	case <-ctx.Done():
		return Transfer{}, fmt.Errorf("demo: %w", ctx.Err())
	}
	return Transfer{Bytes: n, Duration: time.Since(start)}, nil
}

// show prints list-sas and stats of both gateways and keeps them in the
// report.
func (d *run) show() error {
	for i, g := range d.gws {
		if err := d.xdpsec(g, true, "list-sas"); err != nil {
			return err
		}
		if err := d.xdpsec(g, true, "stats"); err != nil {
			return err
		}
		sas, err := g.sas()
		if err != nil {
			return err
		}
		out, err := g.xdpsec("-o", "json", "stats")
		if err != nil {
			return fmt.Errorf("gateway %s: xdpsec stats: %v: %s", g.site, err, out)
		}
		var cs []struct {
			Name    string `json:"name"`
			Packets uint64 `json:"packets"`
		}
		if err := json.Unmarshal([]byte(out), &cs); err != nil {
			return fmt.Errorf("gateway %s: xdpsec -o json stats: %w", g.site, err)
		}
		counters := map[string]uint64{}
		for _, c := range cs {
			counters[c.Name] += c.Packets
		}
		d.rep.Gateways[i] = GatewayReport{SAs: sas, Counters: counters}
	}
	return nil
}

// prefixWriter writes whole lines, each with a prefix.
type prefixWriter struct {
	w      io.Writer
	prefix string
	mu     sync.Mutex
	part   []byte
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.part = append(p.part, b...)
	for {
		i := bytes.IndexByte(p.part, '\n')
		if i < 0 {
			break
		}
		fmt.Fprintf(p.w, "%s%s\n", p.prefix, p.part[:i])
		p.part = p.part[i+1:]
	}
	return len(b), nil
}

func (p *prefixWriter) flush() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.part) > 0 {
		fmt.Fprintf(p.w, "%s%s\n", p.prefix, p.part)
		p.part = nil
	}
}

// lockedWriter serializes writes: the daemons' logs and the narration
// share the output.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}
