package swanctl

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
)

// conn wraps connection settings into a file with a secret-free connection
// "site" and one child "net".
func conn(settings, child string) string {
	return "connections {\n site {\n  remote_addrs = 192.0.2.2\n" + settings + "\n  local { auth = psk }\n  remote { auth = psk }\n  children {\n   net {\n" + child + "\n   }\n  }\n }\n}\nsecrets { ike { secret = x } }\n"
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  []string // every error line, exactly
		is    error
	}{
		{"unknown key", map[string]string{"swanctl.conf": conn("  foo = bar", "")},
			[]string{mainFile + ":4: connections.site.foo: unknown key"}, ErrUnknownKey},
		{"unknown child key", map[string]string{"swanctl.conf": conn("", "    esp_proposal = aes128gcm16")},
			[]string{mainFile + ":9: connections.site.children.net.esp_proposal: unknown key"}, ErrUnknownKey},
		{"unknown top-level section", map[string]string{"swanctl.conf": "\nconnection { }\n"},
			[]string{mainFile + ":2: connection: unknown section (expected connections or secrets)"}, ErrUnknownKey},
		{"unknown connection section", map[string]string{"swanctl.conf": conn("  child { }", "")},
			[]string{mainFile + ":4: connections.site.child: unknown section (expected local<suffix>, remote<suffix>, children or redirect)"}, ErrUnknownKey},
		{"unsupported key", map[string]string{"swanctl.conf": conn("  ppk_id = moon", "")},
			[]string{mainFile + ":4: connections.site.ppk_id: not supported yet"}, ErrUnsupported},
		{"unsupported value", map[string]string{"swanctl.conf": conn("", "    ipcomp = yes")},
			[]string{mainFile + `:9: connections.site.children.net.ipcomp: "yes" is not supported yet (only "no" is)`}, ErrUnsupported},
		{"unsupported mode", map[string]string{"swanctl.conf": conn("", "    mode = beet")},
			[]string{mainFile + `:9: connections.site.children.net.mode: mode "beet" is not supported yet`}, ErrUnsupported},
		{"eap auth", map[string]string{"swanctl.conf": "connections {\n c {\n  remote {\n   auth = eap-ttls\n  }\n }\n}\n"},
			[]string{mainFile + `:4: connections.c.remote.auth: EAP authentication "eap-ttls" is not supported yet (eap-mschapv2, eap-md5, eap-tls, eap-dynamic or eap-radius)`}, ErrUnsupported},
		{"eap secret", map[string]string{"swanctl.conf": "secrets {\n eap-carol {\n  secret = x\n }\n}\n"},
			[]string{mainFile + ":2: secrets.eap-carol: EAP secret without id: name the user it is for"}, ErrInvalid},
		{"xauth secret", map[string]string{"swanctl.conf": "secrets {\n xauth {\n  secret = x\n }\n}\n"},
			[]string{mainFile + ":2: secrets.xauth: XAuth secret without id: name the user it is for"}, ErrInvalid},
		{"ntlm secret", map[string]string{"swanctl.conf": "secrets {\n ntlm {\n  secret = x\n }\n}\n"},
			[]string{mainFile + ":2: secrets.ntlm: NTLM secrets are not supported yet"}, ErrUnsupported},
		{"xauth backend", map[string]string{"swanctl.conf": "connections {\n c {\n  version = 1\n  remote-2 {\n   auth = xauth-pam\n  }\n }\n}\n"},
			[]string{mainFile + `:5: connections.c.remote-2.auth: XAuth backend "xauth-pam" is not supported (xauth, xauth-generic or xauth-radius)`}, ErrUnsupported},
		{"xauth_id without xauth", map[string]string{"swanctl.conf": conn("  local {\n   auth = psk\n   xauth_id = alice\n  }", "")},
			[]string{mainFile + ":6: connections.site.local.xauth_id: xauth_id applies to rounds with XAuth authentication only"}, ErrInvalid},
		{"xauth with IKEv2", map[string]string{"swanctl.conf": conn("  remote-2 { auth = xauth }", "")},
			[]string{mainFile + ":2: connections.site: multiple authentication rounds (RFC 4739) are not supported yet, except an XAuth round of an IKEv1 connection"}, ErrUnsupported},
		{"bad proposal", map[string]string{"swanctl.conf": conn("", "    esp_proposals = aes128-foo")},
			[]string{mainFile + `:9: connections.site.children.net.esp_proposals: invalid proposal "aes128-foo": algorithm "foo" not recognized`}, transform_ErrProposal},
		{"bad IKE proposal", map[string]string{"swanctl.conf": conn("  proposals = aes128-sha256", "")},
			[]string{mainFile + `:4: connections.site.proposals: invalid proposal "aes128-sha256": a DH group is mandatory in IKE proposals`}, ErrValue},
		{"bad time unit", map[string]string{"swanctl.conf": conn("  rekey_time = 4w", "")},
			[]string{mainFile + `:4: connections.site.rekey_time: "4w" is not a time (a number with an optional unit s, m, h or d)`}, ErrValue},
		{"bad child time", map[string]string{"swanctl.conf": conn("", "    life_time = 1.5h")},
			[]string{mainFile + `:9: connections.site.children.net.life_time: "1.5h" is not a time (a number with an optional unit s, m, h or d)`}, ErrValue},
		{"bad bytes", map[string]string{"swanctl.conf": conn("", "    rekey_bytes = 5t")},
			[]string{mainFile + `:9: connections.site.children.net.rekey_bytes: "5t" is not a byte count (a number with an optional unit k, m or g)`}, ErrValue},
		{"bad TS", map[string]string{"swanctl.conf": conn("", "    local_ts = 10.0.0.0/33")},
			[]string{mainFile + `:9: connections.site.children.net.local_ts: traffic selector "10.0.0.0/33": "10.0.0.0/33" is not a valid subnet`}, ErrValue},
		{"bad TS protocol", map[string]string{"swanctl.conf": conn("", "    remote_ts = 10.0.0.0/8[foo/80]")},
			[]string{mainFile + `:9: connections.site.children.net.remote_ts: traffic selector "10.0.0.0/8[foo/80]": unknown protocol "foo"`}, ErrValue},
		{"bad if_id", map[string]string{"swanctl.conf": conn("  if_id_in = 0xffffffff", "")},
			[]string{mainFile + `:4: connections.site.if_id_in: if_id 0xffffffff is reserved (at most 0xfffffffd, or %unique, %unique-dir)`}, ErrValue},
		{"bad version", map[string]string{"swanctl.conf": conn("  version = 3", "")},
			[]string{mainFile + `:4: connections.site.version: "3" is out of range (at most 2)`}, ErrValue},
		{"bad port", map[string]string{"swanctl.conf": conn("  remote_port = 70000", "")},
			[]string{mainFile + `:4: connections.site.remote_port: "70000" is out of range (at most 65535)`}, ErrValue},
		{"bad bool", map[string]string{"swanctl.conf": conn("  mobike = maybe", "")},
			[]string{mainFile + `:4: connections.site.mobike: "maybe" is not a boolean (yes or no)`}, ErrValue},
		{"bad enum", map[string]string{"swanctl.conf": conn("", "    start_action = go")},
			[]string{mainFile + `:9: connections.site.children.net.start_action: "go" is not one of none, trap, start or trap|start`}, ErrValue},
		{"bad address", map[string]string{"swanctl.conf": conn("  local_addrs = 10.0.0.1-10.0.0.0", "")},
			[]string{mainFile + `:4: connections.site.local_addrs: range "10.0.0.1-10.0.0.0" ends before it starts`}, ErrValue},
		{"missing cert", map[string]string{"swanctl.conf": "connections {\n c {\n  local {\n   certs = nope.pem\n  }\n }\n}\n"},
			[]string{mainFile + `:4: connections.c.local.certs: "/etc/xdpsec/x509/nope.pem": no such file`}, ErrValue},
		{"families do not meet", map[string]string{"swanctl.conf": conn("", "    local_ts = 10.0.0.0/8\n    remote_ts = 2001:db8::/32")},
			[]string{mainFile + `:10: connections.site.children.net: local_ts (IPv4) and remote_ts (IPv6) have no address family in common`}, ErrInvalid},
		{"dynamic family", map[string]string{"swanctl.conf": conn("  local_addrs = 192.0.2.1", "    remote_ts = 2001:db8::/32")},
			[]string{mainFile + `:9: connections.site.children.net: local_ts (IPv4) and remote_ts (IPv6) have no address family in common`}, ErrInvalid},
		{"rand_time too long", map[string]string{"swanctl.conf": conn("", "    rekey_time = 1m\n    rand_time = 2m")},
			[]string{mainFile + `:10: connections.site.children.net.rand_time: rand_time 2m0s is longer than rekey_time 1m0s`}, ErrInvalid},
		{"empty PSK", map[string]string{"swanctl.conf": "secrets {\n ike-1 {\n  secret = \"\"\n }\n}\n"},
			[]string{mainFile + `:3: secrets.ike-1.secret: empty pre-shared key`}, ErrValue},
		{"bad hex PSK", map[string]string{"swanctl.conf": "secrets {\n ike-1 {\n  secret = 0xabc\n }\n}\n"},
			[]string{mainFile + `:3: secrets.ike-1.secret: secret with 0x prefix is not valid hex`}, ErrValue},
		{"two rounds", map[string]string{"swanctl.conf": conn("  local-2 { auth = psk }", "")},
			[]string{mainFile + `:2: connections.site: multiple authentication rounds (RFC 4739) are not supported yet, except an XAuth round of an IKEv1 connection`}, ErrUnsupported},
		{"error in included file", map[string]string{"swanctl.conf": "connections {\n include conns/*.conf\n}\n", "conns/a.conf": "a {\n\n bogus = 1\n}\n"},
			[]string{"/etc/xdpsec/conns/a.conf:3: connections.a.bogus: unknown key"}, ErrUnknownKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := loadMem(t, tt.files)
			if err == nil {
				t.Fatalf("loaded %v, want errors", cfg)
			}
			if cfg != nil {
				t.Errorf("config %v returned with an error", cfg)
			}
			if got := errorLines(err); strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("got\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(tt.want, "\n  "))
			}
			is := tt.is
			if is == transform_ErrProposal {
				is = ErrValue
			}
			if !errors.Is(err, is) {
				t.Errorf("errors.Is(err, %v) = false", is)
			}
			if ces := configErrors(err); len(ces) != len(tt.want) {
				t.Errorf("%d *Error values, want %d", len(ces), len(tt.want))
			}
		})
	}
}

