package eap

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"
)

// testCA is a CA of the EAP-TLS tests, with its key.
type testCA struct {
	cert *x509.Certificate
	key  crypto.Signer
}

var tlsTestNow = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

func newTestCA(t testing.TB, cn string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: tlsTestNow.AddDate(-1, 0, 0), NotAfter: tlsTestNow.AddDate(4, 0, 0),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return &testCA{cert: c, key: key}
}

// issue makes a key and an end entity certificate named cn with cn as
// its DNS or email subjectAltName, valid from notBefore for a year.
func (ca *testCA) issue(t testing.TB, cn string, notBefore time.Time) (crypto.Signer, *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: notBefore, NotAfter: notBefore.AddDate(1, 0, 0), KeyUsage: x509.KeyUsageDigitalSignature}
	if strings.Contains(cn, "@") {
		tmpl.EmailAddresses = []string{cn}
	} else {
		tmpl.DNSNames = []string{cn}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return key, c
}

const tlsServerName = "sun.example.org"

// tlsWorld is a CA, the gateway's and carol's credentials from it.
type tlsWorld struct {
	ca, other          *testCA
	srvKey, cliKey     crypto.Signer
	srvCert, cliCert   *x509.Certificate
	otherKey           crypto.Signer
	otherCert, oldCert *x509.Certificate
	oldKey             crypto.Signer
}

func newTLSWorld(t testing.TB) *tlsWorld {
	w := &tlsWorld{ca: newTestCA(t, "test CA"), other: newTestCA(t, "other CA")}
	w.srvKey, w.srvCert = w.ca.issue(t, tlsServerName, tlsTestNow.AddDate(0, -1, 0))
	w.cliKey, w.cliCert = w.ca.issue(t, testUser, tlsTestNow.AddDate(0, -1, 0))
	w.otherKey, w.otherCert = w.other.issue(t, testUser, tlsTestNow.AddDate(0, -1, 0))
	w.oldKey, w.oldCert = w.ca.issue(t, testUser, tlsTestNow.AddDate(-2, 0, 0))
	return w
}

func (w *tlsWorld) serverConfig() TLSConfig {
	return TLSConfig{Chain: []*x509.Certificate{w.srvCert}, Key: w.srvKey, CAs: []*x509.Certificate{w.ca.cert},
		Identity: testUser, Now: func() time.Time { return tlsTestNow }}
}

func (w *tlsWorld) peerConfig() TLSConfig {
	return TLSConfig{Chain: []*x509.Certificate{w.cliCert}, Key: w.cliKey, CAs: []*x509.Certificate{w.ca.cert},
		Identity: tlsServerName, Now: func() time.Time { return tlsTestNow }}
}

// tlsConversation runs our Server and Peer runners against each other
// with EAP-TLS, and returns both results and the number of messages.
func tlsConversation(t *testing.T, scfg, pcfg TLSConfig, identity string) (srv, peer Result, msgs int, sm *TLSServer, pm *TLSPeer) {
	t.Helper()
	s := newTestServer(t, ServerConfig{Methods: []Type{TypeTLS}, Identity: identity, NewMethod: func(ty Type, id string) ServerMethod {
		c := scfg
		c.Identity = id
		m, err := NewTLSServer(c)
		if err != nil {
			t.Fatal(err)
		}
		sm = m
		return m
	}})
	p := newTestPeer(t, PeerConfig{Identity: testUser, Methods: []Type{TypeTLS}, NewMethod: func(Type) PeerMethod {
		m, err := NewTLSPeer(pcfg)
		if err != nil {
			t.Fatal(err)
		}
		pm = m
		return m
	}})
	msg, err := s.Start()
	if err != nil {
		t.Fatal(err)
	}
	for msgs = 1; msgs < 500; msgs++ {
		resp, err := p.Process(msg)
		if err != nil {
			t.Fatalf("peer: %v", err)
		}
		if p.Done() || s.Done() {
			break
		}
		if resp == nil {
			t.Fatalf("peer sent nothing to message %d", msgs)
		}
		if len(resp) > scfg.FragmentSize && scfg.FragmentSize > 0 || len(resp) > DefaultTLSFragmentSize {
			t.Errorf("peer packet of %d octets", len(resp))
		}
		msg, err = s.Process(resp)
		if err != nil {
			t.Fatalf("server: %v", err)
		}
		if len(msg) > DefaultTLSFragmentSize {
			t.Errorf("server packet of %d octets", len(msg))
		}
	}
	return s.Result(), p.Result(), msgs, sm, pm
}

