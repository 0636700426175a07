//go:build ignore

/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * xdp_wan: the WAN side. ESP, ESP-in-UDP and AH are matched against the
 * inbound SA table before the stack sees them: unknown SPIs are dropped,
 * known ones counted (pre-authentication) and steered to their SA's CPU.
 * IKE passes through a per-source policer for new-SA requests. Everything
 * else passes untouched.
 */
#include <linux/udp.h>

#include "parse.h"
#include "maps.h"

#define IKE_PORT 500
#define NATT_PORT 4500
#define IKE_HDR_LEN 28
#define ESP_HDR_LEN 8		/* SPI + sequence number */
#define AH_HDR_LEN 12		/* next header, length, reserved, SPI, sequence number */
#define AH_OFF_SPI 4
#define NON_ESP_MARKER_LEN 4

/* IKE header fields (RFC 7296 3.1, RFC 2408 3.1) */
#define IKE_OFF_RSPI 8
#define IKE_OFF_VERSION 17
#define IKE_OFF_EXCHANGE 18
#define IKE_OFF_FLAGS 19
#define IKE_OFF_MSGID 20
#define IKEV2_IKE_SA_INIT 34
#define IKEV2_FLAG_INITIATOR 0x08
#define IKEV2_FLAG_RESPONSE 0x20
#define IKEV1_MAIN_MODE 2
#define IKEV1_AGGRESSIVE 4

static __always_inline int verdict(int action, __u32 counter, __u64 bytes)
{
	count(counter, bytes);
	return action;
}

/* steer counts an SA's packet and hands it to the SA's CPU, if it has one. */
static __always_inline int steer(__u32 cpu, __u64 bytes)
{
	int ret;

	count(XS_CNT_RX_SEEN, bytes);
	if (cpu == XS_NONE)
		return XDP_PASS;
	/* A CPU without a queue in cpu_map falls back to XDP_PASS. */
	ret = bpf_redirect_map(&cpu_map, cpu, XDP_PASS);
	if (ret == XDP_REDIRECT)
		count(XS_CNT_REDIRECT_CPU, bytes);
	return ret;
}

static __always_inline int addr_eq(const __u8 *a, const __u8 *b, __u8 family)
{
	if (family == XS_FAMILY_IPV4)
		return *(__u32 *)a == *(__u32 *)b;
	return *(__u64 *)a == *(__u64 *)b && *(__u64 *)(a + 8) == *(__u64 *)(b + 8);
}

/* slot_holds: the slot is the SA for this SPI, protocol and destination. */
static __always_inline int slot_holds(const struct xs_sa_slot *slot, __be32 spi, __u8 proto, struct l3 *l3)
{
	return slot->spi == spi && slot->family == l3->family && slot->proto == proto &&
	       addr_eq(slot->daddr, l3->daddr, l3->family);
}

/* count_slot counts a packet on a slot's per-CPU counters. */
static __always_inline void count_slot(void *stats, __u32 idx, __u64 bytes)
{
	struct xs_counter_value *ctr = bpf_map_lookup_elem(stats, &idx);

	if (ctr) {
		ctr->packets++;
		ctr->bytes += bytes;
	}
}

/*
 * stash_frame copies a frame for a pending SPI into the stash queue, for
 * the daemon to hand to the stack once the SA is in. Every way it can fail
 * is a counted drop. Not inlined: the hot path keeps its size.
 */
static __noinline int stash_frame(struct xdp_md *ctx, struct xs_sa_slot *slot, __u64 bytes)
{
	struct xs_stash_entry *e;
	__u32 zero = 0, len, last;

	e = bpf_map_lookup_elem(&stash_scratch, &zero);
	if (!e)
		return verdict(XDP_DROP, XS_CNT_DROP_STASH_FULL, bytes);
	/*
	 * The length must be 1..XS_STASH_FRAME in one unsigned compare: the
	 * verifier of 6.1 learns no lower bound from len != 0 and refuses
	 * the copy as possibly empty. barrier_var keeps clang from folding
	 * last + 1 back into len and splitting the compare again.
	 */
	len = bpf_xdp_get_buff_len(ctx);
	last = len - 1;
	if (last >= XS_STASH_FRAME)
		return verdict(XDP_DROP, XS_CNT_DROP_STASH_TOO_LONG, bytes);
	barrier_var(last);
	len = last + 1;
	if (bpf_xdp_load_bytes(ctx, 0, e->frame, len) < 0)
		return verdict(XDP_DROP, XS_CNT_DROP_MALFORMED, bytes);
	e->time_ns = bpf_ktime_get_ns();
	e->ifindex = ctx->ingress_ifindex;
	e->rx_queue = ctx->rx_queue_index;
	e->len = len;
	e->spi = slot->spi;
	e->family = slot->family;
	e->proto = slot->proto;
	__builtin_memcpy(e->daddr, slot->daddr, sizeof(e->daddr));
	if (bpf_map_push_elem(&stash, e, 0) < 0)
		return verdict(XDP_DROP, XS_CNT_DROP_STASH_FULL, bytes);
	return verdict(XDP_DROP, XS_CNT_STASHED, bytes);
}

