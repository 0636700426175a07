package main

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/xdpsec/xdpsec/maps"
)

func parseSPI(s string) (uint32, error) {
	v, err := strconv.ParseUint(s, 0, 32)
	if err != nil {
		return 0, fmt.Errorf("bad SPI %q (hex with 0x, or decimal)", s)
	}
	if v == 0 {
		return 0, fmt.Errorf("SPI 0 is reserved")
	}
	return uint32(v), nil
}

func parseAddr(flag, s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return a, fmt.Errorf("--%s: %q is not an IP address", flag, s)
	}
	return a.Unmap(), nil
}

// saFlags reads the --spi, --dst and --proto that name an SA.
func saFlags(c *cli.Context) (uint32, netip.Addr, maps.SAProto, error) {
	spi, err := parseSPI(c.String("spi"))
	if err != nil {
		return 0, netip.Addr{}, 0, err
	}
	var proto maps.SAProto
	switch strings.ToLower(c.String("proto")) {
	case "esp":
	case "ah":
		proto = maps.SAProtoAH
	default:
		return 0, netip.Addr{}, 0, fmt.Errorf("--proto: %q is not esp or ah", c.String("proto"))
	}
	dst, err := parseAddr("dst", c.String("dst"))
	return spi, dst, proto, err
}

type saJSON struct {
	SPI           string `json:"spi"`
	Proto         string `json:"proto"` // ESP or AH
	Dst           string `json:"dst"`
	CPU           *int   `json:"cpu"`
	RxSeenPackets uint64 `json:"rx_seen_packets"`
	RxSeenBytes   uint64 `json:"rx_seen_bytes"`
	// Pending: the SPI is allocated, its SA not in yet; xdp_wan stashes
	// its packets.
	Pending bool `json:"pending,omitempty"`
}

func saCommand() *cli.Command {
	spiFlags := []cli.Flag{
		&cli.StringFlag{Name: "spi", Required: true, Usage: "SPI (0x1234abcd or decimal)"},
		&cli.StringFlag{Name: "dst", Required: true, Usage: "our address the SA's ESP or AH is sent to"},
		&cli.StringFlag{Name: "proto", Value: "esp", Usage: "the SA's protocol: esp or ah"},
	}
	return &cli.Command{
		Name:  "sa",
		Usage: "inbound SAs xdp_wan accepts ESP or AH for",
		Subcommands: []*cli.Command{
			{
				Name:  "list",
				Usage: "SAs with their rx_seen counters (before authentication); pending: SPI allocated, SA not in yet",
				Action: withMaps(func(c *cli.Context, out *output, s *maps.Set) error {
					sas, err := s.SA.List()
					if err != nil {
						return err
					}
					js := make([]saJSON, 0, len(sas))
					rows := make([][]string, 0, len(sas))
					for _, sa := range sas {
						j := saJSON{SPI: fmt.Sprintf("0x%08x", sa.SPI), Proto: sa.Proto.String(), Dst: sa.Dst.String(),
							RxSeenPackets: sa.RxSeenPackets, RxSeenBytes: sa.RxSeenBytes, Pending: sa.Pending}
						state := "active"
						if sa.Pending {
							state = "pending"
						}
						cpu := "-"
						if sa.CPU != maps.NoCPU {
							j.CPU = &sa.CPU
							cpu = strconv.Itoa(sa.CPU)
						}
						js = append(js, j)
						rows = append(rows, []string{j.SPI, j.Proto, j.Dst, cpu, strconv.FormatUint(sa.RxSeenPackets, 10), strconv.FormatUint(sa.RxSeenBytes, 10), state})
					}
					return out.print(js, []string{"SPI", "PROTO", "DST", "CPU", "RX_SEEN_PKTS", "RX_SEEN_BYTES", "STATE"}, rows)
				}),
			},
			{
				Name:  "add",
				Usage: "add an SA by hand (or change its CPU)",
				Flags: append(spiFlags, &cli.IntFlag{Name: "cpu", Value: maps.NoCPU, Usage: "steer the SA's packets to this CPU (-1: no steering)"}),
				Action: func(c *cli.Context) error {
					spi, dst, proto, err := saFlags(c)
					if err != nil {
						return err
					}
					s, err := openMaps(c)
					if err != nil {
						return err
					}
					defer s.Close()
					return s.SA.Put(maps.InboundSA{SPI: spi, Proto: proto, Dst: dst, CPU: c.Int("cpu")})
				},
			},
			{
				Name:  "del",
				Usage: "delete an SA",
				Flags: spiFlags,
				Action: func(c *cli.Context) error {
					spi, dst, proto, err := saFlags(c)
					if err != nil {
						return err
					}
					s, err := openMaps(c)
					if err != nil {
						return err
					}
					defer s.Close()
					return s.SA.Delete(proto, spi, dst)
				},
			},
		},
	}
}
