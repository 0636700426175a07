package vm

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Spec says what to boot and what to run in it.
type Spec struct {
	QEMU      string // qemu-system-x86_64 binary; found on PATH if ""
	Kernel    string // the guest kernel (bzImage)
	Initramfs string // built by Prepare
	// Share is the host directory the guest sees, read-only, as the root
	// it runs Command in; "/" if "". The guest puts tmpfs on /tmp, /run,
	// /var/tmp and /root, and mounts proc, sysfs, devtmpfs and bpffs.
	Share string
	// Work, if set, is a host directory shared read-write and mounted at
	// the same path in the guest: the place for test binaries and results.
	// Under /tmp it still works: the guest mounts it on top of its tmpfs.
	Work    string
	Command []string      // argv, run by /bin/sh of Share
	Dir     string        // working directory in the guest; "/" if ""
	Env     []string      // added to the guest command's environment
	Timeout time.Duration // the whole run, boot included; DefaultTimeout if 0
	CPUs    int           // 2 if 0
	MemMB   int           // 2048 if 0
	// Console, if set, gets the serial console as it arrives (boot
	// messages and the command's output).
	Console io.Writer
	// KernelArgs are added to the kernel command line.
	KernelArgs []string
}

// DefaultTimeout bounds a run whose Spec gives none.
const DefaultTimeout = 10 * time.Minute

// GuestEnv is set to 1 in the guest command's environment, so a test binary
// can tell it runs in the guest.
const GuestEnv = "XDPSEC_VM_GUEST"

// Result is what a run gave.
type Result struct {
	Output   string        // serial console, carriage returns removed
	ExitCode int           // the guest command's exit status
	BootTime time.Duration // QEMU start to the command's start
	Uptime   string        // the guest's /proc/uptime seconds when the command started
	Duration time.Duration // QEMU start to its exit
	Boots    int           // how many times the guest was booted (Run)
}

// Errors of Run. Each comes with the Result so far: the console output
// says what happened.
var (
	ErrTimeout = errors.New("VM run timed out; QEMU killed")
	ErrNoExit  = errors.New("QEMU exited without the guest command's exit status")
)

// powerOffGrace is how long a guest has to power off after its exit marker.
var powerOffGrace = 15 * time.Second

// Kernel command lines are at most 2048 bytes on x86 (COMMAND_LINE_SIZE).
const maxCmdline = 2048

// Run boots the kernel with the initramfs in QEMU (TCG, no network device),
// runs the command and returns its output and exit status. QEMU is killed
// when ctx ends or the timeout passes (the error is then ErrTimeout) and
// on every other way out.
//
// A guest that dies before its command starts (QEMU exits, no start
// marker) failed to boot, which is no result of the command: Run boots it
// again, up to bootAttempts in all, and says so on the console. Under TCG
// with two vCPUs a 6.12 kernel has oopsed while patching its own code 3 s
// into boot (int3 in sched_clock_idle_wakeup_event, CI of 2026-12-08).
// Once the command has started, nothing is retried; a timeout is not
// either. The Result is the last boot's.
func Run(ctx context.Context, s Spec) (*Result, error) {
	for boot := 1; ; boot++ {
		res, err := runOnce(ctx, s)
		if res != nil {
			res.Boots = boot
		}
		if errors.Is(err, ErrNoExit) && res != nil && res.Uptime == "" && boot < bootAttempts {
			if s.Console != nil {
				fmt.Fprintf(s.Console, "vm: the guest died before its command started (%v); booting it again\n", err)
			}
			continue
		}
		return res, err
	}
}

// bootAttempts bounds the boots of one Run (see Run).
const bootAttempts = 2

// runOnce is one boot of Run.
func runOnce(ctx context.Context, s Spec) (*Result, error) {
	if s.Timeout == 0 {
		s.Timeout = DefaultTimeout
	}
	if s.QEMU == "" {
		p, err := exec.LookPath("qemu-system-x86_64")
		if err != nil {
			return nil, fmt.Errorf("%w: %v (install qemu-system-x86)", ErrUnavailable, err)
		}
		s.QEMU = p
	}
	args, nonce, err := qemuArgs(s)
	if err != nil {
		return nil, err
	}

	ctx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	cmd := exec.Command(s.QEMU, args...)
	cmd.Stdin = nil // /dev/null: nothing is typed at the console
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	// Its own process group (killed whole on every way out of Run), and
	// SIGKILL if this process dies first: a test binary killed by its
	// -timeout panic leaves no QEMU behind. (Pdeathsig follows the thread
	// that started QEMU; Go ends threads only under LockOSThread, which
	// Run does not use.)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start QEMU: %w", err)
	}
	kill := func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	defer kill()

	res := &Result{ExitCode: -1}
	c := &console{nonce: nonce, out: s.Console, start: start, res: res,
		eof: make(chan struct{}), exited: make(chan struct{})}
	readDone := make(chan error, 1)
	go func() { readDone <- c.read(stdout) }()
	waitDone := make(chan error, 1)
	go func() {
		// Wait only after the console is read to its end (os/exec rule).
		<-c.eof
		waitDone <- cmd.Wait()
	}()

	var runErr error
	select {
	case <-c.exited:
		// The guest powers off right after the marker; give it a moment.
		select {
		case <-waitDone:
		case <-time.After(powerOffGrace):
			kill()
			<-waitDone
		}
	case err := <-waitDone:
		if res.ExitCode < 0 {
			runErr = fmt.Errorf("%w (%v): %s", ErrNoExit, err, strings.TrimSpace(stderr.String()))
		}
	case <-ctx.Done():
		kill()
		<-waitDone
		runErr = fmt.Errorf("%w after %v", ErrTimeout, time.Since(start).Round(time.Millisecond))
		if ctx.Err() == context.Canceled {
			runErr = ctx.Err()
		}
	}
	<-readDone
	res.Duration = time.Since(start)
	res.Output = c.output()
	if runErr == nil && res.ExitCode < 0 {
		runErr = fmt.Errorf("%w: %s", ErrNoExit, strings.TrimSpace(stderr.String()))
	}
	return res, runErr
}

