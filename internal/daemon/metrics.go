package daemon

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/xdpsec/xdpsec/ike"
)

// serveMetrics answers Prometheus scrapes on addr (/metrics), in the text
// exposition format written here by hand.
func (d *Daemon) serveMetrics(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		d.WriteMetrics(w)
	})
	d.metrics = &http.Server{Handler: mux}
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		d.metrics.Serve(l)
	}()
	d.log.Info(fmt.Sprintf("metrics on http://%s/metrics", l.Addr()))
	return nil
}

// metricWriter writes one family at a time: HELP, TYPE, samples.
type metricWriter struct{ w io.Writer }

func (m metricWriter) family(name, typ, help string) {
	fmt.Fprintf(m.w, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
}

func (m metricWriter) sample(name string, labels []string, v uint64) {
	var b strings.Builder
	b.WriteString(name)
	if len(labels) > 0 {
		b.WriteByte('{')
		for i := 0; i+1 < len(labels); i += 2 {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(labels[i] + "=" + strconv.Quote(labels[i+1]))
		}
		b.WriteByte('}')
	}
	fmt.Fprintf(m.w, "%s %d\n", b.String(), v)
}

var ikeStates = []ike.IKESAState{ike.IKESACreated, ike.IKESAConnecting, ike.IKESAEstablished, ike.IKESARekeying,
	ike.IKESARekeyed, ike.IKESADeleting, ike.IKESADestroying}

var childStates = []ike.ChildSAState{ike.ChildSACreated, ike.ChildSAInstalling, ike.ChildSAInstalled, ike.ChildSARekeying,
	ike.ChildSARekeyed, ike.ChildSADeleting, ike.ChildSADestroying}

// WriteMetrics writes every metric.
func (d *Daemon) WriteMetrics(w io.Writer) {
	m := metricWriter{w}
	sas := d.ListSAs("")
	ikeBy, childBy := map[string]uint64{}, map[string]uint64{}
	for _, sa := range sas {
		ikeBy[sa.State]++
		for _, c := range sa.Children {
			childBy[c.State]++
		}
	}
	m.family("xdpsec_ike_sas", "gauge", "IKE SAs by state.")
	for _, s := range ikeStates {
		m.sample("xdpsec_ike_sas", []string{"state", s.String()}, ikeBy[s.String()])
	}
	m.family("xdpsec_child_sas", "gauge", "CHILD_SAs by state.")
	for _, s := range childStates {
		m.sample("xdpsec_child_sas", []string{"state", s.String()}, childBy[s.String()])
	}
	m.family("xdpsec_ike_sas_half_open", "gauge", "Responder IKE SAs whose IKE_AUTH has not completed.")
	m.sample("xdpsec_ike_sas_half_open", nil, uint64(d.engine.HalfOpen()))

	type perChild struct {
		name string
		get  func(c ChildSA) uint64
		help string
	}
	for _, pc := range []perChild{
		{"xdpsec_child_sa_bytes_in", func(c ChildSA) uint64 { return c.BytesIn }, "Bytes decrypted by the kernel on the CHILD_SA's inbound SA."},
		{"xdpsec_child_sa_packets_in", func(c ChildSA) uint64 { return c.PacketsIn }, "Packets decrypted by the kernel on the CHILD_SA's inbound SA."},
		{"xdpsec_child_sa_bytes_out", func(c ChildSA) uint64 { return c.BytesOut }, "Bytes encrypted by the kernel on the CHILD_SA's outbound SA."},
		{"xdpsec_child_sa_packets_out", func(c ChildSA) uint64 { return c.PacketsOut }, "Packets encrypted by the kernel on the CHILD_SA's outbound SA."},
		{"xdpsec_child_sa_rx_seen_packets", func(c ChildSA) uint64 { return c.RxSeenPackets }, "ESP packets xdp_wan saw for the inbound SA, before authentication."},
		{"xdpsec_child_sa_rx_seen_bytes", func(c ChildSA) uint64 { return c.RxSeenBytes }, "ESP bytes xdp_wan saw for the inbound SA, before authentication."},
	} {
		m.family(pc.name, "counter", pc.help)
		for _, sa := range sas {
			for _, c := range sa.Children {
				m.sample(pc.name, []string{"ike_sa", sa.Name, "child_sa", c.Name, "uniqueid", strconv.Itoa(int(c.UniqueID)),
					"spi_in", c.SPIIn, "spi_out", c.SPIOut}, pc.get(c))
			}
		}
	}

	st := d.engine.Stats()
	m.family("xdpsec_ike_datagrams_total", "counter", "IKE datagrams received and sent, and retransmits.")
	m.sample("xdpsec_ike_datagrams_total", []string{"direction", "received"}, st.Received)
	m.sample("xdpsec_ike_datagrams_total", []string{"direction", "sent"}, st.Sent)
	m.sample("xdpsec_ike_datagrams_total", []string{"direction", "retransmitted"}, st.Retransmits)
	m.family("xdpsec_ike_failures_total", "counter", "IKE datagrams dropped or refused, by reason.")
	for _, r := range []struct {
		reason string
		v      uint64
	}{
		{"malformed", st.DroppedMalformed}, {"unknown_sa", st.DroppedUnknownSA}, {"authentication", st.DroppedAuthentication},
		{"message_id", st.DroppedMessageID}, {"unexpected", st.DroppedUnexpected}, {"esp_on_ike_port", st.DroppedESP},
		{"cookie_rejected", st.CookiesRejected}, {"block_threshold", st.DroppedBlocked},
		{"invalid_syntax_sent", st.InvalidSyntaxSent},
		{"eap", st.EAPFailures}, {"virtual_ip", st.VIPFailures}, {"invalid_redirect", st.InvalidRedirects},
	} {
		m.sample("xdpsec_ike_failures_total", []string{"reason", r.reason}, r.v)
	}
	m.family("xdpsec_pool_addresses", "gauge", "Virtual IP pools: addresses in all, leased online (an IKE SA holds them) and offline (kept for the identity's return).")
	for _, p := range d.engine.Pools() {
		size, online, offline := p.Leases.Stats()
		m.sample("xdpsec_pool_addresses", []string{"pool", p.Name(), "state", "size"}, size)
		m.sample("xdpsec_pool_addresses", []string{"pool", p.Name(), "state", "online"}, uint64(online))
		m.sample("xdpsec_pool_addresses", []string{"pool", p.Name(), "state", "offline"}, uint64(offline))
	}
	d.writeRedirectMetrics(m)
	m.family("xdpsec_ike_panics_total", "counter", "Bugs the engine's safety net caught while handling a datagram or timer (each logged with its stack; the IKE_SA it happened in is deleted).")
	m.sample("xdpsec_ike_panics_total", nil, st.Panics)
	m.family("xdpsec_ike_redirects_total", "counter", "Clients sent to another gateway with a REDIRECT notify (RFC 5685), in IKE_SA_INIT or established.")
	m.sample("xdpsec_ike_redirects_total", nil, st.RedirectsSent)
	m.family("xdpsec_ike_cookies_sent_total", "counter", "COOKIE notifies sent to IKE_SA_INIT requests.")
	m.sample("xdpsec_ike_cookies_sent_total", nil, st.CookiesSent)

	if d.maps == nil {
		return
	}
	cs, err := d.maps.Counters.Read()
	if err != nil {
		return
	}
	sort.Slice(cs, func(i, j int) bool { return cs[i].Name < cs[j].Name })
	m.family("xdpsec_bpf_packets_total", "counter", "Packets counted by the BPF programs, by program, kind (verdict or drop reason) and counter.")
	for _, c := range cs {
		m.sample("xdpsec_bpf_packets_total", []string{"program", c.Program, "kind", string(c.Kind), "counter", c.Name}, c.Packets)
	}
	m.family("xdpsec_bpf_bytes_total", "counter", "Bytes counted by the BPF programs.")
	for _, c := range cs {
		m.sample("xdpsec_bpf_bytes_total", []string{"program", c.Program, "kind", string(c.Kind), "counter", c.Name}, c.Bytes)
	}
}
