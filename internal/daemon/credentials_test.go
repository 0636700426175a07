package daemon

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"github.com/xdpsec/xdpsec/ike/transform"
	"github.com/xdpsec/xdpsec/internal/testenv"
	"math/big"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/xdpsec/xdpsec/ike"
	"github.com/xdpsec/xdpsec/internal/dataplane"
)

// writeConfig writes files (relative path → content) into a fresh
// directory, 0600 as swanctl wants for secrets, and returns the
// swanctl.conf path.
func writeConfig(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "swanctl.conf")
}

// netToNetPSK is strongSwan's swanctl/net2net-psk example, with what the
// daemon adds (hw_offload, if_id).
const netToNetPSK = `
connections {
   gw-gw {
      local_addrs  = 192.168.0.1
      remote_addrs = 192.168.0.2

      local {
         auth = psk
         id = moon.strongswan.org
      }
      remote {
         auth = psk
         id = sun.strongswan.org
      }
      children {
         net-net {
            local_ts  = 10.1.0.0/16
            remote_ts = 10.2.0.0/16,10.3.0.0/24[tcp/443]
            updown = /usr/local/libexec/ipsec/_updown iptables
            rekey_time = 5400
            rekey_bytes = 500000000
            life_packets = 2000000
            esp_proposals = aes128gcm128-x25519
            start_action = start
            hw_offload = auto
            if_id_in = 7
            if_id_out = 7
            dpd_action = restart
         }
      }
      version = 2
      mobike = no
      reauth_time = 10800
      proposals = aes128-sha256-x25519
      dpd_delay = 30s
   }
}

secrets {
   ike-1 {
      id-1 = moon.strongswan.org
      id-2 = sun.strongswan.org
      secret = 0sv+NkxY9LLZvwj4qCC2o/gGrWDF2d21jL
   }
}
`

func TestMapConfigNetToNetPSK(t *testing.T) {
	l, err := LoadConfig(writeConfig(t, map[string]string{"swanctl.conf": netToNetPSK}))
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Connections) != 1 {
		t.Fatalf("%d connections", len(l.Connections))
	}
	c := l.Connections[0]
	if c.Name != "gw-gw" || !slices.Equal(c.LocalAddrs, []netip.Addr{netipAddr("192.168.0.1")}) || !slices.Equal(c.RemoteAddrs, []netip.Addr{netipAddr("192.168.0.2")}) {
		t.Errorf("connection %+v", c)
	}
	if !slices.Equal(keywords(c.Proposals), []string{"aes128-sha256-x25519"}) {
		t.Errorf("proposals %q", c.Proposals)
	}
	// reauth_time alone: the engine rekeys at that interval.
	if c.DPDDelay != 30*time.Second || c.RekeyTime != 0 || c.ReauthTime != 3*time.Hour || c.LocalPort != 500 {
		t.Errorf("dpd %v rekey %v reauth %v port %d", c.DPDDelay, c.RekeyTime, c.ReauthTime, c.LocalPort)
	}
	if len(c.Local) != 1 || c.Local[0].Auth != ike.AuthPSK || c.Local[0].ID.String() != "moon.strongswan.org" || c.Remote[0].ID.String() != "sun.strongswan.org" {
		t.Errorf("auth %+v %+v", c.Local, c.Remote)
	}
	ch := c.Children[0]
	if ch.Name != "net-net" || !slices.Equal(ch.LocalTS, ike.MustParseTSSpecs("10.1.0.0/16")) ||
		!slices.Equal(ch.RemoteTS, ike.MustParseTSSpecs("10.2.0.0/16", "10.3.0.0/24[6/443]")) {
		t.Errorf("child %+v", ch)
	}
	if ch.RekeyTime != 5400*time.Second || ch.StartAction != ike.ActionStart || ch.DPDAction != ike.ActionStart || ch.IfIDIn != 7 || ch.IfIDOut != 7 {
		t.Errorf("child %+v", ch)
	}
	if ch.RekeyBytes != 500000000 || ch.LifePackets != 2000000 {
		t.Errorf("volume limits: rekey_bytes %d life_packets %d", ch.RekeyBytes, ch.LifePackets)
	}
	if !slices.Equal(keywords(ch.ESPProposals), []string{"aes128gcm16-x25519"}) {
		t.Errorf("esp proposals %q", ch.ESPProposals)
	}
	if len(l.Credentials.Shared) != 1 || len(l.Credentials.Shared[0].Secret) != 24 ||
		!slices.Equal(l.Credentials.Shared[0].IDs, []string{"moon.strongswan.org", "sun.strongswan.org"}) {
		t.Errorf("secrets %+v", l.Credentials.Shared)
	}
	m := ch
	if m.StartAction != ike.ActionStart || m.HWOffload != ike.HWOffloadAuto {
		t.Errorf("meta %+v", m)
	}
	// The engine takes what the mapping made.
	e := newCheckEngine(t, l)
	defer e.Close()

}

