package daemon

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2866"

	"github.com/xdpsec/xdpsec/ike"
	"github.com/xdpsec/xdpsec/ike/eap"
	"github.com/xdpsec/xdpsec/internal/radius/radiustest"
)

const radiusSecret = "testing123"

// eapRadiusServer is a RADIUS server with our EAP-MSCHAPv2 server behind
// it, framed (if set) the Framed-IP-Address of every Accept.
func eapRadiusServer(t *testing.T, users map[string]string, framed net.IP) *radiustest.Server {
	f := map[string]net.IP{}
	for u := range users {
		f[u] = framed
	}
	return radiustest.NewServer(t, radiusSecret, radiustest.EAPMSCHAPv2(t, users, f))
}

func writeSettings(t *testing.T, body string, mode os.FileMode) string {
	p := filepath.Join(t.TempDir(), "xdpsec.conf")
	if err := os.WriteFile(p, []byte(body), mode); err != nil {
		t.Fatal(err)
	}
	return p
}

func radiusSettings(srv *radiustest.Server, secret string, extra string) string {
	return fmt.Sprintf("radius {\n  servers {\n    r1 {\n      address = 127.0.0.1\n      auth_port = %d\n      secret = %s\n    }\n  }\n  timeout = 200ms\n  retransmit_tries = 2\n%s}\n",
		srv.Port(), secret, extra)
}

// converse runs an EAP-MSCHAPv2 peer through the backend as the engine
// would: Response/Identity first, then each Request's answer.
func converse(t *testing.T, b ike.EAPBackend, user, password string) (ike.EAPReply, []byte, error) {
	t.Helper()
	conv, err := b.NewConversation(ike.EAPPeer{Identity: user, Remote: netip.MustParseAddrPort("192.0.2.1:500"), IKESAID: 7, Connection: "rw"})
	if err != nil {
		t.Fatal(err)
	}
	peer, err := eap.NewPeer(eap.PeerConfig{Identity: user, Secret: eap.PasswordSecret([]byte(password)), Methods: []eap.Type{eap.TypeMSCHAPv2}})
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := eap.Packet{Code: eap.CodeResponse, Type: eap.TypeIdentity, Data: []byte(user)}.Marshal()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for range 10 {
		r, err := conv.Exchange(ctx, msg)
		if err != nil || r.Outcome != ike.EAPChallenge {
			if r.Outcome == ike.EAPAccept {
				peer.Process(r.EAP)
				return r, peer.Result().MSK, nil
			}
			return r, nil, err
		}
		if msg, err = peer.Process(r.EAP); err != nil {
			t.Fatal(err)
		}
	}
	t.Fatal("no end to the conversation")
	return ike.EAPReply{}, nil, nil
}

// TestRadiusBackend: the daemon's backend relays EAP-MSCHAPv2 to a RADIUS
// server; on Accept the MSK from the MPPE keys is the peer's own, and
// Framed-IP-Address comes through with use_framed_ip.
func TestRadiusBackend(t *testing.T) {
	users := map[string]string{"carol": "carol's password"}
	srv := eapRadiusServer(t, users, net.IPv4(10, 9, 0, 7))
	c, err := LoadRadius(writeSettings(t, radiusSettings(srv, radiusSecret, "  use_framed_ip = yes\n"), 0o600), nil)
	if err != nil || c == nil {
		t.Fatalf("LoadRadius: %v %v", c, err)
	}
	b := newRadiusBackend(c, slog.New(slog.DiscardHandler))
	r, peerMSK, err := converse(t, b, "carol", "carol's password")
	if err != nil || r.Outcome != ike.EAPAccept {
		t.Fatalf("outcome %v, %v", r.Outcome, err)
	}
	if len(r.MSK) != 64 || !bytes.Equal(r.MSK, peerMSK) {
		t.Errorf("MSK from RADIUS %x, the peer's %x", r.MSK, peerMSK)
	}
	if r.FramedIP != netip.MustParseAddr("10.9.0.7") || r.Server != "r1" {
		t.Errorf("Framed-IP %v, server %q", r.FramedIP, r.Server)
	}
	if r, _, err := converse(t, b, "carol", "wrong"); err != nil || r.Outcome != ike.EAPReject {
		t.Errorf("wrong password: %v, %v", r.Outcome, err)
	}
}

