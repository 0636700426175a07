// Command xdpsec is the xdpsec gateway's one binary: it loads and unloads
// the BPF dataplane, inspects and edits its maps, runs the IKE daemon and
// talks to it through its control socket.
package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"

	"github.com/urfave/cli/v2"

	"github.com/xdpsec/xdpsec/loader"
	"github.com/xdpsec/xdpsec/maps"
)

func main() {
	if err := newApp().Run(os.Args); err != nil {
		fmt.Fprintf(os.Stderr, "xdpsec: %v\n", err)
		os.Exit(1)
	}
}

func newApp() *cli.App {
	app := &cli.App{
		Name:  "xdpsec",
		Usage: "IPsec gateway with an XDP/tc dataplane",
		Flags: globalFlags(true),
		Commands: slices.Concat(
			category("dataplane", loadCommand(), unloadCommand(), saCommand(), policyCommand(), ratelimitCommand()),
			category("IKE", daemonCommand(), initiateCommand(), terminateCommand(), rekeyCommand(), redirectCommand(), listSAsCommand(), listConnsCommand(), listPoolsCommand(), installCommand(), uninstallCommand(), listPolsCommand(), reloadCommand(), fleetCommand()),
			category("diagnostics", statusCommand(), statsCommand(), benchCommand()),
			category("shell", completionCommand()),
		),
		EnableBashCompletion: true,
	}
	v, _ := buildVersion()
	app.Version = v
	// The one printer urfave/cli has is a package variable.
	cli.VersionPrinter = printVersion
	inheritGlobals(app.Commands)
	for _, c := range app.Commands {
		if len(c.Subcommands) > 0 {
			c.CustomHelpTemplate = parentHelpTemplate
		}
	}
	return app
}

// parentHelpTemplate is the help of a command with commands of its own,
// for `xdpsec help sa` as for `xdpsec sa --help`: v2's template lists
// categories that exist only once the command runs, so the help command
// showed none.
const parentHelpTemplate = `NAME:
   {{.HelpName}} - {{.Usage}}

USAGE:
   {{.HelpName}} command [command options]

COMMANDS:{{range .VisibleCommands}}
   {{join .Names ", "}}{{"\t"}}{{.Usage}}{{end}}

OPTIONS:{{range .VisibleFlags}}
   {{.}}{{end}}
`

// category puts commands under one heading of the help.
func category(name string, cmds ...*cli.Command) []*cli.Command {
	for _, c := range cmds {
		c.Category = name
	}
	return cmds
}

func logger(c *cli.Context) *slog.Logger {
	return slog.New(slog.NewTextHandler(c.App.ErrWriter, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// withMaps is the frame of every command that reads or writes the maps:
// it checks the output format, opens the pinned maps, runs fn, closes them.
func withMaps(fn func(c *cli.Context, out *output, s *maps.Set) error) cli.ActionFunc {
	return func(c *cli.Context) error {
		out, err := newOutput(c)
		if err != nil {
			return err
		}
		s, err := openMaps(c)
		if err != nil {
			return err
		}
		defer s.Close()
		return fn(c, out, s)
	}
}

// openMaps opens the pinned maps, with a hint when nothing is loaded.
func openMaps(c *cli.Context) (*maps.Set, error) {
	if os.Geteuid() != 0 {
		return nil, loader.ErrNotRoot
	}
	s, err := maps.OpenPinned(c.String("pin-dir"))
	if errors.Is(err, maps.ErrNotLoaded) {
		return nil, fmt.Errorf("%w: run `xdpsec load --wan IF` first", err)
	}
	return s, err
}
