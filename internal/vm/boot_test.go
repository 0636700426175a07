package vm_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/xdpsec/xdpsec/internal/vm"
)

// TestBoot boots the guest with a shell command and checks what comes back:
// the exit status, the kernel, the mounts, and that ESP SAs can be made.
func TestBoot(t *testing.T) {
	img := vm.RequireImage(t)
	work := t.TempDir()
	if err := os.WriteFile(work+"/hello", []byte("from the host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	script := `set -x
uname -r
cat ` + work + `/hello
echo from the guest >` + work + `/back
grep -E ' / | /sys/fs/bpf | /tmp ' /proc/mounts
ls /sys/kernel/btf | grep -E '^(xfrm_interface|esp4)$'
touch /etc/readonly-check 2>/dev/null && echo "root share is writable"
ip xfrm state add src 192.0.2.1 dst 192.0.2.2 proto esp spi 0x100 mode tunnel aead 'rfc4106(gcm(aes))' 0x0102030405060708090a0b0c0d0e0f1011121314 128 || exit 9
ip xfrm state count
exit 7`
	var console strings.Builder
	res, err := vm.Run(context.Background(), vm.Spec{
		Kernel:     img.Kernel,
		Initramfs:  img.Initramfs,
		Work:       work,
		Command:    []string{"/bin/sh", "-c", script},
		Timeout:    3 * time.Minute,
		Console:    &console,
		KernelArgs: strings.Fields(os.Getenv("XDPSEC_VM_KERNEL_ARGS")),
	})
	if err != nil {
		t.Fatalf("run: %v\n%s", err, console.String())
	}
	t.Logf("boot %v (guest uptime %ss), run %v", res.BootTime.Round(time.Millisecond), res.Uptime, res.Duration.Round(time.Millisecond))
	if res.ExitCode != 7 {
		t.Errorf("exit code %d, want 7\n%s", res.ExitCode, res.Output)
	}
	for _, want := range []string{img.Release, "from the host", " /sys/fs/bpf bpf ", "xfrm_interface", "esp4", "SAD count 1"} {
		if !strings.Contains(res.Output, want) {
			t.Errorf("guest output lacks %q", want)
		}
	}
	if strings.Contains(res.Output, "root share is writable") {
		t.Errorf("the guest could write to the host's root")
	}
	if b, err := os.ReadFile(work + "/back"); err != nil || string(b) != "from the guest\n" {
		t.Errorf("work share: read back %q, %v", b, err)
	}
	if t.Failed() {
		t.Logf("console:\n%s", res.Output)
	}
}

// TestTimeoutKillsQEMU gives a run less time than a boot takes.
func TestTimeoutKillsQEMU(t *testing.T) {
	img := vm.RequireImage(t)
	start := time.Now()
	res, err := vm.Run(context.Background(), vm.Spec{
		Kernel:    img.Kernel,
		Initramfs: img.Initramfs,
		Command:   []string{"sleep", "600"},
		Timeout:   2 * time.Second,
	})
	if !errors.Is(err, vm.ErrTimeout) {
		t.Fatalf("run: %v, want ErrTimeout", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("run returned %v after its 2s limit", d)
	}
	if res.ExitCode != -1 {
		t.Errorf("exit code %d after a timeout, want -1", res.ExitCode)
	}
}
