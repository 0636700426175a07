package swanctl

import (
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/xdpsec/xdpsec/ike"
	"github.com/xdpsec/xdpsec/ike/dataplanetest"
	"github.com/xdpsec/xdpsec/ike/iketest"
)

// TestRedirectSection: a connection's redirect section becomes the
// engine's RedirectRule, gateways in file order, choose defaulting to load.
func TestRedirectSection(t *testing.T) {
	cfg := mustLoadMem(t, map[string]string{"swanctl.conf": conn(`  redirect {
   poll_interval = 2s
   gateways {
    gw2 {
     address = 192.0.2.12
     metrics = http://192.0.2.12:9901/metrics
    }
    gw3 {
     address = gw3.example.net
    }
   }
  }`, "")})
	c := cfg.Connections[0]
	r := c.Connection.Redirect
	if r == nil || c.Redirect == nil || r != &c.Redirect.RedirectRule {
		t.Fatalf("redirect rule not passed to the engine: %+v", c.Connection.Redirect)
	}
	want := []ike.RedirectGateway{
		{Name: "gw2", Address: "192.0.2.12", Metrics: "http://192.0.2.12:9901/metrics"},
		{Name: "gw3", Address: "gw3.example.net"},
	}
	if r.Choose != ike.RedirectByLoad || len(r.Gateways) != 2 || r.Gateways[0] != want[0] || r.Gateways[1] != want[1] {
		t.Fatalf("rule %+v", r)
	}
	if c.Redirect.PollInterval != 2*time.Second || c.Redirect.Pos.Line != 4 {
		t.Fatalf("section %+v", c.Redirect)
	}
	if r.During != ike.RedirectInInit {
		t.Fatalf("during %v", r.During)
	}
	hash := mustLoadMem(t, map[string]string{"swanctl.conf": conn("  redirect {\n   choose = hash\n   gateways { a { address = 2001:db8::2 } }\n  }", "")})
	if r := hash.Connections[0].Connection.Redirect; r.Choose != ike.RedirectByHash || hash.Connections[0].Redirect.PollInterval != DefaultRedirectPoll {
		t.Fatalf("%+v", r)
	}
	auth := mustLoadMem(t, map[string]string{"swanctl.conf": conn("  redirect {\n   during = IKE_AUTH\n   gateways { a { address = 192.0.2.9 } }\n  }", "")})
	if r := auth.Connections[0].Connection.Redirect; r.During != ike.RedirectInAuth {
		t.Fatalf("during = IKE_AUTH: %+v", r)
	}
	// The engine takes it as it is.
	e, err := ike.New(ike.Config{Logger: slog.New(slog.DiscardHandler), Sender: iketest.NewNetwork().Sender(), Dataplane: dataplanetest.New(1)})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if err := e.AddConnection(c.Connection); err != nil {
		t.Fatal(err)
	}
	// A reload that changes only the rule says so apart: the SAs stay.
	other := mustLoadMem(t, map[string]string{"swanctl.conf": conn("  redirect {\n   choose = hash\n   gateways { a { address = 2001:db8::3 } }\n  }", "")})
	if ch := Diff(hash, other); len(ch.Changed) != 0 || len(ch.RedirectChanged) != 1 || ch.Empty() {
		t.Fatalf("diff %+v", ch)
	}
	if ch := Diff(hash, mustLoadMem(t, map[string]string{"swanctl.conf": conn("", "")})); len(ch.RedirectChanged) != 1 {
		t.Fatalf("rule removed: %+v", ch)
	}
	withRekey := mustLoadMem(t, map[string]string{"swanctl.conf": conn("  rekey_time = 1h\n  redirect {\n   choose = hash\n   gateways { a { address = 2001:db8::3 } }\n  }", "")})
	if ch := Diff(hash, withRekey); len(ch.Changed) != 1 || len(ch.RedirectChanged) != 0 {
		t.Fatalf("rule and rekey_time changed: %+v", ch)
	}
	// gateways = fleet: the fleet's members, no section needed.
	fleet := mustLoadMem(t, map[string]string{"swanctl.conf": conn("  redirect {\n   choose = load\n   gateways = fleet\n  }", "")})
	if r := fleet.Connections[0].Connection.Redirect; !r.Fleet || len(r.Gateways) != 0 {
		t.Fatalf("gateways = fleet: %+v", r)
	}
	if err := e.AddConnection(fleet.Connections[0].Connection); err != nil {
		t.Fatalf("the engine refuses gateways = fleet: %v", err)
	}
	if ch := Diff(hash, mustLoadMem(t, map[string]string{"swanctl.conf": "\n" + conn("  redirect {\n   choose = hash\n   gateways { a { address = 2001:db8::2 } }\n  }", "")})); !ch.Empty() {
		t.Fatalf("moving the section changed the connection: %+v", ch)
	}
}

