package radius

import (
	"context"
	"crypto/md5"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xdpsec/xdpsec/internal/radius/radiustest"
	"github.com/xdpsec/xdpsec/internal/testenv"
)

// The integration tests run Debian's FreeRADIUS 3 with a configuration
// of their own: one server for the whole test binary (TestMain stops it),
// on free ports of 127.0.0.1, with the eap module (EAP-MD5 only), the
// files module for users, and the detail module writing accounting
// records into the configuration directory.

const frSecret = "fr-test-secret"

// Users of the FreeRADIUS configuration. bob gets reply attributes, the
// MPPE keys among them: FreeRADIUS encrypts them on the way out (RFC
// 2548), so the MSK we decrypt checks our decryption against theirs.
const frUsers = `alice	Cleartext-Password := "alice-password"

bob	Cleartext-Password := "bob-password"
	Framed-IP-Address = 10.3.200.77,
	Class = "group=staff",
	MS-MPPE-Recv-Key = 0x000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f,
	MS-MPPE-Send-Key = 0x202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f
`

var fr struct {
	once sync.Once
	inst *radiustest.FreeRADIUS
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if fr.inst != nil {
		fr.inst.Stop()
		os.RemoveAll(fr.inst.Dir)
	}
	os.Exit(code)
}

// needFreeRADIUS starts the shared server on first use, or skips.
func needFreeRADIUS(t *testing.T) *radiustest.FreeRADIUS {
	t.Helper()
	testenv.RequireRoot(t)
	testenv.RequireCommand(t, "freeradius")
	fr.once.Do(func() {
		start := time.Now()
		fr.inst, fr.err = startFreeRADIUS()
		if fr.err == nil {
			t.Logf("FreeRADIUS ready in %v (%s)", time.Since(start).Round(time.Millisecond), fr.inst.Dir)
		}
	})
	if fr.err != nil {
		t.Fatalf("starting FreeRADIUS: %v", fr.err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("FreeRADIUS output:\n%s", fr.inst.Output())
		}
	})
	return fr.inst
}

// freeUDPPort is a port of 127.0.0.1 that was free a moment ago.
func freeUDPPort() (uint16, error) {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return 0, err
	}
	defer c.Close()
	return uint16(c.LocalAddr().(*net.UDPAddr).Port), nil
}

// startFreeRADIUS starts the shared server on free ports of 127.0.0.1,
// EAP-MD5 first.
func startFreeRADIUS() (*radiustest.FreeRADIUS, error) {
	dir, err := os.MkdirTemp("", "xdpsec-freeradius-")
	if err != nil {
		return nil, err
	}
	cfg := radiustest.FreeRADIUSConfig{Secret: frSecret, Users: frUsers, DefaultEAPType: "md5"}
	if cfg.AuthPort, err = freeUDPPort(); err == nil {
		cfg.AcctPort, err = freeUDPPort()
	}
	var f *radiustest.FreeRADIUS
	if err == nil {
		f, err = radiustest.StartFreeRADIUS(dir, cfg)
	}
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return f, nil
}

func frServer(f *radiustest.FreeRADIUS, name, secret string) Server {
	return Server{Name: name, Address: "127.0.0.1", AuthPort: f.AuthPort, AcctPort: f.AcctPort, Secret: NewSecret(secret)}
}

// eapMD5Peer answers an EAP-Request/MD5-Challenge (RFC 3748 §5.4): the
// value is MD5(Identifier || password || challenge), as in CHAP (RFC 1994).
func eapMD5Peer(t *testing.T, req []byte, password string) []byte {
	t.Helper()
	if len(req) < 6 || req[0] != 1 || req[4] != 4 || len(req) < 6+int(req[5]) {
		t.Fatalf("not an EAP-Request/MD5-Challenge: %x", req)
	}
	id, challenge := req[1], req[6:6+int(req[5])]
	sum := md5.Sum(append(append([]byte{id}, password...), challenge...))
	return eapPacket(2, id, append([]byte{4, 16}, sum[:]...))
}

