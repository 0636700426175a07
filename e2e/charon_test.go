package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

const charonBin = "/usr/lib/ipsec/charon"

// startCharon runs strongSwan's charon (Debian's, kernel-netlink) in site
// s's namespace with conf as its swanctl.conf, loaded through swanctl over
// a vici socket of its own; it stops when the test ends, and its log is
// shown if the test failed. It returns the log's path and the vici URI
// for swanctl.
func startCharon(t *testing.T, s *site, conf string) (logPath, vici string) {
	t.Helper()
	return startCharonWith(t, s, conf, charonOptions{})
}

// charonOptions are what differs between the charons of the tests.
type charonOptions struct {
	// plugins are loaded beside the site-to-site set ("eap-identity
	// eap-mschapv2" for a road warrior).
	plugins string
	// installRoutes lets charon route the remote selectors in its table
	// 220 (install_routes), as a road warrior does by default.
	installRoutes bool
	// files are written next to swanctl.conf before it is loaded, by
	// relative path ("x509ca/ca.pem").
	files map[string][]byte
	// settings are more lines of strongswan.conf's charon section.
	settings string
	// pid, if set, gets charon's process ID.
	pid *int
}

// startCharonWith is startCharon with options.
func startCharonWith(t *testing.T, s *site, conf string, o charonOptions) (logPath, vici string) {
	t.Helper()
	if _, err := os.Stat(charonBin); err != nil {
		t.Fatalf("charon is not installed on the host (strongswan-charon): %v", err)
	}
	dir := t.TempDir()
	vici = "unix://" + filepath.Join(dir, "charon.vici")
	logPath = filepath.Join(dir, "charon.log")
	ssConf := fmt.Sprintf(`charon {
   load = random nonce aes sha1 sha2 hmac kdf gcm curve25519 x509 pem pkcs1 pkcs8 pubkey openssl kernel-netlink socket-default vici updown %[3]s
   install_routes = %[4]s
%[5]s   plugins {
      vici {
         socket = %[1]s
      }
   }
   filelog {
      e2e {
         path = %[2]s
         default = 1
         ike = 1
         knl = 1
         time_format = %%b %%e %%T
      }
   }
}
`, vici, logPath, o.plugins, map[bool]string{false: "no", true: "yes"}[o.installRoutes], o.settings)
	// swanctl reads its credential directories next to swanctl.conf.
	for _, d := range []string{"x509", "x509ca", "x509ocsp", "x509aa", "x509ac", "x509crl", "pubkey", "private", "rsa", "ecdsa", "bliss", "pkcs8", "pkcs12"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	for name, b := range o.files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ssPath := filepath.Join(dir, "strongswan.conf")
	swPath := filepath.Join(dir, "swanctl.conf")
	for p, c := range map[string]string{ssPath: ssConf, swPath: conf} {
		if err := os.WriteFile(p, []byte(c), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// A mount namespace of its own whose /run is a fresh tmpfs: charon
	// refuses to start while charon.pid there names a live charon, and
	// a test may run one on each gateway.
	cmd := exec.Command("unshare", "--mount", "--propagation", "private",
		"sh", "-c", "mount -t tmpfs tmpfs /run && exec "+charonBin)
	cmd.Env = append(os.Environ(), "STRONGSWAN_CONF="+ssPath)
	out, err := os.Create(filepath.Join(dir, "charon.out"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	if err := s.Do(cmd.Start); err != nil {
		t.Fatalf("start charon: %v", err)
	}
	if o.pid != nil {
		*o.pid = cmd.Process.Pid // unshare and sh exec charon
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			o, _ := os.ReadFile(filepath.Join(dir, "charon.out"))
			t.Logf("site %s charon log:\n%s\n%s", s.name, b, o)
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err := run(s.Netns, "", "swanctl", "--load-all", "--noprompt", "--file", swPath, "--uri", vici)
		if err == nil {
			t.Logf("site %s: swanctl --load-all: %s", s.name, strings.TrimSpace(out))
			return logPath, vici
		}
		select {
		case err := <-exited:
			exited <- err // for the cleanup, which waits for it
			o, _ := os.ReadFile(filepath.Join(dir, "charon.out"))
			t.Fatalf("charon exited: %v\n%s", err, o)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("swanctl --load-all: %v\n%s", err, out)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// TestDaemonWithCharon: our daemon (with xdp_wan and tc_lan) on gateway
// A, strongSwan's charon on B, policy-based tunnel mode with a PSK: A
// initiates, LAN A pings LAN B and sends it 20 MB; A's list-sas, A's and
// B's kernel SAs and A's rx_seen agree.
func TestDaemonWithCharon(t *testing.T) {
	p := newPairWithLANs(t, ipv4)
	c := tunnelConf{}
	ga := newGateway(t, p.a, swanctlConf(p, p.a, c))
	ga.start()
	startCharon(t, p.b, swanctlConf(p, p.b, c))
	start := time.Now()
	ga.ok("initiate", "--child", "net", "--timeout", "30s")
	t.Logf("IKE_SA and CHILD_SA net with charon established in %v", time.Since(start).Round(time.Millisecond))
	if got := ping(t, p.a.lanH, p.a.lanA, p.b.lanA, 10, 5); got != 10 {
		t.Fatalf("ping LAN A → LAN B: %d of 10 answered", got)
	}
	noSA := ga.counter("no_sa")
	const size = 50 << 20 // the transfer, as between our daemons
	res := tcpTransfer(t, p.a.lanH, p.a.lanA, p.b.lanH, p.b.lanA, size, 10*time.Minute, nil)
	t.Logf("TCP LAN A → LAN B, ours → charon: %v", res)
	time.Sleep(500 * time.Millisecond)
	if d := ga.counter("no_sa") - noSA; d != 0 {
		t.Errorf("site A: xdp_wan dropped %d packets as no_sa", d)
	}
	ca := ga.child("net")
	stA, stB := stateStats(t, p.a.Netns), stateStats(t, p.b.Netns)
	in, out := stA[parseSPI(t, ca.SPIIn)], stA[parseSPI(t, ca.SPIOut)]
	t.Logf("site A: CHILD_SA net %s in %s (%d packets, rx_seen %d) out %s (%d packets, %d bytes); charon's kernel: in %d packets, %d bytes",
		ca.Proposal, ca.SPIIn, ca.PacketsIn, ca.RxSeenPackets, ca.SPIOut, ca.PacketsOut, ca.BytesOut, stB[parseSPI(t, ca.SPIOut)].packets, stB[parseSPI(t, ca.SPIOut)].bytes)
	if in.packets != ca.PacketsIn || out.packets != ca.PacketsOut || in.bytes != ca.BytesIn || out.bytes != ca.BytesOut {
		t.Errorf("site A: list-sas and the kernel's SAs disagree: %+v / %+v vs %+v", in, out, ca)
	}
	if ca.RxSeenPackets < ca.PacketsIn {
		t.Errorf("site A: rx_seen %d < %d authenticated", ca.RxSeenPackets, ca.PacketsIn)
	}
	if b := stB[parseSPI(t, ca.SPIOut)]; b.bytes < size {
		t.Errorf("charon's inbound SA %s decrypted %d bytes, want at least %d", ca.SPIOut, b.bytes, size)
	}
}
