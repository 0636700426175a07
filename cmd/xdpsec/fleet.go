package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/xdpsec/xdpsec/internal/daemon"
)

// fleetCommand is `xdpsec fleet`: the daemon as a member of a fleet of
// gateways sharing their state in etcd (xdpsec.conf's fleet section).
func fleetCommand() *cli.Command {
	return &cli.Command{
		Name:  "fleet",
		Usage: "the fleet of gateways this daemon is a member of (status, keepalived's notify)",
		Subcommands: []*cli.Command{
			{
				Name:  "status",
				Usage: "members, who holds which shared address, SA counts per member, last checkpoint age",
				Action: func(c *cli.Context) error {
					out, err := newOutput(c)
					if err != nil {
						return err
					}
					resp, err := call(c, daemon.Request{Command: daemon.CmdFleetStatus})
					if err != nil {
						return err
					}
					return printFleetStatus(out, resp.Fleet)
				},
			},
			{
				Name:      "notify",
				Usage:     "keepalived's notify script: the state (master, backup, fault, stop) of a shared address",
				ArgsUsage: "STATE SHARED | TYPE NAME STATE [PRIORITY] (keepalived's own order)",
				Action: func(c *cli.Context) error {
					state, shared, err := notifyArgs(c.Args().Slice())
					if err != nil {
						return err
					}
					resp, err := call(c, daemon.Request{Command: daemon.CmdFleetNotify, State: state, Shared: shared})
					if err != nil {
						return err
					}
					fmt.Fprintln(c.App.Writer, resp.Message)
					return nil
				},
			},
		},
	}
}

// notifyArgs reads `STATE SHARED`, or keepalived's notify arguments
// `TYPE NAME STATE [PRIORITY]` (TYPE INSTANCE or GROUP, NAME the VRRP
// instance, named as the shared address section).
func notifyArgs(args []string) (state, shared string, err error) {
	isState := func(s string) bool {
		switch strings.ToLower(s) {
		case "master", "backup", "fault", "stop":
			return true
		}
		return false
	}
	switch {
	case len(args) == 2 && isState(args[0]):
		return strings.ToLower(args[0]), args[1], nil
	case (len(args) == 3 || len(args) == 4) && (strings.EqualFold(args[0], "INSTANCE") || strings.EqualFold(args[0], "GROUP")) && isState(args[2]):
		if len(args) == 4 {
			if _, err := strconv.Atoi(args[3]); err != nil {
				return "", "", fmt.Errorf("priority %q is not a number", args[3])
			}
		}
		return strings.ToLower(args[2]), args[1], nil
	}
	return "", "", errors.New("want STATE SHARED (STATE master, backup, fault or stop) or keepalived's TYPE NAME STATE [PRIORITY]")
}

func printFleetStatus(out *output, st *daemon.FleetStatus) error {
	if st == nil {
		return errors.New("the daemon sent no fleet status")
	}
	if out.json {
		return out.print(st, nil, nil)
	}
	fmt.Fprintf(out.w, "this member: %s\n", st.Member)
	var rows [][]string
	for _, m := range st.Members {
		age := "-"
		if m.CheckpointAge != nil {
			age = fmt.Sprintf("%.1fs", *m.CheckpointAge)
		}
		holds := strings.Join(m.Holds, ",")
		if holds == "" {
			holds = "-"
		}
		addr := m.Address
		if addr == "" {
			addr = "-"
		}
		rows = append(rows, []string{m.Name, addr, strconv.Itoa(m.IKESAs), strconv.Itoa(m.ChildSAs), holds, age})
	}
	if err := out.print(nil, []string{"MEMBER", "ADDRESS", "IKE_SAS", "CHILD_SAS", "HOLDS", "CHECKPOINT_AGE"}, rows); err != nil {
		return err
	}
	if len(st.Shared) == 0 {
		return nil
	}
	fmt.Fprintln(out.w)
	rows = nil
	for _, s := range st.Shared {
		holder := s.Holder
		if holder == "" {
			holder = "none"
		}
		here := "no"
		switch {
		case s.Leading:
			here = "leading"
		case s.Wanted:
			here = "standby"
		}
		rows = append(rows, []string{s.Name, s.Address, s.Follow, holder, here})
	}
	return out.print(nil, []string{"SHARED", "ADDRESS", "FOLLOW", "HOLDER", "HERE"}, rows)
}
