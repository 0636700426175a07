//go:build ignore

/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * tc_lan: the LAN side. Each packet's selectors are looked up in the
 * compiled SPD (most specific destination, then source, then priority);
 * the policy found protects it (tags it with the tunnel's XFRM if_id so one
 * catch-all XFRM policy per if_id serves it, clamps TCP MSS, optionally
 * redirects it), lets it bypass, or discards it.
 */
#include <linux/pkt_cls.h>
#include <linux/tcp.h>
#include <linux/udp.h>

#include "parse.h"
#include "maps.h"

#ifndef IPPROTO_SCTP
#define IPPROTO_SCTP 132
#endif
#ifndef IPPROTO_UDPLITE
#define IPPROTO_UDPLITE 136
#endif

#define TCP_OPT_EOL 0
#define TCP_OPT_NOP 1
#define TCP_OPT_MSS 2
#define TCP_OPT_MSS_LEN 4
#define TCP_OPTS_MAX 40

/* Enough for Ethernet, VLAN, IPv6 with a few extension headers and TCP. */
#define PULL_LEN 192

/*
 * bpf_skb_set_xfrm_info exists only on kernels with XFRM interfaces
 * (xfrm_interface, 6.2+). Declared weak: where it is missing the loader
 * resolves its address to zero and tc_lan tags packets with the mark.
 */
struct bpf_xfrm_info {
	__u32 if_id;
	int link;
};
extern int bpf_skb_set_xfrm_info(struct __sk_buff *skb_ctx,
				 const struct bpf_xfrm_info *from) __ksym __weak;

#ifndef bpf_ksym_exists
/* A weak ksym the kernel lacks has address zero (libbpf >= 1.2 has this). */
#define bpf_ksym_exists(sym) (!!(sym))
#endif

static __always_inline int has_ports(__u8 proto)
{
	return proto == IPPROTO_TCP || proto == IPPROTO_UDP || proto == IPPROTO_SCTP ||
	       proto == IPPROTO_UDPLITE;
}

static __always_inline int rule_matches(struct xs_spd_rule *r, __u8 proto, int have_port, __u16 dport)
{
	if (r->proto && r->proto != proto)
		return 0;
	if (r->dport_lo == 0 && r->dport_hi == 0xffff)
		return 1;
	return have_port && dport >= r->dport_lo && dport <= r->dport_hi;
}

/* The state of one spd_lookup walk, advanced one step per spd_step call. */
struct spd_walk {
	struct xs_spd_src_key sk;	/* the packet's source, for spd_src */
	__u32 node;
	__u32 rule;		/* next rule to examine, XS_NONE: hop to the parent node */
	__u32 found;		/* the matching rule, XS_NONE: none yet */
	__u16 dport;
	__u8 proto;
	__u8 have_port;
	__u8 family;
	__u8 pad[3];
};

/* prefix_match reports whether addr is in the prefix pfx/len. */
static __always_inline int prefix_match(const __u8 *addr, const __u8 *pfx, __u32 len, __u8 family)
{
	int i;

	if (family == XS_FAMILY_IPV4 && len > 32)
		return 0;
#pragma clang loop unroll(full)
	for (i = 0; i < 4; i++) {
		__u32 bits, mask;

		if (len <= (__u32)i * 32)
			return 1;
		bits = len - i * 32;
		mask = bits >= 32 ? 0xffffffffU : bpf_htonl(~0U << (32 - bits));
		if ((*(__u32 *)(addr + 4 * i) ^ *(__u32 *)(pfx + 4 * i)) & mask)
			return 0;
	}
	return 1;
}

/*
 * node_chain returns the first rule of the chain for the packet's source
 * at a destination node: from the node's inline sources (longest first)
 * when it has few, else from spd_src.
 */
static __always_inline __u32 node_chain(const struct xs_spd_node *n, struct spd_walk *w)
{
	__u32 *head;

	if (n->nsrc != XS_SPD_SRC_TRIE) {
		if (n->nsrc > 0 && prefix_match(w->sk.addr, n->src[0], n->src_len[0], w->family))
			return n->src_head[0];
		if (n->nsrc > 1 && prefix_match(w->sk.addr, n->src[1], n->src_len[1], w->family))
			return n->src_head[1];
		return XS_NONE;
	}
	w->sk.node = w->node;
	head = bpf_map_lookup_elem(&spd_src, &w->sk);
	return head ? *head : XS_NONE;
}

