package swanctl

import (
	"reflect"
	"slices"
)

// Changes is what a reload changes, by connection name.
type Changes struct {
	Added   []string // in the new configuration only
	Removed []string // in the old configuration only
	// Changed are in both with any semantic difference (addresses,
	// proposals, authentication, children, ...); a connection that only
	// moved in its file is unchanged.
	Changed []string
	// RedirectChanged are in both and differ only in their redirect
	// section: the engine takes the new rule, established SAs stay.
	RedirectChanged []string
	// SecretsChanged says the IKE secrets or private keys differ; the
	// connections using them are not listed as changed for it, since
	// established SAs keep working and new ones pick the new credentials.
	SecretsChanged bool
}

// Empty reports whether nothing changed.
func (c Changes) Empty() bool {
	return len(c.Added) == 0 && len(c.Removed) == 0 && len(c.Changed) == 0 && len(c.RedirectChanged) == 0 && !c.SecretsChanged
}

// withoutRedirect is c without its redirect section.
func withoutRedirect(c *Connection) *Connection {
	cp := *c
	ic := *c.Connection
	ic.Redirect = nil
	cp.Connection, cp.Redirect = &ic, nil
	return &cp
}

// Diff compares two configurations so that a reload can leave the
// connections it does not touch alone. A nil configuration has no
// connections.
func Diff(old, new *Config) Changes {
	var ch Changes
	oldConns, newConns := connections(old), connections(new)
	for _, n := range newConns {
		o := findConn(oldConns, n.Name)
		switch {
		case o == nil:
			ch.Added = append(ch.Added, n.Name)
		case !sameConnection(o, n):
			if sameConnection(withoutRedirect(o), withoutRedirect(n)) {
				ch.RedirectChanged = append(ch.RedirectChanged, n.Name)
				break
			}
			ch.Changed = append(ch.Changed, n.Name)
		}
	}
	for _, o := range oldConns {
		if findConn(newConns, o.Name) == nil {
			ch.Removed = append(ch.Removed, o.Name)
		}
	}
	ch.SecretsChanged = !sameSecrets(secretsOf(old), secretsOf(new))
	return ch
}

func connections(c *Config) []*Connection {
	if c == nil {
		return nil
	}
	return c.Connections
}

func secretsOf(c *Config) Secrets {
	if c == nil {
		return Secrets{}
	}
	return c.Secrets
}

func findConn(list []*Connection, name string) *Connection {
	i := slices.IndexFunc(list, func(c *Connection) bool { return c.Name == name })
	if i < 0 {
		return nil
	}
	return list[i]
}

// sameConnection compares two connections without their positions.
func sameConnection(a, b *Connection) bool {
	return reflect.DeepEqual(withoutPos(a), withoutPos(b))
}

// withoutPos copies c without positions and without the credentials the
// daemon loaded into it: a reload compares what the files say.
func withoutPos(c *Connection) *Connection {
	cp := *c
	cp.Pos = Pos{}
	ic := *c.Connection
	ic.Local, ic.Remote, ic.Children = nil, nil, nil // compared through cp's rounds and children
	ic.Redirect = nil                                // compared through cp's
	cp.Connection = &ic
	if c.Redirect != nil {
		r := *c.Redirect
		r.Pos = Pos{}
		cp.Redirect = &r
	}
	cp.Local = stripRounds(c.Local)
	cp.Remote = stripRounds(c.Remote)
	cp.Children = make([]*Child, len(c.Children))
	for i, ch := range c.Children {
		x := *ch
		x.Pos = Pos{}
		cp.Children[i] = &x
	}
	return &cp
}

func stripRounds(rounds []*AuthRound) []*AuthRound {
	out := make([]*AuthRound, len(rounds))
	for i, a := range rounds {
		x := *a
		x.Pos = Pos{}
		ac := *a.AuthConfig
		ac.Certs, ac.PrivateKey, ac.CACerts = nil, nil, nil
		x.AuthConfig = &ac
		out[i] = &x
	}
	return out
}

func sameSecrets(a, b Secrets) bool {
	if len(a.IKE) != len(b.IKE) || len(a.EAP) != len(b.EAP) || len(a.PrivateKeys) != len(b.PrivateKeys) {
		return false
	}
	for _, pair := range [][2][]*IKESecret{{a.IKE, b.IKE}, {a.EAP, b.EAP}} {
		for i := range pair[0] {
			x, y := pair[0][i], pair[1][i]
			if x.Name != y.Name || !slices.Equal(x.IDs, y.IDs) || !x.Secret.Equal(y.Secret) {
				return false
			}
		}
	}
	for i := range a.PrivateKeys {
		x, y := a.PrivateKeys[i], b.PrivateKeys[i]
		if x.Name != y.Name || x.Folder != y.Folder || x.Path != y.Path || !x.Passphrase.Equal(y.Passphrase) {
			return false
		}
	}
	return true
}
