package fleet

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/xdpsec/xdpsec/internal/fleet/fleettest"
)

var testKey = bytes.Repeat([]byte{0x42}, 32)

// join makes a member of the fleet at endpoint, closed when the test ends.
func join(t *testing.T, endpoint, name string, ttl time.Duration) *Member {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := Join(ctx, Config{Endpoints: []string{endpoint}, Member: name, Key: testKey, TTL: ttl})
	if err != nil {
		t.Fatalf("join %s: %v", name, err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func startEtcd(t *testing.T) string {
	t.Helper()
	return fleettest.Start(t)
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
