// Package vici serves strongSwan's Versatile IKE Control Interface (VICI)
// on a unix socket, so that swanctl, govici, the Python vici module and
// the tools built on them manage xdpsec as they manage charon.
//
// The wire format (message.go) is the one of strongSwan's
// src/libcharon/plugins/vici/README.md: 32-bit length-prefixed segments,
// each one packet (command request/response, event registration,
// event), packets carrying a section tree of key/values, lists and
// subsections. govici, an allowed dependency, keeps its encoder and its
// packet layer unexported (it is a client library), so the codec is ours
// and govici serves as the independent client in tests.
//
// The server (server.go) answers each command from a Backend, the small
// interface through which it reaches the daemon (backend.go adapts
// internal/daemon): listings, initiate, terminate, rekey, loading and
// unloading connections, pools, certificates, keys and shared secrets,
// counters, and two feeds: the engine's SA events (ike.Observer,
// events.go) and the daemon's log lines. commands.go and format.go turn
// the daemon's listings into the answers charon gives, with the same
// keys, so that swanctl prints what strongSwan users know. load-conn's
// and load-pool's section trees are handed over as a swanctl.Tree: the
// swanctl package turns them into connections and pools exactly as it
// turns swanctl.conf, so that both accept and refuse the same keys.
//
// Events reach clients through a bounded queue per client: the engine
// reports them with its lock held and must never wait for a slow client
// (what does not fit is dropped and counted). A client's own streamed
// events precede its command's response, as charon's.
//
// It must not know about netlink, BPF, the IKE state machines or where
// credentials are kept; it never formats a secret (load-shared and
// load-key data go to the Backend and nowhere else, not into logs or
// answers).
package vici
