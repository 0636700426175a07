// Package swanctl reads xdpsec's IKE configuration, written in strongSwan's
// swanctl.conf file format, so that an existing strongSwan user's net-to-net
// connections load as they are.
//
// The file syntax is the one of strongswan.conf(5): sections "name { ... }",
// settings "key = value" (the value runs to the end of the line, a '#' or a
// '}'; double-quoted strings may hold escapes and newlines), comments with
// '#', "include PATTERN" (shell globs, relative to the including file), the
// same section given twice extends the first, a setting given twice keeps
// the last value, and "name : other.section { ... }" inherits from another
// section. On top of that, the sections and keys of swanctl.conf(5) are
// turned into typed values: each connection is the engine's *ike.Connection
// (embedded in Connection, with its rounds and children embedding
// *ike.AuthConfig and *ike.ChildConfig), so that a loaded file goes to the
// engine as it is, nothing formatted and parsed again. Beside it stays
// what only the file knows: positions for errors, addresses as written
// (DNS names, %any4), certificate and key file paths, keys the engine does
// not take (marks, copy_*, updown, ...), and IKESecret and PrivateKey for
// "secrets". Omitted settings take the defaults strongSwan documents (IKE
// rekeying every 4h, CHILD_SA rekeying every 1h, hard lifetimes 10% later,
// ...), so a configuration behaves as it does on strongSwan.
//
// What xdpsec does not (yet) support is an error naming the file, the line
// and the key, never a silent difference: a key strongSwan documents but we
// do not implement says "not supported yet", a key nobody knows says
// "unknown". Each section's keys are listed in one table (keys.go and the
// tables in connection.go, auth.go, child.go, secrets.go), so supporting one
// more is one line there plus its field. Every error found is reported, not
// only the first.
//
// Secrets (pre-shared keys, private key passphrases) are held in Secret,
// which never formats its value. A file that holds secrets and that group or
// others may read or write is refused, as ssh refuses such a key.
//
// Selectors, identities and proposals are parsed by the engine's own
// parsers (ike.ParseTSSpec, ike.ParseIdentity, transform.ParseProposals),
// so there is one syntax for each.
//
// This package reads files through a small FS interface (the real file
// system for Load, fakes in tests) and returns values; Config.Resolve looks
// up DNS names through a function it is given. It must not know about BPF,
// netlink, sockets or the IKE state machines, and it does not read
// certificates or keys: it parses and checks, and the daemon loads the
// credentials and decides what to do with the result (Diff tells it which
// connections a reload touches). The engine (package ike) must never
// import it.
package swanctl
