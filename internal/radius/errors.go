package radius

import (
	"errors"
	"fmt"
	"strings"
)

// ErrNotResponding is what every failure to get a verified reply from
// any server matches with errors.Is. charon raises the alert
// "radius-not-responding" in the same case; its log said "RADIUS server
// is not responding" up to strongSwan 5.2.1.
var ErrNotResponding = errors.New("RADIUS server is not responding")

// ServerFailure is why one server gave no usable reply to one request.
type ServerFailure struct {
	Server string // its name
	Addr   string // host:port the request went to
	// Attempts is how many times the request was sent.
	Attempts int
	// Dropped counts the replies that failed a check; LastDrop is the
	// last reason.
	Dropped  int
	LastDrop DropReason
	// Err is a socket error that ended the tries early (no route, port
	// unreachable, name not resolved), nil after a plain timeout.
	Err error
}

// describe reads like charon's lines ("RADIUS Access-Request timed out
// after 3 attempts"), then says what was dropped.
func (f *ServerFailure) describe(request string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "RADIUS server '%s' (%s) is not responding: ", f.Server, f.Addr)
	if f.Err != nil {
		fmt.Fprintf(&b, "RADIUS %s failed after %d %s: %v", request, f.Attempts, plural(f.Attempts, "attempt", "attempts"), f.Err)
	} else {
		fmt.Fprintf(&b, "RADIUS %s timed out after %d attempts", request, f.Attempts)
	}
	if f.Dropped > 0 {
		fmt.Fprintf(&b, ", %d %s dropped (%v", f.Dropped, plural(f.Dropped, "reply", "replies"), f.LastDrop)
		if f.LastDrop == DropResponseAuthenticator || f.LastDrop == DropMessageAuthenticator {
			b.WriteString(": shared secret mismatch?")
		}
		b.WriteByte(')')
	}
	return b.String()
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// NotRespondingError is returned when no server gave a verified reply.
// It names every server tried and why each failed.
type NotRespondingError struct {
	Request  string // "Access-Request", "Accounting-Request"
	Failures []ServerFailure
}

func (e *NotRespondingError) Error() string {
	if len(e.Failures) == 1 {
		return e.Failures[0].describe(e.Request)
	}
	parts := make([]string, len(e.Failures))
	for i := range e.Failures {
		parts[i] = e.Failures[i].describe(e.Request)
	}
	return "no RADIUS server is responding: " + strings.Join(parts, "; ")
}

// Is makes errors.Is(err, ErrNotResponding) true.
func (e *NotRespondingError) Is(target error) bool { return target == ErrNotResponding }
