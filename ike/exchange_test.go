package ike_test

import (
	"github.com/xdpsec/xdpsec/ike/transform"
	"testing"

	"github.com/xdpsec/xdpsec/ike"
)

func TestPSKEstablish(t *testing.T) {
	for _, prop := range []string{
		"aes128gcm16-prfsha256-x25519",
		"aes256-sha256-modp2048",
		"chacha20poly1305-prfsha256-x25519",
		"aes256gcm16-prfsha384-ecp384",
	} {
		t.Run(prop, func(t *testing.T) {
			set := func(c *ike.Connection) {
				c.Proposals = transform.MustParseProposals(transform.ProtoIKE, prop)
				c.Children[0].ESPProposals = transform.MustParseProposals(transform.ProtoESP, "aes256gcm16,aes128-sha256")
			}
			tb := newTestbed(t, bedOptions{connA: set, connB: set})
			// IKE_SA_INIT: HDR, SAi1, KEi, Ni -->  <-- HDR, SAr1, KEr, Nr
			// IKE_AUTH:    HDR, SK {IDi, AUTH, SAi2, TSi, TSr} -->
			//              <-- HDR, SK {IDr, AUTH, SAr2, TSi, TSr}
			tb.establish()
			a, b := tb.established(tb.a), tb.established(tb.b)
			if a.SPIi != b.SPIi || a.SPIr != b.SPIr || !a.Initiator || b.Initiator {
				t.Fatalf("SPIs/roles disagree: %+v %+v", a, b)
			}
			if len(a.Children) != 1 || len(b.Children) != 1 {
				t.Fatalf("children: %d %d", len(a.Children), len(b.Children))
			}
			if a.Children[0].SPIIn != b.Children[0].SPIOut || a.Children[0].SPIOut != b.Children[0].SPIIn {
				t.Fatalf("CHILD_SA SPIs disagree")
			}
			tb.checkKeys()
			for _, want := range []string{
				"IKE_SA gw[1] established between 192.0.2.1[moon.example.org]...192.0.2.2[sun.example.org]",
				"CHILD_SA net{1} established with SPIs",
				"TS 10.1.0.0/16 === 10.2.0.0/16",
				"authentication of 'sun.example.org' with pre-shared key successful",
				"generating IKE_SA_INIT request 0 [ SA KE No N(NATD_S_IP) N(NATD_D_IP) N(FRAG_SUP) N(HASH_ALG) N(REDIR_SUP) ]",
				"parsed IKE_AUTH response 1 [ IDr AUTH SA TSi TSr N(MSG_ID_SYN_SUP) ]",
			} {
				if !tb.a.log.contains(want) {
					t.Errorf("a did not log %q", want)
				}
			}
			if !tb.b.log.contains("selected proposal: IKE:") || !tb.b.log.contains("authentication of 'moon.example.org' with pre-shared key successful") {
				t.Errorf("b logs incomplete")
			}
		})
	}
}
