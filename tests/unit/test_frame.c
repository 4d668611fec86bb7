// SPDX-License-Identifier: MIT
/*
 * Frame codec and receive parser. The codec: every field survives an encode /
 * decode round trip at its documented byte offset, every rejection reason is
 * reported as -EPROTO with the right enum wp_bad_reason (as soon as the bytes
 * that prove it are present, and not before), and every valid prefix asks for
 * more bytes. The parser: streams of random frames fed whole, cut at every
 * point, and in random chunks deliver the same frames in order with intact
 * payloads (FNV-1a), in place when a frame lies inside one chunk, with the
 * copied-bytes count exactly the frames that were split; a bad frame
 * mid-stream is reported after the good frames before it; a peer-declared
 * length above the limit is refused before anything is allocated.
 *
 * Every chunk handed to the parser is its own exact-size heap block, freed
 * right after the feed, so a sanitizer build catches a read past a chunk or a
 * pointer kept into one.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wirepath/wirepath.h"
#include "core/frame.h"
#include "core/rx.h"
#include "testlib.h"

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

static uint64_t rng_state = 0x5eed5eed12345678ull;

static uint64_t rnd(void)
{
	/* splitmix64: deterministic, so a failure reproduces. */
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Uniform in [lo, hi]. */
static uint32_t rnd_range(uint32_t lo, uint32_t hi)
{
	return lo + (uint32_t)(rnd() % ((uint64_t)hi - lo + 1));
}

static void check_hdr_eq(const struct wp_frame_hdr *a, const struct wp_frame_hdr *b)
{
	CHECK_EQ(a->magic, b->magic);
	CHECK_EQ(a->version, b->version);
	CHECK_EQ(a->type, b->type);
	CHECK_EQ(a->flags, b->flags);
	CHECK_EQ(a->tenant, b->tenant);
	CHECK_EQ(a->method, b->method);
	CHECK(a->req_id == b->req_id);
	CHECK_EQ(a->len, b->len);
	CHECK_EQ(a->aux, b->aux);
	CHECK(a->auth == b->auth);
}

static struct wp_frame_hdr rnd_hdr(uint32_t len)
{
	struct wp_frame_hdr h = {
		.magic = WP_FRAME_MAGIC,
		.version = WP_FRAME_VERSION,
		.type = (uint8_t)rnd_range(WP_FT_MSG, WP_FT__MAX),
		.flags = (uint16_t)(rnd() & WP_FF__KNOWN),
		.tenant = (uint32_t)rnd(),
		.method = (uint32_t)rnd(),
		.req_id = rnd(),
		.len = len,
		.aux = (uint32_t)rnd(),
		.auth = rnd(),
	};
	return h;
}

/* Decode buf[0..avail) from its own exact-size heap copy (ASan sees overreads). */
static int decode_exact(const uint8_t *buf, size_t avail, uint32_t max, struct wp_frame_hdr *h,
			int *reason)
{
	uint8_t *copy = malloc(avail ? avail : 1);
	int ret;

	CHECK(copy != NULL);
	memcpy(copy, buf, avail);
	ret = wp_frame_decode(copy, avail, max, h, reason);
	free(copy);
	return ret;
}

/* ------------------------------------------------------------------ */
/* Codec                                                               */
/* ------------------------------------------------------------------ */

static void test_layout(void)
{
	struct wp_frame_hdr h = {
		.magic = 0xdeadbeef, /* ignored by encode: it always writes WPF1 */
		.version = 9,        /* likewise: always WP_FRAME_VERSION */
		.type = WP_FT_DATA,
		.flags = WP_FF_LAST,
		.tenant = 0x11223344,
		.method = 0x55667788,
		.req_id = 0x0102030405060708ull,
		.len = 0x0a0b0c0d,
		.aux = 0xa1b2c3d4,
		.auth = 0xf0e0d0c0b0a09080ull,
	};
	static const uint8_t want[WP_FRAME_HDR] = {
		'W',  'P',  'F',  '1',                          /* 0: magic */
		2,                                              /* 4: version */
		3,                                              /* 5: type */
		0x01, 0x00,                                     /* 6: flags */
		0x44, 0x33, 0x22, 0x11,                         /* 8: tenant */
		0x88, 0x77, 0x66, 0x55,                         /* 12: method */
		0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, /* 16: req_id */
		0x0d, 0x0c, 0x0b, 0x0a,                         /* 24: len */
		0xd4, 0xc3, 0xb2, 0xa1,                         /* 28: aux */
		0x80, 0x90, 0xa0, 0xb0, 0xc0, 0xd0, 0xe0, 0xf0, /* 32: auth */
	};
	uint8_t buf[WP_FRAME_HDR + 8];
	struct wp_frame_hdr d;
	int reason = -1;

	CHECK_EQ(WP_FRAME_HDR, 40);
	CHECK_EQ(WP_FRAME_MAGIC, 0x31465057u);
	memset(buf, 0xee, sizeof(buf));
	wp_frame_encode(&h, buf);
	CHECK(memcmp(buf, want, WP_FRAME_HDR) == 0);
	for (size_t i = WP_FRAME_HDR; i < sizeof(buf); i++)
		CHECK_EQ(buf[i], 0xee); /* exactly 40 bytes written */

	CHECK_EQ(decode_exact(buf, WP_FRAME_HDR, UINT32_MAX, &d, &reason), WP_FRAME_HDR);
	CHECK_EQ(d.magic, WP_FRAME_MAGIC);
	CHECK_EQ(d.version, WP_FRAME_VERSION);
	h.magic = WP_FRAME_MAGIC;
	h.version = WP_FRAME_VERSION;
	check_hdr_eq(&d, &h);
}

