package main

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/xdpsec/xdpsec/ike"
	"github.com/xdpsec/xdpsec/ike/swanctl"
	"github.com/xdpsec/xdpsec/internal/daemon"
	"github.com/xdpsec/xdpsec/internal/dataplane"
	"github.com/xdpsec/xdpsec/internal/ikesocket"
	"github.com/xdpsec/xdpsec/internal/vici"
	"github.com/xdpsec/xdpsec/loader"
)

func daemonCommand() *cli.Command {
	return &cli.Command{
		Name:  "daemon",
		Usage: "run the IKE daemon: negotiate SAs from swanctl.conf and install them into XFRM and the BPF maps",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "config", Value: swanctl.DefaultPath, Usage: "swanctl.conf to load"},
			&cli.StringFlag{Name: "settings", Value: swanctl.DefaultSettingsPath, Usage: "xdpsec.conf: the daemon's RADIUS servers for eap-radius (may be missing unless given)"},
			&cli.StringFlag{Name: "vici", Value: vici.DefaultSocket,
				Usage: "strongSwan's VICI socket, for swanctl and VICI clients (\"\": none); at the default path, a socket charon answers on is left to it"},
			&cli.StringFlag{Name: "state", Value: daemon.DefaultState, Usage: "where IKE SAs are saved across restarts (\"-\": nowhere)"},
			&cli.StringFlag{Name: "dataplane", Value: "kernel", Usage: "kernel (XFRM and BPF maps) or dry-run (install nothing, log what would be installed)"},
			&cli.BoolFlag{Name: "check", Usage: "validate the configuration and exit"},
			&cli.StringFlag{Name: "log", Usage: "log levels per subsystem (ike, knl, cfg, net, dmn, any), charon's -1..4: ike=2,knl=1"},
			&cli.StringFlag{Name: "metrics", Usage: "serve Prometheus metrics on this address (e.g. 127.0.0.1:9901)"},
			&cli.StringFlag{Name: "sa-cpu", Value: "round-robin", Usage: "how inbound SAs are spread over cpu_map's CPUs: round-robin, spi or none"},
			&cli.StringSliceFlag{Name: "listen", Usage: "address to bind IKE sockets to", DefaultText: "all"},
			&cli.DurationFlag{Name: "retransmit-timeout", Usage: "first retransmission timeout (charon's retransmit_timeout)", DefaultText: "4s"},
			&cli.Float64Flag{Name: "retransmit-base", Usage: "base of the exponential retransmission backoff (charon's retransmit_base)", DefaultText: "1.8"},
			&cli.IntFlag{Name: "retransmit-tries", Usage: "retransmissions before giving up (charon's retransmit_tries)", DefaultText: "5"},
			&cli.IntFlag{Name: "cookie-threshold", Usage: "half-open IKE SAs from which COOKIEs are required (charon's cookie_threshold; -1 never)", DefaultText: "30"},
			&cli.IntFlag{Name: "block-threshold", Value: ike.DefaultBlockThreshold,
				Usage: "half-open IKE SAs one source address may hold before its requests for more are dropped (charon's block_threshold; 0 never)"},
			&cli.StringFlag{Name: "make-before-break", Value: "yes",
				Usage: "reauthenticate (reauth_time) by establishing the new IKE SA and CHILD_SAs before deleting the old ones: yes or no (charon's make_before_break)"},
			&cli.BoolFlag{Name: "rekey-outbound-at-once", Hidden: true,
				Usage: "as the responder of a CHILD_SA rekey, send on the new CHILD_SA as soon as it is answered, not after the peer's DELETE (for tests of the initiator's install window)"},
			&cli.BoolFlag{Name: "checkpoint-child-keys", Hidden: true,
				Usage: "keep CHILD_SA keys in the saved state, so that another daemon can take the SAs over (--take-over; the fleet does it)"},
			&cli.StringFlag{Name: "take-over", Hidden: true,
				Usage: "take over the IKE SAs of another daemon's state file at start: install their SAs and policies, resynchronise message IDs (RFC 6311) or rekey"},
			&cli.Uint64Flag{Name: "take-over-out-seq", Hidden: true, Value: 1 << 20,
				Usage: "where the outbound ESP sequence numbers of SAs taken over start (past what the other daemon sent)"},
			&cli.IntFlag{Name: "fragment-size", Usage: "largest IP datagram of a fragmented IKE message (charon's fragment_size)", DefaultText: "1280"},
			// 8 MiB: a burst of thousands of DELETE responses (a terminate
			// of every SA) must fit; the default 208 KiB holds about 200.
			&cli.IntFlag{Name: "ike-receive-buffer", Value: ikesocket.DefaultBufferSize,
				Usage: "receive buffer of each IKE socket in bytes, beyond net.core.rmem_max with CAP_NET_ADMIN (-1: the system's default)"},
			// For profiling under a benchmark's load (bench/ passes it
			// when XDPSEC_BENCH_CPUPROFILE is set): the heap when the
			// daemon is told to stop, every SA still up.
			&cli.StringFlag{Name: "memprofile", Hidden: true, Usage: "write a heap profile to this file when told to stop, before the SAs go"},
			&cli.IntFlag{Name: "ike-send-buffer", Value: ikesocket.DefaultBufferSize,
				Usage: "send buffer of each IKE socket in bytes, beyond net.core.wmem_max with CAP_NET_ADMIN (-1: the system's default)"},
			&cli.StringFlag{Name: "cpuprofile", Usage: "write a Go CPU profile of the daemon's run to this file (go tool pprof reads it)"},
			&cli.IntFlag{Name: "gc-percent", Value: defaultGCPercent,
				Usage: "the Go garbage collector's GOGC for the daemon: how far the heap may grow over what is live before a collection, in percent (lower: less memory, more CPU; -1 off; GOGC in the environment wins unless this is given)"},
		},
		Action: runDaemon,
	}
}

