/* SPDX-License-Identifier: MIT */
/*
 * Packet builder for the front-door tests: Ethernet with 0..3 VLAN tags,
 * IPv4 (with options, fragment bits) or IPv6 (with extension headers, a
 * fragment header), then TCP, UDP, ICMP/ICMPv6 or nothing, and a payload.
 * Also builds signed (or forged) wirepath frames for datagram ports. Used by
 * tests/unit/test_policy_twin.c and tests/kern/test_policy_equiv.c, which
 * then mutate what it builds into malformed packets.
 */
#ifndef WP_POLICY_PKT_H
#define WP_POLICY_PKT_H

#include <arpa/inet.h>
#include <stdint.h>
#include <string.h>

#include "wirepath/policy.h"

struct pb {
	int v6;             /* 0: IPv4, 1: IPv6 */
	int nvlan;          /* VLAN tags, 0..3 */
	uint16_t ethertype; /* non-zero: this ethertype and raw payload (ARP, LLDP) */
	uint8_t proto;      /* 6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6, other */
	uint8_t src[16];
	uint32_t dst4; /* IPv4 destination, host order (0: 10.99.0.1) */
	uint16_t sport, dport;
	int ip_opts;  /* IPv4 option bytes, multiple of 4, <= 40 */
	int frag;     /* IPv4: MF set; IPv6: a fragment header */
	int frag_off; /* IPv4: fragment offset (units of 8) */
	int v6_ext;   /* IPv6 hop-by-hop/destination options headers */
	uint8_t icmp_type;
	const uint8_t *payload;
	size_t plen;
	/* IPv6: each hop-by-hop/destination options header is
	 * (v6_ext_len + 1) * 8 bytes (0..255: up to 2048), Pad1-filled. */
	uint8_t v6_ext_len;
};

static inline void pb_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline void pb_src4(struct pb *p, const char *a)
{
	memset(p->src, 0, 16);
	inet_pton(AF_INET, a, p->src);
}

static inline void pb_src6(struct pb *p, const char *a)
{
	inet_pton(AF_INET6, a, p->src);
	p->v6 = 1;
}

/* Build into out (cap bytes, >= 2048 and >= the frame). Returns the length. */
static inline size_t pb_build(const struct pb *p, uint8_t *out, size_t cap)
{
	uint8_t *q = out, *ip, *l4;
	size_t l4len, hl = 0;
	uint8_t nh;

	memset(out, 0, cap);
	memcpy(q, "\x02\x00\x00\x00\x00\x01\x02\x00\x00\x00\x00\x02", 12);
	q += 12;
	for (int i = 0; i < p->nvlan; i++) {
		pb_put16(q, i == 0 && p->nvlan > 1 ? 0x88a8 : 0x8100);
		pb_put16(q + 2, (uint16_t)(100 + i));
		q += 4;
	}
	if (p->ethertype) {
		pb_put16(q, p->ethertype);
		q += 2;
		memcpy(q, p->payload, p->plen);
		return (size_t)(q - out) + p->plen;
	}
	pb_put16(q, p->v6 ? 0x86dd : 0x0800);
	q += 2;
	ip = q;
	/* L4 header length */
	switch (p->proto) {
	case 6:
		l4len = 20;
		break;
	case 17:
		l4len = 8;
		break;
	case 1:
	case 58:
		l4len = 8;
		break;
	default:
		l4len = 0;
	}
	if (!p->v6) {
		size_t ihl = 20 + (size_t)p->ip_opts;

		ip[0] = (uint8_t)(0x40 | (ihl / 4));
		pb_put16(ip + 2, (uint16_t)(ihl + l4len + p->plen));
		pb_put16(ip + 6, (uint16_t)((p->frag ? 0x2000 : 0) | (p->frag_off & 0x1fff)));
		ip[8] = 64;
		ip[9] = p->proto;
		memcpy(ip + 12, p->src, 4);
		if (p->dst4) {
			uint32_t d = htonl(p->dst4);

			memcpy(ip + 16, &d, 4);
		} else {
			inet_pton(AF_INET, "10.99.0.1", ip + 16);
		}
		for (int i = 0; i < p->ip_opts; i++)
			ip[20 + i] = 1; /* NOP options */
		l4 = ip + ihl;
	} else {
		uint8_t *x;

		ip[0] = 0x60;
		ip[7] = 64;
		memcpy(ip + 8, p->src, 16);
		inet_pton(AF_INET6, "fd99::1", ip + 24);
		x = ip + 40;
		nh = p->proto;
		/* extension headers, outermost first; each 8 bytes */
		{
			int n = p->v6_ext + (p->frag ? 1 : 0);
			uint8_t types[16];

			for (int i = 0; i < p->v6_ext && i < 15; i++)
				types[i] = i == 0 ? 0 : 60;
			if (p->frag)
				types[p->v6_ext < 15 ? p->v6_ext : 15] = 44;
			ip[6] = n ? types[0] : nh;
			for (int i = 0; i < n && i < 16; i++) {
				size_t xl = types[i] == 44 ? 8 : ((size_t)p->v6_ext_len + 1) * 8;

				x[0] = i + 1 < n ? types[i + 1] : nh;
				x[1] = (uint8_t)(xl / 8 - 1);
				if (types[i] != 44) {
					x[2] = 1; /* PadN; zeros after it are Pad1 */
					x[3] = 4;
				}
				x += xl;
				hl += xl;
			}
		}
		pb_put16(ip + 4, (uint16_t)(hl + l4len + p->plen));
		l4 = x;
	}
	if (p->proto == 6) {
		pb_put16(l4, p->sport);
		pb_put16(l4 + 2, p->dport);
		l4[12] = 5 << 4;
		l4[13] = 0x02; /* SYN */
	} else if (p->proto == 17) {
		pb_put16(l4, p->sport);
		pb_put16(l4 + 2, p->dport);
		pb_put16(l4 + 4, (uint16_t)(8 + p->plen));
	} else if (p->proto == 1 || p->proto == 58) {
		l4[0] = p->icmp_type;
	}
	if (p->plen)
		memcpy(l4 + l4len, p->payload, p->plen);
	return (size_t)(l4 + l4len + p->plen - out);
}

/*
 * A wirepath frame header (+ payload) for a datagram: tenant, method, len
 * bytes of payload after it; signed with key unless forge (then the tag is
 * off by one).
 */
static inline size_t pb_frame(uint8_t *out, uint32_t tenant, uint32_t method, uint32_t paylen,
			      const uint8_t key[16], int forge)
{
	memset(out, 0, 40 + paylen);
	memcpy(out, "WPF1", 4);
	out[4] = 2; /* frame version */
	out[5] = 1; /* MSG */
	for (int i = 0; i < 4; i++) {
		out[8 + i] = (uint8_t)(tenant >> (8 * i));
		out[12 + i] = (uint8_t)(method >> (8 * i));
		out[24 + i] = (uint8_t)(paylen >> (8 * i));
	}
	for (uint32_t i = 0; i < paylen; i++)
		out[40 + i] = (uint8_t)(i * 7);
	wp_frame_sign(key, out);
	if (forge)
		out[32] ^= 1;
	return 40 + paylen;
}

#endif
