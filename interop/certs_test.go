package interop

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"testing"

	"github.com/xdpsec/xdpsec/ike/iketest"
)

// pemCert and pemKey encode for swanctl's x509/ and private/ folders.
func pemCert(certs ...*x509.Certificate) []byte {
	var b []byte
	for _, c := range certs {
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return b
}

func pemKey(t *testing.T, k crypto.Signer) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// identity kinds of the certificate tests: what goes into id for each side.
type idKind struct {
	name         string
	charon, ours string
}

var idKinds = []idKind{
	{"address", charonAddr, oursAddr},
	{"fqdn", "moon.example.org", "sun.example.org"},
	{"dn", "C=CH, O=xdpsec, CN=moon.example.org", "C=CH, O=xdpsec, CN=sun.example.org"},
}

// endEntity makes a key and a certificate for a peer with all three
// identities: the DN, a DNS and an IP subjectAltName.
func endEntity(t *testing.T, ca *iketest.CA, kind, cn, addr string) (crypto.Signer, *x509.Certificate) {
	key := iketest.NewKey(t, kind)
	return key, ca.Issue(t, key, cn, []string{cn}, nil, []net.IP{net.ParseIP(addr)})
}

// certFiles are the credentials of one side: its certificate and key, and
// the CA it trusts.
func certFiles(t *testing.T, trust *iketest.CA, key crypto.Signer, chain ...*x509.Certificate) map[string][]byte {
	return map[string][]byte{
		"x509/peer.pem":    pemCert(chain[0]),
		"private/peer.pem": pemKey(t, key),
		"x509ca/ca.pem":    pemCert(append([]*x509.Certificate{trust.Cert}, chain[1:]...)...),
	}
}

// certPeers turns the PSK peers into certificate ones.
func certPeers(id idKind) (charonSide, oursSide peer) {
	charonSide, oursSide = pskPeers("aes128gcm16-prfsha256-x25519", "aes128gcm16")
	for _, p := range []*peer{&charonSide, &oursSide} {
		p.localAuth, p.remoteAuth, p.psk, p.cert = "pubkey", "pubkey", "", "peer.pem"
	}
	charonSide.localID, charonSide.remoteID = id.charon, id.ours
	oursSide.localID, oursSide.remoteID = id.ours, id.charon
	return charonSide, oursSide
}

// TestCertificates authenticates both sides with certificates of each key
// type from a CA the test makes, with each kind of identity.
func TestCertificates(t *testing.T) {
	ca := iketest.NewCA(t, "xdpsec interop CA", nil)
	for _, kind := range []string{"rsa", "ecdsa", "ed25519"} {
		ckey, ccert := endEntity(t, ca, kind, "moon.example.org", charonAddr)
		okey, ocert := endEntity(t, ca, kind, "sun.example.org", oursAddr)
		for _, id := range idKinds {
			forRoles(t, kind+"-"+id.name, func(t *testing.T, role string) {
				e := newEnv(t, envOptions{})
				cs, os := certPeers(id)
				e.load(cs, os, certFiles(t, ca, ckey, ccert), certFiles(t, ca, okey, ocert))
				e.initiate(role)
				e.agree(1)
				sa := e.charonSA()
				if sa.get("remote-id") != id.ours || sa.get("local-id") != id.charon {
					t.Errorf("charon's identities: local %q remote %q", sa.get("local-id"), sa.get("remote-id"))
				}
				o := e.oursSA()
				if o.RemoteID != id.charon || o.LocalID != id.ours {
					t.Errorf("our identities: local %q remote %q", o.LocalID, o.RemoteID)
				}
				waitLog(t, "charon", e.charon.log, 5e9, fmt.Sprintf("authentication of '%s' with %s", id.ours, charonAuthName(kind)))
			})
		}
	}
}

// charonAuthName is how charon names the signature scheme it verified.
func charonAuthName(kind string) string {
	switch kind {
	case "ed25519":
		return "ED25519 successful"
	case "ecdsa":
		return "ECDSA_WITH_SHA256_DER successful"
	}
	return "RSA_EMSA_" // PKCS1_SHA2_256 or PSS_SHA2_256_SALT_32, as we chose
}

// TestAsymmetric has one side authenticate with a PSK, the other with a
// certificate, both ways round.
func TestAsymmetric(t *testing.T) {
	ca := iketest.NewCA(t, "xdpsec interop CA", nil)
	ckey, ccert := endEntity(t, ca, "ecdsa", "moon.example.org", charonAddr)
	okey, ocert := endEntity(t, ca, "ecdsa", "sun.example.org", oursAddr)
	for _, who := range []string{"charon-psk", "xdpsec-psk"} {
		forRoles(t, who, func(t *testing.T, role string) {
			e := newEnv(t, envOptions{})
			cs, os := pskPeers("aes128gcm16-prfsha256-x25519", "aes128gcm16")
			var cf, of map[string][]byte
			if who == "charon-psk" {
				cs.remoteAuth, cs.cert, os.localAuth, os.cert = "pubkey", "", "pubkey", "peer.pem"
				of = certFiles(t, ca, okey, ocert)
				cf = map[string][]byte{"x509ca/ca.pem": pemCert(ca.Cert)}
			} else {
				cs.localAuth, cs.cert, os.remoteAuth = "pubkey", "peer.pem", "pubkey"
				cf = certFiles(t, ca, ckey, ccert)
				of = map[string][]byte{"x509ca/ca.pem": pemCert(ca.Cert)}
			}
			e.load(cs, os, cf, of)
			e.initiate(role)
			e.agree(1)
			if who == "charon-psk" {
				waitLog(t, "charon", e.charon.log, 5e9, "authentication of 'moon.example.org' (myself) with pre-shared key", "authentication of 'sun.example.org' with ECDSA")
			} else {
				waitLog(t, "charon", e.charon.log, 5e9, "authentication of 'sun.example.org' with pre-shared key successful")
			}
		})
	}
}
