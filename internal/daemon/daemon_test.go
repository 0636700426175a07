package daemon

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/xdpsec/xdpsec/ike"
	"github.com/xdpsec/xdpsec/ike/iketest"
	"github.com/xdpsec/xdpsec/internal/dataplane"
	"github.com/xdpsec/xdpsec/internal/testenv"
	"github.com/xdpsec/xdpsec/maps/xfrm"
)

func TestParseLogLevels(t *testing.T) {
	l, err := ParseLogLevels("ike=2, knl=1,cfg=-1,any=0")
	if err != nil {
		t.Fatal(err)
	}
	logs := NewLogs(&strings.Builder{}, l)
	if logs.Level("ike") != 2 || logs.Level("knl") != 1 || logs.Level("cfg") != -1 || logs.Level("net") != 0 {
		t.Errorf("levels %v", l)
	}
	for _, bad := range []string{"ike", "ike=9", "foo=1", "ike=x"} {
		if _, err := ParseLogLevels(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	var b strings.Builder
	logs = NewLogs(&b, map[string]int{"ike": 2, "knl": 0})
	logs.Logger("ike").With("ike_sa", "gw[1]").Debug("sending packet")
	logs.Logger("knl").Info("not shown")
	logs.Logger("knl").Warn("shown")
	out := b.String()
	if !strings.Contains(out, "[IKE] <gw[1]> sending packet") || strings.Contains(out, "not shown") || !strings.Contains(out, "[KNL] shown") {
		t.Errorf("log:\n%s", out)
	}
}

// TestMetrics checks the exposition of a daemon with an established pair
// of engines on the in-memory network.
func TestMetrics(t *testing.T) {
	l, err := LoadConfig(writeConfig(t, map[string]string{"swanctl.conf": netToNetPSK}))
	if err != nil {
		t.Fatal(err)
	}
	net := iketest.NewNetwork()
	dp := dataplane.NewDryRunDataplane(testenv.Logger(t), spiRangeZero)
	e, err := ike.New(ike.Config{Logger: testenv.Logger(t), Sender: net.Sender(), Dataplane: dp, Credentials: l.Credentials})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	for _, c := range l.Connections {
		e.AddConnection(c)
	}
	d := &Daemon{engine: e, dp: dp, loaded: l, established: map[uint32]time.Time{}}
	var b strings.Builder
	d.WriteMetrics(&b)
	out := b.String()
	for _, want := range []string{
		"# TYPE xdpsec_ike_sas gauge",
		`xdpsec_ike_sas{state="ESTABLISHED"} 0`,
		`xdpsec_child_sas{state="INSTALLED"} 0`,
		"xdpsec_ike_sas_half_open 0",
		`xdpsec_ike_failures_total{reason="authentication"} 0`,
		"xdpsec_ike_panics_total 0",
		`xdpsec_ike_failures_total{reason="block_threshold"} 0`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("metrics lack %q:\n%s", want, out)
		}
	}
}

// TestStartWithoutESP: without ESP in the kernel the daemon refuses to
// start unless in dry-run mode, saying so in one line.
func TestStartWithoutESP(t *testing.T) {
	testenv.RequireRoot(t)
	caps, err := xfrm.Probe()
	if err != nil {
		t.Skipf("skipped: cannot probe XFRM: %v", err)
	}
	if caps.ESP.Available {
		t.Skip("skipped: this kernel has ESP")
	}
	path := writeConfig(t, map[string]string{"swanctl.conf": netToNetPSK})
	_, err = Start(Options{ConfigPath: path, SocketPath: t.TempDir() + "/s.sock", StatePath: "-", Logs: NewLogs(os.Stderr, nil)})
	if !errors.Is(err, ErrNoESP) || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "--dataplane=dry-run") {
		t.Fatalf("Start = %v", err)
	}
}
