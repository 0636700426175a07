/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Header parsing shared by xdp_wan and tc_lan: Ethernet with at most one
 * VLAN tag, then IPv4 or IPv6 with the common extension headers skipped.
 * Every helper checks bounds against data_end before it reads.
 */
#ifndef XDPSEC_PARSE_H
#define XDPSEC_PARSE_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "xdpsec.h"

#ifndef ETH_P_8021AD
#define ETH_P_8021AD 0x88A8
#endif

#define IPV6_EXT_MAX 4	/* extension headers skipped before giving up */

#define IP_MF 0x2000
#define IP_OFFSET 0x1FFF

enum frag_kind {
	FRAG_NONE = 0,
	FRAG_FIRST,	/* offset 0, more to come: the L4 header is here */
	FRAG_LATER,	/* offset > 0: no L4 header */
};

/* What the L3 parse found. Address pointers point into the packet. */
struct l3 {
	void *l4;		/* start of the transport header */
	__u8 *saddr;
	__u8 *daddr;
	__u32 l3_off;		/* offset of the IP header from the packet start */
	__u16 l3_len;		/* IP datagram length as the header says */
	__u8 family;
	__u8 proto;		/* transport protocol after extension headers */
	__u8 frag;		/* enum frag_kind */
};

/*
 * parse_eth returns the offset of the L3 header and its EtherType (network
 * order), or -1 if the frame is too short.
 */
static __always_inline int parse_eth(void *data, void *data_end, __be16 *proto)
{
	struct ethhdr *eth = data;
	int off = sizeof(*eth);

	if ((void *)(eth + 1) > data_end)
		return -1;
	*proto = eth->h_proto;
	if (*proto == bpf_htons(ETH_P_8021Q) || *proto == bpf_htons(ETH_P_8021AD)) {
		/* TCI, then the encapsulated EtherType */
		__be16 *inner = data + off + 2;

		if ((void *)(inner + 1) > data_end)
			return -1;
		*proto = *inner;
		off += 4;
	}
	return off;
}

static __always_inline int parse_ipv4(void *data, void *data_end, __u32 off, struct l3 *l3)
{
	struct iphdr *ip = data + off;
	__u32 hlen;
	__u16 frag;

	if ((void *)(ip + 1) > data_end)
		return -1;
	if (ip->version != 4 || ip->ihl < 5)
		return -1;
	hlen = ip->ihl * 4;
	if (data + off + hlen > data_end)
		return -1;

	frag = bpf_ntohs(ip->frag_off);
	l3->frag = (frag & IP_OFFSET) ? FRAG_LATER : (frag & IP_MF) ? FRAG_FIRST : FRAG_NONE;
	l3->family = XS_FAMILY_IPV4;
	l3->proto = ip->protocol;
	l3->saddr = (__u8 *)&ip->saddr;
	l3->daddr = (__u8 *)&ip->daddr;
	l3->l3_off = off;
	l3->l3_len = bpf_ntohs(ip->tot_len);
	l3->l4 = data + off + hlen;
	return 0;
}

struct ipv6_frag_hdr {
	__u8 nexthdr;
	__u8 reserved;
	__be16 frag_off;	/* offset << 3 | M flag */
	__be32 identification;
};

static __always_inline int parse_ipv6(void *data, void *data_end, __u32 off, struct l3 *l3)
{
	struct ipv6hdr *ip6 = data + off;
	void *cur;
	__u8 next;
	int i;

	if ((void *)(ip6 + 1) > data_end)
		return -1;
	if (ip6->version != 6)
		return -1;
	l3->family = XS_FAMILY_IPV6;
	l3->saddr = ip6->saddr.in6_u.u6_addr8;
	l3->daddr = ip6->daddr.in6_u.u6_addr8;
	l3->l3_off = off;
	l3->l3_len = bpf_ntohs(ip6->payload_len) + sizeof(*ip6);
	l3->frag = FRAG_NONE;

	next = ip6->nexthdr;
	cur = ip6 + 1;
	for (i = 0; i < IPV6_EXT_MAX; i++) {
		if (next == IPPROTO_HOPOPTS || next == IPPROTO_ROUTING || next == IPPROTO_DSTOPTS) {
			/* next header, length in 8-octet units not counting the first */
			__u8 *h = cur;

			if ((void *)(h + 2) > data_end)
				return -1;
			next = h[0];
			cur += ((__u32)h[1] + 1) * 8;
		} else if (next == IPPROTO_FRAGMENT) {
			struct ipv6_frag_hdr *fh = cur;

			if ((void *)(fh + 1) > data_end)
				return -1;
			next = fh->nexthdr;
			if (bpf_ntohs(fh->frag_off) & ~7)
				l3->frag = FRAG_LATER;
			else if (bpf_ntohs(fh->frag_off) & 1)
				l3->frag = FRAG_FIRST;
			cur = fh + 1;
		} else {
			break;
		}
	}
	if (cur > data_end)
		return -1;
	l3->proto = next;
	l3->l4 = cur;
	return 0;
}

/* parse_l3 dispatches on the EtherType; -1 for anything not IP or truncated. */
static __always_inline int parse_l3(void *data, void *data_end, __be16 proto, __u32 off, struct l3 *l3)
{
	if (proto == bpf_htons(ETH_P_IP))
		return parse_ipv4(data, data_end, off, l3);
	if (proto == bpf_htons(ETH_P_IPV6))
		return parse_ipv6(data, data_end, off, l3);
	return -1;
}

/* copy_addr copies an address into a 16-byte key field, zero-padding IPv4. */
static __always_inline void copy_addr(__u8 dst[16], const __u8 *src, __u8 family)
{
	if (family == XS_FAMILY_IPV4) {
		__builtin_memcpy(dst, src, 4);
	} else {
		__builtin_memcpy(dst, src, 16);
	}
}

#endif /* XDPSEC_PARSE_H */