static void test_round_trip(void)
{
	uint8_t buf[WP_FRAME_HDR];
	struct wp_frame_hdr h, d;
	int reason;

	/* Every type, both flag values, extreme and random field values. */
	for (int i = 0; i < 20000; i++) {
		uint32_t len = (uint32_t)rnd();
		uint32_t max;

		switch (i % 4) {
		case 0:
			max = UINT32_MAX;
			break;
		case 1:
			max = len;
			break; /* len == max is allowed */
		case 2:
			len = 0;
			max = 0;
			break;
		default:
			len %= WP_FRAME_MAX_DEFAULT + 1;
			max = WP_FRAME_MAX_DEFAULT;
			break;
		}
		h = rnd_hdr(len);
		h.type = (uint8_t)(WP_FT_MSG + i % WP_FT__MAX);
		if (i % 7 == 0) {
			h.tenant = h.method = h.aux = UINT32_MAX;
			h.req_id = h.auth = UINT64_MAX;
		} else if (i % 7 == 1) {
			h.tenant = h.method = h.aux = 0;
			h.req_id = h.auth = 0;
		}
		wp_frame_encode(&h, buf);
		reason = -1;
		memset(&d, 0xa5, sizeof(d));
		CHECK_EQ(decode_exact(buf, WP_FRAME_HDR, max, &d, &reason), WP_FRAME_HDR);
		check_hdr_eq(&d, &h);
		/* Trailing bytes (a payload) do not change the answer. */
		{
			uint8_t big[WP_FRAME_HDR + 3];

			memcpy(big, buf, WP_FRAME_HDR);
			memset(big + WP_FRAME_HDR, 0xff, 3);
			CHECK_EQ(decode_exact(big, sizeof(big), max, &d, &reason), WP_FRAME_HDR);
			check_hdr_eq(&d, &h);
		}
	}
}

/* Every prefix of a valid header is short-but-valid: 0, "need more". */
static void test_short_prefixes(void)
{
	uint8_t buf[WP_FRAME_HDR];
	struct wp_frame_hdr h = rnd_hdr(77), d;

	for (uint8_t t = WP_FT_MSG; t <= WP_FT__MAX; t++) {
		h.type = t;
		wp_frame_encode(&h, buf);
		for (size_t n = 0; n < WP_FRAME_HDR; n++) {
			int reason = -1;

			CHECK_EQ(decode_exact(buf, n, 100, &d, &reason), 0);
		}
	}
	/* Zero bytes available is "need more". */
	{
		int reason = -1;
		uint8_t one = 'W';

		CHECK_EQ(wp_frame_decode(&one, 0, 100, &d, &reason), 0);
	}
}

/*
 * Corrupt byte `off` of a valid header to `val`; every prefix shorter than
 * `first` bytes must still be "need more", and every prefix from `first` bytes
 * on must be -EPROTO with reason `why`.
 */