static __always_inline int handle_sa(struct xdp_md *ctx, struct l3 *l3, __u8 proto, __be32 spi, __u64 bytes)
{
	__u32 zero = 0, idx, h;
	struct xs_config *cfg = bpf_map_lookup_elem(&config, &zero);
	struct xs_sa_slot *slot;
	struct xs_sa_key key = {};
	struct xs_sa_entry *sa;
	__u32 home = 0;
	int i;

	if (!cfg)
		return verdict(XDP_DROP, XS_CNT_DROP_NO_SA, bytes);

	/* Our own SPIs: an array index and a compare. */
	idx = bpf_ntohl(spi) - cfg->spi_base;
	if (idx < cfg->spi_count) {
		slot = bpf_map_lookup_elem(&sa_slot, &idx);
		if (!slot || !slot_holds(slot, spi, proto, l3))
			return verdict(XDP_DROP, XS_CNT_DROP_NO_SA, bytes);
		if (slot->flags & XS_SLOT_PENDING)
			return stash_frame(ctx, slot, bytes);
		count_slot(&sa_slot_stats, idx, bytes);
		return steer(slot->cpu, bytes);
	}

	/* Most gateways have no SAs outside the range: a flood of made-up
	 * SPIs is then dropped without a lookup. */
	if (!(cfg->flags & XS_CFG_FOREIGN_SAS))
		return verdict(XDP_DROP, XS_CNT_DROP_NO_SA, bytes);
	h = XS_FOREIGN_HASH(bpf_ntohl(spi));
#pragma clang loop unroll(full)
	for (i = 0; i < XS_FOREIGN_PROBES; i++) {
		idx = (h + i) & cfg->foreign_mask;
		slot = bpf_map_lookup_elem(&sa_foreign, &idx);
		if (!slot)
			break;
		if (i == 0)
			home = slot->flags;
		if (slot_holds(slot, spi, proto, l3)) {
			count_slot(&sa_foreign_stats, idx, bytes);
			return steer(slot->cpu, bytes);
		}
	}
	if (!(cfg->flags & XS_CFG_FOREIGN_HASHED) || !(home & XS_SLOT_OVERFLOW))
		return verdict(XDP_DROP, XS_CNT_DROP_NO_SA, bytes);
	key.spi = spi;
	key.family = l3->family;
	key.proto = proto;
	copy_addr(key.daddr, l3->daddr, l3->family);
	sa = bpf_map_lookup_elem(&sa_in, &key);
	if (!sa)
		return verdict(XDP_DROP, XS_CNT_DROP_NO_SA, bytes);
	sa->rx_seen_packets++;
	sa->rx_seen_bytes += bytes;
	return steer(sa->cpu, bytes);
}

/*
 * is_new_sa_request: an IKEv2 IKE_SA_INIT request that opens a new SA
 * (initiator, not a response, message ID 0, responder SPI 0), or the first
 * message of IKEv1 Main or Aggressive Mode (responder cookie 0). These are
 * what cost a responder a DH computation and state.
 */
static __always_inline int is_new_sa_request(__u8 *ike)
{
	__u8 version = ike[IKE_OFF_VERSION] >> 4;
	__u8 exchange = ike[IKE_OFF_EXCHANGE];
	__u8 flags = ike[IKE_OFF_FLAGS];

	if (*(__u64 *)(ike + IKE_OFF_RSPI) != 0 || *(__u32 *)(ike + IKE_OFF_MSGID) != 0)
		return 0;
	if (version == 2)
		return exchange == IKEV2_IKE_SA_INIT && (flags & IKEV2_FLAG_INITIATOR) &&
		       !(flags & IKEV2_FLAG_RESPONSE);
	if (version == 1)
		return exchange == IKEV1_MAIN_MODE || exchange == IKEV1_AGGRESSIVE;
	return 0;
}