/*
 * spd_step is one step of the walk, as a bpf_loop callback: either a hop
 * to the parent destination node with its source lookup, or one rule.
 */
static long spd_step(__u32 i, void *ctx)
{
	struct spd_walk *w = ctx;
	struct xs_spd_rule *rule;
	struct xs_spd_node *n;

	if (w->rule == XS_NONE) {
		n = bpf_map_lookup_elem(&spd_node, &w->node);
		if (!n || n->parent == XS_NONE)
			return 1;
		w->node = n->parent;
		n = bpf_map_lookup_elem(&spd_node, &w->node);
		if (!n)
			return 1;
		w->rule = node_chain(n, w);
		return 0;
	}
	rule = bpf_map_lookup_elem(&spd_rule, &w->rule);
	if (!rule)
		return 1;
	if (rule_matches(rule, w->proto, w->have_port, w->dport)) {
		w->found = w->rule;
		return 1;
	}
	w->rule = rule->next;
	return 0;
}

/* prefix_mask is the network-order mask of word i of a prefix of len bits. */
static __always_inline __u32 prefix_mask(__u32 len, int i)
{
	if (len <= (__u32)i * 32)
		return 0;
	if (len >= (__u32)i * 32 + 32)
		return 0xffffffffU;
	return bpf_htonl(~0U << (32 - (len - i * 32)));
}

/* spd_prefix_v4 looks the address up in spd_prefix4 at each hashed length. */
static __always_inline __u32 *spd_prefix_v4(__u32 gen, const struct xs_spd_lens *lens, const __u8 *daddr)
{
	struct xs_spd_prefix4_key pk = { .gen = gen };
	__u32 n = lens->n & XS_SPD_LENS_COUNT, addr, *node;
	int i;

	__builtin_memcpy(&addr, daddr, 4);
	for (i = 0; i < XS_SPD_HASH_LENS; i++) {
		if (i >= n)
			break;
		pk.len = lens->len[i];
		*(__u32 *)pk.addr = addr & prefix_mask(pk.len, 0);
		node = bpf_map_lookup_elem(&spd_prefix4, &pk);
		if (node)
			return node;
	}
	return NULL;
}

static __always_inline __u32 *spd_prefix_v6(__u32 gen, const struct xs_spd_lens *lens, const __u8 *daddr)
{
	struct xs_spd_prefix6_key pk = { .gen = gen };
	__u32 n = lens->n & XS_SPD_LENS_COUNT, addr[4], *pa = (__u32 *)pk.addr, *node;
	int i, w;

	__builtin_memcpy(addr, daddr, 16);
	for (i = 0; i < XS_SPD_HASH_LENS; i++) {
		if (i >= n)
			break;
		pk.len = lens->len[i];
#pragma clang loop unroll(full)
		for (w = 0; w < 4; w++)
			pa[w] = addr[w] & prefix_mask(pk.len, w);
		node = bpf_map_lookup_elem(&spd_prefix6, &pk);
		if (node)
			return node;
	}
	return NULL;
}

/*
 * spd_dst_node returns the most specific destination node for the packet:
 * one exact lookup per hashed length, longest first, then, if the
 * generation has more lengths than fit, the LPM answer of spd_dst.
 */
static __always_inline __u32 *spd_dst_node(__u32 gen, const struct xs_spd_lens *lens, struct l3 *l3)
{
	__u32 alen = l3->family == XS_FAMILY_IPV4 ? 32 : 128;
	struct xs_spd_dst_key dk = {};
	__u32 *node;

	if (l3->family == XS_FAMILY_IPV4)
		node = spd_prefix_v4(gen, lens, l3->daddr);
	else
		node = spd_prefix_v6(gen, lens, l3->daddr);
	if (node || !(lens->n & XS_SPD_LENS_TRIE))
		return node;
	dk.prefixlen = 32 + alen;
	dk.gen = gen;
	dk.family = l3->family;
	copy_addr(dk.addr, l3->daddr, l3->family);
	return bpf_map_lookup_elem(&spd_dst, &dk);
}

