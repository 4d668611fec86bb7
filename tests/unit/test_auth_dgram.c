// SPDX-License-Identifier: MIT
/*
 * Datagram sessions (src/auth/dgram.c): two ends keyed from one handshake
 * (a tenant key and both nonces), integrity-only and encrypting.
 *  - in order: 3000 datagrams of 0..1400 bytes open intact, in both
 *    directions; the header tag is the one XDP checks (wp_frame_tag);
 *  - reordered within the window: a block of 1024 delivered backwards, then
 *    a shuffled block; all accepted once;
 *  - duplicates: every datagram again, refused as replay, window unmoved;
 *  - too old: a datagram 1024 behind the newest refused, 1023 accepted;
 *  - far-future jump: seq + 10^6 accepted, clears the whole window, an old
 *    one behind it refused as too old; the last seq seals, the next is
 *    -EOVERFLOW (re-key), and seq 0 is refused (below, with the forgeries);
 *  - bitmap wraparound: 20000 in order with every 7th held back and
 *    delivered 900 later (the ring of words wraps many times): each once;
 *  - forged tag: each of the 16 tag bytes, a payload bit, a header bit
 *    (header tag fixed up, as an attacker with the static key could), the
 *    session id and seq fields: each refused with its reason, and none of
 *    them moves the window (the real datagram is accepted afterwards);
 *  - wrong session: a datagram from a session with other nonces (same
 *    tenant key) refused as session; one from another tenant as tenant; a
 *    datagram reflected back to its sender refused as bad_tag;
 *  - seal limits: a payload over max or over the buffer is -EMSGSIZE.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testlib.h"
#include "wirepath/policy.h"
#include "auth/dgram.h"

#define MAXP 2048u
static const uint8_t key[16] = { 0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77,
				 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff };
static uint8_t nc[WP_AUTH_NONCE], ns[WP_AUTH_NONCE];

struct pkt {
	uint8_t b[MAXP + 128];
	int n;
	uint64_t seq;
};

static void fill(uint8_t *p, uint32_t len, uint64_t seq)
{
	for (uint32_t i = 0; i < len; i++)
		p[i] = (uint8_t)(seq * 131 + i * 7 + (i >> 8));
}

static uint32_t plen(uint64_t seq)
{
	return (uint32_t)((seq * 97) % 1401);
}

static void seal(struct wp_dgram_session *s, uint64_t seq, struct pkt *p)
{
	uint8_t pay[MAXP];
	struct wp_frame_hdr h = { .type = WP_FT_MSG, .method = 0x100, .req_id = seq };

	fill(pay, plen(seq), seq);
	p->n = wp_dgram_seal(s, &h, pay, plen(seq), MAXP, p->b, sizeof(p->b));
	CHECK_EQ(p->n, (int)(WP_FRAME_HDR + WP_DGRAM_OVERHEAD + plen(seq)));
	p->seq = seq;
}

/* Open a copy of p: 0 and intact, or the negative drop code. */
static int open_copy(struct wp_dgram_session *s, const struct pkt *p)
{
	uint8_t b[MAXP + 128], want[MAXP];
	struct wp_frame_hdr h;
	const uint8_t *pay;
	int ret;

	memcpy(b, p->b, (size_t)p->n);
	ret = wp_dgram_open(s, b, (size_t)p->n, MAXP, &h, &pay);
	if (ret < 0)
		return ret;
	fill(want, plen(p->seq), p->seq);
	CHECK_EQ(h.len, plen(p->seq));
	CHECK_EQ(h.req_id, p->seq);
	CHECK(memcmp(pay, want, h.len) == 0);
	return 0;
}

#define DROP(r) (-(1 + (r)))

static void pair(struct wp_dgram_session *c, struct wp_dgram_session *s, bool enc)
{
	CHECK(wp_dgram_init(c, key, 7, nc, ns, true, enc) == 0);
	CHECK(wp_dgram_init(s, key, 7, nc, ns, false, enc) == 0);
}

