package main

import (
	"fmt"
	"strconv"

	"github.com/urfave/cli/v2"

	"github.com/xdpsec/xdpsec/maps"
)

type counterJSON struct {
	Name    string `json:"name"`
	Program string `json:"program"`
	Kind    string `json:"kind"`
	Packets uint64 `json:"packets"`
	Bytes   uint64 `json:"bytes"`
	Help    string `json:"help"`
}

func statsCommand() *cli.Command {
	return &cli.Command{
		Name:  "stats",
		Usage: "verdict and drop-reason counters of both programs",
		Action: withMaps(func(c *cli.Context, out *output, s *maps.Set) error {
			cs, err := s.Counters.Read()
			if err != nil {
				return err
			}
			js := make([]counterJSON, 0, len(cs))
			rows := make([][]string, 0, len(cs))
			for _, v := range cs {
				js = append(js, counterJSON{v.Name, v.Program, string(v.Kind), v.Packets, v.Bytes, v.Help})
				rows = append(rows, []string{v.Program, string(v.Kind), v.Name,
					strconv.FormatUint(v.Packets, 10), strconv.FormatUint(v.Bytes, 10), v.Help})
			}
			return out.print(js, []string{"PROGRAM", "KIND", "COUNTER", "PACKETS", "BYTES", "MEANING"}, rows)
		}),
	}
}

func ratelimitCommand() *cli.Command {
	return &cli.Command{
		Name:  "ratelimit",
		Usage: "show or set xdp_wan's per-source limit on new IKE SA requests",
		Flags: []cli.Flag{
			&cli.UintFlag{Name: "rate", Usage: "requests per second per source (0: no limit)"},
			&cli.UintFlag{Name: "burst", Usage: "requests a source may send back to back"},
		},
		Action: withMaps(func(c *cli.Context, out *output, s *maps.Set) error {
			if c.IsSet("rate") || c.IsSet("burst") {
				cur, err := s.Config.IKERateLimit()
				if err != nil {
					return err
				}
				if c.IsSet("rate") {
					cur.Rate = uint32(c.Uint("rate"))
				}
				if c.IsSet("burst") {
					cur.Burst = uint32(c.Uint("burst"))
				}
				if err := s.Config.SetIKERateLimit(cur); err != nil {
					return err
				}
			}
			l, err := s.Config.IKERateLimit()
			if err != nil {
				return err
			}
			rate := fmt.Sprintf("%d/s per source", l.Rate)
			if l.Rate == 0 {
				rate = "no limit"
			}
			return out.print(struct {
				Rate  uint32 `json:"rate"`
				Burst uint32 `json:"burst"`
			}{l.Rate, l.Burst}, []string{"IKE_SA_INIT_RATE", "BURST"}, [][]string{{rate, strconv.Itoa(int(l.Burst))}})
		}),
	}
}
