package radiustest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/xdpsec/xdpsec/internal/testenv"
)

// FreeRADIUSConfig is the configuration a test runs Debian's FreeRADIUS 3
// with: a radiusd.conf of its own in a directory of its own, one client
// (127.0.0.1), the eap module (EAP-MD5 and EAP-MSCHAPv2, the latter with
// MPPE keys from the mschap module), pap for User-Password requests
// (IKEv1 XAuth), users from a files module, and
// accounting records in a detail file.
type FreeRADIUSConfig struct {
	Secret string // the shared secret of 127.0.0.1
	// Users is the files module's users file.
	Users string
	// DefaultEAPType is the EAP method FreeRADIUS starts with: md5 or
	// mschapv2 (default).
	DefaultEAPType string
	// AuthPort and AcctPort: 1812 and 1813 if zero.
	AuthPort, AcctPort uint16
	// Netns, when set, is the named network namespace (ip netns) it runs
	// in.
	Netns string
}

// FreeRADIUS is a running FreeRADIUS.
type FreeRADIUS struct {
	Dir                string // its configuration directory, the detail file in it
	AuthPort, AcctPort uint16
	cmd                *exec.Cmd
	out                *syncBuffer
	exited             chan struct{}
}

// StartFreeRADIUS writes the configuration into dir and starts
// FreeRADIUS in the foreground (-X), from a thread kept for its lifetime
// (testenv.StartKept); it returns once FreeRADIUS is ready for requests.
// Stop ends it.
func StartFreeRADIUS(dir string, cfg FreeRADIUSConfig) (*FreeRADIUS, error) {
	if cfg.AuthPort == 0 {
		cfg.AuthPort = 1812
	}
	if cfg.AcctPort == 0 {
		cfg.AcctPort = 1813
	}
	if cfg.DefaultEAPType == "" {
		cfg.DefaultEAPType = "mschapv2"
	}
	for _, d := range []string{"log", "run"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			return nil, err
		}
	}
	dict, err := os.ReadFile("/etc/freeradius/3.0/dictionary")
	if err != nil {
		dict = []byte("$INCLUDE /usr/share/freeradius/dictionary\n")
	}
	for name, content := range map[string]string{
		"radiusd.conf": fmt.Sprintf(freeRADIUSConf, dir, cfg.AuthPort, cfg.AcctPort, cfg.Secret, cfg.DefaultEAPType),
		"users":        cfg.Users,
		"dictionary":   string(dict),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			return nil, err
		}
	}
	f := &FreeRADIUS{Dir: dir, AuthPort: cfg.AuthPort, AcctPort: cfg.AcctPort, out: &syncBuffer{}, exited: make(chan struct{})}
	args := []string{"freeradius", "-X", "-d", dir}
	if cfg.Netns != "" {
		args = append([]string{"nsenter", "--net=/run/netns/" + cfg.Netns}, args...)
	}
	f.cmd = exec.Command(args[0], args[1:]...)
	f.cmd.Stdout, f.cmd.Stderr = f.out, f.out
	waited, err := testenv.StartKept(f.cmd)
	if err != nil {
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
			return nil, fmt.Errorf("freeradius exited: %v\n%s", f.cmd.ProcessState, f.out)
		case <-deadline:
			f.Stop()
			return nil, fmt.Errorf("freeradius not ready after 20s:\n%s", f.out)
		case <-time.After(20 * time.Millisecond):
		}
	}
	return f, nil
}

// Stop ends FreeRADIUS: SIGTERM, SIGKILL after 5 seconds.
func (f *FreeRADIUS) Stop() {
	f.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-f.exited:
	case <-time.After(5 * time.Second):
		f.cmd.Process.Kill()
		<-f.exited
	}
}

// Output is what FreeRADIUS printed so far.
func (f *FreeRADIUS) Output() string { return f.out.String() }

// Detail is the accounting detail file so far.
func (f *FreeRADIUS) Detail() string {
	b, _ := os.ReadFile(filepath.Join(f.Dir, "detail"))
	return string(b)
}

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

// freeRADIUSConf is a self-contained radiusd.conf: %[1]s the directory,
// %[2]d and %[3]d the ports, %[4]s the shared secret, %[5]s the default
// EAP type. reject_delay 0 keeps rejects fast.
const freeRADIUSConf = `prefix = /usr
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
	secret = "%[4]s"
	require_message_authenticator = yes
}
modules {
	eap {
		default_eap_type = %[5]s
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
	pap {
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
		mschap
		eap
		pap
	}
	authenticate {
		eap
		Auth-Type MS-CHAP {
			mschap
		}
		Auth-Type PAP {
			pap
		}
	}
	accounting {
		detail
	}
	post-auth {
		# FreeRADIUS 3.2.1 signs only EAP replies; the client wants
		# Message-Authenticator in every Access-Accept (Blast-RADIUS),
		# PAP's (IKEv1 XAuth) too: present in the reply list, it is
		# computed on sending.
		update reply {
			Message-Authenticator := 0x00
		}
	}
}
`
