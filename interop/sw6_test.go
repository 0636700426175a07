package interop

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/xdpsec/xdpsec/internal/testenv"
)

// strongSwan 6 (charon with IKE_INTERMEDIATE and RFC 9370's additional
// key exchanges) is Debian 13 trixie's; the host runs Debian 12's 5.9.8.
// interop/strongswan6.sh (`make sw6`, part of `make test`) makes a trixie
// chroot with Debian's strongSwan packages under .cache/sw6/root, and a
// test that asks for charon 6 (envOptions.strongswan6) runs that chroot's
// /usr/lib/ipsec/charon in its namespace, chrooted in a mount namespace
// of its own, and that chroot's swanctl through the VICI socket. Debian's
// build has no ML-KEM: strongswan6.sh adds strongSwan's ml plugin, built
// from Debian's source of the same version, where it can.
const (
	// sw6RootEnv overrides where the chroot is.
	sw6RootEnv = "XDPSEC_SW6_ROOT"
	// sw6RequireEnv, set, fails the tests that need charon 6 where the
	// chroot is missing, instead of skipping them.
	sw6RequireEnv = "XDPSEC_REQUIRE_SW6"
	// rootDir is where charon 6 sees the test's directory of it
	// (strongswan.conf, the log, the VICI socket, the swanctl directory):
	// a bind mount on a tmpfs over the chroot's /run, so that the shared
	// chroot is never written to.
	rootDir = "/run/xdpsec-interop"
)

// charon6Plugins are charon 5.9.8's plugins of the tests, drbg, which
// strongSwan 6 has for its key exchanges' random numbers, and ml (ML-KEM)
// where strongswan6.sh could build it into the chroot at root.
func charon6Plugins(root string) string {
	if _, err := os.Stat(filepath.Join(root, mlPlugin)); err == nil {
		return charonPlugins + " drbg ml"
	}
	return charonPlugins + " drbg"
}

// mlPlugin is strongSwan's ML-KEM plugin in the chroot: Debian's build
// leaves it out, strongswan6.sh builds it from Debian's source.
const mlPlugin = "/usr/lib/ipsec/plugins/libstrongswan-ml.so"

// sw6Root is the chroot's directory: $XDPSEC_SW6_ROOT, else
// .cache/sw6/root in the directory of the go.mod above the working one.
func sw6Root() string {
	if d := os.Getenv(sw6RootEnv); d != "" {
		return d
	}
	wd, err := os.Getwd()
	if err != nil {
		return ""
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return filepath.Join(d, ".cache", "sw6", "root")
		}
		if filepath.Dir(d) == d {
			return ""
		}
	}
}

// requireStrongSwan6 returns the chroot with charon 6 and swanctl, and
// skips the test (fails it with XDPSEC_REQUIRE_SW6 set) where there is none.
func requireStrongSwan6(t *testing.T) string {
	t.Helper()
	root := sw6Root()
	for _, p := range []string{charonPath, swanctlPath} {
		if _, err := os.Stat(filepath.Join(root, p)); err != nil {
			msg := fmt.Sprintf("needs strongSwan 6 in a Debian trixie chroot at %s (`make sw6` makes it, as root; %s=DIR names another): %v", root, sw6RootEnv, err)
			if os.Getenv(sw6RequireEnv) != "" {
				t.Fatalf("%s is set, but %s", sw6RequireEnv, msg)
			}
			t.Skip("skipped: " + msg)
		}
	}
	return root
}

// chrootedCharon is the command that runs the chroot's charon in ns: in a
// mount namespace of its own, with a tmpfs over the chroot's /run holding
// dir at rootDir, and the host's /dev (/dev/net/tun for
// kernel-libipsec), a /proc and a /sys of the namespace's.
func chrootedCharon(ns *testenv.Netns, root, dir string) *exec.Cmd {
	const script = `set -e
mount -t tmpfs tmpfs "$1/run"
mkdir "$1$3"
mount --bind "$2" "$1$3"
mount --bind /dev "$1/dev"
mount -t proc proc "$1/proc"
mount -t sysfs sysfs "$1/sys"
exec chroot "$1" ` + charonPath
	return exec.Command("nsenter", "--net=/run/netns/"+ns.Name, "unshare", "--mount", "--propagation", "private",
		"sh", "-c", script, "sh", root, dir, rootDir)
}

