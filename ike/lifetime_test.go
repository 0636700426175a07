package ike_test

import (
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/xdpsec/xdpsec/ike"
)

// TestChildLifetimeLimits checks what the dataplane is given: soft limits
// drawn from [rekey - rand, rekey], hard limits as configured or 10% above
// the soft ones (swanctl.conf's defaults).
func TestChildLifetimeLimits(t *testing.T) {
	tb := newTestbed(t, bedOptions{connA: func(c *ike.Connection) {
		ch := c.Children[0]
		ch.RekeyTime, ch.LifeTime, ch.RandTime = 100*time.Second, 200*time.Second, 40*time.Second
		ch.RekeyBytes = 1_000_000                                      // life 1.1M, rand 100k
		ch.RekeyPackets, ch.LifePackets, ch.RandPackets = 100, 200, 10 // all given
	}})
	tb.establish()
	sas := tb.a.dp.SAs()
	if len(sas) != 2 {
		t.Fatalf("%d SAs", len(sas))
	}
	for _, sa := range sas {
		lt := sa.Lifetime
		if lt.HardTime != 200*time.Second || lt.HardBytes != 1_100_000 || lt.HardPackets != 200 {
			t.Errorf("SA %08x hard limits %+v", sa.SPI, lt)
		}
		if lt.SoftBytes < 900_000 || lt.SoftBytes > 1_000_000 || lt.SoftPackets < 90 || lt.SoftPackets > 100 {
			t.Errorf("SA %08x soft limits %+v out of range", sa.SPI, lt)
		}
		if lt.SoftTime < 60*time.Second || lt.SoftTime > 100*time.Second || lt.SoftTime%time.Second != 0 {
			t.Errorf("SA %08x soft time %v out of range", sa.SPI, lt.SoftTime)
		}
	}
	if sas[0].Lifetime != sas[1].Lifetime {
		t.Errorf("the two SAs of a CHILD_SA have different limits: %+v %+v", sas[0].Lifetime, sas[1].Lifetime)
	}
	// b configured none: no volume limits, the default times.
	for _, sa := range tb.b.dp.SAs() {
		lt := sa.Lifetime
		if lt.SoftBytes != 0 || lt.HardBytes != 0 || lt.SoftPackets != 0 || lt.HardPackets != 0 || lt.HardTime != 66*time.Minute {
			t.Errorf("b's SA %08x limits %+v", sa.SPI, lt)
		}
	}
}

// TestRekeyTimeJitter checks that a CHILD_SA is rekeyed within
// [rekey_time - rand_time, rekey_time] of its creation, and not always at
// the same moment.
func TestRekeyTimeJitter(t *testing.T) {
	seen := map[time.Duration]bool{}
	for seed := range uint64(8) {
		tb := newTestbed(t, bedOptions{
			connA: func(c *ike.Connection) {
				c.Children[0].RekeyTime, c.Children[0].RandTime = 100*time.Second, 40*time.Second
			},
			connB: func(c *ike.Connection) { c.Children[0].RekeyTime = 10 * time.Hour },
			cfgA:  func(c *ike.Config) { c.Rand = rand.NewChaCha8([32]byte{byte(seed)}) },
		})
		tb.establish()
		soft := tb.a.dp.SAs()[0].Lifetime.SoftTime
		var at time.Duration
		for at = 0; at <= 101*time.Second && !tb.a.log.contains("rekeying CHILD_SA net{1}"); at += time.Second {
			tb.advance(time.Second)
		}
		// The rekey was logged during the last step: it happened in
		// (at-1s, at].
		if at < 61*time.Second || at > 100*time.Second {
			t.Fatalf("seed %d: rekeyed after %v, want within [60s, 100s]", seed, at)
		}
		if soft != at {
			t.Errorf("seed %d: rekeyed after %v, the dataplane's soft time is %v", seed, at, soft)
		}
		if len(tb.children(tb.a)) != 1 || tb.children(tb.a)[0].ID == 1 {
			t.Fatalf("seed %d: CHILD_SA not replaced: %+v", seed, tb.children(tb.a))
		}
		seen[at] = true
	}
	if len(seen) < 2 {
		t.Errorf("all eight CHILD_SAs rekeyed at the same moment: no jitter")
	}
}

