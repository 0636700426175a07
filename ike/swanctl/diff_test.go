package swanctl

import (
	"slices"
	"strings"
	"testing"
)

const diffBase = `connections {
	a {
		remote_addrs = 192.0.2.1
		children { x { local_ts = 10.1.0.0/16
			remote_ts = 10.2.0.0/16 } }
	}
	b {
		remote_addrs = 192.0.2.2
		children { y { } }
	}
	c {
		remote_addrs = 192.0.2.3
		local { auth = psk }
		remote { auth = psk }
		children { z { } }
	}
}
secrets { ike { secret = one } }
`

func TestDiff(t *testing.T) {
	old := mustLoadMem(t, map[string]string{"swanctl.conf": diffBase})

	same := mustLoadMem(t, map[string]string{"swanctl.conf": diffBase})
	if ch := Diff(old, same); !ch.Empty() {
		t.Errorf("same file: %+v", ch)
	}

	// Moving a connection and adding comments and blank lines changes nothing;
	// neither does spelling a default out.
	moved := "# moved\n\n" + strings.Replace(diffBase, "\tb {\n\t\tremote_addrs = 192.0.2.2\n\t\tchildren { y { } }\n\t}\n", "", 1)
	moved = strings.Replace(moved, "connections {\n", "connections {\n\tb {\n\t\tremote_addrs = 192.0.2.2\n\t\trekey_time = 4h\n\t\tchildren { y { esp_proposals = default } }\n\t}\n\n", 1)
	if ch := Diff(old, mustLoadMem(t, map[string]string{"swanctl.conf": moved})); !ch.Empty() {
		t.Errorf("moved: %+v", ch)
	}

	changed := strings.Replace(diffBase, "10.2.0.0/16", "10.3.0.0/16", 1) // a's child
	changed = strings.Replace(changed, "\tc {\n", "\td {\n", 1)           // c removed, d added
	changed = strings.Replace(changed, "secret = one", "secret = two", 1)
	ch := Diff(old, mustLoadMem(t, map[string]string{"swanctl.conf": changed}))
	if !slices.Equal(ch.Added, []string{"d"}) || !slices.Equal(ch.Removed, []string{"c"}) ||
		!slices.Equal(ch.Changed, []string{"a"}) || !ch.SecretsChanged {
		t.Errorf("changed: %+v", ch)
	}

	// Any semantic difference counts: a proposal, an auth method, a child's mark.
	for _, edit := range [][2]string{
		{"remote_addrs = 192.0.2.2", "remote_addrs = 192.0.2.2\n proposals = aes128gcm16-prfsha256-x25519"},
		{"children { y { } }", "children { y { mark_out = 1 } }"},
		{"children { y { } }", "children { y { } w { } }"},
		{"remote_addrs = 192.0.2.2", "remote_addrs = 192.0.2.2\n remote { id = peer }"},
	} {
		ch := Diff(old, mustLoadMem(t, map[string]string{"swanctl.conf": strings.Replace(diffBase, edit[0], edit[1], 1)}))
		if !slices.Equal(ch.Changed, []string{"b"}) || len(ch.Added)+len(ch.Removed) != 0 {
			t.Errorf("%q: %+v", edit[1], ch)
		}
	}

	if ch := Diff(nil, old); !slices.Equal(ch.Added, []string{"a", "b", "c"}) || !ch.SecretsChanged {
		t.Errorf("from nil: %+v", ch)
	}
	if ch := Diff(old, nil); !slices.Equal(ch.Removed, []string{"a", "b", "c"}) {
		t.Errorf("to nil: %+v", ch)
	}
}
