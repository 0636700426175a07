/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The one header shared by every xdpsec BPF program and, through bpf2go's
 * generated types, by the Go side: map layouts, actions, counters and drop
 * reasons are defined here and nowhere else.
 *
 * Byte order: SPIs and addresses are kept as they are on the wire (network
 * order); ports, MSS and everything else the Go side writes are host order.
 */
#ifndef XDPSEC_H
#define XDPSEC_H

#include <linux/types.h>

/* Index value meaning "no entry" in node/rule chains and for SA CPUs. */
#define XS_NONE 0xffffffffU

/* Address family as used in keys: the IP version number. */
enum xs_family : __u8 {
	XS_FAMILY_IPV4 = 4,
	XS_FAMILY_IPV6 = 6,
};

/* What tc_lan does with a packet that matches a policy. */
enum xs_action : __u8 {
	XS_ACTION_NONE = 0,	/* never stored; "no policy matched" */
	XS_ACTION_PROTECT = 1,	/* send through the tunnel of if_id */
	XS_ACTION_BYPASS = 2,	/* pass in clear */
	XS_ACTION_DISCARD = 3,	/* drop, counted */
};

/*
 * Every counter the programs keep, indexed into the per-CPU "stats" array.
 * XDP counters see packets before authentication: rx_seen is not "received".
 * Names for humans live in maps/counters.go; a test checks they cover all.
 */
enum xs_counter : __u32 {
	/* xdp_wan verdicts */
	XS_CNT_XDP_PASS = 0,		/* none of ours, passed untouched */
	XS_CNT_RX_SEEN,			/* ESP or AH for a known SA (pre-authentication) */
	XS_CNT_REDIRECT_CPU,		/* of those, steered to the SA's CPU */
	XS_CNT_IKE,			/* IKE passed to the daemon */
	XS_CNT_IKE_SA_INIT,		/* of those, new-SA requests under the limit */
	XS_CNT_NATT_KEEPALIVE,		/* NAT-T keepalives passed */
	XS_CNT_FRAGMENT,		/* non-first IP fragments passed */
	/* xdp_wan drop reasons */
	XS_CNT_DROP_NO_SA,		/* ESP or AH for an SPI we have no SA for */
	XS_CNT_DROP_MALFORMED,		/* truncated ESP, AH, UDP or IKE header */
	XS_CNT_DROP_IKE_RATELIMIT,	/* new IKE SA request over the source's rate */
	/* tc_lan verdicts */
	XS_CNT_TC_PROTECT,		/* matched a PROTECT policy */
	XS_CNT_TC_BYPASS,		/* matched a BYPASS policy */
	XS_CNT_TC_NO_POLICY,		/* IP, but no policy matched: passed */
	XS_CNT_TC_OTHER,		/* not IP, or a truncated IP header: passed */
	XS_CNT_TC_FRAGMENT,		/* non-first fragment, matched without ports */
	XS_CNT_TC_MSS_CLAMP,		/* SYNs whose MSS option was lowered */
	/* tc_lan drop reasons */
	XS_CNT_DROP_DISCARD,		/* matched a DISCARD policy */
	/*
	 * xdp_wan's stash (see struct xs_stash_entry), after the others so
	 * that existing counters keep their indices.
	 */
	XS_CNT_STASHED,			/* ESP or AH for a pending SPI, held in the stash */
	XS_CNT_STASH_INJECTED,		/* of those, handed to the stack once their SA was in */
	XS_CNT_DROP_STASH_FULL,		/* for a pending SPI, but the stash was full */
	XS_CNT_DROP_STASH_TOO_LONG,	/* for a pending SPI, but longer than a stash entry */
	XS_CNT_DROP_STASH_EXPIRED,	/* stashed, but its SA did not come in time */
	XS_CNT_MAX,
};

struct xs_counter_value {
	__u64 packets;
	__u64 bytes;
};

/*
 * IPsec protocol of an SA. ESP is 0 so that entries written before AH
 * existed (the byte was padding) keep matching ESP. ESP in UDP is ESP.
 */
enum xs_sa_proto : __u8 {
	XS_SA_ESP = 0,
	XS_SA_AH = 1,
};