static void expect_bad(size_t off, uint8_t val, size_t first, int why, uint32_t max)
{
	uint8_t buf[WP_FRAME_HDR];
	struct wp_frame_hdr h = rnd_hdr(max < 50 ? max : 50), d;

	wp_frame_encode(&h, buf);
	buf[off] = val;
	for (size_t n = 0; n <= WP_FRAME_HDR; n++) {
		int reason = -1;
		int ret = decode_exact(buf, n, max, &d, &reason);

		if (n < first) {
			if (ret != 0)
				fprintf(stderr, "off %zu val %u avail %zu: ret %d\n", off, val, n,
					ret);
			CHECK_EQ(ret, 0);
		} else {
			if (ret != -EPROTO || reason != why)
				fprintf(stderr, "off %zu val %u avail %zu: ret %d reason %d\n", off,
					val, n, ret, reason);
			CHECK_EQ(ret, -EPROTO);
			CHECK_EQ(reason, why);
		}
	}
}

static void test_rejections(void)
{
	uint8_t buf[WP_FRAME_HDR];
	struct wp_frame_hdr h, d;
	int reason;

	/* Bad magic: any wrong byte of "WPF1", detected as soon as that byte is
	 * present; a wrong first byte with only 1 byte available is rejected. */
	for (size_t i = 0; i < 4; i++) {
		static const uint8_t vals[] = { 0x00, 0xff, 'w', 'X', '2', 0x80 };

		for (size_t v = 0; v < sizeof(vals); v++)
			if (vals[v] != (uint8_t) "WPF1"[i])
				expect_bad(i, vals[v], i + 1, WP_BAD_MAGIC, 1000);
	}
	{
		uint8_t g = 'G';

		reason = -1;
		CHECK_EQ(decode_exact(&g, 1, 1000, &d, &reason), -EPROTO);
		CHECK_EQ(reason, WP_BAD_MAGIC);
	}
	/* Magic "1FPW" (big-endian mistake) is wrong too. */
	{
		static const uint8_t be[4] = { '1', 'F', 'P', 'W' };

		reason = -1;
		CHECK_EQ(decode_exact(be, 4, 1000, &d, &reason), -EPROTO);
		CHECK_EQ(reason, WP_BAD_MAGIC);
	}

	/* Bad version: detected from the 5th byte on. */
	expect_bad(4, 0, 5, WP_BAD_VERSION, 1000);
	expect_bad(4, 1, 5, WP_BAD_VERSION, 1000); /* a v1 peer */
	expect_bad(4, 3, 5, WP_BAD_VERSION, 1000);
	expect_bad(4, 0xff, 5, WP_BAD_VERSION, 1000);

	/* Bad type: 0, WP_FT__MAX + 1, 255; needs the whole header. */
	expect_bad(5, 0, WP_FRAME_HDR, WP_BAD_TYPE, 1000);
	expect_bad(5, WP_FT__MAX + 1, WP_FRAME_HDR, WP_BAD_TYPE, 1000);
	expect_bad(5, 0xff, WP_FRAME_HDR, WP_BAD_TYPE, 1000);

	/* Unknown flags: every bit outside WP_FF__KNOWN, alone. */
	for (int bit = 0; bit < 16; bit++) {
		uint16_t f = (uint16_t)(1u << bit);

		if (f & WP_FF__KNOWN)
			continue;
		h = rnd_hdr(10);
		h.flags = f | (uint16_t)(rnd() & WP_FF__KNOWN);
		wp_frame_encode(&h, buf);
		reason = -1;
		CHECK_EQ(decode_exact(buf, WP_FRAME_HDR, 1000, &d, &reason), -EPROTO);
		CHECK_EQ(reason, WP_BAD_FLAGS);
		for (size_t n = 0; n < WP_FRAME_HDR; n++)
			CHECK_EQ(decode_exact(buf, n, 1000, &d, &reason), 0);
	}

	/* Too big: len = max + 1 and UINT32_MAX rejected, len = max accepted. */
	{
		static const uint32_t maxes[] = {
			0, 1, 4095, 4096, 65536, WP_FRAME_MAX_DEFAULT, UINT32_MAX - 1
		};

		for (size_t i = 0; i < sizeof(maxes) / sizeof(maxes[0]); i++) {
			uint32_t max = maxes[i];

			h = rnd_hdr(max + 1);
			wp_frame_encode(&h, buf);
			reason = -1;
			CHECK_EQ(decode_exact(buf, WP_FRAME_HDR, max, &d, &reason), -EPROTO);
			CHECK_EQ(reason, WP_BAD_TOO_BIG);
			h.len = UINT32_MAX;
			wp_frame_encode(&h, buf);
			reason = -1;
			CHECK_EQ(decode_exact(buf, WP_FRAME_HDR, max, &d, &reason), -EPROTO);
			CHECK_EQ(reason, WP_BAD_TOO_BIG);
			h.len = max;
			wp_frame_encode(&h, buf);
			CHECK_EQ(decode_exact(buf, WP_FRAME_HDR, max, &d, &reason), WP_FRAME_HDR);
			CHECK_EQ(d.len, max);
		}
		/* Nothing is too big for max = UINT32_MAX. */
		h = rnd_hdr(UINT32_MAX);
		wp_frame_encode(&h, buf);
		CHECK_EQ(decode_exact(buf, WP_FRAME_HDR, UINT32_MAX, &d, &reason), WP_FRAME_HDR);
	}
}

