package main

import (
	"fmt"
	"slices"

	"github.com/urfave/cli/v2"

	"github.com/xdpsec/xdpsec/internal/daemon"
	"github.com/xdpsec/xdpsec/loader"
)

// globalFlags are the flags every command takes, before or after its name
// (`xdpsec -o json sa list` and `xdpsec sa list -o json`). withEnv is false
// for the copies on commands: only the app's own flag reads the
// environment, so a value given on the command line anywhere wins over it.
func globalFlags(withEnv bool) []cli.Flag {
	env := func(name string) []string {
		if withEnv {
			return []string{name}
		}
		return nil
	}
	return []cli.Flag{
		&cli.StringFlag{Name: "pin-dir", Value: loader.DefaultPinDir, Usage: "bpffs directory of xdpsec's maps, programs and links", EnvVars: env("XDPSEC_PIN_DIR")},
		&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "table", Usage: "listing format: table or json"},
		&cli.StringFlag{Name: "socket", Value: daemon.DefaultSocket, Usage: "the daemon's control socket", EnvVars: env("XDPSEC_SOCKET")},
	}
}

// inheritGlobals gives every command below cmds its own copy of the global
// flags and a Before that fills the copies not given on its part of the
// command line with the value its parent resolved.
//
// urfave/cli v2 has no persistent flags (v3 has): a flag defined on the app
// only is refused after the command's name, and one copied onto a command
// shadows the app's with its default, because Context.String takes the
// innermost flag set that defines the name, set or not.
func inheritGlobals(cmds []*cli.Command) {
	for _, cmd := range cmds {
		if cmd.Name == "help" {
			continue
		}
		globals := globalFlags(false)
		cmd.Flags = slices.Concat(globals, slices.DeleteFunc(cmd.Flags, func(f cli.Flag) bool {
			return slices.ContainsFunc(globals, func(g cli.Flag) bool { return g.Names()[0] == f.Names()[0] })
		}))
		before := cmd.Before
		cmd.Before = func(c *cli.Context) error {
			if err := fromParent(c, globals); err != nil {
				return err
			}
			if before != nil {
				return before(c)
			}
			return nil
		}
		inheritGlobals(cmd.Subcommands)
	}
}

// fromParent copies each global flag's value from the parent context into
// c's flag set unless c's part of the command line gave it.
func fromParent(c *cli.Context, globals []cli.Flag) error {
	lineage := c.Lineage()
	if len(lineage) < 2 {
		return nil
	}
	parent := lineage[1]
	local := c.LocalFlagNames()
	for _, g := range globals {
		name := g.Names()[0]
		if slices.ContainsFunc(g.Names(), func(n string) bool { return slices.Contains(local, n) }) {
			continue
		}
		if err := c.Set(name, fmt.Sprint(parent.Value(name))); err != nil {
			return fmt.Errorf("--%s: %w", name, err)
		}
	}
	return nil
}
