package main

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/xdpsec/xdpsec/internal/packet"
	"github.com/xdpsec/xdpsec/loader"
	"github.com/xdpsec/xdpsec/maps"
)

// parsePrefix reads a prefix, or a bare address as a host prefix.
func parsePrefix(flag, s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("--%s: %q is not an address or prefix", flag, s)
		}
		return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return p, fmt.Errorf("--%s: %q is not a prefix", flag, s)
	}
	return p, nil
}

type policyJSON struct {
	ID       uint32 `json:"id"`
	Src      string `json:"src"`
	Dst      string `json:"dst"`
	Proto    string `json:"proto"`
	Dport    string `json:"dport"`
	Priority uint32 `json:"priority"`
	Action   string `json:"action"`
	IfID     uint32 `json:"if_id,omitempty"`
	Redirect string `json:"redirect,omitempty"`
	MSS      uint16 `json:"mss,omitempty"`
	Packets  uint64 `json:"packets"`
	Bytes    uint64 `json:"bytes"`
}

func toPolicyJSON(p maps.PolicyStats) policyJSON {
	j := policyJSON{
		ID: p.ID, Src: p.Src.String(), Dst: p.Dst.String(), Proto: maps.ProtoName(p.Proto),
		Dport: p.PortRange(), Priority: p.Priority, Action: maps.ActionName(p.Action),
		IfID: p.IfID, MSS: p.MSS, Packets: p.Packets, Bytes: p.Bytes,
	}
	if p.Redirect != 0 {
		j.Redirect = strconv.Itoa(int(p.Redirect))
		if ifc, err := net.InterfaceByIndex(int(p.Redirect)); err == nil {
			j.Redirect = ifc.Name
		}
	}
	return j
}

func policyRow(j policyJSON) []string {
	dash := func(v uint64) string {
		if v == 0 {
			return "-"
		}
		return strconv.FormatUint(v, 10)
	}
	redirect := j.Redirect
	if redirect == "" {
		redirect = "-"
	}
	return []string{strconv.Itoa(int(j.ID)), j.Src, j.Dst, j.Proto, j.Dport, strconv.Itoa(int(j.Priority)),
		j.Action, dash(uint64(j.IfID)), redirect, dash(uint64(j.MSS)),
		strconv.FormatUint(j.Packets, 10), strconv.FormatUint(j.Bytes, 10)}
}

var policyHeader = []string{"ID", "SRC", "DST", "PROTO", "DPORT", "PRIO", "ACTION", "IF_ID", "REDIRECT", "MSS", "PACKETS", "BYTES"}

func policyCommand() *cli.Command {
	return &cli.Command{
		Name:  "policy",
		Usage: "outbound policies tc_lan applies to LAN traffic",
		Subcommands: []*cli.Command{
			{
				Name:  "list",
				Usage: "policies with their counters",
				Action: withMaps(func(c *cli.Context, out *output, s *maps.Set) error {
					ps, err := s.SPD.List()
					if err != nil {
						return err
					}
					js := make([]policyJSON, 0, len(ps))
					rows := make([][]string, 0, len(ps))
					for _, p := range ps {
						j := toPolicyJSON(p)
						js = append(js, j)
						rows = append(rows, policyRow(j))
					}
					return out.print(js, policyHeader, rows)
				}),
			},
			{
				Name:  "add",
				Usage: "add a policy",
				Flags: []cli.Flag{
					&cli.UintFlag{Name: "id", Usage: "policy ID", DefaultText: "the lowest free"},
					&cli.StringFlag{Name: "src", Value: "0.0.0.0/0", Usage: "source prefix"},
					&cli.StringFlag{Name: "dst", Required: true, Usage: "destination prefix"},
					&cli.StringFlag{Name: "proto", Value: "any", Usage: "IP protocol: name or number"},
					&cli.StringFlag{Name: "dport", Value: "any", Usage: "destination port or range N-M"},
					&cli.StringFlag{Name: "action", Required: true, Usage: "protect, bypass or discard"},
					&cli.UintFlag{Name: "if-id", Usage: "XFRM if_id of the tunnel (protect)"},
					&cli.StringFlag{Name: "redirect", Usage: "interface to redirect protected packets to"},
					&cli.UintFlag{Name: "mss", Usage: "clamp the MSS of TCP SYNs to this (protect)"},
					&cli.UintFlag{Name: "priority", Usage: "lower wins among equally specific selectors"},
				},
				Action: policyAdd,
			},
			{
				Name:      "del",
				Usage:     "delete a policy",
				ArgsUsage: "ID",
				Action: func(c *cli.Context) error {
					id, err := strconv.ParseUint(c.Args().First(), 10, 32)
					if err != nil || c.NArg() != 1 {
						return fmt.Errorf("usage: xdpsec policy del ID")
					}
					s, err := openMaps(c)
					if err != nil {
						return err
					}
					defer s.Close()
					return s.SPD.Delete(uint32(id))
				},
			},
			{
				Name:  "lookup",
				Usage: "which policy a packet gets: the attached tc_lan answers a synthesized packet",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "src", Required: true, Usage: "source address"},
					&cli.StringFlag{Name: "dst", Required: true, Usage: "destination address"},
					&cli.StringFlag{Name: "proto", Value: "udp", Usage: "IP protocol"},
					&cli.UintFlag{Name: "dport", Usage: "destination port (tcp, udp, sctp, udplite)"},
				},
				Action: policyLookup,
			},
		},
	}
}