/* ------------------------------------------------------------------ */
/* Receive parser                                                      */
/* ------------------------------------------------------------------ */

struct sframe {
	struct wp_frame_hdr h;
	uint64_t sum; /* FNV-1a of the payload */
	size_t off;   /* offset of the header in the stream */
};

struct stream {
	uint8_t *buf;
	size_t len;
	struct sframe *f;
	size_t n;
};

static void stream_free(struct stream *s)
{
	free(s->buf);
	free(s->f);
	memset(s, 0, sizeof(*s));
}

/* Append one frame with a random payload. */
static void stream_add(struct stream *s, const struct wp_frame_hdr *h)
{
	size_t sz = WP_FRAME_HDR + h->len;
	uint8_t *b = realloc(s->buf, s->len + sz);
	struct sframe *f = realloc(s->f, (s->n + 1) * sizeof(*f));

	CHECK(b != NULL && f != NULL);
	s->buf = b;
	s->f = f;
	wp_frame_encode(h, b + s->len);
	for (uint32_t i = 0; i < h->len; i++)
		b[s->len + WP_FRAME_HDR + i] = (uint8_t)rnd();
	f[s->n].h = *h;
	f[s->n].h.magic = WP_FRAME_MAGIC;
	f[s->n].h.version = WP_FRAME_VERSION;
	f[s->n].sum = fnv1a(b + s->len + WP_FRAME_HDR, h->len, FNV_INIT);
	f[s->n].off = s->len;
	s->len += sz;
	s->n++;
}

/* Append raw bytes (a corrupt frame) that are not an expected frame. */
static void stream_raw(struct stream *s, const uint8_t *p, size_t n)
{
	uint8_t *b = realloc(s->buf, s->len + n);

	CHECK(b != NULL);
	memcpy(b + s->len, p, n);
	s->buf = b;
	s->len += n;
}

/* n frames; payload sizes 0..maxlen, biased so small frames are common. */
static void stream_make(struct stream *s, size_t n, uint32_t maxlen)
{
	memset(s, 0, sizeof(*s));
	for (size_t i = 0; i < n; i++) {
		uint32_t len;

		switch (rnd() % 4) {
		case 0:
			len = 0;
			break;
		case 1:
			len = rnd_range(0, maxlen < 64 ? maxlen : 64);
			break;
		default:
			len = rnd_range(0, maxlen);
			break;
		}
		struct wp_frame_hdr h = rnd_hdr(len);
		stream_add(s, &h);
	}
}

struct sink {
	const struct stream *s;
	const struct wp_rx *rx;
	size_t next;          /* index of the next expected frame */
	const uint8_t *chunk; /* chunk being fed, to tell in place from copied */
	size_t chunk_len;
	size_t in_place;
	size_t stop_after; /* return 1234 after this many frames (0: never) */
};

static int sink_deliver(void *arg, const struct wp_frame_hdr *h, const uint8_t *payload)
{
	struct sink *k = arg;
	const struct sframe *f;
	uintptr_t pp = (uintptr_t)payload, c0 = (uintptr_t)k->chunk;

	CHECK(k->next < k->s->n);
	f = &k->s->f[k->next];
	check_hdr_eq(h, &f->h);
	CHECK(h->len <= k->rx->max_payload);
	CHECK(h->len == 0 || payload != NULL);
	CHECK(fnv1a(payload, h->len, FNV_INIT) == f->sum);
	if (payload && pp >= c0 + WP_FRAME_HDR && pp + h->len <= c0 + k->chunk_len) {
		/* In place: the payload really is the sender's bytes, right after
		 * their header in this chunk. */
		CHECK(memcmp(payload - WP_FRAME_HDR, k->s->buf + f->off, WP_FRAME_HDR) == 0);
		k->in_place++;
	} else if (h->len > 0) {
		CHECK(payload == k->rx->asm_buf);
		CHECK(k->rx->asm_cap >= h->len);
	}
	k->next++;
	if (k->stop_after && k->next == k->stop_after)
		return 1234;
	return 0;
}

