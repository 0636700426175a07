// Package demo is `make demo`: the example configuration (dist/swanctl.conf)
// brought up between two sites in network namespaces on the running kernel.
//
// LAN host A – gateway A – WAN – gateway B – LAN host B, with the example's
// addresses; `xdpsec load` and `xdpsec daemon` on each gateway with its own
// pin directory, control socket and state file; gateway A initiates
// (start_action = start), LAN A pings LAN B and sends it TCP; then each
// gateway's `xdpsec list-sas` and `xdpsec stats` are printed. Everything it
// made (namespaces, pins, daemons, files) is removed on the way out, also
// when it fails or its context is cancelled.
//
// It needs root and a kernel with ESP; cmd/xdpsec-demo runs it in the VM
// test guest (package internal/vm) where the host kernel has none. The e2e
// tests run it in the guest too.
package demo
