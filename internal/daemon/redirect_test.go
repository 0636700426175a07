package daemon

import (
	"bufio"
	"bytes"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/xdpsec/xdpsec/ike"
	"github.com/xdpsec/xdpsec/internal/dataplane"
)

// TestRedirectCommand: the control socket's redirect picks established
// IKE SAs by connection, ID or peer address and sends each a REDIRECT;
// the client (the other engine) then starts an IKE SA with the gateway
// named. Mistakes are refused with what is wrong.
func TestRedirectCommand(t *testing.T) {
	client, responder, nw := enginePair(t, 1)
	d := &Daemon{engine: responder, stop: make(chan struct{})}
	defer close(d.stop)
	for _, tc := range []struct {
		req  Request
		want string
	}{
		{Request{Command: CmdRedirect, IKE: "site"}, "redirect needs --gateway"},
		{Request{Command: CmdRedirect, Gateway: "192.0.2.3"}, "redirect needs --ike, --ike-id or --peer"},
		{Request{Command: CmdRedirect, Peer: "nonsense", Gateway: "192.0.2.3"}, `--peer: "nonsense" is neither an address nor a prefix`},
		{Request{Command: CmdRedirect, Peer: "192.0.2.9", Gateway: "192.0.2.3"}, "no matching IKE_SA found"},
		{Request{Command: CmdRedirect, IKE: "other", Gateway: "192.0.2.3"}, "no matching IKE_SA found"},
		{Request{Command: CmdRedirect, IKE: "site", Gateway: "not a gateway"}, "cannot redirect"},
		{Request{Command: CmdRedirect, IKE: "site", Gateway: "192.0.2.2"}, "is this gateway"},
	} {
		if resp := d.Handle(tc.req); resp.OK || !strings.Contains(resp.Error, tc.want) {
			t.Errorf("%+v: %+v, want error %q", tc.req, resp, tc.want)
		}
	}
	// The client's end cannot redirect its gateway.
	if resp := client.Handle(Request{Command: CmdRedirect, IKE: "site", Gateway: "192.0.2.3"}); resp.OK || !strings.Contains(resp.Error, "as initiator") {
		t.Errorf("redirect by the client: %+v", resp)
	}
	resp := d.Handle(Request{Command: CmdRedirect, Peer: "192.0.2.0/24", Gateway: "192.0.2.3"})
	if !resp.OK || resp.Message != "redirect IKE_SA site[1] (192.0.2.1) to 192.0.2.3" {
		t.Fatalf("%+v", resp)
	}
	nw.Flush()
	var towards []string
	for _, sa := range client.engine.IKESAs() {
		towards = append(towards, fmt.Sprintf("%s:%v", sa.Remote.Addr(), sa.State))
	}
	// The client deleted its IKE SA with us first (break before make).
	if len(towards) != 1 || towards[0] != "192.0.2.3:CONNECTING" {
		t.Fatalf("client's IKE SAs after the redirect: %v", towards)
	}
	if sas := responder.IKESAs(); len(sas) != 0 {
		t.Fatalf("the redirected IKE SA is still here: %+v", sas)
	}
	if n := responder.Stats().RedirectsSent; n != 1 {
		t.Fatalf("RedirectsSent %d", n)
	}
}

// TestParseLoad: the load is the established IKE SAs gauge of what our
// own /metrics writes; anything else is an error.
func TestParseLoad(t *testing.T) {
	d, _, _ := enginePair(t, 3)
	d.dp = dataplane.NewDryRunDataplane(slog.New(slog.DiscardHandler), spiRangeZero)
	var b bytes.Buffer
	d.WriteMetrics(&b)
	if n, err := parseLoad(bufio.NewScanner(&b)); err != nil || n != 3 {
		t.Fatalf("%d, %v from\n%s", n, err, b.String())
	}
	for _, bad := range []string{"", "xdpsec_ike_sas{state=\"CONNECTING\"} 4\n", loadGauge + " -1\n", loadGauge + " x\n", loadGauge + "x 3\n"} {
		if n, err := parseLoad(bufio.NewScanner(strings.NewReader(bad))); err == nil {
			t.Errorf("%q: %d", bad, n)
		}
	}
}