static void run(bool enc)
{
	static struct pkt p[21000];
	struct wp_dgram_session c, s, other, tenant9;
	uint64_t top;
	uint8_t nc2[WP_AUTH_NONCE];

	pair(&c, &s, enc);
	CHECK_EQ(c.id, s.id);

	/* in order, both directions; the header tag is XDP's */
	for (uint64_t i = 1; i <= 3000; i++) {
		seal(&c, i, &p[0]);
		CHECK_EQ(wp_frame_tag(key, p[0].b), *(uint64_t *)(p[0].b + 32));
		CHECK_EQ(open_copy(&s, &p[0]), 0);
		seal(&s, i, &p[1]);
		CHECK_EQ(open_copy(&c, &p[1]), 0);
	}
	if (enc) { /* the payload is not in clear on the wire */
		uint8_t want[MAXP];

		fill(want, plen(3000), 3000);
		CHECK(plen(3000) < 16 ||
		      memcmp(p[0].b + WP_FRAME_HDR + WP_DGRAM_PREFIX, want, plen(3000)) != 0);
	}

	/* reordered within the window: 1024 backwards, then a shuffled 1024 */
	for (uint64_t i = 0; i < 1024; i++)
		seal(&c, 3001 + i, &p[i]);
	for (int i = 1023; i >= 0; i--)
		CHECK_EQ(open_copy(&s, &p[i]), 0);
	for (uint64_t i = 0; i < 1024; i++)
		seal(&c, 4025 + i, &p[i]);
	for (int i = 1023; i > 0; i--) {
		int j = (int)((uint64_t)i * 2654435761u % (uint64_t)(i + 1));
		struct pkt t = p[i];

		p[i] = p[j];
		p[j] = t;
	}
	for (int i = 0; i < 1024; i++)
		CHECK_EQ(open_copy(&s, &p[i]), 0);
	/* duplicates: all of them again */
	top = s.top;
	for (int i = 0; i < 1024; i++)
		CHECK_EQ(open_copy(&s, &p[i]), DROP(WP_DGRAM_REPLAY));
	CHECK_EQ(s.top, top);
	CHECK_EQ(s.st.drop[WP_DGRAM_REPLAY], 1024);

	/* too old: 1024 behind the newest is out, 1023 is in */
	for (uint64_t i = 0; i < 1100; i++)
		seal(&c, 5049 + i, &p[i]);
	CHECK_EQ(open_copy(&s, &p[1099]), 0); /* newest: 6148 */
	CHECK_EQ(open_copy(&s, &p[1099 - 1024]), DROP(WP_DGRAM_TOO_OLD));
	CHECK_EQ(open_copy(&s, &p[1099 - 1023]), 0);
	CHECK_EQ(open_copy(&s, &p[1099 - 1023]), DROP(WP_DGRAM_REPLAY));

	/* far-future jump */
	top = s.st.window_jumps;
	c.tx_seq = 6148 + 1000000 - 1;
	seal(&c, 6148 + 1000000, &p[0]);
	CHECK_EQ(open_copy(&s, &p[0]), 0);
	CHECK_EQ(s.st.window_jumps - top, 1);
	CHECK_EQ(open_copy(&s, &p[1099 - 1]), DROP(WP_DGRAM_TOO_OLD));
	for (unsigned w = 0; w < WP_DGRAM_WORDS; w++) /* only the new top's bit is left */
		CHECK_EQ(s.bits[w],
			 (uint64_t)w == (s.top / 64) % WP_DGRAM_WORDS ? 1ull << (s.top % 64) : 0);
	{ /* seq 0 is never valid: sealed by hand with a session whose counter is -1 */
		struct pkt z;

		c.tx_seq = UINT64_MAX - 1;
		seal(&c, UINT64_MAX, &z);
		CHECK_EQ(wp_dgram_seal(&c, &(struct wp_frame_hdr){ .type = WP_FT_MSG }, "", 0, MAXP,
				       z.b, sizeof(z.b)),
			 -EOVERFLOW);
		c.tx_seq = 6148 + 1000000;
	}

	/* wraparound of the bitmap ring: 20000 in order, every 7th 900 late */
	{
		uint64_t base = c.tx_seq + 1, held = 0;

		for (uint64_t i = 0; i < 20000; i++)
			seal(&c, base + i, &p[i]);
		for (uint64_t i = 0; i < 20000; i++) {
			if (i % 7 == 3) {
				held++;
				continue;
			}
			CHECK_EQ(open_copy(&s, &p[i]), 0);
			if (i >= 900 && (i - 900) % 7 == 3)
				CHECK_EQ(open_copy(&s, &p[i - 900]), 0);
		}
		for (uint64_t i = 19100; i < 20000; i++)
			if (i % 7 == 3)
				CHECK_EQ(open_copy(&s, &p[i]), 0);
		for (uint64_t i = 19000; i < 20000; i++)
			CHECK_EQ(open_copy(&s, &p[i]), DROP(WP_DGRAM_REPLAY));
		CHECK(held > 2800);
	}

	/* forged: none of these moves the window */
	{
		struct pkt good, f;
		uint64_t before[WP_DGRAM_DROP__COUNT];

		seal(&c, c.tx_seq + 1, &good);
		memcpy(before, s.st.drop, sizeof(before));
		top = s.top;
		for (int i = 0; i < 16; i++) {
			f = good;
			f.b[f.n - 16 + i] ^= 0x01;
			CHECK_EQ(open_copy(&s, &f), DROP(WP_DGRAM_BAD_TAG));
		}
		if (plen(good.seq)) {
			f = good;
			f.b[WP_FRAME_HDR + WP_DGRAM_PREFIX] ^= 0x80;
			CHECK_EQ(open_copy(&s, &f), DROP(WP_DGRAM_BAD_TAG));
		}
		f = good;     /* a header field changed, its SipHash tag recomputed */
		f.b[12] ^= 1; /* method */
		wp_frame_sign(key, f.b);
		CHECK_EQ(open_copy(&s, &f), DROP(WP_DGRAM_BAD_TAG));
		f = good; /* ... and not recomputed: what XDP drops */
		f.b[12] ^= 1;
		CHECK_EQ(open_copy(&s, &f), DROP(WP_DGRAM_HDR_TAG));
		f = good; /* seq moved ahead */
		f.b[WP_FRAME_HDR + 8] ^= 0x10;
		CHECK_EQ(open_copy(&s, &f), DROP(WP_DGRAM_BAD_TAG));
		f = good; /* seq 0: never sent, refused before the tag is computed */
		memset(f.b + WP_FRAME_HDR + 8, 0, 8);
		CHECK_EQ(open_copy(&s, &f), DROP(WP_DGRAM_TOO_OLD));
		f = good;
		f.b[WP_FRAME_HDR] ^= 1; /* session id */
		CHECK_EQ(open_copy(&s, &f), DROP(WP_DGRAM_SESSION));
		f = good; /* cut short: len no longer matches */
		f.n -= 1;
		CHECK_EQ(open_copy(&s, &f), DROP(WP_DGRAM_BAD_LEN));
		f.n = 20;
		CHECK_EQ(open_copy(&s, &f), DROP(WP_DGRAM_TRUNCATED));
		f = good;
		f.b[0] ^= 0xff; /* magic */
		CHECK_EQ(open_copy(&s, &f), DROP(WP_DGRAM_BAD_HEADER));
		CHECK_EQ(s.top, top);
		CHECK_EQ(s.st.drop[WP_DGRAM_BAD_TAG] - before[WP_DGRAM_BAD_TAG],
			 18 + (plen(good.seq) ? 1 : 0));
		CHECK_EQ(open_copy(&s, &good), 0); /* the real one still gets in */
	}

	/* wrong session, wrong tenant, reflected */
	memcpy(nc2, nc, sizeof(nc2));
	nc2[0] ^= 1;
	CHECK(wp_dgram_init(&other, key, 7, nc2, ns, true, enc) == 0);
	seal(&other, 1, &p[0]);
	CHECK_EQ(open_copy(&s, &p[0]), DROP(WP_DGRAM_SESSION));
	CHECK(wp_dgram_init(&tenant9, key, 9, nc, ns, true, enc) == 0);
	seal(&tenant9, 1, &p[0]);
	CHECK_EQ(open_copy(&s, &p[0]), DROP(WP_DGRAM_TENANT));
	seal(&c, c.tx_seq + 1, &p[0]);
	CHECK_EQ(open_copy(&c, &p[0]), DROP(WP_DGRAM_BAD_TAG)); /* back to its sender */
	CHECK_EQ(open_copy(&s, &p[0]), 0);

	/* seal limits */
	{
		uint8_t big[MAXP + 1] = { 0 }, out[64];

		CHECK_EQ(wp_dgram_seal(&c, &(struct wp_frame_hdr){ .type = WP_FT_MSG }, big,
				       MAXP + 1, MAXP, p[0].b, sizeof(p[0].b)),
			 -EMSGSIZE);
		CHECK_EQ(wp_dgram_seal(&c, &(struct wp_frame_hdr){ .type = WP_FT_MSG }, big, 64,
				       MAXP, out, sizeof(out)),
			 -EMSGSIZE);
	}
	printf("%s: sealed %llu, opened %llu; drops:", enc ? "encrypting" : "integrity",
	       (unsigned long long)c.st.sealed, (unsigned long long)s.st.opened);
	for (unsigned r = 0; r < WP_DGRAM_DROP__COUNT; r++)
		printf(" %s %llu", wp_dgram_drop_name(r), (unsigned long long)s.st.drop[r]);
	printf("\n");
	wp_dgram_fini(&c);
	wp_dgram_fini(&s);
	wp_dgram_fini(&other);
	wp_dgram_fini(&tenant9);
}

int main(void)
{
	for (unsigned i = 0; i < WP_AUTH_NONCE; i++) {
		nc[i] = (uint8_t)(i * 3 + 1);
		ns[i] = (uint8_t)(i * 5 + 2);
	}
	{
		struct wp_dgram_session z;

		CHECK_EQ(wp_dgram_init(&z, key, 0, nc, ns, true, false), -EINVAL);
	}
	run(false);
	run(true);
	printf("test_auth_dgram: ok\n");
	return 0;
}
