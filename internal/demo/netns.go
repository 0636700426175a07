package demo

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime"
	"strings"

	"github.com/vishvananda/netns"
)

// namespace is a named network namespace the demo made.
type namespace struct {
	name   string
	handle netns.NsHandle
}

// newNamespace makes a namespace (visible to `ip netns`) named after
// role, with a random suffix so that runs side by side do not collide.
func newNamespace(role string) (*namespace, error) {
	name := fmt.Sprintf("xdpsec-demo-%s-%06x", role, rand.Uint32()&0xffffff)
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("ip netns add %s: %v: %s", name, err, strings.TrimSpace(string(out)))
	}
	h, err := netns.GetFromName(name)
	if err != nil {
		exec.Command("ip", "netns", "del", name).Run()
		return nil, fmt.Errorf("open netns %s: %w", name, err)
	}
	return &namespace{name: name, handle: h}, nil
}

// remove deletes the namespace: its interfaces, routes and XFRM state go
// with it.
func (n *namespace) remove() {
	n.handle.Close()
	exec.Command("ip", "netns", "del", n.name).Run()
}

// do runs fn on an OS thread inside the namespace. The thread stays
// locked, so Go discards it afterwards instead of reusing it elsewhere;
// sockets fn opens and processes it starts stay in the namespace.
func (n *namespace) do(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := netns.Set(n.handle); err != nil {
			errc <- fmt.Errorf("enter netns %s: %w", n.name, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// command runs a command in the namespace and returns its combined output.
// The command is started from a thread inside the namespace, not through
// `ip netns exec`, which would give it a /sys of its own (and so lose pins).
func (n *namespace) command(env []string, args ...string) (string, error) {
	var out []byte
	err := n.do(func() error {
		cmd := exec.Command(args[0], args[1:]...)
		if env != nil {
			cmd.Env = env
		}
		var err error
		out, err = cmd.CombinedOutput()
		return err
	})
	return string(out), err
}

// ip runs ip commands (one per line, without "ip") in one `ip -batch`.
func (n *namespace) ip(lines ...string) error {
	var out []byte
	err := n.do(func() error {
		cmd := exec.Command("ip", "-batch", "-")
		cmd.Stdin = strings.NewReader(strings.Join(lines, "\n") + "\n")
		var err error
		out, err = cmd.CombinedOutput()
		return err
	})
	if err != nil {
		return fmt.Errorf("in %s: ip: %v: %s", n.name, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// sysctl writes a sysctl of the namespace.
func (n *namespace) sysctl(key, val string) error {
	return n.do(func() error {
		return os.WriteFile("/proc/sys/"+strings.ReplaceAll(key, ".", "/"), []byte(val), 0)
	})
}
