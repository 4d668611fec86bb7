// SPDX-License-Identifier: MIT
/*
 * Receive-side frame parser (see rx.h): in place when a frame lies inside
 * one chunk, assembled (and counted) when it is split.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "wirepath/wirepath.h"
#include "rx.h"

void wp_rx_init(struct wp_rx *rx, uint32_t max_payload)
{
	memset(rx, 0, sizeof(*rx));
	rx->max_payload = max_payload;
}

/* Give the assembly buffer and its claim back to the budget. */
static void rx_release(struct wp_rx *rx)
{
	if (rx->budget && (rx->claim || rx->asm_cap)) {
		rx->budget->claimed -= rx->claim;
		rx->budget->used -= rx->asm_cap;
		rx->budget->freed++;
	}
	rx->claim = 0;
	free(rx->asm_buf);
	rx->asm_buf = NULL;
	rx->asm_cap = 0;
}

/* A frame was assembled: a buffer over one page goes back at once (idle
 * connections must not sit on budget: 4096 of them keeping 64 KiB each
 * would hold the whole default budget), a page is kept for the next and
 * stays claimed at its size. */
static void rx_done(struct wp_rx *rx)
{
	if (rx->asm_cap > 4096) {
		rx_release(rx);
	} else if (rx->budget && rx->claim > rx->asm_cap) {
		rx->budget->claimed -= rx->claim - rx->asm_cap;
		rx->budget->freed++;
		rx->claim = rx->asm_cap;
	}
}

void wp_rx_unbudget(struct wp_rx *rx)
{
	if (rx->budget && (rx->claim || rx->asm_cap)) {
		rx->budget->claimed -= rx->claim;
		rx->budget->used -= rx->asm_cap;
		rx->budget->freed++;
	}
	rx->claim = 0;
	rx->budget = NULL;
}

void wp_rx_free(struct wp_rx *rx)
{
	rx_release(rx);
}

int wp_rx_partial(const struct wp_rx *rx)
{
	return rx->hdr_have > 0;
}

/*
 * Room for `want` more bytes of the payload in progress (its length already
 * validated). The frame's whole length is claimed from the budget first;
 * capacity then doubles up to it as bytes arrive. Returns 0, -ENOBUFS (no
 * room in the budget for this frame now: nothing taken) or -ENOMEM.
 */
static int rx_reserve(struct wp_rx *rx, uint32_t want)
{
	uint32_t need = rx->asm_have + want, cap;
	/* Small frames share a page, reused by the next one. */
	uint32_t floor = rx->max_payload < 4096 ? rx->max_payload : 4096;
	uint8_t *p;

	if (need <= rx->asm_cap)
		return 0;
	if (rx->budget && rx->claim < rx->cur.len) {
		struct wp_rx_budget *b = rx->budget;
		uint32_t claim = rx->cur.len > floor ? rx->cur.len : floor;
		uint64_t lim = claim > WP_RX_SMALL ? b->big_limit : b->limit;

		if (b->claimed - rx->claim + claim > lim)
			return -ENOBUFS;
		b->claimed += claim - rx->claim;
		rx->claim = claim;
	}
	cap = rx->asm_cap ? rx->asm_cap : 4096;
	while (cap < need)
		cap = cap > UINT32_MAX / 2 ? need : cap * 2;
	if (cap > rx->cur.len) {
		/* A frame never needs more than its length (>= need). */
		cap = rx->cur.len > floor ? rx->cur.len : floor;
		if (cap < need)
			cap = need;
	}
	p = realloc(rx->asm_buf, cap);
	if (!p)
		return -ENOMEM;
	if (rx->budget)
		rx->budget->used += cap - rx->asm_cap;
	rx->asm_buf = p;
	rx->asm_cap = cap;
	return 0;
}

