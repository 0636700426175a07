// Package ike implements the IKE control plane of xdpsec (IKEv2, RFC 7296,
// and later IKEv1).
//
// It must not know about BPF or netlink: everything it installs goes through
// a small Dataplane interface, implemented for real next to the maps package
// and in memory for tests.
package ike
