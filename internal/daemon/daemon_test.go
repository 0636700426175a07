package daemon

import (
	"errors"
	"log/slog"
	"os"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

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
// of engines on the in-memory network: it parses as Prometheus text, has
// the names it had when it was written by hand, the Go runtime and process
// collectors, and the set-up histograms with the establishment in them.
func TestMetrics(t *testing.T) {
	d, _, _ := enginePairWith(t, 1, newSAHistograms())
	d.dp = dataplane.NewDryRunDataplane(slog.New(slog.DiscardHandler), spiRangeZero)
	var b strings.Builder
	if err := d.WriteMetrics(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	mfs := parseMetrics(t, out)
	for _, want := range []string{
		"# TYPE xdpsec_ike_sas gauge",
		`xdpsec_ike_sas{state="ESTABLISHED"} 1`,
		`xdpsec_child_sas{state="INSTALLED"} 1`,
		"xdpsec_ike_sas_half_open 0",
		`xdpsec_ike_failures_total{reason="authentication"} 0`,
		"xdpsec_ike_panics_total 0",
		`xdpsec_ike_failures_total{reason="block_threshold"} 0`,
		`xdpsec_ike_datagrams_total{direction="received"} `,
		"# TYPE xdpsec_child_sa_bytes_in counter",
		`,protocol="ESP",`, // AH CHILD_SAs say AH
		"xdpsec_ike_redirects_total 0",
		"xdpsec_ike_cookies_sent_total 0",
		`xdpsec_ike_acquires_total{result="pending"} 0`,
		"# TYPE xdpsec_child_sa_response_to_inbound_seconds summary",
		"xdpsec_child_sa_response_to_inbound_seconds_count 1", // the initiator's IKE_AUTH
		"xdpsec_child_sa_response_to_inbound_seconds_max ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("metrics lack %q:\n%s", want, out)
		}
	}
	for _, name := range []string{"go_goroutines", "go_memstats_heap_alloc_bytes", "process_cpu_seconds_total", "process_resident_memory_bytes"} {
		if mfs[name] == nil {
			t.Errorf("no %s", name)
		}
	}
	checkSetupHistograms(t, mfs)
}

// TestMetricsWithoutEngineObservers: a daemon whose engine reports nothing
// still serves the other metrics (the histograms have no samples).
func TestMetricsWithoutEngineObservers(t *testing.T) {
	d, _, _ := enginePairWith(t, 1, nil)
	d.dp = dataplane.NewDryRunDataplane(slog.New(slog.DiscardHandler), spiRangeZero)
	var b strings.Builder
	if err := d.WriteMetrics(&b); err != nil {
		t.Fatal(err)
	}
	mfs := parseMetrics(t, b.String())
	if mfs["xdpsec_ike_sas"] == nil || mfs["xdpsec_ike_sa_establishment_seconds"] != nil {
		t.Errorf("metrics:\n%s", b.String())
	}
}

// parseMetrics parses an exposition as Prometheus does.
func parseMetrics(t *testing.T, text string) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("parse metrics: %v\n%s", err, text)
	}
	return mfs
}

// checkSetupHistograms: one IKE SA and one CHILD_SA (not a rekey) were set
// up, each observed once.
func checkSetupHistograms(t *testing.T, mfs map[string]*dto.MetricFamily) {
	t.Helper()
	for _, name := range []string{"xdpsec_ike_sa_establishment_seconds", "xdpsec_child_sa_establishment_seconds", "xdpsec_ike_sa_init_to_child_sa_seconds"} {
		mf := mfs[name]
		if mf == nil || mf.GetType() != dto.MetricType_HISTOGRAM || len(mf.Metric) != 1 {
			t.Errorf("%s: %v", name, mf)
			continue
		}
		h := mf.Metric[0].GetHistogram()
		if h.GetSampleCount() != 1 || h.GetSampleSum() < 0 {
			t.Errorf("%s: %d samples, sum %g", name, h.GetSampleCount(), h.GetSampleSum())
		}
		for _, l := range mf.Metric[0].Label {
			if l.GetName() == "rekey" && l.GetValue() != "no" {
				t.Errorf("%s: rekey=%q", name, l.GetValue())
			}
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
