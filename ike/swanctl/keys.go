package swanctl

import (
	"strings"
)

// A keyTable lists the keys of one kind of section. An entry with a setter
// is supported; an entry without one is documented by strongSwan but not
// supported by xdpsec yet, and is accepted only with an empty value or one
// of its okIf values (those that leave the feature off). Keys missing from
// the table are unknown. Supporting a key is giving its entry a setter.
type keyTable[T any] map[string]keySpec[T]

type keySpec[T any] struct {
	set  func(t *T, value string) error
	okIf []string
}

func supported[T any](set func(t *T, value string) error) keySpec[T] {
	return keySpec[T]{set: set}
}

func unsupported[T any](okIf ...string) keySpec[T] {
	return keySpec[T]{okIf: okIf}
}

// applyKeys runs the settings of sec through table into t. An empty value
// leaves the default, as an absent key does. path is the section's dotted
// path for error messages. It returns the keys that were set.
func applyKeys[T any](t *T, sec *section, table keyTable[T], path string, errs *errorList) map[string]Pos {
	set := map[string]Pos{}
	for _, k := range sec.keys {
		st := sec.settings[k]
		key := path + "." + k
		spec, ok := table[k]
		if !ok {
			errs.add(st.pos, key, wrapf(ErrUnknownKey, "unknown key"))
			continue
		}
		if st.value == "" {
			continue
		}
		if spec.set == nil {
			if containsFold(spec.okIf, st.value) {
				continue
			}
			msg := "not supported yet"
			if len(spec.okIf) > 0 {
				msg = "\"" + st.value + "\" is not supported yet (only " + quoteList(spec.okIf) + " is)"
			}
			errs.add(st.pos, key, wrapf(ErrUnsupported, "%s", msg))
			continue
		}
		// Set on a copy so that a bad value leaves the default in place
		// and causes no follow-on errors.
		cp := *t
		if d, ok := any(&cp).(detacher); ok {
			d.detach()
		}
		if err := spec.set(&cp, st.value); err != nil {
			errs.add(st.pos, key, err)
			continue
		}
		*t = cp
		set[k] = st.pos
	}
	return set
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

func quoteList(list []string) string {
	q := make([]string, len(list))
	for i, s := range list {
		q[i] = "\"" + s + "\""
	}
	return strings.Join(q, " or ")
}

// hasPrefixFold reports whether s starts with prefix, ignoring case, as
// swanctl matches section names like "local-1" or "ike-site".
func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// detacher is a section whose engine part is an embedded pointer:
// detach points it at a copy, so that a setter that fails leaves the
// section as it was.
type detacher interface{ detach() }

func (c *Connection) detach() { x := *c.Connection; c.Connection = &x }
func (a *AuthRound) detach()  { x := *a.AuthConfig; a.AuthConfig = &x }
func (ch *Child) detach()     { x := *ch.ChildConfig; ch.ChildConfig = &x }