/* Feed s->buf[off..off+n) as one chunk in its own exact-size heap block. */
static int feed_chunk(struct wp_rx *rx, struct sink *k, const uint8_t *src, size_t n, int *reason)
{
	uint8_t *c = malloc(n ? n : 1);
	int ret;

	CHECK(c != NULL);
	memcpy(c, src, n);
	k->chunk = c;
	k->chunk_len = n;
	ret = wp_rx_feed(rx, c, n, sink_deliver, k, reason);
	k->chunk = NULL;
	k->chunk_len = 0;
	free(c);
	return ret;
}

/*
 * Bytes the parser should count as copied for a given set of chunk
 * boundaries: every frame not wholly inside one chunk, counted whole.
 */
static uint64_t expect_copied(const struct stream *s, const size_t *cuts, size_t ncuts)
{
	uint64_t want = 0;
	size_t c = 0;

	for (size_t i = 0; i < s->n; i++) {
		size_t b = s->f[i].off, e = b + WP_FRAME_HDR + s->f[i].h.len;

		while (c < ncuts && cuts[c] <= b)
			c++;
		if (c < ncuts && cuts[c] < e)
			want += e - b;
	}
	return want;
}

/* Feed a whole stream cut at the given sorted offsets; check everything. */
static void feed_cuts(const struct stream *s, uint32_t max, const size_t *cuts, size_t ncuts)
{
	struct wp_rx rx;
	struct sink k = { .s = s, .rx = &rx };
	size_t pos = 0;
	int reason = -1;

	wp_rx_init(&rx, max);
	for (size_t i = 0; i <= ncuts; i++) {
		size_t end = i < ncuts ? cuts[i] : s->len;

		CHECK(end >= pos);
		if (end > pos)
			CHECK_EQ(feed_chunk(&rx, &k, s->buf + pos, end - pos, &reason), 0);
		/* Between chunks the parser holds a partial frame iff the cut
		 * falls inside one. */
		if (i < ncuts) {
			int inside = 0;

			for (size_t j = 0; j < s->n; j++)
				if (s->f[j].off < end &&
				    end < s->f[j].off + WP_FRAME_HDR + s->f[j].h.len)
					inside = 1;
			CHECK_EQ(wp_rx_partial(&rx), inside);
		}
		pos = end;
	}
	CHECK_EQ(k.next, s->n);
	CHECK_EQ(wp_rx_partial(&rx), 0);
	CHECK_EQ(rx.copied, expect_copied(s, cuts, ncuts));
	CHECK(rx.asm_cap <= max);
	wp_rx_free(&rx);
}

static void test_rx_whole(void)
{
	struct stream s;
	struct wp_rx rx;
	struct sink k = { .s = &s, .rx = &rx };
	int reason = -1;

	stream_make(&s, 64, 70000);
	wp_rx_init(&rx, 70000);
	CHECK_EQ(feed_chunk(&rx, &k, s.buf, s.len, &reason), 0);
	CHECK_EQ(k.next, s.n);
	CHECK_EQ(k.in_place, s.n); /* every frame delivered in place */
	CHECK_EQ(rx.copied, 0);
	CHECK_EQ(rx.asm_cap, 0); /* nothing ever needed assembling */
	CHECK(rx.asm_buf == NULL);
	CHECK_EQ(wp_rx_partial(&rx), 0);
	wp_rx_free(&rx);

	/* The same with cut-based accounting (no cuts). */
	feed_cuts(&s, 70000, NULL, 0);
	stream_free(&s);
}

static void test_rx_every_cut(void)
{
	struct stream s;

	/* Small frames so a cut lands in every header byte and payload. */
	stream_make(&s, 8, 48);
	for (size_t c = 1; c < s.len; c++)
		feed_cuts(&s, 48, &c, 1);

	/* Every pair of cuts on a still smaller stream. */
	stream_free(&s);
	stream_make(&s, 4, 12);
	for (size_t a = 1; a < s.len; a++)
		for (size_t b = a + 1; b < s.len; b++) {
			size_t cuts[2] = { a, b };

			feed_cuts(&s, 12, cuts, 2);
		}
	stream_free(&s);

	/* One byte at a time. */
	stream_make(&s, 24, 3000);
	{
		size_t *cuts = malloc(s.len * sizeof(*cuts));

		CHECK(cuts != NULL);
		for (size_t i = 1; i < s.len; i++)
			cuts[i - 1] = i;
		feed_cuts(&s, 3000, cuts, s.len - 1);
		free(cuts);
	}
	stream_free(&s);
}

