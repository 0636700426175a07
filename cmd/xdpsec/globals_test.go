package main

import (
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// leafCommands walks the command tree: the paths of every command that
// runs an action, so a command added later is covered without a test edit.
func leafCommands(prefix []string, cmds []*cli.Command) [][]string {
	var paths [][]string
	for _, c := range cmds {
		if c.Name == "help" {
			continue
		}
		p := append(slices.Clone(prefix), c.Name)
		if len(c.Subcommands) > 0 {
			paths = append(paths, leafCommands(p, c.Subcommands)...)
		} else {
			paths = append(paths, p)
		}
	}
	return paths
}

func findCommand(cmds []*cli.Command, path []string) *cli.Command {
	for _, c := range cmds {
		if c.Name == path[0] {
			if len(path) == 1 {
				return c
			}
			return findCommand(c.Subcommands, path[1:])
		}
	}
	return nil
}

// runRecording runs args with path's action replaced by one that records
// what the command sees of the global flags. Required flags of the command
// get a placeholder so that parsing reaches the action.
func runRecording(t *testing.T, path, args []string) (map[string]string, error) {
	t.Helper()
	app := newApp()
	app.Writer, app.ErrWriter = io.Discard, io.Discard
	cmd := findCommand(app.Commands, path)
	if cmd == nil {
		t.Fatalf("no command %v", path)
	}
	var required []string
	for _, f := range cmd.Flags {
		if rf, ok := f.(cli.RequiredFlag); ok && rf.IsRequired() {
			required = append(required, "--"+f.Names()[0], "1")
		}
	}
	got := map[string]string{}
	cmd.Action = func(c *cli.Context) error {
		for _, g := range globalFlags(false) {
			got[g.Names()[0]] = c.String(g.Names()[0])
		}
		return nil
	}
	// Required flags go last, after any flag under test: a placeholder
	// must not end the flags before what is tested.
	return got, app.Run(slices.Concat([]string{"xdpsec"}, args, required))
}

// TestGlobalFlagsEverywhere gives each global flag before the command, after
// the command (and, for sub-subcommands, between the two names), under each
// of its names, for every command in the tree.
func TestGlobalFlagsEverywhere(t *testing.T) {
	values := map[string]string{"pin-dir": "/sys/fs/bpf/elsewhere", "output": "json", "socket": "/tmp/other.sock"}
	defaults := map[string]string{}
	for _, g := range globalFlags(false) {
		defaults[g.Names()[0]] = g.(*cli.StringFlag).Value
		if values[g.Names()[0]] == "" {
			t.Fatalf("global flag --%s has no test value", g.Names()[0])
		}
	}
	paths := leafCommands(nil, newApp().Commands)
	if len(paths) < 20 {
		t.Fatalf("only %d commands found: %v", len(paths), paths)
	}
	for _, path := range paths {
		for _, g := range globalFlags(false) {
			name := g.Names()[0]
			for _, alias := range g.Names() {
				flag := "--" + alias
				if len(alias) == 1 {
					flag = "-" + alias
				}
				positions := map[string][]string{
					"before": slices.Concat([]string{flag, values[name]}, path),
					"after":  slices.Concat(path, []string{flag, values[name]}),
				}
				if len(path) > 1 {
					positions["between"] = slices.Concat(path[:1], []string{flag, values[name]}, path[1:])
				}
				for pos, args := range positions {
					t.Run(strings.Join(path, "_")+"/"+alias+"/"+pos, func(t *testing.T) {
						got, err := runRecording(t, path, args)
						if err != nil {
							t.Fatalf("xdpsec %s: %v", strings.Join(args, " "), err)
						}
						for n, v := range got {
							want := defaults[n]
							if n == name {
								want = values[n]
							}
							if v != want {
								t.Errorf("xdpsec %s: --%s is %q, want %q", strings.Join(args, " "), n, v, want)
							}
						}
					})
				}
			}
		}
	}
}

// TestGlobalFlagsPrecedence: the value nearest the command wins, and any
// value on the command line wins over the environment's.
func TestGlobalFlagsPrecedence(t *testing.T) {
	t.Setenv("XDPSEC_SOCKET", "/env.sock")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"sa", "list"}, "/env.sock"},
		{[]string{"--socket", "/app.sock", "sa", "list"}, "/app.sock"},
		{[]string{"sa", "list", "--socket", "/leaf.sock"}, "/leaf.sock"},
		{[]string{"--socket", "/app.sock", "sa", "--socket", "/mid.sock", "list"}, "/mid.sock"},
		{[]string{"--socket", "/app.sock", "sa", "--socket", "/mid.sock", "list", "--socket", "/leaf.sock"}, "/leaf.sock"},
	} {
		got, err := runRecording(t, []string{"sa", "list"}, tc.args)
		if err != nil {
			t.Fatalf("xdpsec %v: %v", tc.args, err)
		}
		if got["socket"] != tc.want {
			t.Errorf("xdpsec %v: --socket is %q, want %q", tc.args, got["socket"], tc.want)
		}
	}
}
