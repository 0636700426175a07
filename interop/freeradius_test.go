package interop

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/xdpsec/xdpsec/ike/iketest"
	"github.com/xdpsec/xdpsec/internal/testenv"
)

// Debian's FreeRADIUS 3 as the RADIUS server of our eap-radius gateway,
// in the gateway's namespace with a configuration directory of its own:
// EAP-MSCHAPv2 (MPPE keys from its mschap module) and EAP-MD5, users
// from a files module, accounting into a detail file.

const frInteropSecret = "fr-interop-secret"

const frInteropUsers = `carol	Cleartext-Password := "carol's password"
	Class = "group=staff"

bob	Cleartext-Password := "bob's password"

frank	Cleartext-Password := "frank's password"
	Framed-IP-Address = 10.9.0.7

dave	Cleartext-Password := "dave's password"

erin	Cleartext-Password := "erin's password"
	Framed-IP-Address = 10.3.200.1

grace	Cleartext-Password := "grace's password"
	Framed-IP-Address = 10.3.200.2
`

// frInteropConfig: %[1]s is the directory.
const frInteropConfig = `prefix = /usr
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
	secret = "` + frInteropSecret + `"
	require_message_authenticator = yes
}
modules {
	eap {
		default_eap_type = mschapv2
		timer_expire = 60
		ignore_unknown_eap_types = no
		max_sessions = 4096
		md5 {
		}
		mschapv2 {
		}
	}
	mschap {
		use_mppe = yes
		require_encryption = yes
		require_strong = yes
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
		port = 1812
	}
	listen {
		type = acct
		ipaddr = 127.0.0.1
		port = 1813
	}
	authorize {
		files
		mschap
		eap
	}
	authenticate {
		eap
		Auth-Type MS-CHAP {
			mschap
		}
	}
	accounting {
		detail
	}
	post-auth {
	}
}
`

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startFreeRADIUS runs FreeRADIUS in ns on 127.0.0.1:1812/1813 until the
// test ends; it returns its directory and its output.
func startFreeRADIUS(t *testing.T, ns *testenv.Netns) (string, *syncBuffer) {
	t.Helper()
	testenv.RequireCommand(t, "freeradius")
	dir := t.TempDir()
	for _, d := range []string{"log", "run"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	dict, err := os.ReadFile("/etc/freeradius/3.0/dictionary")
	if err != nil {
		dict = []byte("$INCLUDE /usr/share/freeradius/dictionary\n")
	}
	for name, content := range map[string]string{
		"radiusd.conf": fmt.Sprintf(frInteropConfig, dir),
		"users":        frInteropUsers,
		"dictionary":   string(dict),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	out := &syncBuffer{}
	cmd := exec.Command("nsenter", "--net=/run/netns/"+ns.Name, "freeradius", "-X", "-d", dir)
	cmd.Stdout, cmd.Stderr = out, out
	waited, err := testenv.StartKept(cmd)
	if err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		<-waited
		close(exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("FreeRADIUS output:\n%s", out)
		}
	})
	deadline := time.After(20 * time.Second)
	for !strings.Contains(out.String(), "Ready to process requests") {
		select {
		case <-exited:
			t.Fatalf("freeradius exited:\n%s", out)
		case <-deadline:
			t.Fatalf("freeradius not ready after 20s:\n%s", out)
		case <-time.After(20 * time.Millisecond):
		}
	}
	return dir, out
}

