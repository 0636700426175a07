package ike

import (
	"crypto/rand"
	"net/netip"
	"testing"
	"time"
)

func TestCookieSecretRotation(t *testing.T) {
	j := cookieJar{rand: rand.Reader}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	d := Datagram{Remote: netip.MustParseAddrPort("192.0.2.1:500")}
	ni := []byte("initiator nonce.")
	j.rotate(now, time.Minute)
	c := j.make(j.version, &j.secret, ni, d, 42)
	if !j.valid(c, ni, d, 42) {
		t.Fatal("fresh cookie refused")
	}
	for _, bad := range []struct {
		ni   []byte
		addr string
		spi  uint64
	}{{[]byte("other nonce....."), "192.0.2.1:500", 42}, {ni, "192.0.2.9:500", 42}, {ni, "192.0.2.1:500", 43}} {
		if j.valid(c, bad.ni, Datagram{Remote: netip.MustParseAddrPort(bad.addr)}, bad.spi) {
			t.Fatalf("cookie valid for %+v", bad)
		}
	}
	// Within the lifetime the secret stays; after it, the previous secret
	// is still accepted once.
	j.rotate(now.Add(30*time.Second), time.Minute)
	if j.version != 1 {
		t.Fatal("rotated early")
	}
	j.rotate(now.Add(61*time.Second), time.Minute)
	if !j.valid(c, ni, d, 42) {
		t.Fatal("cookie of the previous secret refused")
	}
	j.rotate(now.Add(122*time.Second), time.Minute)
	if j.valid(c, ni, d, 42) {
		t.Fatal("cookie two secrets old accepted")
	}
}
