package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/cilium/ebpf"
	"github.com/urfave/cli/v2"
	"github.com/vishvananda/netlink"

	"github.com/xdpsec/xdpsec/bench"
	"github.com/xdpsec/xdpsec/bpf"
	"github.com/xdpsec/xdpsec/loader"
)

func benchCommand() *cli.Command {
	return &cli.Command{
		Name:      "bench",
		Usage:     "measure the dataplane and the IKE responder on this host, or the attached programs under live traffic (--wan)",
		ArgsUsage: "[xdp|policy|clients|ike|ra|flood|all]",
		Description: "xdp: xdp_wan and tc_lan per-packet cost by BPF_PROG_TEST_RUN against a bare XDP program (the floor).\n" +
			"policy: tc_lan's policy lookup against the kernel's XFRM policy lookup on the same set, in throwaway namespaces.\n" +
			"clients: the outbound lookup per remote-access client (0.0.0.0/0 to each virtual IP /32) at 10 to 100,000 clients:\n" +
			"the kernel's, with the daemon's per-client policies (default hash thresholds and hthresh4 0 32), against tc_lan's.\n" +
			"ike: IKE SAs established per second, responder CPU per SA and peak RSS per 10,000 SAs, our daemon (dry-run,\n" +
			"without and with a state file) against charon with load-tester (fake_kernel, from `make charon-lt`, found\n" +
			"under .cache/charon-lt of the source tree or $XDPSEC_CHARON_LT) and against Debian's charon (kernel-libipsec),\n" +
			"all loaded by our initiators from many source addresses.\n" +
			"ra: remote-access clients established per second (a gateway certificate, EAP-MSCHAPv2 against local users,\n" +
			"a virtual IP from a pool), responder CPU and peak RSS per client, our daemon (dry-run) against charon.\n" +
			"flood: legitimate establishments per second under a spoofed IKE_SA_INIT flood at --flood-factor times our\n" +
			"responder's capacity, ours and charon's, with and without cookies, charon's block_threshold and xdp_wan's\n" +
			"per-source policer (in front of either).\n" +
			"--wan IF: read the attached programs' counters and run time statistics over --interval while your own\n" +
			"traffic generator sends, and print Mpps and ns/packet.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "wan", Usage: "measure the programs attached to this interface under live traffic instead"},
			&cli.DurationFlag{Name: "interval", Value: 5 * time.Second, Usage: "with --wan: how long to count"},
			&cli.IntFlag{Name: "rounds", Value: bench.DefaultOptions.Rounds, Usage: "kernel-timed rounds per figure; the fastest is kept"},
			&cli.IntFlag{Name: "repeats", Value: bench.DefaultOptions.Repeats, Usage: "program runs per round"},
			&cli.IntFlag{Name: "sas", Value: bench.DefaultIKEOptions.SAs, Usage: "ike: IKE SAs per responder and proposal"},
			&cli.IntFlag{Name: "ra-clients", Value: bench.DefaultRAOptions.Clients, Usage: "ra: clients (and local users) per responder"},
			&cli.Float64Flag{Name: "flood-factor", Value: bench.DefaultFloodOptions.Factor, Usage: "flood: spoofed requests per second as a multiple of the measured capacity"},
		},
		Action: runBench,
	}
}