var transform_ErrProposal = errors.New("placeholder: checked as ErrValue and transform.ErrProposal")

func TestAllErrorsReported(t *testing.T) {
	_, err := loadMem(t, map[string]string{"swanctl.conf": `connections {
	a {
		foo = 1
		rekey_time = soon
		children {
			x {
				esp_proposals = nope
				local_ts = 300.1.1.1
			}
		}
	}
	b {
		vips = 0.0.0.0, nope
	}
}
pools { p { addrs = 10.0.0.0/24 } q { addrs = nope } }
`})
	want := []string{
		mainFile + ":3: connections.a.foo: unknown key",
		mainFile + `:4: connections.a.rekey_time: "soon" is not a number`,
		mainFile + `:7: connections.a.children.x.esp_proposals: invalid proposal "nope": algorithm "nope" not recognized`,
		mainFile + `:8: connections.a.children.x.local_ts: traffic selector "300.1.1.1": "300.1.1.1" is neither "dynamic", a subnet, an address nor a range`,
		mainFile + `:13: connections.b.vips: "nope" is not an IP address (0.0.0.0 or :: for any)`,
		mainFile + `:16: pools.q.addrs: "nope" is not a subnet (CIDR) or an address range (FROM-TO)`,
	}
	if got := errorLines(err); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

func TestSecretPermissions(t *testing.T) {
	files := memFS(map[string]string{
		"swanctl.conf":       "connections { }\ninclude secrets.d/*.conf\n",
		"secrets.d/psk.conf": "secrets {\n ike { secret = s3cret }\n}\n",
		"other.conf":         "x = 1\n",
		"private/key.pem":    "k",
	})
	files["etc/xdpsec/secrets.d/psk.conf"].Mode = 0o644
	files["etc/xdpsec/private/key.pem"].Mode = 0o640
	_, err := LoadFS(FromFS(files), mainFile)
	want := []string{
		`/etc/xdpsec/private/key.pem: permissions 0640 for "/etc/xdpsec/private/key.pem" are too open: it holds secrets and must not be readable or writable by group or others (chmod 600)`,
		`/etc/xdpsec/secrets.d/psk.conf: permissions 0644 for "/etc/xdpsec/secrets.d/psk.conf" are too open: it holds secrets and must not be readable or writable by group or others (chmod 600)`,
	}
	if got := errorLines(err); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	if !errors.Is(err, ErrPermissions) {
		t.Error("not ErrPermissions")
	}

	// A file without secrets may be world-readable; the main file holding
	// only connections too.
	files["etc/xdpsec/secrets.d/psk.conf"].Mode = 0o600
	files["etc/xdpsec/private/key.pem"].Mode = 0o400
	files["etc/xdpsec/swanctl.conf"].Mode = 0o644
	if _, err := LoadFS(FromFS(files), mainFile); err != nil {
		t.Errorf("load with private secrets: %v", err)
	}
	// But a main file that holds a secrets section must be private.
	files["etc/xdpsec/swanctl.conf"] = &fstest.MapFile{Data: []byte("secrets {\n include secrets.d/*.conf\n}\n"), Mode: 0o604}
	files["etc/xdpsec/secrets.d/psk.conf"].Data = []byte("ike { secret = s3cret }\n")
	if _, err := LoadFS(FromFS(files), mainFile); err == nil || !strings.Contains(err.Error(), `permissions 0604 for "/etc/xdpsec/swanctl.conf"`) {
		t.Errorf("got %v, want the main file refused", err)
	}
}

func TestSecretPermissionsRealFiles(t *testing.T) {
	path := copyTestdata(t, "psk")
	secrets := filepath.Join(filepath.Dir(path), "conf.d", "secrets.conf")
	if _, err := Load(path); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(secrets, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	want := secrets + `: permissions 0644 for "` + secrets + `" are too open`
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("got %v, want %s...", err, want)
	}

	cpath := copyTestdata(t, "cert")
	key := filepath.Join(filepath.Dir(cpath), "private", "other.key")
	if err := os.Chmod(key, 0o660); err != nil {
		t.Fatal(err)
	}
	_, err = Load(cpath)
	if err == nil || !strings.Contains(err.Error(), `permissions 0660 for "`+key+`"`) {
		t.Errorf("got %v, want the private key refused", err)
	}
	// The main file holds a secrets section and is refused when readable.
	if err := os.Chmod(key, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(cpath, 0o640); err != nil {
		t.Fatal(err)
	}
	if _, err = Load(cpath); err == nil || !strings.Contains(err.Error(), `permissions 0640 for "`+cpath+`"`) {
		t.Errorf("got %v, want the main file refused", err)
	}
}

func TestWarnings(t *testing.T) {
	cfg := mustLoadMem(t, map[string]string{"swanctl.conf": `connections {
	c {
		local { auth = psk
			id = a.example }
		remote { auth = psk
			id = b.example }
		children {
			x {
				updown = /usr/lib/ipsec/_updown iptables
				start_action = start
			}
		}
	}
}
secrets {
	ike-other {
		id = c.example
		secret = x
	}
}
`})
	want := []string{
		mainFile + `:9: connections.c.children.x.updown: xdpsec does not run updown scripts yet; "/usr/lib/ipsec/_updown iptables" will not be called`,
		mainFile + `:2: connections.c: PSK authentication but no secrets.ike<suffix> section matches local id "a.example" or remote id "b.example"`,
		mainFile + `:10: connections.c.children.x.start_action: start_action start needs a specific remote address or DNS name in remote_addrs to initiate to`,
	}
	var got []string
	for _, w := range cfg.Warnings {
		got = append(got, w.Error())
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

// TestFileOwner: configuration files, secrets and private keys that
// belong to another user than root (or the user we run as) are refused,
// whatever their mode, with the file, its owner and the fix named.
func TestFileOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipped: needs root to give files away")
	}
	const nobody = 65534
	path := copyTestdata(t, "psk")
	secrets := filepath.Join(filepath.Dir(path), "conf.d", "secrets.conf")
	cpath := copyTestdata(t, "cert")
	key := filepath.Join(filepath.Dir(cpath), "private", "other.key")
	for _, tc := range []struct{ main, file string }{{path, secrets}, {path, path}, {cpath, key}, {cpath, cpath}} {
		if _, err := Load(tc.main); err != nil {
			t.Fatalf("%s before chown: %v", tc.main, err)
		}
		if err := os.Chown(tc.file, nobody, nobody); err != nil {
			t.Fatal(err)
		}
		_, err := Load(tc.main)
		want := fmt.Sprintf("%q belongs to uid %d", tc.file, nobody)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "not to root") ||
			!strings.Contains(err.Error(), "chown root "+tc.file) || !errors.Is(err, ErrPermissions) {
			t.Errorf("%s owned by nobody: got %v, want %s ... chown root", tc.file, err, want)
		}
		if err := os.Chown(tc.file, 0, 0); err != nil {
			t.Fatal(err)
		}
	}
}
