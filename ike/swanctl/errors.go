package swanctl

import (
	"errors"
	"fmt"
	"strconv"
)

// Pos is a place in a configuration file.
type Pos struct {
	File string
	Line int
}

func (p Pos) String() string {
	if p.File == "" {
		return ""
	}
	if p.Line == 0 {
		return p.File
	}
	return p.File + ":" + strconv.Itoa(p.Line)
}

// Sentinel errors, wrapped by *Error; test with errors.Is.
var (
	// ErrSyntax: the file does not follow the strongswan.conf syntax.
	ErrSyntax = errors.New("syntax error")
	// ErrUnknownKey: a key or section neither strongSwan nor xdpsec knows.
	ErrUnknownKey = errors.New("unknown key")
	// ErrUnsupported: a key or value strongSwan documents that xdpsec does
	// not support yet.
	ErrUnsupported = errors.New("not supported yet")
	// ErrValue: a value that cannot be parsed or is out of range.
	ErrValue = errors.New("invalid value")
	// ErrInclude: an include that cannot be followed (missing file, cycle,
	// too deep).
	ErrInclude = errors.New("include error")
	// ErrPermissions: a file holding secrets that group or others may read
	// or write.
	ErrPermissions = errors.New("bad permissions")
	// ErrInvalid: settings that are each fine but do not fit together.
	ErrInvalid = errors.New("invalid configuration")
)

// Error is one problem in a configuration, with where it is.
type Error struct {
	Pos Pos
	// Key is the dotted path of the key or section concerned, as in
	// "connections.site.children.net.esp_proposals"; empty for file-level
	// errors.
	Key string
	Err error
}

func (e *Error) Error() string {
	s := ""
	if p := e.Pos.String(); p != "" {
		s = p + ": "
	}
	if e.Key != "" {
		s += e.Key + ": "
	}
	return s + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// wrapf makes an error that wraps sentinel and reads as the formatted text
// alone (the sentinel's words are in the text where they help).
func wrapf(sentinel error, format string, args ...any) error {
	return &kindError{kind: sentinel, msg: fmt.Sprintf(format, args...)}
}

type kindError struct {
	kind error
	msg  string
	err  error // optional cause
}

func (e *kindError) Error() string { return e.msg }

func (e *kindError) Unwrap() []error {
	if e.err != nil {
		return []error{e.kind, e.err}
	}
	return []error{e.kind}
}

// wrapErr makes an error that wraps both sentinel and cause and reads as
// the cause.
func wrapErr(sentinel, cause error) error {
	return &kindError{kind: sentinel, msg: cause.Error(), err: cause}
}

// errorList collects errors in the order found.
type errorList struct{ errs []error }

func (l *errorList) add(pos Pos, key string, err error) {
	l.errs = append(l.errs, &Error{Pos: pos, Key: key, Err: err})
}

func (l *errorList) err() error { return errors.Join(l.errs...) }
