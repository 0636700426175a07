// Package ike implements the IKE control plane of xdpsec: the IKEv2
// exchange engine of RFC 7296 (and later IKEv1).
//
// An Engine holds the IKE SAs of a set of Connections (swanctl.conf
// connections as Go structs). It is driven from outside and touches the
// world only through three small interfaces:
//
//   - Sender: the datagrams it sends; HandleDatagram takes the ones
//     received, with their addresses (port 4500 with the non-ESP marker).
//   - Dataplane: SPIs, ESP SAs and policies of the CHILD_SAs it negotiates
//     (the kernel's XFRM and the BPF maps in the daemon;
//     ike/dataplanetest in tests).
//   - Clock: time and timers for retransmission, rekeying, liveness and
//     half-open timeouts (ike/iketest.Clock in tests).
//
// It must not know about BPF, netlink or sockets.
//
// The design follows strongSwan's libcharon. Each IKE SA has a task
// manager (task_manager.go) that owns the message IDs of both directions
// (window size 1), retransmits requests (RFC 7296 section 2.1, timeouts of
// 4s*1.8^n, 5 retransmits by default), caches its last response for
// retransmitted requests, and queues tasks. Each exchange concern is a
// task with build and process steps for initiator and responder:
// IKE_SA_INIT with NAT detection, cookies and INVALID_KE_PAYLOAD
// (task_ike_init.go, natd.go, cookie.go; half-open IKE SAs per source are
// limited in block.go), IKE_AUTH with pre-shared keys
// and certificates (task_ike_auth.go, auth.go), CHILD_SA creation, rekeying
// and deletion (task_child_*.go, task_delete.go), IKE SA rekeying
// (task_ike_rekey.go) and liveness checks. IKE SA and CHILD_SA states are
// explicit (state.go) and named as charon logs them.
//
// IKEv1 (v1_*.go) has its own exchanges and shares the rest: what an IKE
// SA of either version is (sa_common.go) and what a CHILD_SA of either
// puts into the Dataplane and takes out again (kernel.go): one reqid and
// policy table, the SA pair and its policies in that order, address
// updates, removal with the delayed deletion of a replaced inbound SA,
// and the zeroing of keys held back.
//
// IKEv2 redirect (RFC 5685, redirect.go) works in both roles: a
// connection's redirect rule sends new clients to other gateways during
// IKE_SA_INIT, chosen by their load or a hash of the client's address,
// RedirectIKESA sends established clients away, and as the client the
// engine follows REDIRECT (at most 5 in 300 seconds, as charon). What it
// needs from outside it asks through Config: the other gateways' loads
// (GatewayLoad) and the addresses of gateways named by domain name
// (ResolveGateway); it does no I/O of its own.
//
// CHILD_SAs carry time, byte and packet lifetimes (swanctl.conf's
// rekey_*, life_*, rand_*): the engine rekeys on its own timers and when
// the dataplane reports a soft expiry (Engine.Expire), and deletes a
// CHILD_SA, telling the peer, at a hard one. Behind a NAT it sends NAT-T
// keepalives (keepalive.go). The IKE and NAT-T ports are configurable
// (Config.Port, NATTPort) and float as charon's do.
//
// MOBIKE (RFC 4555, mobike.go) moves an IKE SA and its CHILD_SAs to other
// addresses: the daemon reports ours (Engine.AddressesChanged), the
// original initiator sends UPDATE_SA_ADDRESSES or probes paths when its
// requests go unanswered, the responder follows after a COOKIE2 return
// routability check, and the CHILD_SAs move in the Dataplane (MigrateSA,
// MigratePolicy) with their SPIs, replay state and counters.
//
// Logs go to the slog.Logger of Config with charon's wording where it has
// one ("IKE_SA gw[1] established between ...", "CHILD_SA net{1} established
// with SPIs ...", "parsed IKE_AUTH response 1 [ IDr AUTH SA TSi TSr ]"), so
// that operators find what they search for. Keys are never logged; IKE SA
// keys are zeroed when the SA is destroyed and CHILD_SA keys as soon as
// the dataplane has them.
//
// Bad input never panics: datagrams that do not decode, fail their
// integrity check, or belong to no IKE SA are counted in Stats and
// dropped; authentic requests that do not parse are answered with
// INVALID_SYNTAX (RFC 7296 section 2.21).
package ike