// TestEAPRadiusFreeRADIUS: charon's EAP-MSCHAPv2 and EAP-MD5 through our
// gateway to FreeRADIUS: the right password (AUTH over the MSK from
// FreeRADIUS's MPPE keys), a wrong password, a Framed-IP-Address, a wrong
// shared secret, and Start and Stop records in FreeRADIUS's detail file.
func TestEAPRadiusFreeRADIUS(t *testing.T) {
	e := newEnv(t, envOptions{charonSettings: "\tinstall_virtual_ip = yes\n"})
	frDir, _ := startFreeRADIUS(t, e.nsO)
	writeSettings := func(secret string) string {
		p := filepath.Join(t.TempDir(), "xdpsec.conf")
		conf := fmt.Sprintf("radius {\n  servers {\n    freeradius {\n      address = 127.0.0.1\n      secret = %s\n    }\n  }\n  timeout = 500ms\n  retransmit_tries = 2\n  accounting = yes\n  use_framed_ip = yes\n}\n", secret)
		if err := os.WriteFile(p, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	args := e.ours.args
	e.ours.args = append(args, "--settings", writeSettings(frInteropSecret))
	e.ours.restart(false)

	ca := iketest.NewCA(t, "xdpsec interop CA", nil)
	okey, ocert := endEntity(t, ca, "ecdsa", "sun.example.org", oursAddr)
	files := map[string][]byte{"x509/peer.pem": pemCert(ocert), "private/peer.pem": pemKey(t, okey)}
	e.ours.load(raRadiusGateway, files)
	clients := "connections {\n" + raClient("carol", "eap-mschapv2") + raClient("bob", "eap-mschapv2") +
		raClient("frank", "eap-mschapv2") + raClient("dave", "eap-md5") +
		raClient("erin", "eap-mschapv2") + raClient("grace", "eap-mschapv2") + "}\n" +
		`secrets {
  eap-carol {
    id = carol
    secret = "carol's password"
  }
  eap-bob {
    id = bob
    secret = "not bob's password"
  }
  eap-frank {
    id = frank
    secret = "frank's password"
  }
  eap-dave {
    id = dave
    secret = "dave's password"
  }
  eap-erin {
    id = erin
    secret = "erin's password"
  }
  eap-grace {
    id = grace
    secret = "grace's password"
  }
}
`
	e.charon.load(clients, map[string][]byte{"x509ca/ca.pem": pemCert(ca.Cert)})
	connect := func(user string) (string, error) {
		return e.charon.swanctlRun("--initiate", "--child", user, "--timeout", "20")
	}
	vipOf := func(user string) string {
		for _, sa := range e.charon.sas() {
			if sa.name == user {
				return strings.Join(sa.lists["local-vips"], ",")
			}
		}
		return ""
	}
	detail := func() string {
		b, _ := os.ReadFile(filepath.Join(frDir, "detail"))
		return string(b)
	}

	t.Run("mschapv2", func(t *testing.T) {
		if out, err := connect("carol"); err != nil {
			t.Fatalf("carol: %v\n%s", err, out)
		}
		if vip := vipOf("carol"); vip != "10.3.200.1" {
			t.Errorf("carol's virtual IP %q, want 10.3.200.1", vip)
		}
		waitLog(t, "xdpsec", e.ours.log, 5e9, "EAP method EAP_RADIUS succeeded, MSK established", "authentication of 'carol' with EAP successful")
		waitLog(t, "charon", e.charon.log, 5e9, "authentication of 'sun.example.org' with EAP successful")
	})

	t.Run("wrong-password", func(t *testing.T) {
		if out, err := connect("bob"); err == nil {
			t.Fatalf("bob with a wrong password was let in:\n%s", out)
		}
		waitLog(t, "xdpsec", e.ours.log, 5e9, "EAP method EAP_RADIUS failed for peer bob: rejected by freeradius")
		waitLog(t, "charon", e.charon.log, 5e9, "received AUTHENTICATION_FAILED notify error")
	})

	t.Run("framed-ip", func(t *testing.T) {
		if out, err := connect("frank"); err != nil {
			t.Fatalf("frank: %v\n%s", err, out)
		}
		if vip := vipOf("frank"); vip != "10.9.0.7" {
			t.Errorf("frank's virtual IP %q, want the Framed-IP-Address 10.9.0.7", vip)
		}
	})

	t.Run("md5", func(t *testing.T) {
		if out, err := connect("dave"); err != nil {
			t.Fatalf("dave: %v\n%s", err, out)
		}
		waitLog(t, "xdpsec", e.ours.log, 5e9, "EAP method EAP_RADIUS succeeded, no MSK established")
	})

	t.Run("accounting", func(t *testing.T) {
		e.charon.swanctl("--terminate", "--ike", "carol", "--timeout", "10")
		waitFor(t, 5*time.Second, "Start and Stop of carol in the detail file", func() error {
			d := detail()
			if !strings.Contains(d, "Acct-Status-Type = Start") || !strings.Contains(d, "Acct-Status-Type = Stop") || !strings.Contains(d, `User-Name = "carol"`) {
				return fmt.Errorf("detail file:\n%s", d)
			}
			// carol ended it (User-Request), and her Access-Accept's
			// Class comes back in her records (FreeRADIUS writes
			// octets in hex).
			if !strings.Contains(d, "Acct-Terminate-Cause = User-Request") || !strings.Contains(d, "Class = 0x67726f75703d7374616666") {
				return fmt.Errorf("no User-Request Stop with carol's Class in the detail file:\n%s", d)
			}
			return nil
		})
	})

	// A Framed-IP-Address inside the pool is leased there: erin's is
	// carol's offline lease, taken over; grace's is dave's, online, and
	// refused.
	t.Run("framed-ip-in-pool", func(t *testing.T) {
		if out, err := connect("erin"); err != nil {
			t.Fatalf("erin: %v\n%s", err, out)
		}
		if vip := vipOf("erin"); vip != "10.3.200.1" {
			t.Errorf("erin's virtual IP %q, want the Framed-IP-Address 10.3.200.1", vip)
		}
		out := e.ours.cli("list-pools", "--leases")
		if !regexp.MustCompile(`10\.3\.200\.1\s+online\s+'erin'`).MatchString(out) {
			t.Errorf("list-pools --leases: no online lease of erin on 10.3.200.1:\n%s", out)
		}
		if out, err := connect("grace"); err == nil || vipOf("grace") != "" {
			t.Errorf("grace given dave's address 10.3.200.2:\n%s", out)
		}
		waitLog(t, "xdpsec", e.ours.log, 5e9, `virtual IP 10.3.200.2 assigned by the EAP backend refused: pool "rw4": 10.3.200.2: address in use by "dave"`)
		// Both leave: the address is free again for carol below.
		e.charon.swanctl("--terminate", "--ike", "erin", "--timeout", "10")
		e.charon.swanctl("--terminate", "--ike", "grace", "--timeout", "10")
	})

	t.Run("wrong-secret", func(t *testing.T) {
		e.ours.args = append(args, "--settings", writeSettings("not-the-secret"))
		e.ours.restart(false)
		e.ours.load(raRadiusGateway, files)
		if out, err := connect("carol"); err == nil {
			t.Fatalf("carol let in with another shared secret:\n%s", out)
		}
		waitLog(t, "xdpsec", e.ours.log, 5e9, "RADIUS server 'freeradius' (127.0.0.1:1812) is not responding")
		waitLog(t, "charon", e.charon.log, 5e9, "received AUTHENTICATION_FAILED notify error")
	})

	t.Run("reload-settings", func(t *testing.T) {
		// The operator fixes the secret in xdpsec.conf and reloads.
		settings := e.ours.args[len(e.ours.args)-1]
		fixed, err := os.ReadFile(writeSettings(frInteropSecret))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(settings, fixed, 0o600); err != nil {
			t.Fatal(err)
		}
		e.ours.cli("reload")
		waitLog(t, "xdpsec", e.ours.log, 5e9, "reloaded "+settings)
		if out, err := connect("carol"); err != nil {
			t.Fatalf("carol after the reload: %v\n%s", err, out)
		}
	})
}