/*
 * Key of sa_in: the triple RFC 4301 uses to find an inbound SA
 * (destination, protocol, SPI). The kernel hands out SPIs per protocol,
 * so an AH and an ESP SA may share an SPI and destination.
 */
struct xs_sa_key {
	__u32 spi;		/* network order */
	enum xs_family family;
	enum xs_sa_proto proto;
	__u8 pad[2];
	__u8 daddr[16];		/* IPv4 in the first 4 bytes, the rest zero */
};

/*
 * Value of sa_in, one copy per CPU: the configuration fields are the same
 * in every copy, the counters are that CPU's share.
 */
struct xs_sa_entry {
	__u32 cpu;		/* CPU to steer to through cpu_map, XS_NONE: no steering */
	__u32 flags;		/* reserved, zero */
	__u64 rx_seen_packets;	/* pre-authentication */
	__u64 rx_seen_bytes;	/* from the IP header on */
};

/*
 * SAs whose SPI we allocated live in sa_slot, indexed by SPI - spi_base:
 * the daemon asks the kernel for SPIs in [spi_base, spi_base + spi_count),
 * so the lookup is an array index and a compare, whatever the number of
 * SAs. Other SPIs (manual SAs, another daemon's) go through sa_in. A slot
 * with SPI 0 is empty (RFC 4303 reserves SPI 0).
 */
struct xs_sa_slot {
	__u32 spi;		/* network order; 0: empty */
	enum xs_family family;
	enum xs_sa_proto proto;	/* the daemon keeps SPIs of the range unique over both */
	__u8 pad[2];
	__u8 daddr[16];
	__u32 cpu;		/* as in xs_sa_entry */
	__u32 flags;		/* sa_slot: XS_SLOT_PENDING; sa_foreign: XS_SLOT_OVERFLOW */
};

/*
 * A slot of sa_slot whose SPI the daemon has allocated (the kernel has
 * only ALLOCSPI's larval SA) but whose SA is not in yet. A peer may send
 * on a CHILD_SA as soon as it has answered our CREATE_CHILD_SA request
 * (RFC 7296 allows it), before its response reached us: such ESP or AH is
 * copied into the stash queue, not dropped, and the daemon hands it to
 * the stack once the SA is complete (or drops it, counted, when the SA
 * does not come within a second).
 */
#define XS_SLOT_PENDING 0x2	/* in xs_sa_slot.flags of sa_slot */

/* Longest frame the stash holds; longer ones are dropped, counted. */
#define XS_STASH_FRAME 2048

/* An entry of the stash queue: a frame as received, with where it came from. */
struct xs_stash_entry {
	__u64 time_ns;		/* bpf_ktime_get_ns (CLOCK_MONOTONIC) when stashed */
	__u32 ifindex;		/* ingress interface */
	__u32 rx_queue;
	__u32 len;		/* bytes of frame in use */
	__u32 spi;		/* network order, as in xs_sa_slot */
	enum xs_family family;
	enum xs_sa_proto proto;
	__u8 pad[2];
	__u8 daddr[16];
	__u32 pad0;
	__u8 frame[XS_STASH_FRAME];	/* from the Ethernet header on */
};

/*
 * SAs with SPIs outside the range (manual ones, another daemon's) live in
 * sa_foreign, an open-addressed array of xs_sa_slot: an SA sits in one of
 * the XS_FOREIGN_PROBES slots from XS_FOREIGN_HASH(spi) & foreign_mask on,
 * and a lookup compares those few slots, an array index each, instead of
 * hashing a 24-byte key. The index depends on the SPI only, so SAs that
 * share an SPI (different destinations or protocols) share a window; an
 * SA that finds its window full goes to the sa_in hash
 * (XS_CFG_FOREIGN_HASHED) and marks the window's first slot
 * (XS_SLOT_OVERFLOW, kept when the slot changes hands): only a miss in a
 * marked window looks in the hash. Counters in sa_foreign_stats, same index.
 */
#define XS_SLOT_OVERFLOW 0x1	/* in xs_sa_slot.flags of sa_foreign */
#define XS_FOREIGN_PROBES 4
#define XS_FOREIGN_HASH(spi_host) (((spi_host) * 0x9e3779b1U) ^ (((spi_host) * 0x9e3779b1U) >> 16))

