package ike_test

import (
	"errors"
	"github.com/xdpsec/xdpsec/ike/transform"
	"log/slog"
	"net/netip"
	"strings"
	"testing"

	"github.com/xdpsec/xdpsec/ike"
	"github.com/xdpsec/xdpsec/ike/dataplanetest"
)

// TestImportNotAllowed: a taken-back IKE SA (IKEv2 and IKEv1) is checked
// against its connection as loaded now. Another peer address, peer
// identity, local identity or proposal refuses it with ErrNotAllowed, and
// its SAs are named for removal; the unchanged connection takes it back.
func TestImportNotAllowed(t *testing.T) {
	other := netip.MustParseAddr("192.0.2.99")
	cases := []struct {
		name   string
		change func(c *ike.Connection)
		why    string
	}{
		{"unchanged", func(c *ike.Connection) {}, ""},
		{"peer address", func(c *ike.Connection) { c.RemoteAddrs = []netip.Addr{other} }, "is not among the remote_addrs"},
		{"peer identity", func(c *ike.Connection) { c.Remote[0].ID = ike.MustParseIdentity("other.example.org") }, "peer identity 'sun.example.org' does not match"},
		{"local identity", func(c *ike.Connection) { c.Local[0].ID = ike.MustParseIdentity("venus.example.org") }, "our identity 'moon.example.org' is not"},
		{"proposal", func(c *ike.Connection) {
			c.Proposals = transform.MustParseProposals(transform.ProtoIKE, "aes256-sha384-ecp384")
		}, "is not among those of connection"},
	}
	for _, version := range []int{2, 1} {
		for _, tc := range cases {
			t.Run(map[int]string{1: "IKEv1/", 2: "IKEv2/"}[version]+tc.name, func(t *testing.T) {
				var tb *testbed
				if version == 1 {
					tb = v1Bed(t)
				} else {
					tb = newTestbed(t, bedOptions{})
				}
				tb.establish()
				st := tb.a.e.Detach()
				c := baseConn(addrA, addrB, "moon.example.org", "sun.example.org", "10.1.0.0/16", "10.2.0.0/16")
				if version == 1 {
					v1("aes128-sha256-modp2048", "aes128-sha256")(c)
				}
				tc.change(c)
				e, err := ike.New(ike.Config{Logger: slog.New(newLogRecorder()), Sender: tb.net.Sender(), Dataplane: dataplanetest.New(1), Clock: tb.clock,
					Credentials: ike.Credentials{Shared: []ike.SharedKey{{Secret: []byte("this is a shared secret")}}}})
				if err != nil {
					t.Fatal(err)
				}
				defer e.Close()
				if err := e.AddConnection(c); err != nil {
					t.Fatal(err)
				}
				errs := e.Import(st)
				if tc.why == "" {
					if len(errs) != 0 || len(e.IKESAs()) != 1 {
						t.Fatalf("unchanged connection: errs %v, %d IKE SAs", errs, len(e.IKESAs()))
					}
					return
				}
				if len(errs) != 1 || !errors.Is(errs[0].Err, ike.ErrNotAllowed) || !strings.Contains(errs[0].Error(), tc.why) {
					t.Fatalf("errs %v, want ErrNotAllowed saying %q", errs, tc.why)
				}
				if len(errs[0].Remove) != 2 || len(e.IKESAs()) != 0 {
					t.Fatalf("remove %v, %d IKE SAs taken back", errs[0].Remove, len(e.IKESAs()))
				}
			})
		}
	}
}
