package fleet

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xdpsec/xdpsec/internal/testenv"
)

// The election tests run one member in a child process (this test binary
// again, with XDPSEC_FLEET_CHILD set) so that it can be killed or paused
// like a gateway.
func TestMain(m *testing.M) {
	if os.Getenv("XDPSEC_FLEET_CHILD") != "" {
		os.Exit(childMain())
	}
	os.Exit(m.Run())
}

// childMain joins as XDPSEC_FLEET_NAME, campaigns for XDPSEC_FLEET_SHARED,
// says LEADER, then answers commands on stdin: SAVE (a record naming it:
// "SAVE ok", "SAVE stale" or "SAVE error ...") and LOST ("LOST yes" when
// Lost is closed within a few TTLs, "LOST no").
func childMain() int {
	name, shared := os.Getenv("XDPSEC_FLEET_NAME"), os.Getenv("XDPSEC_FLEET_SHARED")
	ttl := 2 * time.Second
	ctx := context.Background()
	m, err := Join(ctx, Config{Endpoints: []string{os.Getenv("XDPSEC_FLEET_ENDPOINT")}, Member: name, Key: testKey, TTL: ttl})
	if err != nil {
		fmt.Println("ERROR", err)
		return 1
	}
	l, err := m.Campaign(ctx, shared)
	if err != nil {
		fmt.Println("ERROR", err)
		return 1
	}
	fmt.Println("LEADER")
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		switch sc.Text() {
		case "SAVE":
			sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			err := l.Save(sctx, map[string][]byte{"owner": []byte(name)}, nil)
			cancel()
			switch {
			case errors.Is(err, ErrStale):
				fmt.Println("SAVE stale")
			case err != nil:
				fmt.Println("SAVE error", err)
			default:
				fmt.Println("SAVE ok")
			}
		case "LOST":
			select {
			case <-l.Lost():
				fmt.Println("LOST yes")
			case <-time.After(3 * ttl):
				fmt.Println("LOST no")
			}
		}
	}
	return 0
}

// child is a member running in another process.
type child struct {
	t     *testing.T
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string
}

func startChild(t *testing.T, endpoint, name, shared string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "XDPSEC_FLEET_CHILD=1", "XDPSEC_FLEET_ENDPOINT="+endpoint,
		"XDPSEC_FLEET_NAME="+name, "XDPSEC_FLEET_SHARED="+shared)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	// Killed with the test process, from a thread that lives as long.
	exited, err := testenv.StartKept(cmd)
	if err != nil {
		t.Fatal(err)
	}
	c := &child{t: t, cmd: cmd, stdin: stdin, lines: make(chan string, 16)}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
		close(c.lines)
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGCONT)
		cmd.Process.Kill()
		<-exited
	})
	return c
}

// expect waits for the child's next line and checks its start.
func (c *child) expect(want string, timeout time.Duration) string {
	c.t.Helper()
	select {
	case line, ok := <-c.lines:
		if !ok {
			c.t.Fatalf("child exited; want %q", want)
		}
		if !strings.HasPrefix(line, want) {
			c.t.Fatalf("child said %q, want %q", line, want)
		}
		return line
	case <-time.After(timeout):
		c.t.Fatalf("child did not say %q within %v", want, timeout)
	}
	return ""
}

func (c *child) say(cmd string) {
	c.t.Helper()
	if _, err := fmt.Fprintln(c.stdin, cmd); err != nil {
		c.t.Fatal(err)
	}
}
