package ike_test

import (
	"crypto"
	"crypto/x509"
	"github.com/xdpsec/xdpsec/ike/transform"
	"net"
	"testing"

	"github.com/xdpsec/xdpsec/ike"
	"github.com/xdpsec/xdpsec/ike/iketest"
)

// The test PKI lives in iketest, shared with the UDP tests.
type testCA = iketest.CA

func newCA(t testing.TB, cn string, parent *testCA) *testCA { return iketest.NewCA(t, cn, parent) }

func newKey(t testing.TB, kind string) crypto.Signer { return iketest.NewKey(t, kind) }

// certBed sets both ends up for public key authentication with
// certificates issued by ca (or, for b's view of a, trusting trustB).
func certBed(t *testing.T, kind string, schemeA *transform.SignatureScheme, idA, idB string, ca *testCA, trustedByB *testCA, chain []*x509.Certificate, mod func(c *ike.Connection)) *testbed {
	keyA, keyB := newKey(t, kind), newKey(t, kind)
	certA := ca.Issue(t, keyA, "moon.example.org", []string{"moon.example.org"}, []string{"moon@example.org"}, []net.IP{addrA.AsSlice()})
	certB := ca.Issue(t, keyB, "sun.example.org", []string{"sun.example.org"}, nil, []net.IP{addrB.AsSlice()})
	if chain != nil {
		certA = chain[0]
		keyA = nil
	}
	return newTestbed(t, bedOptions{
		connA: func(c *ike.Connection) {
			certs := []*x509.Certificate{certA}
			k := keyA
			if chain != nil {
				certs, k = chain, chainKey
			}
			c.Local = []*ike.AuthConfig{{Auth: ike.AuthPubkey, Scheme: schemeA, ID: ike.MustParseIdentity(idA), Certs: certs, PrivateKey: k}}
			c.Remote = []*ike.AuthConfig{{Auth: ike.AuthPubkey, ID: ike.MustParseIdentity(idB)}}
			if mod != nil {
				mod(c)
			}
		},
		connB: func(c *ike.Connection) {
			c.Local = []*ike.AuthConfig{{Auth: ike.AuthPubkey, ID: ike.MustParseIdentity(idB), Certs: []*x509.Certificate{certB}, PrivateKey: keyB}}
			c.Remote = []*ike.AuthConfig{{Auth: ike.AuthPubkey, ID: ike.MustParseIdentity(idA)}}
			if mod != nil {
				mod(c)
			}
		},
		cfgA: func(c *ike.Config) { c.Credentials.CAs = []*x509.Certificate{ca.Cert} },
		cfgB: func(c *ike.Config) { c.Credentials.CAs = []*x509.Certificate{trustedByB.Cert} },
	})
}

var chainKey crypto.Signer

func TestCertificates(t *testing.T) {
	ca := newCA(t, "xdpsec Root CA", nil)
	for _, tc := range []struct {
		name, kind string
		forced     *transform.SignatureScheme // auth = rsa, rsa/pss
		scheme     string
	}{
		{"RSA PKCS#1", "rsa", &transform.SignatureScheme{Algorithm: transform.SigRSAPKCS1, Hash: transform.HashSHA2_256}, "RSA_EMSA_PKCS1_SHA2_256"},
		{"RSA-PSS", "rsa", &transform.SignatureScheme{Algorithm: transform.SigRSAPSS, Hash: transform.HashSHA2_256}, "RSA_EMSA_PSS_SHA2_256"},
		{"ECDSA P-256", "ecdsa", nil, "ECDSA_WITH_SHA256_DER"},
		{"Ed25519", "ed25519", nil, "ED25519"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tb := certBed(t, tc.kind, tc.forced, "", "sun.example.org", ca, ca, nil, nil)
			// IKE_SA_INIT response carries CERTREQ; IKE_AUTH:
			// HDR, SK {IDi, CERT, CERTREQ, IDr, AUTH, SAi2, TSi, TSr} -->
			// <-- HDR, SK {IDr, CERT, AUTH, SAr2, TSi, TSr}
			tb.establish()
			tb.established(tb.a)
			tb.established(tb.b)
			tb.checkKeys()
			want := "authentication of 'C=CH, O=xdpsec, CN=moon.example.org' with " + tc.scheme + " successful"
			if !tb.b.log.contains(want) {
				t.Errorf("b did not log %q", want)
			}
			if !tb.a.log.contains("parsed IKE_AUTH response 1 [ IDr CERT AUTH SA TSi TSr N(MSG_ID_SYN_SUP) ]") {
				t.Error("a: unexpected IKE_AUTH response")
			}
		})
	}
}