// defaultGCPercent is the daemon's GOGC. Go's default of 100 lets the
// heap grow to twice what is live between collections, so that the peak
// resident memory of a daemon establishing IKE SAs is about twice their
// heap: at 50 it is one and a half times, for about a tenth more CPU per
// IKE SA (bench/README.md, "IKE SAs against charon": 10,000 IKE SAs with
// the state file, 83-86 -> 66-67 MiB, 0.30 -> 0.32-0.34 CPU-ms per SA).
const defaultGCPercent = 50

func runDaemon(c *cli.Context) error {
	levels, err := daemon.ParseLogLevels(c.String("log"))
	if err != nil {
		return err
	}
	logs := daemon.NewLogs(c.App.ErrWriter, levels)
	if c.Bool("check") {
		l, err := daemon.Check(c.String("config"), c.String("settings"), logs.Logger("cfg"))
		if err != nil {
			return err
		}
		for _, w := range l.File.Warnings {
			fmt.Fprintf(c.App.ErrWriter, "warning: %v\n", w)
		}
		fmt.Fprintf(c.App.Writer, "%s: OK, %d connections\n", c.String("config"), len(l.Connections))
		return nil
	}
	opts, err := daemonOptions(c, logs)
	if err != nil {
		return err
	}
	if c.IsSet("gc-percent") || os.Getenv("GOGC") == "" {
		debug.SetGCPercent(c.Int("gc-percent"))
	}
	if path := c.String("cpuprofile"); path != "" {
		stop, err := startCPUProfile(path)
		if err != nil {
			return err
		}
		defer stop()
	}
	// Signals first, so none is lost while starting.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	d, err := daemon.Start(opts)
	if err != nil {
		return err
	}
	var vs *vici.Server
	if path := c.String("vici"); path != "" {
		v, err := vici.Listen(path, vici.DaemonBackend(d), logs.Logger("cfg"))
		switch {
		case err != nil && !c.IsSet("vici"):
			logs.Logger("dmn").Warn(fmt.Sprintf("%v: VICI not served", err))
		case err != nil:
			d.Stop()
			return err
		default:
			logs.Logger("dmn").Info(fmt.Sprintf("VICI on %s", path))
			vs = v
		}
	}
	for s := range sigs {
		if s == syscall.SIGHUP {
			d.Reload()
			continue
		}
		break
	}
	if path := c.String("memprofile"); path != "" {
		if f, err := os.Create(path); err == nil {
			runtime.GC()
			pprof.WriteHeapProfile(f)
			f.Close()
		}
	}
	if vs != nil {
		vs.Close()
	}
	return d.Stop()
}