// TestRadiusBackendDown: a server that does not answer (here: another
// shared secret, so every reply is dropped) is an error naming it.
func TestRadiusBackendDown(t *testing.T) {
	srv := eapRadiusServer(t, map[string]string{"carol": "x"}, nil)
	c, err := LoadRadius(writeSettings(t, radiusSettings(srv, "not-the-secret", ""), 0o600), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = converse(t, newRadiusBackend(c, slog.New(slog.DiscardHandler)), "carol", "x")
	if err == nil || !strings.Contains(err.Error(), "r1") {
		t.Errorf("got %v, want an error naming server r1", err)
	}
}

// TestLoadRadiusErrors: the settings file is optional at its default
// path only, must not be readable by others, and eap-radius connections
// need it.
func TestLoadRadiusErrors(t *testing.T) {
	if _, err := LoadRadius(filepath.Join(t.TempDir(), "none.conf"), nil); err == nil {
		t.Error("a named settings file that does not exist loads")
	}
	srv := eapRadiusServer(t, nil, nil)
	if _, err := LoadRadius(writeSettings(t, radiusSettings(srv, radiusSecret, ""), 0o644), nil); err == nil || !strings.Contains(err.Error(), "too open") {
		t.Errorf("a world-readable file with secrets: %v", err)
	}
	if _, err := LoadRadius(writeSettings(t, radiusSettings(srv, radiusSecret, "  timeout = -1s\n"), 0o600), nil); err == nil {
		t.Error("a negative timeout loads")
	}
	conns := []*ike.Connection{{Name: "rw", Remote: []*ike.AuthConfig{{Auth: ike.AuthEAPRadius}}}}
	if err := checkEAPRadius(conns, nil, "/etc/xdpsec/xdpsec.conf"); err == nil || !strings.Contains(err.Error(), "connection rw: remote.auth = eap-radius needs a radius section") {
		t.Errorf("eap-radius without servers: %v", err)
	}
}

// TestRadiusAccounting: the engine's accounting calls become Start,
// Interim-Update and Stop records, in order, with the session's counters,
// its Class and why it ended; a retired backend sends what it had queued
// and its goroutine ends.
func TestRadiusAccounting(t *testing.T) {
	acct := radiustest.NewServer(t, radiusSecret, func(req *radiustest.Request) *radiustest.Reply {
		return &radiustest.Reply{Code: radius.CodeAccountingResponse}
	})
	conf := fmt.Sprintf("radius {\n  servers {\n    r1 {\n      address = 127.0.0.1\n      acct_port = %d\n      secret = %s\n    }\n  }\n  timeout = 200ms\n  accounting = yes\n  accounting_interval = 10m\n}\n", acct.Port(), radiusSecret)
	c, err := LoadRadius(writeSettings(t, conf, 0o600), nil)
	if err != nil {
		t.Fatal(err)
	}
	b := newRadiusBackend(c, slog.New(slog.DiscardHandler))
	if d := b.AccountingInterval(); d != 10*time.Minute {
		t.Errorf("accounting interval %v, want 10m", d)
	}
	stop := make(chan struct{})
	defer close(stop)
	done := make(chan struct{})
	go func() {
		b.runAccounting(stop)
		close(done)
	}()
	s := ike.EAPSession{IKESAID: 3, Identity: "carol", Connection: "rw", Remote: netip.MustParseAddrPort("192.0.2.1:4500"),
		VIPs: []netip.Addr{netip.MustParseAddr("10.3.200.1")}, Started: time.Now(), Class: [][]byte{[]byte("group-7")}}
	b.AccountingStart(s)
	b.AccountingInterim(s, ike.EAPUsage{BytesIn: 1000, BytesOut: 2000, PacketsIn: 5, PacketsOut: 6})
	b.AccountingStop(s, ike.EAPUsage{BytesIn: 1234, BytesOut: 5678, PacketsIn: 9, PacketsOut: 11, Cause: ike.EndAdmin})
	b.retire()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the retired backend's goroutine did not end")
	}
	reqs := acct.Requests()
	if len(reqs) != 3 {
		t.Fatalf("%d accounting requests, want 3", len(reqs))
	}
	for i, want := range []rfc2866.AcctStatusType{rfc2866.AcctStatusType_Value_Start, rfc2866.AcctStatusType_Value_InterimUpdate, rfc2866.AcctStatusType_Value_Stop} {
		p := reqs[i].Packet
		if st := rfc2866.AcctStatusType_Get(p); st != want {
			t.Errorf("record %d: %v, want %v", i, st, want)
		}
		if cl := rfc2865.Class_Get(p); string(cl) != "group-7" {
			t.Errorf("record %d: Class %q, want group-7", i, cl)
		}
		if id := rfc2866.AcctSessionID_GetString(p); id != rfc2866.AcctSessionID_GetString(reqs[0].Packet) {
			t.Errorf("record %d: Acct-Session-Id %q, want the Start's", i, id)
		}
	}
	if in := rfc2866.AcctInputOctets_Get(reqs[1].Packet); in != 1000 {
		t.Errorf("interim octets in %d, want 1000", in)
	}
	stopReq := reqs[2].Packet
	if cause := rfc2866.AcctTerminateCause_Get(stopReq); cause != rfc2866.AcctTerminateCause_Value_AdminReset {
		t.Errorf("Stop's Acct-Terminate-Cause %v, want Admin-Reset", cause)
	}
	if in, out := rfc2866.AcctInputOctets_Get(stopReq), rfc2866.AcctOutputOctets_Get(stopReq); in != 1234 || out != 5678 {
		t.Errorf("octets in %d out %d", in, out)
	}
	if u := rfc2865.UserName_GetString(stopReq); u != "carol" {
		t.Errorf("User-Name %q", u)
	}
	if ip := rfc2865.FramedIPAddress_Get(stopReq); !ip.Equal(net.IPv4(10, 3, 200, 1)) {
		t.Errorf("Framed-IP-Address %v", ip)
	}
}
