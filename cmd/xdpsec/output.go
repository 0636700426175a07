package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"
)

// output prints a listing as an aligned table (like ip and bpftool) or,
// with -o json, as JSON.
type output struct {
	w    io.Writer
	json bool
}

func newOutput(c *cli.Context) (*output, error) {
	switch f := c.String("output"); f {
	case "", "table":
		return &output{w: c.App.Writer}, nil
	case "json":
		return &output{w: c.App.Writer, json: true}, nil
	default:
		return nil, fmt.Errorf("unknown output format %q (want table or json)", f)
	}
}

// print writes v as JSON, or header and rows as a table.
func (o *output) print(v any, header []string, rows [][]string) error {
	if o.json {
		enc := json.NewEncoder(o.w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	tw := tabwriter.NewWriter(o.w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}
