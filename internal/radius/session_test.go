package radius

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2869"
	"layeh.com/radius/vendors/microsoft"

	"github.com/xdpsec/xdpsec/internal/radius/radiustest"
)

const secret = "test-shared-secret"

var testPeer = Peer{
	UserName:  "carol@example.org",
	Calling:   netip.MustParseAddrPort("198.51.100.7:4500"),
	Called:    netip.MustParseAddrPort("192.0.2.1:4500"),
	NASPort:   7,
	NASPortID: "rw",
}

var (
	identity   = eapPacket(2, 1, append([]byte{1}, "carol@example.org"...)) // EAP-Response/Identity
	challenge  = eapPacket(1, 2, append([]byte{4, 16}, bytes.Repeat([]byte{0xc5}, 16)...))
	md5Answer  = eapPacket(2, 2, append([]byte{4, 16}, bytes.Repeat([]byte{0x5c}, 16)...))
	eapSuccess = eapPacket(3, 2, nil)
	eapFailure = eapPacket(4, 2, nil)
	recvKey    = bytes.Repeat([]byte{0x11}, 32)
	sendKey    = bytes.Repeat([]byte{0x22}, 32)
)

// md5Server answers like an EAP-MD5 server: a challenge with State, then
// an Access-Accept with keys, a Framed-IP-Address and a Class, or an
// Access-Reject when reject is set.
func md5Server(t *testing.T, reject bool) radiustest.Handler {
	return func(req *radiustest.Request) *radiustest.Reply {
		eap, _ := rfc2869.EAPMessage_Lookup(req.Packet)
		switch {
		case bytes.Equal(eap, identity):
			attrs := eapAttrs(challenge)
			attrs.Add(rfc2865.State_Type, radius.Attribute("state-1"))
			return &radiustest.Reply{Code: radius.CodeAccessChallenge, Attributes: attrs}
		case bytes.Equal(eap, md5Answer):
			if string(rfc2865.State_Get(req.Packet)) != "state-1" {
				t.Errorf("State not echoed: %q", rfc2865.State_Get(req.Packet))
			}
			if reject {
				return &radiustest.Reply{Code: radius.CodeAccessReject, Attributes: eapAttrs(eapFailure)}
			}
			p := req.Response(radius.CodeAccessAccept)
			p.Attributes = eapAttrs(eapSuccess)
			microsoft.MSMPPERecvKey_Add(p, recvKey)
			microsoft.MSMPPESendKey_Add(p, sendKey)
			rfc2865.FramedIPAddress_Set(p, net.IPv4(10, 3, 200, 9))
			rfc2865.Class_Add(p, []byte("group=staff"))
			return &radiustest.Reply{Code: radius.CodeAccessAccept, Attributes: p.Attributes}
		}
		t.Errorf("unexpected EAP %x", eap)
		return nil
	}
}

func TestSessionAccept(t *testing.T) {
	srv := radiustest.NewServer(t, secret, md5Server(t, false))
	c, logs := testClient(t, nil, fakeServer("fake", srv, secret))
	s, err := c.NewSession(testPeer)
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.Exchange(ctxT(t), identity)
	if err != nil {
		t.Fatal(err)
	}
	if r.Outcome != Challenge || !bytes.Equal(r.EAP, challenge) || r.Server != "fake" {
		t.Fatalf("first reply %+v", r)
	}
	r, err = s.Exchange(ctxT(t), md5Answer)
	if err != nil {
		t.Fatal(err)
	}
	if r.Outcome != Accept || !bytes.Equal(r.EAP, eapSuccess) {
		t.Fatalf("second reply %+v", r)
	}
	wantMSK := append(append([]byte(nil), recvKey...), sendKey...)
	if !bytes.Equal(r.MSK, wantMSK) || r.MSKError != nil {
		t.Errorf("MSK %x (%v), want %x", r.MSK, r.MSKError, wantMSK)
	}
	if r.FramedIP != netip.MustParseAddr("10.3.200.9") {
		t.Errorf("Framed-IP-Address %v", r.FramedIP)
	}
	if len(r.Class) != 1 || string(r.Class[0]) != "group=staff" {
		t.Errorf("Class %q", r.Class)
	}

	reqs := srv.Requests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests", len(reqs))
	}
	for i, req := range reqs {
		if !req.Authentic {
			t.Errorf("request %d: Message-Authenticator does not verify", i)
		}
		for name, got := range map[string]string{
			"User-Name":          rfc2865.UserName_GetString(req.Packet),
			"NAS-Identifier":     rfc2865.NASIdentifier_GetString(req.Packet),
			"Calling-Station-Id": rfc2865.CallingStationID_GetString(req.Packet),
			"Called-Station-Id":  rfc2865.CalledStationID_GetString(req.Packet),
			"NAS-Port-Id":        rfc2869.NASPortID_GetString(req.Packet),
			"NAS-Port-Type":      rfc2865.NASPortType_Get(req.Packet).String(),
		} {
			want := map[string]string{
				"User-Name":          "carol@example.org",
				"NAS-Identifier":     "gw-test",
				"Calling-Station-Id": "198.51.100.7[4500]",
				"Called-Station-Id":  "192.0.2.1[4500]",
				"NAS-Port-Id":        "rw",
				"NAS-Port-Type":      "Virtual",
			}[name]
			if got != want {
				t.Errorf("request %d: %s %q, want %q", i, name, got, want)
			}
		}
		if rfc2865.NASPort_Get(req.Packet) != 7 {
			t.Errorf("request %d: NAS-Port %d", i, rfc2865.NASPort_Get(req.Packet))
		}
	}
	if _, ok := reqs[0].Lookup(rfc2865.State_Type); ok {
		t.Error("first request carries a State")
	}
	st := c.Stats()
	if st.Requests != 2 || st.Challenges != 1 || st.Accepts != 1 || st.DroppedTotal() != 0 {
		t.Errorf("stats %+v", st)
	}
	mustContain(t, logs.String(), "sending RADIUS Access-Request to server 'fake'",
		"received RADIUS Access-Challenge from server 'fake'",
		"RADIUS authentication of 'carol@example.org' successful")
}

