package eap

import (
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
)

func TestSecretNeverPrints(t *testing.T) {
	s := PasswordSecret([]byte(testPassword))
	hexHash := hex.EncodeToString(s.ntHash[:])
	for _, format := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d"} {
		for _, v := range []any{s, &s, struct{ S Secret }{s}} {
			out := fmt.Sprintf(format, v)
			if strings.Contains(out, testPassword) || strings.Contains(strings.ToLower(out), hexHash) {
				t.Errorf("%s of %T shows the secret: %s", format, v, out)
			}
		}
	}
}

func TestSecretWipe(t *testing.T) {
	s := PasswordSecret([]byte(testPassword))
	pw := s.password
	s.Wipe()
	if s.Valid() || s.ntHash != [16]byte{} || strings.Trim(string(pw), "\x00") != "" {
		t.Fatal("Wipe left the secret")
	}
}

// Both runners wipe the secrets they were given or looked up once the
// conversation is over.
func TestConversationWipesSecrets(t *testing.T) {
	var looked []Secret
	creds := CredentialsFunc(func(id string) (Secret, error) {
		s, err := testUsers.Secret(id)
		looked = append(looked, s) // shares the password's octets
		return s, err
	})
	s := newTestServer(t, ServerConfig{Methods: []Type{TypeMSCHAPv2}, Credentials: creds})
	p := newTestPeer(t, PeerConfig{Identity: testUser, Secret: PasswordSecret([]byte(testPassword)), Methods: []Type{TypeMSCHAPv2}})
	peerPassword := p.cfg.Secret.password
	converse(t, s, p)
	if p.Result().Err != nil || s.Result().Err != nil {
		t.Fatal(p.Result().Err, s.Result().Err)
	}
	if strings.Trim(string(peerPassword), "\x00") != "" || p.cfg.Secret.Valid() {
		t.Error("the peer kept its password")
	}
	for _, l := range looked {
		if strings.Trim(string(l.password), "\x00") != "" {
			t.Error("the server kept a looked-up password")
		}
	}
	if m, ok := p.method.(*mschapv2Peer); !ok || m.msk != nil || m.authResp != [20]byte{} {
		t.Error("the peer method kept its keys")
	}
}

func TestErrorLogLine(t *testing.T) {
	e := &Error{Method: TypeMSCHAPv2, Reason: ReasonWrongPassword, Identity: "carol"}
	if got, want := e.LogLine("carol"), "EAP method EAP_MSCHAPV2 failed for peer carol: wrong password"; got != want {
		t.Errorf("LogLine = %q, want %q", got, want)
	}
	e = &Error{Method: TypeMSCHAPv2, Reason: ReasonUnknownUser, Identity: "dave\x1b"}
	if got, want := e.LogLine("192.0.2.1"), `EAP method EAP_MSCHAPV2 failed for peer 192.0.2.1: unknown user (EAP identity "dave\x1b")`; got != want {
		t.Errorf("LogLine = %q, want %q", got, want)
	}
}
