package daemon

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/expfmt"

	"github.com/xdpsec/xdpsec/ike"
)

// The metrics are served by client_golang: its registry writes the
// exposition formats (text, OpenMetrics, protobuf as the scraper asks), and
// adds the Go runtime and process collectors. What the engine and the BPF
// maps hold is read at scrape time by daemonCollector, never copied; the
// only state kept here is the histograms of how long SAs took to set up,
// fed by the engine's observers.

// saHistograms are the set-up times the engine reports (ike.SAEvent).
type saHistograms struct {
	ikeSA, initToChild prometheus.Histogram
	childSA            *prometheus.HistogramVec
}

// setupBuckets go from 1ms (two daemons on one host) to about 33s (a slow
// peer, retransmits, EAP with a RADIUS server).
var setupBuckets = prometheus.ExponentialBuckets(0.001, 2, 16)

func newSAHistograms() *saHistograms {
	return &saHistograms{
		ikeSA: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "xdpsec_ike_sa_establishment_seconds",
			Help:    "Time from an IKE SA's IKE_SA_INIT (IKEv1: first phase 1 message), sent or received, to ESTABLISHED; rekeyed IKE SAs are not counted.",
			Buckets: setupBuckets,
		}),
		childSA: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "xdpsec_child_sa_establishment_seconds",
			Help:    "Time from the start of the exchange negotiating a CHILD_SA (IKE_AUTH, CREATE_CHILD_SA or Quick Mode) to its SAs installed; rekey=\"yes\" for rekeyed CHILD_SAs.",
			Buckets: setupBuckets,
		}, []string{"rekey"}),
		initToChild: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "xdpsec_ike_sa_init_to_child_sa_seconds",
			Help:    "Time from an IKE SA's IKE_SA_INIT, sent or received, to its first CHILD_SA installed.",
			Buckets: setupBuckets,
		}),
	}
}

// observe wires the histograms to an engine's configuration.
func (h *saHistograms) observe(cfg *ike.Config) {
	cfg.OnIKESAEstablished = func(e ike.SAEvent) { h.ikeSA.Observe(e.Took.Seconds()) }
	cfg.OnChildSAInstalled = func(e ike.SAEvent) {
		rekey := "no"
		if e.Rekey {
			rekey = "yes"
		}
		h.childSA.WithLabelValues(rekey).Observe(e.Took.Seconds())
		if e.SinceInit > 0 {
			h.initToChild.Observe(e.SinceInit.Seconds())
		}
	}
}

func (h *saHistograms) collectors() []prometheus.Collector {
	return []prometheus.Collector{h.ikeSA, h.childSA, h.initToChild}
}

// registry is the daemon's: made on first use, so that a Daemon built by
// a test without Start has one too.
func (d *Daemon) registry() *prometheus.Registry {
	d.registryOnce.Do(func() {
		r := prometheus.NewRegistry()
		r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), daemonCollector{d})
		if d.histograms != nil {
			r.MustRegister(d.histograms.collectors()...)
		}
		d.reg = r
	})
	return d.reg
}

// serveMetrics answers Prometheus scrapes on addr (/metrics).
func (d *Daemon) serveMetrics(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(d.registry(), promhttp.HandlerOpts{}))
	d.metrics = &http.Server{Handler: mux}
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		d.metrics.Serve(l)
	}()
	d.log.Info(fmt.Sprintf("metrics on http://%s/metrics", l.Addr()))
	return nil
}

// WriteMetrics writes every metric in the text exposition format, as a
// scrape gets them.
func (d *Daemon) WriteMetrics(w io.Writer) error {
	mfs, err := d.registry().Gather()
	if err != nil {
		return err
	}
	enc := expfmt.NewEncoder(w, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			return err
		}
	}
	return nil
}

var ikeStates = []ike.IKESAState{ike.IKESACreated, ike.IKESAConnecting, ike.IKESAEstablished, ike.IKESARekeying,
	ike.IKESARekeyed, ike.IKESADeleting, ike.IKESADestroying}

var childStates = []ike.ChildSAState{ike.ChildSACreated, ike.ChildSAInstalling, ike.ChildSAInstalled, ike.ChildSARekeying,
	ike.ChildSARekeyed, ike.ChildSADeleting, ike.ChildSADestroying}

// daemonCollector reads the engine, the pools and the BPF counters at each
// scrape. It is unchecked (Describe sends nothing): which label values
// exist depends on what is established when the scrape comes.
type daemonCollector struct{ d *Daemon }

func (daemonCollector) Describe(chan<- *prometheus.Desc) {}

