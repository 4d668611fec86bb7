// SPDX-License-Identifier: MIT
/*
 * Fuzz target for the frame decoder and the receive parser: the bytes a
 * hostile peer controls. Built two ways (tests/fuzz/fuzz.h): with libFuzzer
 * by tests/fuzz/run.sh, and into test_fuzz_frame, which replays
 * tests/fuzz/corpus/ and mutations of it on every test run.
 *
 * wp-fuzz-args: -max_len=8192
 *
 * Per input:
 *  (a) wp_frame_decode on the input and on every prefix of its first header:
 *      results are monotonic (a prefix is "need more" or the same rejection),
 *      a rejection carries a reason in range, and a decoded header re-encodes
 *      to exactly the bytes it came from.
 *  (b) wp_rx_feed, max payload 1 MiB (5000 bytes when bit 7 of byte 12 is
 *      set), in several ways: whole; in chunks whose sizes come from bytes
 *      8..23 of the input (the tenant, method and request id of the first
 *      frame, which the fuzzer can change without breaking the frame), so
 *      frames land both whole inside a chunk and
 *      split at any byte (in a header, at its end, in a payload); the same
 *      with a placement callback (rx.place, as xfer.c installs it), cut
 *      differently, so XFER payloads are streamed piece by piece instead of
 *      assembled; and (small inputs) one byte at a time, without and with
 *      placement. Each chunk is its own exact-size heap block so ASan sees
 *      overreads. Every delivered frame: len <= max, payload non-NULL when
 *      len > 0, every payload byte read, in place or in the parser's
 *      assembly buffer. Every placed piece: inside the chunk being fed, at
 *      the offset right after the previous piece, behind the frame's 16-byte
 *      prefix, and the frame's end is delivered with payload NULL once all of
 *      it was placed. All feeds must agree on the frames (header and payload
 *      bytes, placed or not), their order and the outcome.
 *      And when the deliver callback stops a feed at a frame, the feed
 *      returns what it returned after exactly that many frames, whole or cut.
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

#include "fuzz.h"

#define FUZZ_MAX_PAYLOAD (1u << 20)
#define FUZZ_SMALL_MAX 5000         /* a limit that assembly growth (4096, 8192) overshoots */
#define FUZZ_BYTEWISE_MAX 1024      /* byte-at-a-time feed only for inputs this small */
#define FUZZ_BYTEWISE_PLACE_MAX 256 /* and with placement, smaller still */

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
	uint64_t digest;   /* order-sensitive hash of every frame's header and payload */
	uint64_t consumed; /* wire bytes of the delivered frames */
	uint64_t in_place;
	uint64_t placed;     /* XFER frames that went through rx.place */
	int placing;         /* an XFER frame's pieces are being placed */
	uint32_t place_next; /* the offset the next piece must have */
	uint64_t pending;    /* digest with the pieces so far: counts once the frame ends */
	uint64_t stop_at;    /* deliver returns FUZZ_STOP at this frame (0: never) */
};

#define FUZZ_STOP 4242 /* what the sink returns to stop a feed */

