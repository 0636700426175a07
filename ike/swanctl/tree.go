package swanctl

import (
	"fmt"
	"strings"
)

// Tree is a configuration handed over as a tree rather than a file: a
// VICI load-conn message (connections.<name> { ... }). List values
// arrive joined with ", ", as they are written in swanctl.conf, so the
// same key tables parse them.
type Tree struct {
	Name     string
	Settings []TreeSetting
	Subs     []*Tree
}

// TreeSetting is one key = value of a Tree.
type TreeSetting struct {
	Key, Value string
}

// Sub returns the subsection of that name, adding it if it is missing.
func (t *Tree) Sub(name string) *Tree {
	for _, s := range t.Subs {
		if s.Name == name {
			return s
		}
	}
	s := &Tree{Name: name}
	t.Subs = append(t.Subs, s)
	return s
}

// Set adds a setting.
func (t *Tree) Set(key, value string) {
	t.Settings = append(t.Settings, TreeSetting{key, value})
}

// maxTreeDepth bounds a tree's nesting, as maxSectionDepth a file's.
const maxTreeDepth = maxSectionDepth

// LoadTree turns a tree holding connections (and pools) into a Config
// exactly as LoadFS turns a file: the same key tables, the same checks,
// the same defaults; errors name origin (as the file) and the dotted key.
// pools are the pools defined elsewhere that connections may name.
// Secrets and file-only checks (permissions, includes) do not apply:
// a tree holding secrets is refused.
func LoadTree(t *Tree, origin string, pools []string) (*Config, error) {
	l := &loader{
		fsys:       OSFS{},
		errs:       &errorList{},
		cfg:        &Config{Path: origin, keyPos: map[string]Pos{}},
		secretFile: map[string]bool{},
		tree:       true,
	}
	l.keyPos = l.cfg.keyPos
	pos := Pos{File: origin}
	root := toSection(t, pos, 0, l.errs, "")
	for _, s := range root.subs {
		if s.name == "secrets" {
			l.errs.add(pos, "secrets", wrapf(ErrUnsupported, "secrets do not come with connections here (VICI: load-shared, load-key)"))
			return nil, l.errs.err()
		}
	}
	l.loadRoot(root)
	if l.poolSections == nil {
		l.poolSections = map[string]bool{}
	}
	for _, p := range pools {
		l.poolSections[p] = true
	}
	l.validate()
	if err := l.errs.err(); err != nil {
		return nil, err
	}
	return l.cfg, nil
}

func toSection(t *Tree, pos Pos, depth int, errs *errorList, path string) *section {
	s := newSection(t.Name, pos)
	if depth > maxTreeDepth {
		errs.add(pos, path, wrapf(ErrSyntax, "sections nested deeper than %d", maxTreeDepth))
		return s
	}
	for _, st := range t.Settings {
		if strings.ContainsAny(st.Key, ".{}=") || st.Key == "" {
			errs.add(pos, join(path, st.Key), wrapf(ErrSyntax, "invalid key name %q", st.Key))
			continue
		}
		s.set(&setting{key: st.Key, value: st.Value, pos: pos})
	}
	for _, sub := range t.Subs {
		if strings.ContainsAny(sub.Name, ".{}=") || sub.Name == "" {
			errs.add(pos, join(path, sub.Name), wrapf(ErrSyntax, "invalid section name %q", sub.Name))
			continue
		}
		if x := s.sub(sub.Name); x != nil {
			errs.add(pos, join(path, sub.Name), wrapf(ErrSyntax, "section given twice"))
			continue
		}
		s.subs = append(s.subs, toSection(sub, pos, depth+1, errs, join(path, sub.Name)))
	}
	return s
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return fmt.Sprintf("%s.%s", path, key)
}
