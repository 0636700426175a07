package radius

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	good := Server{Name: "a", Address: "192.0.2.1", Secret: NewSecret("s3cr3t-value")}
	for _, tc := range []struct {
		name string
		cfg  Config
		want []string // substrings of the error; none: valid
	}{
		{"valid", Config{Servers: []Server{good}}, nil},
		{"host name", Config{Servers: []Server{{Address: "radius.example.net", Secret: NewSecret("x")}}}, nil},
		{"no servers", Config{}, []string{"no server configured"}},
		{"no address", Config{Servers: []Server{{Name: "b", Secret: NewSecret("x")}}}, []string{"server 1 ('b'): address: missing"}},
		{"bad address", Config{Servers: []Server{{Address: "not a host", Secret: NewSecret("x")}}}, []string{"neither an IP address nor a host name"}},
		{"no secret", Config{Servers: []Server{good, {Name: "c", Address: "192.0.2.2"}}}, []string{"server 2 ('c'): shared secret missing"}},
		{"duplicate", Config{Servers: []Server{good, good}}, []string{"name 'a' already used by server 1"}},
		{"negative timeout", Config{Servers: []Server{good}, Timeout: -time.Second}, []string{"timeout -1s is negative"}},
		{"tries", Config{Servers: []Server{good}, Tries: 99}, []string{"tries 99 out of range"}},
		{"nas id", Config{Servers: []Server{good}, NASIdentifier: strings.Repeat("n", 254)}, []string{"NAS-Identifier is 254 bytes"}},
		{"zone", Config{Servers: []Server{good}, NASIPAddress: netip.MustParseAddr("fe80::1%eth0")}, []string{"has a zone"}},
		{"several", Config{Servers: []Server{{Name: "d"}}, Tries: -1}, []string{"address: missing", "shared secret missing", "tries -1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.want == nil {
				if err != nil {
					t.Fatalf("valid config refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("invalid config accepted")
			}
			mustContain(t, err.Error(), tc.want...)
			if strings.Contains(err.Error(), "s3cr3t") {
				t.Errorf("error shows the secret: %v", err)
			}
		})
	}
}

func TestSecretNeverFormats(t *testing.T) {
	s := NewSecret("s3cr3t-value")
	cfg := Config{Servers: []Server{{Name: "a", Address: "192.0.2.1", Secret: s}}}
	var out []string
	for _, f := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d"} {
		out = append(out, fmt.Sprintf(f, s), fmt.Sprintf(f, cfg), fmt.Sprintf(f, &cfg))
	}
	j, err := json.Marshal(cfg.Servers)
	if err != nil {
		t.Fatal(err)
	}
	out = append(out, string(j), fmt.Sprint(fmt.Errorf("wrapped: %v", cfg)))
	var logs strings.Builder
	slog.New(slog.NewTextHandler(&logs, nil)).Info("cfg", "secret", s, "server", cfg.Servers[0])
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("cfg", "secret", s, "server", cfg.Servers[0])
	out = append(out, logs.String())
	for _, o := range out {
		if strings.Contains(o, "s3cr3t") || strings.Contains(o, fmt.Sprintf("%x", "s3cr3t")) {
			t.Errorf("secret shown: %s", o)
		}
	}
	var back Secret
	if err := back.UnmarshalText([]byte("from-config")); err != nil || string(back.bytes()) != "from-config" || back.Len() != 11 {
		t.Errorf("UnmarshalText: %v %d", err, back.Len())
	}
}