func TestSessionReject(t *testing.T) {
	srv := radiustest.NewServer(t, secret, md5Server(t, true))
	c, logs := testClient(t, nil, fakeServer("fake", srv, secret))
	s, _ := c.NewSession(testPeer)
	if _, err := s.Exchange(ctxT(t), identity); err != nil {
		t.Fatal(err)
	}
	r, err := s.Exchange(ctxT(t), md5Answer)
	if err != nil {
		t.Fatal(err)
	}
	if r.Outcome != Reject || !bytes.Equal(r.EAP, eapFailure) || r.MSK != nil {
		t.Fatalf("reply %+v", r)
	}
	mustContain(t, logs.String(), "RADIUS authentication of 'carol@example.org' failed")
}

// An Access-Accept without MPPE keys (EAP-MD5 exports none) has no MSK,
// and says so; one key without the other is an error as in charon.
func TestSessionAcceptWithoutKeys(t *testing.T) {
	srv := radiustest.NewServer(t, secret, func(req *radiustest.Request) *radiustest.Reply {
		p := req.Response(radius.CodeAccessAccept)
		p.Attributes = eapAttrs(eapSuccess)
		if rfc2865.UserName_GetString(req.Packet) == "half" {
			microsoft.MSMPPERecvKey_Add(p, recvKey)
		}
		rfc2865.FramedIPAddress_Set(p, net.IPv4(255, 255, 255, 254))
		return &radiustest.Reply{Code: radius.CodeAccessAccept, Attributes: p.Attributes}
	})
	c, _ := testClient(t, nil, fakeServer("fake", srv, secret))
	for _, user := range []string{"none", "half"} {
		s, _ := c.NewSession(Peer{UserName: user})
		r, err := s.Exchange(ctxT(t), identity)
		if err != nil {
			t.Fatal(err)
		}
		if r.Outcome != Accept || r.MSK != nil || r.MSKError == nil {
			t.Errorf("%s: reply %+v", user, r)
		}
		if r.FramedIP.IsValid() {
			t.Errorf("%s: 255.255.255.254 taken as an address: %v", user, r.FramedIP)
		}
		t.Logf("%s: %v", user, r.MSKError)
	}
}

// Framed-IP-Address is ignored unless the configuration uses it.
func TestFramedIPOff(t *testing.T) {
	srv := radiustest.NewServer(t, secret, md5Server(t, false))
	c, _ := testClient(t, func(c *Config) { c.FramedIP = false }, fakeServer("fake", srv, secret))
	s, _ := c.NewSession(testPeer)
	s.Exchange(ctxT(t), identity)
	r, err := s.Exchange(ctxT(t), md5Answer)
	if err != nil || r.Outcome != Accept {
		t.Fatal(r, err)
	}
	if r.FramedIP.IsValid() {
		t.Errorf("Framed-IP-Address %v used with FramedIP off", r.FramedIP)
	}
}

// EAP packets longer than 253 bytes travel in several EAP-Message
// attributes, both ways (RFC 3579 §3.1).
func TestEAPMessageSplitting(t *testing.T) {
	big := eapPacket(2, 3, append([]byte{13}, bytes.Repeat([]byte("tls-record"), 60)...)) // 605 bytes
	bigger := eapPacket(1, 4, append([]byte{13}, bytes.Repeat([]byte("server-hello"), 100)...))
	srv := radiustest.NewServer(t, secret, func(req *radiustest.Request) *radiustest.Reply {
		return &radiustest.Reply{Code: radius.CodeAccessChallenge, Attributes: eapAttrs(bigger)}
	})
	c, _ := testClient(t, nil, fakeServer("fake", srv, secret))
	s, _ := c.NewSession(testPeer)
	r, err := s.Exchange(ctxT(t), big)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(r.EAP, bigger) {
		t.Errorf("joined reply EAP of %d bytes, want %d", len(r.EAP), len(bigger))
	}
	req := srv.Requests()[0]
	var sizes []int
	var joined []byte
	for _, a := range req.Attributes {
		if a.Type == rfc2869.EAPMessage_Type {
			sizes = append(sizes, len(a.Attribute))
			joined = append(joined, a.Attribute...)
		}
	}
	if want := []int{253, 253, 99}; len(sizes) != 3 || sizes[0] != want[0] || sizes[1] != want[1] || sizes[2] != want[2] {
		t.Errorf("EAP-Message sizes %v, want %v", sizes, want)
	}
	if !bytes.Equal(joined, big) || !req.Authentic {
		t.Error("split EAP-Message does not join to the packet, or the request does not verify")
	}
	if _, err := s.Exchange(ctxT(t), make([]byte, 5000)); err == nil {
		t.Error("EAP packet of 5000 bytes accepted")
	}
}

