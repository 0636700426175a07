package bench

import (
	"testing"
	"time"
)

// TestRekeySpreadSmoke runs the rekey spread benchmark small (root): 300
// IKE SAs against our dry-run responder with its state file on, CHILD_SAs
// rekeyed after 2 to 4 s and IKE SAs after 3 to 5 s, counted for 5 s.
// Each of them must be rekeyed by the responder, none lost.
func TestRekeySpreadSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("short: runs a responder for 6 s")
	}
	if err := RequireIKE([]ResponderKind{Ours}); err != nil {
		t.Skip(err)
	}
	const sas = 300
	o := RekeyOptions{Bin: xdpsecBinary(t), SAs: sas, ChildRekey: 4 * time.Second, ChildRand: 2 * time.Second,
		IKERekey: 5 * time.Second, IKERand: 2 * time.Second, Window: 5 * time.Second, Bucket: time.Second, State: true}
	r, err := RekeySpread(o, func(s string) { t.Log(s) })
	if err != nil {
		t.Fatal(err)
	}
	child, ikeSA := r.Rekeys()
	t.Logf("%d CHILD_SA and %d IKE SA rekeys, buckets %v, expected %.0f", child, ikeSA, r.Buckets(), r.Expected())
	if r.Failed != 0 || r.LostChildren != 0 || r.LostIKE != 0 || r.Left != sas {
		t.Errorf("failed %d, lost %d CHILD_SAs and %d IKE SAs, %d IKE SAs with an installed CHILD_SA; want none failed or lost, %d with one", r.Failed, r.LostChildren, r.LostIKE, r.Left, sas)
	}
	if child < sas || ikeSA < sas {
		t.Errorf("%d CHILD_SA and %d IKE SA rekeys in the window, want at least %d each", child, ikeSA, sas)
	}
	if cpu, d := r.WindowCPU(); cpu <= 0 || d < o.Window*9/10 {
		t.Errorf("responder CPU %s over %s", cpu, d)
	}
	if s := r.window(); s[len(s)-1].State == 0 {
		t.Error("no state file")
	}
}

// TestRekeyExpected checks the model of the rekeys against a burst: 100
// CHILD_SAs established in the first second rekey after 10 s, all in one
// bucket without jitter, spread over rand_time with it.
func TestRekeyExpected(t *testing.T) {
	r := RekeyResult{Options: RekeyOptions{ChildRekey: 10 * time.Second, Bucket: time.Second}}
	for i := range 15 {
		s := RekeySample{At: time.Duration(i) * time.Second, Established: 100}
		if i == 0 {
			s.Established = 0
		}
		r.Samples = append(r.Samples, s)
	}
	e := r.Expected()
	if len(e) != 14 || e[10] != 100 {
		t.Fatalf("expected %v: want 100 rekeys in second 11 (bucket 10), from establishments in second 1", e)
	}
	if got := r.ExpectedSpread(); got != 14 {
		t.Errorf("max/mean without jitter %.2f, want 14 (one bucket of 14)", got)
	}
	r.Options.ChildRand = 4 * time.Second
	e = r.Expected()
	for i := 6; i <= 10; i++ {
		if e[i] != 20 {
			t.Errorf("with rand_time 4s: bucket %d has %.1f rekeys, want 20 (100 over 5 s)", i, e[i])
		}
	}
	if m, mean, ratio := Spread([]int64{1, 1, 4, 2}); m != 4 || mean != 2 || ratio != 2 {
		t.Errorf("Spread: %d %.1f %.1f, want 4 2 2", m, mean, ratio)
	}
}

// TestCheckpointSmoke measures the checkpoint cost at 200 IKE SAs.
func TestCheckpointSmoke(t *testing.T) {
	rs, err := Checkpoint([]int{200}, 400, t.TempDir(), func(s string) { t.Log(s) })
	if err != nil {
		t.Fatal(err)
	}
	r := rs[0]
	if r.BytesPerChange < 100 || r.Snapshot < 200*100 || r.CompactCPU <= 0 || r.CPUOn <= 0 || r.CPUOff <= 0 {
		t.Errorf("implausible: %+v", r)
	}
	if n := r.ChangesPerCompaction(); n < 1 {
		t.Errorf("%.1f changes per compaction", n)
	}
}
