package interop

import (
	"crypto/x509"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/xdpsec/xdpsec/ike/iketest"
	"github.com/xdpsec/xdpsec/internal/testenv"
)

// TestFragmentation authenticates with a long certificate chain over
// links of MTU 1280 that drop IP fragments: the IKE_AUTH messages only
// pass as IKE fragments (RFC 7383), in both directions.
func TestFragmentation(t *testing.T) {
	root := iketest.NewCA(t, "xdpsec interop root", nil)
	chain := []*iketest.CA{root}
	for i := 1; i <= 4; i++ {
		chain = append(chain, iketest.NewCA(t, fmt.Sprintf("xdpsec interop intermediate %d", i), chain[len(chain)-1]))
	}
	issuer := chain[len(chain)-1]
	ckey, ccert := endEntity(t, issuer, "rsa", "moon.example.org", charonAddr)
	okey, ocert := endEntity(t, issuer, "rsa", "sun.example.org", oursAddr)
	var intermediates []*x509.Certificate // leaf's issuer first
	for i := len(chain) - 1; i > 0; i-- {
		intermediates = append(intermediates, chain[i].Cert)
	}
	forRoles(t, "large-chain", func(t *testing.T, role string) {
		e := newEnv(t, envOptions{mtu: 1280})
		for _, ns := range []*testenv.Netns{e.nsC, e.nsO} {
			// Before any defragmentation: every IP fragment is dropped.
			nft(t, ns, "add table ip nofrag; add chain ip nofrag in { type filter hook prerouting priority -450; }; "+
				"add rule ip nofrag in ip frag-off & 0x3fff != 0 counter drop")
		}
		cs, os := certPeers(idKinds[1])
		// charon sends the intermediates it holds as CAs; we send what
		// our certificate file holds after the certificate.
		cf := map[string][]byte{"x509/peer.pem": pemCert(ccert), "private/peer.pem": pemKey(t, ckey)}
		for i, ca := range chain {
			cf[fmt.Sprintf("x509ca/ca%d.pem", i)] = pemCert(ca.Cert)
		}
		of := map[string][]byte{"x509/peer.pem": pemCert(append([]*x509.Certificate{ocert}, intermediates...)...),
			"private/peer.pem": pemKey(t, okey), "x509ca/ca.pem": pemCert(root.Cert)}
		e.load(cs, os, cf, of)
		e.initiate(role)
		e.agree(1)
		waitLog(t, "charon", e.charon.log, 5*time.Second, "splitting IKE message", "reassembled fragmented IKE message")
		waitLog(t, "xdpsec", e.ours.log, 5*time.Second, "splitting IKE message", "reassembled fragmented IKE message")
	})
}

// TestNATT puts each side in turn behind a masquerading NAT that also
// remaps ports; the side behind the NAT initiates, the other side then
// rekeys the CHILD_SA and the IKE SA through the NAT's mapping.
func TestNATT(t *testing.T) {
	forRoles(t, "nat-t", func(t *testing.T, role string) {
		behind := "xdpsec"
		if role == charonInitiates {
			behind = "charon"
		}
		e := newEnv(t, envOptions{nat: behind})
		cs, os := pskPeers("aes128gcm16-prfsha256-x25519", "aes128gcm16")
		cs.local, os.local = e.charonLocal, e.oursLocal
		e.load(cs, os, nil, nil)
		e.initiate(role)
		e.agree(1)
		sa, o := e.charonSA(), e.oursSA()
		if behind == "xdpsec" {
			if !o.NATLocal || sa.get("nat-remote") != "yes" {
				t.Errorf("NAT not detected: ours %+v, charon %v", o, sa.values)
			}
			waitLog(t, "xdpsec", e.ours.log, 5*time.Second, "local host is behind NAT, sending keep alives")
		} else if !o.NATRemote || sa.get("nat-local") != "yes" {
			t.Errorf("NAT not detected: ours %+v, charon %v", o, sa.values)
		}
		// The NAT remapped the peer's port 4500: each side talks to the
		// port it saw, the side behind the NAT to 4500.
		if behind == "xdpsec" && (sa.get("remote-port") == "4500" || o.RemotePort != 4500) {
			t.Errorf("ports: charon sees us at %s, we see charon at %d", sa.get("remote-port"), o.RemotePort)
		}
		if behind == "charon" && (sa.get("remote-port") != "4500" || o.RemotePort == 4500) {
			t.Errorf("ports: charon sees us at %s, we see charon at %d", sa.get("remote-port"), o.RemotePort)
		}
		outside := other(role)
		old := e.agree(1)
		e.rekeyChild(outside)
		e.waitChildReplaced(old[0].children[0].spiIn)
		e.rekeyIKE(outside)
		waitFor(t, 15*time.Second, "the IKE SA rekeyed through the NAT", func() error {
			c, o := e.charonView(), e.oursView()
			if len(c) != 1 || len(o) != 1 || c[0].spiI == old[0].spiI || c[0].spiI != o[0].spiI {
				return fmt.Errorf("charon %v, xdpsec %v", c, o)
			}
			return nil
		})
		e.agree(1)
	})
}

// TestNarrowing has one side propose wider selectors than the other
// allows: the responder narrows them (RFC 7296 2.9), or the initiator's
// proposal fits inside the responder's wider configuration.
func TestNarrowing(t *testing.T) {
	for _, wider := range []string{"charon-wider", "xdpsec-wider"} {
		forRoles(t, wider, func(t *testing.T, role string) {
			e := newEnv(t, envOptions{})
			cs, os := pskPeers("aes128gcm16-prfsha256-x25519", "aes128gcm16")
			if wider == "charon-wider" {
				cs.remoteTS = "10.0.0.0/8"
			} else {
				os.remoteTS = "10.0.0.0/8"
			}
			e.load(cs, os, nil, nil)
			e.initiate(role)
			v := e.agree(1)
			ch := v[0].children[0]
			if ch.localTS != charonNet || ch.remoteTS != oursNet {
				t.Errorf("charon's CHILD_SA: %s === %s, want %s === %s", ch.localTS, ch.remoteTS, charonNet, oursNet)
			}
			waitLog(t, "xdpsec", e.ours.log, 5*time.Second, "and TS 10.2.0.0/16 === 10.1.0.0/16")
			if strings.Contains(e.ours.log(), "TS_UNACCEPT") {
				t.Error("TS_UNACCEPTABLE in our log")
			}
		})
	}
}
