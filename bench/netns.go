package bench

import (
	"fmt"
	"os/exec"
	"runtime"
	"strings"

	"github.com/vishvananda/netns"
)

// nsThread is an OS thread in a network namespace of its own that runs
// the functions it is given, one at a time. The namespace is unnamed: it
// goes away with the thread (and the sockets opened in it), so nothing is
// left behind if the process dies. Commands started from the thread run
// in its namespace.
type nsThread struct {
	work chan func()
}

// newNSThread starts a thread in a fresh network namespace with loopback up.
func newNSThread() (*nsThread, error) {
	t := &nsThread{work: make(chan func())}
	errc := make(chan error, 1)
	go func() {
		// Never unlocked: the runtime ends the thread with the goroutine
		// instead of reusing it in the wrong namespace.
		runtime.LockOSThread()
		ns, err := netns.New()
		if err != nil {
			errc <- fmt.Errorf("make a network namespace (needs root): %w", err)
			return
		}
		ns.Close()
		errc <- nil
		for fn := range t.work {
			fn()
		}
	}()
	if err := <-errc; err != nil {
		return nil, err
	}
	if err := t.run("ip", "link", "set", "lo", "up"); err != nil {
		t.close()
		return nil, err
	}
	return t, nil
}

// do runs fn on the thread and waits for it.
func (t *nsThread) do(fn func() error) error {
	errc := make(chan error, 1)
	t.work <- func() { errc <- fn() }
	return <-errc
}

// run runs a command in the thread's namespace.
func (t *nsThread) run(args ...string) error {
	return t.do(func() error {
		out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
		}
		return nil
	})
}

// close ends the thread, and with it the namespace once its sockets are
// closed.
func (t *nsThread) close() { close(t.work) }