// TestExpireSoftRekeys drives the byte limits as the kernel would: the
// soft expiry of a CHILD_SA's SA rekeys it, once even if both SAs report.
func TestExpireSoftRekeys(t *testing.T) {
	limits := func(c *ike.Connection) { c.Children[0].RekeyBytes = 1 << 20 }
	tb := newTestbed(t, bedOptions{connA: limits, connB: limits})
	tb.establish()
	old := tb.children(tb.a)[0]
	in, out := ike.SAID{Dst: addrA, SPI: old.SPIIn}, ike.SAID{Dst: addrB, SPI: old.SPIOut}
	var softs []ike.SAID
	for _, id := range []ike.SAID{in, out} {
		for range 20 {
			soft, hard, err := tb.a.dp.Traffic(id, 64<<10, 50)
			if err != nil || hard {
				t.Fatalf("traffic: %v hard=%v", err, hard)
			}
			if soft {
				softs = append(softs, id)
				break
			}
		}
	}
	if len(softs) != 2 {
		t.Fatalf("soft limits of 1 MiB minus jitter not reached after 1.25 MiB: %v", softs)
	}
	// Both SAs report before anything is delivered: one rekey
	// HDR, SK {N(REKEY_SA), SA, Ni, TSi, TSr} --> <-- HDR, SK {SA, Nr, TSi, TSr}
	// then the old one is deleted: HDR, SK {D(ESP)} --> <-- HDR, SK {D(ESP)}
	for _, id := range softs {
		if err := tb.a.e.Expire(id, false); err != nil {
			t.Fatal(err)
		}
	}
	tb.net.Flush()
	if n := tb.a.log.count("rekeying CHILD_SA net{1}"); n != 1 {
		t.Fatalf("%d rekeys, want 1", n)
	}
	if !tb.a.log.contains("creating rekey job for CHILD_SA ESP/0x" + hex8(old.SPIIn) + "/192.0.2.1") {
		t.Error("soft expiry not logged")
	}
	ca := tb.children(tb.a)
	if len(ca) != 1 || ca[0].SPIIn == old.SPIIn || ca[0].State != ike.ChildSAInstalled {
		t.Fatalf("CHILD_SA not replaced: %+v", ca)
	}
	tb.settleRekeys()
	tb.checkKeys()
	// The new SAs have fresh limits; the old SA is no one's.
	if err := tb.a.e.Expire(in, false); !errors.Is(err, ike.ErrUnknownSA) {
		t.Errorf("expiry of a replaced SA: %v", err)
	}
}

// TestExpireHardDeletes: a hard expiry (the kernel removed the SA) deletes
// the CHILD_SA and tells the peer, as charon does.
func TestExpireHardDeletes(t *testing.T) {
	limits := func(c *ike.Connection) {
		c.Children[0].RekeyPackets, c.Children[0].LifePackets = 100, 120
	}
	tb := newTestbed(t, bedOptions{connA: limits, connB: limits})
	tb.establish()
	c := tb.children(tb.a)[0]
	out := ike.SAID{Dst: addrB, SPI: c.SPIOut}
	if _, hard, err := tb.a.dp.Traffic(out, 1500*120, 120); err != nil || !hard {
		t.Fatalf("hard limit of 120 packets not enforced: %v", err)
	}
	// HDR, SK {D(ESP, SPI_i)} --> <-- HDR, SK {D(ESP, SPI_r)}
	if err := tb.a.e.Expire(out, true); err != nil {
		t.Fatal(err)
	}
	tb.net.Flush()
	for _, want := range []string{
		"creating delete job for CHILD_SA ESP/0x" + hex8(c.SPIOut) + "/192.0.2.2",
		"closing expired CHILD_SA net{1} with SPIs",
		"sending DELETE for ESP CHILD_SA with SPI " + hex8(c.SPIIn),
		"CHILD_SA net{1} closed",
	} {
		if !tb.a.log.contains(want) {
			t.Errorf("a did not log %q", want)
		}
	}
	if !tb.b.log.contains("received DELETE for ESP CHILD_SA with SPI " + hex8(c.SPIIn)) {
		t.Error("b not told")
	}
	if tb.a.log.contains("unable to delete") {
		t.Error("tried to delete the SA the dataplane removed")
	}
	tb.established(tb.a)
	for _, p := range []*peer{tb.a, tb.b} {
		if len(tb.children(p)) != 0 || len(p.dp.SAs()) != 0 || len(p.dp.Policies()) != 0 || p.dp.AllocatedSPIs() != 0 {
			t.Fatalf("%s: CHILD_SA left: %+v", p.name, tb.children(p))
		}
	}
}

func hex8(v uint32) string {
	const digits = "0123456789abcdef"
	b := make([]byte, 8)
	for i := 7; i >= 0; i-- {
		b[i] = digits[v&0xf]
		v >>= 4
	}
	return string(b)
}

// TestRandExactNoJitter: with RandExact (the daemon, which resolved
// swanctl.conf's defaults), rand_time = 0 means no jitter: a CHILD_SA
// with rekey_time 3s is rekeyed every 3s exactly, not earlier.
func TestRandExactNoJitter(t *testing.T) {
	tb := newTestbed(t, bedOptions{connA: func(c *ike.Connection) {
		c.RandExact = true
		c.Children[0].RandExact = true
		c.Children[0].RekeyTime, c.Children[0].LifeTime, c.Children[0].RandTime = 3*time.Second, 60*time.Second, 0
	}})
	tb.establish()
	for i := 1; i <= 30; i++ {
		tb.advance(time.Second)
		if got, want := tb.a.log.count("generating CREATE_CHILD_SA request"), i/3; got != want {
			t.Fatalf("after %ds: %d rekeys, want %d (one every 3s)", i, got, want)
		}
	}
}
