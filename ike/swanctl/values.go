package swanctl

import (
	"math"
	"net/netip"
	"strings"
)

// parseUintPrefix parses an unsigned integer at the start of s as
// strongSwan's strtoul(..., 0) does: decimal, hexadecimal with 0x, octal
// with a leading 0. Unlike strtoul it refuses signs, blanks, overflow and a
// missing number. It returns the number and the rest of s after its digits.
func parseUintPrefix(s string, max uint64) (uint64, string, error) {
	base, digits := uint64(10), s
	switch {
	case len(s) > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X'):
		base, digits = 16, s[2:]
	case len(s) > 1 && s[0] == '0' && s[1] >= '0' && s[1] <= '9':
		base, digits = 8, s[1:]
	}
	var n uint64
	i := 0
	for ; i < len(digits); i++ {
		d, ok := digitValue(digits[i])
		if !ok || d >= base {
			break
		}
		if d > max || n > (max-d)/base {
			return 0, "", wrapf(ErrValue, "%q is out of range (at most %d)", s, max)
		}
		n = n*base + d
	}
	if i == 0 {
		return 0, "", wrapf(ErrValue, "%q is not a number", s)
	}
	return n, digits[i:], nil
}

func digitValue(c byte) (uint64, bool) {
	switch {
	case c >= '0' && c <= '9':
		return uint64(c - '0'), true
	case c >= 'a' && c <= 'f':
		return uint64(c-'a') + 10, true
	case c >= 'A' && c <= 'F':
		return uint64(c-'A') + 10, true
	}
	return 0, false
}

func parseUint(s string, max uint64) (uint64, error) {
	n, rest, err := parseUintPrefix(s, max)
	if err != nil {
		return 0, err
	}
	if rest != "" {
		return 0, wrapf(ErrValue, "%q is not a number", s)
	}
	return n, nil
}

func parseUint32(s string) (uint32, error) {
	n, err := parseUint(s, math.MaxUint32)
	return uint32(n), err
}

func parsePort(s string) (uint16, error) {
	n, err := parseUint(s, math.MaxUint16)
	return uint16(n), err
}

// parseBool accepts strongSwan's spellings of yes and no.
func parseBool(s string) (bool, error) {
	switch strings.ToLower(s) {
	case "yes", "true", "enabled", "1":
		return true, nil
	case "no", "false", "disabled", "0":
		return false, nil
	}
	return false, wrapf(ErrValue, "%q is not a boolean (yes or no)", s)
}

// parseEnum maps a value, ignoring case, through m; names lists the
// accepted spellings for the error message.
func parseEnum[E any](s string, m map[string]E, names string) (E, error) {
	if e, ok := m[strings.ToLower(s)]; ok {
		return e, nil
	}
	var zero E
	return zero, wrapf(ErrValue, "%q is not one of %s", s, names)
}

// splitList splits a comma-separated list, trimming blanks and dropping
// empty items.
func splitList(s string) []string {
	var out []string
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// Unique says whether a value is allocated per CHILD_SA instance.
type Unique uint8

const (
	UniqueNone         Unique = iota // a fixed value
	UniquePerSA                      // %unique: one value per CHILD_SA instance
	UniquePerDirection               // %unique-dir: one value per CHILD_SA and direction
)

func (u Unique) String() string {
	switch u {
	case UniquePerSA:
		return "%unique"
	case UniquePerDirection:
		return "%unique-dir"
	}
	return ""
}

// IfID is an XFRM interface ID setting: a number (0 for none) or a unique
// allocation.
type IfID struct {
	ID     uint32
	Unique Unique
}

// maxIfID is the largest fixed if_id: strongSwan reserves the top two
// values for %unique and %unique-dir.
const maxIfID = math.MaxUint32 - 2

func (i IfID) String() string {
	if i.Unique != UniqueNone {
		return i.Unique.String()
	}
	return uitoa(uint64(i.ID))
}

func parseIfID(s string) (IfID, error) {
	switch strings.ToLower(s) {
	case "%unique":
		return IfID{Unique: UniquePerSA}, nil
	case "%unique-dir":
		return IfID{Unique: UniquePerDirection}, nil
	}
	n, err := parseUint(s, math.MaxUint32)
	if err != nil {
		return IfID{}, err
	}
	if n > maxIfID {
		return IfID{}, wrapf(ErrValue, "if_id %#x is reserved (at most %#x, or %%unique, %%unique-dir)", n, uint64(maxIfID))
	}
	return IfID{ID: uint32(n)}, nil
}

// Mark is a netfilter mark and mask setting (mark_in, mark_out).
type Mark struct {
	Value  uint32
	Mask   uint32
	Unique Unique // Value is allocated per CHILD_SA (and direction)
}

func (m Mark) String() string {
	v := m.Unique.String()
	if v == "" {
		v = "0x" + hex32(m.Value)
	}
	return v + "/0x" + hex32(m.Mask)
}

// parseMark parses "value[/mask]", the mask defaulting to 0xffffffff.
func parseMark(s string) (Mark, error) {
	val, mask, hasMask := strings.Cut(s, "/")
	m := Mark{Mask: math.MaxUint32}
	switch strings.ToLower(val) {
	case "%unique":
		m.Unique = UniquePerSA
	case "%unique-dir":
		m.Unique = UniquePerDirection
	default:
		n, err := parseUint32(val)
		if err != nil {
			return Mark{}, err
		}
		if n > maxIfID {
			return Mark{}, wrapf(ErrValue, "mark %#x is reserved", n)
		}
		m.Value = n
	}
	if hasMask {
		n, err := parseUint32(mask)
		if err != nil {
			return Mark{}, err
		}
		m.Mask = n
	}
	return m, nil
}

func hex32(v uint32) string {
	const digits = "0123456789abcdef"
	b := make([]byte, 8)
	for i := 7; i >= 0; i-- {
		b[i] = digits[v&0xf]
		v >>= 4
	}
	return string(b)
}

func uitoa(v uint64) string {
	if v == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	for v > 0 {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
	}
	return string(b[i:])
}

// family is a set of address families.
type family uint8

const (
	familyV4  family = 1
	familyV6  family = 2
	familyAny        = familyV4 | familyV6
)

func familyOf(a netip.Addr) family {
	if a.Is4() {
		return familyV4
	}
	return familyV6
}

func (f family) String() string {
	switch f {
	case familyV4:
		return "IPv4"
	case familyV6:
		return "IPv6"
	case familyAny:
		return "IPv4 and IPv6"
	}
	return "none"
}
