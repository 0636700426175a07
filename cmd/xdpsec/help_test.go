package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

func runApp(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	app := newApp()
	app.Writer, app.ErrWriter = &out, &out
	err := app.Run(append([]string{"xdpsec"}, args...))
	return out.String(), err
}

func TestVersion(t *testing.T) {
	obj, err := os.ReadFile("../../bpf/xdpsec_bpfel.o")
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(obj)
	for _, flag := range []string{"--version", "-v"} {
		out, err := runApp(t, flag)
		if err != nil {
			t.Fatalf("%s: %v", flag, err)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 3 || !strings.HasPrefix(lines[0], "xdpsec ") || !strings.HasPrefix(lines[1], "commit ") ||
			lines[2] != "bpf xdpsec_bpfel.o sha256 "+hex.EncodeToString(sum[:]) {
			t.Errorf("xdpsec %s:\n%s", flag, out)
		}
	}
	// What the Makefile's -ldflags set wins over the build information.
	defer func(v, c string) { version, commit = v, c }(version, commit)
	version, commit = "v9.8.7", "0123abcd"
	if out, _ := runApp(t, "--version"); !strings.HasPrefix(out, "xdpsec v9.8.7\ncommit 0123abcd\n") {
		t.Errorf("with -ldflags values:\n%s", out)
	}
}

// TestVersionLdflags builds the binary the way the Makefile does and checks
// that the values reach --version.
func TestVersionLdflags(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "xdpsec")
	build := exec.Command("go", "build", "-o", bin, "-ldflags", "-X main.version=v1.2.3-test -X main.commit=feedface", ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "--version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "xdpsec v1.2.3-test\ncommit feedface\nbpf xdpsec_bpfel.o sha256 ") {
		t.Errorf("--version: %v\n%s", err, out)
	}
}

func TestHelp(t *testing.T) {
	out, err := runApp(t, "help")
	if err != nil {
		t.Fatalf("help: %v\n%s", err, out)
	}
	for _, want := range []string{"dataplane:", "IKE:", "diagnostics:", "GLOBAL OPTIONS:", "--output value, -o value"} {
		if !strings.Contains(out, want) {
			t.Errorf("help lacks %q:\n%s", want, out)
		}
	}
	// Every command has a heading.
	for _, c := range newApp().Commands {
		if c.Name != "help" && c.Category == "" {
			t.Errorf("command %s has no category", c.Name)
		}
	}
	for _, args := range [][]string{{"help", "sa"}, {"sa", "--help"}, {"sa", "help"}} {
		out, err := runApp(t, args...)
		if err != nil || !strings.Contains(out, "COMMANDS:") || !strings.Contains(out, "   del ") || !strings.Contains(out, "--output value, -o value") {
			t.Errorf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	if out, err := runApp(t, "help", "load"); err != nil || !strings.Contains(out, "--max-sas") {
		t.Errorf("help load: %v\n%s", err, out)
	}
}

// TestFlagDefaultsShownOnce: no flag's help line carries two defaults (one
// written into its usage, one that urfave/cli adds from its value).
func TestFlagDefaultsShownOnce(t *testing.T) {
	var walk func(path []string, cmds []*cli.Command)
	walk = func(path []string, cmds []*cli.Command) {
		for _, c := range cmds {
			p := append(slices.Clone(path), c.Name)
			for _, f := range c.Flags {
				line := f.String()
				if n := strings.Count(line, "(default"); n > 1 {
					t.Errorf("xdpsec %s: %s", strings.Join(p, " "), line)
				}
			}
			walk(p, c.Subcommands)
		}
	}
	walk(nil, newApp().Commands)
	for _, f := range newApp().Flags {
		if strings.Count(f.String(), "(default") > 1 {
			t.Errorf("global: %s", f.String())
		}
	}
}

// TestCompletion sources the bash script the binary prints and completes
// with it, the binary being this test binary run as xdpsec.
func TestCompletion(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.Symlink(self, filepath.Join(dir, "xdpsec")); err != nil {
		t.Fatal(err)
	}
	script, err := runApp(t, "completion", "bash")
	if err != nil {
		t.Fatal(err)
	}
	complete := func(words ...string) []string {
		t.Helper()
		cmd := exec.Command("bash", "-c", script+`
COMP_WORDS=("$@"); COMP_CWORD=$(($#-1)); _xdpsec_complete; printf '%s\n' "${COMPREPLY[@]}"`, "bash")
		cmd.Args = append(cmd.Args, words...)
		cmd.Env = append(os.Environ(), "PATH="+dir+":"+os.Getenv("PATH"), "XDPSEC_TEST_RUN_MAIN=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("complete %q: %v\n%s", words, err, out)
		}
		return strings.Fields(string(out))
	}
	if got := complete("xdpsec", "li"); !slices.Equal(got, []string{"list-sas", "list-conns", "list-pools", "list-pols"}) {
		t.Errorf("xdpsec li<TAB>: %q", got)
	}
	if got := complete("xdpsec", "sa", ""); !slices.Contains(got, "list") || !slices.Contains(got, "del") {
		t.Errorf("xdpsec sa <TAB>: %q", got)
	}
	if got := complete("xdpsec", "load", "--ma"); !slices.Contains(got, "--max-sas") || !slices.Contains(got, "--max-policies") {
		t.Errorf("xdpsec load --ma<TAB>: %q", got)
	}
	zsh, err := runApp(t, "completion", "zsh")
	if err != nil || !strings.Contains(zsh, "compdef _xdpsec xdpsec") {
		t.Errorf("completion zsh: %v\n%s", err, zsh)
	}
	if _, err := runApp(t, "completion", "fish"); err == nil {
		t.Error("completion fish: no error")
	}
}