// daemonOptions are the daemon's options from its flags.
func daemonOptions(c *cli.Context, logs *daemon.Logs) (daemon.Options, error) {
	opts := daemon.Options{
		ConfigPath: c.String("config"), SettingsPath: c.String("settings"), SocketPath: c.String("socket"), StatePath: c.String("state"),
		PinDir: c.String("pin-dir"), Metrics: c.String("metrics"), Logs: logs,
		RetransmitTimeout: c.Duration("retransmit-timeout"), RetransmitBase: c.Float64("retransmit-base"),
		RetransmitTries: c.Int("retransmit-tries"), CookieThreshold: c.Int("cookie-threshold"),
		BlockThreshold: blockThreshold(c.Int("block-threshold")), FragmentSize: c.Int("fragment-size"),
		SocketReceiveBuffer: c.Int("ike-receive-buffer"), SocketSendBuffer: c.Int("ike-send-buffer"),
		RekeyOutboundAtOnce: c.Bool("rekey-outbound-at-once"),
		CheckpointChildKeys: c.Bool("checkpoint-child-keys"), TakeOverPath: c.String("take-over"),
		TakeOverOutSeq: c.Uint64("take-over-out-seq"),
	}
	switch v := c.String("make-before-break"); v {
	case "yes", "true":
		opts.MakeBeforeBreak = true
	case "no", "false":
	default:
		return opts, fmt.Errorf("--make-before-break %q: want yes or no", v)
	}
	for _, f := range []string{"ike-receive-buffer", "ike-send-buffer"} {
		if c.Int(f) == 0 || c.Int(f) < -1 {
			return opts, fmt.Errorf("--%s %d: want a size in bytes, or -1 for the system's default", f, c.Int(f))
		}
	}
	switch c.String("dataplane") {
	case "kernel":
		if os.Geteuid() != 0 {
			return opts, loader.ErrNotRoot
		}
	case "dry-run":
		opts.DryRun = true
	default:
		return opts, fmt.Errorf("unknown --dataplane %q (want kernel or dry-run)", c.String("dataplane"))
	}
	var err error
	if opts.Spread, err = dataplane.ParseCPUSpread(c.String("sa-cpu")); err != nil {
		return opts, err
	}
	for _, s := range c.StringSlice("listen") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return opts, fmt.Errorf("--listen: %w", err)
		}
		opts.ListenAddrs = append(opts.ListenAddrs, a)
	}
	return opts, nil
}

// blockThreshold maps --block-threshold, which is charon's
// block_threshold (0 disables the limit), to daemon.Options' (where 0
// takes the default and negative disables).
func blockThreshold(flag int) int {
	if flag <= 0 {
		return -1
	}
	return flag
}

// call sends a request to the daemon named by --socket.
func call(c *cli.Context, req daemon.Request) (*daemon.Response, error) {
	return daemon.Call(c.String("socket"), req)
}

func initiateCommand() *cli.Command {
	return &cli.Command{
		Name:  "initiate",
		Usage: "initiate a connection (--ike) or one of its CHILD_SAs (--child), and wait for it",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "ike", Usage: "connection name"},
			&cli.StringFlag{Name: "child", Usage: "CHILD_SA config name"},
			&cli.DurationFlag{Name: "timeout", Value: 10 * time.Second, Usage: "how long to wait (negative: do not wait)"},
		},
		Action: func(c *cli.Context) error {
			if c.String("ike") == "" && c.String("child") == "" {
				return errors.New("initiate needs --ike NAME or --child NAME")
			}
			resp, err := call(c, daemon.Request{Command: daemon.CmdInitiate, IKE: c.String("ike"), Child: c.String("child"),
				TimeoutMS: int(c.Duration("timeout").Milliseconds())})
			if err != nil {
				return err
			}
			fmt.Fprintf(c.App.Writer, "initiate completed successfully: %s\n", resp.Message)
			return nil
		},
	}
}

