package swanctl

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func TestResolve(t *testing.T) {
	cfg := mustLoadMem(t, map[string]string{"swanctl.conf": `
connections {
	a {
		local_addrs = %any4
		remote_addrs = 192.0.2.2, gw.example.net
		local { auth = psk }
		remote { auth = psk }
		children { c { } }
	}
}
secrets { ike { secret = x } }`})
	c := cfg.Connections[0]
	if len(c.Connection.LocalAddrs) != 0 || !slices.Equal(c.Connection.RemoteAddrs, []netip.Addr{netip.MustParseAddr("192.0.2.2")}) {
		t.Errorf("before Resolve: local %v remote %v, want none and the IP address only", c.Connection.LocalAddrs, c.Connection.RemoteAddrs)
	}
	lookup := func(host string) (netip.Addr, error) {
		if host == "gw.example.net" {
			return netip.MustParseAddr("198.51.100.9"), nil
		}
		return netip.Addr{}, errors.New("no such host")
	}
	if err := cfg.Resolve(lookup); err != nil {
		t.Fatal(err)
	}
	want := []netip.Addr{netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("198.51.100.9")}
	if !slices.Equal(c.Connection.RemoteAddrs, want) {
		t.Errorf("remote addresses %v, want %v", c.Connection.RemoteAddrs, want)
	}
}

func TestResolveRefuses(t *testing.T) {
	for _, tt := range []struct{ set, want string }{
		{"remote_addrs = 10.0.0.0/8", mainFile + `:3: connections.a.remote_addrs: 10.0.0.0/8: subnets and ranges are not supported yet`},
		{"remote_addrs = nowhere.example", mainFile + `:3: connections.a.remote_addrs: cannot resolve "nowhere.example": no such host`},
		{"children { c { if_id_out = %unique } }", mainFile + `:3: connections.a.children.c.if_id_out: %unique interface IDs are not supported yet`},
		{"children { c { mark_in = 5 } }", mainFile + `:3: connections.a.children.c.mark_in: marks are not supported yet`},
		{"children { c { replay_window = 0 } }", mainFile + `:3: connections.a.children.c.replay_window: 0 (replay protection off) is not supported`},
		{"children { c { replay_window = 4097 } }", mainFile + `:3: connections.a.children.c.replay_window: 4097 is more than the kernel's 4096`},
		{"children { c { remote_ts = 10.0.0.0/8[tcp/opaque] } }", mainFile + `:3: connections.a.children.c.remote_ts: 10.0.0.0/8[tcp/opaque]: OPAQUE ports are not supported yet`},
		{"children { c { local_ts = dynamic[udp] } }", mainFile + `:3: connections.a.children.c.local_ts: dynamic[udp]: dynamic with a protocol or port is not supported yet`},
	} {
		cfg := mustLoadMem(t, map[string]string{"swanctl.conf": "connections {\n a {\n" + tt.set + "\n local { auth = psk }\n remote { auth = psk }\n }\n}\nsecrets { ike { secret = x } }\n"})
		err := cfg.Resolve(func(string) (netip.Addr, error) { return netip.Addr{}, errors.New("no such host") })
		if got := strings.Join(errorLines(err), "\n"); got != tt.want {
			t.Errorf("%s:\n got %s\nwant %s", tt.set, got, tt.want)
		}
		if !errors.Is(err, ErrUnsupported) && !errors.Is(err, ErrValue) {
			t.Errorf("%s: %v is neither ErrUnsupported nor ErrValue", tt.set, err)
		}
	}
}
