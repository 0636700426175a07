package eap

import (
	"fmt"
	"io"
)

// Credentials is the server's user database: swanctl.conf's eap secrets,
// a file, a directory. Secret returns the secret of the user whose EAP
// identity (or MS-CHAPv2 Name) is identity, or an error that wraps
// ErrUnknownUser if there is none. Any other error is a lookup failure.
// The caller wipes the Secret it receives; implementations return a copy.
type Credentials interface {
	Secret(identity string) (Secret, error)
}

// CredentialsFunc adapts a function to Credentials.
type CredentialsFunc func(identity string) (Secret, error)

func (f CredentialsFunc) Secret(identity string) (Secret, error) { return f(identity) }

// Secret is a user's password, or only its NT hash (MD4 of the UTF-16LE
// password, what strongSwan calls an NTLM secret). EAP-MSCHAPv2 works with
// either; EAP-MD5 needs the password. It prints as "[secret]" under every
// fmt verb, so that it cannot reach a log by accident.
type Secret struct {
	password []byte
	ntHash   [ntHashLen]byte
	hasNT    bool
}

// PasswordSecret makes a Secret from a password (UTF-8). The Secret holds
// a copy.
func PasswordSecret(password []byte) Secret {
	s := Secret{password: append([]byte(nil), password...)}
	ntPasswordHash(s.password, &s.ntHash)
	s.hasNT = true
	return s
}

// NTHashSecret makes a Secret from an NT password hash alone.
func NTHashSecret(hash [16]byte) Secret {
	return Secret{ntHash: hash, hasNT: true}
}

// Valid reports whether s holds anything.
func (s *Secret) Valid() bool { return s.hasNT }

// Wipe zeroes the secret.
func (s *Secret) Wipe() {
	clear(s.password)
	s.password = nil
	clear(s.ntHash[:])
	s.hasNT = false
}

func (Secret) String() string   { return "[secret]" }
func (Secret) GoString() string { return "eap.Secret{[secret]}" }

// Format keeps every verb, %x and %#v included, away from the key.
func (Secret) Format(f fmt.State, _ rune) { io.WriteString(f, "[secret]") }