func terminateCommand() *cli.Command {
	return saCommandByName("terminate", daemon.CmdTerminate,
		"delete IKE SAs (--ike NAME, --ike-id N) or CHILD_SAs (--child NAME, --child-id N)")
}

func rekeyCommand() *cli.Command {
	return saCommandByName("rekey", daemon.CmdRekey,
		"rekey IKE SAs (--ike NAME, --ike-id N) or CHILD_SAs (--child NAME, --child-id N), and wait for the rekeyed SAs to be replaced")
}

// saCommandByName is a control command that acts on SAs named by
// connection, CHILD_SA config or unique ID and waits for the result.
func saCommandByName(name, command, usage string) *cli.Command {
	return &cli.Command{
		Name:  name,
		Usage: usage,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "ike", Usage: "connection name"},
			&cli.StringFlag{Name: "child", Usage: "CHILD_SA config name"},
			&cli.UintFlag{Name: "ike-id", Usage: "IKE SA unique ID"},
			&cli.UintFlag{Name: "child-id", Usage: "CHILD_SA unique ID"},
			&cli.DurationFlag{Name: "timeout", Value: 10 * time.Second, Usage: "how long to wait (negative: do not wait)"},
		},
		Action: func(c *cli.Context) error {
			resp, err := call(c, daemon.Request{Command: command, IKE: c.String("ike"), Child: c.String("child"),
				IKEID: uint32(c.Uint("ike-id")), ChildID: uint32(c.Uint("child-id")), TimeoutMS: int(c.Duration("timeout").Milliseconds())})
			if err != nil {
				return err
			}
			fmt.Fprintf(c.App.Writer, "%s completed successfully: %s\n", name, resp.Message)
			return nil
		},
	}
}

// redirectCommand sends established IKE SAs of clients to another
// gateway (RFC 5685 section 6), as swanctl --redirect does.
func redirectCommand() *cli.Command {
	return &cli.Command{
		Name:  "redirect",
		Usage: "redirect clients' established IKE SAs (--ike NAME, --ike-id N or --peer ADDR[/LEN]) to another gateway (--gateway IP|FQDN)",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "ike", Usage: "connection name"},
			&cli.UintFlag{Name: "ike-id", Usage: "IKE SA unique ID"},
			&cli.StringFlag{Name: "peer", Usage: "the clients' address or prefix"},
			&cli.StringFlag{Name: "gateway", Required: true, Usage: "the gateway to send them to: IP address or domain name"},
		},
		Action: func(c *cli.Context) error {
			if c.String("ike") == "" && c.Uint("ike-id") == 0 && c.String("peer") == "" {
				return fmt.Errorf("redirect needs --ike, --ike-id or --peer")
			}
			resp, err := call(c, daemon.Request{Command: daemon.CmdRedirect, IKE: c.String("ike"), IKEID: uint32(c.Uint("ike-id")),
				Peer: c.String("peer"), Gateway: c.String("gateway")})
			if err != nil {
				return err
			}
			fmt.Fprintf(c.App.Writer, "%s\nredirect completed successfully\n", resp.Message)
			return nil
		},
	}
}

func reloadCommand() *cli.Command {
	return &cli.Command{
		Name:  "reload",
		Usage: "make the daemon read swanctl.conf again and apply the changes",

		Action: func(c *cli.Context) error {
			out, err := newOutput(c)
			if err != nil {
				return err
			}
			resp, err := call(c, daemon.Request{Command: daemon.CmdReload})
			if err != nil {
				return err
			}
			ch := resp.Changes
			if ch == nil {
				ch = &daemon.Changes{}
			}
			var rows [][]string
			for _, x := range []struct {
				what  string
				names []string
			}{{"added", ch.Added}, {"removed", ch.Removed}, {"changed", ch.Changed}} {
				for _, n := range x.names {
					rows = append(rows, []string{n, x.what})
				}
			}
			if ch.SecretsChanged {
				rows = append(rows, []string{"secrets", "changed"})
			}
			return out.print(ch, []string{"CONNECTION", "CHANGE"}, rows)
		},
	}
}