// family is one metric name with its help and type, for the samples of
// one scrape.
type family struct {
	ch        chan<- prometheus.Metric
	name      string
	help      string
	valueType prometheus.ValueType
	descs     map[string]*prometheus.Desc // by label names
}

func newFamily(ch chan<- prometheus.Metric, name string, valueType prometheus.ValueType, help string) *family {
	return &family{ch: ch, name: name, help: help, valueType: valueType, descs: map[string]*prometheus.Desc{}}
}

// sample sends one value; labels are name, value pairs.
func (f *family) sample(v uint64, labels ...string) {
	var names, values []string
	for i := 0; i+1 < len(labels); i += 2 {
		names, values = append(names, labels[i]), append(values, labels[i+1])
	}
	key := fmt.Sprint(names)
	desc, ok := f.descs[key]
	if !ok {
		desc = prometheus.NewDesc(f.name, f.help, names, nil)
		f.descs[key] = desc
	}
	f.ch <- prometheus.MustNewConstMetric(desc, f.valueType, float64(v), values...)
}

// sampleFloat sends one value that is not a count (seconds).
func (f *family) sampleFloat(v float64, labels ...string) {
	var names, values []string
	for i := 0; i+1 < len(labels); i += 2 {
		names, values = append(names, labels[i]), append(values, labels[i+1])
	}
	key := fmt.Sprint(names)
	desc, ok := f.descs[key]
	if !ok {
		desc = prometheus.NewDesc(f.name, f.help, names, nil)
		f.descs[key] = desc
	}
	f.ch <- prometheus.MustNewConstMetric(desc, f.valueType, v, values...)
}