func runBench(c *cli.Context) error {
	if os.Geteuid() != 0 {
		return loader.ErrNotRoot
	}
	w := c.App.Writer
	if c.IsSet("wan") {
		return benchLive(c, w)
	}
	which := c.Args().First()
	if which == "" {
		which = "all"
	}
	if c.NArg() > 1 {
		return fmt.Errorf("bench: one benchmark at a time, got %q", c.Args().Slice())
	}
	o := bench.DefaultOptions
	o.Rounds, o.Repeats = c.Int("rounds"), c.Int("repeats")
	if o.Rounds < 1 || o.Repeats < 1 {
		return errors.New("bench: --rounds and --repeats must be at least 1")
	}
	m := bench.ThisMachine()
	fmt.Fprintf(w, "Machine: %s\n\n", m)
	// The IKE benchmarks make namespaces and pins that deferred cleanups
	// would not remove on a signal.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		if _, ok := <-sigs; ok {
			bench.Interrupted()
			os.Exit(130)
		}
	}()
	progress := func(r bench.Result) {
		fmt.Fprintf(c.App.ErrWriter, "  %s, %s: %.0f ns/pkt (floor %.0f)\n", r.Program, r.Case, r.Ns, r.FloorNs)
	}
	switch which {
	case "xdp", "policy", "clients", "ike", "ra", "flood", "all":
	default:
		return fmt.Errorf("bench: unknown benchmark %q (xdp, policy, clients, ike, ra, flood or all)", which)
	}
	if which == "xdp" || which == "all" {
		xs, err := bench.XDPWan(o, progress)
		if err != nil {
			return err
		}
		bench.WriteXDPTable(w, xs)
		fmt.Fprintln(w)
		ts, err := bench.TCLan(o, progress)
		if err != nil {
			return err
		}
		bench.WriteTCTable(w, ts)
		fmt.Fprintln(w)
	}
	if which == "policy" || which == "all" {
		ps, err := bench.PolicyLookup(o, bench.DefaultPolicyOptions, func(r bench.PolicyResult) {
			fmt.Fprintf(c.App.ErrWriter, "  %d policies: kernel lookup %.0f ns, tc_lan lookup %.0f ns\n", r.Policies, r.KernelLookupNs(), r.TCLookupNs())
		})
		if err != nil && !errors.Is(err, bench.ErrSetupBudget) {
			return err
		}
		fmt.Fprintln(w, "Policy lookup, kernel default hash thresholds (hthresh4 32 32):")
		fmt.Fprintln(w)
		bench.WritePolicyTable(w, ps)
		if err != nil {
			fmt.Fprintf(w, "Stopped early: %v\n", err)
		}
		fmt.Fprintln(w)
	}
	if which == "clients" || which == "all" {
		rs, err := bench.ClientLookup(o, bench.DefaultClientOptions, func(r bench.ClientResult) {
			fmt.Fprintf(c.App.ErrWriter, "  %d clients: kernel lookup %.0f ns (hthresh4 %.0f), tc_lan %.0f ns above the floor\n",
				r.Clients, r.KernelLookupNs(), r.KernelHashedLookupNs(), r.TCLookupNs())
		})
		if err != nil {
			return err
		}
		fmt.Fprintln(w, "Outbound lookup per remote-access client:")
		fmt.Fprintln(w)
		bench.WriteClientTable(w, rs)
		fmt.Fprintln(w)
		fmt.Fprintln(w, bench.ClientTargetText(rs))
		fmt.Fprintln(w)
	}
	var capacity float64
	if which == "ike" || which == "all" {
		var err error
		if capacity, err = benchIKE(c, w); err != nil {
			return err
		}
	}
	if which == "ra" || which == "all" {
		if err := benchRA(c, w); err != nil {
			return err
		}
	}
	if which == "flood" || which == "all" {
		if err := benchFlood(c, w, capacity); err != nil {
			return err
		}
	}
	return nil
}

// benchIKE runs our daemon (this executable) and charon as responders
// and prints the comparison; it returns our capacity with the first
// proposal.
func benchIKE(c *cli.Context, w io.Writer) (float64, error) {
	o := bench.DefaultIKEOptions
	o.SAs = c.Int("sas")
	if o.SAs < 1 {
		return 0, errors.New("bench: --sas must be at least 1")
	}
	bin, err := os.Executable()
	if err != nil {
		return 0, fmt.Errorf("bench ike: %w", err)
	}
	o.Bin = bin
	o.Responders = nil
	for _, k := range bench.DefaultIKEOptions.Responders {
		if err := bench.RequireIKE([]bench.ResponderKind{k}); err != nil {
			fmt.Fprintf(c.App.ErrWriter, "%s cannot run (%v): left out\n", bench.ResponderLabel(k), err)
			continue
		}
		o.Responders = append(o.Responders, k)
	}
	rs, ls, err := bench.IKE(o, func(s string) { fmt.Fprintf(c.App.ErrWriter, "  %s\n", s) })
	if err != nil {
		return 0, err
	}
	fmt.Fprintln(w, "IKE establishment, responder CPU and memory per SA, against charon with load-tester (fake_kernel):")
	fmt.Fprintln(w)
	bench.WriteIKETable(w, rs, bench.CharonLT, bench.Ours, bench.OursState, bench.CharonLT)
	fmt.Fprintln(w)
	fmt.Fprintln(w, "The same against charon with kernel-libipsec (userspace ESP):")
	fmt.Fprintln(w)
	bench.WriteIKETable(w, rs, bench.Charon, bench.Ours, bench.Charon)
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Established per second against offered load:")
	fmt.Fprintln(w)
	bench.WriteLoadTable(w, ls)
	fmt.Fprintln(w)
	for _, r := range rs {
		if r.Responder == bench.Ours && r.Proposal == bench.DefaultFloodOptions.Proposal {
			return r.Rate(), nil
		}
	}
	return 0, nil
}

