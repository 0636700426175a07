package interop

import (
	"strings"
	"testing"
)

// section is a VICI section as swanctl --pretty prints it: key = value
// lines, lists in [ ], subsections in { }.
type section struct {
	name     string
	values   map[string]string
	lists    map[string][]string
	sections []*section
}

func newSection(name string) *section {
	return &section{name: name, values: map[string]string{}, lists: map[string][]string{}}
}

// sub returns the subsection of that name, or nil.
func (s *section) sub(name string) *section {
	if s == nil {
		return nil
	}
	for _, x := range s.sections {
		if x.name == name {
			return x
		}
	}
	return nil
}

func (s *section) get(key string) string {
	if s == nil {
		return ""
	}
	return s.values[key]
}

// parsePretty reads swanctl's --pretty output: a sequence of top-level
// sections ("list-sa event {", "list-sas reply {").
func parsePretty(out string) []*section {
	root := newSection("")
	stack := []*section{root}
	var list *[]string
	var listKey string
	var listOwner *section
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		top := stack[len(stack)-1]
		switch {
		case line == "":
		case list != nil && line == "]":
			listOwner.lists[listKey] = *list
			list = nil
		case list != nil:
			*list = append(*list, line)
		case strings.HasSuffix(line, " {"):
			s := newSection(strings.TrimSuffix(line, " {"))
			top.sections = append(top.sections, s)
			stack = append(stack, s)
		case line == "}":
			if len(stack) > 1 {
				stack = stack[:len(stack)-1]
			}
		case strings.HasSuffix(line, " ["):
			listKey, listOwner, list = strings.TrimSuffix(strings.TrimSuffix(line, " ["), " ="), top, &[]string{}
		default:
			if k, v, ok := strings.Cut(line, " = "); ok {
				top.values[k] = v
			}
		}
	}
	return root.sections
}

func TestParsePretty(t *testing.T) {
	out := `list-sa event {
  site {
    uniqueid = 1
    local-id = C=CH, O=xdpsec, CN=moon
    initiator-spi = 23a846ffbbf7499c
    child-sas {
      net-1 {
        name = net
        spi-in = f0786f71
        local-ts = [
          10.1.0.0/16
          10.3.0.0/16
        ]
        remote-ts = [
          10.2.0.0/16
        ]
      }
    }
  }
}
list-sas reply {
}
`
	secs := parsePretty(out)
	if len(secs) != 2 || secs[0].name != "list-sa event" {
		t.Fatalf("%+v", secs)
	}
	sa := secs[0].sections[0]
	if sa.name != "site" || sa.get("local-id") != "C=CH, O=xdpsec, CN=moon" || sa.get("initiator-spi") != "23a846ffbbf7499c" {
		t.Errorf("%+v", sa)
	}
	ch := sa.sub("child-sas").sub("net-1")
	if ch.get("spi-in") != "f0786f71" || strings.Join(ch.lists["local-ts"], " ") != "10.1.0.0/16 10.3.0.0/16" ||
		strings.Join(ch.lists["remote-ts"], " ") != "10.2.0.0/16" {
		t.Errorf("%+v", ch)
	}
}
