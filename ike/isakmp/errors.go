package isakmp

import "errors"

// Decoding and encoding errors, returned wrapped with context; test with
// errors.Is.
var (
	// ErrTruncated: a fixed field or a length points past the end of the
	// bytes present.
	ErrTruncated = errors.New("truncated")
	// ErrBadLength: a length field is smaller than its fixed part or
	// disagrees with the bytes it describes.
	ErrBadLength = errors.New("bad length")
	// ErrMalformed: a field holds a value the format forbids.
	ErrMalformed = errors.New("malformed")
	// ErrTooLarge: a value does not fit its wire field.
	ErrTooLarge = errors.New("too large")
	// ErrInvalidMajorVersion: the header's major version is not 1.
	ErrInvalidMajorVersion = errors.New("invalid major version")
)
