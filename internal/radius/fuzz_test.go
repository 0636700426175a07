package radius

import (
	"crypto/hmac"
	"crypto/md5"
	"encoding/binary"
	"net"
	"testing"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/vendors/microsoft"
)

// FuzzReply feeds hostile datagrams to the reply path: as they come (the
// checks must drop them without panicking) and, with sign set, re-signed
// with the shared secret, so that the attribute parsing behind the checks
// (EAP-Message joining, MPPE key decryption, Framed-IP-Address, Class,
// State) sees them too.
func FuzzReply(f *testing.F) {
	c, err := New(Config{Servers: []Server{{Name: "fuzz", Address: "127.0.0.1", Secret: NewSecret(secret)}}, FramedIP: true})
	if err != nil {
		f.Fatal(err)
	}
	srv := &c.servers[0]
	s, _ := c.NewSession(testPeer)
	req, err := s.accessRequest(srv, identity)
	if err != nil {
		f.Fatal(err)
	}
	req.Identifier = 42
	reqWire, err := encodeRequest(req)
	if err != nil {
		f.Fatal(err)
	}

	accept := req.Response(radius.CodeAccessAccept)
	accept.Attributes = eapAttrs(eapSuccess)
	microsoft.MSMPPERecvKey_Add(accept, recvKey)
	microsoft.MSMPPESendKey_Add(accept, sendKey)
	rfc2865.FramedIPAddress_Set(accept, net.IPv4(10, 3, 200, 9))
	rfc2865.Class_Add(accept, []byte("c"))
	rfc2865.State_Set(accept, []byte("st"))
	accept.Add(80, make([]byte, 16))
	seed, _ := accept.MarshalBinary()
	f.Add(true, append([]byte(nil), seed...))
	f.Add(false, append([]byte(nil), seed...))
	f.Add(true, append([]byte{3}, seed[1:]...))
	f.Add(true, seed[:30])
	chal := req.Response(radius.CodeAccessChallenge)
	chal.Attributes = eapAttrs(make([]byte, 700))
	chal.Add(80, make([]byte, 16))
	seed, _ = chal.MarshalBinary()
	f.Add(true, seed)
	f.Add(false, []byte{5, 42, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})

	f.Fuzz(func(t *testing.T, sign bool, b []byte) {
		if len(b) > 2*maxPacketLen {
			return
		}
		b = append([]byte(nil), b...)
		if sign && len(b) >= headerLen {
			resign(b, reqWire, []byte(secret))
		}
		reply, why := verifyReply(reqWire, b, []byte(secret))
		if (reply == nil) == (why == DropNone) {
			t.Fatalf("reply %v with drop reason %v", reply, why)
		}
		if reply == nil {
			return
		}
		r, err := s.interpret(&answer{reply: reply, request: req, server: srv})
		if err != nil {
			return
		}
		if testing.Verbose() {
			t.Logf("%v: EAP %d bytes, MSK %d bytes (%v), Framed-IP %v", r.Outcome, len(r.EAP), len(r.MSK), r.MSKError, r.FramedIP)
		}
		if r.Outcome == Accept && r.MSK != nil && len(r.MSK) < mskMinLen {
			t.Fatalf("MSK of %d bytes", len(r.MSK))
		}
	})
}

// resign makes a datagram pass the checks a hostile server with the right
// secret could pass: our identifier, a Length that fits, a Message-
// Authenticator and a Response Authenticator computed over its content.
func resign(b, req, secret []byte) {
	b[1] = req[1]
	n := min(len(b), maxPacketLen)
	binary.BigEndian.PutUint16(b[2:4], uint16(n))
	b = b[:n]
	copy(b[authenticatorOff:headerLen], req[authenticatorOff:headerLen])
	if off, count := findMessageAuthenticator(b); count == 1 && off > 0 {
		clear(b[off : off+messageAuthLen])
		m := hmac.New(md5.New, secret)
		m.Write(b)
		m.Sum(b[off:off])
	}
	h := md5.New()
	h.Write(b)
	h.Write(secret)
	h.Sum(b[authenticatorOff:authenticatorOff])
}
