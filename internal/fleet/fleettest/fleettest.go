// Package fleettest starts Debian's etcd server (/usr/bin/etcd, package
// etcd-server) for the fleet's tests: one single-member cluster in a
// temporary directory per call, on loopback or on an address in a test's
// network namespace.
package fleettest

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Binary is the etcd server the tests run; XDPSEC_ETCD overrides it.
func Binary() string {
	if b := os.Getenv("XDPSEC_ETCD"); b != "" {
		return b
	}
	return "/usr/bin/etcd"
}

// Required says whether a missing etcd fails the tests instead of
// skipping them (XDPSEC_REQUIRE_ETCD set).
func Required() bool { return os.Getenv("XDPSEC_REQUIRE_ETCD") != "" }

// Start starts etcd on loopback for the test and stops it when the test
// ends. Without etcd the test skips with the reason, or fails when
// XDPSEC_REQUIRE_ETCD is set.
func Start(t testing.TB) (endpoint string) {
	t.Helper()
	return StartWith(t, Options{})
}

// Netns runs a function in a network namespace (testenv.Netns does).
type Netns interface {
	Do(func() error) error
}

// Options say where etcd listens.
type Options struct {
	// Dir holds its data and its log (etcd.log); default: a temporary
	// directory of the test (StartWith) or required (StartServerWith).
	Dir string
	// Netns is the network namespace etcd runs in; nil: ours.
	Netns Netns
	// Host is the address its clients reach it at; default 127.0.0.1.
	Host string
	// Port is its client port; default a free one.
	Port int
	// TLS makes etcd serve https with a certificate of a CA made for it,
	// and ask clients for a certificate of that CA (--client-cert-auth):
	// the files are in Dir (TLSFiles).
	TLS bool
}

// StartWith starts etcd as o says for the test and stops it when the
// test ends, skipping or failing like Start when etcd is missing.
func StartWith(t testing.TB, o Options) (endpoint string) {
	t.Helper()
	if _, err := os.Stat(Binary()); err != nil {
		msg := fmt.Sprintf("etcd server %s missing (apt-get install etcd-server, or make deps): %v", Binary(), err)
		if Required() {
			t.Fatal(msg)
		}
		t.Skip("skipped: " + msg)
	}
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	endpoint, stop, err := StartServerWith(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("etcd log (end):\n%s", tail(filepath.Join(o.Dir, "etcd.log")))
		}
	})
	return endpoint
}

// StartServer starts etcd on loopback with its data (and its log,
// etcd.log) in dir and waits until it answers. stop ends it (SIGTERM,
// then SIGKILL after 5 s) and may be called more than once.
func StartServer(dir string) (endpoint string, stop func(), err error) {
	return StartServerWith(Options{Dir: dir})
}

// StartServerWith is StartServer as o says (o.Dir required).
func StartServerWith(o Options) (endpoint string, stop func(), err error) {
	if o.Dir == "" {
		return "", nil, errors.New("fleettest: no directory for etcd's data")
	}
	// in runs fn on a thread of its own (in the namespace): Pdeathsig
	// fires when the thread that started etcd ends, so that thread stays
	// until etcd exits.
	in := func(fn func() error) error {
		errc := make(chan error, 1)
		go func() {
			runtime.LockOSThread() // never unlocked: Go ends the thread after
			errc <- fn()
		}()
		return <-errc
	}
	if o.Netns != nil {
		in = o.Netns.Do
	}
	if o.Host == "" {
		o.Host = "127.0.0.1"
	}
	var ports []int
	if err := in(func() (err error) { ports, err = freePorts(2); return err }); err != nil {
		return "", nil, err
	}
	if o.Port != 0 {
		ports[0] = o.Port
	}
	scheme := "http://"
	var tc *tls.Config
	var tlsArgs []string
	if o.TLS {
		var err error
		if tc, err = makeTLS(o.Dir, "127.0.0.1", o.Host); err != nil {
			return "", nil, fmt.Errorf("fleettest: %w", err)
		}
		scheme = "https://"
		ca, _, _ := TLSFiles(o.Dir)
		tlsArgs = []string{"--cert-file", filepath.Join(o.Dir, "server.pem"), "--key-file", filepath.Join(o.Dir, "server-key.pem"),
			"--client-cert-auth", "--trusted-ca-file", ca}
	}
	client := scheme + net.JoinHostPort(o.Host, strconv.Itoa(ports[0]))
	peer := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	logPath := filepath.Join(o.Dir, "etcd.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return "", nil, fmt.Errorf("etcd log: %w", err)
	}
	cmd := exec.Command(Binary(),
		"--name", "fleettest",
		"--data-dir", filepath.Join(o.Dir, "etcd"),
		"--listen-client-urls", client,
		"--advertise-client-urls", client,
		"--listen-peer-urls", peer,
		"--initial-advertise-peer-urls", peer,
		"--initial-cluster", "fleettest="+peer,
		"--initial-cluster-state", "new",
	)
	cmd.Args = append(cmd.Args, tlsArgs...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// etcd goes with the test process even when that one is killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	started := make(chan error, 1)
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		defer logf.Close()
		in(func() error {
			if err := cmd.Start(); err != nil {
				started <- err
				return err
			}
			started <- nil
			return cmd.Wait()
		})
	}()
	if err := <-started; err != nil {
		return "", nil, fmt.Errorf("start %s: %w", Binary(), err)
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(5 * time.Second):
				cmd.Process.Kill()
				<-exited
			}
		})
	}
	deadline := time.Now().Add(20 * time.Second)
	check := func(fn func() error) error { return fn() }
	if o.Netns != nil {
		check = o.Netns.Do
	}
	for {
		healthy := false
		check(func() error { healthy = answers(client, tc); return nil })
		if healthy {
			return client, stop, nil
		}
		select {
		case <-exited:
			return "", nil, fmt.Errorf("etcd exited at start: %s", tail(logPath))
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			stop()
			return "", nil, fmt.Errorf("etcd did not answer on %s within 20s: %s", client, tail(logPath))
		}
	}
}

// answers says whether etcd at client says it is healthy. The request is
// made on the calling goroutine (net/http's transport dials on goroutines
// of its own, which would leave a namespace the caller is in).
func answers(client string, tc *tls.Config) bool {
	u, err := url.Parse(client)
	if err != nil {
		return false
	}
	c, err := net.DialTimeout("tcp", u.Host, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	if tc != nil {
		tc = tc.Clone()
		tc.ServerName = u.Hostname()
		c = tls.Client(c, tc)
	}
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := fmt.Fprintf(c, "GET /health HTTP/1.0\r\nHost: %s\r\n\r\n", u.Host); err != nil {
		return false
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
	return resp.StatusCode == http.StatusOK && strings.Contains(string(b), `"health":"true"`)
}

func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	if len(b) == 0 {
		return errors.New("empty log").Error()
	}
	return string(b)
}
