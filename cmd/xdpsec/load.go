package main

import (
	"fmt"
	"strconv"

	"github.com/urfave/cli/v2"

	"github.com/xdpsec/xdpsec/loader"
	"github.com/xdpsec/xdpsec/maps"
)

func loadCommand() *cli.Command {
	return &cli.Command{
		Name:  "load",
		Usage: "load the BPF programs, attach them and pin everything (again: upgrade in place)",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "wan", Usage: "WAN interface for xdp_wan", Required: true},
			&cli.StringSliceFlag{Name: "lan", Usage: "LAN interface for tc_lan (repeatable)"},
			&cli.StringFlag{Name: "xdp-mode", Value: string(loader.XDPAuto), Usage: "auto, native or generic"},
			&cli.StringFlag{Name: "tc-mode", Value: string(loader.TCAuto), Usage: "auto, tcx or clsact"},
			&cli.UintFlag{Name: "max-sas", Value: loader.DefaultMaxSAs, Usage: "inbound SAs with SPIs from the allocated range (found by index)"},
			&cli.UintFlag{Name: "max-foreign-sas", Value: loader.DefaultMaxForeign, Usage: "inbound SAs with other SPIs (manual, another daemon's)"},
			&cli.StringFlag{Name: "spi-base", Value: "0xc0000000", Usage: "first SPI of the allocated range"},
			&cli.UintFlag{Name: "max-policies", Value: loader.DefaultMaxPolicies, Usage: "outbound policy table size"},
			&cli.UintFlag{Name: "ike-rate", Value: loader.DefaultIKERate, Usage: "new IKE SA requests per second per source (0: no limit)"},
			&cli.UintFlag{Name: "ike-burst", Value: loader.DefaultIKEBurst, Usage: "new IKE SA requests a source may send back to back"},
			&cli.UintFlag{Name: "cpu-queue", Value: maps.DefaultCPUQueue, Usage: "packets queued per CPU for SA steering"},
		},
		Action: func(c *cli.Context) error {
			xm := loader.XDPMode(c.String("xdp-mode"))
			if xm != loader.XDPAuto && xm != loader.XDPNative && xm != loader.XDPGeneric {
				return fmt.Errorf("--xdp-mode %q: want auto, native or generic", xm)
			}
			tm := loader.TCMode(c.String("tc-mode"))
			if tm != loader.TCAuto && tm != loader.TCX && tm != loader.TCClsact {
				return fmt.Errorf("--tc-mode %q: want auto, tcx or clsact", tm)
			}
			if err := refuseIPNetnsExec(); err != nil {
				return err
			}
			spiBase, err := strconv.ParseUint(c.String("spi-base"), 0, 32)
			if err != nil || spiBase == 0 {
				return fmt.Errorf("--spi-base %q: want a non-zero 32-bit number", c.String("spi-base"))
			}
			l, err := loader.Load(loader.Options{
				WAN:         c.String("wan"),
				LAN:         c.StringSlice("lan"),
				XDPMode:     xm,
				TCMode:      tm,
				PinDir:      c.String("pin-dir"),
				MaxSAs:      uint32(c.Uint("max-sas")),
				MaxForeign:  uint32(c.Uint("max-foreign-sas")),
				SPIBase:     uint32(spiBase),
				MaxPolicies: uint32(c.Uint("max-policies")),
				IKERate:     maps.IKERateLimit{Rate: uint32(c.Uint("ike-rate")), Burst: uint32(c.Uint("ike-burst"))},
				CPUQueue:    uint32(c.Uint("cpu-queue")),
				Log:         logger(c),
			})
			if err != nil {
				return err
			}
			l.Close()
			return nil
		},
	}
}

func unloadCommand() *cli.Command {
	return &cli.Command{
		Name:  "unload",
		Usage: "detach every program and remove every pin xdpsec made",
		Action: func(c *cli.Context) error {
			return loader.Unload(c.String("pin-dir"))
		},
	}
}

func statusCommand() *cli.Command {
	return &cli.Command{
		Name:  "status",
		Usage: "where the programs are attached",
		Action: func(c *cli.Context) error {
			out, err := newOutput(c)
			if err != nil {
				return err
			}
			atts, err := loader.Attachments(c.String("pin-dir"))
			if err != nil {
				return err
			}
			rows := make([][]string, 0, len(atts))
			for _, a := range atts {
				rows = append(rows, []string{a.Program, a.Interface, fmt.Sprint(a.Ifindex), a.Hook, fmt.Sprint(a.ProgramID)})
			}
			return out.print(atts, []string{"PROGRAM", "INTERFACE", "IFINDEX", "HOOK", "PROG_ID"}, rows)
		},
	}
}
