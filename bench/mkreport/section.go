package main

import (
	"bytes"
	"io"
	"os"
	"strings"
	"time"

	"github.com/xdpsec/xdpsec/bench"
)

// readmeSection is a section of bench/README.md between two marker lines,
// which a part of the report rewrites alone.
type readmeSection struct {
	begin, end string
	// before are markers the section goes in front of when the README
	// has none yet (the first found); else it goes at the end.
	before []string
}

// in returns the section of an existing README, its end marker's line
// included ("" if none).
func (m readmeSection) in(readme []byte) string {
	s := string(readme)
	i, j := strings.Index(s, m.begin), strings.Index(s, m.end)
	if i < 0 || j < i {
		return ""
	}
	return s[i : j+len(m.end)+1]
}

// replace puts section in place of the README's, or where before says.
func (m readmeSection) replace(readme []byte, section string) []byte {
	s := string(readme)
	if old := m.in(readme); old != "" {
		return []byte(strings.Replace(s, old, section, 1))
	}
	for _, b := range m.before {
		if i := strings.Index(s, b); i >= 0 {
			return []byte(s[:i] + section + "\n" + s[i:])
		}
	}
	if !strings.HasSuffix(s, "\n") {
		s += "\n"
	}
	return []byte(s + "\n" + section)
}

// rewriteFrom rewrites m's section of the README at readmePath from a
// test run's output file: parse reads the figures, write the section.
func rewriteFrom[T any](m readmeSection, readmePath, out string, parse func(io.Reader) (T, error),
	write func(*bytes.Buffer, T, bench.Machine, time.Time)) error {
	f, err := os.Open(out)
	if err != nil {
		return err
	}
	defer f.Close()
	v, err := parse(f)
	if err != nil {
		return err
	}
	readme, err := os.ReadFile(readmePath)
	if err != nil {
		return err
	}
	var b bytes.Buffer
	write(&b, v, bench.ThisMachine(), time.Now())
	return os.WriteFile(readmePath, m.replace(readme, b.String()), 0o644)
}
