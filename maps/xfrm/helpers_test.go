package xfrm

import (
	"crypto/rand"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/xdpsec/xdpsec/ike/transform"
	"github.com/xdpsec/xdpsec/internal/testenv"
)

var (
	capsOnce sync.Once
	caps     Capabilities
	capsErr  error
)

// kernelCaps probes the kernel once per test binary.
func kernelCaps(t *testing.T) Capabilities {
	t.Helper()
	testenv.RequireRoot(t)
	capsOnce.Do(func() { caps, capsErr = Probe() })
	if capsErr != nil {
		t.Skipf("skipped: cannot probe XFRM: %v", capsErr)
	}
	return caps
}

// requireESP skips tests that install real ESP SAs on kernels without the
// ESP transform (built-in esp4/esp6 missing); they run in the VM harness.
func requireESP(t *testing.T) Capabilities {
	t.Helper()
	c := kernelCaps(t)
	if !c.ESP.Available {
		if strings.HasPrefix(c.ESP.Reason, ErrNoESP.Error()) {
			t.Skipf("skipped: %s", c.ESP.Reason)
		}
		t.Skipf("skipped: kernel has no ESP transform (%s)", c.ESP.Reason)
	}
	return c
}

// requireNoESP runs a test of the no-ESP error path only where it can be
// seen.
func requireNoESP(t *testing.T) {
	t.Helper()
	if kernelCaps(t).ESP.Available {
		t.Skip("skipped: kernel has ESP, so the no-ESP errors cannot be seen here")
	}
}

// newConn makes a throwaway named namespace (visible to `ip netns`) and
// connects to it.
func newConn(t *testing.T) (*Conn, *testenv.Netns) {
	t.Helper()
	ns := testenv.NewNetns(t, "xfrm")
	c, err := OpenAt(ns.Handle)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, ns
}

// testCrypto makes random keys of the right lengths.
func testCrypto(t testing.TB, encr transform.EncrID, keyBits uint16, integ transform.IntegID) Crypto {
	t.Helper()
	ek, ik, err := KeyLengths(encr, keyBits, integ)
	if err != nil {
		t.Fatal(err)
	}
	c := Crypto{Encr: encr, KeyBits: keyBits, Integ: integ, EncrKey: make([]byte, ek)}
	rand.Read(c.EncrKey)
	if ik > 0 {
		c.IntegKey = make([]byte, ik)
		rand.Read(c.IntegKey)
	}
	return c
}

// cloneCrypto copies keys, for a peer that must hold the same ones.
func cloneCrypto(c Crypto) Crypto {
	c.EncrKey = append([]byte(nil), c.EncrKey...)
	if c.IntegKey != nil {
		c.IntegKey = append([]byte(nil), c.IntegKey...)
	}
	return c
}

var (
	addrA  = netip.MustParseAddr("192.0.2.1")
	addrB  = netip.MustParseAddr("192.0.2.2")
	addrA6 = netip.MustParseAddr("2001:db8::1")
	addrB6 = netip.MustParseAddr("2001:db8::2")
)

// testAlgorithms are the ESP algorithms xdpsec supports, one per row.
var testAlgorithms = []struct {
	name    string
	encr    transform.EncrID
	keyBits uint16
	integ   transform.IntegID
	want    Algorithms
}{
	{"aes128gcm8", transform.ENCR_AES_GCM_8, 128, transform.AUTH_NONE, Algorithms{AEAD: algGCM, EncrKeyBits: 160, ICVBits: 64}},
	{"aes192gcm12", transform.ENCR_AES_GCM_12, 192, transform.AUTH_NONE, Algorithms{AEAD: algGCM, EncrKeyBits: 224, ICVBits: 96}},
	{"aes256gcm16", transform.ENCR_AES_GCM_16, 256, transform.AUTH_NONE, Algorithms{AEAD: algGCM, EncrKeyBits: 288, ICVBits: 128}},
	{"chacha20poly1305", transform.ENCR_CHACHA20_POLY1305, 0, transform.AUTH_NONE, Algorithms{AEAD: algChaCha, EncrKeyBits: 288, ICVBits: 128}},
	{"aes128-sha1", transform.ENCR_AES_CBC, 128, transform.AUTH_HMAC_SHA1_96, Algorithms{Encr: algCBC, EncrKeyBits: 128, Integ: algSHA1, IntegBits: 160, ICVBits: 96}},
	{"aes128-sha256", transform.ENCR_AES_CBC, 128, transform.AUTH_HMAC_SHA2_256_128, Algorithms{Encr: algCBC, EncrKeyBits: 128, Integ: algSHA2_256, IntegBits: 256, ICVBits: 128}},
	{"aes256-sha384", transform.ENCR_AES_CBC, 256, transform.AUTH_HMAC_SHA2_384_192, Algorithms{Encr: algCBC, EncrKeyBits: 256, Integ: algSHA2_384, IntegBits: 384, ICVBits: 192}},
	{"aes256-sha512", transform.ENCR_AES_CBC, 256, transform.AUTH_HMAC_SHA2_512_256, Algorithms{Encr: algCBC, EncrKeyBits: 256, Integ: algSHA2_512, IntegBits: 512, ICVBits: 256}},
}
