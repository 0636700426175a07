package radius

import (
	"context"
	"crypto/md5"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

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

// frConfig is a self-contained radiusd.conf; %[1]s is the directory,
// %[2]d and %[3]d the ports. reject_delay 0 keeps rejects fast.
const frConfig = `prefix = /usr
exec_prefix = /usr
sysconfdir = /etc
localstatedir = /var
sbindir = /usr/sbin
logdir = %[1]s/log
raddbdir = %[1]s
radacctdir = %[1]s
name = freeradius
confdir = %[1]s
modconfdir = %[1]s
certdir = %[1]s
cadir = %[1]s
run_dir = %[1]s/run
db_dir = %[1]s
libdir = /usr/lib/freeradius
pidfile = %[1]s/run/radiusd.pid
max_request_time = 30
cleanup_delay = 5
max_requests = 16384
hostname_lookups = no
log {
	destination = stdout
	stripped_names = no
	auth = yes
}
security {
	allow_core_dumps = no
	max_attributes = 200
	reject_delay = 0
	status_server = no
}
proxy_requests = no
thread pool {
	start_servers = 2
	max_servers = 4
	min_spare_servers = 1
	max_spare_servers = 2
}
client loopback {
	ipaddr = 127.0.0.1
	secret = "` + frSecret + `"
	require_message_authenticator = yes
}
modules {
	eap {
		default_eap_type = md5
		timer_expire = 60
		ignore_unknown_eap_types = no
		max_sessions = 4096
		md5 {
		}
	}
	files {
		filename = %[1]s/users
	}
	detail {
		filename = %[1]s/detail
		permissions = 0600
		header = "%%t"
	}
}
server default {
	listen {
		type = auth
		ipaddr = 127.0.0.1
		port = %[2]d
	}
	listen {
		type = acct
		ipaddr = 127.0.0.1
		port = %[3]d
	}
	authorize {
		files
		eap
	}
	authenticate {
		eap
	}
	accounting {
		detail
	}
	post-auth {
	}
}
`

type freeRADIUS struct {
	dir                string
	authPort, acctPort uint16
	cmd                *exec.Cmd
	out                *logBuffer
	exited             chan struct{}
}

var fr struct {
	once sync.Once
	inst *freeRADIUS
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if fr.inst != nil {
		fr.inst.stop()
	}
	os.Exit(code)
}

// needFreeRADIUS starts the shared server on first use, or skips.
func needFreeRADIUS(t *testing.T) *freeRADIUS {
	t.Helper()
	testenv.RequireRoot(t)
	testenv.RequireCommand(t, "freeradius")
	fr.once.Do(func() {
		start := time.Now()
		fr.inst, fr.err = startFreeRADIUS()
		if fr.err == nil {
			t.Logf("FreeRADIUS ready in %v (%s)", time.Since(start).Round(time.Millisecond), fr.inst.dir)
		}
	})
	if fr.err != nil {
		t.Fatalf("starting FreeRADIUS: %v", fr.err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("FreeRADIUS output:\n%s", fr.inst.out)
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

func startFreeRADIUS() (*freeRADIUS, error) {
	dir, err := os.MkdirTemp("", "xdpsec-freeradius-")
	if err != nil {
		return nil, err
	}
	f := &freeRADIUS{dir: dir, out: &logBuffer{}, exited: make(chan struct{})}
	if f.authPort, err = freeUDPPort(); err != nil {
		return nil, err
	}
	if f.acctPort, err = freeUDPPort(); err != nil {
		return nil, err
	}
	for _, d := range []string{"log", "run"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o700); err != nil {
			return nil, err
		}
	}
	dict, err := os.ReadFile("/etc/freeradius/3.0/dictionary")
	if err != nil {
		dict = []byte("$INCLUDE /usr/share/freeradius/dictionary\n")
	}
	files := map[string]string{
		"radiusd.conf": fmt.Sprintf(frConfig, dir, f.authPort, f.acctPort),
		"users":        frUsers,
		"dictionary":   string(dict),
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			return nil, err
		}
	}
	// -X: debug output to stdout, one thread, in the foreground.
	f.cmd = exec.Command("freeradius", "-X", "-d", dir)
	f.cmd.Stdout, f.cmd.Stderr = f.out, f.out
	waited, err := testenv.StartKept(f.cmd)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	go func() {
		<-waited
		close(f.exited)
	}()
	deadline := time.After(20 * time.Second)
	for !strings.Contains(f.out.String(), "Ready to process requests") {
		select {
		case <-f.exited:
			out := f.out.String()
			os.RemoveAll(dir)
			return nil, fmt.Errorf("freeradius exited: %v\n%s", f.cmd.ProcessState, out)
		case <-deadline:
			f.stop()
			return nil, fmt.Errorf("freeradius not ready after 20s:\n%s", f.out)
		case <-time.After(20 * time.Millisecond):
		}
	}
	return f, nil
}

func (f *freeRADIUS) stop() {
	f.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-f.exited:
	case <-time.After(5 * time.Second):
		f.cmd.Process.Kill()
		<-f.exited
	}
	os.RemoveAll(f.dir)
}

func (f *freeRADIUS) server(name, secret string) Server {
	return Server{Name: name, Address: "127.0.0.1", AuthPort: f.authPort, AcctPort: f.acctPort, Secret: NewSecret(secret)}
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
	c, logs := frClient(t, f.server("freeradius", frSecret))

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
	c, _ := frClient(t, f.server("freeradius", "not-the-secret"))
	_, err := eapMD5Login(t, c, "alice", "alice-password")
	if !errors.Is(err, ErrNotResponding) {
		t.Fatalf("got %v, want not responding", err)
	}
	mustContain(t, err.Error(), "RADIUS server 'freeradius' (127.0.0.1:", "is not responding", "timed out after 2 attempts")
	time.Sleep(50 * time.Millisecond)
	mustContain(t, f.out.String(), "Shared secret is incorrect")
	c2, _ := frClient(t, f.server("freeradius", "not-the-secret"))
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
	c, logs := frClient(t, f.server("freeradius", frSecret), down)
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
	c, _ := frClient(t, f.server("freeradius", frSecret))
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
	detail, err := os.ReadFile(filepath.Join(f.dir, "detail"))
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