/*
 * ike_bucket: the per-source policer for new IKE SAs, an array of
 * XS_IKE_BUCKETS 64-bit words indexed by a seeded hash of the source
 * address. Each word holds the source's GCRA state, its theoretical
 * arrival time, in the low XS_IKE_TAT_BITS (units of 2^XS_IKE_TICK_SHIFT
 * ns of the coarse monotonic clock: 9 years before they wrap), and a tag
 * of the address hash in the bits above. A source that finds another's tag
 * in its bucket takes the bucket over with a fresh state: two sources that
 * share a bucket never throttle each other, and what a source gains by it
 * is bounded by the other's requests. An array index and one word instead
 * of a hash map keyed by address: the admitted path costs a few ns.
 */
#define XS_IKE_BUCKETS 65536		/* power of two */
#define XS_IKE_TICK_SHIFT 10
#define XS_IKE_TAT_BITS 48

/*
 * Destination prefix lengths of one SPD generation and family that are kept
 * in the spd_prefix hash, longest first. tc_lan tries one exact lookup per
 * length, so the cost follows the number of distinct lengths, not of
 * prefixes. A set with more distinct lengths keeps the shorter ones in the
 * spd_dst trie (XS_SPD_LENS_TRIE), asked only when no hashed length hits.
 */
#define XS_SPD_HASH_LENS 7
#define XS_SPD_LENS_TRIE 0x80	/* flag in n */
#define XS_SPD_LENS_COUNT 0x7f	/* mask of n: lengths in len[] */

struct xs_spd_lens {
	__u8 n;
	__u8 len[XS_SPD_HASH_LENS];
};

/*
 * Single entry of the "config" array; the Go side writes it at load time
 * and whenever an operator changes a setting.
 */
struct xs_config {
	__u32 ike_rate;		/* new IKE SA requests per second per source, 0: no limit */
	__u32 ike_burst;	/* requests a source may send back to back */
	__u32 ike_interval;	/* 1/ike_rate in ticks (XS_IKE_TICK_SHIFT), at least 1 */
	__u32 ike_seed;		/* keys the source hash of ike_bucket */
	__u32 jiffy_ns;		/* length of a jiffy (1/CONFIG_HZ), 0: unknown */
	__u32 pad;
	__u64 ike_tau;		/* (ike_burst - 1) * ike_interval: how far ahead a source may run */
	__u32 spd_gen;		/* active generation of the compiled SPD, 0 or 1 */
	__u32 flags;		/* XS_CFG_* */
	__u32 spi_base;		/* first SPI of the sa_slot range (host order) */
	__u32 spi_count;	/* slots in use for the range, at most sa_slot's size */
	__u32 foreign_mask;	/* sa_foreign's size - 1 (a power of two) */
	__u32 pad0;
	/*
	 * By XS_SPD_LENS_IDX(gen, family). A generation's entries are written
	 * before it is switched to and left alone while it is active.
	 */
	struct xs_spd_lens spd_lens[4];
};

#define XS_SPD_LENS_IDX(gen, family) ((((gen) & 1) << 1) | ((family) == XS_FAMILY_IPV6))

/* There are SAs outside the range: without it, their SPIs are dropped unseen. */
#define XS_CFG_FOREIGN_SAS 0x1
/* Of those, sa_in has some (their window in sa_foreign was full). */
#define XS_CFG_FOREIGN_HASHED 0x8
/*
 * An outbound policy as configured: the source of truth for the compiled
 * lookup structures below, kept in the spd_out map by policy ID.
 */
struct xs_policy {
	enum xs_family family;
	__u8 src_len;		/* prefix lengths in bits */
	__u8 dst_len;
	__u8 proto;		/* IP protocol, 0: any */
	__u8 src[16];
	__u8 dst[16];
	__u16 dport_lo;		/* destination port range, host order; 0-65535: any */
	__u16 dport_hi;
	__u32 priority;		/* lower wins among equally specific selectors */
	enum xs_action action;
	__u8 pad;
	__u16 mss;		/* clamp TCP MSS of SYNs to this, 0: no clamping */
	__u32 if_id;		/* XFRM interface ID of the tunnel (PROTECT) */
	__u32 redirect_ifindex;	/* redirect PROTECTed packets here, 0: no redirect */
};

