// Package bpf holds xdpsec's BPF programs and the Go bindings bpf2go
// generates for them. The generated objects are committed, so building
// needs no clang; `make generate` rebuilds them with the pinned clang.
//
// Only the loader and the maps package use this package directly.
package bpf

//go:generate go tool bpf2go -cc clang-19 -strip llvm-strip-19 -target bpfel -cflags "-Wall -Werror -mcpu=v3 -I/usr/include/x86_64-linux-gnu" -type xs_sa_key -type xs_sa_entry -type xs_sa_slot -type xs_stash_entry -type xs_config -type xs_counter_value -type xs_counter -type xs_action -type xs_family -type xs_sa_proto -type xs_policy -type xs_spd_dst_key -type xs_spd_prefix4_key -type xs_spd_prefix6_key -type xs_spd_lens -type xs_spd_src_key -type xs_spd_node -type xs_spd_rule Xdpsec xdpsec.c
//go:generate go tool bpf2go -cc clang-19 -strip llvm-strip-19 -target bpfel -cflags "-Wall -Werror -mcpu=v3 -I/usr/include/x86_64-linux-gnu" Floor floor.c
