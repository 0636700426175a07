package main

import (
	"bytes"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/xdpsec/xdpsec/bench"
)

// The remote-access lookup section of bench/README.md sits between these
// markers, so that `mkreport -clients-only` can rewrite it alone.
const (
	clientsBegin = "<!-- clients-lookup: written by make bench or make bench-clients -->"
	clientsEnd   = "<!-- /clients-lookup -->"
	// clientsBefore is the heading the section goes in front of when the
	// README has none yet.
	clientsBefore = "## IKE: establishments per second"
)

// runClients measures the outbound lookup per remote-access client.
func runClients() ([]bench.ClientResult, time.Duration, error) {
	start := time.Now()
	rs, err := bench.ClientLookup(bench.DefaultOptions, bench.DefaultClientOptions, func(r bench.ClientResult) {
		log.Printf("%d clients: kernel lookup %.0f ns (hthresh4 %.0f, catch-all %.0f), tc_lan %.0f ns above the floor (setup %s)",
			r.Clients, r.KernelLookupNs(), r.KernelHashedLookupNs(), r.KernelCatchAllLookupNs(), r.TCLookupNs(), r.Setup.Round(time.Millisecond))
	})
	return rs, time.Since(start), err
}

func writeClientsSection(b *bytes.Buffer, rs []bench.ClientResult, m bench.Machine, when time.Time, took time.Duration) {
	p := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	co := bench.DefaultClientOptions
	p("%s\n", clientsBegin)
	p("## Outbound lookup per remote-access client\n\n")
	p("Measured %s on %s, in %s (`make bench-clients` rewrites this section alone).\n\n",
		when.UTC().Format("2006-01-02 15:04 MST"), m, took.Round(time.Second))
	p("A remote-access gateway has one CHILD_SA per road warrior, its traffic selectors\n")
	p("0.0.0.0/0 (ours) and the client's virtual IP /32 (theirs); every packet to a\n")
	p("client must find that client's tunnel. Measured at each client count, the\n")
	p("packet always for the last client added:\n\n")
	p("- **Kernel, policy-based**: the out, in and fwd XFRM policies the daemon installs\n")
	p("  per CHILD_SA (out 0.0.0.0/0 to the /32, in and fwd back, tunnel-mode ESP\n")
	p("  template with the CHILD_SA's reqid, the daemon's priority), one set per\n")
	p("  client, in a throwaway network namespace (`bench/clients.go`, through\n")
	p("  vishvananda/netlink), once with the kernel's default hash thresholds\n")
	p("  (`hthresh4 32 32`: only /32-to-/32 selectors are hashed, so these go to the\n")
	p("  inexact policies, found through a tree of destination prefixes) and once\n")
	p("  with `hthresh4 %d %d` (XFRM_MSG_NEWSPDINFO; the policies are hashed by\n", co.HThresh[0], co.HThresh[1])
	p("  their /32).\n")
	p("  As in the policy lookup section, a UDP socket, unconnected, sends %s\n", fmtInt(co.Sends))
	p("  datagrams per batch out of a veth; the thread's CPU time per send, fastest of\n")
	p("  %d batches (after a few not kept) interleaved with the same sends in a\n", co.Batches)
	p("  namespace without policies; the difference is the lookup. Two more\n")
	p("  namespaces keep the smallest count's policies (default and hashed) and are\n")
	p("  measured in the same batches: each ratio compares with them. This host has no ESP transform (no SA can be\n")
	p("  installed) and refuses optional (\"level use\") tunnel templates in out\n")
	p("  policies; with the daemon's template and no SA the kernel ends the send in a\n")
	p("  blackhole, which takes the device transmit out of the path and with it the\n")
	p("  meaning of the difference. So the timed out policies are `allow` without a\n")
	p("  template (the kernel reads templates only once the policy is found); the in\n")
	p("  and fwd ones are the daemon's, templates included. A test checks that the\n")
	p("  datagrams hit the last client's out policy, both with the daemon's template\n")
	p("  (counted as `XfrmOutNoStates`) and as timed (made `block`, it refuses the\n")
	p("  send). Policies are installed in a burst; the kernel doubles a policy hash\n")
	p("  table in deferred work that an insert schedules when it finds the table too\n")
	p("  small, one doubling per run, so after a burst the tables stay small, with\n")
	p("  long chains, until more inserts come (in development runs, 1,000 hashed\n")
	p("  clients measured 900 to 1,100 ns instead of about 600). A gateway whose\n")
	p("  clients arrive over time does not see that, so the harness inserts and\n")
	p("  deletes one more policy until the tables have caught up (the index table's\n")
	p("  size in XFRM_MSG_GETSPDINFO tells), then waits out the one-second timer\n")
	p("  each new policy arms. On this shared machine the kernel figures move by\n")
	p("  about 50 ns from run to run; the tc_lan ones by a few.\n")
	p("- **Kernel, one catch-all policy**: the same send with a single out policy\n")
	p("  0.0.0.0/0 to 0.0.0.0/0, the kernel's part of route-based mode, where tc_lan\n")
	p("  picks the client and tags the packet with its if_id and one catch-all policy\n")
	p("  per if_id serves it. The kernel finds an if_id's policies by hashing the\n")
	p("  if_id; this host has no XFRM interfaces to set one, so this catch-all has none.\n")
	p("- **tc_lan**: the clients in its SPD (0.0.0.0/0 to each /32, PROTECT with an\n")
	p("  if_id of its own; destinations are found by exact match per prefix length in\n")
	p("  `spd_prefix4`/`spd_prefix6`), a UDP packet from the LAN to the last client through\n")
	p("  `BPF_PROG_TEST_RUN` as in the dataplane section; \"above floor\" is what the\n")
	p("  program adds to a packet (parsing, lookup, counters), and its ratio compares\n")
	p("  with the smallest set measured in the same rounds.\n\n")
	p("### Outbound lookup per remote-access client\n\n")
	bench.WriteClientTable(b, rs)
	p("\n%s\n\n", bench.ClientTargetText(rs))
	if len(rs) > 0 {
		p("Setup (three kernel policies per client in each of the two namespaces, one\n")
		p("netlink request each, and the hash tables' catching up; cumulative):\n")
		for i, r := range rs {
			if i > 0 {
				p(", ")
			}
			p("%s clients in %s", fmtInt(r.Clients), r.Setup.Round(time.Millisecond))
		}
		p(".\n\n")
		writeClientsDesign(b, rs)
	}
	p("%s\n", clientsEnd)
}