func TestTLSConversation(t *testing.T) {
	w := newTLSWorld(t)
	for _, tc := range []struct {
		name            string
		srvMax, peerMax uint16
		want            uint16
		frag            int
	}{
		{"tls12", tls.VersionTLS12, 0, tls.VersionTLS12, 0},
		{"tls13", 0, 0, tls.VersionTLS13, 0},
		{"peer-max-tls12", 0, tls.VersionTLS12, tls.VersionTLS12, 0},
		{"tls12-small-fragments", tls.VersionTLS12, 0, tls.VersionTLS12, 100},
		{"tls13-small-fragments", 0, 0, tls.VersionTLS13, 60},
	} {
		t.Run(tc.name, func(t *testing.T) {
			scfg, pcfg := w.serverConfig(), w.peerConfig()
			scfg.MaxVersion, pcfg.MaxVersion = tc.srvMax, tc.peerMax
			scfg.FragmentSize, pcfg.FragmentSize = tc.frag, tc.frag
			if tc.frag > 0 {
				scfg.MaxPackets, pcfg.MaxPackets = 200, 200
			}
			srv, peer, msgs, sm, pm := tlsConversation(t, scfg, pcfg, testUser)
			if srv.Err != nil || peer.Err != nil {
				t.Fatalf("server: %v, peer: %v", srv.Err, peer.Err)
			}
			if len(srv.MSK) != 64 || !bytes.Equal(srv.MSK, peer.MSK) {
				t.Fatalf("MSKs %x and %x", srv.MSK, peer.MSK)
			}
			if srv.Identity != testUser || srv.Method != TypeTLS {
				t.Errorf("server result %v %q", srv.Method, srv.Identity)
			}
			if sm.Version() != tc.want || pm.Version() != tc.want {
				t.Errorf("versions %#x %#x, want %#x", sm.Version(), pm.Version(), tc.want)
			}
			if tc.frag > 0 && msgs < 20 {
				t.Errorf("only %d messages with %d-octet fragments", msgs, tc.frag)
			}
			t.Logf("%d messages", msgs)
		})
	}
}

// TestTLSMSKExporter checks the TLS 1.2 MSK computed from the master
// secret against crypto/tls's own exporter (both Go ends negotiate the
// Extended Master Secret, with which it works), and TLS 1.3's against
// RFC 9190's exporter.
func TestTLSMSKExporter(t *testing.T) {
	w := newTLSWorld(t)
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		scfg, pcfg := w.serverConfig(), w.peerConfig()
		scfg.MaxVersion = v
		sm, err := NewTLSServer(scfg)
		if err != nil {
			t.Fatal(err)
		}
		pm, err := NewTLSPeer(pcfg)
		if err != nil {
			t.Fatal(err)
		}
		req, err := sm.Begin(1)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 50; i++ {
			req.Code = CodeRequest
			resp, pst, err := pm.Process(req)
			if err != nil || pst == Failed {
				t.Fatalf("peer: %v", err)
			}
			r, sst, err := sm.Process(*resp)
			if sst == Failed {
				t.Fatalf("server: %v", err)
			}
			if sst == Succeeded {
				break
			}
			req = r
		}
		st := sm.core.state
		var want []byte
		if v == tls.VersionTLS12 {
			want, err = st.ExportKeyingMaterial("client EAP encryption", nil, 128)
		} else {
			want, err = st.ExportKeyingMaterial("EXPORTER_EAP_TLS_Key_Material", []byte{0x0d}, 128)
		}
		if err != nil {
			t.Fatal(err)
		}
		if got := sm.MSK(); !bytes.Equal(got, want[:64]) || !bytes.Equal(pm.MSK(), want[:64]) {
			t.Errorf("version %#x: MSK %x / %x, exporter %x", v, got, pm.MSK(), want[:64])
		}
		sm.Wipe()
		pm.Wipe()
		if sm.core.msk != nil || pm.core.msk != nil || sm.core.keylog.master != nil {
			t.Error("Wipe left key material")
		}
	}
}

