// SPDX-License-Identifier: MIT
/*
 * Frame header codec. Explicit byte-wise little-endian (de)serialisation:
 * the wire format does not depend on the host's endianness or on struct
 * padding.
 */
#include <errno.h>
#include <string.h>

#include "wirepath/wirepath.h"
#include "frame.h"

static inline void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static inline void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)v);
	put16(p + 2, (uint16_t)(v >> 16));
}

static inline void put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)v);
	put32(p + 4, (uint32_t)(v >> 32));
}

static inline uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

static inline uint32_t get32(const uint8_t *p)
{
	return (uint32_t)get16(p) | ((uint32_t)get16(p + 2) << 16);
}

static inline uint64_t get64(const uint8_t *p)
{
	return (uint64_t)get32(p) | ((uint64_t)get32(p + 4) << 32);
}

void wp_frame_encode(const struct wp_frame_hdr *h, void *out)
{
	uint8_t *p = out;

	put32(p + 0, WP_FRAME_MAGIC);
	p[4] = WP_FRAME_VERSION;
	p[5] = h->type;
	put16(p + 6, h->flags);
	put32(p + 8, h->tenant);
	put32(p + 12, h->method);
	put64(p + 16, h->req_id);
	put32(p + 24, h->len);
	put32(p + 28, h->aux);
	put64(p + 32, h->auth);
}

int wp_frame_decode(const void *buf, size_t avail, uint32_t max_payload, struct wp_frame_hdr *h,
		    int *reason)
{
	const uint8_t *p = buf;
	static const uint8_t magic[4] = { 'W', 'P', 'F', '1' };
	size_t n = avail < 4 ? avail : 4;

	/* Reject garbage early: compare whatever prefix of the magic we have. */
	if (memcmp(p, magic, n) != 0) {
		*reason = WP_BAD_MAGIC;
		return -EPROTO;
	}
	if (avail > 4 && p[4] != WP_FRAME_VERSION) {
		h->version = p[4]; /* so the caller can say which version it met */
		*reason = WP_BAD_VERSION;
		return -EPROTO;
	}
	if (avail < WP_FRAME_HDR)
		return 0;

	h->magic = get32(p);
	h->version = p[4];
	h->type = p[5];
	h->flags = get16(p + 6);
	h->tenant = get32(p + 8);
	h->method = get32(p + 12);
	h->req_id = get64(p + 16);
	h->len = get32(p + 24);
	h->aux = get32(p + 28);
	h->auth = get64(p + 32);

	if (h->type < WP_FT_MSG || h->type > WP_FT__MAX) {
		*reason = WP_BAD_TYPE;
		return -EPROTO;
	}
	if (h->flags & ~WP_FF__KNOWN) {
		*reason = WP_BAD_FLAGS;
		return -EPROTO;
	}
	if (h->len > max_payload) {
		*reason = WP_BAD_TOO_BIG;
		return -EPROTO;
	}
	return WP_FRAME_HDR;
}
