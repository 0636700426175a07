package demo

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/netip"
	"regexp"
	"strings"
)

// assignment is one `key = value` line of swanctl.conf.
var assignment = regexp.MustCompile(`^(\s*)([A-Za-z0-9_.-]+)(\s*=\s*)(.*?)\s*$`)

// section opens a block: `name {`.
var section = regexp.MustCompile(`^\s*([A-Za-z0-9_.-]+)\s*\{\s*$`)

// swapped are the keys whose values the two ends of a connection exchange.
var swapped = map[string]string{
	"local_addrs": "remote_addrs", "remote_addrs": "local_addrs",
	"local_ts": "remote_ts", "remote_ts": "local_ts",
}

// SiteConfs derives both gateways' swanctl.conf from the example, which is
// site A's side: A's is the example with the placeholder secret replaced
// by secret (base64); B's also exchanges local and remote addresses,
// identities and traffic selectors, and has start_action = none, so that
// only A initiates (both would start a CHILD_SA each).
func SiteConfs(example, secret string) (a, b string, err error) {
	placeholder := regexp.MustCompile(`(?m)^(\s*secret\s*=\s*)0sREPLACE\S*`)
	if !placeholder.MatchString(example) {
		return "", "", fmt.Errorf("demo config: the example has no placeholder secret to replace")
	}
	a = placeholder.ReplaceAllString(example, "${1}0s"+secret)

	values, err := scan(a)
	if err != nil {
		return "", "", err
	}

	var out []string
	var stack []string
	for _, l := range strings.Split(a, "\n") {
		code, comment, hasComment := strings.Cut(l, "#")
		if m := section.FindStringSubmatch(code); m != nil {
			stack = append(stack, m[1])
		} else if strings.TrimSpace(code) == "}" && len(stack) > 0 {
			stack = stack[:len(stack)-1]
		} else if m := assignment.FindStringSubmatch(code); m != nil {
			key, val := m[2], m[4]
			switch {
			case swapped[key] != "":
				val = values[swapped[key]]
			case key == "id" && len(stack) > 0 && stack[len(stack)-1] == "local":
				val = values["remote.id"]
			case key == "id" && len(stack) > 0 && stack[len(stack)-1] == "remote":
				val = values["local.id"]
			case key == "start_action":
				val = "none"
			}
			l = m[1] + m[2] + m[3] + val
			if hasComment {
				l += " #" + comment
			}
		}
		out = append(out, l)
	}
	return a, strings.Join(out, "\n"), nil
}

// scan collects the values the two ends exchange: local_addrs,
// remote_addrs, local_ts, remote_ts, and the ids of the local and remote
// blocks as local.id and remote.id.
func scan(conf string) (map[string]string, error) {
	values := map[string]string{}
	var stack []string
	for _, l := range strings.Split(conf, "\n") {
		code, _, _ := strings.Cut(l, "#")
		if m := section.FindStringSubmatch(code); m != nil {
			stack = append(stack, m[1])
			continue
		}
		if strings.TrimSpace(code) == "}" && len(stack) > 0 {
			stack = stack[:len(stack)-1]
			continue
		}
		m := assignment.FindStringSubmatch(code)
		if m == nil {
			continue
		}
		key := m[2]
		if key == "id" && len(stack) > 0 {
			key = stack[len(stack)-1] + ".id"
		}
		if swapped[key] == "" && key != "local.id" && key != "remote.id" {
			continue
		}
		if _, dup := values[key]; dup {
			return nil, fmt.Errorf("demo config: %s appears twice; the demo expects one connection with one CHILD_SA", key)
		}
		values[key] = m[4]
	}
	for _, k := range []string{"local_addrs", "remote_addrs", "local_ts", "remote_ts", "local.id", "remote.id"} {
		if values[k] == "" {
			return nil, fmt.Errorf("demo config: the example has no %s", k)
		}
	}
	return values, nil
}

// sites are the addresses of the example: gateway A's and B's WAN
// addresses and the networks behind them.
type sites struct {
	outerA, outerB netip.Addr
	innerA, innerB netip.Prefix
}

// exampleSites reads the addresses from site A's configuration; each must
// be a single address or prefix, as in the example.
func exampleSites(conf string) (sites, error) {
	v, err := scan(conf)
	if err != nil {
		return sites{}, err
	}
	var s sites
	if s.outerA, err = netip.ParseAddr(v["local_addrs"]); err != nil {
		return s, fmt.Errorf("demo config: local_addrs: %w", err)
	}
	if s.outerB, err = netip.ParseAddr(v["remote_addrs"]); err != nil {
		return s, fmt.Errorf("demo config: remote_addrs: %w", err)
	}
	if s.innerA, err = netip.ParsePrefix(v["local_ts"]); err != nil {
		return s, fmt.Errorf("demo config: local_ts: %w", err)
	}
	if s.innerB, err = netip.ParsePrefix(v["remote_ts"]); err != nil {
		return s, fmt.Errorf("demo config: remote_ts: %w", err)
	}
	if s.outerA.Is4() != s.outerB.Is4() || s.innerA.Addr().Is4() != s.innerB.Addr().Is4() {
		return s, fmt.Errorf("demo config: mixed address families")
	}
	return s, nil
}

// newSecret is a fresh 32-byte PSK in base64, for one run of the demo.
func newSecret() (string, error) {
	var k [32]byte
	if _, err := rand.Read(k[:]); err != nil {
		return "", fmt.Errorf("demo secret: %w", err)
	}
	return base64.StdEncoding.EncodeToString(k[:]), nil
}
