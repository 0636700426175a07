package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/xdpsec/xdpsec/bench"
)

func TestVMSection(t *testing.T) {
	out := `    vmtest_test.go:146: guest| --- PASS: TestX
    vmtest_test.go:146: guest| XDPSEC-BENCH vm-transfer guest=true kernel=6.12.1 bytes=16777216 rounds=3 ours_MBps=4.20 charon_MBps=4.40 ratio=0.955 ours_rounds=4.1,4.2,3.9 charon_rounds=4.4,4.3,4.0
`
	v, err := parseVMTransfer(strings.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	if v.Ours != 4.2 || v.Charon != 4.4 || v.Ratio != 0.955 || v.Bytes != 16<<20 || v.Rounds != 3 || v.Kernel != "6.12.1" {
		t.Errorf("parsed %+v", v)
	}
	if _, err := parseVMTransfer(strings.NewReader("--- SKIP: TestTransferOursVsCharon\n")); err == nil {
		t.Error("no line: want an error")
	}
	var b bytes.Buffer
	writeVMSection(&b, v, bench.Machine{CPUs: 2, CPU: "x"}, time.Unix(0, 0))
	sec := b.String()
	for _, want := range []string{"| 4.20 |", "| 4.40 |", "**0.95**", "TCG", "4.1, 4.2, 3.9"} {
		if !strings.Contains(sec, want) {
			t.Errorf("section lacks %q:\n%s", want, sec)
		}
	}
	readme := []byte("# Benchmarks\n\ntext\n")
	once := replaceVMSection(readme, sec)
	if vmSection(once) != sec {
		t.Errorf("appended section not found again:\n%s", once)
	}
	twice := replaceVMSection(once, strings.Replace(sec, "4.20", "5.00", 1))
	if strings.Count(string(twice), vmBegin) != 1 || !strings.Contains(string(twice), "| 5.00 |") || !strings.HasPrefix(string(twice), "# Benchmarks\n\ntext\n") {
		t.Errorf("replaced:\n%s", twice)
	}
}

func TestClientsSection(t *testing.T) {
	rs := []bench.ClientResult{
		{Clients: 10, KernelBaseNs: 3000, KernelNs: 3700, KernelHashedNs: 3600, KernelSmallNs: 3700, KernelHashedSmallNs: 3600, KernelCatchAllNs: 3650, TCNs: 65, TCFloorNs: 33, TCSmallNs: 65},
		{Clients: 10_000, KernelBaseNs: 3000, KernelNs: 3900, KernelHashedNs: 3620, KernelSmallNs: 3700, KernelHashedSmallNs: 3600, KernelCatchAllNs: 3640, TCNs: 80, TCFloorNs: 33, TCSmallNs: 66},
	}
	var b bytes.Buffer
	writeClientsSection(&b, rs, bench.Machine{CPUs: 2, CPU: "x"}, time.Unix(0, 0), time.Second)
	sec := b.String()
	for _, want := range []string{"| 10,000 | 900 | 1.29 | 620 | 1.03 | 640 | 80 | 33 | 47 | 1.42 | 3000 |", "1.29x at 10,000 clients (met)", "1.42x at 10,000 clients (met)", "by +20 ns", "Design, from these numbers"} {
		if !strings.Contains(sec, want) {
			t.Errorf("section lacks %q:\n%s", want, sec)
		}
	}
	readme := []byte("# Benchmarks\n\ntext\n\n" + clientsBefore + " and heap\n\nmore\n")
	once := replaceClientsSection(readme, sec)
	if clientsSection(once) != sec || !strings.HasPrefix(string(once), "# Benchmarks\n\ntext\n\n"+clientsBegin) {
		t.Errorf("section not put in front of the IKE section:\n%s", once)
	}
	twice := replaceClientsSection(once, strings.Replace(sec, "| 900 |", "| 901 |", 1))
	if strings.Count(string(twice), clientsBegin) != 1 || !strings.Contains(string(twice), "| 901 |") || !strings.HasSuffix(string(twice), clientsBefore+" and heap\n\nmore\n") {
		t.Errorf("replaced:\n%s", twice)
	}
}