// eapMD5Login runs a whole EAP-MD5 conversation and returns the last
// reply.
func eapMD5Login(t *testing.T, c *Client, user, password string) (*Reply, error) {
	t.Helper()
	s, err := c.NewSession(Peer{
		UserName: user,
		Calling:  netip.MustParseAddrPort("198.51.100.7:4500"),
		Called:   netip.MustParseAddrPort("192.0.2.1:4500"),
		NASPort:  1,
	})
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.Exchange(ctxT(t), eapPacket(2, 0, append([]byte{1}, user...)))
	if err != nil || r.Outcome != Challenge {
		return r, err
	}
	return s.Exchange(ctxT(t), eapMD5Peer(t, r.EAP, password))
}

func frClient(t *testing.T, servers ...Server) (*Client, *logBuffer) {
	return testClient(t, func(c *Config) {
		c.Timeout = 300 * time.Millisecond
		c.Tries = 2
	}, servers...)
}

func TestFreeRADIUSEAPMD5(t *testing.T) {
	f := needFreeRADIUS(t)
	c, logs := frClient(t, frServer(f, "freeradius", frSecret))

	t.Run("right password", func(t *testing.T) {
		r, err := eapMD5Login(t, c, "alice", "alice-password")
		if err != nil {
			t.Fatal(err)
		}
		if r.Outcome != Accept || len(r.EAP) != 4 || r.EAP[0] != 3 {
			t.Fatalf("reply %+v, want Access-Accept with EAP-Success", r)
		}
		if r.MSK != nil || !errors.Is(r.MSKError, ErrNoMPPEKeys) {
			t.Errorf("EAP-MD5 exports no keys, got MSK %x (%v)", r.MSK, r.MSKError)
		}
		if r.FramedIP.IsValid() {
			t.Errorf("alice has no Framed-IP-Address, got %v", r.FramedIP)
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		r, err := eapMD5Login(t, c, "alice", "not-her-password")
		if err != nil {
			t.Fatal(err)
		}
		if r.Outcome != Reject || len(r.EAP) != 4 || r.EAP[0] != 4 {
			t.Fatalf("reply %+v, want Access-Reject with EAP-Failure", r)
		}
	})
	t.Run("unknown user", func(t *testing.T) {
		r, err := eapMD5Login(t, c, "mallory", "whatever")
		if err != nil {
			t.Fatal(err)
		}
		if r.Outcome != Reject {
			t.Fatalf("reply %+v, want Access-Reject", r)
		}
	})
	t.Run("Framed-IP-Address, Class and MPPE keys", func(t *testing.T) {
		r, err := eapMD5Login(t, c, "bob", "bob-password")
		if err != nil {
			t.Fatal(err)
		}
		if r.Outcome != Accept {
			t.Fatalf("reply %+v", r)
		}
		if r.FramedIP != netip.MustParseAddr("10.3.200.77") {
			t.Errorf("Framed-IP-Address %v, want 10.3.200.77", r.FramedIP)
		}
		if len(r.Class) != 1 || string(r.Class[0]) != "group=staff" {
			t.Errorf("Class %q", r.Class)
		}
		want := make([]byte, 64)
		for i := range want {
			want[i] = byte(i)
		}
		if string(r.MSK) != string(want) {
			t.Errorf("MSK %x (%v), want Recv||Send %x", r.MSK, r.MSKError, want)
		}
	})
	if st := c.Stats(); st.DroppedTotal() != 0 || st.Retransmits != 0 {
		t.Errorf("stats %+v", st)
	}
	mustContain(t, logs.String(), "RADIUS authentication of 'alice' successful", "RADIUS authentication of 'alice' failed")
}

// FreeRADIUS checks the Message-Authenticator of our requests and drops
// those made with another secret without answering: the client sees a
// server that does not respond.
func TestFreeRADIUSWrongSecret(t *testing.T) {
	f := needFreeRADIUS(t)
	c, _ := frClient(t, frServer(f, "freeradius", "not-the-secret"))
	_, err := eapMD5Login(t, c, "alice", "alice-password")
	if !errors.Is(err, ErrNotResponding) {
		t.Fatalf("got %v, want not responding", err)
	}
	mustContain(t, err.Error(), "RADIUS server 'freeradius' (127.0.0.1:", "is not responding", "timed out after 2 attempts")
	time.Sleep(50 * time.Millisecond)
	mustContain(t, f.Output(), "Shared secret is incorrect")
	c2, _ := frClient(t, frServer(f, "freeradius", "not-the-secret"))
	err = c2.AccountingStart(ctxT(t), &AcctSession{ID: "wrong-secret", UserName: "alice"})
	if !errors.Is(err, ErrNotResponding) {
		t.Fatalf("accounting: got %v", err)
	}
	t.Log(err)
}

// A preferred server that is down: the client fails over to FreeRADIUS;
// with no other server, it says so.
func TestFreeRADIUSFailover(t *testing.T) {
	f := needFreeRADIUS(t)
	downPort := closedPort(t)
	down := Server{Name: "down", Address: "127.0.0.1", AuthPort: downPort, AcctPort: downPort, Secret: NewSecret(frSecret), Preference: 1}
	c, logs := frClient(t, frServer(f, "freeradius", frSecret), down)
	r, err := eapMD5Login(t, c, "alice", "alice-password")
	if err != nil {
		t.Fatal(err)
	}
	if r.Outcome != Accept || r.Server != "freeradius" {
		t.Fatalf("reply %+v", r)
	}
	mustContain(t, logs.String(), "RADIUS server 'down' (127.0.0.1:", "is not responding")

	alone, _ := frClient(t, down)
	_, err = eapMD5Login(t, alone, "alice", "alice-password")
	if !errors.Is(err, ErrNotResponding) {
		t.Fatalf("got %v", err)
	}
	mustContain(t, err.Error(), "RADIUS server 'down'", "not responding", "connection refused")
}

// Accounting Start and Stop land in FreeRADIUS's detail file with the
// counters.
func TestFreeRADIUSAccounting(t *testing.T) {
	f := needFreeRADIUS(t)
	c, _ := frClient(t, frServer(f, "freeradius", frSecret))
	id := fmt.Sprintf("xdpsec-%d", time.Now().UnixNano())
	a := &AcctSession{
		ID:       id,
		UserName: "bob",
		FramedIP: netip.MustParseAddr("10.3.200.77"),
		Calling:  netip.MustParseAddrPort("198.51.100.7:4500"),
		Called:   netip.MustParseAddrPort("192.0.2.1:4500"),
		NASPort:  1,
		Class:    [][]byte{[]byte("group=staff")},
		Started:  time.Now().Add(-42 * time.Second),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.AccountingStart(ctx, a); err != nil {
		t.Fatal(err)
	}
	u := Usage{InOctets: 6<<32 + 1234, OutOctets: 567890, InPackets: 4321, OutPackets: 765}
	if err := c.AccountingStop(ctx, a, u, CauseUserRequest); err != nil {
		t.Fatal(err)
	}
	detail, err := os.ReadFile(filepath.Join(f.Dir, "detail"))
	if err != nil {
		t.Fatal(err)
	}
	var start, stop string
	for rec := range strings.SplitSeq(string(detail), "\n\n") {
		if !strings.Contains(rec, `Acct-Session-Id = "`+id+`"`) {
			continue
		}
		switch {
		case strings.Contains(rec, "Acct-Status-Type = Start"):
			start = rec
		case strings.Contains(rec, "Acct-Status-Type = Stop"):
			stop = rec
		}
	}
	if start == "" || stop == "" {
		t.Fatalf("Start or Stop of %s missing in the detail file:\n%s", id, detail)
	}
	mustContain(t, start, `User-Name = "bob"`, "Framed-IP-Address = 10.3.200.77", "NAS-Port-Type = Virtual",
		`Calling-Station-Id = "198.51.100.7[4500]"`, `NAS-Identifier = "gw-test"`)
	mustContain(t, stop, "Acct-Input-Octets = 1234", "Acct-Input-Gigawords = 6", "Acct-Output-Octets = 567890",
		"Acct-Input-Packets = 4321", "Acct-Output-Packets = 765", "Acct-Terminate-Cause = User-Request",
		"Acct-Session-Time = 42", "Framed-IP-Address = 10.3.200.77")
	t.Logf("Stop record:\n%s", stop)
}