func policyAdd(c *cli.Context) error {
	src, err := parsePrefix("src", c.String("src"))
	if err != nil {
		return err
	}
	dst, err := parsePrefix("dst", c.String("dst"))
	if err != nil {
		return err
	}
	if src.Bits() == 0 && src.Addr().Is4() && !dst.Addr().Is4() {
		src = netip.MustParsePrefix("::/0") // the default source follows the destination's family
	}
	proto, err := maps.ParseProto(c.String("proto"))
	if err != nil {
		return err
	}
	lo, hi, err := maps.ParsePortRange(c.String("dport"))
	if err != nil {
		return err
	}
	action, err := maps.ParseAction(c.String("action"))
	if err != nil {
		return err
	}
	p := maps.Policy{
		ID: uint32(c.Uint("id")), Src: src, Dst: dst, Proto: proto, DportLo: lo, DportHi: hi,
		Priority: uint32(c.Uint("priority")), Action: action, IfID: uint32(c.Uint("if-id")),
	}
	if c.Uint("mss") > 0xffff {
		return fmt.Errorf("--mss %d out of range", c.Uint("mss"))
	}
	p.MSS = uint16(c.Uint("mss"))
	if name := c.String("redirect"); name != "" {
		ifc, err := net.InterfaceByName(name)
		if err != nil {
			return fmt.Errorf("--redirect: interface %q not found", name)
		}
		p.Redirect = uint32(ifc.Index)
	}
	s, err := openMaps(c)
	if err != nil {
		return err
	}
	defer s.Close()
	added, err := s.SPD.Add(p)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "policy %d added\n", added.ID)
	return nil
}

type lookupJSON struct {
	Verdict string      `json:"verdict"`
	Policy  *policyJSON `json:"policy"`
}

func policyLookup(c *cli.Context) error {
	out, err := newOutput(c)
	if err != nil {
		return err
	}
	src, err := parseAddr("src", c.String("src"))
	if err != nil {
		return err
	}
	dst, err := parseAddr("dst", c.String("dst"))
	if err != nil {
		return err
	}
	if src.Is4() != dst.Is4() {
		return fmt.Errorf("--src and --dst are of different families")
	}
	proto, err := maps.ParseProto(c.String("proto"))
	if err != nil {
		return err
	}
	if c.Uint("dport") > 0xffff {
		return fmt.Errorf("--dport %d out of range", c.Uint("dport"))
	}
	dport := uint16(c.Uint("dport"))
	spec := packet.Spec{Src: src, Dst: dst, Proto: proto}
	switch {
	case proto == packet.ProtoTCP:
		spec.Payload = packet.TCP(src, dst, 40000, dport, packet.TCPAck, nil, nil)
	case proto == packet.ProtoUDP:
		spec.Payload = packet.UDP(src, dst, 40000, dport, nil)
	case maps.PortProto(proto):
		spec.Payload = []byte{0x9c, 0x40, byte(dport >> 8), byte(dport), 0, 0, 0, 0, 0, 0, 0, 0}
	default:
		spec.Payload = make([]byte, 8)
	}
	if os.Geteuid() != 0 {
		return loader.ErrNotRoot
	}
	prog, err := loader.OpenTC(c.String("pin-dir"))
	if err != nil {
		return err
	}
	defer prog.Close()
	v, err := loader.ProbeTC(prog, packet.Build(spec))
	if err != nil {
		return err
	}
	res := lookupJSON{Verdict: "no policy: passed in clear"}
	if v.PolicyID != 0 {
		res.Verdict = maps.ActionName(v.Action)
		s, err := openMaps(c)
		if err != nil {
			return err
		}
		defer s.Close()
		p, err := s.SPD.Get(v.PolicyID)
		if err != nil {
			return err
		}
		j := toPolicyJSON(maps.PolicyStats{Policy: p})
		res.Policy = &j
	}
	if out.json {
		return out.print(res, nil, nil)
	}
	if res.Policy == nil {
		fmt.Fprintln(c.App.Writer, res.Verdict)
		return nil
	}
	fmt.Fprintf(c.App.Writer, "%s by policy %d\n", res.Verdict, v.PolicyID)
	return out.print(nil, policyHeader[:10], [][]string{policyRow(*res.Policy)[:10]})
}
