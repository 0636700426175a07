package bpf_test

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/xdpsec/xdpsec/bpf"
	"github.com/xdpsec/xdpsec/internal/packet"
)

// runIKE sends one IKE_SA_INIT request from src through xdp_wan and
// returns whether it was admitted.
func runIKE(t *testing.T, objs *bpf.XdpsecObjects, src netip.Addr) bool {
	t.Helper()
	ret, err := objs.XdpWan.Run(&ebpf.RunOptions{Data: ike4(src, packet.IKESAInit(0x1111))})
	if err != nil {
		t.Fatal(err)
	}
	switch ret {
	case xdpPass:
		return true
	case xdpDrop:
		return false
	}
	t.Fatalf("xdp_wan returned %d for IKE_SA_INIT", ret)
	return false
}

// TestIKEPolicerRefill: a source over its burst is refused until its
// bucket has refilled at the configured rate, on the clock xdp_wan keeps
// (jiffies when their length is known, else the coarse clock).
func TestIKEPolicerRefill(t *testing.T) {
	for _, jiffies := range []bool{true, false} {
		objs, s := loadObjects(t)
		// 5 per second (one every 200 ms), two back to back.
		rateLimit(5, 2)(t, s)
		var cfg bpf.XdpsecXsConfig
		if err := objs.Config.Lookup(uint32(0), &cfg); err != nil {
			t.Fatal(err)
		}
		if jiffies && cfg.JiffyNs == 0 {
			t.Fatal("SetIKERateLimit did not find the jiffy length (clock_getres of CLOCK_MONOTONIC_COARSE)")
		}
		if !jiffies {
			// What xdp_wan does where the jiffy length is unknown.
			cfg.JiffyNs = 0
			if err := objs.Config.Put(uint32(0), &cfg); err != nil {
				t.Fatal(err)
			}
		}
		got := []bool{runIKE(t, objs, peer4), runIKE(t, objs, peer4), runIKE(t, objs, peer4)}
		if !got[0] || !got[1] || got[2] {
			t.Fatalf("jiffies %v, back to back: admitted %v, want the burst of 2 and no more", jiffies, got)
		}
		time.Sleep(500 * time.Millisecond)
		got = []bool{runIKE(t, objs, peer4), runIKE(t, objs, peer4), runIKE(t, objs, peer4)}
		if !got[0] || !got[1] || got[2] {
			t.Fatalf("jiffies %v, after 500 ms idle: admitted %v, want the full burst of 2 again", jiffies, got)
		}
		objs.Close()
	}
}

func mix64(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

// ikeBucketOf mirrors xdp_wan's ike_src_hash: the bucket index of a
// source and the tag kept with its state.
func ikeBucketOf(seed uint32, a netip.Addr) (idx uint32, tag uint64) {
	var h uint64
	if a.Is4() {
		b := a.As4()
		h = mix64(uint64(seed)<<32 | uint64(binary.NativeEndian.Uint32(b[:])))
	} else {
		b := a.As16()
		h = mix64(mix64(uint64(seed)<<32^binary.NativeEndian.Uint64(b[:8])) ^ binary.NativeEndian.Uint64(b[8:]))
	}
	return uint32(h>>32) & (65536 - 1), h >> 48
}

// TestIKEPolicerManySources: 64 IPv4 and 64 IPv6 sources that differ in
// their last bits only (as a spoofed flood's do) each send 100 requests
// back to back; each gets its own bucket and exactly its burst through.
// The seed is fixed so that none share a bucket, which the Go mirror of
// the hash checks first.
func TestIKEPolicerManySources(t *testing.T) {
	objs, s := loadObjects(t)
	const burst = 40
	rateLimit(1, burst)(t, s)
	var cfg bpf.XdpsecXsConfig
	if err := objs.Config.Lookup(uint32(0), &cfg); err != nil {
		t.Fatal(err)
	}
	cfg.IkeSeed = 0x5eed
	if err := objs.Config.Put(uint32(0), &cfg); err != nil {
		t.Fatal(err)
	}
	var srcs []netip.Addr
	for i := range 64 {
		srcs = append(srcs, netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)}),
			netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0xff, 14: byte(i >> 8), 15: byte(i)}))
	}
	used := map[uint32]netip.Addr{}
	for _, a := range srcs {
		idx, _ := ikeBucketOf(cfg.IkeSeed, a)
		if b, ok := used[idx]; ok {
			t.Fatalf("test setup: %s and %s share bucket %d with seed %#x: pick another seed", a, b, idx, cfg.IkeSeed)
		}
		used[idx] = a
	}
	admitted := map[netip.Addr]int{}
	for range 100 {
		for _, a := range srcs {
			if runIKE(t, objs, a) {
				admitted[a]++
			}
		}
	}
	for _, a := range srcs {
		if admitted[a] != burst {
			t.Errorf("%s: %d of 100 back-to-back requests admitted, want the burst of %d", a, admitted[a], burst)
		}
	}
}

// TestIKEPolicerSharedBucket: two sources whose hashes pick the same
// bucket do not throttle each other. Each takes the bucket over with a
// fresh state, so a throttled source gains one request per request of
// the other, and no more.
func TestIKEPolicerSharedBucket(t *testing.T) {
	objs, s := loadObjects(t)
	rateLimit(1, 1)(t, s)
	var cfg bpf.XdpsecXsConfig
	if err := objs.Config.Lookup(uint32(0), &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.IkeSeed == 0 {
		t.Fatal("SetIKERateLimit left the policer's hash unseeded")
	}
	a := peer4
	ia, ta := ikeBucketOf(cfg.IkeSeed, a)
	var b netip.Addr
	for i := uint32(1); i < 1<<24; i++ {
		var c [4]byte
		binary.BigEndian.PutUint32(c[:], 10<<24|i)
		if ib, tb := ikeBucketOf(cfg.IkeSeed, netip.AddrFrom4(c)); ib == ia && tb != ta {
			b = netip.AddrFrom4(c)
			break
		}
	}
	if !b.IsValid() {
		t.Fatal("no source in 10.0.0.0/8 shares a bucket with", a)
	}
	// Another source in another bucket, for contrast.
	other := peer4b
	if io, _ := ikeBucketOf(cfg.IkeSeed, other); io == ia {
		t.Skip("test setup: peer4b shares the bucket too")
	}
	steps := []struct {
		src  netip.Addr
		want bool
	}{
		{a, true}, {a, false}, // a's burst of one is spent
		{other, true}, {a, false}, // a source in another bucket leaves a's alone
		{b, true}, {b, false}, // b takes the bucket over and spends its own burst
		{a, true}, {a, false}, // a takes it back: one request for b's one
	}
	for i, st := range steps {
		if got := runIKE(t, objs, st.src); got != st.want {
			t.Fatalf("step %d: request from %s admitted %v, want %v (%s and %s share bucket %d)", i, st.src, got, st.want, a, b, ia)
		}
	}
	checkCounters(t, s, map[string]uint64{"ike": 4, "ike_sa_init": 4, "ike_ratelimit": 4})
}