// TestRedirectErrors: every mistake in a redirect section is named with
// file, line and key.
func TestRedirectErrors(t *testing.T) {
	for _, tc := range []struct {
		name, section string
		want          []string
		is            error
	}{
		{"bad choose", "  redirect {\n   choose = random\n   gateways { a { address = 192.0.2.9 } }\n  }",
			[]string{mainFile + `:5: connections.site.redirect.choose: "random" is not one of load or hash`}, ErrValue},
		{"bad during", "  redirect {\n   during = ike_sa_auth\n   gateways { a { address = 192.0.2.9 } }\n  }",
			[]string{mainFile + `:5: connections.site.redirect.during: "ike_sa_auth" is not one of ike_sa_init or ike_auth`}, ErrValue},
		{"no gateways", "  redirect {\n   choose = hash\n  }",
			[]string{mainFile + `:4: connections.site.redirect.gateways: no gateway to redirect to`}, ErrInvalid},
		{"missing address", "  redirect {\n   gateways {\n    a {\n     metrics = http://192.0.2.9:9901/metrics\n    }\n   }\n  }",
			[]string{mainFile + `:6: connections.site.redirect.gateways.a: missing address`}, ErrInvalid},
		{"bad address", "  redirect {\n   gateways {\n    a {\n     address = not a host\n    }\n   }\n  }",
			[]string{mainFile + `:7: connections.site.redirect.gateways.a.address: "not a host" is neither an IP address nor a domain name`}, ErrValue},
		{"bad metrics", "  redirect {\n   gateways {\n    a {\n     address = 192.0.2.9\n     metrics = 192.0.2.9:9901\n    }\n   }\n  }",
			[]string{mainFile + `:8: connections.site.redirect.gateways.a.metrics: "192.0.2.9:9901" is not an http:// or https:// URL of a Prometheus endpoint`}, ErrValue},
		{"unknown key", "  redirect {\n   gateway = 192.0.2.9\n   gateways { a { address = 192.0.2.9 } }\n  }",
			[]string{mainFile + `:5: connections.site.redirect.gateway: unknown key`}, ErrUnknownKey},
		{"unknown gateway key", "  redirect {\n   gateways { a { address = 192.0.2.9\n port = 4500 } }\n  }",
			[]string{mainFile + `:6: connections.site.redirect.gateways.a.port: unknown key`}, ErrUnknownKey},
		{"unknown section", "  redirect {\n   servers { }\n   gateways { a { address = 192.0.2.9 } }\n  }",
			[]string{mainFile + `:5: connections.site.redirect.servers: unknown section (expected gateways)`}, ErrUnknownKey},
		{"short poll", "  redirect {\n   poll_interval = 10ms\n   gateways { a { address = 192.0.2.9 } }\n  }",
			[]string{mainFile + `:5: connections.site.redirect.poll_interval: poll_interval must be at least 100ms`}, ErrValue},
		{"gateways not fleet", "  redirect {\n   gateways = all\n  }",
			[]string{mainFile + `:5: connections.site.redirect.gateways: gateways = "all": only fleet is a value (else a gateways section)`}, ErrValue},
		{"IKEv1", "  version = 1\n  redirect {\n   gateways { a { address = 192.0.2.9 } }\n  }",
			[]string{mainFile + `:5: connections.site.redirect: redirection needs IKEv2`}, ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadMem(t, map[string]string{"swanctl.conf": conn(tc.section, "")})
			if got := errorLines(err); strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("got\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(tc.want, "\n  "))
			}
			if !errors.Is(err, tc.is) {
				t.Errorf("errors.Is(%v) false", tc.is)
			}
		})
	}
}