/* mix64 is MurmurHash3's 64-bit finalizer: every input bit moves every output bit. */
static __always_inline __u64 mix64(__u64 h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}

/*
 * ike_src_hash mixes the source address with the configured seed: the
 * bucket index and tag come from its upper half, so each must depend on
 * every address bit (sources often differ in the last bits only).
 */
static __always_inline __u64 ike_src_hash(struct l3 *l3, __u32 seed)
{
	__u64 w[2];

	if (l3->family == XS_FAMILY_IPV4)
		return mix64((__u64)seed << 32 | *(__u32 *)l3->saddr);
	__builtin_memcpy(w, l3->saddr, 16);
	return mix64(mix64(((__u64)seed << 32) ^ w[0]) ^ w[1]);
}

/*
 * ike_admit polices one new-SA request with a generic cell rate algorithm
 * per source: the "theoretical arrival time" in the source's bucket
 * advances by 1/rate for each admitted request, admitting while it runs
 * at most (burst-1)/rate ahead of now. The update is a compare-and-swap so
 * that concurrent CPUs cannot both spend the last token.
 */
static __always_inline int ike_admit(struct l3 *l3, struct xs_config *cfg)
{
	const __u64 tat_mask = (1ULL << XS_IKE_TAT_BITS) - 1;
	__u64 h, tag, now, old, tat, *state;
	__u32 idx;
	int i;

	if (!cfg || cfg->ike_rate == 0)
		return 1;
	h = ike_src_hash(l3, cfg->ike_seed);
	idx = (h >> 32) & (XS_IKE_BUCKETS - 1);
	tag = h & ~tat_mask;
	state = bpf_map_lookup_elem(&ike_bucket, &idx);
	if (!state)
		return 1;
	/*
	 * Time in jiffies: the coarse clock has a jiffy's resolution too, but
	 * reading it costs about 20 ns a packet, jiffies a load.
	 */
	if (cfg->jiffy_ns)
		now = bpf_jiffies64() * cfg->jiffy_ns;
	else
		now = bpf_ktime_get_coarse_ns();
	now = (now >> XS_IKE_TICK_SHIFT) & tat_mask;
	for (i = 0; i < 2; i++) {
		old = *state;
		tat = old & tat_mask;
		if ((old & ~tat_mask) != tag || tat < now)
			tat = now;	/* another source's bucket, or idle: start afresh */
		else if (tat - now > cfg->ike_tau)
			return 0;
		if (__sync_val_compare_and_swap(state, old, tag | ((tat + cfg->ike_interval) & tat_mask)) == old)
			return 1;
	}
	/* Lost the race twice: another CPU is admitting this source right now. */
	return 0;
}

static __always_inline int handle_ike(struct l3 *l3, __u8 *ike, void *data_end, __u32 len,
				      __u64 bytes)
{
	__u32 zero = 0;

	if (len < IKE_HDR_LEN || (void *)(ike + IKE_HDR_LEN) > data_end)
		return verdict(XDP_DROP, XS_CNT_DROP_MALFORMED, bytes);
	if (!is_new_sa_request(ike))
		return verdict(XDP_PASS, XS_CNT_IKE, bytes);
	if (!ike_admit(l3, bpf_map_lookup_elem(&config, &zero)))
		return verdict(XDP_DROP, XS_CNT_DROP_IKE_RATELIMIT, bytes);
	count(XS_CNT_IKE_SA_INIT, bytes);
	return verdict(XDP_PASS, XS_CNT_IKE, bytes);
}

