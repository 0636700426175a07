package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/xdpsec/xdpsec/bench"
)

func TestKscaleSection(t *testing.T) {
	out := `    vmtest_test.go:146: guest| --- PASS: TestKernelScale/ours
    vmtest_test.go:146: guest| XDPSEC-BENCH vm-kscale-prof $ go tool pprof -top cpu.prof
    vmtest_test.go:146: guest| XDPSEC-BENCH vm-kscale-prof       flat  flat%   sum%        cum   cum%
    vmtest_test.go:146: guest| XDPSEC-BENCH vm-kscale kernel=6.12.1 tunnels=1000 ours_s=20.000 ours_kernel_s=20.100 ours_load_s=1.5 ours_cpu_s=10.000 ours_rss_kib=40960 ours_hwm_kib=51200 ours_states=2000 ours_policies=1000/1000/1000 ours_retrans=0 ours_guest_busy_s=30.000 charon_s=40.000 charon_kernel_s=40.000 charon_load_s=3 charon_cpu_s=20.000 charon_rss_kib=20480 charon_hwm_kib=20480 charon_states=2000 charon_policies=1000/1000/1000 charon_retrans=2 charon_guest_busy_s=60.000
`
	v, err := parseKscale(strings.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	if v.Tunnels != 1000 || v.Ours.Seconds != 20 || v.Charon.CPUSeconds != 20 || v.Ours.RSSKiB != 40960 ||
		v.Charon.Policies != "1000/1000/1000" || v.Charon.Retrans != 2 || v.Kernel != "6.12.1" || len(v.Profile) != 2 {
		t.Errorf("parsed %+v", v)
	}
	if _, err := parseKscale(strings.NewReader("--- SKIP: TestKernelScale\n")); err == nil {
		t.Error("no line: want an error")
	}
	var b bytes.Buffer
	writeKscaleSection(&b, v, bench.Machine{CPUs: 2, CPU: "x"}, time.Unix(0, 0))
	sec := b.String()
	for _, want := range []string{"1,000 route-based tunnels", "| 20.0 s | 50.0 |", "| 10.0 ms |", "**0.50**", "1000/1000/1000", "flat  flat%"} {
		if !strings.Contains(sec, want) {
			t.Errorf("section lacks %q:\n%s", want, sec)
		}
	}
	readme := []byte("# Benchmarks\n\ntext\n")
	once := replaceKscaleSection(readme, sec)
	if kscaleSection(once) != sec {
		t.Errorf("appended section not found again:\n%s", once)
	}
	twice := replaceKscaleSection(once, strings.Replace(sec, "| 20.0 s |", "| 21.0 s |", 1))
	if strings.Count(string(twice), kscaleBegin) != 1 || !strings.Contains(string(twice), "| 21.0 s |") {
		t.Errorf("replaced section:\n%s", twice)
	}
}
