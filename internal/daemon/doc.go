// Package daemon is xdpsec's IKE daemon: it runs the ike engine over the
// IKE sockets with a dataplane (package internal/dataplane), loads
// swanctl.conf (through ike/swanctl, with the certificates and keys it
// names), answers the control socket, saves its IKE SAs across
// restarts, hands the kernel's XFRM expires and acquires to the engine
// (trap policies) and exports metrics.
//
// The engine (package ike) knows nothing of any of this; the daemon is
// where its interfaces meet the machine.
package daemon
