/* SPDX-License-Identifier: MIT */
/*
 * Receive-side frame parser shared by every stream path. The transport feeds
 * it whatever chunk the kernel returned (a read() into the connection's
 * buffer on tcp, a provided buffer from a multishot recv on uring). A frame
 * that lies whole inside one chunk is delivered in place, with no copy; only a
 * frame split across chunks is assembled in the parser's own buffer (those
 * bytes are counted as copied). The parser never allocates more than
 * WP_FRAME_HDR + max_payload, and only after the header was validated.
 */
#ifndef WP_RX_H
#define WP_RX_H

#include <stddef.h>
#include <stdint.h>

#include "frame.h"

/* Placement of a bulk-transfer frame's payload piece: prefix is the frame's
 * 16-byte placement prefix, piece the n bytes at offset off after it. */
typedef void (*wp_rx_place_fn)(void *arg, const struct wp_frame_hdr *h, const uint8_t *prefix,
			       const uint8_t *piece, uint32_t off, uint32_t n);

/*
 * Receive memory shared by the parsers of one context (docs/limits.md). A
 * parser that must assemble a frame first claims the frame's whole length
 * from the budget (or waits: wp_rx_feed returns -ENOBUFS), then allocates as
 * the bytes arrive, within its claim: memory follows the bytes a peer really
 * sends, and every claim granted can complete, so honest peers never
 * deadlock on memory, however many share it. A claim above WP_RX_SMALL must
 * fit under big_limit (7/8 of the limit), so small split frames still find
 * room while large ones wait. `freed` counts releases (paused readers retry).
 */
struct wp_rx_budget {
	uint64_t limit, big_limit;
	uint64_t claimed; /* every parser's claim */
	uint64_t used;    /* every parser's allocated assembly buffer (<= claimed) */
	uint64_t freed;
};
#define WP_RX_SMALL (64u << 10) /* frames up to this may claim the whole budget */

struct wp_rx {
	uint32_t max_payload;
	struct wp_rx_budget *budget; /* NULL: unbounded (tests, fuzzing) */
	size_t fed;                  /* after -ENOBUFS: how many bytes of the chunk were taken */
	wp_rx_place_fn place;        /* NULL: XFER frames are assembled like any */
	uint8_t xpre[WP_XFER_PREFIX];
	uint8_t hdrbuf[WP_FRAME_HDR]; /* a header split across chunks */
	uint32_t hdr_have;
	struct wp_frame_hdr cur; /* valid when hdr_have == WP_FRAME_HDR */
	uint8_t *asm_buf;        /* payload assembly for split frames */
	uint32_t asm_cap;
	uint32_t asm_have;
	uint32_t claim;       /* on the budget: the frame's length while assembling */
	uint64_t copied;      /* bytes copied into asm_buf, for the meter */
	uint8_t peer_version; /* the version a WP_BAD_VERSION frame carried */
	uint8_t inplace;      /* the frame being delivered lies whole in the chunk */
};

/* Called for each whole frame; payload points at h->len bytes, valid only
 * during the call. An XFER frame streamed to rx->place arrives here at its end
 * with payload NULL. A non-zero return stops the feed and is returned by it. */
typedef int (*wp_rx_deliver_fn)(void *arg, const struct wp_frame_hdr *h, const uint8_t *payload);

void wp_rx_init(struct wp_rx *rx, uint32_t max_payload);
void wp_rx_free(struct wp_rx *rx);
/* Give the parser's claim and buffer back to the budget now, keeping the
 * buffer itself (a payload lent to a callback may still point into it)
 * until wp_rx_free. The parser is unbounded afterwards: call it on close. */
void wp_rx_unbudget(struct wp_rx *rx);
/*
 * Feed len bytes. Returns 0, the deliver callback's non-zero return, -EPROTO
 * with *reason set (enum wp_bad_reason) for a bad frame, -ENOMEM, or
 * -ENOBUFS when the budget has no room for the frame being assembled: then
 * rx->fed bytes were taken and the rest must be fed again, in order, later.
 */
int wp_rx_feed(struct wp_rx *rx, const uint8_t *p, size_t len, wp_rx_deliver_fn fn, void *arg,
	       int *reason);
/* 1 if the parser holds part of a frame (a close now truncates it). */
int wp_rx_partial(const struct wp_rx *rx);

#endif
