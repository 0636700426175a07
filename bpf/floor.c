//go:build ignore

/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * xdp_floor: the cheapest useful XDP program, count and pass. Benchmarks
 * measure it in the same run as xdp_wan, as the floor a real program is
 * compared against.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} floor_count SEC(".maps");

SEC("xdp")
int xdp_floor(struct xdp_md *ctx)
{
	__u32 zero = 0;
	__u64 *n = bpf_map_lookup_elem(&floor_count, &zero);

	if (n)
		(*n)++;
	return XDP_PASS;
}

char __license[] SEC("license") = "Dual BSD/GPL";
