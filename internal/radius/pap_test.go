package radius

import (
	"net"
	"strings"
	"testing"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"

	"github.com/xdpsec/xdpsec/internal/radius/radiustest"
)

// papServer accepts carol with her password (and a Framed-IP-Address),
// refuses everyone else; it checks the request has what XAuth sends.
func papServer(t *testing.T) radiustest.Handler {
	return func(req *radiustest.Request) *radiustest.Reply {
		pw, err := rfc2865.UserPassword_LookupString(req.Packet)
		if err != nil {
			t.Errorf("no User-Password that decrypts: %v", err)
		}
		if !req.Authentic {
			t.Errorf("Access-Request without a valid Message-Authenticator")
		}
		if got := rfc2865.CallingStationID_GetString(req.Packet); got != "198.51.100.7[4500]" {
			t.Errorf("Calling-Station-Id %q", got)
		}
		if rfc2865.UserName_GetString(req.Packet) != testPeer.UserName || pw != "carol's password" {
			return &radiustest.Reply{Code: radius.CodeAccessReject}
		}
		p := req.Response(radius.CodeAccessAccept)
		rfc2865.FramedIPAddress_Set(p, net.IPv4(10, 3, 0, 9))
		return &radiustest.Reply{Code: radius.CodeAccessAccept, Attributes: p.Attributes}
	}
}

// TestAuthenticatePAP: XAuth's user name and password in one
// Access-Request with User-Password (RFC 2865 section 5.2), hidden with
// the shared secret; Accept with a Framed-IP-Address, or Reject.
func TestAuthenticatePAP(t *testing.T) {
	srv := radiustest.NewServer(t, secret, papServer(t))
	c, _ := testClient(t, nil, fakeServer("fake", srv, secret))
	s, err := c.NewSession(testPeer)
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.Authenticate(ctxT(t), []byte("carol's password"))
	if err != nil {
		t.Fatal(err)
	}
	if r.Outcome != Accept || r.FramedIP.String() != "10.3.0.9" || r.Server != "fake" || r.MSK != nil {
		t.Fatalf("reply %+v", r)
	}
	if wire := srv.Requests()[0].Wire; strings.Contains(string(wire), "carol's password") {
		t.Fatalf("the password went in clear")
	}
	s, _ = c.NewSession(testPeer)
	if r, err = s.Authenticate(ctxT(t), []byte("wrong")); err != nil || r.Outcome != Reject {
		t.Fatalf("wrong password: %+v %v", r, err)
	}
	if _, err := s.Authenticate(ctxT(t), make([]byte, 129)); err == nil {
		t.Fatalf("a password longer than User-Password holds was sent")
	}
}