static void test_rx_random_chunks(void)
{
	for (int round = 0; round < 12; round++) {
		struct stream s;
		size_t *cuts, ncuts = 0, pos = 0;
		uint32_t hi = round % 3 == 0 ? 64 : 5000;

		stream_make(&s, 48, 70000);
		cuts = malloc(s.len * sizeof(*cuts));
		CHECK(cuts != NULL);
		for (;;) {
			pos += rnd_range(1, hi);
			if (pos >= s.len)
				break;
			cuts[ncuts++] = pos;
		}
		feed_cuts(&s, 70000, cuts, ncuts);
		free(cuts);
		stream_free(&s);
	}
}

/*
 * A bad frame after `good` good frames, then more good frames that must not
 * be delivered. Fed whole, in random chunks and byte by byte.
 */
static void bad_mid_stream(size_t off, uint8_t val, int why, uint32_t badlen)
{
	struct stream s;
	struct wp_frame_hdr h;
	uint8_t bad[WP_FRAME_HDR];
	size_t good, bad_off, detect;
	const uint32_t max = 5000;

	stream_make(&s, 5, max);
	good = s.n;
	bad_off = s.len;
	/* The byte that proves the frame bad: a magic byte, the version, or
	 * (type, flags, len) the end of the header. */
	detect = bad_off + (why == WP_BAD_MAGIC     ? off + 1
			    : why == WP_BAD_VERSION ? 5
						    : WP_FRAME_HDR);
	h = rnd_hdr(badlen);
	wp_frame_encode(&h, bad);
	if (off < WP_FRAME_HDR)
		bad[off] = val;
	stream_raw(&s, bad, sizeof(bad));
	{
		uint8_t tail[300];

		for (size_t i = 0; i < sizeof(tail); i++)
			tail[i] = (uint8_t)rnd();
		stream_raw(&s, tail, sizeof(tail));
	}
	for (int mode = 0; mode < 3; mode++) {
		struct wp_rx rx;
		struct sink k = { .s = &s, .rx = &rx };
		size_t pos = 0, n = 0;
		int reason = -1, ret = 0;

		wp_rx_init(&rx, max);
		while (pos < s.len) {
			n = mode == 0 ? s.len : mode == 1 ? rnd_range(1, 700) : 1;
			if (n > s.len - pos)
				n = s.len - pos;
			ret = feed_chunk(&rx, &k, s.buf + pos, n, &reason);
			pos += n;
			if (ret)
				break;
		}
		CHECK_EQ(ret, -EPROTO);
		CHECK_EQ(reason, why);
		CHECK_EQ(k.next, good);
		/* Reported by the chunk holding the proving byte, not later. */
		CHECK(pos - n < detect && detect <= pos);
		CHECK(rx.asm_cap <= max);
		wp_rx_free(&rx);
	}
	stream_free(&s);
}

static void test_rx_bad_mid_stream(void)
{
	bad_mid_stream(0, 'X', WP_BAD_MAGIC, 10);
	bad_mid_stream(3, '2', WP_BAD_MAGIC, 10);
	bad_mid_stream(4, 1, WP_BAD_VERSION, 10);
	bad_mid_stream(5, 0, WP_BAD_TYPE, 10);
	bad_mid_stream(5, WP_FT__MAX + 1, WP_BAD_TYPE, 10);
	bad_mid_stream(7, 0x80, WP_BAD_FLAGS, 10);
	bad_mid_stream(6, 0x02, WP_BAD_FLAGS, 10);
	bad_mid_stream(WP_FRAME_HDR, 0, WP_BAD_TOO_BIG, 5001);
	bad_mid_stream(WP_FRAME_HDR, 0, WP_BAD_TOO_BIG, UINT32_MAX);
}