// writeClientsDesign states the design the numbers choose.
func writeClientsDesign(b *bytes.Buffer, rs []bench.ClientResult) {
	p := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	ref, at, tcWorst := rs[0], rs[0], rs[0]
	for _, r := range rs {
		if r.Clients <= 10_000 {
			at = r
			if r.TCRatio() > tcWorst.TCRatio() {
				tcWorst = r
			}
		}
	}
	co := bench.DefaultClientOptions
	// The chosen design's lookup at the smallest count and at the one
	// checked, from the same batches and rounds.
	chosenSmall := at.KernelHashedSmallNs - at.KernelBaseNs + at.TCSmallNs - at.TCFloorNs
	chosen := at.KernelHashedLookupNs() + at.TCLookupNs()
	p("**Design, from these numbers.** Road warriors keep one set of XFRM policies\n")
	p("per CHILD_SA (policy-based, as the daemon installs them today), and the\n")
	p("daemon sets `hthresh4 %d %d` (and, for IPv6 pools, `hthresh6 0 128`, not\n", co.HThresh[0], co.HThresh[1])
	p("measured here) in its namespace when a connection hands out virtual IPs.\n")
	p("With those thresholds the kernel finds a client's policy by hashing its\n")
	p("/32: %.0f ns at %s clients, %.2fx its cost at %s, against %.0f ns for\n",
		at.KernelHashedLookupNs(), fmtInt(at.Clients), at.KernelHashedRatio(),
		fmtInt(ref.Clients), at.KernelCatchAllLookupNs())
	p("route-based mode's single catch-all policy.\n")
	p("Route-based mode, tc_lan choosing the client, would change the kernel's\n")
	p("cost by %+.0f ns per packet, while adding an if_id and three catch-all\n", at.KernelCatchAllLookupNs()-at.KernelHashedLookupNs())
	p("policies per address family for each client, and for each packet a path\n")
	p("through an XFRM interface (tagged by `bpf_skb_set_xfrm_info`: kernels with\n")
	p("XFRM interfaces only).\n")
	p("With the kernel's default thresholds the same policies cost %.0f ns at %s\n", at.KernelLookupNs(), fmtInt(at.Clients))
	growth := at.KernelNs - at.KernelSmallNs
	p("clients, %.0f ns more than at %s (%.2fx): the tree of destination prefixes\n",
		growth, fmtInt(ref.Clients), at.KernelRatio())
	p("deepens with every client, and that growth alone is %.1fx what tc_lan adds to\n", growth/at.TCLookupNs())
	p("a packet in all; hence the thresholds. Most of the kernel's figure is the\n")
	p("policy machinery itself (a single matching policy costs most of it), which\n")
	p("every mode with XFRM policies pays. tc_lan's lookup is the cheapest part\n")
	p("(%.0f ns above its floor at %s clients). It finds a client's /32 in an\n", at.TCLookupNs(), fmtInt(at.Clients))
	p("exact-match hash per destination prefix length (`spd_prefix4`), so the lookup\n")
	p("does not deepen with the number of clients:\n")
	worst := ""
	if tcWorst.Clients != at.Clients {
		worst = fmt.Sprintf(", %.2fx at %s", tcWorst.TCRatio(), fmtInt(tcWorst.Clients))
	}
	p("%.2fx at %s clients%s, against the %.1fx target. The price is at small\n",
		at.TCRatio(), fmtInt(at.Clients), worst, bench.ClientTarget)
	p("counts: a hash lookup (the kernel's hash function and key compare are calls)\n")
	p("costs more than a walk of a trie with few entries; in development runs, with\n")
	p("the /32s moved back into the trie, 10 clients measured about 32 ns above the\n")
	p("floor instead of about 49, and 1,000 about 51. In\n")
	p("policy-based mode tc_lan still looks each packet up to count it (one BYPASS\n")
	p("entry per client), so the outbound lookup of the chosen design is the\n")
	p("kernel's hashed lookup plus tc_lan's: %.0f ns at %s clients, %.0f ns at %s\n",
		chosenSmall, fmtInt(ref.Clients), chosen, fmtInt(at.Clients))
	p("(%.2fx).\n\n", chosen/chosenSmall)
}

var clientsMarks = readmeSection{begin: clientsBegin, end: clientsEnd, before: []string{clientsBefore}}

// clientsSection returns the section of an existing README ("" if none).
func clientsSection(readme []byte) string { return clientsMarks.in(readme) }

// replaceClientsSection puts section in place of the README's, or in
// front of the IKE section, or at the end.
func replaceClientsSection(readme []byte, section string) []byte {
	return clientsMarks.replace(readme, section)
}

// clientsOnly measures and rewrites the section of dir/README.md alone.
func clientsOnly(readmePath string) error {
	readme, err := os.ReadFile(readmePath)
	if err != nil {
		return err
	}
	rs, took, err := runClients()
	if err != nil {
		return err
	}
	var b bytes.Buffer
	writeClientsSection(&b, rs, bench.ThisMachine(), time.Now(), took)
	return os.WriteFile(readmePath, replaceClientsSection(readme, b.String()), 0o644)
}
