/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Every map the programs share with each other and with the daemon. Sizes
 * here are defaults; the loader sets the real ones from its options.
 */
#ifndef XDPSEC_MAPS_H
#define XDPSEC_MAPS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "xdpsec.h"

/* Inbound SAs by (family, destination, SPI), with per-CPU rx_seen counters. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct xs_sa_key);
	__type(value, struct xs_sa_entry);
} sa_in SEC(".maps");

/* Inbound SAs with SPIs in the allocated range, by SPI - spi_base. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, struct xs_sa_slot);
} sa_slot SEC(".maps");

/* Their rx_seen counters, per CPU, same index. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, struct xs_counter_value);
} sa_slot_stats SEC(".maps");

/* Inbound SAs with other SPIs, open addressing by SPI (see xdpsec.h). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8192);
	__type(key, __u32);
	__type(value, struct xs_sa_slot);
} sa_foreign SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 8192);
	__type(key, __u32);
	__type(value, struct xs_counter_value);
} sa_foreign_stats SEC(".maps");

/* Frames for pending SPIs, waiting for their SA (see xdpsec.h). */
struct {
	__uint(type, BPF_MAP_TYPE_QUEUE);
	__uint(max_entries, 1024);
	__type(value, struct xs_stash_entry);
} stash SEC(".maps");

/* Where xdp_wan builds a stash entry: too big for the BPF stack. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct xs_stash_entry);
} stash_scratch SEC(".maps");

/* One queue per CPU that SAs are steered to. */
struct {
	__uint(type, BPF_MAP_TYPE_CPUMAP);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, struct bpf_cpumap_val);
} cpu_map SEC(".maps");

/* Per-source GCRA state for new IKE SAs, by source hash (see xdpsec.h). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, XS_IKE_BUCKETS);
	__type(key, __u32);
	__type(value, __u64);
} ike_bucket SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct xs_config);
} config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XS_CNT_MAX);
	__type(key, enum xs_counter);
	__type(value, struct xs_counter_value);
} stats SEC(".maps");

/* Configured outbound policies by ID; compiled into the spd_* maps below. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct xs_policy);
} spd_out SEC(".maps");

/* Per-policy packet and byte counters, by policy ID. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 16385);
	__type(key, __u32);
	__type(value, struct xs_counter_value);
} spd_stats SEC(".maps");

/* Destination prefixes of both SPD generations, by length (see xdpsec.h). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 32768);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct xs_spd_prefix4_key);
	__type(value, __u32);
} spd_prefix4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 32768);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct xs_spd_prefix6_key);
	__type(value, __u32);
} spd_prefix6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 32768);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct xs_spd_dst_key);
	__type(value, __u32);
} spd_dst SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 32768);
	__type(key, __u32);
	__type(value, struct xs_spd_node);
} spd_node SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 32768);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct xs_spd_src_key);
	__type(value, __u32);
} spd_src SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 32768);
	__type(key, __u32);
	__type(value, struct xs_spd_rule);
} spd_rule SEC(".maps");

static __always_inline void count(__u32 counter, __u64 bytes)
{
	struct xs_counter_value *v = bpf_map_lookup_elem(&stats, &counter);

	if (v) {
		v->packets++;
		v->bytes += bytes;
	}
}

#endif /* XDPSEC_MAPS_H */