func listSAsCommand() *cli.Command {
	return &cli.Command{
		Name:  "list-sas",
		Usage: "list the IKE SAs and CHILD_SAs, with counters (as swanctl --list-sas)",
		Flags: []cli.Flag{&cli.StringFlag{Name: "ike", Usage: "only this connection's SAs"}},
		Action: func(c *cli.Context) error {
			out, err := newOutput(c)
			if err != nil {
				return err
			}
			resp, err := call(c, daemon.Request{Command: daemon.CmdListSAs, IKE: c.String("ike")})
			if err != nil {
				return err
			}
			if out.json {
				return out.print(resp.SAs, nil, nil)
			}
			writeSAs(out.w, resp.SAs)
			return nil
		},
	}
}

// writeSAs prints SAs as swanctl --list-sas does, with xdp_wan's rx_seen.
func writeSAs(w io.Writer, sas []daemon.IKESA) {
	for _, sa := range sas {
		star := func(ours bool) string {
			if ours {
				return "*"
			}
			return ""
		}
		fmt.Fprintf(w, "%s: #%d, %s, IKEv%d, %s_i%s %s_r%s\n", sa.Name, sa.UniqueID, sa.State, sa.Version,
			sa.SPIi, star(sa.Initiator), sa.SPIr, star(!sa.Initiator))
		fmt.Fprintf(w, "  local  '%s' @ %s[%d]", sa.LocalID, sa.LocalHost, sa.LocalPort)
		if len(sa.LocalVIPs) > 0 {
			fmt.Fprintf(w, " [%s]", strings.Join(sa.LocalVIPs, " "))
		}
		if len(sa.DNSServers) > 0 {
			fmt.Fprintf(w, " DNS: %s", strings.Join(sa.DNSServers, " "))
		}
		fmt.Fprintf(w, "\n  remote '%s' @ %s[%d]", sa.RemoteID, sa.RemoteHost, sa.RemotePort)
		if sa.EAPID != "" {
			fmt.Fprintf(w, " EAP: '%s'", sa.EAPID)
		}
		if len(sa.RemoteVIPs) > 0 {
			fmt.Fprintf(w, " [%s]", strings.Join(sa.RemoteVIPs, " "))
		}
		fmt.Fprintln(w)
		if sa.Proposal != "" {
			fmt.Fprintf(w, "  %s\n", strings.TrimPrefix(sa.Proposal, "IKE:"))
		}
		if sa.Established != nil {
			line := fmt.Sprintf("  established %ds ago", *sa.Established)
			if sa.RekeyTime != nil {
				line += fmt.Sprintf(", rekeying in %ds", *sa.RekeyTime)
			}
			fmt.Fprintln(w, line)
		}
		for _, ch := range sa.Children {
			encap := ""
			if ch.Encap {
				encap = "-in-UDP"
			}
			fmt.Fprintf(w, "  %s: #%d, reqid %d, %s, %s, %s%s:%s\n", ch.Name, ch.UniqueID, ch.ReqID, ch.State, ch.Mode,
				ch.Protocol, encap, strings.TrimPrefix(ch.Proposal, ch.Protocol+":"))
			if ch.InstallTime != nil {
				line := fmt.Sprintf("    installed %ds ago", *ch.InstallTime)
				if ch.RekeyTime != nil {
					line += fmt.Sprintf(", rekeying in %ds", *ch.RekeyTime)
				}
				fmt.Fprintln(w, line)
			}
			fmt.Fprintf(w, "    in  %s, %6d bytes, %5d packets%s, rx_seen %d packets %d bytes\n", ch.SPIIn, ch.BytesIn, ch.PacketsIn, ago(ch.UseIn), ch.RxSeenPackets, ch.RxSeenBytes)
			fmt.Fprintf(w, "    out %s, %6d bytes, %5d packets%s\n", ch.SPIOut, ch.BytesOut, ch.PacketsOut, ago(ch.UseOut))
			fmt.Fprintf(w, "    local  %s\n", strings.Join(ch.LocalTS, " "))
			fmt.Fprintf(w, "    remote %s\n", strings.Join(ch.RemoteTS, " "))
		}
	}
}