// qemuArgs builds QEMU's command line and the run's marker nonce.
func qemuArgs(s Spec) ([]string, string, error) {
	if s.Kernel == "" || s.Initramfs == "" {
		return nil, "", errors.New("vm: Spec needs Kernel and Initramfs")
	}
	if len(s.Command) == 0 {
		return nil, "", errors.New("vm: Spec needs a Command")
	}
	share := s.Share
	if share == "" {
		share = "/"
	}
	cpus, mem := s.CPUs, s.MemMB
	if cpus == 0 {
		cpus = 2
	}
	if mem == 0 {
		mem = 2048
	}
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, "", err
	}
	nonce := hex.EncodeToString(b[:])

	cmdline := []string{
		"console=ttyS0", "quiet", "panic=-1", "oops=panic",
		// The guest's work is functional tests, not a side-channel lab;
		// mitigations cost dearly under TCG.
		"mitigations=off",
		"xdpsec.nonce=" + nonce,
		"xdpsec.run=" + base64.StdEncoding.EncodeToString([]byte(script(s))),
	}
	if s.Work != "" {
		abs, err := filepath.Abs(s.Work)
		if err != nil {
			return nil, "", err
		}
		if strings.ContainsAny(abs, " \t\n\"'") {
			return nil, "", fmt.Errorf("vm: work directory %q: no spaces or quotes please", abs)
		}
		s.Work = abs
		cmdline = append(cmdline, "xdpsec.work="+abs)
	}
	cmdline = append(cmdline, s.KernelArgs...)
	append_ := strings.Join(cmdline, " ")
	if len(append_) >= maxCmdline {
		return nil, "", fmt.Errorf("vm: kernel command line is %d bytes, the limit is %d: shorten the command or its environment", len(append_), maxCmdline)
	}
	args := []string{
		"-accel", "tcg",
		"-cpu", "max",
		"-smp", strconv.Itoa(cpus),
		"-m", strconv.Itoa(mem) + "M",
		"-nographic", "-nodefaults", "-no-user-config",
		"-serial", "stdio",
		"-no-reboot",
		"-nic", "none",
		"-kernel", s.Kernel,
		"-initrd", s.Initramfs,
		"-append", append_,
		"-fsdev", "local,id=hostroot,path=" + share + ",security_model=none,readonly=on,multidevs=remap",
		"-device", "virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot",
	}
	if s.Work != "" {
		args = append(args,
			"-fsdev", "local,id=work,path="+s.Work+",security_model=none,multidevs=remap",
			"-device", "virtio-9p-pci,fsdev=work,mount_tag=work")
	}
	return args, nonce, nil
}

// script is the shell script the guest runs: environment, directory, and
// the command with every argument quoted.
func script(s Spec) string {
	var b strings.Builder
	b.WriteString("export " + GuestEnv + "=1 HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n")
	for _, e := range s.Env {
		k, v, _ := strings.Cut(e, "=")
		fmt.Fprintf(&b, "export %s=%s\n", k, shellQuote(v))
	}
	dir := s.Dir
	if dir == "" {
		dir = "/"
	}
	fmt.Fprintf(&b, "cd %s || exit 126\n", shellQuote(dir))
	b.WriteString("exec")
	for _, a := range s.Command {
		b.WriteString(" " + shellQuote(a))
	}
	b.WriteString("\n")
	return b.String()
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// console reads the serial console, keeps it, passes it on, and picks out
// the marker lines.
type console struct {
	nonce  string
	out    io.Writer
	start  time.Time
	res    *Result
	eof    chan struct{}
	exited chan struct{} // closed at the exit marker

	mu  sync.Mutex
	buf bytes.Buffer
}

func (c *console) read(r io.Reader) error {
	defer close(c.eof)
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadString('\n')
		if line != "" {
			c.line(line)
		}
		if err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
	}
}

// terminalEscapes are the screen-clearing sequences SeaBIOS and the
// kernel's early console send; they only garble logs.
var terminalEscapes = regexp.MustCompile(`\x1b(\[[0-9;?]*[A-Za-z]|c)`)

func (c *console) line(line string) {
	line = terminalEscapes.ReplaceAllString(strings.ReplaceAll(line, "\r", ""), "")
	c.mu.Lock()
	c.buf.WriteString(line)
	c.mu.Unlock()
	if c.out != nil {
		c.out.Write([]byte(line))
	}
	if v, ok := c.marker(line, "XDPSEC-VM-START"); ok {
		c.res.BootTime = time.Since(c.start)
		c.res.Uptime = v
	}
	if v, ok := c.marker(line, "XDPSEC-VM-EXIT"); ok && c.res.ExitCode < 0 {
		if n, err := strconv.Atoi(v); err == nil {
			c.res.ExitCode = n
			close(c.exited)
		}
	}
}

// marker finds "NAME <nonce> VALUE" in a line. It need not start the line:
// kernel messages may land in front of it.
func (c *console) marker(line, name string) (string, bool) {
	i := strings.Index(line, name+" "+c.nonce+" ")
	if i < 0 {
		return "", false
	}
	f := strings.Fields(line[i:])
	if len(f) < 3 {
		return "", false
	}
	return f[2], true
}

func (c *console) output() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}