/*
 * spd_lookup finds the policy for a packet and returns the index of its
 * rule in spd_rule, or XS_NONE. The destination lookup gives the most
 * specific destination node; for each node from there out to the root the
 * node's sources give a rule chain, walked until a rule's protocol and port
 * match.
 *
 * The first source lookup and the first rules are examined inline: that is
 * where nearly every packet finds its policy. Longer walks continue in a
 * bpf_loop (which the verifier checks once) within a step budget; the Go
 * compiler refuses policy sets whose worst path needs more steps.
 */
static __always_inline __u32 spd_lookup(__u32 gen, const struct xs_spd_lens *lens, struct l3 *l3, int have_port,
					 __u16 dport)
{
	__u32 alen = l3->family == XS_FAMILY_IPV4 ? 32 : 128;
	struct spd_walk w = {};
	struct xs_spd_rule *rule;
	struct xs_spd_node *n;
	__u32 *node;
	int i;

	node = spd_dst_node(gen, lens, l3);
	if (!node)
		return XS_NONE;

	w.sk.prefixlen = 32 + alen;
	copy_addr(w.sk.addr, l3->saddr, l3->family);
	w.node = *node;
	w.found = XS_NONE;
	w.proto = l3->proto;
	w.have_port = have_port;
	w.dport = dport;
	w.family = l3->family;

	n = bpf_map_lookup_elem(&spd_node, &w.node);
	if (!n)
		return XS_NONE;
	w.rule = node_chain(n, &w);
	for (i = 0; i < XS_SPD_INLINE_RULES; i++) {
		if (w.rule == XS_NONE)
			break;
		rule = bpf_map_lookup_elem(&spd_rule, &w.rule);
		if (!rule)
			return XS_NONE;
		if (rule_matches(rule, w.proto, w.have_port, w.dport))
			return w.rule;
		w.rule = rule->next;
	}
	if (w.rule == XS_NONE && n->parent == XS_NONE)
		return XS_NONE;
	bpf_loop(XS_SPD_MAX_STEPS, spd_step, &w, 0);
	return w.found;
}

struct mss_scan {
	__u8 opts[64];		/* power of two: indexes are masked for the verifier */
	__u32 optlen;
	__u32 next;		/* offset of the next option to look at */
	__u32 found;		/* offset of the MSS option + 1, 0: none */
};

/* mss_scan_step is a bpf_loop callback over option offsets 0..TCP_OPTS_MAX-1. */
static long mss_scan_step(__u32 i, void *ctx)
{
	struct mss_scan *s = ctx;
	__u8 kind, len;

	if (i != s->next)
		return 0;
	if (i >= s->optlen)
		return 1;
	kind = s->opts[i & 63];
	if (kind == TCP_OPT_EOL)
		return 1;
	if (kind == TCP_OPT_NOP) {
		s->next = i + 1;
		return 0;
	}
	len = s->opts[(i + 1) & 63];
	if (len < 2 || i + len > s->optlen)
		return 1;
	if (kind == TCP_OPT_MSS && len == TCP_OPT_MSS_LEN) {
		s->found = i + 1;
		return 1;
	}
	s->next = i + len;
	return 0;
}

/*
 * clamp_mss lowers the MSS option of a TCP SYN to mss, fixing the checksum.
 * tcp_off is the offset of the TCP header from the packet start. Returns 1
 * if the option was rewritten. Packet pointers are invalid afterwards.
 */
static __always_inline int clamp_mss(struct __sk_buff *skb, __u32 tcp_off, __u16 mss)
{
	struct mss_scan s = {};
	struct tcphdr tcp;
	__be16 old, new;
	__u32 at;

	if (bpf_skb_load_bytes(skb, tcp_off, &tcp, sizeof(tcp)) < 0)
		return 0;
	if (!tcp.syn || tcp.doff <= 5)
		return 0;
	s.optlen = tcp.doff * 4 - sizeof(tcp);
	if (s.optlen > TCP_OPTS_MAX)
		return 0;
	if (bpf_skb_load_bytes(skb, tcp_off + sizeof(tcp), s.opts, s.optlen) < 0)
		return 0;
	bpf_loop(TCP_OPTS_MAX, mss_scan_step, &s, 0);
	if (!s.found)
		return 0;

	at = (s.found - 1) & 63;
	old = (__be16)s.opts[(at + 2) & 63] | ((__be16)s.opts[(at + 3) & 63] << 8);
	if (bpf_ntohs(old) <= mss)
		return 0;
	new = bpf_htons(mss);
	if (bpf_skb_store_bytes(skb, tcp_off + sizeof(tcp) + at + 2, &new, sizeof(new), 0) < 0)
		return 0;
	bpf_l4_csum_replace(skb, tcp_off + __builtin_offsetof(struct tcphdr, check), old, new,
			    sizeof(new));
	return 1;
}

