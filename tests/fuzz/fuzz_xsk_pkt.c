// SPDX-License-Identifier: MIT
/*
 * Fuzz target for the xsk path's packet parser (src/transport/xsk/wire.c):
 * what anyone on the link controls is a whole Ethernet frame, and the
 * parser is what the receive side (rx.c) trusts for every length. Built
 * two ways (tests/fuzz/fuzz.h).
 *
 * wp-fuzz-args: -max_len=2048
 *
 * Per input (an Ethernet frame, as the UMEM holds it): xsk_parse accepts
 * it (then the header and prefix lie inside the input, the frame header's
 * len is the rest of the UDP payload, which lies inside the IPv4 datagram,
 * which lies inside the frame) or refuses it with a reason in range; an
 * accepted one's prefix is read (xsk_body) and classified as data
 * (xsk_data_kind, for two max_frame values): a whole message is exactly the
 * fragment, a fragment lies within its message (off + fn <= mlen, which no
 * uint32 wrap may fake), a bundle's records are walked (xsk_bundle_next)
 * and each lies inside the packet, has the first header's tenant and at
 * most max_frame bytes, and the walk ends exactly at the packet's end or
 * with a refusal. A broken invariant aborts.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "fuzz.h"
#include "transport/xsk/wire.h"

static void inside(const uint8_t *base, size_t size, const uint8_t *p, uint64_t n)
{
	FUZZ_CHECK(p >= base && (uint64_t)(p - base) <= size && n <= size - (uint64_t)(p - base));
}

static void data(const uint8_t *in, size_t size, const struct xsk_view *v, const struct xsk_body *b,
		 uint32_t max_frame)
{
	int why = -1, k = xsk_data_kind(b, max_frame, &why);
	const uint8_t *p, *payload;
	struct wp_frame_hdr h;
	uint32_t n, records = 0;
	int ret;

	if (k < 0) {
		FUZZ_CHECK(k == -EPROTO && why >= 0 && why < WP_BAD__COUNT);
		FUZZ_CHECK(b->mlen > max_frame || b->off > b->mlen ||
			   (uint64_t)b->off + b->fn > b->mlen);
		return;
	}
	FUZZ_CHECK(b->mlen <= max_frame);
	if (k == XSK_DATA_WHOLE) {
		FUZZ_CHECK(b->off == 0 && b->fn == b->mlen);
		return;
	}
	if (k == XSK_DATA_FRAG) {
		FUZZ_CHECK((uint64_t)b->off + b->fn <= b->mlen);
		return;
	}
	FUZZ_CHECK(k == XSK_DATA_BUNDLE && b->off == 0 && b->mlen < b->fn);
	p = b->frag + b->mlen;
	n = b->fn - b->mlen;
	inside(in, size, p, n);
	while ((ret = xsk_bundle_next(&p, &n, v->tenant, max_frame, &h, &payload, &why)) > 0) {
		FUZZ_CHECK(h.tenant == v->tenant && h.len <= max_frame);
		inside(in, size, payload, h.len);
		FUZZ_CHECK(payload + h.len == p);
		inside(in, size, p, n);
		records++;
	}
	FUZZ_CHECK(ret == 0 ? n == 0 : ret == -EPROTO && why >= 0 && why < WP_BAD__COUNT);
	FUZZ_CHECK(records <= b->fn / WP_FRAME_HDR);
}

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t size)
{
	struct xsk_view v;
	struct xsk_body b;
	uint32_t len = size > 65535 ? 65535 : (uint32_t)size;
	int ret = xsk_parse(in, len, &v);

	if (ret < 0) {
		FUZZ_CHECK(ret >= -XSK_BAD_LEN && ret <= -XSK_BAD_SHORT);
		return 0;
	}
	inside(in, size, v.hdr, v.flen);
	inside(in, size, v.src_mac, 6);
	FUZZ_CHECK(v.flen >= WP_FRAME_HDR + XSK_PREFIX);
	FUZZ_CHECK(v.ctl == (v.hdr[5] == XSK_T_CTL));
	/* the frame header's len is exactly the rest of the datagram */
	FUZZ_CHECK((uint32_t)(v.hdr[24] | v.hdr[25] << 8 | v.hdr[26] << 16 |
			      (uint32_t)v.hdr[27] << 24) == v.flen - WP_FRAME_HDR);
	FUZZ_CHECK(xsk_body(v.hdr + WP_FRAME_HDR, v.flen - WP_FRAME_HDR, &b) == 0);
	inside(in, size, b.frag, b.fn);
	FUZZ_CHECK(b.frag + b.fn == v.hdr + v.flen);
	FUZZ_CHECK(xsk_body(v.hdr, XSK_PREFIX - 1, &b) == -EPROTO);
	FUZZ_CHECK(xsk_body(v.hdr + WP_FRAME_HDR, v.flen - WP_FRAME_HDR, &b) == 0);
	if (!v.ctl) {
		data(in, size, &v, &b, 16u << 20); /* the default max_frame */
		data(in, size, &v, &b, 512);       /* a small one: more refusals */
	}
	return 0;
}
