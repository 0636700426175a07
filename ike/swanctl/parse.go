package swanctl

import (
	"errors"
	"io/fs"
	"path"
	"strings"
)

// Limits that keep a hostile or broken file from exhausting the loader.
const (
	maxIncludeDepth = 10 // nested include statements
	maxSectionDepth = 32 // nested sections
)

// section is a parsed "name { ... }" with the same-named sections merged
// into it, in the order names first appeared.
type section struct {
	name     string
	opens    []Pos // every place the section was opened (first one first)
	keys     []string
	settings map[string]*setting
	subs     []*section
	refs     []sectionRef
	resolved bool
	// referenced is set on sections others inherit from: such a template
	// may stand where swanctl would ignore an unknown section.
	referenced bool
}

type setting struct {
	key   string
	value string
	pos   Pos
}

type sectionRef struct {
	path string
	pos  Pos
}

func newSection(name string, pos Pos) *section {
	s := &section{name: name, settings: map[string]*setting{}}
	if pos.File != "" {
		s.opens = append(s.opens, pos)
	}
	return s
}

func (s *section) pos() Pos {
	if len(s.opens) == 0 {
		return Pos{}
	}
	return s.opens[0]
}

func (s *section) sub(name string) *section {
	for _, c := range s.subs {
		if c.name == name {
			return c
		}
	}
	return nil
}

// set adds or replaces a setting; a replaced one keeps its place in order.
func (s *section) set(st *setting) {
	if _, ok := s.settings[st.key]; !ok {
		s.keys = append(s.keys, st.key)
	}
	s.settings[st.key] = st
}

// parser reads a file and its includes into one tree.
type parser struct {
	fsys  FS
	errs  *errorList
	files []string // every file read, in order
}

// parseTree reads name and everything it includes. Syntax errors stop the
// file they are in; the other files are still read.
func parseTree(fsys FS, name string, errs *errorList) (*section, []string) {
	p := &parser{fsys: fsys, errs: errs}
	root := newSection("", Pos{})
	data, err := fsys.ReadFile(name)
	if err != nil {
		errs.add(Pos{File: name}, "", err)
		return root, nil
	}
	p.parseFile(name, data, root, []string{path.Clean(name)})
	p.resolveRefs(root)
	return root, p.files
}

func (p *parser) parseFile(name string, data []byte, into *section, stack []string) {
	p.files = append(p.files, name)
	lx := newLexer(string(data))
	f := &fileParser{p: p, name: name, lx: lx, stack: stack}
	if err := f.statements(into, 0); err != nil {
		p.errs.add(Pos{File: name, Line: lx.line}, "", err)
	}
}

type fileParser struct {
	p     *parser
	name  string
	lx    *lexer
	stack []string // include chain, outermost first, for cycle detection
}

// statements parses settings, sections and includes into cur until the
// '}' closing it (depth > 0) or the end of the file (depth 0).
func (f *fileParser) statements(cur *section, depth int) error {
	for {
		tok, err := f.lx.next()
		if err != nil {
			return err
		}
		switch tok.kind {
		case tokEOF:
			if depth > 0 {
				return wrapf(ErrSyntax, "missing '}' to close section %q opened at line %d", cur.name, cur.opens[len(cur.opens)-1].Line)
			}
			return nil
		case tokRBrace:
			if depth == 0 {
				return wrapf(ErrSyntax, "unexpected '}'")
			}
			return nil
		case tokInclude:
			f.include(tok.text, Pos{File: f.name, Line: tok.line}, cur)
		case tokName:
			if err := f.statement(cur, tok, depth); err != nil {
				return err
			}
		default:
			return wrapf(ErrSyntax, "unexpected %v, expected a section or key name", tok.kind)
		}
	}
}