// TestGatewayLoadPolling: the daemon reads each gateway's load at the
// rule's poll_interval; a gateway whose endpoint fails, is refused or is
// no xdpsec daemon has no load (the engine skips it), and one that stops
// answering loses its figure.
func TestGatewayLoadPolling(t *testing.T) {
	load := 7
	good := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "# TYPE xdpsec_ike_sas gauge\n%s %d\n", loadGauge, load)
	}))
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "no", 500) }))
	defer broken.Close()
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "up 1") }))
	defer other.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://" + l.Addr().String() + "/metrics"
	l.Close()
	conf := fmt.Sprintf(`connections {
  rw {
    local { auth = psk }
    remote { auth = psk }
    redirect {
      poll_interval = 100ms
      gateways {
        good { address = 192.0.2.11
               metrics = %s/metrics }
        broken { address = 192.0.2.12
               metrics = %s/metrics }
        other { address = 192.0.2.13
               metrics = %s/metrics }
        refused { address = 192.0.2.14
               metrics = %s }
        none { address = 192.0.2.15 }
      }
    }
  }
}
secrets { ike { secret = x } }
`, good.URL, broken.URL, other.URL, refused)
	loaded, err := LoadConfig(writeConfig(t, map[string]string{"swanctl.conf": conf}))
	if err != nil {
		t.Fatal(err)
	}
	d := &Daemon{loaded: loaded, cfgLog: slog.New(slog.DiscardHandler), stop: make(chan struct{}),
		loads: gatewayLoads{byKey: map[gatewayKey]*gatewayLoad{}}}
	d.wg.Add(1)
	go d.pollGatewayLoads()
	defer func() { close(d.stop); d.wg.Wait() }()
	gws := loaded.File.Connections[0].Redirect.Gateways
	loadOf := func(i int) (int, bool) { return d.GatewayLoad("rw", gws[i]) }
	waitUntil := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("waiting for %s", what)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitUntil("good's load", func() bool { n, ok := loadOf(0); return ok && n == 7 })
	load = 2
	waitUntil("good's new load", func() bool { n, ok := loadOf(0); return ok && n == 2 })
	for i := 1; i < len(gws); i++ {
		if n, ok := loadOf(i); ok {
			t.Errorf("%s has load %d", gws[i].Name, n)
		}
	}
	var metrics bytes.Buffer
	if err := d.WriteMetrics(&metrics); err != nil {
		t.Fatal(err)
	}
	if got := metrics.String(); !strings.Contains(got, `xdpsec_redirect_gateway_load{conn="rw",gateway="good"} 2`) || strings.Count(got, "xdpsec_redirect_gateway_load{") != 1 {
		t.Errorf("metrics:\n%s", got)
	}
	good.Close()
	waitUntil("good gone", func() bool { _, ok := loadOf(0); return !ok })
	if _, ok := d.GatewayLoad("other-conn", gws[0]); ok {
		t.Error("load of a connection without that rule")
	}
	_ = ike.RedirectByLoad
}

// TestResolveGateway: the daemon looks gateway names up in the
// background and answers the engine's callback once, with an address or
// the error.
func TestResolveGateway(t *testing.T) {
	d := &Daemon{stop: make(chan struct{})}
	type answer struct {
		addr string
		err  error
	}
	ask := func(name string) answer {
		ch := make(chan answer, 2)
		d.resolveGateway(name, func(a netip.Addr, err error) { ch <- answer{a.String(), err} })
		select {
		case a := <-ch:
			select {
			case <-ch:
				t.Errorf("%s answered twice", name)
			case <-time.After(50 * time.Millisecond):
			}
			return a
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: no answer", name)
		}
		return answer{}
	}
	if a := ask("localhost"); a.err != nil || (a.addr != "127.0.0.1" && a.addr != "::1") {
		t.Errorf("localhost: %+v", a)
	}
	if a := ask("no-such-host.invalid"); a.err == nil {
		t.Errorf("no-such-host.invalid: %+v", a)
	}
	d.wg.Wait()
}
