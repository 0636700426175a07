package swanctl

import (
	"math"
	"strings"
	"time"
)

// parseTime parses a time as swanctl.conf(5) defines it: a number of
// seconds, or a number followed by s, m, h or d (either case, blanks
// allowed before the unit).
func parseTime(s string) (time.Duration, error) {
	n, rest, err := parseUintPrefix(s, math.MaxInt64)
	if err != nil {
		return 0, err
	}
	rest = strings.TrimLeft(rest, " ")
	unit := time.Second
	switch strings.ToLower(rest) {
	case "", "s":
	case "m":
		unit = time.Minute
	case "h":
		unit = time.Hour
	case "d":
		unit = 24 * time.Hour
	default:
		return 0, wrapf(ErrValue, "%q is not a time (a number with an optional unit s, m, h or d)", s)
	}
	if n > uint64(math.MaxInt64/unit) {
		return 0, wrapf(ErrValue, "%q is out of range", s)
	}
	return time.Duration(n) * unit, nil
}

// parseBytes parses a volume as strongSwan does: a number of bytes, or a
// number followed by k, m or g (either case, powers of 1024).
func parseBytes(s string) (uint64, error) {
	n, rest, err := parseUintPrefix(s, math.MaxUint64)
	if err != nil {
		return 0, err
	}
	rest = strings.TrimLeft(rest, " ")
	var shift uint
	switch strings.ToLower(rest) {
	case "":
	case "k":
		shift = 10
	case "m":
		shift = 20
	case "g":
		shift = 30
	default:
		return 0, wrapf(ErrValue, "%q is not a byte count (a number with an optional unit k, m or g)", s)
	}
	if n > math.MaxUint64>>shift {
		return 0, wrapf(ErrValue, "%q is out of range", s)
	}
	return n << shift, nil
}

// parseCount parses a packet count: a plain number.
func parseCount(s string) (uint64, error) { return parseUint(s, math.MaxUint64) }