int wp_rx_feed(struct wp_rx *rx, const uint8_t *p, size_t len, wp_rx_deliver_fn fn, void *arg,
	       int *reason)
{
	const size_t len0 = len;
	int ret;

	while (len > 0) {
		/* 1. A header in progress (split across chunks): complete it. */
		if (rx->hdr_have > 0 && rx->hdr_have < WP_FRAME_HDR) {
			size_t take = WP_FRAME_HDR - rx->hdr_have;

			if (take > len)
				take = len;
			memcpy(rx->hdrbuf + rx->hdr_have, p, take);
			rx->hdr_have += take;
			rx->copied += take;
			p += take;
			len -= take;
			ret = wp_frame_decode(rx->hdrbuf, rx->hdr_have, rx->max_payload, &rx->cur,
					      reason);
			if (ret < 0) {
				rx->peer_version = rx->cur.version;
				return ret;
			}
			if (ret == 0)
				return 0; /* still short; len is 0 here */
			rx->asm_have = 0;
			/* Memory follows the bytes that really arrive, not the
			 * length a peer declares: 40 bytes must not pin 16 MiB. */
		}

		/* 2a. A bulk-transfer payload in progress: hand each piece to the
		 * placement callback (it lands in its region with one copy), never
		 * assembling it. The 16-byte placement prefix is kept first. */
		if (rx->hdr_have == WP_FRAME_HDR && rx->place && rx->cur.type == WP_FT_XFER) {
			uint32_t need = rx->cur.len - rx->asm_have;
			size_t take = need < len ? need : len;

			if (rx->asm_have < WP_XFER_PREFIX) {
				size_t t = WP_XFER_PREFIX - rx->asm_have;

				if (t > take)
					t = take;
				memcpy(rx->xpre + rx->asm_have, p, t);
				rx->asm_have += (uint32_t)t;
				p += t;
				len -= t;
				take -= t;
			}
			if (take) {
				rx->place(arg, &rx->cur, rx->xpre, p, rx->asm_have - WP_XFER_PREFIX,
					  (uint32_t)take);
				rx->asm_have += (uint32_t)take;
				p += take;
				len -= take;
			}
			if (rx->asm_have < rx->cur.len)
				return 0;
			rx->hdr_have = 0;
			rx->inplace = 0;
			ret = fn(arg, &rx->cur, NULL); /* placed already: finish it */
			if (ret)
				return ret;
			continue;
		}

		/* 2. A payload in progress: append, deliver when whole. */
		if (rx->hdr_have == WP_FRAME_HDR) {
			uint32_t need = rx->cur.len - rx->asm_have;
			size_t take = need < len ? need : len;

			if (take) {
				ret = rx_reserve(rx, (uint32_t)take);
				if (ret == -ENOBUFS)
					rx->fed = len0 - len; /* the rest waits for room */
				if (ret < 0)
					return ret;
				memcpy(rx->asm_buf + rx->asm_have, p, take);
				rx->asm_have += take;
				rx->copied += take;
				p += take;
				len -= take;
			}
			if (rx->asm_have < rx->cur.len)
				return 0;
			rx->hdr_have = 0;
			rx->inplace = 0;
			ret = fn(arg, &rx->cur, rx->asm_buf);
			rx_done(rx);
			if (ret)
				return ret;
			continue;
		}

		/* 3. At a frame boundary: deliver whole frames in place. */
		{
			struct wp_frame_hdr h;

			ret = wp_frame_decode(p, len, rx->max_payload, &h, reason);
			if (ret < 0) {
				rx->peer_version = h.version;
				return ret;
			}
			if (ret > 0 && len - WP_FRAME_HDR >= h.len) {
				rx->inplace = 1;
				ret = fn(arg, &h, p + WP_FRAME_HDR);
				if (ret)
					return ret;
				p += WP_FRAME_HDR + h.len;
				len -= WP_FRAME_HDR + h.len;
				continue;
			}
			/* Split frame: stash the header (or its prefix) and go on. */
			if (ret > 0) {
				memcpy(rx->hdrbuf, p, WP_FRAME_HDR);
				rx->hdr_have = WP_FRAME_HDR;
				rx->copied += WP_FRAME_HDR; /* a split frame is counted whole */
				rx->cur = h;
				rx->asm_have = 0;
				/* assembly memory is reserved as payload arrives */
				p += WP_FRAME_HDR;
				len -= WP_FRAME_HDR;
			} else {
				memcpy(rx->hdrbuf, p, len);
				rx->hdr_have = (uint32_t)len;
				rx->copied += len;
				return 0;
			}
		}
	}
	return 0;
}
