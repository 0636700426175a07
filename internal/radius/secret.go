package radius

import (
	"fmt"
	"log/slog"
)

// Secret is a RADIUS shared secret. It never prints its value: not with
// any fmt verb, not in slog, not through encoding.TextMarshaler, so a
// Config or a Server can be logged or wrapped in an error as it is.
type Secret struct {
	b []byte
}

// NewSecret makes a Secret from its text.
func NewSecret(s string) Secret { return Secret{b: []byte(s)} }

// Len is the secret's length in bytes.
func (s Secret) Len() int { return len(s.b) }

// bytes is the value, for the packet code of this package only.
func (s Secret) bytes() []byte { return s.b }

const redacted = "<redacted>"

// String hides the value.
func (s Secret) String() string { return redacted }

// GoString hides the value from %#v.
func (s Secret) GoString() string { return "radius.Secret(" + redacted + ")" }

// Format hides the value from every verb (%x and %q included).
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		fmt.Fprint(f, s.GoString())
		return
	}
	fmt.Fprint(f, redacted)
}

// LogValue hides the value from slog.
func (s Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalText hides the value from encoders (JSON, YAML, ...).
func (s Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// UnmarshalText takes a secret from configuration text.
func (s *Secret) UnmarshalText(text []byte) error {
	s.b = append([]byte(nil), text...)
	return nil
}
