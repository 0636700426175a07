// Package interop tests xdpsec's IKE daemon against strongSwan's charon.
//
// Its tests, run as root, put charon (with the kernel-libipsec plugin, so
// that the kernel needs no ESP) in one network namespace and
// `xdpsec daemon --dataplane=dry-run` in another, joined by a veth pair,
// drive them with swanctl and the xdpsec CLI, and check that both sides
// agree on what they negotiated and name failures alike. charon runs in a
// private mount namespace of its own (its /run is a fresh tmpfs) with its
// strongswan.conf, swanctl directory and VICI socket in a temporary
// directory, so it meets nothing of the host's. A test that asks for
// strongSwan 6 runs Debian trixie's charon and swanctl chrooted in the
// chroot `make sw6` caches in .cache/sw6 (sw6_test.go).
//
// The package holds only tests; this file exists so that `go vet` and
// `go build ./...` see a package.
package interop
