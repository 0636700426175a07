package interop

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/xdpsec/xdpsec/internal/daemon"
)

// Roles: who sends IKE_SA_INIT (and, in rekey and delete tests, who acts).
const (
	charonInitiates = "charon-initiates"
	oursInitiate    = "xdpsec-initiates"
)

var roles = []string{charonInitiates, oursInitiate}

// load gives both sides their configuration.
func (e *env) load(charonSide, oursSide peer, charonFiles, oursFiles map[string][]byte) {
	e.t.Helper()
	e.charon.load(charonSide.conf(), charonFiles)
	e.ours.load(oursSide.conf(), oursFiles)
}

// initiate has the side of the role initiate the CHILD_SA "net" (and with
// it the IKE SA "c") and waits for it, failing the test if it fails.
func (e *env) initiate(role string) {
	e.t.Helper()
	if err := e.tryInitiate(role); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) tryInitiate(role string) error {
	var out string
	var err error
	if role == charonInitiates {
		out, err = e.charon.swanctlRun("--initiate", "--child", "net", "--timeout", "30")
	} else {
		out, err = e.ours.cliRun("initiate", "--child", "net", "--timeout", "30s")
	}
	if err != nil {
		return fmt.Errorf("%s: initiate failed: %v\n%s", role, err, out)
	}
	return nil
}

// childView is a CHILD_SA as one side sees it, in the other side's terms
// where they differ: in is the SPI the other side sends to.
type childView struct {
	name, spiIn, spiOut string
	localTS, remoteTS   string
	encap               bool
}

type ikeView struct {
	spiI, spiR string
	children   []childView
}

func (v ikeView) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "IKE %s_i %s_r", v.spiI, v.spiR)
	for _, c := range v.children {
		fmt.Fprintf(&b, " {%s in %s out %s %s === %s encap %v}", c.name, c.spiIn, c.spiOut, c.localTS, c.remoteTS, c.encap)
	}
	return b.String()
}

// charonView is charon's established IKE SAs with their installed CHILD_SAs.
func (e *env) charonView() []ikeView {
	var out []ikeView
	for _, sa := range e.charon.sas() {
		if sa.get("state") != "ESTABLISHED" {
			continue
		}
		v := ikeView{spiI: sa.get("initiator-spi"), spiR: sa.get("responder-spi")}
		for _, c := range sa.sub("child-sas").sections {
			if c.get("state") != "INSTALLED" {
				continue
			}
			v.children = append(v.children, childView{name: c.get("name"), spiIn: c.get("spi-in"), spiOut: c.get("spi-out"),
				localTS: strings.Join(c.lists["local-ts"], " "), remoteTS: strings.Join(c.lists["remote-ts"], " "), encap: c.get("encap") == "yes"})
		}
		out = append(out, v)
	}
	return out
}

// oursView is our daemon's, mirrored into charon's terms: our outbound SPI
// is charon's inbound, our remote selectors charon's local ones.
func (e *env) oursView() []ikeView {
	var out []ikeView
	for _, sa := range e.ours.sas() {
		if sa.State != "ESTABLISHED" {
			continue
		}
		v := ikeView{spiI: sa.SPIi, spiR: sa.SPIr}
		for _, c := range sa.Children {
			if c.State != "INSTALLED" {
				continue
			}
			v.children = append(v.children, childView{name: c.Name, spiIn: c.SPIOut, spiOut: c.SPIIn,
				localTS: strings.Join(c.RemoteTS, " "), remoteTS: strings.Join(c.LocalTS, " "), encap: c.Encap})
		}
		out = append(out, v)
	}
	return out
}

func sortViews(vs []ikeView) {
	slices.SortFunc(vs, func(a, b ikeView) int { return strings.Compare(a.spiI, b.spiI) })
	for _, v := range vs {
		slices.SortFunc(v.children, func(a, b childView) int { return strings.Compare(a.spiIn, b.spiIn) })
	}
}

// agree waits until both sides list the same established IKE SAs (by SPIs)
// with the same installed CHILD_SAs (SPIs crossed, selectors mirrored),
// at least wantChildren of them, all UDP-encapsulated on our side
// (kernel-libipsec has charon fake a NAT), and returns charon's view.
func (e *env) agree(wantChildren int) []ikeView {
	e.t.Helper()
	var c, o []ikeView
	var last string
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, o = e.charonView(), e.oursView()
		sortViews(c)
		sortViews(o)
		n := 0
		for _, v := range c {
			n += len(v.children)
		}
		cs, os := fmt.Sprint(c), fmt.Sprint(o)
		// charon's encap flag is its own; compare ours separately.
		for _, v := range o {
			for _, ch := range v.children {
				if !ch.encap && !e.kernelIPsec {
					last = "our CHILD_SA " + ch.name + " is not UDP-encapsulated, charon's ESP would not reach it"
				}
			}
		}
		cs = strings.ReplaceAll(cs, "encap false", "encap true")
		os = strings.ReplaceAll(os, "encap false", "encap true")
		if cs == os && n >= wantChildren && len(c) > 0 && last == "" {
			return c
		}
		if last == "" {
			last = fmt.Sprintf("charon: %v\nxdpsec: %v", c, o)
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("the two sides do not agree (want %d CHILD_SAs):\n%s\ncharon's swanctl --list-sas:\n%s\nxdpsec list-sas:\n%s",
				wantChildren, last, e.charon.swanctl("--list-sas"), e.ours.cli("list-sas"))
		}
		last = ""
		time.Sleep(100 * time.Millisecond)
	}
}

// waitNoSAs waits until neither side has an IKE SA left.
func (e *env) waitNoSAs(what string) {
	e.t.Helper()
	waitFor(e.t, 15*time.Second, what, func() error {
		c, o := e.charon.sas(), e.ours.sas()
		if len(c) != 0 || len(o) != 0 {
			return fmt.Errorf("charon has %d IKE SAs, xdpsec %d", len(c), len(o))
		}
		return nil
	})
}

// oursSA is our one IKE SA.
func (e *env) oursSA() daemon.IKESA {
	e.t.Helper()
	sas := e.ours.sas()
	if len(sas) != 1 {
		e.t.Fatalf("xdpsec has %d IKE SAs, want 1: %+v", len(sas), sas)
	}
	return sas[0]
}

// charonSA is charon's one IKE SA.
func (e *env) charonSA() *section {
	e.t.Helper()
	sas := e.charon.sas()
	if len(sas) != 1 {
		e.t.Fatalf("charon has %d IKE SAs, want 1", len(sas))
	}
	return sas[0]
}

// charonChild is the one installed CHILD_SA of charon's one IKE SA
// (charon lists rekeyed ones as DELETED for a few seconds).
func (e *env) charonChild() *section {
	e.t.Helper()
	var installed []*section
	for _, c := range e.charonSA().sub("child-sas").sections {
		if c.get("state") == "INSTALLED" {
			installed = append(installed, c)
		}
	}
	if len(installed) != 1 {
		e.t.Fatalf("charon's IKE SA does not have exactly one installed CHILD_SA:\n%s", e.charon.swanctl("--list-sas"))
	}
	return installed[0]
}

// run runs fn as subtests name/role for both roles.
func forRoles(t *testing.T, name string, fn func(t *testing.T, role string)) {
	for _, r := range roles {
		t.Run(name+"/"+r, func(t *testing.T) { fn(t, r) })
	}
}
