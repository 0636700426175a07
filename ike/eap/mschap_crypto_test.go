package eap

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"testing"

	"golang.org/x/crypto/md4"
)

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

// The example of RFC 2759 section 9.2.
var (
	rfc2759UserName      = "User"
	rfc2759Password      = []byte("clientPass")
	rfc2759AuthChallenge = [16]byte{0x5B, 0x5D, 0x7C, 0x7D, 0x7B, 0x3F, 0x2F, 0x3E, 0x3C, 0x2C, 0x60, 0x21, 0x32, 0x26, 0x26, 0x28}
	rfc2759PeerChallenge = [16]byte{0x21, 0x40, 0x23, 0x24, 0x25, 0x5E, 0x26, 0x2A, 0x28, 0x29, 0x5F, 0x2B, 0x3A, 0x33, 0x7C, 0x7E}
)

func TestRFC2759Vectors(t *testing.T) {
	c := challengeHash(&rfc2759PeerChallenge, &rfc2759AuthChallenge, rfc2759UserName)
	if got, want := hex.EncodeToString(c[:]), "d02e4386bce91226"; got != want {
		t.Errorf("ChallengeHash = %s, want %s", got, want)
	}
	var hash [16]byte
	ntPasswordHash(rfc2759Password, &hash)
	if got, want := hex.EncodeToString(hash[:]), "44ebba8d5312b8d611474411f56989ae"; got != want {
		t.Errorf("NtPasswordHash = %s, want %s", got, want)
	}
	var nt [24]byte
	generateNTResponse(&rfc2759AuthChallenge, &rfc2759PeerChallenge, rfc2759UserName, &hash, &nt)
	if got, want := hex.EncodeToString(nt[:]), "82309ecd8d708b5ea08faa3981cd83544233114a3d85d6df"; got != want {
		t.Errorf("NT-Response = %s, want %s", got, want)
	}
	var hh [16]byte
	hashNtPasswordHash(&hash, &hh)
	if got, want := hex.EncodeToString(hh[:]), "41c00c584bd2d91c4017a2a12fa59f3f"; got != want {
		t.Errorf("PasswordHashHash = %s, want %s", got, want)
	}
	var ar [sha1.Size]byte
	generateAuthenticatorResponse(&hash, &nt, &rfc2759PeerChallenge, &rfc2759AuthChallenge, rfc2759UserName, &ar)
	if got, want := fmt.Sprintf("S=%X", ar[:]), "S=407A5589115FD0D6209F510FE9C04566932CDA56"; got != want {
		t.Errorf("AuthenticatorResponse = %s, want %s", got, want)
	}
}

// getNewKeyFromSHA is GetNewKeyFromSHA of RFC 3079 section 3.3 for
// 128-bit keys. The MSK does not use it; it is here to check the start
// key against the session key RFC 3079 prints.
func getNewKeyFromSHA(startKey, sessionKey []byte) []byte {
	var pad1, pad2 [40]byte
	for i := range pad2 {
		pad2[i] = 0xf2
	}
	h := sha1.New()
	h.Write(startKey)
	h.Write(pad1[:])
	h.Write(sessionKey)
	h.Write(pad2[:])
	return h.Sum(nil)[:16]
}

// RFC 3079 section 3.5.3 (128-bit keys), from the RFC 2759 example.
func TestRFC3079Vectors(t *testing.T) {
	var hash, hh [16]byte
	ntPasswordHash(rfc2759Password, &hash)
	hashNtPasswordHash(&hash, &hh)
	var nt [24]byte
	generateNTResponse(&rfc2759AuthChallenge, &rfc2759PeerChallenge, rfc2759UserName, &hash, &nt)
	var master [16]byte
	getMasterKey(&hh, &nt, &master)
	if got, want := hex.EncodeToString(master[:]), "fdece3717a8c838cb388e527ae3cdd31"; got != want {
		t.Fatalf("MasterKey = %s, want %s", got, want)
	}
	// RFC 3079 prints the server's send key: IsSend and IsServer true
	// select Magic3, the string that names the client's receive key.
	var send [16]byte
	getAsymmetricStartKey(&master, keyMagicClientReceive, &send)
	if got, want := hex.EncodeToString(send[:]), "8b7cdc149b993a1ba118cb153f56dccb"; got != want {
		t.Fatalf("SendStartKey128 = %s, want %s", got, want)
	}
	if got, want := hex.EncodeToString(getNewKeyFromSHA(send[:], send[:])), "405cb2247a7956e6e211007ae27b22d4"; got != want {
		t.Fatalf("SendSessionKey128 = %s, want %s", got, want)
	}
}

// The MSK of the RFC 2759 example in strongSwan's layout: the start key
// with the client-send magic, the one with the client-receive magic (the
// RFC 3079 vector above), 32 zero octets.
func TestMSCHAPv2MSKLayout(t *testing.T) {
	var hash [16]byte
	ntPasswordHash(rfc2759Password, &hash)
	var nt [24]byte
	generateNTResponse(&rfc2759AuthChallenge, &rfc2759PeerChallenge, rfc2759UserName, &hash, &nt)
	msk := mschapv2MSK(&hash, &nt)
	want := mustHex(t, "d5f0e9521e3ea9589645e86051c82226"+"8b7cdc149b993a1ba118cb153f56dccb"+
		"0000000000000000000000000000000000000000000000000000000000000000")
	if !bytes.Equal(msk, want) {
		t.Fatalf("MSK = %x\nwant  %x", msk, want)
	}
	if len(msk) != MSCHAPv2MSKLen {
		t.Fatalf("MSK of %d octets", len(msk))
	}
}

func TestNtPasswordHashUnicode(t *testing.T) {
	// UTF-16LE of "é" is E9 00, of "𝄞" (outside the BMP) the surrogate
	// pair 34 D8 1E DD.
	for _, c := range []struct {
		password string
		utf16le  []byte
	}{
		{"é", []byte{0xe9, 0x00}},
		{"𝄞", []byte{0x34, 0xd8, 0x1e, 0xdd}},
		{"\xff", []byte{0xff, 0x00}}, // invalid UTF-8: the octet as a code point
	} {
		var got, want [16]byte
		ntPasswordHash([]byte(c.password), &got)
		h := md4.New()
		h.Write(c.utf16le)
		h.Sum(want[:0])
		if got != want {
			t.Errorf("NtPasswordHash(%q) = %x, want %x", c.password, got, want)
		}
	}
}

func TestDESKeyBits(t *testing.T) {
	// The 56 bits 0x01 0x23 0x45 0x67 0x89 0xAB 0xCD spread 7 to an octet.
	var k [8]byte
	desKey([]byte{0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd}, &k)
	if got, want := hex.EncodeToString(k[:]), "0090d0ac784cae9a"; got != want {
		t.Fatalf("desKey = %s, want %s", got, want)
	}
}