func TestCertificateUnknownCA(t *testing.T) {
	ca, other := newCA(t, "xdpsec Root CA", nil), newCA(t, "Other CA", nil)
	tb := certBed(t, "ecdsa", nil, "", "sun.example.org", ca, other, nil, nil)
	tb.establish()
	// <-- HDR, SK {N(AUTHENTICATION_FAILED)}
	if !tb.b.log.contains("no trusted ECDSA public key found for 'C=CH, O=xdpsec, CN=moon.example.org'") {
		t.Error("b did not log the path failure")
	}
	if !tb.a.log.contains("received AUTHENTICATION_FAILED notify error") {
		t.Error("a did not see AUTHENTICATION_FAILED")
	}
	tb.wantNoSAs(tb.a)
	tb.wantNoSAs(tb.b)
}

func TestIdentityTypes(t *testing.T) {
	ca := newCA(t, "xdpsec Root CA", nil)
	for _, tc := range []struct{ name, idA, want string }{
		{"DN", "C=CH, O=xdpsec, CN=moon.example.org", "C=CH, O=xdpsec, CN=moon.example.org"},
		{"FQDN", "moon.example.org", "moon.example.org"},
		{"RFC822", "moon@example.org", "moon@example.org"},
		{"IPv4", "192.0.2.1", "192.0.2.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tb := certBed(t, "ed25519", nil, tc.idA, "sun.example.org", ca, ca, nil, nil)
			tb.establish()
			b := tb.established(tb.b)
			if b.RemoteID.String() != tc.want {
				t.Fatalf("b sees %q, want %q", b.RemoteID, tc.want)
			}
			if !tb.b.log.contains("authentication of '" + tc.want + "' with ED25519 successful") {
				t.Error("not logged")
			}
		})
	}
	t.Run("wrong identity", func(t *testing.T) {
		tb := certBed(t, "ed25519", nil, "", "sun.example.org", ca, ca, nil, func(c *ike.Connection) {
			if c.Local[0].ID.IsAny() {
				c.Local[0].ID = ike.MustParseIdentity("moon.example.org")
			} else {
				c.Remote[0].ID = ike.MustParseIdentity("other.example.org")
			}
		})
		tb.establish()
		if !tb.b.log.contains("no matching peer config found") {
			t.Error("b accepted a wrong identity")
		}
		tb.wantNoSAs(tb.a)
	})
}

func TestPSKIdentityTypes(t *testing.T) {
	for _, tc := range []struct{ idA, want string }{
		{"192.0.2.1", "192.0.2.1"},
		{"@moon.example.org", "moon.example.org"},
		{"moon@example.org", "moon@example.org"},
		{"@#0a0b0c", "@#0a0b0c"},
		{"C=CH, O=xdpsec, CN=moon", "C=CH, O=xdpsec, CN=moon"},
		{"", "192.0.2.1"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			tb := newTestbed(t, bedOptions{
				connA: func(c *ike.Connection) { c.Local[0].ID = ike.MustParseIdentity(tc.idA) },
				connB: func(c *ike.Connection) { c.Remote[0].ID = ike.MustParseIdentity(tc.want) },
			})
			tb.establish()
			if got := tb.established(tb.b).RemoteID.String(); got != tc.want {
				t.Fatalf("b sees %q, want %q", got, tc.want)
			}
		})
	}
}
