package demo

import (
	"fmt"
	"os"
	"os/exec"
	"strings"

	"github.com/xdpsec/xdpsec/internal/nsutil"
)

// namespace is a named network namespace the demo made.
type namespace struct{ *nsutil.Namespace }

// newNamespace makes a namespace (visible to `ip netns`) named after
// role, with a random suffix so that runs side by side do not collide.
func newNamespace(role string) (*namespace, error) {
	ns, err := nsutil.New("xdpsec-demo-" + role)
	if err != nil {
		return nil, err
	}
	return &namespace{ns}, nil
}

// ip runs ip commands (one per line, without "ip") in one `ip -batch`.
func (n *namespace) ip(lines ...string) error {
	var out []byte
	err := n.Do(func() error {
		cmd := exec.Command("ip", "-batch", "-")
		cmd.Stdin = strings.NewReader(strings.Join(lines, "\n") + "\n")
		var err error
		out, err = cmd.CombinedOutput()
		return err
	})
	if err != nil {
		return fmt.Errorf("in %s: ip: %v: %s", n.Name, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// sysctl writes a sysctl of the namespace.
func (n *namespace) sysctl(key, val string) error {
	return n.Do(func() error {
		return os.WriteFile("/proc/sys/"+strings.ReplaceAll(key, ".", "/"), []byte(val), 0)
	})
}