static __always_inline void tag_tunnel(struct __sk_buff *skb, __u32 if_id)
{
	if (bpf_ksym_exists(bpf_skb_set_xfrm_info)) {
		struct bpf_xfrm_info info = { .if_id = if_id };

		bpf_skb_set_xfrm_info(skb, &info);
		return;
	}
	skb->mark = if_id;
}

/* tc_count counts a verdict unless the packet is a probe. */
static __always_inline void tc_count(int probe, __u32 counter, __u64 bytes)
{
	if (!probe)
		count(counter, bytes);
}

SEC("tc")
int tc_lan(struct __sk_buff *skb)
{
	void *data, *data_end;
	struct xs_counter_value *pst;
	struct xs_spd_rule *rule;
	struct xs_config *cfg;
	struct l3 l3 = {};
	__u32 zero = 0, want, tcp_off = 0, policy_id, rule_idx, gen = 0;
	__u16 dport = 0;
	int have_port = 0, off, probe;
	__be16 proto;

	probe = skb->ingress_ifindex == 0 && skb->cb[XS_CB_PROBE] == XS_PROBE_MAGIC;
	skb->cb[XS_CB_POLICY_ID] = 0;
	skb->cb[XS_CB_ACTION] = XS_ACTION_NONE;

	want = skb->len < PULL_LEN ? skb->len : PULL_LEN;
	if (skb->data_end - skb->data < want)
		bpf_skb_pull_data(skb, want);
	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;

	off = parse_eth(data, data_end, &proto);
	if (off < 0 || parse_l3(data, data_end, proto, off, &l3) < 0) {
		tc_count(probe, XS_CNT_TC_OTHER, skb->len);
		return TC_ACT_UNSPEC;
	}

	if (l3.frag == FRAG_LATER) {
		tc_count(probe, XS_CNT_TC_FRAGMENT, skb->len);
	} else if (has_ports(l3.proto) && l3.l4 + 4 <= data_end) {
		dport = bpf_ntohs(*(__be16 *)(l3.l4 + 2));
		have_port = 1;
		if (l3.proto == IPPROTO_TCP)
			tcp_off = l3.l4 - data;
	}

	cfg = bpf_map_lookup_elem(&config, &zero);
	rule_idx = XS_NONE;
	if (cfg) {
		gen = cfg->spd_gen & 1;
		rule_idx = spd_lookup(gen, &cfg->spd_lens[XS_SPD_LENS_IDX(gen, l3.family)], &l3, have_port,
				      dport);
	}
	rule = rule_idx == XS_NONE ? NULL : bpf_map_lookup_elem(&spd_rule, &rule_idx);
	if (!rule) {
		tc_count(probe, XS_CNT_TC_NO_POLICY, skb->len);
		return TC_ACT_UNSPEC;
	}

	policy_id = rule->policy_id;
	skb->cb[XS_CB_POLICY_ID] = policy_id;
	skb->cb[XS_CB_ACTION] = rule->action;
	pst = probe ? NULL : bpf_map_lookup_elem(&spd_stats, &policy_id);
	if (pst) {
		pst->packets++;
		pst->bytes += skb->len;
	}

	switch (rule->action) {
	case XS_ACTION_PROTECT:
		tc_count(probe, XS_CNT_TC_PROTECT, skb->len);
		if (rule->mss && tcp_off && clamp_mss(skb, tcp_off, rule->mss))
			tc_count(probe, XS_CNT_TC_MSS_CLAMP, skb->len);
		tag_tunnel(skb, rule->if_id);
		if (rule->redirect_ifindex)
			return bpf_redirect(rule->redirect_ifindex, 0);
		return TC_ACT_UNSPEC;
	case XS_ACTION_DISCARD:
		tc_count(probe, XS_CNT_DROP_DISCARD, skb->len);
		return TC_ACT_SHOT;
	default:
		tc_count(probe, XS_CNT_TC_BYPASS, skb->len);
		return TC_ACT_UNSPEC;
	}
}
