package swanctl

import (
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"
)

// FuzzLoad feeds arbitrary bytes to the loader as the main file (with a
// second file it may include): it must not panic, must return either a
// configuration or an error, and what it loads must equal itself.
func FuzzLoad(f *testing.F) {
	for _, p := range []string{"testdata/psk/swanctl.conf", "testdata/psk/conf.d/secrets.conf", "testdata/cert/swanctl.conf"} {
		b, err := os.ReadFile(filepath.FromSlash(p))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(diffBase))
	f.Add([]byte("a : b, c.d { include x.conf\n}\nb { \"x\" = \"\\\n\" }\n"))
	f.Add([]byte("connections { c { children { x { local_ts = 10.0.0.0/8[tcp/1-2], dynamic\nremote_ts = ::/0 } } } }\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		fsys := fstest.MapFS{
			"etc/xdpsec/swanctl.conf": &fstest.MapFile{Data: data, Mode: 0o600},
			"etc/xdpsec/x.conf":       &fstest.MapFile{Data: []byte("include swanctl.conf\nk = v\n"), Mode: 0o600},
			"etc/xdpsec/x509/c.pem":   &fstest.MapFile{Data: []byte("c"), Mode: 0o644},
		}
		cfg, err := LoadFS(FromFS(fsys), mainFile)
		if (cfg == nil) == (err == nil) {
			t.Fatalf("config %v and error %v", cfg, err)
		}
		if err != nil {
			_ = err.Error()
			return
		}
		if ch := Diff(cfg, cfg); !ch.Empty() {
			t.Fatalf("config differs from itself: %+v", ch)
		}
		_ = cfg.String()
	})
}

// FuzzValues runs the value parsers on arbitrary strings.
func FuzzValues(f *testing.F) {
	for _, s := range []string{"10.0.0.0/8[tcp/80-90]", "dynamic[udp]", "4h", "0x10m", "1g", "%unique", "0x1/0xff", "a-b", "10.0.0.1-10.0.0.2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if ts, err := parseTS(s); err == nil {
			back, err := parseTS(ts.String())
			if err != nil || back != ts {
				t.Fatalf("%q -> %v -> %v, %v", s, ts, back, err)
			}
		}
		parseTime(s)
		parseBytes(s)
		parseAddrs(s)
		parseMark(s)
		parseIfID(s)
		decodeSecret(s)
	})
}
