// Package xfrm gives typed access to the kernel's IPsec databases through
// netlink: SAs (the SAD, "ip xfrm state"), policies (the SPD, "ip xfrm
// policy"), SPI allocation, XFRM interfaces, and a probe of what the running
// kernel can do. It is the half of the daemon's dataplane that talks to
// XFRM; the BPF maps next to it (package maps) are the other half.
//
// It speaks IKEv2's words where the daemon hands it negotiated values
// (transform IDs from ike/transform become kernel algorithm names here) and
// knows nothing else of IKE.
//
// Every request goes over the Conn's own netlink sockets, opened in one
// network namespace. Key material is written into exactly one request
// buffer, which is zeroed once the kernel has it; the package keeps no
// reference to the caller's key slices after a call returns, so the caller
// may (and should) zero them with Crypto.Zero. SAs read back from the kernel
// carry algorithm names and key lengths, never keys, and the kernel is
// asked (NETLINK_CAP_ACK) not to echo requests holding keys in its errors.
// No error or String method of this package prints a key.
package xfrm
