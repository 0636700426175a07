package maps

import (
	"fmt"

	"github.com/cilium/ebpf"

	"github.com/xdpsec/xdpsec/bpf"
)

// Counter identifies one of the programs' counters (enum xs_counter).
type Counter = bpf.XdpsecXsCounter

// CounterKind says whether a counter is a verdict or a drop reason.
type CounterKind string

const (
	KindVerdict CounterKind = "verdict"
	KindDrop    CounterKind = "drop"
)

// CounterInfo names a counter for humans. Names are stable: scripts and
// dashboards key on them.
type CounterInfo struct {
	Name    string
	Program string
	Kind    CounterKind
	Help    string
}

// counterInfo covers every value of enum xs_counter; a test keeps it whole.
var counterInfo = map[Counter]CounterInfo{
	bpf.XdpsecXsCounterXS_CNT_XDP_PASS:            {"pass", "xdp_wan", KindVerdict, "none of ours, passed untouched"},
	bpf.XdpsecXsCounterXS_CNT_RX_SEEN:             {"rx_seen", "xdp_wan", KindVerdict, "ESP or AH for a known SA, before authentication"},
	bpf.XdpsecXsCounterXS_CNT_REDIRECT_CPU:        {"redirect_cpu", "xdp_wan", KindVerdict, "ESP or AH steered to its SA's CPU"},
	bpf.XdpsecXsCounterXS_CNT_IKE:                 {"ike", "xdp_wan", KindVerdict, "IKE passed to the daemon"},
	bpf.XdpsecXsCounterXS_CNT_IKE_SA_INIT:         {"ike_sa_init", "xdp_wan", KindVerdict, "new IKE SA requests under the rate limit"},
	bpf.XdpsecXsCounterXS_CNT_NATT_KEEPALIVE:      {"natt_keepalive", "xdp_wan", KindVerdict, "NAT-T keepalives"},
	bpf.XdpsecXsCounterXS_CNT_FRAGMENT:            {"fragment", "xdp_wan", KindVerdict, "non-first IP fragments, passed"},
	bpf.XdpsecXsCounterXS_CNT_DROP_NO_SA:          {"no_sa", "xdp_wan", KindDrop, "ESP or AH for an SPI with no SA"},
	bpf.XdpsecXsCounterXS_CNT_DROP_MALFORMED:      {"malformed", "xdp_wan", KindDrop, "truncated ESP, AH, UDP or IKE header"},
	bpf.XdpsecXsCounterXS_CNT_DROP_IKE_RATELIMIT:  {"ike_ratelimit", "xdp_wan", KindDrop, "new IKE SA request over its source's rate"},
	bpf.XdpsecXsCounterXS_CNT_TC_PROTECT:          {"protect", "tc_lan", KindVerdict, "matched a PROTECT policy"},
	bpf.XdpsecXsCounterXS_CNT_TC_BYPASS:           {"bypass", "tc_lan", KindVerdict, "matched a BYPASS policy"},
	bpf.XdpsecXsCounterXS_CNT_TC_NO_POLICY:        {"no_policy", "tc_lan", KindVerdict, "IP with no matching policy, passed"},
	bpf.XdpsecXsCounterXS_CNT_TC_OTHER:            {"other", "tc_lan", KindVerdict, "not IP or truncated IP header, passed"},
	bpf.XdpsecXsCounterXS_CNT_TC_FRAGMENT:         {"tc_fragment", "tc_lan", KindVerdict, "non-first fragments, matched without ports"},
	bpf.XdpsecXsCounterXS_CNT_TC_MSS_CLAMP:        {"mss_clamp", "tc_lan", KindVerdict, "TCP SYNs whose MSS was lowered"},
	bpf.XdpsecXsCounterXS_CNT_DROP_DISCARD:        {"discard", "tc_lan", KindDrop, "matched a DISCARD policy"},
	bpf.XdpsecXsCounterXS_CNT_STASHED:             {"stashed", "xdp_wan", KindVerdict, "ESP or AH for an SPI whose SA was not in yet, held for it"},
	bpf.XdpsecXsCounterXS_CNT_STASH_INJECTED:      {"stash_injected", "xdp_wan", KindVerdict, "stashed packets handed to the stack once their SA was in"},
	bpf.XdpsecXsCounterXS_CNT_DROP_STASH_FULL:     {"stash_full", "xdp_wan", KindDrop, "ESP or AH for an SPI whose SA was not in yet, stash full"},
	bpf.XdpsecXsCounterXS_CNT_DROP_STASH_TOO_LONG: {"stash_too_long", "xdp_wan", KindDrop, "ESP or AH for an SPI whose SA was not in yet, too long to stash"},
	bpf.XdpsecXsCounterXS_CNT_DROP_STASH_EXPIRED:  {"stash_expired", "xdp_wan", KindDrop, "stashed packets whose SA did not come in time"},
}

// Info describes a counter.
func Info(c Counter) CounterInfo {
	if i, ok := counterInfo[c]; ok {
		return i
	}
	return CounterInfo{Name: fmt.Sprintf("counter_%d", c), Kind: KindVerdict}
}

// CounterValue is a counter summed over CPUs.
type CounterValue struct {
	CounterInfo
	ID      Counter
	Packets uint64
	Bytes   uint64
}

// Counters wraps the per-CPU stats array.
type Counters struct {
	m *ebpf.Map
}

// Read returns every counter in enum order, summed over CPUs.
func (c *Counters) Read() ([]CounterValue, error) {
	out := make([]CounterValue, 0, bpf.XdpsecXsCounterXS_CNT_MAX)
	for id := Counter(0); id < bpf.XdpsecXsCounterXS_CNT_MAX; id++ {
		v, err := c.Get(id)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// Get returns one counter summed over CPUs.
func (c *Counters) Get(id Counter) (CounterValue, error) {
	var vals []bpf.XdpsecXsCounterValue
	if err := c.m.Lookup(uint32(id), &vals); err != nil {
		return CounterValue{}, fmt.Errorf("read counter %s: %w", Info(id).Name, err)
	}
	v := CounterValue{CounterInfo: Info(id), ID: id}
	for _, p := range vals {
		v.Packets += p.Packets
		v.Bytes += p.Bytes
	}
	return v, nil
}

// ByName returns the counters keyed by their names.
func (c *Counters) ByName() (map[string]CounterValue, error) {
	all, err := c.Read()
	if err != nil {
		return nil, err
	}
	out := make(map[string]CounterValue, len(all))
	for _, v := range all {
		out[v.Name] = v
	}
	return out, nil
}
