// SPDX-License-Identifier: MIT
/*
 * The xsk path's packets, parsed without a context (wire.h).
 */
#include <errno.h>
#include <string.h>

#include "transport/xsk/wire.h"

int xsk_parse(const uint8_t *p, uint32_t len, struct xsk_view *v)
{
	uint32_t ihl, tot, ulen, flen;
	const uint8_t *ip, *udp, *hdr;

	if (len < XSK_HDRS)
		return -XSK_BAD_SHORT;
	if (p[12] != 0x08 || p[13] != 0x00) /* ETH_P_IP (no VLAN tag) */
		return -XSK_BAD_ETH;
	ip = p + 14;
	ihl = (uint32_t)(ip[0] & 0xf) * 4;
	tot = (uint32_t)(ip[2] << 8 | ip[3]);
	/* IPv4, UDP, not a fragment (MF or an offset), the total length
	 * within the frame (Ethernet may pad past it, never cut it short) */
	if ((ip[0] >> 4) != 4 || ihl < 20 || ip[9] != 17 || ((ip[6] << 8 | ip[7]) & 0x3fff) ||
	    tot < ihl + 8 || 14 + tot > len)
		return -XSK_BAD_IP;
	udp = ip + ihl;
	ulen = (uint32_t)(udp[4] << 8 | udp[5]);
	if (ulen < 8 || ihl + ulen > tot)
		return -XSK_BAD_UDP;
	hdr = udp + 8;
	flen = ulen - 8;
	if (flen < WP_FRAME_HDR + XSK_PREFIX || get32(hdr) != WP_FRAME_MAGIC ||
	    hdr[4] != WP_FRAME_VERSION)
		return -XSK_BAD_FRAME;
	if (get32(hdr + 24) != flen - WP_FRAME_HDR)
		return -XSK_BAD_LEN;
	v->src_mac = p + 6;
	memcpy(&v->src_ip, ip + 12, 4);
	v->src_port = (uint16_t)(udp[0] << 8 | udp[1]);
	v->hdr = hdr;
	v->flen = flen;
	v->ctl = hdr[5] == XSK_T_CTL;
	v->kind = get32(hdr + 12);
	v->tenant = get32(hdr + 8);
	return 0;
}

int xsk_body(const uint8_t *pre, uint32_t n, struct xsk_body *b)
{
	if (n < XSK_PREFIX)
		return -EPROTO;
	b->sid = get64(pre);
	b->seq = get32(pre + 8);
	b->ack = get32(pre + 12);
	b->mlen = get32(pre + 16);
	b->off = get32(pre + 20);
	b->frag = pre + XSK_PREFIX;
	b->fn = n - XSK_PREFIX;
	return 0;
}

int xsk_data_kind(const struct xsk_body *b, uint32_t max_frame, int *why)
{
	if (b->mlen > max_frame) {
		*why = WP_BAD_TOO_BIG;
		return -EPROTO;
	}
	if (b->off == 0 && b->fn == b->mlen)
		return XSK_DATA_WHOLE;
	if (b->off == 0 && b->mlen < b->fn)
		return XSK_DATA_BUNDLE;
	/* off + fn <= mlen, written so it cannot wrap */
	if (b->off > b->mlen || b->fn > b->mlen - b->off) {
		*why = WP_BAD_TRUNCATED;
		return -EPROTO;
	}
	return XSK_DATA_FRAG;
}

int xsk_bundle_next(const uint8_t **p, uint32_t *n, uint32_t tenant, uint32_t max_frame,
		    struct wp_frame_hdr *h, const uint8_t **payload, int *why)
{
	int ret;

	if (*n == 0)
		return 0;
	*why = WP_BAD_TRUNCATED;
	if (*n < WP_FRAME_HDR)
		return -EPROTO;
	ret = wp_frame_decode(*p, WP_FRAME_HDR, max_frame, h, why);
	if (ret != (int)WP_FRAME_HDR) {
		if (ret >= 0)
			*why = WP_BAD_TRUNCATED;
		return -EPROTO;
	}
	if (h->tenant != tenant) {
		*why = WP_BAD_AUTH;
		return -EPROTO;
	}
	if (h->len > *n - WP_FRAME_HDR) {
		*why = WP_BAD_TRUNCATED;
		return -EPROTO;
	}
	*payload = *p + WP_FRAME_HDR;
	*p += WP_FRAME_HDR + h->len;
	*n -= WP_FRAME_HDR + h->len;
	return 1;
}
