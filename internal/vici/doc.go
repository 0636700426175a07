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
// The server (server.go) answers each command from a Backend: the
// daemon's operations (list, initiate, terminate, rekey, load and unload
// connections and shared secrets) and its event feed. commands.go turns
// the daemon's listings into the answers charon gives, with the same
// keys, so that swanctl prints what strongSwan users know. load-conn's
// section tree is handed over as a swanctl.Tree: the swanctl package
// turns it into connections exactly as it turns swanctl.conf, so that
// both accept and refuse the same keys.
//
// It must not know about netlink, BPF, the IKE state machines or where
// credentials are kept; it never formats a secret (load-shared data goes
// to the Backend and nowhere else, not into logs or answers).
package vici
