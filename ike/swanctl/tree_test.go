package swanctl

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

// siteTree is the tree swanctl --load-conns sends for siteFile.
func siteTree() *Tree {
	root := &Tree{}
	site := root.Sub("connections").Sub("site")
	site.Set("local_addrs", "192.0.2.1")
	site.Set("remote_addrs", "192.0.2.2")
	site.Set("proposals", "aes128gcm16-prfsha256-x25519, aes256-sha384-ecp384")
	site.Set("rekey_time", "2h")
	l := site.Sub("local")
	l.Set("auth", "psk")
	l.Set("id", "C=CH, O=xdpsec, CN=moon")
	site.Sub("remote").Set("auth", "psk")
	net := site.Sub("children").Sub("net")
	net.Set("local_ts", "10.1.0.0/16, 10.3.0.0/16")
	net.Set("remote_ts", "10.2.0.0/16")
	net.Set("esp_proposals", "aes128gcm16")
	net.Set("start_action", "trap")
	return root
}

const siteFile = `connections {
  site {
    local_addrs = 192.0.2.1
    remote_addrs = 192.0.2.2
    proposals = aes128gcm16-prfsha256-x25519, aes256-sha384-ecp384
    rekey_time = 2h
    local {
      auth = psk
      id = "C=CH, O=xdpsec, CN=moon"
    }
    remote {
      auth = psk
    }
    children {
      net {
        local_ts = 10.1.0.0/16, 10.3.0.0/16
        remote_ts = 10.2.0.0/16
        esp_proposals = aes128gcm16
        start_action = trap
      }
    }
  }
}
`

// A tree and a file with the same settings load the same connection.
func TestLoadTreeSameAsFile(t *testing.T) {
	fromTree, err := LoadTree(siteTree(), "vici load-conn", nil)
	if err != nil {
		t.Fatal(err)
	}
	fromFile := mustLoadMem(t, map[string]string{"swanctl.conf": siteFile})
	if ch := Diff(fromFile, fromTree); !ch.Empty() {
		t.Fatalf("tree and file differ: %+v", ch)
	}
	c := fromTree.Connection("site")
	if c == nil || len(c.Proposals) != 2 || c.RekeyTime.Hours() != 2 || len(c.Children[0].LocalTS) != 2 {
		t.Fatalf("%+v", c)
	}
	// Secrets come by load-shared: no warning that none matches.
	for _, w := range fromTree.Warnings {
		if strings.Contains(w.Error(), "secrets") {
			t.Errorf("warning: %v", w)
		}
	}
}

// A tree is refused where the file is, with the key named.
func TestLoadTreeErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(site *Tree)
		key  string
		err  error
	}{
		{"unknown key", func(s *Tree) { s.Set("bogus", "1") }, "connections.site.bogus", ErrUnknownKey},
		{"unsupported key", func(s *Tree) { s.Sub("children").Sub("net").Set("mark_in", "42") }, "connections.site.children.net.mark_in", ErrUnsupported},
		{"bad value", func(s *Tree) { s.Set("rekey_time", "soon") }, "connections.site.rekey_time", ErrValue},
		{"bad proposal", func(s *Tree) { s.Set("proposals", "rot13-md4") }, "connections.site.proposals", nil},
		{"undefined pool", func(s *Tree) { s.Set("pools", "rw") }, "connections.site.pools", ErrInvalid},
		{"unknown section", func(s *Tree) { s.Sub("sideways") }, "connections.site.sideways", ErrUnknownKey},
		{"key with a dot", func(s *Tree) { s.Set("local.id", "x") }, "connections.site.local.id", ErrSyntax},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := siteTree()
			tc.edit(root.Sub("connections").Sub("site"))
			// As the daemon does: load, then resolve.
			cfg, err := LoadTree(root, "vici load-conn", nil)
			if err == nil {
				err = cfg.Resolve(func(string) (netip.Addr, error) { return netip.Addr{}, errors.New("no DNS here") })
			}
			if err == nil {
				t.Fatal("loaded")
			}
			if !strings.Contains(err.Error(), "vici load-conn: "+tc.key+": ") {
				t.Errorf("error does not name %s: %v", tc.key, err)
			}
			if tc.err != nil && !errors.Is(err, tc.err) {
				t.Errorf("error %v is not %v", err, tc.err)
			}
		})
	}
	// A pool defined elsewhere may be named.
	root := siteTree()
	root.Sub("connections").Sub("site").Set("pools", "rw")
	if _, err := LoadTree(root, "vici load-conn", []string{"rw"}); err != nil {
		t.Errorf("known pool: %v", err)
	}
	// Secrets do not come with connections.
	root = siteTree()
	root.Sub("secrets").Sub("ike-1").Set("secret", "x")
	if _, err := LoadTree(root, "vici load-conn", nil); !errors.Is(err, ErrUnsupported) {
		t.Errorf("secrets in a tree: %v", err)
	}
}

func TestLoadTreeDepth(t *testing.T) {
	root := &Tree{}
	cur := root.Sub("connections").Sub("site")
	for i := 0; i < 100; i++ {
		cur = cur.Sub("local")
	}
	if _, err := LoadTree(root, "vici", nil); !errors.Is(err, ErrSyntax) {
		t.Errorf("deep tree: %v", err)
	}
}