// swanctl6Run runs the chroot's swanctl in charon's mount namespace and
// root, with the test's paths in args as charon sees them.
func (c *charon) swanctl6Run(args ...string) (string, error) {
	all := []string{"--target", fmt.Sprint(c.cmd.Process.Pid), "--mount", "--root", "--wd", swanctlPath, args[0], "--uri", "unix://" + filepath.Join(rootDir, "vici.sock")}
	for _, a := range args[1:] {
		all = append(all, strings.ReplaceAll(a, c.dir, rootDir))
	}
	cmd := exec.Command("nsenter", all...)
	cmd.Env = append(os.Environ(), "SWANCTL_DIR="+filepath.Join(rootDir, "swanctl"))
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// charon6Version checks that the charon of the test is strongSwan 6 and
// logs its version, its plugins and its key exchange methods.
func charon6Version(t *testing.T, c *charon) {
	t.Helper()
	v := c.swanctl("--version", "--daemon")
	m := regexp.MustCompile(`strongSwan (\S+) charon`).FindStringSubmatch(v)
	if m == nil || !strings.HasPrefix(m[1], "6.") {
		t.Fatalf("the chroot's charon is not strongSwan 6:\n%s", v)
	}
	var plugins string
	for _, l := range strings.Split(c.swanctl("--stats"), "\n") {
		if p, ok := strings.CutPrefix(strings.TrimSpace(l), "loaded plugins:"); ok {
			plugins = strings.TrimSpace(p)
		}
	}
	var kes []string
	in := false
	for _, l := range strings.Split(c.swanctl("--list-algs"), "\n") {
		if !strings.HasPrefix(l, " ") {
			in = strings.HasPrefix(l, "ke:") || strings.HasPrefix(l, "dh:")
			continue
		}
		if in {
			kes = append(kes, strings.Fields(l)[0])
		}
	}
	t.Logf("%s\nloaded plugins: %s\nkey exchange methods: %s", strings.TrimSpace(m[0]), plugins, strings.Join(kes, " "))
}

// TestStrongSwan6Basic establishes an IKE SA and a CHILD_SA between
// charon 6 and our daemon with a classical proposal (X25519, and X25519
// for the CHILD_SAs' rekeys), each side initiating, rekeys the CHILD_SA
// from each side and the IKE SA, and checks what both sides chose.
func TestStrongSwan6Basic(t *testing.T) {
	forRoles(t, "x25519", func(t *testing.T, role string) {
		e := strongSwan6Lifecycle(t, role, sw6Proposals{ike: "aes256gcm16-prfsha384-x25519", esp: "aes256gcm16-x25519",
			ikeKEs: []string{"CURVE_25519"}, childKEs: []string{"CURVE_25519"}})
		waitLog(t, "charon", e.charon.log, 5*time.Second, "authentication of 'sun.example.org' with pre-shared key successful")
		waitLog(t, "xdpsec", e.ours.log, 5*time.Second, "IKE_SA c[1] established between", "CHILD_SA net{1} established with SPIs")
	})
}

// The hybrid of the interop with strongSwan 6: X25519 and an
// additional ECP-384 exchange (RFC 9370) in IKE_INTERMEDIATE, and the same
// two for the CHILD_SAs' rekeys (CREATE_CHILD_SA then IKE_FOLLOWUP_KE).
const (
	hybridIKE = "aes256gcm16-prfsha384-x25519-ke1_ecp384"
	hybridESP = "aes256gcm16-x25519-ke1_ecp384"
)

// TestStrongSwan6Hybrid is TestStrongSwan6Basic with the hybrid: the IKE
// SA through IKE_INTERMEDIATE and every SA with both exchanges on both
// sides, after the rekeys too (IKE_FOLLOWUP_KE).
func TestStrongSwan6Hybrid(t *testing.T) {
	testStrongSwan6Hybrid(t, "ecp384", "ECP_384")
}

// TestStrongSwan6MLKEM is TestStrongSwan6Hybrid with ML-KEM-512 (ours from
// CIRCL), ML-KEM-768 and ML-KEM-1024 as the additional exchange (ML-KEM-1024's key share, 1568
// octets, makes IKE_INTERMEDIATE's request larger than charon's 1280-octet
// fragments: RFC 7383 fragmentation in IKE_INTERMEDIATE). charon 6 has
// ML-KEM through the ml plugin strongswan6.sh builds; without it the test
// skips with the reason.
func TestStrongSwan6MLKEM(t *testing.T) {
	if _, err := os.Stat(filepath.Join(sw6Root(), mlPlugin)); err != nil {
		t.Skipf("skipped: charon 6 has no ML-KEM: the chroot lacks the ml plugin that `make sw6` builds: %v", err)
	}
	t.Run("mlkem512", func(t *testing.T) { testStrongSwan6Hybrid(t, "mlkem512", "ML_KEM_512") })
	t.Run("mlkem768", func(t *testing.T) { testStrongSwan6Hybrid(t, "mlkem768", "ML_KEM_768") })
	t.Run("mlkem1024", func(t *testing.T) {
		testStrongSwan6Hybrid(t, "mlkem1024", "ML_KEM_1024", "IKE_INTERMEDIATE request 1 [ EF(1/2) ]", "IKE_INTERMEDIATE response 1 [ EF(1/2) ]")
	})
}

// testStrongSwan6Hybrid runs the hybrid lifecycle of X25519 and the
// additional key exchange keyword (charon's name for it: name), and waits
// for charon's log to have the lines logs too.
func testStrongSwan6Hybrid(t *testing.T, keyword, name string, logs ...string) {
	ike, esp := "aes256gcm16-prfsha384-x25519-ke1_"+keyword, "aes256gcm16-x25519-ke1_"+keyword
	p := sw6Proposals{ike: ike, esp: esp, ikeKEs: []string{"CURVE_25519", name}, childKEs: []string{"CURVE_25519", name}}
	forRoles(t, "x25519-ke1_"+keyword, func(t *testing.T, role string) {
		e := strongSwan6Lifecycle(t, role, p)
		waitLog(t, "charon", e.charon.log, 5*time.Second, append(logs, "IKE_INTERMEDIATE request 1 [", "IKE_INTERMEDIATE response 1 [",
			"IKE_FOLLOWUP_KE request", "IKE_FOLLOWUP_KE response")...)
	})
}

// sw6Proposals are the IKE and ESP proposals of both sides (of charon
// where oursIKE and oursESP are set), and the key exchanges both sides
// must list: ikeKEs for the IKE SA, childKEs for a rekeyed CHILD_SA (the
// first the DH group, the others its additional ones, ake1... in order).
type sw6Proposals struct {
	ike, esp         string
	oursIKE, oursESP string
	ikeKEs, childKEs []string
	// noIKERekey leaves the IKE rekey out.
	noIKERekey bool
}

// strongSwan6Lifecycle runs charon 6 against our daemon with the PSK
// tunnel of the IKE and ESP proposals, the role's side initiating; the
// CHILD_SA is rekeyed from each side, then the IKE SA from the role's.
// After each step both sides must agree on the SAs and list the key
// exchanges of p. charon logs its proposals (cfg = 2).
func strongSwan6Lifecycle(t *testing.T, role string, p sw6Proposals) *env {
	t.Helper()
	e := newEnv(t, envOptions{strongswan6: true, charonSettings: "filelog {\n charon {\n cfg = 2\n }\n}"})
	charon6Version(t, e.charon)
	cs, os := pskPeers(p.ike, p.esp)
	if p.oursIKE != "" {
		os.proposals, os.esp = p.oursIKE, p.oursESP
	}
	e.load(cs, os, nil, nil)
	e.initiate(role)
	e.agree(1)
	sa := e.charonSA()
	if got := []string{sa.get("encr-alg"), sa.get("encr-keysize"), sa.get("prf-alg")}; strings.Join(got, ",") != "AES_GCM_16,256,PRF_HMAC_SHA2_384" {
		t.Errorf("charon 6 chose %v, want AES_GCM_16 256 PRF_HMAC_SHA2_384", got)
	}
	if (sa.get("initiator") == "yes") != (role == charonInitiates) {
		t.Errorf("charon 6's initiator flag: %q", sa.get("initiator"))
	}
	if ch := e.charonChild(); ch.get("encr-alg") != "AES_GCM_16" || ch.get("encr-keysize") != "256" {
		t.Errorf("charon 6's CHILD_SA: %v", ch.values)
	}
	e.checkKEs("established", p.ikeKEs, nil)
	for _, r := range roles {
		spi := e.agree(1)[0].children[0].spiIn
		e.rekeyChild(r)
		e.waitChildReplaced(spi)
		e.agree(1)
		e.checkKEs("CHILD_SA rekeyed by "+actor(r), p.ikeKEs, p.childKEs)
	}
	if p.noIKERekey {
		return e
	}
	before := e.agree(1)
	e.rekeyIKE(role)
	waitFor(t, 15*time.Second, "the new IKE SA on both sides", func() error {
		c, o := e.charonView(), e.oursView()
		if len(c) != 1 || len(o) != 1 || c[0].spiI == before[0].spiI || o[0].spiI != c[0].spiI {
			return fmt.Errorf("charon %v, xdpsec %v", c, o)
		}
		return nil
	})
	e.agree(1)
	e.checkKEs("IKE SA rekeyed by "+actor(role), p.ikeKEs, p.childKEs)
	return e
}

// checkKEs checks that both sides list the key exchanges ikeKEs for the
// IKE SA and, unless childKEs is nil (IKE_AUTH's CHILD_SA has no key
// exchange), childKEs for the CHILD_SA. charon 6's VICI names them dh-group,
// ake1, ake2...; its proposals and ours read
// AES_GCM_16_256/PRF_HMAC_SHA2_384/CURVE_25519/KE1_ECP_384.
func (e *env) checkKEs(when string, ikeKEs, childKEs []string) {
	e.t.Helper()
	check := func(what string, s *section, proposal string, kes []string) {
		e.t.Helper()
		for i := range 8 {
			key, name, want := "dh-group", "", ""
			if i > 0 {
				key, name = fmt.Sprintf("ake%d", i), fmt.Sprintf("KE%d_", i)
			}
			if i < len(kes) {
				want = kes[i]
			}
			if got := s.get(key); got != want {
				e.t.Errorf("%s: charon 6's %s has %s %q, want %q", when, what, key, got, want)
			}
			if want != "" && !strings.Contains(proposal, "/"+name+want) {
				e.t.Errorf("%s: our %s's proposal %q lacks %s", when, what, proposal, name+want)
			}
			if want == "" && i > 0 && strings.Contains(proposal, "/"+name) {
				// An optional exchange the responder declined is
				// ADDKEn=NONE on the wire; charon's selected proposal
				// leaves it out (its lists name it KEn_KE_NONE).
				e.t.Errorf("%s: our %s's proposal %q lists a %s transform, charon 6's none (charon prints selected proposals without NONE exchanges)", when, what, proposal, name)
			}
		}
	}
	o := e.oursSA()
	check("IKE SA", e.charonSA(), o.Proposal, ikeKEs)
	if childKEs == nil {
		return
	}
	var ours []string
	for _, c := range o.Children {
		if c.State == "INSTALLED" {
			ours = append(ours, c.Proposal)
		}
	}
	if len(ours) != 1 {
		e.t.Fatalf("%s: our IKE SA has %d installed CHILD_SAs, want 1: %v", when, len(ours), o.Children)
	}
	check("CHILD_SA", e.charonChild(), ours[0], childKEs)
}

// TestStrongSwan6HybridDeclined has charon 6 offer the hybrid first and
// the classical proposal second, for the IKE SA and the CHILD_SAs, and our
// daemon take only the classical one: whichever side initiates and
// rekeys, the classical proposal is chosen (the hybrid declined like any
// proposal with a transform not configured) and no IKE_INTERMEDIATE is
// exchanged. It runs with or without our support of additional key
// exchanges.
func TestStrongSwan6HybridDeclined(t *testing.T) {
	forRoles(t, "x25519", func(t *testing.T, role string) {
		e := strongSwan6Lifecycle(t, role, sw6Proposals{
			ike: hybridIKE + ",aes256gcm16-prfsha384-x25519", esp: hybridESP + ",aes256gcm16-x25519",
			oursIKE: "aes256gcm16-prfsha384-x25519", oursESP: "aes256gcm16-x25519",
			ikeKEs: []string{"CURVE_25519"}, childKEs: []string{"CURVE_25519"},
		})
		waitLog(t, "charon", e.charon.log, 5*time.Second,
			"configured proposals: IKE:AES_GCM_16_256/PRF_HMAC_SHA2_384/CURVE_25519/KE1_ECP_384, IKE:AES_GCM_16_256/PRF_HMAC_SHA2_384/CURVE_25519\n",
			"configured proposals: ESP:AES_GCM_16_256/CURVE_25519/NO_EXT_SEQ/KE1_ECP_384, ESP:AES_GCM_16_256/CURVE_25519/NO_EXT_SEQ\n",
			"selected proposal: IKE:AES_GCM_16_256/PRF_HMAC_SHA2_384/CURVE_25519\n",
			"selected proposal: ESP:AES_GCM_16_256/CURVE_25519/NO_EXT_SEQ\n")
		if strings.Contains(e.charon.log(), "IKE_INTERMEDIATE") {
			t.Errorf("charon 6 exchanged IKE_INTERMEDIATE for a classical proposal")
		}
	})
}

// TestStrongSwan6HybridOptional has one side offer ECP-384 as an optional
// additional exchange (x25519-ke1_ecp384-ke1_none, one proposal) and the
// other configured without additional exchanges: the IKE SA is X25519
// alone, without IKE_INTERMEDIATE, whichever side offers it and whichever
// initiates.
func TestStrongSwan6HybridOptional(t *testing.T) {
	const optional = "aes256gcm16-prfsha384-x25519-ke1_ecp384-ke1_none"
	const classical = "aes256gcm16-prfsha384-x25519"
	for _, offers := range []string{"charon", "xdpsec"} {
		forRoles(t, offers+"-offers", func(t *testing.T, role string) {
			p := sw6Proposals{ike: optional, esp: "aes256gcm16-x25519", oursIKE: classical, oursESP: "aes256gcm16-x25519",
				ikeKEs: []string{"CURVE_25519"}, childKEs: []string{"CURVE_25519"}, noIKERekey: true}
			if offers == "xdpsec" {
				p.ike, p.oursIKE = classical, optional
			}
			e := strongSwan6Lifecycle(t, role, p)
			waitLog(t, "charon", e.charon.log, 5*time.Second, "selected proposal: IKE:AES_GCM_16_256/PRF_HMAC_SHA2_384/CURVE_25519\n")
			if strings.Contains(e.charon.log(), "IKE_INTERMEDIATE") {
				t.Errorf("IKE_INTERMEDIATE exchanged for an optional additional exchange that one side does not have")
			}
		})
	}
}