static __always_inline int handle_udp(struct xdp_md *ctx, struct l3 *l3, void *data_end, __u64 bytes)
{
	struct udphdr *udp = l3->l4;
	__u8 *payload;
	__u32 len;

	if ((void *)(udp + 1) > data_end)
		return verdict(XDP_DROP, XS_CNT_DROP_MALFORMED, bytes);
	if (udp->dest != bpf_htons(NATT_PORT) && udp->dest != bpf_htons(IKE_PORT))
		return verdict(XDP_PASS, XS_CNT_XDP_PASS, bytes);

	/* The UDP length, not the frame: short frames carry Ethernet padding. */
	len = bpf_ntohs(udp->len);
	if (len < sizeof(*udp))
		return verdict(XDP_DROP, XS_CNT_DROP_MALFORMED, bytes);
	len -= sizeof(*udp);
	payload = (__u8 *)(udp + 1);

	if (udp->dest == bpf_htons(IKE_PORT))
		return handle_ike(l3, payload, data_end, len, bytes);

	/* Port 4500: keepalive, non-ESP marker + IKE, or ESP (RFC 3948 2.2). */
	if (len == 1) {
		if ((void *)(payload + 1) <= data_end && payload[0] == 0xff)
			return verdict(XDP_PASS, XS_CNT_NATT_KEEPALIVE, bytes);
		return verdict(XDP_DROP, XS_CNT_DROP_MALFORMED, bytes);
	}
	if (len < NON_ESP_MARKER_LEN || (void *)(payload + NON_ESP_MARKER_LEN) > data_end)
		return verdict(XDP_DROP, XS_CNT_DROP_MALFORMED, bytes);
	if (*(__u32 *)payload == 0)
		return handle_ike(l3, payload + NON_ESP_MARKER_LEN, data_end,
				  len - NON_ESP_MARKER_LEN, bytes);
	if (len < ESP_HDR_LEN || (void *)(payload + ESP_HDR_LEN) > data_end)
		return verdict(XDP_DROP, XS_CNT_DROP_MALFORMED, bytes);
	return handle_sa(ctx, l3, XS_SA_ESP, *(__be32 *)payload, bytes);
}

SEC("xdp")
int xdp_wan(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct l3 l3 = {};
	__be16 proto;
	__u64 bytes;
	int off;

	off = parse_eth(data, data_end, &proto);
	if (off < 0 || parse_l3(data, data_end, proto, off, &l3) < 0)
		return verdict(XDP_PASS, XS_CNT_XDP_PASS, data_end - data);

	/* The IP datagram's length, not the frame's: short frames are padded. */
	bytes = data_end - data - off;
	if (l3.l3_len < bytes)
		bytes = l3.l3_len;
	if (l3.frag == FRAG_LATER)
		return verdict(XDP_PASS, XS_CNT_FRAGMENT, bytes);

	if (l3.proto == IPPROTO_ESP) {
		if (l3.l4 + ESP_HDR_LEN > data_end)
			return verdict(XDP_DROP, XS_CNT_DROP_MALFORMED, bytes);
		return handle_sa(ctx, &l3, XS_SA_ESP, *(__be32 *)l3.l4, bytes);
	}
	/* AH (RFC 4302): the SPI follows next header, length and reserved. */
	if (l3.proto == IPPROTO_AH) {
		if (l3.l4 + AH_HDR_LEN > data_end)
			return verdict(XDP_DROP, XS_CNT_DROP_MALFORMED, bytes);
		return handle_sa(ctx, &l3, XS_SA_AH, *(__be32 *)(l3.l4 + AH_OFF_SPI), bytes);
	}
	if (l3.proto == IPPROTO_UDP)
		return handle_udp(ctx, &l3, data_end, bytes);
	return verdict(XDP_PASS, XS_CNT_XDP_PASS, bytes);
}

/*
 * The daemon hands stashed frames back with BPF_PROG_RUN: a frame whose
 * SA is now in goes through xdp_stash_inject with
 * BPF_F_TEST_XDP_LIVE_FRAMES, whose XDP_PASS gives it to the stack as if
 * it had just been received on its interface; one whose SA did not come
 * goes through xdp_stash_expire. Both count in stats, so the stash's
 * counters sit beside xdp_wan's.
 */
static __always_inline __u64 frame_ip_bytes(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__be16 proto;
	int off = parse_eth(data, data_end, &proto);

	return off < 0 ? data_end - data : data_end - data - off;
}

SEC("xdp")
int xdp_stash_inject(struct xdp_md *ctx)
{
	count(XS_CNT_STASH_INJECTED, frame_ip_bytes(ctx));
	return XDP_PASS;
}

SEC("xdp")
int xdp_stash_expire(struct xdp_md *ctx)
{
	count(XS_CNT_DROP_STASH_EXPIRED, frame_ip_bytes(ctx));
	return XDP_DROP;
}