static int fuzz_deliver(void *arg, const struct wp_frame_hdr *h, const uint8_t *payload)
{
	struct fuzz_sink *k = arg;
	uintptr_t pp = (uintptr_t)payload, c0 = (uintptr_t)k->chunk;
	const uint8_t *raw;

	FUZZ_CHECK(h->len <= k->rx->max_payload);
	if (!payload && h->len > 0) {
		/* The end of a placed XFER frame: every byte went to place
		 * (len > 16), or the whole payload is in the prefix. */
		FUZZ_CHECK(k->rx->place && h->type == WP_FT_XFER);
		FUZZ_CHECK(h == &k->rx->cur);
		if (h->len > WP_XFER_PREFIX) {
			FUZZ_CHECK(k->placing);
			FUZZ_CHECK(k->place_next == h->len - WP_XFER_PREFIX);
			k->digest = k->pending;
		} else {
			FUZZ_CHECK(!k->placing);
			k->digest = fnv(h, sizeof(*h), k->digest);
			k->digest = fnv(k->rx->xpre, h->len, k->digest);
		}
		hdr_check(h, k->rx->hdrbuf, k->rx->max_payload);
		k->placing = 0;
		k->placed++;
		k->frames++;
		k->consumed += WP_FRAME_HDR + (uint64_t)h->len;
		return k->frames == k->stop_at ? FUZZ_STOP : 0;
	}
	FUZZ_CHECK(!k->placing);
	if (payload && pp >= c0 + WP_FRAME_HDR && pp + h->len <= c0 + k->chunk_len) {
		raw = payload - WP_FRAME_HDR; /* in place: header right before */
		k->in_place++;
	} else {
		/* Assembled: the payload is the parser's buffer and the header
		 * the bytes it stashed. A placed XFER frame never is. */
		FUZZ_CHECK(!k->rx->place || h->type != WP_FT_XFER || h->len == 0);
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
	return k->frames == k->stop_at ? FUZZ_STOP : 0;
}

/* rx.place: a piece of an XFER payload, streamed instead of assembled. The
 * hash takes the header and the prefix before the first piece, so a placed
 * frame hashes exactly like the same frame delivered whole; it joins the
 * digest when the frame ends (a partial frame is no frame). */
static void fuzz_place(void *arg, const struct wp_frame_hdr *h, const uint8_t *prefix,
		       const uint8_t *piece, uint32_t off, uint32_t n)
{
	struct fuzz_sink *k = arg;
	uintptr_t pp = (uintptr_t)piece, c0 = (uintptr_t)k->chunk;

	FUZZ_CHECK(h == &k->rx->cur && h->type == WP_FT_XFER);
	FUZZ_CHECK(h->len > WP_XFER_PREFIX && h->len <= k->rx->max_payload);
	FUZZ_CHECK(prefix == k->rx->xpre);
	FUZZ_CHECK(n > 0 && piece != NULL);
	FUZZ_CHECK(pp >= c0 && pp + n <= c0 + k->chunk_len);
	FUZZ_CHECK((uint64_t)off + n <= h->len - WP_XFER_PREFIX);
	if (!k->placing) {
		FUZZ_CHECK(off == 0);
		hdr_check(h, k->rx->hdrbuf, k->rx->max_payload);
		k->placing = 1;
		k->place_next = 0;
		k->pending = fnv(h, sizeof(*h), k->digest);
		k->pending = fnv(prefix, WP_XFER_PREFIX, k->pending);
	}
	FUZZ_CHECK(off == k->place_next);
	k->pending = fnv(piece, n, k->pending);
	k->place_next += n;
}

struct fuzz_result {
	int ret;
	int reason;
	int partial;
	uint64_t frames, digest, consumed, copied, in_place, placed;
};

/* How a chunked feed cuts the input: chunk i has size sizes(ctl[i % nctl]). */
static size_t chunk_size(const uint8_t *ctl, size_t nctl, size_t i, uint8_t salt)
{
	uint8_t b;

	if (nctl == 0)
		return 1;
	b = ctl[(i + salt) % nctl] ^ salt;
	/* Half small cuts (1..128, inside headers), half large (up to ~16 KiB). */
	return b < 128 ? (size_t)b + 1 : (size_t)(b - 127) * 127;
}

enum feed_mode { FEED_WHOLE, FEED_CHUNKS, FEED_BYTES };

/* The parser's limit for this input's feeds (all of them: they must agree). */
static uint32_t feed_max;

static void fuzz_feed(const uint8_t *data, size_t size, enum feed_mode mode, int place,
		      uint64_t stop_at, struct fuzz_result *r)
{
	struct wp_rx rx;
	struct fuzz_sink k = { .rx = &rx, .digest = 0xcbf29ce484222325ull, .stop_at = stop_at };
	const uint8_t *ctl = size > 8 ? data + 8 : data;
	size_t nctl = size > 24 ? 16 : size > 8 ? size - 8 : size;
	uint8_t *one = NULL, salt = place ? 0x55 : 0; /* placement cuts elsewhere */
	size_t pos = 0, i = 0;
	int ret = 0, reason = -1;

	wp_rx_init(&rx, feed_max);
	if (place)
		rx.place = fuzz_place;
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
			n = chunk_size(ctl, nctl, i++, salt);
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

	/* The sink stops only when asked; 1 MiB allocations succeed. */
	FUZZ_CHECK(ret == 0 || ret == -EPROTO || (ret == FUZZ_STOP && stop_at));
	if (ret == FUZZ_STOP) {
		FUZZ_CHECK(k.frames == stop_at && !k.placing);
	} else if (ret == -EPROTO) {
		FUZZ_CHECK(reason >= 0 && reason < WP_BAD__COUNT);
		FUZZ_CHECK(reason != WP_BAD_TRUNCATED && reason != WP_BAD_UNEXPECTED);
	} else {
		/* Everything not delivered is a partial frame the parser holds. */
		FUZZ_CHECK(wp_rx_partial(&rx) == (k.consumed < size));
		FUZZ_CHECK(k.placing ==
			   (k.consumed < size && rx.hdr_have == WP_FRAME_HDR &&
			    rx.cur.type == WP_FT_XFER && place && rx.asm_have > WP_XFER_PREFIX));
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
	r->placed = k.placed;
	wp_rx_free(&rx);
}

/* The same frames, in the same order, with the same outcome. */
static void same_frames(const struct fuzz_result *a, const struct fuzz_result *b)
{
	FUZZ_CHECK(a->ret == b->ret && a->reason == b->reason);
	FUZZ_CHECK(a->frames == b->frames && a->digest == b->digest);
	FUZZ_CHECK(a->consumed == b->consumed);
	if (a->ret == 0)
		FUZZ_CHECK(a->partial == b->partial);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_result whole, chunks, placed, bytes, stop_w, stop_c;

	if (size == 0)
		return 0; /* data may be NULL; nothing to parse */
	fuzz_decode(data, size);

	/* Mostly 1 MiB; a small limit when bit 7 of byte 12 (the first frame's
	 * method) is set, so frames over it come whole and the assembly buffer
	 * must stop growing at the limit. */
	feed_max = size > 12 && (data[12] & 0x80) ? FUZZ_SMALL_MAX : FUZZ_MAX_PAYLOAD;
	fuzz_feed(data, size, FEED_WHOLE, 0, 0, &whole);
	/* Fed whole, every frame is delivered in place; the only bytes copied
	 * are a trailing partial frame (none after an error). */
	FUZZ_CHECK(whole.in_place == whole.frames && whole.placed == 0);
	FUZZ_CHECK(whole.copied == (whole.ret ? 0 : size - whole.consumed));

	fuzz_feed(data, size, FEED_CHUNKS, 0, 0, &chunks);
	same_frames(&whole, &chunks);
	FUZZ_CHECK(chunks.placed == 0);

	/* With placement: XFER frames split across chunks are placed, the
	 * others are delivered as before. */
	fuzz_feed(data, size, FEED_CHUNKS, 1, 0, &placed);
	same_frames(&whole, &placed);
	FUZZ_CHECK(placed.in_place + placed.placed <= placed.frames);

	if (size <= FUZZ_BYTEWISE_MAX) {
		fuzz_feed(data, size, FEED_BYTES, 0, 0, &bytes);
		same_frames(&whole, &bytes);
		/* One byte at a time nothing fits in a chunk: every frame is
		 * assembled and every byte counted as copied. */
		FUZZ_CHECK(bytes.in_place == 0);
		if (whole.ret == 0)
			FUZZ_CHECK(bytes.copied == size);
	}
	if (size <= FUZZ_BYTEWISE_PLACE_MAX) {
		fuzz_feed(data, size, FEED_BYTES, 1, 0, &bytes);
		same_frames(&whole, &bytes);
		FUZZ_CHECK(bytes.in_place == 0);
	}

	/* The callback stops the feed at a frame the last byte picks: the feed
	 * returns what it returned, whole or cut and placed alike, after
	 * exactly that many frames. */
	if (whole.frames > 0) {
		uint64_t stop = 1 + data[size - 1] % whole.frames;

		fuzz_feed(data, size, FEED_WHOLE, 0, stop, &stop_w);
		fuzz_feed(data, size, FEED_CHUNKS, 1, stop, &stop_c);
		FUZZ_CHECK(stop_w.ret == FUZZ_STOP && stop_w.frames == stop);
		same_frames(&stop_w, &stop_c);
	}
	return 0;
}

/* ---- structure-aware mutations for the replay driver (fuzz.h) ---------- */

/* Values that sit on the decoder's edges. */
static uint32_t interesting32(uint64_t (*rnd)(void))
{
	static const uint32_t v[] = {
		0,
		1,
		7,
		8,
		15,
		16,
		17,
		39,
		40,
		41,
		4095,
		4096,
		4097,
		65535,
		65536,
		(1u << 20) - 1,
		1u << 20,
		(1u << 20) + 1,
		WP_FRAME_MAX_DEFAULT,
		0x7fffffff,
		0x80000000u,
		0xfffffffeu,
		0xffffffffu,
	};
	return v[rnd() % (sizeof(v) / sizeof(v[0]))];
}

/* Offset of a frame header in buf to aim a field mutation at: walk the frames
 * the declared lengths describe and pick one of their starts (or 0). */
static size_t pick_header(const uint8_t *buf, size_t len, uint64_t (*rnd)(void))
{
	size_t starts[64], n = 0, off = 0;

	while (off + WP_FRAME_HDR <= len && n < 64) {
		uint32_t flen = (uint32_t)buf[off + 24] | (uint32_t)buf[off + 25] << 8 |
				(uint32_t)buf[off + 26] << 16 | (uint32_t)buf[off + 27] << 24;

		starts[n++] = off;
		if (flen > len - off - WP_FRAME_HDR)
			break;
		off += WP_FRAME_HDR + flen;
	}
	return n ? starts[rnd() % n] : 0;
}

size_t wp_fuzz_mutate(uint8_t *buf, size_t len, size_t cap, uint64_t (*rnd)(void))
{
	static const size_t f8[] = { 4, 5, 5, 6, 7 };          /* version, type, flags */
	static const size_t f32[] = { 24, 24, 24, 8, 12, 28 }; /* len (mostly), ids, aux */
	static const uint8_t v8[] = { 0, 1, 2, WP_FT_XFER, WP_FT__MAX, WP_FT__MAX + 1, 0x80, 0xff };
	size_t h = pick_header(buf, len, rnd), a;
	uint32_t v;

	switch (rnd() % 4) {
	case 0: /* an edge value into a header byte (version, type, flags) */
		a = h + f8[rnd() % 5];
		if (a < len)
			buf[a] = v8[rnd() % sizeof(v8)];
		break;
	case 1: /* an edge value into a 32-bit field, most often len */
		a = h + f32[rnd() % 6];
		v = interesting32(rnd);
		if (a + 4 <= len)
			for (int i = 0; i < 4; i++)
				buf[a + i] = (uint8_t)(v >> (8 * i));
		break;
	case 2: /* the frame becomes a bulk-transfer frame (placement) */
		if (h + 6 <= len)
			buf[h + 5] = WP_FT_XFER;
		break;
	default: /* restore the magic and version of a header (keep it parseable) */
		if (h + 5 <= len)
			memcpy(buf + h, "WPF1", 4), buf[h + 4] = WP_FRAME_VERSION;
		else if (len + 5 <= cap)
			memcpy(buf + len, "WPF1", 4), buf[len + 4] = WP_FRAME_VERSION, len += 5;
		break;
	}
	return len;
}
