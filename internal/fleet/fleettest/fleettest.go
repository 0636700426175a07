// Package fleettest starts Debian's etcd server (/usr/bin/etcd, package
// etcd-server) on loopback for the fleet's tests: one single-member
// cluster in a temporary directory per call.
package fleettest

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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

// Start starts etcd for the test and stops it when the test ends. Without
// etcd the test skips with the reason, or fails when XDPSEC_REQUIRE_ETCD
// is set.
func Start(t testing.TB) (endpoint string) {
	t.Helper()
	if _, err := os.Stat(Binary()); err != nil {
		msg := fmt.Sprintf("etcd server %s missing (apt-get install etcd-server, or make deps): %v", Binary(), err)
		if Required() {
			t.Fatal(msg)
		}
		t.Skip("skipped: " + msg)
	}
	dir := t.TempDir()
	endpoint, stop, err := StartServer(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return endpoint
}

// StartServer starts etcd with its data (and its log, etcd.log) in dir,
// listening on free loopback ports, and waits until it answers. stop ends
// it (SIGTERM, then SIGKILL after 5 s) and may be called more than once.
func StartServer(dir string) (endpoint string, stop func(), err error) {
	ports, err := freePorts(2)
	if err != nil {
		return "", nil, err
	}
	client := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	peer := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	logPath := filepath.Join(dir, "etcd.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return "", nil, fmt.Errorf("etcd log: %w", err)
	}
	cmd := exec.Command(Binary(),
		"--name", "fleettest",
		"--data-dir", filepath.Join(dir, "etcd"),
		"--listen-client-urls", client,
		"--advertise-client-urls", client,
		"--listen-peer-urls", peer,
		"--initial-advertise-peer-urls", peer,
		"--initial-cluster", "fleettest="+peer,
		"--initial-cluster-state", "new",
	)
	cmd.Stdout, cmd.Stderr = logf, logf
	// etcd goes with the test process even when that one is killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return "", nil, fmt.Errorf("start %s: %w", Binary(), err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); logf.Close(); close(exited) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	hc := &http.Client{Timeout: time.Second}
	for {
		resp, err := hc.Get(client + "/health")
		if err == nil {
			var b [256]byte
			n, _ := resp.Body.Read(b[:])
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && strings.Contains(string(b[:n]), `"true"`) {
				return client, stop, nil
			}
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
