package main

import (
	"fmt"
	"runtime/debug"

	"github.com/urfave/cli/v2"

	"github.com/xdpsec/xdpsec/bpf"
)

// version and commit are set by the Makefile's build:
//
//	-ldflags "-X main.version=... -X main.commit=..."
//
// A binary built otherwise takes what the Go toolchain recorded.
var version, commit string

// buildVersion returns the version and commit, from -ldflags or else from
// the build information (`go install ...@v1.2.3` records the module version,
// a build in a git checkout without -buildvcs=false the revision).
func buildVersion() (v, c string) {
	v, c = version, commit
	if info, ok := debug.ReadBuildInfo(); ok {
		if v == "" && info.Main.Version != "" {
			v = info.Main.Version
		}
		modified := false
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				if c == "" {
					c = s.Value
				}
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
		if modified && commit == "" && c != "" {
			c += "-dirty"
		}
	}
	if v == "" {
		v = "(devel)"
	}
	if c == "" {
		c = "unknown"
	}
	return v, c
}

// printVersion answers --version: what was built and which BPF object it
// loads, so that a binary and a running dataplane can be matched.
func printVersion(c *cli.Context) {
	v, rev := buildVersion()
	fmt.Fprintf(c.App.Writer, "xdpsec %s\ncommit %s\nbpf xdpsec_bpfel.o sha256 %s\n", v, rev, bpf.ObjectHash())
}