/* A header declaring max + 1 is refused before anything is allocated. */
static void test_rx_too_big_no_alloc(void)
{
	static const uint32_t maxes[] = {
		0, 100, 4096, 1u << 20, WP_FRAME_MAX_DEFAULT, UINT32_MAX - 1
	};

	for (size_t i = 0; i < sizeof(maxes) / sizeof(maxes[0]); i++) {
		for (int split = 0; split < 3; split++) {
			struct stream s = { 0 };
			struct wp_frame_hdr h = rnd_hdr(maxes[i] + 1);
			uint8_t hb[WP_FRAME_HDR];
			struct wp_rx rx;
			struct sink k = { .s = &s, .rx = &rx };
			int reason = -1, ret = 0;

			wp_frame_encode(&h, hb);
			wp_rx_init(&rx, maxes[i]);
			if (split == 0) {
				ret = feed_chunk(&rx, &k, hb, sizeof(hb), &reason);
			} else if (split == 1) {
				CHECK_EQ(feed_chunk(&rx, &k, hb, 39, &reason), 0);
				CHECK_EQ(rx.asm_cap, 0);
				ret = feed_chunk(&rx, &k, hb + 39, 1, &reason);
			} else {
				for (size_t b = 0; b < sizeof(hb) && !ret; b++)
					ret = feed_chunk(&rx, &k, hb + b, 1, &reason);
			}
			CHECK_EQ(ret, -EPROTO);
			CHECK_EQ(reason, WP_BAD_TOO_BIG);
			CHECK_EQ(rx.asm_cap, 0);
			CHECK(rx.asm_buf == NULL);
			CHECK_EQ(k.next, 0);
			wp_rx_free(&rx);
		}
	}
}

/* Frames of exactly max_payload pass (whole and split); the allocation
 * never exceeds max_payload. */
static void test_rx_max_payload(void)
{
	static const uint32_t maxes[] = { 0, 1, 100, 4096, 5000, 70000 };

	for (size_t i = 0; i < sizeof(maxes) / sizeof(maxes[0]); i++) {
		struct stream s = { 0 };
		uint32_t max = maxes[i];

		for (int j = 0; j < 4; j++) {
			struct wp_frame_hdr h = rnd_hdr(j % 2 ? max : rnd_range(0, max));

			stream_add(&s, &h);
		}
		feed_cuts(&s, max, NULL, 0);
		for (size_t c = 1; c < s.len; c += 1 + s.len / 97)
			feed_cuts(&s, max, &c, 1);
		{
			/* Split every frame in its middle: the assembly buffer grows
			 * to the largest, never past max. */
			size_t cuts[4];

			for (int j = 0; j < 4; j++)
				cuts[j] = s.f[j].off + (WP_FRAME_HDR + s.f[j].h.len) / 2;
			feed_cuts(&s, max, cuts, 4);
		}
		stream_free(&s);
	}
}

/* A non-zero deliver return stops the feed and is passed back. */
static void test_rx_stop(void)
{
	struct stream s;
	struct wp_rx rx;
	struct sink k = { .s = &s, .rx = &rx, .stop_after = 3 };
	int reason = -1;

	stream_make(&s, 6, 100);
	wp_rx_init(&rx, 100);
	CHECK_EQ(feed_chunk(&rx, &k, s.buf, s.len, &reason), 1234);
	CHECK_EQ(k.next, 3);
	wp_rx_free(&rx);

	/* Stopping on an assembled frame leaves the parser at a boundary. */
	k = (struct sink){ .s = &s, .rx = &rx, .stop_after = 1 };
	wp_rx_init(&rx, 100);
	CHECK_EQ(feed_chunk(&rx, &k, s.buf, s.f[0].off + 20, &reason), 0);
	CHECK_EQ(feed_chunk(&rx, &k, s.buf + 20, s.f[1].off - 20, &reason), 1234);
	CHECK_EQ(k.next, 1);
	CHECK_EQ(wp_rx_partial(&rx), 0);
	k.stop_after = 0;
	CHECK_EQ(feed_chunk(&rx, &k, s.buf + s.f[1].off, s.len - s.f[1].off, &reason), 0);
	CHECK_EQ(k.next, s.n);
	wp_rx_free(&rx);
	stream_free(&s);
}

/* ---- the receive budget (docs/limits.md) ---------------------------- */

struct bsink {
	int frames;
	uint32_t len;
};

static int bsink_deliver(void *arg, const struct wp_frame_hdr *h, const uint8_t *payload)
{
	struct bsink *k = arg;

	CHECK_EQ(h->len, k->len);
	for (uint32_t i = 0; i < h->len; i++)
		CHECK(payload[i] == (uint8_t)(i * 7 + 1));
	k->frames++;
	return 0;
}

/* One frame of len: header then payload, into a fresh buffer. */
static uint8_t *bframe(uint32_t len)
{
	struct wp_frame_hdr h = { .type = WP_FT_MSG, .len = len };
	uint8_t *b = malloc(WP_FRAME_HDR + len);

	CHECK(b);
	wp_frame_encode(&h, b);
	for (uint32_t i = 0; i < len; i++)
		b[WP_FRAME_HDR + i] = (uint8_t)(i * 7 + 1);
	return b;
}

