package ike_test

import (
	"crypto"
	"crypto/x509"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/xdpsec/xdpsec/ike/eap"
	"github.com/xdpsec/xdpsec/ike/iketest"
)

const tlsUser = "carol@example.org"

// carolCert issues carol's certificate, her email address as its
// subjectAltName, from ca.
func carolCert(t *testing.T) func(ca *iketest.CA) (crypto.Signer, *x509.Certificate) {
	return func(ca *iketest.CA) (crypto.Signer, *x509.Certificate) {
		key := iketest.NewKey(t, "ecdsa")
		return key, ca.Issue(t, key, "carol", nil, []string{tlsUser}, nil)
	}
}

// TestRemoteAccessEAPTLS: our client against our gateway with EAP-TLS,
// the gateway offering it after EAP-MSCHAPv2 (eap-dynamic) and the
// client Naking for it: the TLS handshake in EAP-TLS fragments, AUTH over
// its MSK, and a virtual IP leased to the identity the certificate
// proved.
func TestRemoteAccessEAPTLS(t *testing.T) {
	rb := newRABed(t, raOptions{user: tlsUser, serverMethods: []eap.Type{eap.TypeMSCHAPv2, eap.TypeMD5, eap.TypeTLS},
		clientMethods: []eap.Type{eap.TypeTLS}, clientCert: carolCert(t)})
	rb.establish()
	vip := netip.MustParseAddr("10.3.200.1")
	c, g := rb.established(rb.a), rb.established(rb.b)
	if !slices.Equal(c.LocalVIPs, []netip.Addr{vip}) || !slices.Equal(g.RemoteVIPs, []netip.Addr{vip}) {
		t.Fatalf("virtual IPs: client %v, gateway %v", c.LocalVIPs, g.RemoteVIPs)
	}
	if g.EAPIdentity != tlsUser {
		t.Errorf("gateway's EAP identity %q", g.EAPIdentity)
	}
	if len(c.Children) != 1 || len(g.Children) != 1 {
		t.Fatalf("CHILD_SAs: client %d, gateway %d", len(c.Children), len(g.Children))
	}
	rb.checkKeys()
	wantLog(t, rb.b, "negotiated TLS 1.3 using suite TLS_", "EAP method EAP_TLS succeeded, MSK established", "authentication of '"+tlsUser+"' with EAP successful",
		"assigning virtual IP 10.3.200.1 to peer '"+tlsUser+"'")
	wantLog(t, rb.a, "negotiated TLS 1.3 using suite TLS_", "EAP method EAP_TLS succeeded, MSK established", "authentication of 'sun.example.org' with EAP successful")
}

// TestRemoteAccessEAPTLSRefused: a certificate from another CA, and one
// issued to someone else, are refused with AUTHENTICATION_FAILED and a
// log line that names the cause.
func TestRemoteAccessEAPTLSRefused(t *testing.T) {
	other := iketest.NewCA(t, "other CA", nil)
	for _, tc := range []struct {
		name string
		cert func(ca *iketest.CA) (crypto.Signer, *x509.Certificate)
		log  string
	}{
		{"other-ca", func(*iketest.CA) (crypto.Signer, *x509.Certificate) { return carolCert(t)(other) },
			"EAP method EAP_TLS failed for peer " + tlsUser + ": certificate not trusted"},
		{"not-carols", func(ca *iketest.CA) (crypto.Signer, *x509.Certificate) {
			key := iketest.NewKey(t, "ecdsa")
			return key, ca.Issue(t, key, "dave", nil, []string{"dave@example.org"}, nil)
		}, "EAP method EAP_TLS failed for peer " + tlsUser + ": certificate identity mismatch"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rb := newRABed(t, raOptions{user: tlsUser, serverMethods: []eap.Type{eap.TypeTLS},
				clientMethods: []eap.Type{eap.TypeTLS}, clientCert: tc.cert})
			rb.establish()
			wantLog(t, rb.b, tc.log)
			wantLog(t, rb.a, "received AUTHENTICATION_FAILED notify error")
			rb.wantNoSAs(rb.a)
			rb.wantNoSAs(rb.b)
			if !slices.ContainsFunc(rb.b.log.all(), func(l string) bool { return strings.Contains(l, tc.log) && strings.Contains(l, "CN=") }) {
				t.Errorf("the gateway's log line does not name the certificate")
			}
		})
	}
}
