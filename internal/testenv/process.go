package testenv

import (
	"os/exec"
	"runtime"
	"syscall"
)

// StartKept starts cmd so that it is killed (SIGKILL) when the test
// process dies, and sends its Wait's result on the returned channel.
// Pdeathsig fires when the thread that started the process ends, and Go
// ends a thread whose goroutine exits locked, as nsutil's Do does: a
// child started from an ordinary thread could be killed the moment a
// later Do happened to run on that thread. So the child is started from a
// thread locked for as long as it runs.
func StartKept(cmd *exec.Cmd) (<-chan error, error) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	exited := make(chan error, 1)
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		exited <- cmd.Wait()
	}()
	return exited, <-started
}
