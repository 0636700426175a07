package fleet

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestFleetMembers(t *testing.T) {
	ep := startEtcd(t)
	ctx := ctxT(t, 30*time.Second)
	gw1, gw2 := join(t, ep, "gw1", 0), join(t, ep, "gw/2", childTTL)
	checkpoint := time.Now().Add(-time.Second).Round(0)
	if err := gw1.Publish(ctx, Status{Address: netip.MustParseAddr("192.0.2.11"), IKESAs: 3, ChildSAs: 5,
		Holds: []string{"wan"}, LastCheckpoint: checkpoint}); err != nil {
		t.Fatal(err)
	}
	if err := gw2.Publish(ctx, Status{IKESAs: 1}); err != nil {
		t.Fatal(err)
	}
	ms, err := gw2.Members(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 2 || ms[0].Member != "gw/2" || ms[1].Member != "gw1" {
		t.Fatalf("members %+v", ms)
	}
	s := ms[1]
	if s.Address.String() != "192.0.2.11" || s.IKESAs != 3 || s.ChildSAs != 5 || len(s.Holds) != 1 ||
		!s.LastCheckpoint.Equal(checkpoint) || time.Since(s.Updated) > 10*time.Second {
		t.Fatalf("gw1's status %+v", s)
	}
	// A member cut off from etcd (its keepalives stop, nothing revoked)
	// leaves the list when its lease expires; one that closes at once.
	gw2.session.Orphan()
	cut := time.Now()
	for {
		ms, err = gw1.Members(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(ms) == 1 {
			break
		}
		if time.Since(cut) > childTTL+3*time.Second {
			t.Fatalf("gw/2 still listed %v after its keepalives stopped", time.Since(cut))
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("a cut-off member left the list after %v (TTL %v)", time.Since(cut).Round(time.Millisecond), childTTL)
	// The lease is kept alive every TTL/3 (checked every 0.5 s): well
	// over half a second of it was left.
	if time.Since(cut) < 500*time.Millisecond {
		t.Errorf("gw/2 left after %v, before its lease can have expired", time.Since(cut))
	}
	gw1.Close()
	gw3 := join(t, ep, "gw3", 0)
	if ms, err := gw3.Members(ctx); err != nil || len(ms) != 0 {
		t.Fatalf("after Close: %+v %v", ms, err)
	}
}

func TestFleetJoinErrors(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Member: "gw1", Key: testKey}, "no etcd endpoints"},
		{Config{Endpoints: []string{"http://127.0.0.1:1"}, Key: testKey}, "no member name"},
		{Config{Endpoints: []string{"http://127.0.0.1:1"}, Member: "gw1", Key: testKey[:16]}, "fleet key is 16 bytes"},
		{Config{Endpoints: []string{"http://127.0.0.1:1"}, Member: "gw1", Key: testKey, TTL: time.Second}, "below the minimum"},
		{Config{Endpoints: []string{"http://127.0.0.1:1"}, Member: "gw1", Key: testKey, Prefix: "x"}, "does not start with /"},
		{Config{Endpoints: []string{"http://127.0.0.1:1"}, Member: "gw1", Key: testKey, DialTimeout: 300 * time.Millisecond}, "etcd at http://127.0.0.1:1"},
	} {
		_, err := Join(ctxT(t, 5*time.Second), tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.cfg, err, tc.want)
		}
	}
}

// Close while a Campaign waits (behind another leader): no panic, the
// campaign ends with an error, and the leader is undisturbed.
func TestFleetCloseDuringCampaign(t *testing.T) {
	ep := startEtcd(t)
	ctx := ctxT(t, 30*time.Second)
	gw1, gw2 := join(t, ep, "gw1", 0), join(t, ep, "gw2", 0)
	l1, err := gw1.Campaign(ctx, "wan")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := gw2.Campaign(ctx, "wan")
		done <- err
	}()
	time.Sleep(300 * time.Millisecond)
	if err := gw2.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("the campaign of a closed member won")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the campaign did not end when its member closed")
	}
	if who, err := gw1.Holder(ctx, "wan"); err != nil || who != "gw1" {
		t.Fatalf("holder %q (%v) after gw2 closed", who, err)
	}
	select {
	case <-l1.Lost():
		t.Fatal("gw1 lost its leadership")
	default:
	}
	if _, err := gw2.Campaign(ctx, "lan"); err == nil {
		t.Fatal("a closed member campaigns")
	}
}
