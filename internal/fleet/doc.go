// Package fleet is what several xdpsec gateways share through etcd: a
// membership (each gateway's status under its etcd lease, gone when the
// gateway dies), a leader election per shared address (at most one
// gateway serves the IKE SAs of a shared address at a time), the records
// of the SAs of a shared address (written only by its leader, sealed with
// the fleet key) and the pool leases of the whole fleet (an address is
// leased to one identity fleet-wide; ike/pool.Arbiter).
//
// Split brain is refused by etcd, not by us: a leader holds its election
// key under the etcd lease of its session, and every write of the records
// of a shared address is a transaction that succeeds only while that key
// exists with the same create revision. A member whose lease expired (it
// was paused or cut off past its TTL) gets ErrStale and must stop serving;
// Leadership.Lost tells it as soon as its session notices.
//
// Keys, under Config.Prefix (default /xdpsec); path segments that are
// names (a shared address, a pool, an identity, a member) are escaped:
//
//	PREFIX/members/MEMBER                   Status as JSON, under the member's lease
//	PREFIX/elect/SHARED/LEASE               the election (etcd concurrency.Election)
//	PREFIX/sa/SHARED/NAME                   a record, sealed (AES-256-GCM)
//	PREFIX/leases/POOL/addr/ADDR            the identity ADDR is leased to
//	PREFIX/leases/POOL/id/IDENTITY          the address IDENTITY holds
//	PREFIX/leases/POOL/online/ADDR          the member that has ADDR online, under its lease
//
// Records are sealed with AES-256-GCM under the fleet key with a random
// nonce and their full etcd key as additional data, so a record moved to
// another key, or changed, does not open. Leases and statuses are not
// secret (identities and addresses, as in the pool's saved state) and are
// kept in clear so that transactions can compare them.
//
// etcd itself is reached over http, or https with a client certificate
// (Config.TLS, LoadTLS) where etcd is shared over a network: whoever can
// write to it can move leaderships and leases, though not read or forge
// records.
//
// The package knows etcd and the key layout. It does not know IKE, the
// engine, the dataplane or swanctl.conf: records are opaque bytes it is
// handed, and the daemon wires it to the engine and the pools.
package fleet