func (c daemonCollector) Collect(ch chan<- prometheus.Metric) {
	d := c.d
	gauge := func(name, help string) *family { return newFamily(ch, name, prometheus.GaugeValue, help) }
	counter := func(name, help string) *family { return newFamily(ch, name, prometheus.CounterValue, help) }
	d.collectRedirectMetrics(gauge("xdpsec_redirect_gateway_load", "Established IKE SAs of each gateway of a connection's redirect rule, as last read from its metrics; none while it does not answer."))
	if d.engine == nil {
		return // a test's daemon without one
	}
	if d.fleet != nil {
		d.fleet.collectMetrics(gauge, counter)
	}

	sas := d.ListSAs("")
	ikeBy, childBy := map[string]uint64{}, map[string]uint64{}
	for _, sa := range sas {
		ikeBy[sa.State]++
		for _, c := range sa.Children {
			childBy[c.State]++
		}
	}
	f := gauge("xdpsec_ike_sas", "IKE SAs by state.")
	for _, s := range ikeStates {
		f.sample(ikeBy[s.String()], "state", s.String())
	}
	f = gauge("xdpsec_child_sas", "CHILD_SAs by state.")
	for _, s := range childStates {
		f.sample(childBy[s.String()], "state", s.String())
	}
	gauge("xdpsec_ike_sas_half_open", "Responder IKE SAs whose IKE_AUTH has not completed.").sample(uint64(d.engine.HalfOpen()))

	for _, pc := range []struct {
		name string
		get  func(c ChildSA) uint64
		help string
	}{
		{"xdpsec_child_sa_bytes_in", func(c ChildSA) uint64 { return c.BytesIn }, "Bytes decrypted (AH: authenticated) by the kernel on the CHILD_SA's inbound SA."},
		{"xdpsec_child_sa_packets_in", func(c ChildSA) uint64 { return c.PacketsIn }, "Packets decrypted by the kernel on the CHILD_SA's inbound SA."},
		{"xdpsec_child_sa_bytes_out", func(c ChildSA) uint64 { return c.BytesOut }, "Bytes encrypted by the kernel on the CHILD_SA's outbound SA."},
		{"xdpsec_child_sa_packets_out", func(c ChildSA) uint64 { return c.PacketsOut }, "Packets encrypted by the kernel on the CHILD_SA's outbound SA."},
		{"xdpsec_child_sa_rx_seen_packets", func(c ChildSA) uint64 { return c.RxSeenPackets }, "ESP or AH packets xdp_wan saw for the inbound SA, before authentication."},
		{"xdpsec_child_sa_rx_seen_bytes", func(c ChildSA) uint64 { return c.RxSeenBytes }, "ESP or AH bytes xdp_wan saw for the inbound SA, before authentication."},
	} {
		f := counter(pc.name, pc.help)
		for _, sa := range sas {
			for _, c := range sa.Children {
				f.sample(pc.get(c), "ike_sa", sa.Name, "child_sa", c.Name, "uniqueid", strconv.Itoa(int(c.UniqueID)),
					"spi_in", c.SPIIn, "spi_out", c.SPIOut, "protocol", c.Protocol)
			}
		}
	}

	st := d.engine.Stats()
	f = counter("xdpsec_ike_datagrams_total", "IKE datagrams received and sent, and retransmits.")
	f.sample(st.Received, "direction", "received")
	f.sample(st.Sent, "direction", "sent")
	f.sample(st.Retransmits, "direction", "retransmitted")
	f = counter("xdpsec_ike_failures_total", "IKE datagrams dropped or refused, by reason.")
	for _, r := range []struct {
		reason string
		v      uint64
	}{
		{"malformed", st.DroppedMalformed}, {"unknown_sa", st.DroppedUnknownSA}, {"authentication", st.DroppedAuthentication},
		{"message_id", st.DroppedMessageID}, {"unexpected", st.DroppedUnexpected}, {"esp_on_ike_port", st.DroppedESP},
		{"cookie_rejected", st.CookiesRejected}, {"block_threshold", st.DroppedBlocked},
		{"invalid_syntax_sent", st.InvalidSyntaxSent},
		{"eap", st.EAPFailures}, {"virtual_ip", st.VIPFailures}, {"invalid_redirect", st.InvalidRedirects},
		{"mid_sync", st.DroppedMIDSync},
	} {
		f.sample(r.v, "reason", r.reason)
	}
	f = counter("xdpsec_ike_mid_syncs_total", "IKE message ID synchronisations (RFC 6311) completed, as the member taking an IKE SA over or as its peer.")
	f.sample(st.MIDSyncs)
	f = counter("xdpsec_ike_acquires_total", "The kernel's acquires for trap policies: initiated, dropped while an initiation for the trap was pending, or for no trap of ours.")
	f.sample(st.AcquiresInitiated, "result", "initiated")
	f.sample(st.AcquiresPending, "result", "pending")
	f.sample(st.AcquiresUnknown, "result", "unknown")
	f = gauge("xdpsec_pool_addresses", "Virtual IP pools: addresses in all, leased online (an IKE SA holds them) and offline (kept for the identity's return).")
	for _, p := range d.engine.Pools() {
		size, online, offline := p.Leases.Stats()
		f.sample(size, "pool", p.Name(), "state", "size")
		f.sample(uint64(online), "pool", p.Name(), "state", "online")
		f.sample(uint64(offline), "pool", p.Name(), "state", "offline")
	}
	counter("xdpsec_ike_panics_total", "Bugs the engine's safety net caught while handling a datagram or timer (each logged with its stack; the IKE_SA it happened in is deleted).").sample(st.Panics)
	counter("xdpsec_ike_redirects_total", "Clients sent to another gateway with a REDIRECT notify (RFC 5685), in IKE_SA_INIT or established.").sample(st.RedirectsSent)
	counter("xdpsec_ike_cookies_sent_total", "COOKIE notifies sent to IKE_SA_INIT requests.").sample(st.CookiesSent)
	// What a peer sends on a CHILD_SA between answering our request and
	// our inbound SA going in is dropped: how long that is.
	r := st.ResponseToInbound
	ch <- prometheus.MustNewConstSummary(prometheus.NewDesc("xdpsec_child_sa_response_to_inbound_seconds",
		"For CHILD_SAs we initiated (IKE_AUTH, CREATE_CHILD_SA, rekeys): time from the arrival of the peer's response (its socket timestamp) to our inbound SA installed.", nil, nil),
		r.Count, r.Sum.Seconds(), nil)
	ch <- prometheus.MustNewConstMetric(prometheus.NewDesc("xdpsec_child_sa_response_to_inbound_seconds_max",
		"The longest time from a response's arrival to the inbound SA installed.", nil, nil), prometheus.GaugeValue, r.Max.Seconds())

	if d.maps == nil {
		return
	}
	cs, err := d.maps.Counters.Read()
	if err != nil {
		return
	}
	sort.Slice(cs, func(i, j int) bool { return cs[i].Name < cs[j].Name })
	pkts := counter("xdpsec_bpf_packets_total", "Packets counted by the BPF programs, by program, kind (verdict or drop reason) and counter.")
	bytes := counter("xdpsec_bpf_bytes_total", "Bytes counted by the BPF programs.")
	for _, c := range cs {
		pkts.sample(c.Packets, "program", c.Program, "kind", string(c.Kind), "counter", c.Name)
		bytes.sample(c.Bytes, "program", c.Program, "kind", string(c.Kind), "counter", c.Name)
	}
}

// registryState is the registry made on first use (registry).
type registryState struct {
	registryOnce sync.Once
	reg          *prometheus.Registry
}
