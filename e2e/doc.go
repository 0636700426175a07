// Package e2e holds the tests that run inside the VM test guest (package
// internal/vm): a Debian 6.12 kernel with real XFRM ESP, XFRM interfaces
// and xdpsec's BPF programs, the host's userland mounted read-only.
//
// They are compiled on the host into a static test binary
// (CGO_ENABLED=0 go test -c) and run by the guest; package vmtest does both.
// Run directly on the host, the binary skips everything and says why: the
// tests change kernel state no developer machine should have changed.
package e2e
