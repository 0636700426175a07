package swanctl

import (
	"fmt"
	"strings"
)

// The lexer follows strongswan.conf(5): outside values, names are runs of
// characters other than  # { } : . , = " CR LF TAB SPACE, whitespace and
// newlines separate tokens and '#' starts a comment. After '=' a value is
// scanned to the end of the line, a '#' or a '}': its space-separated parts
// (unquoted runs or double-quoted strings) are joined by single spaces.
// After "include" a file pattern is scanned to the next space.

type tokenKind int

const (
	tokEOF tokenKind = iota
	tokName
	tokLBrace
	tokRBrace
	tokEq
	tokColon
	tokComma
	tokDot
	tokInclude // text is the pattern
	tokString  // a quoted string where a name was expected
)

func (k tokenKind) String() string {
	switch k {
	case tokEOF:
		return "end of file"
	case tokName:
		return "name"
	case tokLBrace:
		return "'{'"
	case tokRBrace:
		return "'}'"
	case tokEq:
		return "'='"
	case tokColon:
		return "':'"
	case tokComma:
		return "','"
	case tokDot:
		return "'.'"
	case tokInclude:
		return "include"
	case tokString:
		return "quoted string"
	}
	return fmt.Sprintf("token(%d)", int(k))
}

type token struct {
	kind tokenKind
	text string
	line int
}

type lexer struct {
	src  string
	off  int
	line int
}

func newLexer(src string) *lexer { return &lexer{src: src, line: 1} }

func (l *lexer) peek() byte {
	if l.off < len(l.src) {
		return l.src[l.off]
	}
	return 0
}

func (l *lexer) eof() bool { return l.off >= len(l.src) }

// advance consumes one byte, counting lines.
func (l *lexer) advance() byte {
	c := l.src[l.off]
	l.off++
	if c == '\n' {
		l.line++
	}
	return c
}

func isNameByte(c byte) bool {
	switch c {
	case '#', '{', '}', ':', '.', ',', '=', '"', '\r', '\n', '\t', ' ':
		return false
	}
	return true
}

// skipComment consumes a comment up to (not including) the end of line.
func (l *lexer) skipComment() {
	for !l.eof() && l.peek() != '\n' {
		l.off++
	}
}

// skipBlank consumes whitespace, newlines and comments.
func (l *lexer) skipBlank() {
	for !l.eof() {
		switch l.peek() {
		case ' ', '\t', '\r', '\n':
			l.advance()
		case '#':
			l.skipComment()
		default:
			return
		}
	}
}

// next returns the next token outside of values.
func (l *lexer) next() (token, error) {
	l.skipBlank()
	t := token{line: l.line}
	if l.eof() {
		t.kind = tokEOF
		return t, nil
	}
	switch c := l.peek(); c {
	case '{', '}', '=', ':', ',', '.':
		l.advance()
		t.kind = map[byte]tokenKind{'{': tokLBrace, '}': tokRBrace, '=': tokEq, ':': tokColon, ',': tokComma, '.': tokDot}[c]
		return t, nil
	case '"':
		t.kind = tokString
		return t, nil
	}
	start := l.off
	for !l.eof() && isNameByte(l.peek()) {
		l.off++
	}
	t.kind, t.text = tokName, l.src[start:l.off]
	if t.text == "include" && (l.peek() == ' ' || l.peek() == '\t') {
		// "include" followed by blanks and anything but '=' is an include
		// statement; "include = x" is a setting named include.
		i := l.off
		for i < len(l.src) && (l.src[i] == ' ' || l.src[i] == '\t') {
			i++
		}
		if i < len(l.src) && l.src[i] != '=' {
			l.off = i
			pattern, err := l.scanInclude()
			if err != nil {
				return t, err
			}
			t.kind, t.text = tokInclude, pattern
		}
	}
	return t, nil
}

// scanInclude scans an include pattern: up to a blank, '#', '}' or the end
// of the line; `\"`, `\#`, `\}` and `\ ` escape those characters, and a
// double-quoted string may hold the whole pattern or its end.
func (l *lexer) scanInclude() (string, error) {
	var b strings.Builder
	for !l.eof() {
		c := l.peek()
		switch c {
		case '\r':
			l.off++
			continue
		case '#', '}', '\n', '\t', ' ':
			return b.String(), nil
		case '"':
			l.off++
			s, err := l.scanString()
			if err != nil {
				return "", err
			}
			b.WriteString(s)
			return b.String(), nil
		case '\\':
			l.off++
			if n := l.peek(); n == '"' || n == '#' || n == '}' || n == ' ' {
				b.WriteByte(n)
				l.off++
			} else {
				b.WriteByte('\\')
			}
			continue
		}
		b.WriteByte(c)
		l.off++
	}
	return b.String(), nil
}

// scanString scans the rest of a double-quoted string (the opening quote is
// consumed): \n, \r and \t stand for their control characters, a backslash
// before a line break joins the lines, a backslash before any other
// character stands for that character; raw line breaks are kept and CRs
// dropped.
func (l *lexer) scanString() (string, error) {
	var b strings.Builder
	for {
		if l.eof() {
			return "", wrapf(ErrSyntax, "unterminated string")
		}
		c := l.advance()
		switch c {
		case '"':
			return b.String(), nil
		case '\r':
		case '\\':
			if l.eof() {
				return "", wrapf(ErrSyntax, "unterminated string")
			}
			e := l.advance()
			switch e {
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			case '\n':
			case '\r':
				if l.peek() == '\n' {
					l.advance()
				} else {
					b.WriteByte('\r')
				}
			default:
				b.WriteByte(e)
			}
		default:
			b.WriteByte(c)
		}
	}
}

// scanValue scans a value after '=': up to the end of the line, a '#' or a
// '}' (the latter two are left for next). Its parts are joined by single
// spaces, as strongSwan does; use a quoted string to keep other spacing.
func (l *lexer) scanValue() (string, error) {
	var parts []string
	for !l.eof() {
		switch c := l.peek(); c {
		case ' ', '\t', '\r':
			l.off++
		case '\n':
			l.advance()
			return strings.Join(parts, " "), nil
		case '#', '}':
			return strings.Join(parts, " "), nil
		case '"':
			l.off++
			s, err := l.scanString()
			if err != nil {
				return "", err
			}
			parts = append(parts, s)
		default:
			start := l.off
			for !l.eof() {
				c := l.peek()
				if c == '#' || c == '}' || c == '"' || c == '\r' || c == '\n' || c == '\t' || c == ' ' {
					break
				}
				l.off++
			}
			parts = append(parts, l.src[start:l.off])
		}
	}
	return strings.Join(parts, " "), nil
}

// scanRefs scans the references after "name :": dotted section paths
// separated by commas, blanks and comments allowed between them.
func (l *lexer) scanRefs() ([]string, error) {
	var refs []string
	for {
		l.skipBlank()
		start := l.off
		for !l.eof() {
			c := l.peek()
			if !isNameByte(c) && c != '.' {
				break
			}
			l.off++
		}
		ref := l.src[start:l.off]
		if ref == "" || strings.HasPrefix(ref, ".") || strings.HasSuffix(ref, ".") || strings.Contains(ref, "..") {
			return nil, wrapf(ErrSyntax, "expected a section name to reference after ':'")
		}
		refs = append(refs, ref)
		l.skipBlank()
		if l.peek() != ',' {
			return refs, nil
		}
		l.off++
	}
}
