// Package nsutil makes named network namespaces and runs code and
// commands inside them: the one way the tests, the benchmarks and the demo
// build their topologies. It knows nothing of xdpsec.
package nsutil

import (
	"fmt"
	"math/rand/v2"
	"os/exec"
	"runtime"
	"strings"

	"github.com/vishvananda/netns"
)

// Namespace is a named network namespace (visible to `ip netns`).
type Namespace struct {
	Name   string
	Handle netns.NsHandle
}

// New makes a namespace named prefix plus a random suffix (so that runs
// side by side do not collide), with loopback up. It needs root.
func New(prefix string) (*Namespace, error) {
	name := fmt.Sprintf("%s-%06x", prefix, rand.Uint32()&0xffffff)
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("ip netns add %s (needs root): %w: %s", name, err, strings.TrimSpace(string(out)))
	}
	h, err := netns.GetFromName(name)
	if err != nil {
		exec.Command("ip", "netns", "del", name).Run()
		return nil, fmt.Errorf("open netns %s: %w", name, err)
	}
	n := &Namespace{Name: name, Handle: h}
	if out, err := n.Command(nil, "ip", "link", "set", "lo", "up"); err != nil {
		n.Close()
		return nil, fmt.Errorf("in %s: ip link set lo up: %w: %s", name, err, strings.TrimSpace(out))
	}
	return n, nil
}

// Do runs fn on a fresh OS thread inside the namespace and waits for it.
// The thread is never unlocked, so Go discards it afterwards instead of
// reusing a thread in the wrong namespace. Sockets fn opens, and
// processes it starts, stay in the namespace.
func (n *Namespace) Do(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := netns.Set(n.Handle); err != nil {
			errc <- fmt.Errorf("enter netns %s: %w", n.Name, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// Command runs a command inside the namespace (env nil: ours) and returns
// its combined output. It is started from a thread inside the namespace,
// not through `ip netns exec`, which would give it a /sys of its own (and
// so hide the BPF pins).
func (n *Namespace) Command(env []string, args ...string) (string, error) {
	var out []byte
	err := n.Do(func() error {
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

// Close deletes the namespace: its interfaces, routes and XFRM state go
// with it.
func (n *Namespace) Close() {
	n.Handle.Close()
	exec.Command("ip", "netns", "del", n.Name).Run()
}