static void budget_ok(const struct wp_rx_budget *b)
{
	CHECK(b->used <= b->claimed);
	CHECK(b->claimed <= b->limit);
}

static void test_rx_budget(void)
{
	const uint32_t big = 100000, small = 20000;
	struct wp_rx_budget b = { .limit = 256u << 10, .big_limit = 224u << 10 };
	struct wp_rx rx[7];
	struct bsink kb = { .len = big }, ks = { .len = small };
	uint8_t *fb = bframe(big), *fs = bframe(small);
	uint64_t freed;
	int reason;

	for (int i = 0; i < 7; i++) {
		wp_rx_init(&rx[i], 1u << 20);
		rx[i].budget = &b;
	}
	/* Two large frames in progress claim their whole length, but hold
	 * only what arrived. */
	for (int i = 0; i < 2; i++) {
		CHECK_EQ(wp_rx_feed(&rx[i], fb, WP_FRAME_HDR + 1000, bsink_deliver, &kb, &reason),
			 0);
		budget_ok(&b);
	}
	CHECK_EQ(b.claimed, 2 * big);
	CHECK(b.used <= 2 * 4096);
	/* A third does not fit under 7/8: it takes the header, leaves the rest. */
	CHECK_EQ(wp_rx_feed(&rx[2], fb, WP_FRAME_HDR + 1000, bsink_deliver, &kb, &reason),
		 -ENOBUFS);
	CHECK_EQ(rx[2].fed, WP_FRAME_HDR);
	CHECK_EQ(rx[2].asm_cap, 0);
	CHECK_EQ(wp_rx_partial(&rx[2]), 1);
	/* Small frames may use the whole budget, past 7/8 ... */
	for (int i = 3; i < 6; i++) {
		CHECK_EQ(wp_rx_feed(&rx[i], fs, WP_FRAME_HDR + 10, bsink_deliver, &ks, &reason), 0);
		budget_ok(&b);
	}
	CHECK(b.claimed > b.big_limit);
	/* ... but not beyond it. */
	CHECK_EQ(wp_rx_feed(&rx[6], fs, WP_FRAME_HDR + 10, bsink_deliver, &ks, &reason), -ENOBUFS);
	CHECK_EQ(rx[6].fed, WP_FRAME_HDR);
	/* The first large frame completes: its memory and claim go back. */
	freed = b.freed;
	CHECK_EQ(wp_rx_feed(&rx[0], fb + WP_FRAME_HDR + 1000, big - 1000, bsink_deliver, &kb,
			    &reason),
		 0);
	CHECK_EQ(kb.frames, 1);
	CHECK(b.freed > freed);
	CHECK_EQ(rx[0].asm_cap, 0);
	budget_ok(&b);
	/* A small frame completed keeps its buffer, claimed at its size. */
	CHECK_EQ(wp_rx_feed(&rx[3], fs + WP_FRAME_HDR + 10, small - 10, bsink_deliver, &ks,
			    &reason),
		 0);
	CHECK_EQ(ks.frames, 1);
	CHECK_EQ(rx[3].claim, rx[3].asm_cap);
	budget_ok(&b);
	/* Still no room for the third under 7/8 (nothing taken) ... */
	CHECK_EQ(wp_rx_feed(&rx[2], fb + WP_FRAME_HDR, big, bsink_deliver, &kb, &reason), -ENOBUFS);
	CHECK_EQ(rx[2].fed, 0);
	/* ... until two small ones go (their connections closed). */
	wp_rx_free(&rx[4]);
	wp_rx_free(&rx[5]);
	CHECK_EQ(wp_rx_feed(&rx[2], fb + WP_FRAME_HDR, big, bsink_deliver, &kb, &reason), 0);
	CHECK_EQ(kb.frames, 2);
	budget_ok(&b);
	for (int i = 0; i < 7; i++)
		wp_rx_free(&rx[i]);
	CHECK_EQ(b.claimed, 0);
	CHECK_EQ(b.used, 0);
	free(fb);
	free(fs);
}

int main(void)
{
	test_watchdog(60);
	test_layout();
	test_round_trip();
	test_short_prefixes();
	test_rejections();
	test_rx_whole();
	test_rx_every_cut();
	test_rx_random_chunks();
	test_rx_bad_mid_stream();
	test_rx_too_big_no_alloc();
	test_rx_max_payload();
	test_rx_stop();
	test_rx_budget();
	printf("test_frame: ok\n");
	return 0;
}