// A server with another shared secret: every reply fails the Response
// Authenticator, is dropped and counted, and the session fails as "not
// responding" with the cause.
func TestWrongSharedSecret(t *testing.T) {
	srv := radiustest.NewServer(t, "another-secret", md5Server(t, false))
	c, logs := testClient(t, nil, fakeServer("wrongsecret", srv, secret))
	s, _ := c.NewSession(testPeer)
	_, err := s.Exchange(ctxT(t), identity)
	if !errors.Is(err, ErrNotResponding) {
		t.Fatalf("got %v, want not responding", err)
	}
	mustContain(t, err.Error(), "RADIUS server 'wrongsecret' (127.0.0.1:", "is not responding",
		"timed out after 2 attempts", "2 replies dropped", "Response-Authenticator verification failed", "shared secret mismatch?")
	if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "another-secret") {
		t.Errorf("error shows a secret: %v", err)
	}
	st := c.Stats()
	if st.Dropped[DropResponseAuthenticator] != 2 || st.Retransmits != 1 || st.Timeouts != 1 {
		t.Errorf("stats %+v", st)
	}
	mustContain(t, logs.String(), "RADIUS Response-Authenticator verification failed from server 'wrongsecret', ignored")
	t.Log(err)
}

// Replies that fail a check are dropped one by one; the right reply
// after them is still taken.
func TestHostileRepliesDropped(t *testing.T) {
	wrongID := byte(0)
	hostile := func(req *radiustest.Request) []*radiustest.Reply {
		wrongID = req.Identifier + 1
		short := []byte{byte(radius.CodeAccessAccept), req.Identifier, 0, 20}
		long := make([]byte, 20)
		long[0], long[1], long[3] = byte(radius.CodeAccessAccept), req.Identifier, 200 // Length beyond the datagram
		overrun := append(make([]byte, 20), 79, 200, 1)                                // attribute longer than the packet
		overrun[0], overrun[1], overrun[3] = byte(radius.CodeAccessAccept), req.Identifier, 23
		return []*radiustest.Reply{
			{Raw: short},
			{Raw: long},
			{Raw: overrun},
			{Code: radius.CodeAccessAccept, Identifier: &wrongID, Attributes: eapAttrs(eapSuccess)},
			{Code: radius.CodeAccountingResponse, Attributes: eapAttrs(eapSuccess)},
			{Code: radius.CodeAccessAccept, Attributes: eapAttrs(eapSuccess), BadMessageAuthenticator: true},
			{Code: radius.CodeAccessAccept, Attributes: eapAttrs(eapSuccess), NoMessageAuthenticator: true},
			{Code: radius.CodeAccessAccept, Attributes: append(eapAttrs(eapSuccess), &radius.AVP{Type: rfc2869.MessageAuthenticator_Type, Attribute: make([]byte, 16)})},
			{Code: radius.CodeAccessAccept, Attributes: eapAttrs(eapSuccess), Secret: []byte("x")},
		}
	}
	srv := radiustest.NewServer(t, secret, func(req *radiustest.Request) *radiustest.Reply {
		return &radiustest.Reply{Code: radius.CodeAccessAccept, Attributes: eapAttrs(eapSuccess), Before: hostile(req)}
	})
	c, _ := testClient(t, nil, fakeServer("fake", srv, secret))
	s, _ := c.NewSession(testPeer)
	r, err := s.Exchange(ctxT(t), identity)
	if err != nil {
		t.Fatal(err)
	}
	if r.Outcome != Accept {
		t.Fatalf("reply %+v", r)
	}
	st := c.Stats()
	want := map[DropReason]uint64{
		DropMalformed:                   3,
		DropUnexpectedID:                1,
		DropUnexpectedCode:              1,
		DropMessageAuthenticator:        2,
		DropMessageAuthenticatorMissing: 1,
		DropResponseAuthenticator:       1,
	}
	for k, v := range want {
		if st.Dropped[k] != v {
			t.Errorf("dropped for %v: %d, want %d", k, st.Dropped[k], v)
		}
	}
	if st.DroppedTotal() != 9 {
		t.Errorf("dropped %d, want 9: %v", st.DroppedTotal(), st.Dropped)
	}
}
