// SPDX-License-Identifier: MIT
/*
 * Fuzz target for the frame decoder and the receive parser: the bytes a
 * hostile peer controls. Built two ways: with clang -fsanitize=fuzzer (and
 * ASan/UBSan) by tests/fuzz/run.sh for coverage-guided runs, and with plain
 * gcc into test_fuzz_replay (tests/fuzz/replay.c), which replays the corpus and
 * mutations of it on every test run. So: no libFuzzer-only API here.
 *
 * Per input:
 *  (a) wp_frame_decode on the input and on every prefix of its first header:
 *      results are monotonic (a prefix is "need more" or the same rejection),
 *      a rejection carries a reason in range, and a decoded header re-encodes
 *      to exactly the bytes it came from.
 *  (b) wp_rx_feed, max payload 1 MiB, three ways: whole, in chunks whose
 *      sizes come from bytes 8..23 of the input (the tenant, method and
 *      request id of the first frame, which the fuzzer can change without
 *      breaking the frame), and (small inputs) one byte at a time. Each
 *      chunk is its own exact-size heap block so ASan sees overreads. Every
 *      delivered frame: len <= max, payload non-NULL when len > 0, every
 *      payload byte read, in place or in the parser's assembly buffer. The
 *      three feeds must agree on the frames, their order and the outcome.
 *  (c) each delivered header re-encodes to the header bytes it was parsed
 *      from and decodes back identically.
 * A broken invariant aborts (libFuzzer keeps the input as a crash).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wirepath/wirepath.h"
#include "core/frame.h"
#include "core/rx.h"

#define FUZZ_MAX_PAYLOAD (1u << 20)
#define FUZZ_BYTEWISE_MAX 4096 /* byte-at-a-time feed only for inputs this small */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                                       \
	do {                                                                                   \
		if (!(cond)) {                                                                 \
			fprintf(stderr, "fuzz_frame: %s:%d: invariant failed: %s\n", __FILE__, \
				__LINE__, #cond);                                              \
			abort();                                                               \
		}                                                                              \
	} while (0)

static uint64_t fnv(const void *p, size_t n, uint64_t h)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

static void hdr_same(const struct wp_frame_hdr *a, const struct wp_frame_hdr *b)
{
	FUZZ_CHECK(a->magic == b->magic && a->version == b->version && a->type == b->type &&
		   a->flags == b->flags && a->tenant == b->tenant && a->method == b->method &&
		   a->req_id == b->req_id && a->len == b->len && a->aux == b->aux &&
		   a->auth == b->auth);
}

/* A valid decoded header: fields in range, and it re-encodes to raw (when
 * known) and decodes back to itself. */
static void hdr_check(const struct wp_frame_hdr *h, const uint8_t *raw, uint32_t max)
{
	uint8_t enc[WP_FRAME_HDR];
	struct wp_frame_hdr back;
	int reason = -1;

	FUZZ_CHECK(h->magic == WP_FRAME_MAGIC);
	FUZZ_CHECK(h->version == WP_FRAME_VERSION);
	FUZZ_CHECK(h->type >= WP_FT_MSG && h->type <= WP_FT__MAX);
	FUZZ_CHECK((h->flags & ~WP_FF__KNOWN) == 0);
	FUZZ_CHECK(h->len <= max);
	wp_frame_encode(h, enc);
	if (raw)
		FUZZ_CHECK(memcmp(enc, raw, WP_FRAME_HDR) == 0);
	FUZZ_CHECK(wp_frame_decode(enc, sizeof(enc), max, &back, &reason) == WP_FRAME_HDR);
	hdr_same(h, &back);
}

/* (a) The codec alone. */
static void fuzz_decode(const uint8_t *data, size_t size)
{
	struct wp_frame_hdr h, hp;
	int reason = -1, preason;
	int ret = wp_frame_decode(data, size, FUZZ_MAX_PAYLOAD, &h, &reason);
	size_t upto = size < WP_FRAME_HDR ? size : WP_FRAME_HDR;

	FUZZ_CHECK(ret == WP_FRAME_HDR || ret == 0 || ret == -EPROTO);
	if (ret == WP_FRAME_HDR) {
		FUZZ_CHECK(size >= WP_FRAME_HDR);
		hdr_check(&h, data, FUZZ_MAX_PAYLOAD);
	} else if (ret == 0) {
		FUZZ_CHECK(size < WP_FRAME_HDR);
	} else {
		FUZZ_CHECK(reason >= 0 && reason < WP_BAD__COUNT);
		FUZZ_CHECK(reason != WP_BAD_TRUNCATED && reason != WP_BAD_UNEXPECTED);
		if (reason == WP_BAD_TOO_BIG) {
			/* Only the limit made it bad: without one it decodes. */
			FUZZ_CHECK(wp_frame_decode(data, size, UINT32_MAX, &hp, &preason) ==
				   WP_FRAME_HDR);
			FUZZ_CHECK(hp.len > FUZZ_MAX_PAYLOAD);
		}
	}

	/* Prefixes: "need more" or the same early rejection (magic, version). */
	for (size_t n = 0; n < upto; n++) {
		int pret;

		preason = -1;
		pret = wp_frame_decode(data, n, FUZZ_MAX_PAYLOAD, &hp, &preason);
		if (pret == 0)
			continue;
		FUZZ_CHECK(pret == -EPROTO);
		FUZZ_CHECK(preason == WP_BAD_MAGIC || preason == WP_BAD_VERSION);
		FUZZ_CHECK(ret == -EPROTO && preason == reason);
	}
}

/* (b), (c) The parser. */
struct fuzz_sink {
	const struct wp_rx *rx;
	const uint8_t *chunk; /* the chunk being fed */
	size_t chunk_len;
	uint64_t frames;
	uint64_t digest;   /* order-sensitive hash of every delivered frame */
	uint64_t consumed; /* wire bytes of the delivered frames */
	uint64_t in_place;
};

static int fuzz_deliver(void *arg, const struct wp_frame_hdr *h, const uint8_t *payload)
{
	struct fuzz_sink *k = arg;
	uintptr_t pp = (uintptr_t)payload, c0 = (uintptr_t)k->chunk;
	const uint8_t *raw;

	FUZZ_CHECK(h->len <= k->rx->max_payload);
	FUZZ_CHECK(h->len == 0 || payload != NULL);
	if (payload && pp >= c0 + WP_FRAME_HDR && pp + h->len <= c0 + k->chunk_len) {
		raw = payload - WP_FRAME_HDR; /* in place: header right before */
		k->in_place++;
	} else {
		/* Assembled: the payload is the parser's buffer and the header
		 * the bytes it stashed. */
		FUZZ_CHECK(h->len == 0 || payload == k->rx->asm_buf);
		FUZZ_CHECK(k->rx->asm_cap >= h->len);
		FUZZ_CHECK(k->rx->asm_cap <= k->rx->max_payload);
		raw = k->rx->hdrbuf;
	}
	hdr_check(h, raw, k->rx->max_payload);

	/* Read every payload byte (ASan sees an overread) into the digest. */
	k->digest = fnv(h, sizeof(*h), k->digest);
	k->digest = fnv(payload, h->len, k->digest);
	k->frames++;
	k->consumed += WP_FRAME_HDR + (uint64_t)h->len;
	return 0;
}

struct fuzz_result {
	int ret;
	int reason;
	int partial;
	uint64_t frames, digest, consumed, copied, in_place;
};

/* How a chunked feed cuts the input: chunk i has size sizes(ctl[i % nctl]). */
static size_t chunk_size(const uint8_t *ctl, size_t nctl, size_t i)
{
	uint8_t b;

	if (nctl == 0)
		return 1;
	b = ctl[i % nctl];
	/* Half small cuts (1..128, inside headers), half large (up to ~16 KiB). */
	return b < 128 ? (size_t)b + 1 : (size_t)(b - 127) * 127;
}

enum feed_mode { FEED_WHOLE, FEED_CHUNKS, FEED_BYTES };

static void fuzz_feed(const uint8_t *data, size_t size, enum feed_mode mode, struct fuzz_result *r)
{
	struct wp_rx rx;
	struct fuzz_sink k = { .rx = &rx, .digest = 0xcbf29ce484222325ull };
	const uint8_t *ctl = size > 8 ? data + 8 : data;
	size_t nctl = size > 24 ? 16 : size > 8 ? size - 8 : size;
	uint8_t *one = NULL;
	size_t pos = 0, i = 0;
	int ret = 0, reason = -1;

	wp_rx_init(&rx, FUZZ_MAX_PAYLOAD);
	if (mode == FEED_BYTES) {
		one = malloc(1);
		FUZZ_CHECK(one != NULL);
	}
	while (pos < size && ret == 0) {
		size_t n;
		uint8_t *c;

		switch (mode) {
		case FEED_WHOLE:
			/* The input itself: libFuzzer sizes its buffer exactly. */
			k.chunk = data;
			k.chunk_len = size;
			ret = wp_rx_feed(&rx, data, size, fuzz_deliver, &k, &reason);
			pos = size;
			continue;
		case FEED_CHUNKS:
			n = chunk_size(ctl, nctl, i++);
			if (n > size - pos)
				n = size - pos;
			c = malloc(n);
			FUZZ_CHECK(c != NULL);
			memcpy(c, data + pos, n);
			break;
		default:
			n = 1;
			c = one;
			*c = data[pos];
			break;
		}
		k.chunk = c;
		k.chunk_len = n;
		ret = wp_rx_feed(&rx, c, n, fuzz_deliver, &k, &reason);
		if (c != one)
			free(c);
		pos += n;
	}
	free(one);

	FUZZ_CHECK(ret == 0 || ret == -EPROTO); /* the sink never stops; 1 MiB allocs succeed */
	if (ret == -EPROTO) {
		FUZZ_CHECK(reason >= 0 && reason < WP_BAD__COUNT);
		FUZZ_CHECK(reason != WP_BAD_TRUNCATED && reason != WP_BAD_UNEXPECTED);
	} else {
		/* Everything not delivered is a partial frame the parser holds. */
		FUZZ_CHECK(wp_rx_partial(&rx) == (k.consumed < size));
	}
	FUZZ_CHECK(k.consumed <= size);
	FUZZ_CHECK(rx.copied <= size);
	FUZZ_CHECK(rx.asm_cap <= rx.max_payload);
	r->ret = ret;
	r->reason = reason;
	r->partial = wp_rx_partial(&rx);
	r->frames = k.frames;
	r->digest = k.digest;
	r->consumed = k.consumed;
	r->copied = rx.copied;
	r->in_place = k.in_place;
	wp_rx_free(&rx);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_result whole, chunks, bytes;

	if (size == 0)
		return 0; /* data may be NULL; nothing to parse */
	fuzz_decode(data, size);

	fuzz_feed(data, size, FEED_WHOLE, &whole);
	/* Fed whole, every frame is delivered in place; the only bytes copied
	 * are a trailing partial frame (none after an error). */
	FUZZ_CHECK(whole.in_place == whole.frames);
	FUZZ_CHECK(whole.copied == (whole.ret ? 0 : size - whole.consumed));

	fuzz_feed(data, size, FEED_CHUNKS, &chunks);
	FUZZ_CHECK(chunks.ret == whole.ret && chunks.reason == whole.reason);
	FUZZ_CHECK(chunks.frames == whole.frames && chunks.digest == whole.digest);
	FUZZ_CHECK(chunks.consumed == whole.consumed);
	if (whole.ret == 0)
		FUZZ_CHECK(chunks.partial == whole.partial);

	if (size <= FUZZ_BYTEWISE_MAX) {
		fuzz_feed(data, size, FEED_BYTES, &bytes);
		FUZZ_CHECK(bytes.ret == whole.ret && bytes.reason == whole.reason);
		FUZZ_CHECK(bytes.frames == whole.frames && bytes.digest == whole.digest);
		/* One byte at a time nothing fits in a chunk: every frame is
		 * assembled and every byte counted as copied. */
		FUZZ_CHECK(bytes.in_place == 0);
		if (whole.ret == 0)
			FUZZ_CHECK(bytes.copied == size);
	}
	return 0;
}
