package swanctl

import (
	"crypto/subtle"
	"fmt"
)

// Secret holds secret bytes (a pre-shared key, a passphrase). It never
// formats its value: String, GoString, Format and MarshalText all give a
// placeholder, so a Secret that reaches a log line or a JSON dump shows
// nothing. Zero overwrites the bytes where the secret dies.
type Secret struct {
	b []byte
}

const redactedSecret = "[secret redacted]"

// NewSecret wraps b (not copied).
func NewSecret(b []byte) Secret { return Secret{b: b} }

// Bytes returns the secret's bytes; the caller must not keep or print them.
func (s Secret) Bytes() []byte { return s.b }

// Len returns the secret's length in bytes.
func (s Secret) Len() int { return len(s.b) }

// IsZero reports whether the secret is empty.
func (s Secret) IsZero() bool { return len(s.b) == 0 }

// Equal compares two secrets in constant time for equal lengths.
func (s Secret) Equal(o Secret) bool { return subtle.ConstantTimeCompare(s.b, o.b) == 1 }

// Zero overwrites the bytes and forgets them. Copies of the Secret share
// the bytes, so they see zeros too.
func (s *Secret) Zero() {
	clear(s.b)
	s.b = nil
}

func (s Secret) String() string   { return redactedSecret }
func (s Secret) GoString() string { return "config.Secret" + redactedSecret }

// Format makes every verb (%v, %s, %q, %x, %#v, ...) print the placeholder.
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		fmt.Fprint(f, s.GoString())
		return
	}
	fmt.Fprint(f, redactedSecret)
}

// MarshalText keeps the secret out of encodings such as JSON.
func (s Secret) MarshalText() ([]byte, error) { return []byte(redactedSecret), nil }
