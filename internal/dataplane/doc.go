// Package dataplane is where the IKE engine's Dataplane meets the
// machine: KernelDataplane installs SAs and policies into the kernel's
// XFRM (with NIC offload where asked) and keeps the pinned BPF maps in
// step, DryRunDataplane logs what it would do; beside them the SPD writer
// (tc_lan's policy maps), XFRM interfaces of route-based tunnels and
// offload devices.
//
// The ordering rules live here: an inbound SPI enters the BPF SA map
// before its kernel SA is installed and leaves only after the kernel SA
// is gone, so xdp_wan never drops a packet of a live SA. With a stash it
// enters when it is allocated, pending (xdp_wan holds its packets), and
// turns active only once the kernel SA is complete, when what was held
// goes to the stack.
//
// It knows nothing of IKE exchanges, configuration files, the control
// socket or saved state: the daemon (internal/daemon) owns those and
// hands this package the engine's calls.
package dataplane