// ago is swanctl's ", 3s ago" after a CHILD_SA's counters: when its SA
// last carried a packet; nothing if never.
func ago(secs *int64) string {
	if secs == nil {
		return ""
	}
	return fmt.Sprintf(", %5ds ago", *secs)
}

func listPoolsCommand() *cli.Command {
	return &cli.Command{
		Name:  "list-pools",
		Usage: "list the virtual IP pools and, with --leases, their leases (as swanctl --list-pools)",
		Flags: []cli.Flag{&cli.BoolFlag{Name: "leases", Usage: "list each pool's leases"}},
		Action: func(c *cli.Context) error {
			out, err := newOutput(c)
			if err != nil {
				return err
			}
			resp, err := call(c, daemon.Request{Command: daemon.CmdListPools, Leases: c.Bool("leases")})
			if err != nil {
				return err
			}
			if out.json {
				return out.print(resp.Pools, nil, nil)
			}
			for _, p := range resp.Pools {
				fmt.Fprintf(out.w, "%-20s %-15s - %-15s %d / %d / %d\n", p.Name, p.Base, p.Last, p.Online, p.Offline, p.Size)
				for _, l := range p.Leases {
					status := "offline"
					if l.Online {
						status = "online"
					}
					fmt.Fprintf(out.w, "  %-39s %-7s '%s'\n", l.Addr, status, l.Identity)
				}
			}
			return nil
		},
	}
}

func listConnsCommand() *cli.Command {
	return &cli.Command{
		Name:  "list-conns",
		Usage: "list the loaded connections (as swanctl --list-conns)",

		Action: func(c *cli.Context) error {
			out, err := newOutput(c)
			if err != nil {
				return err
			}
			resp, err := call(c, daemon.Request{Command: daemon.CmdListConns})
			if err != nil {
				return err
			}
			if out.json {
				return out.print(resp.Conns, nil, nil)
			}
			w := out.w
			for _, conn := range resp.Conns {
				fmt.Fprintf(w, "%s: %s, no reauthentication, rekeying every %ds\n", conn.Name, conn.Version, conn.RekeyTime)
				fmt.Fprintf(w, "  local:  %s\n", strings.Join(conn.LocalAddrs, ", "))
				fmt.Fprintf(w, "  remote: %s\n", strings.Join(conn.RemoteAddrs, ", "))
				fmt.Fprintf(w, "  local %s authentication:\n", conn.LocalAuth)
				if conn.LocalID != "" {
					fmt.Fprintf(w, "    id: %s\n", conn.LocalID)
				}
				fmt.Fprintf(w, "  remote %s authentication:\n", conn.RemoteAuth)
				if conn.RemoteID != "" {
					fmt.Fprintf(w, "    id: %s\n", conn.RemoteID)
				}
				for _, ch := range conn.Children {
					fmt.Fprintf(w, "  %s: %s, rekeying every %ds, start_action %s, hw_offload %s", ch.Name, strings.ToUpper(ch.Mode), ch.RekeyTime, ch.StartAction, ch.HWOffload)
					if ch.IfIDIn != 0 || ch.IfIDOut != 0 {
						fmt.Fprintf(w, ", if_id in %d out %d", ch.IfIDIn, ch.IfIDOut)
					}
					fmt.Fprintln(w)
					fmt.Fprintf(w, "    local:  %s\n", strings.Join(ch.LocalTS, " "))
					fmt.Fprintf(w, "    remote: %s\n", strings.Join(ch.RemoteTS, " "))
				}
				if r := conn.Redirect; r != nil {
					fmt.Fprintf(w, "  redirect new clients during %s, choosing by %s:\n", strings.ToUpper(r.During), r.Choose)
					for _, g := range r.Gateways {
						load := "load unknown"
						if g.Load != nil {
							load = fmt.Sprintf("load %d", *g.Load)
						}
						fmt.Fprintf(w, "    %s: %s, %s\n", g.Name, g.Address, load)
					}
				}
			}
			return nil
		},
	}
}

// startCPUProfile profiles the daemon's CPU until the returned function
// is called, which writes the profile out.
func startCPUProfile(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}
