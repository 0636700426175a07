package main

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/xdpsec/xdpsec/internal/daemon"
)

// installCommand and uninstallCommand put a CHILD_SA's trap policies in
// and take them out (swanctl --install, --uninstall); listPolsCommand
// lists them (swanctl --list-pols).
func installCommand() *cli.Command { return trapCommand("install", daemon.CmdInstall) }

func uninstallCommand() *cli.Command { return trapCommand("uninstall", daemon.CmdUninstall) }

func trapCommand(name, command string) *cli.Command {
	usage := "install a CHILD_SA's trap policies: the first matching packet initiates it (as swanctl --install)"
	if command == daemon.CmdUninstall {
		usage = "remove a CHILD_SA's trap policies (as swanctl --uninstall)"
	}
	return &cli.Command{
		Name:  name,
		Usage: usage,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "child", Usage: "CHILD_SA config name"},
			&cli.StringFlag{Name: "ike", Usage: "connection name (default: the one that has the child)"},
		},
		Action: func(c *cli.Context) error {
			if c.String("child") == "" {
				return fmt.Errorf("%s needs --child NAME", name)
			}
			resp, err := call(c, daemon.Request{Command: command, IKE: c.String("ike"), Child: c.String("child")})
			if err != nil {
				return err
			}
			fmt.Fprintf(c.App.Writer, "%s\n%s completed successfully\n", resp.Message, name)
			return nil
		},
	}
}

func listPolsCommand() *cli.Command {
	return &cli.Command{
		Name:  "list-pols",
		Usage: "list the trap policies (as swanctl --list-pols)",
		Action: func(c *cli.Context) error {
			out, err := newOutput(c)
			if err != nil {
				return err
			}
			resp, err := call(c, daemon.Request{Command: daemon.CmdListPolicies})
			if err != nil {
				return err
			}
			if out.json {
				return out.print(resp.Policies, nil, nil)
			}
			for _, p := range resp.Policies {
				fmt.Fprintf(out.w, "%s/%s, %s, reqid %d\n  local:  %s\n  remote: %s\n", p.IKE, p.Child, strings.ToUpper(p.Mode), p.ReqID,
					strings.Join(p.LocalTS, " "), strings.Join(p.RemoteTS, " "))
			}
			return nil
		},
	}
}
