// Package maps gives typed access to every map the xdpsec BPF programs
// share with the daemon and the CLI: one wrapper per map, with its pin name
// as a constant. Nothing outside this package touches a raw *ebpf.Map.
//
// It also holds the SPD compiler, which turns a set of outbound policies
// into the lookup structures tc_lan walks, and a plain reference matcher
// that says what the answer must be.
//
// It knows nothing of IKE.
package maps
