package radiustest

import (
	"crypto/rand"
	"net"
	"sync"
	"testing"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2869"
	"layeh.com/radius/vendors/microsoft"

	"github.com/xdpsec/xdpsec/ike/eap"
)

// EAPMSCHAPv2 is a handler that authenticates users with our own
// EAP-MSCHAPv2 server, one conversation per User-Name, as a RADIUS
// server with EAP does: Access-Challenge with each EAP-Request,
// Access-Accept with the MSK in MS-MPPE-Recv/Send-Key (and framed[user],
// if any, as Framed-IP-Address) or Access-Reject.
func EAPMSCHAPv2(t testing.TB, users map[string]string, framed map[string]net.IP) Handler {
	var mu sync.Mutex
	servers := map[string]*eap.Server{}
	creds := eap.CredentialsFunc(func(id string) (eap.Secret, error) {
		if pw, ok := users[id]; ok {
			return eap.PasswordSecret([]byte(pw)), nil
		}
		return eap.Secret{}, eap.ErrUnknownUser
	})
	return func(req *Request) *Reply {
		mu.Lock()
		defer mu.Unlock()
		user := rfc2865.UserName_GetString(req.Packet)
		msg, _ := rfc2869.EAPMessage_Lookup(req.Packet)
		srv := servers[user]
		var out []byte
		var err error
		if srv == nil {
			srv, err = eap.NewServer(eap.ServerConfig{Methods: []eap.Type{eap.TypeMSCHAPv2}, Identity: user, Rand: rand.Reader, Credentials: creds})
			if err != nil {
				t.Errorf("radiustest: EAP server for %q: %v", user, err)
				return nil
			}
			servers[user] = srv
			out, err = srv.Start()
		} else {
			out, err = srv.Process(msg)
		}
		if err != nil {
			t.Errorf("radiustest: EAP server for %q: %v", user, err)
			return nil
		}
		p := req.Response(radius.CodeAccessChallenge)
		rfc2869.EAPMessage_Set(p, out)
		if !srv.Done() {
			return &Reply{Code: radius.CodeAccessChallenge, Attributes: p.Attributes}
		}
		delete(servers, user)
		res := srv.Result()
		if res.Err != nil {
			return &Reply{Code: radius.CodeAccessReject, Attributes: p.Attributes}
		}
		microsoft.MSMPPERecvKey_Add(p, res.MSK[0:16])
		microsoft.MSMPPESendKey_Add(p, res.MSK[16:32])
		if ip := framed[user]; ip != nil {
			rfc2865.FramedIPAddress_Set(p, ip)
		}
		return &Reply{Code: radius.CodeAccessAccept, Attributes: p.Attributes}
	}
}