func (f *fileParser) statement(cur *section, name token, depth int) error {
	pos := Pos{File: f.name, Line: name.line}
	tok, err := f.lx.next()
	if err != nil {
		return err
	}
	var refs []string
	switch tok.kind {
	case tokEq:
		v, err := f.lx.scanValue()
		if err != nil {
			return err
		}
		cur.set(&setting{key: name.text, value: v, pos: pos})
		return nil
	case tokColon:
		if refs, err = f.lx.scanRefs(); err != nil {
			return err
		}
		if tok, err = f.lx.next(); err != nil {
			return err
		}
		if tok.kind != tokLBrace {
			return wrapf(ErrSyntax, "expected '{' after the references of section %q, found %v", name.text, tok.kind)
		}
	case tokLBrace:
	default:
		return wrapf(ErrSyntax, "expected '=' or '{' after %q, found %v", name.text, tok.kind)
	}
	if depth+1 > maxSectionDepth {
		return wrapf(ErrSyntax, "sections nested deeper than %d", maxSectionDepth)
	}
	sub := cur.sub(name.text)
	if sub == nil {
		sub = newSection(name.text, pos)
		cur.subs = append(cur.subs, sub)
	} else {
		sub.opens = append(sub.opens, pos)
	}
	for _, r := range refs {
		sub.refs = append(sub.refs, sectionRef{path: r, pos: pos})
	}
	return f.statements(sub, depth+1)
}

// include reads the files matching pattern into cur. A relative pattern is
// relative to the including file's directory. A pattern with wildcards may
// match nothing; a plain file name must exist.
func (f *fileParser) include(pattern string, pos Pos, cur *section) {
	errs := f.p.errs
	if pattern == "" {
		errs.add(pos, "", wrapf(ErrInclude, "include without a file name"))
		return
	}
	if !path.IsAbs(pattern) {
		pattern = path.Join(path.Dir(f.name), pattern)
	}
	var names []string
	if strings.ContainsAny(pattern, "*?[") {
		m, err := f.p.fsys.Glob(pattern)
		if err != nil {
			errs.add(pos, "", wrapf(ErrInclude, "include %q: %v", pattern, err))
			return
		}
		names = m
	} else {
		names = []string{pattern}
	}
	for _, n := range names {
		clean := path.Clean(n)
		for _, s := range f.stack {
			if s == clean {
				errs.add(pos, "", wrapf(ErrInclude, "include cycle: %s -> %s", strings.Join(f.stack, " -> "), clean))
				return
			}
		}
		if len(f.stack) > maxIncludeDepth {
			errs.add(pos, "", wrapf(ErrInclude, "includes nested deeper than %d: %s -> %s", maxIncludeDepth, strings.Join(f.stack, " -> "), clean))
			return
		}
		if fi, err := f.p.fsys.Stat(n); err == nil && fi.IsDir() {
			continue // a glob such as conf.d/* may match directories
		}
		data, err := f.p.fsys.ReadFile(n)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				err = wrapf(ErrInclude, "include %q: no such file", n)
			} else {
				err = wrapErr(ErrInclude, err)
			}
			errs.add(pos, "", err)
			continue
		}
		stack := append(append([]string(nil), f.stack...), clean)
		f.p.parseFile(n, data, cur, stack)
	}
}

// resolveRefs applies section references ("name : a.b, c { ... }"): the
// section inherits the settings and subsections of the referenced sections
// that it does not set itself; with several references, earlier ones take
// precedence over later ones.
func (p *parser) resolveRefs(root *section) {
	var resolve func(s *section, active map[*section]bool)
	resolve = func(s *section, active map[*section]bool) {
		if s.resolved {
			return
		}
		active[s] = true
		for _, r := range s.refs {
			t := lookupPath(root, r.path)
			switch {
			case t == nil:
				p.errs.add(r.pos, "", wrapf(ErrSyntax, "referenced section %q does not exist", r.path))
				continue
			case active[t]:
				p.errs.add(r.pos, "", wrapf(ErrSyntax, "section reference %q loops back to itself", r.path))
				continue
			}
			t.referenced = true
			resolve(t, active)
			inherit(s, t)
		}
		s.resolved = true
		for _, c := range s.subs {
			resolve(c, active)
		}
		delete(active, s)
	}
	resolve(root, map[*section]bool{})
}

func lookupPath(root *section, dotted string) *section {
	s := root
	for part := range strings.SplitSeq(dotted, ".") {
		if s = s.sub(part); s == nil {
			return nil
		}
	}
	return s
}

// inherit copies into s what t has and s does not.
func inherit(s, t *section) {
	for _, k := range t.keys {
		if _, ok := s.settings[k]; !ok {
			st := *t.settings[k]
			s.set(&st)
		}
	}
	for _, tc := range t.subs {
		if sc := s.sub(tc.name); sc != nil {
			inherit(sc, tc)
			continue
		}
		c := newSection(tc.name, Pos{})
		c.opens = append(c.opens, tc.opens...)
		c.resolved = true
		inherit(c, tc)
		s.subs = append(s.subs, c)
	}
}
