package transform

import (
	"crypto/ed25519"
	"testing"
)

// Open must never panic nor accept what it did not seal, whatever the body.
func FuzzOpen(f *testing.F) {
	f.Add([]byte("ad"), make([]byte, 64))
	f.Add([]byte{}, []byte{0})
	ps := make([]*SKProtector, len(protectorCases))
	for i, c := range protectorCases {
		ps[i] = newTestProtector(f, c)
	}
	f.Fuzz(func(t *testing.T, ad, body []byte) {
		for i, p := range ps {
			if _, err := p.Open(ad, body); err == nil {
				t.Errorf("%v: forged body accepted", protectorCases[i])
			}
		}
	})
}

func FuzzVerifyAuth(f *testing.F) {
	_, key, _ := ed25519.GenerateKey(nil)
	good, _ := SignAuth(nil, key, SignatureScheme{SigEd25519, HashIdentity}, []byte("x"))
	f.Add(good)
	pss, _ := SignatureScheme{SigRSAPSS, HashSHA2_512}.AlgorithmIdentifier()
	f.Add(append([]byte{byte(len(pss))}, pss...))
	f.Fuzz(func(t *testing.T, authData []byte) {
		VerifyAuth(key.Public(), authData, []byte("y"), nil)
	})
}

func FuzzParseProposal(f *testing.F) {
	for _, s := range []string{"aes128gcm16-prfsha256-x25519", "aes256-sha256-esn-noesn", "default", "aes128--x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, proto := range []Protocol{ProtoIKE, ProtoESP} {
			ps, err := ParseProposals(proto, s)
			if err != nil {
				continue
			}
			for _, p := range ps {
				again, err := ParseProposal(proto, p.Keywords())
				if err != nil || again.String() != p.String() {
					t.Errorf("%q: %s does not parse back (%v)", s, p.Keywords(), err)
				}
			}
		}
	})
}