// benchRA runs our daemon (this executable) and charon as remote-access
// gateways and prints the comparison.
func benchRA(c *cli.Context, w io.Writer) error {
	o := bench.DefaultRAOptions
	o.Clients = c.Int("ra-clients")
	bin, err := os.Executable()
	if err != nil {
		return fmt.Errorf("bench ra: %w", err)
	}
	o.Bin = bin
	if err := bench.RequireRA([]bench.ResponderKind{bench.Charon}); err != nil {
		fmt.Fprintf(c.App.ErrWriter, "charon cannot run (%v): measuring ours alone\n", err)
		o.Responders = []bench.ResponderKind{bench.Ours}
	}
	rs, err := bench.RemoteAccess(o, func(s string) { fmt.Fprintf(c.App.ErrWriter, "  %s\n", s) })
	if err != nil {
		return err
	}
	fmt.Fprintln(w, "Remote access (EAP-MSCHAPv2, a virtual IP each): establishment, responder CPU and memory per client:")
	fmt.Fprintln(w)
	bench.WriteRATable(w, rs)
	fmt.Fprintln(w)
	fmt.Fprintln(w, bench.RATargetText(rs))
	fmt.Fprintln(w)
	return nil
}

// benchFlood runs the IKE_SA_INIT flood against our daemon (this
// executable) and charon; capacity zero measures ours first.
func benchFlood(c *cli.Context, w io.Writer, capacity float64) error {
	o := bench.DefaultFloodOptions
	o.Capacity, o.Factor = capacity, c.Float64("flood-factor")
	bin, err := os.Executable()
	if err != nil {
		return fmt.Errorf("bench flood: %w", err)
	}
	o.Bin = bin
	if err := bench.RequireIKE([]bench.ResponderKind{bench.Charon}); err != nil {
		fmt.Fprintf(c.App.ErrWriter, "charon cannot run (%v): flooding ours alone\n", err)
		o.Responders = []bench.ResponderKind{bench.Ours}
	}
	rs, capacity, err := bench.Flood(o, func(s string) { fmt.Fprintf(c.App.ErrWriter, "  %s\n", s) })
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "Under an IKE_SA_INIT flood (capacity %.0f IKE SAs/s, `%s`):\n\n", capacity, o.Proposal.IKE)
	bench.WriteFloodTable(w, rs, capacity)
	fmt.Fprintln(w)
	return nil
}

// benchLive checks that xdp_wan is what is attached to the interface and
// reads the programs over the interval.
func benchLive(c *cli.Context, w io.Writer) error {
	if c.NArg() > 0 && c.Args().First() != "xdp" {
		return fmt.Errorf("bench --wan measures the attached programs; %q does not apply", c.Args().First())
	}
	ifname, pinDir := c.String("wan"), c.String("pin-dir")
	link, err := netlink.LinkByName(ifname)
	if err != nil {
		return fmt.Errorf("bench --wan %s: %w", ifname, err)
	}
	prog, err := ebpf.LoadPinnedProgram(loader.ProgPath(pinDir, bpf.XdpsecProgXdpWan), nil)
	if err != nil {
		return fmt.Errorf("bench --wan: xdp_wan is not loaded under %s (`xdpsec load --wan %s` first): %w", pinDir, ifname, err)
	}
	info, err := prog.Info()
	prog.Close()
	if err != nil {
		return err
	}
	id, _ := info.ID()
	if x := link.Attrs().Xdp; x == nil || !x.Attached || x.ProgId != uint32(id) {
		return fmt.Errorf("bench --wan %s: xdpsec's xdp_wan (program %d) is not attached to %s", ifname, id, ifname)
	}
	fmt.Fprintf(c.App.ErrWriter, "counting on %s for %s; start your traffic generator\n", ifname, c.Duration("interval"))
	r, err := bench.Live(pinDir, c.Duration("interval"))
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "Machine: %s; WAN %s\n", bench.ThisMachine(), ifname)
	bench.WriteLive(w, r)
	return nil
}
