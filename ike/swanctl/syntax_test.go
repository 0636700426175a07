package swanctl

import (
	"strings"
	"testing"
)

// tree parses src as the main file and returns its settings flattened to
// "a.b.key=value" lines.
func tree(t *testing.T, files map[string]string) (string, error) {
	t.Helper()
	errs := &errorList{}
	root, _ := parseTree(FromFS(memFS(files)), mainFile, errs)
	var b strings.Builder
	var walk func(s *section, prefix string)
	walk = func(s *section, prefix string) {
		for _, k := range s.keys {
			b.WriteString(prefix + k + "=" + s.settings[k].value + "\n")
		}
		for _, c := range s.subs {
			b.WriteString(prefix + c.name + "{}\n")
			walk(c, prefix+c.name+".")
		}
	}
	walk(root, "")
	return b.String(), errs.err()
}

func TestSyntax(t *testing.T) {
	tests := []struct {
		name, src, want string
	}{
		{"plain", "a = b\n", "a=b\n"},
		{"trimmed", "a =   b  \t\n", "a=b\n"},
		{"parts joined by one space", "a = b    c\td\n", "a=b c d\n"},
		{"empty value", "a =\nb = \n", "a=\nb=\n"},
		{"no newline at end", "a = b", "a=b\n"},
		{"comment", "# c\na = b # c\n  # c { }\n", "a=b\n"},
		{"quoted keeps spaces and #", `a = "  x  # y  "` + "\n", "a=  x  # y  \n"},
		{"quoted escapes", `a = "q\"b\\s\tt\nn\x"` + "\n", "a=q\"b\\s\tt\nnx\n"},
		{"quoted spans lines", "a = \"x\ny\"\nb = c\n", "a=x\ny\nb=c\n"},
		{"escaped newline joins", "a = \"x\\\ny\"\n", "a=xy\n"},
		{"quoted and unquoted parts", `a = x"y z"w` + "\n", "a=x y z w\n"},
		{"CRLF", "a = b\r\ns {\r\n c = d\r\n}\r\n", "a=b\ns{}\ns.c=d\n"},
		{"sections", "s {\n a = 1\n t {\n  b = 2\n }\n}\n", "s{}\ns.a=1\ns.t{}\ns.t.b=2\n"},
		{"one line", "s { a = 1 } t { }", "s{}\ns.a=1\nt{}\n"},
		{"brace on next line", "s\n\n{\n a = 1\n}\n", "s{}\ns.a=1\n"},
		{"value ends at brace", "s { a = 1 2 }\n", "s{}\ns.a=1 2\n"},
		{"last value wins", "a = 1\nb = 2\na = 3\n", "a=3\nb=2\n"},
		{"sections merge", "s {\n a = 1\n b = 2\n}\nt { }\ns {\n a = 3\n c = 4\n}\n", "s{}\ns.a=3\ns.b=2\ns.c=4\nt{}\n"},
		{"nested merge", "s { t { a = 1 } }\ns { t { b = 2 } }\n", "s{}\ns.t{}\ns.t.a=1\ns.t.b=2\n"},
		{"key named include", "include = x\n", "include=x\n"},
		{"references", "base { a = 1\n b = 2\n sub { x = y } }\ns : base {\n b = 3\n}\n",
			"base{}\nbase.a=1\nbase.b=2\nbase.sub{}\nbase.sub.x=y\ns{}\ns.b=3\ns.a=1\ns.sub{}\ns.sub.x=y\n"},
		{"dotted references, first wins", "t { u { a = 1 } v { a = 2\n b = 2 } }\ns : t.u, t.v { }\n",
			"t{}\nt.u{}\nt.u.a=1\nt.v{}\nt.v.a=2\nt.v.b=2\ns{}\ns.a=1\ns.b=2\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tree(t, map[string]string{"swanctl.conf": tt.src})
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

func TestInclude(t *testing.T) {
	files := map[string]string{
		"swanctl.conf":    "a = 1\ns {\n include sub/*.conf\n}\ninclude \"other file.conf\"\ninclude /etc/xdpsec/abs.conf\ninclude nothing/*.conf\n",
		"sub/1.conf":      "x = 1\ninclude ../deeper.conf\n",
		"sub/2.conf":      "x = 2\ny = 2\n",
		"deeper.conf":     "z = 3\n",
		"other file.conf": "b = 2\n",
		"abs.conf":        "c = 3\n",
	}
	got, err := tree(t, files)
	if err != nil {
		t.Fatal(err)
	}
	want := "a=1\nb=2\nc=3\ns{}\ns.x=2\ns.z=3\ns.y=2\n"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestSyntaxErrors(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"unterminated string", map[string]string{"swanctl.conf": "a = 1\nb = \"x\n\n"},
			mainFile + ":4: unterminated string"},
		{"missing brace", map[string]string{"swanctl.conf": "s {\n a = 1\n"},
			mainFile + `:3: missing '}' to close section "s" opened at line 1`},
		{"unexpected brace", map[string]string{"swanctl.conf": "a = 1\n}\n"},
			mainFile + ":2: unexpected '}'"},
		{"name without = or {", map[string]string{"swanctl.conf": "a = 1\nfoo bar\n"},
			mainFile + `:2: expected '=' or '{' after "foo", found name`},
		{"dotted key", map[string]string{"swanctl.conf": "a.b = 1\n"},
			mainFile + `:1: expected '=' or '{' after "a", found '.'`},
		{"string as name", map[string]string{"swanctl.conf": "\"a\" = 1\n"},
			mainFile + `:1: unexpected quoted string, expected a section or key name`},
		{"missing reference", map[string]string{"swanctl.conf": "s : nope { }\n"},
			mainFile + `:1: referenced section "nope" does not exist`},
		{"reference loop", map[string]string{"swanctl.conf": "a : b { }\nb : a { }\n"},
			mainFile + `:2: section reference "a" loops back to itself`},
		{"include missing", map[string]string{"swanctl.conf": "\n\ninclude missing.conf\n"},
			mainFile + `:3: include "/etc/xdpsec/missing.conf": no such file`},
		{"include cycle", map[string]string{
			"swanctl.conf": "include a.conf\n",
			"a.conf":       "x = 1\ninclude b.conf\n",
			"b.conf":       "\n\n\ninclude a.conf\n",
		}, "/etc/xdpsec/b.conf:4: include cycle: /etc/xdpsec/swanctl.conf -> /etc/xdpsec/a.conf -> /etc/xdpsec/b.conf -> /etc/xdpsec/a.conf"},
		{"include self", map[string]string{"swanctl.conf": "include swanctl.conf\n"},
			mainFile + ":1: include cycle: /etc/xdpsec/swanctl.conf -> /etc/xdpsec/swanctl.conf"},
		{"syntax error in include", map[string]string{"swanctl.conf": "include a.conf\n", "a.conf": "\n}\n"},
			"/etc/xdpsec/a.conf:2: unexpected '}'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tree(t, tt.files)
			if err == nil || err.Error() != tt.want {
				t.Errorf("got  %v\nwant %s", err, tt.want)
			}
		})
	}
}

func TestIncludeDepth(t *testing.T) {
	files := map[string]string{"swanctl.conf": "include 0.conf\n"}
	for i := range 20 {
		files[uitoa(uint64(i))+".conf"] = "include " + uitoa(uint64(i+1)) + ".conf\n"
	}
	files["20.conf"] = "x = 1\n"
	_, err := tree(t, files)
	if err == nil || !strings.Contains(err.Error(), "includes nested deeper than 10") {
		t.Errorf("got %v, want the depth limit", err)
	}
}

func TestSectionDepth(t *testing.T) {
	src := strings.Repeat("a {\n", 100) + strings.Repeat("}\n", 100)
	_, err := tree(t, map[string]string{"swanctl.conf": src})
	if err == nil || !strings.Contains(err.Error(), "sections nested deeper than 32") {
		t.Errorf("got %v, want the nesting limit", err)
	}
}