/*
 * Compiled SPD. Two generations live side by side; config.spd_gen says
 * which one packets use, so a new policy set is written into the idle
 * generation and switched to in one store.
 *
 * spd_prefix4, spd_prefix6: exact match over (gen, length, masked
 *          destination) -> node index, one lookup per length of config.spd_lens, longest
 *          first: the first hit is the most specific destination. Its cost
 *          does not grow with the number of prefixes (remote-access
 *          gateways have one host destination per client, site hubs one
 *          /24 per site), only with the number of distinct lengths.
 * spd_dst: LPM over (gen, family, destination) -> node index, for the
 *          prefixes of lengths that did not fit in spd_lens (rare).
 * spd_node[node]: the next shorter destination prefix present in the set.
 * spd_src: LPM over (node, source) -> first rule of the chain for that
 *          destination node and source prefix.
 * spd_rule[rule]: the policies with exactly that destination prefix whose
 *          source prefix contains the looked-up one, longest source first,
 *          then by priority; chains of longer sources continue into the
 *          chains of their shorter containing prefixes.
 */
struct xs_spd_dst_key {
	__u32 prefixlen;	/* 32 + prefix length in bits */
	__u8 gen;
	enum xs_family family;
	__u8 pad[2];
	__u8 addr[16];
};

/*
 * Keys of spd_prefix4 and spd_prefix6: IPv4 has a map of its own, so that
 * its key is 8 bytes to hash and compare rather than 20.
 */
struct xs_spd_prefix4_key {
	__u8 gen;
	__u8 len;		/* prefix length in bits */
	__u8 pad[2];
	__u8 addr[4];		/* the prefix, bits past len zero */
};

struct xs_spd_prefix6_key {
	__u8 gen;
	__u8 len;
	__u8 pad[2];
	__u8 addr[16];
};

struct xs_spd_src_key {
	__u32 prefixlen;	/* 32 + prefix length in bits */
	__u32 node;
	__u8 addr[16];
};

/*
 * A destination node with few source prefixes keeps them inline, longest
 * first, and needs no spd_src lookup; nsrc == XS_SPD_SRC_TRIE sends the
 * lookup to spd_src.
 */
#define XS_SPD_INLINE_SRC 2
#define XS_SPD_SRC_TRIE 0xff

struct xs_spd_node {
	__u32 parent;		/* node index, XS_NONE at the root */
	__u8 nsrc;		/* inline sources in use, or XS_SPD_SRC_TRIE */
	__u8 src_len[XS_SPD_INLINE_SRC];
	__u8 pad;
	__u32 src_head[XS_SPD_INLINE_SRC];	/* first rule of each source's chain */
	__u8 src[XS_SPD_INLINE_SRC][16];
};

struct xs_spd_rule {
	__u32 policy_id;
	__u32 next;		/* rule index, XS_NONE ends the chain */
	__u8 proto;
	enum xs_action action;
	__u16 mss;
	__u16 dport_lo;
	__u16 dport_hi;
	__u32 if_id;
	__u32 redirect_ifindex;
};

/*
 * A lookup takes at most this many steps (source lookups, node hops and
 * rules examined); the Go compiler refuses policy sets that could need more.
 */
#define XS_SPD_MAX_STEPS 256

/* Rules spd_lookup examines before it falls back to the bounded loop. */
#define XS_SPD_INLINE_RULES 2

/*
 * tc_lan leaves what it decided in the skb's control buffer, so that
 * "xdpsec policy lookup" can read the answer of a test run. A test run
 * that puts XS_PROBE_MAGIC in cb[XS_CB_PROBE] is a probe: it is answered
 * but not counted. Only test runs can be probes: every packet a device
 * receives has a non-zero ingress_ifindex.
 */
#define XS_CB_POLICY_ID 0
#define XS_CB_ACTION 1
#define XS_CB_PROBE 2
#define XS_PROBE_MAGIC 0x70726f62U	/* "prob" */

#endif /* XDPSEC_H */
