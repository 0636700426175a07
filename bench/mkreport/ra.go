package main

import (
	"bytes"
	"fmt"
	"log"
	"os"
	"strings"
	"time"

	"github.com/xdpsec/xdpsec/bench"
)

// The remote-access establishment section of bench/README.md sits
// between these markers, so that `mkreport -ra-only` can rewrite it alone.
const (
	raBegin = "<!-- ra-establish: written by make bench or make bench-ra -->"
	raEnd   = "<!-- /ra-establish -->"
	// raBefore is what the section goes in front of when the README has
	// none yet: the VM section.
	raBefore = vmBegin
)

// raReport is what the remote-access comparison measured.
type raReport struct {
	clients int
	results []bench.RAResult
	when    time.Time
	took    time.Duration
	charon  string
	load    string // the machine's load average before the runs
}

// runRA runs the remote-access comparison with clients clients.
func runRA(bin string, clients int) (raReport, error) {
	r := raReport{clients: clients, when: time.Now(), charon: bench.CharonVersion(), load: loadAvg()}
	o := bench.DefaultRAOptions
	o.Bin, o.Clients = bin, clients
	var err error
	r.results, err = bench.RemoteAccess(o, func(s string) { log.Print(s) })
	r.took = time.Since(r.when)
	return r, err
}

// loadAvg is /proc/loadavg's three load averages, "" if unreadable.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], ", ")
}

func writeRASection(b *bytes.Buffer, r raReport, m bench.Machine) {
	p := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	o := bench.DefaultRAOptions
	p("%s\n", raBegin)
	p("## Remote access: establishments per second and memory per client, against charon\n\n")
	p("Measured %s on %s, charon from Debian (`%s`), in %s", r.when.UTC().Format("2006-01-02 15:04 MST"), m, r.charon, r.took.Round(time.Second))
	if r.load != "" {
		p("; the machine is shared, its load average before the runs %s", r.load)
	}
	p(". `make bench-ra` rewrites this section alone; `%s=N` sets the clients.\n\n", bench.RAClientsEnv)
	p("The gateway of road warriors, as issue 15 sets it up: both responders run as\n")
	p("in the IKE comparison above (same namespaces and veth, `xdpsec daemon\n")
	p("--dataplane=dry-run --log any=0` and charon with kernel-libipsec, the same\n")
	p("settings, cookies off), loaded with the same swanctl.conf (`bench/ra.go`): the\n")
	p("gateway authenticates with a certificate (%s, from a CA made for the run;\n", bench.RAKeyType)
	p("`send_cert = always`), the clients with EAP-MSCHAPv2 (`remote.auth =\n")
	p("eap-mschapv2`, `eap_id = %%any`: the gateway asks each client's EAP identity\n")
	p("with EAP-Identity first) against %s local users (`secrets { eap-userN { id =\n", fmtInt(r.clients))
	p("userN secret = ... } }`), one pool `%s` with a DNS server, and one CHILD_SA\n", bench.RAPool)
	p("from the gateway's LAN (10.2.0.0/16) to the client's virtual IP; proposal\n")
	p("`%s`, ESP `%s`. charon loads, besides the plugins above, %s.\n", bench.RAProposal.IKE, bench.RAProposal.ESP, bench.RACharonPlugins)
	p("The clients are our engines (`loadgen.go`, one per CPU in the benchmark's\n")
	p("process), each IKE SA from an address of its own as a user of its own, with\n")
	p("`vips = 0.0.0.0`, EAP-MSCHAPv2, the CA as trust anchor and the gateway's\n")
	p("identity `%s`. A client counts once its CHILD_SA is established with a\n", bench.RAGatewayID)
	p("virtual IP of the pool as its selector; the run fails if one is not.\n")
	p("Each IKE SA takes six exchanges: IKE_SA_INIT, then IKE_AUTH with the\n")
	p("gateway's certificate and EAP-Identity, the MSCHAPv2 challenge, its success\n")
	p("message, EAP-Success, and the AUTH payloads with the configuration reply\n")
	p("and the CHILD_SA. %s clients per run, at most %d in flight; idle RSS is read\n", fmtInt(r.clients), o.Window)
	p("once the users are loaded, before the first client; \"MiB per 10k clients\"\n")
	p("is (peak − idle) scaled to 10,000. The generator shares the machine's %d\n", m.CPUs)
	p("CPUs with the responder: its CPU per client is in the last column.\n\n")
	bench.WriteRATable(b, r.results)
	p("\n%s\n\n", bench.RATargetText(r.results))
	p("Read with care: as in the IKE comparison, charon's figures include its\n")
	p("userspace ESP backend (kernel-libipsec), and our daemon in dry-run installs\n")
	p("nothing; the first tenth is the fairer comparison of the IKE and EAP work.\n")
	p("Finding a user's password among %s is part of each responder's figures.\n\n", fmtInt(r.clients))
	p("%s\n", raEnd)
}

var raMarks = readmeSection{begin: raBegin, end: raEnd, before: []string{raBefore}}

// raSection returns the section of an existing README ("" if none).
func raSection(readme []byte) string { return raMarks.in(readme) }

// replaceRASection puts section in place of the README's, or in front
// of the VM section, or at the end.
func replaceRASection(readme []byte, section string) []byte {
	return raMarks.replace(readme, section)
}

// raOnly measures and rewrites the section of dir/README.md alone.
func raOnly(readmePath, bin string, clients int) error {
	readme, err := os.ReadFile(readmePath)
	if err != nil {
		return err
	}
	r, err := runRA(bin, clients)
	if err != nil {
		return err
	}
	var b bytes.Buffer
	writeRASection(&b, r, bench.ThisMachine())
	return os.WriteFile(readmePath, replaceRASection(readme, b.String()), 0o644)
}