// keywords writes proposals as swanctl.conf does.
func keywords(list []transform.Proposal) []string {
	out := make([]string, len(list))
	for i, p := range list {
		out[i] = p.Keywords()
	}
	return out
}

func newCheckEngine(t *testing.T, l *Loaded) *ike.Engine {
	t.Helper()
	e, err := ike.New(ike.Config{Logger: testenv.Logger(t), Sender: discardSender{}, Dataplane: dataplane.NewDryRunDataplane(testenv.Logger(t), spiRangeZero), Credentials: l.Credentials})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range l.Connections {
		if err := e.AddConnection(c); err != nil {
			t.Fatalf("engine refuses %s: %v", c.Name, err)
		}
	}
	return e
}

func TestMapConfigNetToNetCert(t *testing.T) {
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "strongSwan Root CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, _ := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "moon.strongswan.org"},
		DNSNames: []string{"moon.strongswan.org"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
	pemOf := func(typ string, b []byte) string { return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b})) }
	path := writeConfig(t, map[string]string{
		"swanctl.conf": `
connections {
   host-host {
      remote_addrs = 192.168.0.2
      local {
         auth = pubkey
         certs = moonCert.pem
         id = moon.strongswan.org
      }
      remote {
         auth = pubkey
         id = sun.strongswan.org
      }
      children {
         net-net {
            local_ts = 10.1.0.0/16
            remote_ts = 10.2.0.0/16
            esp_proposals = aes256-sha256
            mode = tunnel
         }
         host {
            esp_proposals = aes128gcm16
            mode = transport
         }
      }
   }
}
`,
		"x509/moonCert.pem":         pemOf("CERTIFICATE", der),
		"x509ca/strongswanCert.pem": pemOf("CERTIFICATE", caDER),
		"private/moonKey.pem":       pemOf("PRIVATE KEY", keyDER),
	})
	l, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	c := l.Connections[0]
	if c.Local[0].Auth != ike.AuthPubkey || len(c.Local[0].Certs) != 1 || c.Local[0].PrivateKey == nil {
		t.Fatalf("local auth %+v", c.Local[0])
	}
	if len(l.Credentials.CAs) != 1 || !l.Credentials.CAs[0].Equal(ca) {
		t.Errorf("CAs %v", l.Credentials.CAs)
	}
	if len(c.LocalAddrs) != 0 || len(c.Children) != 2 || c.Children[1].Mode != ike.ModeTransport ||
		!slices.Equal(c.Children[1].LocalTS, []ike.TSSpec{ike.DynamicTS()}) {
		t.Errorf("connection %+v", c)
	}
	e := newCheckEngine(t, l)
	e.Close()

	// A trust anchor or certificate another user may replace is refused.
	if os.Geteuid() == 0 {
		for _, f := range []string{"x509ca/strongswanCert.pem", "x509/moonCert.pem"} {
			file := filepath.Join(filepath.Dir(path), f)
			if err := os.Chown(file, 65534, 65534); err != nil {
				t.Fatal(err)
			}
			_, err := LoadConfig(path)
			if err == nil || !strings.Contains(err.Error(), "belongs to uid 65534") || !strings.Contains(err.Error(), "chown root "+file) {
				t.Errorf("%s owned by nobody: %v", f, err)
			}
			if err := os.Chown(file, 0, 0); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestMapConfigUnsupported(t *testing.T) {
	for _, tc := range []struct{ name, child, want string }{
		{"pass", "mode = pass", "children.c.mode"},
		{"unique", "if_id_in = %unique", "if_id_in"},
		{"replay0", "replay_window = 0", "replay_window"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadConfig(writeConfig(t, map[string]string{"swanctl.conf": `
connections { x { remote_addrs = 192.0.2.2
  local { auth = psk }
  remote { auth = psk }
  children { c { ` + tc.child + ` } } } }
secrets { ike { secret = abc } }`}))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one naming %s", err, tc.want)
			}
		})
	}
}

// TestMapConfigIKEv1 maps a version = 1 connection with Aggressive Mode
// onto the engine, which speaks IKEv1 beside IKEv2.
func TestMapConfigIKEv1(t *testing.T) {
	conf := strings.Replace(netToNetPSK, "version = 2", "version = 1\n      aggressive = yes", 1)
	l, err := LoadConfig(writeConfig(t, map[string]string{"swanctl.conf": conf}))
	if err != nil {
		t.Fatal(err)
	}
	if c := l.Connections[0]; c.Version != 1 || !c.Aggressive {
		t.Errorf("version %d aggressive %v, want 1 and true", c.Version, c.Aggressive)
	}
}
