package radius

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2866"
	"layeh.com/radius/rfc2869"

	"github.com/xdpsec/xdpsec/internal/radius/radiustest"
)

func acctResponder(req *radiustest.Request) *radiustest.Reply {
	return &radiustest.Reply{Code: radius.CodeAccountingResponse}
}

func TestAccountingStartInterimStop(t *testing.T) {
	srv := radiustest.NewServer(t, secret, acctResponder)
	c, _ := testClient(t, nil, fakeServer("acct", srv, secret))
	started := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	c.now = func() time.Time { return started.Add(90*time.Second + 400*time.Millisecond) }
	a := &AcctSession{
		ID:       "5f2a0001-0000002a",
		UserName: "carol@example.org",
		FramedIP: netip.MustParseAddr("10.3.200.9"),
		Calling:  netip.MustParseAddrPort("198.51.100.7:4500"),
		Called:   netip.MustParseAddrPort("192.0.2.1:4500"),
		NASPort:  7,
		Class:    [][]byte{[]byte("group=staff")},
		Started:  started,
	}
	ctx := ctxT(t)
	if err := c.AccountingStart(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := c.AccountingInterim(ctx, a, Usage{InOctets: 1000, OutOctets: 2000, InPackets: 10, OutPackets: 20}); err != nil {
		t.Fatal(err)
	}
	big := Usage{InOctets: 5<<32 + 123, OutOctets: 4567, InPackets: 1 << 40, OutPackets: 89}
	if err := c.AccountingStop(ctx, a, big, CauseUserRequest); err != nil {
		t.Fatal(err)
	}
	reqs := srv.Requests()
	if len(reqs) != 3 {
		t.Fatalf("%d requests", len(reqs))
	}
	for i, want := range []rfc2866.AcctStatusType{rfc2866.AcctStatusType_Value_Start, rfc2866.AcctStatusType_Value_InterimUpdate, rfc2866.AcctStatusType_Value_Stop} {
		p := reqs[i].Packet
		if p.Code != radius.CodeAccountingRequest || !reqs[i].Authentic {
			t.Errorf("request %d: %v, authentic %v", i, p.Code, reqs[i].Authentic)
		}
		if got := rfc2866.AcctStatusType_Get(p); got != want {
			t.Errorf("request %d: Acct-Status-Type %v, want %v", i, got, want)
		}
		if rfc2866.AcctSessionID_GetString(p) != a.ID || rfc2865.UserName_GetString(p) != a.UserName ||
			rfc2865.FramedIPAddress_Get(p).String() != "10.3.200.9" || string(rfc2865.Class_Get(p)) != "group=staff" ||
			rfc2865.CallingStationID_GetString(p) != "198.51.100.7[4500]" || rfc2865.NASPortType_Get(p) != rfc2865.NASPortType_Value_Virtual {
			t.Errorf("request %d: session attributes %v", i, p.Attributes)
		}
	}
	if _, ok := reqs[0].Lookup(rfc2866.AcctInputOctets_Type); ok {
		t.Error("Start carries counters")
	}
	interim := reqs[1].Packet
	if rfc2866.AcctInputOctets_Get(interim) != 1000 || rfc2866.AcctOutputPackets_Get(interim) != 20 || rfc2866.AcctSessionTime_Get(interim) != 90 {
		t.Errorf("interim counters %v", interim.Attributes)
	}
	if _, ok := interim.Lookup(rfc2869.AcctInputGigawords_Type); ok {
		t.Error("Gigawords sent below 2^32")
	}
	stop := reqs[2].Packet
	if rfc2866.AcctInputOctets_Get(stop) != 123 || rfc2869.AcctInputGigawords_Get(stop) != 5 ||
		rfc2866.AcctOutputOctets_Get(stop) != 4567 || rfc2866.AcctInputPackets_Get(stop) != 0xffffffff ||
		rfc2866.AcctOutputPackets_Get(stop) != 89 || rfc2866.AcctSessionTime_Get(stop) != 90 ||
		rfc2866.AcctTerminateCause_Get(stop) != rfc2866.AcctTerminateCause_Value_UserRequest {
		t.Errorf("stop counters %v", stop.Attributes)
	}
	if st := c.Stats(); st.AcctReplies != 3 {
		t.Errorf("stats %+v", st)
	}
}

func TestAccountingOff(t *testing.T) {
	srv := radiustest.NewServer(t, secret, acctResponder)
	c, _ := testClient(t, func(c *Config) { c.Accounting = false }, fakeServer("acct", srv, secret))
	a := &AcctSession{ID: "x", UserName: "u"}
	if err := c.AccountingStart(ctxT(t), a); err != nil {
		t.Fatal(err)
	}
	if err := c.AccountingStop(ctxT(t), a, Usage{}, CauseNASReboot); err != nil {
		t.Fatal(err)
	}
	if n := len(srv.Requests()); n != 0 {
		t.Errorf("%d requests with accounting off", n)
	}
}

// An Accounting-Response under another secret is dropped; the next server
// gets the record.
func TestAccountingWrongSecretFailover(t *testing.T) {
	wrong := radiustest.NewServer(t, "another-secret", acctResponder)
	right := radiustest.NewServer(t, secret, acctResponder)
	c, _ := testClient(t, nil, fakeServer("wrong", wrong, secret), fakeServer("right", right, secret))
	if err := c.AccountingStart(ctxT(t), &AcctSession{ID: "s1", UserName: "u"}); err != nil {
		t.Fatal(err)
	}
	if len(right.Requests()) != 1 || c.Stats().Dropped[DropResponseAuthenticator] != 2 {
		t.Errorf("right got %d, stats %+v", len(right.Requests()), c.Stats())
	}
	c2, _ := testClient(t, nil, fakeServer("wrong", wrong, secret))
	err := c2.AccountingStop(ctxT(t), &AcctSession{ID: "s1"}, Usage{}, CauseAdminReset)
	if !errors.Is(err, ErrNotResponding) {
		t.Fatalf("got %v", err)
	}
	mustContain(t, err.Error(), "RADIUS server 'wrong'", "RADIUS Accounting-Request timed out after 2 attempts", "Response-Authenticator")
}
