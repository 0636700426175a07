package bench

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// charon 6 as a responder: strongSwan 6's charon from the Debian trixie
// chroot that `make sw6` makes (interop/strongswan6.sh, with strongSwan's
// ml plugin for ML-KEM built beside Debian's plugins), run as the interop
// tests run it (interop/sw6_test.go): in the responder namespace, in a
// mount namespace of its own, chrooted, with a tmpfs over the chroot's
// /run holding the run's directory, the host's /dev (/dev/net/tun for
// kernel-libipsec) and a /proc and /sys of the namespace's. The shared
// chroot is never written to. swanctl is the chroot's, run in charon's
// mount namespace and root.

// Charon6 is strongSwan 6's charon from the chroot, with kernel-libipsec
// and the settings of Charon.
const Charon6 ResponderKind = "charon6"

// charon6Seen is where charon 6 sees the run's directory.
const charon6Seen = "/run/xdpsec-bench"

// charon6MLPlugin is strongSwan's ML-KEM plugin in the chroot (Debian's
// build leaves it out; strongswan6.sh adds it).
const charon6MLPlugin = "/usr/lib/ipsec/plugins/libstrongswan-ml.so"

// charon6Plugins are Charon's plugins, drbg (strongSwan 6 draws its key
// exchanges' random numbers from it) and ml (ML-KEM) where the chroot has it.
func charon6Plugins(root string) string {
	if _, err := os.Stat(filepath.Join(root, charon6MLPlugin)); err == nil {
		return benchCharonPlugins + " drbg ml"
	}
	return benchCharonPlugins + " drbg"
}

// requireCharon6 says why charon 6 cannot run, or nil.
func requireCharon6() error {
	root := SW6Root()
	for _, p := range []string{CharonPath, SwanctlPath} {
		if _, err := os.Stat(filepath.Join(root, p)); err != nil {
			return fmt.Errorf("charon 6 needs strongSwan 6 in a Debian trixie chroot at %s (`make sw6` makes it, as root; %s=DIR names another): %w", root, SW6RootEnv, err)
		}
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		return fmt.Errorf("charon 6 (kernel-libipsec) needs /dev/net/tun: %w", err)
	}
	return nil
}

// charon6MLKEM says why charon 6 has no ML-KEM, or nil.
func charon6MLKEM() error {
	if _, err := os.Stat(filepath.Join(SW6Root(), charon6MLPlugin)); err != nil {
		return fmt.Errorf("charon 6 has no ML-KEM: the chroot lacks the ml plugin that `make sw6` builds: %w", err)
	}
	return nil
}

// startCharon6 starts charon 6 in the responder namespace with the
// benchmark's strongswan.conf and Charon's plugins, and loads the
// benchmark's swanctl.conf.
func startCharon6(ns *namedNetns, s respSettings) (*responder, error) {
	root := SW6Root()
	dir, err := os.MkdirTemp("", "xdpsec-bench-charon6")
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*responder, error) { os.RemoveAll(dir); return nil, err }
	swanDir := filepath.Join(dir, "swanctl")
	for _, sub := range []string{"", "x509", "x509ca", "private", "x509ocsp", "x509aa", "x509ac", "x509crl", "pubkey", "rsa", "ecdsa", "bliss", "pkcs8", "pkcs12"} {
		if err := os.MkdirAll(filepath.Join(swanDir, sub), 0o700); err != nil {
			return fail(err)
		}
	}
	if err := os.WriteFile(filepath.Join(swanDir, "swanctl.conf"), []byte(s.swanctlConf()), 0o600); err != nil {
		return fail(err)
	}
	if err := s.writeFiles(swanDir); err != nil {
		return fail(err)
	}
	plugins := charon6Plugins(root)
	if s.plugins != "" {
		plugins += " " + s.plugins
	}
	uri := "unix://" + filepath.Join(charon6Seen, "vici.sock")
	conf := fmt.Appendf(nil, benchStrongswanConf, plugins, s.charonDoS(), filepath.Join(charon6Seen, "charon.log"), uri, "")
	if err := os.WriteFile(filepath.Join(dir, "strongswan.conf"), conf, 0o600); err != nil {
		return fail(err)
	}
	const script = `set -e
mount -t tmpfs tmpfs "$1/run"
mkdir "$1$3"
mount --bind "$2" "$1$3"
mount --bind /dev "$1/dev"
mount -t proc proc "$1/proc"
mount -t sysfs sysfs "$1/sys"
exec chroot "$1" ` + CharonPath
	r := &responder{name: string(Charon6), dir: dir, exe: CharonPath}
	// nsenter, unshare, sh and chroot exec one into the other: the
	// command's process is charon's.
	r.cmd = exec.Command("nsenter", "--net="+ns.path(), "unshare", "--mount", "--propagation", "private",
		"sh", "-c", script, "sh", root, dir, charon6Seen)
	r.cmd.Env = append(os.Environ(), "STRONGSWAN_CONF="+filepath.Join(charon6Seen, "strongswan.conf"))
	swanctl := func(args ...string) error {
		all := []string{"--target", fmt.Sprint(r.cmd.Process.Pid), "--mount", "--root", "--wd", SwanctlPath, args[0], "--uri", uri}
		for _, a := range args[1:] {
			all = append(all, strings.ReplaceAll(a, dir, charon6Seen))
		}
		cmd := exec.Command("nsenter", all...)
		cmd.Env = append(os.Environ(), "SWANCTL_DIR="+filepath.Join(charon6Seen, "swanctl"))
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("swanctl %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
		}
		return nil
	}
	if err := r.start(filepath.Join(dir, "charon.out"), func() bool { return swanctl("--stats") == nil }); err != nil {
		return nil, err
	}
	if err := swanctl("--load-all", "--file", filepath.Join(swanDir, "swanctl.conf")); err != nil {
		r.stop()
		return nil, err
	}
	return r, nil
}
