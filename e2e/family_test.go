package e2e

import "testing"

func (f family) String() string {
	if f == ipv6 {
		return "ipv6"
	}
	return "ipv4"
}

// forFamilies runs test once with IPv4 and once with IPv6 outer (and
// inner) addresses, as subtests named ipv4 and ipv6.
func forFamilies(t *testing.T, test func(t *testing.T, f family)) {
	for _, f := range []family{ipv4, ipv6} {
		t.Run(f.String(), func(t *testing.T) { test(t, f) })
	}
}
