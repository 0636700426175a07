package bench

import (
	"testing"
)

// TestRemoteAccessCompare runs a small version of the remote-access
// comparison: 100 clients (or XDPSEC_BENCH_RA_CLIENTS) against our
// daemon and against charon; every one must get a virtual IP and a DNS
// server, and /proc must have moved. Rates are not checked: the
// benchmark reports them.
func TestRemoteAccessCompare(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped: starts daemons (-short)")
	}
	kinds := []ResponderKind{Ours, Charon}
	if err := RequireRA(kinds); err != nil {
		t.Skipf("skipped: %v", err)
	}
	n, err := RAClientsFromEnv(100)
	if err != nil {
		t.Fatal(err)
	}
	o := RAOptions{Bin: xdpsecBinary(t), Clients: n, Window: 16, Responders: kinds}
	rs, err := RemoteAccess(o, func(s string) { t.Log(s) })
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != len(kinds) {
		t.Fatalf("%d results, want %d", len(rs), len(kinds))
	}
	for _, r := range rs {
		if r.DNS != int64(o.Clients) {
			t.Errorf("%s: %d DNS servers received by %d clients", r.Responder, r.DNS, o.Clients)
		}
		if r.CPU <= 0 || r.HWM <= 0 || r.IdleRSS <= 0 || r.Rate() <= 0 {
			t.Errorf("%s: CPU %s, idle RSS %d, peak RSS %d, rate %.0f/s: want all above zero", r.Responder, r.CPU, r.IdleRSS, r.HWM, r.Rate())
		}
	}
}

// TestLocalTSIn: a remote-access client counts only with a virtual IP of
// the pool as its local selector.
func TestLocalTSIn(t *testing.T) {
	for _, c := range []struct {
		line string
		want bool
	}{
		{"CHILD_SA net{1} established with SPIs c0000001_i c0000002_o and TS 10.3.0.1/32 === 10.2.0.0/16", true},
		{"CHILD_SA net{1} established with SPIs c0000001_i c0000002_o and TS 10.200.0.1/32 === 10.2.0.0/16", false},
		{"CHILD_SA net{1} established with SPIs c0000001_i c0000002_o and TS 10.3.0.0/24 === 10.2.0.0/16", false},
		{"CHILD_SA net{1} established with SPIs c0000001_i c0000002_o and TS 10.3.0.1/32 10.3.0.2/32 === 10.2.0.0/16", false},
		{"CHILD_SA net{1} established with SPIs c0000001_i c0000002_o", false},
	} {
		if got := localTSIn(c.line, RAPool); got != c.want {
			t.Errorf("%q: %v, want %v", c.line, got, c.want)
		}
	}
}