func TestTLSFailures(t *testing.T) {
	w := newTLSWorld(t)
	for _, tc := range []struct {
		name       string
		mod        func(s, p *TLSConfig)
		identity   string
		srvReason  Reason
		peerReason Reason
		detail     string
	}{
		{"unknown-ca", func(s, p *TLSConfig) { p.Chain, p.Key = []*x509.Certificate{w.otherCert}, w.otherKey },
			testUser, ReasonUntrustedCertificate, ReasonRejected, "unknown authority"},
		{"expired", func(s, p *TLSConfig) { p.Chain, p.Key = []*x509.Certificate{w.oldCert}, w.oldKey },
			testUser, ReasonCertificateExpired, ReasonRejected, "expired"},
		{"wrong-identity", nil, "dave@example.org", ReasonCertificateIdentity, ReasonRejected, "not issued to"},
		{"server-unknown-ca", func(s, p *TLSConfig) { p.CAs = []*x509.Certificate{w.other.cert} },
			testUser, 0, ReasonUntrustedCertificate, "unknown authority"},
		{"server-identity", func(s, p *TLSConfig) { p.Identity = "moon.example.org" },
			testUser, 0, ReasonCertificateIdentity, "not issued to"},
		{"tls13-unknown-ca", func(s, p *TLSConfig) {
			p.Chain, p.Key = []*x509.Certificate{w.otherCert}, w.otherKey
			s.MaxVersion = tls.VersionTLS13
		}, testUser, ReasonUntrustedCertificate, ReasonRejected, "unknown authority"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			scfg, pcfg := w.serverConfig(), w.peerConfig()
			if tc.mod != nil {
				tc.mod(&scfg, &pcfg)
			}
			srv, peer, _, _, _ := tlsConversation(t, scfg, pcfg, tc.identity)
			if srv.MSK != nil || peer.MSK != nil {
				t.Error("an MSK after failure")
			}
			// The peer that refuses the server stops answering: the
			// server's conversation does not end (the IKE SA times out).
			var se, pe *Error
			if !errors.As(peer.Err, &pe) || pe.Reason != tc.peerReason {
				t.Fatalf("peer %v, want %v", peer.Err, tc.peerReason)
			}
			line := pe.LogLine("sun")
			if tc.srvReason != 0 {
				if !errors.As(srv.Err, &se) || se.Reason != tc.srvReason {
					t.Fatalf("server %v, want %v", srv.Err, tc.srvReason)
				}
				line = se.LogLine("carol")
			} else if srv.Err != nil {
				t.Errorf("server failed too: %v", srv.Err)
			}
			if !strings.Contains(line, tc.detail) || !strings.HasPrefix(line, "EAP method EAP_TLS failed for peer") {
				t.Errorf("log line %q does not say %q", line, tc.detail)
			}
			t.Log(line)
		})
	}
}

func TestTLSConfigChecks(t *testing.T) {
	w := newTLSWorld(t)
	for name, mod := range map[string]func(c *TLSConfig){
		"no-cert":    func(c *TLSConfig) { c.Chain = nil },
		"wrong-key":  func(c *TLSConfig) { c.Key = w.cliKey },
		"no-ca":      func(c *TLSConfig) { c.CAs = nil },
		"tiny-frags": func(c *TLSConfig) { c.FragmentSize = 5 },
		"tls11":      func(c *TLSConfig) { c.MinVersion = tls.VersionTLS11 },
	} {
		c := w.serverConfig()
		mod(&c)
		if _, err := NewTLSServer(c); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestTLS12MSKSuites checks the TLS 1.2 MSK, from the master secret and
// the server random, against crypto/tls's exporter for a SHA-256 and a
// SHA-384 cipher suite (whose PRF hash differs), with TLS run directly
// over net.Pipe.
func TestTLS12MSKSuites(t *testing.T) {
	w := newTLSWorld(t)
	for _, suite := range []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384} {
		var kl keyLog
		var flight bytes.Buffer
		cc, sc := net.Pipe()
		srv := tls.Server(&recordingConn{Conn: sc, w: &flight}, &tls.Config{
			Certificates: []tls.Certificate{{Certificate: [][]byte{w.srvCert.Raw}, PrivateKey: w.srvKey}},
			MaxVersion:   tls.VersionTLS12, CipherSuites: []uint16{suite}, KeyLogWriter: &kl, Time: func() time.Time { return tlsTestNow }})
		cli := tls.Client(cc, &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12})
		done := make(chan error, 1)
		go func() { done <- cli.Handshake() }()
		if err := srv.Handshake(); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		st := srv.ConnectionState()
		if st.CipherSuite != suite {
			t.Fatalf("suite %s", tls.CipherSuiteName(st.CipherSuite))
		}
		msk, err := tlsMSK(&st, &kl, serverHelloRandom(flight.Bytes()))
		if err != nil {
			t.Fatal(err)
		}
		want, err := st.ExportKeyingMaterial("client EAP encryption", nil, 128)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(msk, want[:64]) {
			t.Errorf("%s: MSK %x, exporter %x", tls.CipherSuiteName(suite), msk, want[:64])
		}
		cc.Close()
		sc.Close()
	}
}

// recordingConn keeps what is written through it.
type recordingConn struct {
	net.Conn
	w *bytes.Buffer
}

func (c *recordingConn) Write(b []byte) (int, error) {
	c.w.Write(b)
	return c.Conn.Write(b)
}
