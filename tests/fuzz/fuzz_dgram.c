// SPDX-License-Identifier: MIT
/*
 * Fuzz target for datagram sessions (src/auth/dgram.c): what an on-path
 * attacker controls is a whole datagram. Built two ways (tests/fuzz/fuzz.h):
 * with libFuzzer by tests/fuzz/run.sh, and into test_fuzz_dgram, which
 * replays tests/fuzz/corpus-dgram/ and mutations of it. One pair of sessions
 * keyed from fixed nonces is made once (keying is the expensive part) and its
 * counters and windows are reset for every input, so each input meets fresh
 * sessions; the seeds are datagrams this pair sealed (rebuild them with
 * -DFUZZ_DGRAM_MAKE_SEEDS, see the end).
 *
 * wp-fuzz-args: -max_len=2048
 *
 * Per input:
 *  (a) as a datagram, opened by the responder: refused with a reason in
 *      range (and counted once), or accepted with the payload inside the
 *      input and len = size - 40 - 32; an accepted datagram opened again is
 *      a replay, and the window top is its seq;
 *  (b) as a payload (up to 1400 bytes), sealed by the initiator and opened
 *      by the responder: accepted and identical; again: replay; with one
 *      byte changed (position and bit from the input): refused, and the
 *      window did not move.
 * Both with integrity only and with encryption. A broken invariant aborts.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/dgram.h"
#include "fuzz.h"

#define FMAX 2048u
static const uint8_t key[16] = { 0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77,
				 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff };

static void sessions(struct wp_dgram_session *c, struct wp_dgram_session *s, bool enc)
{
	uint8_t nc[WP_AUTH_NONCE], ns[WP_AUTH_NONCE];

	for (unsigned i = 0; i < WP_AUTH_NONCE; i++) {
		nc[i] = (uint8_t)(i * 3 + 1);
		ns[i] = (uint8_t)(i * 5 + 2);
	}
	FUZZ_CHECK(wp_dgram_init(c, key, 7, nc, ns, true, enc) == 0);
	FUZZ_CHECK(wp_dgram_init(s, key, 7, nc, ns, false, enc) == 0);
}

/* What an input may change: as if the session had just been keyed. */
static void reset(struct wp_dgram_session *x)
{
	x->tx_seq = 0;
	x->top = 0;
	memset(x->bits, 0, sizeof(x->bits));
	memset(&x->st, 0, sizeof(x->st));
}

static uint64_t drops(const struct wp_dgram_session *s)
{
	uint64_t t = 0;

	for (int i = 0; i < WP_DGRAM_DROP__COUNT; i++)
		t += s->st.drop[i];
	return t;
}

static void as_datagram(struct wp_dgram_session *s, const uint8_t *data, size_t size)
{
	uint8_t *b = malloc(size ? size : 1);
	struct wp_frame_hdr h;
	const uint8_t *pay = NULL;
	uint64_t d0 = drops(s);
	int ret;

	FUZZ_CHECK(b != NULL);
	if (size)
		memcpy(b, data, size);
	ret = wp_dgram_open(s, b, size, FMAX, &h, &pay);
	if (ret < 0) {
		FUZZ_CHECK(ret >= -WP_DGRAM_DROP__COUNT);
		FUZZ_CHECK(drops(s) == d0 + 1 && s->st.drop[-ret - 1] >= 1);
		FUZZ_CHECK(s->top == 0 && s->st.opened == 0);
	} else {
		FUZZ_CHECK(ret == 0 && size >= WP_FRAME_HDR + WP_DGRAM_OVERHEAD);
		FUZZ_CHECK(h.len == size - WP_FRAME_HDR - WP_DGRAM_OVERHEAD);
		FUZZ_CHECK(pay == b + WP_FRAME_HDR + WP_DGRAM_PREFIX);
		FUZZ_CHECK(s->top != 0 && s->st.opened == 1);
		if (size)
			memcpy(b, data, size);
		FUZZ_CHECK(wp_dgram_open(s, b, size, FMAX, &h, &pay) == -(1 + WP_DGRAM_REPLAY));
	}
	free(b);
}

static void as_payload(struct wp_dgram_session *c, struct wp_dgram_session *s, const uint8_t *data,
		       size_t size)
{
	size_t len = size > 1400 ? 1400 : size;
	uint8_t *pkt = malloc(FMAX + 128), *copy = malloc(FMAX + 128);
	struct wp_frame_hdr h = { .type = WP_FT_REQ, .method = 5, .req_id = size }, got;
	const uint8_t *pay;
	uint64_t top;
	size_t at;
	int n;

	FUZZ_CHECK(pkt && copy);
	n = wp_dgram_seal(c, &h, data, len, FMAX, pkt, FMAX + 128);
	FUZZ_CHECK(n == (int)(WP_FRAME_HDR + WP_DGRAM_OVERHEAD + len));
	memcpy(copy, pkt, (size_t)n);
	FUZZ_CHECK(wp_dgram_open(s, copy, (size_t)n, FMAX, &got, &pay) == 0);
	FUZZ_CHECK(got.len == len && got.req_id == size && got.method == 5 &&
		   got.type == WP_FT_REQ && got.tenant == 7);
	FUZZ_CHECK(len == 0 || memcmp(pay, data, len) == 0);
	memcpy(copy, pkt, (size_t)n);
	FUZZ_CHECK(wp_dgram_open(s, copy, (size_t)n, FMAX, &got, &pay) == -(1 + WP_DGRAM_REPLAY));
	/* the next one, with one byte changed: refused, window unmoved */
	n = wp_dgram_seal(c, &h, data, len, FMAX, pkt, FMAX + 128);
	at = size ? data[0] % (size_t)n : 0;
	pkt[at] ^= (uint8_t)(1u << (size > 1 ? data[1] % 8 : 0));
	top = s->top;
	FUZZ_CHECK(wp_dgram_open(s, pkt, (size_t)n, FMAX, &got, &pay) < 0);
	FUZZ_CHECK(s->top == top);
	free(pkt);
	free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* Made once, kept for the process (a fuzzer's lifetime). */
	static struct wp_dgram_session c[2], s[2];
	static int ready;

	if (!ready) {
		sessions(&c[0], &s[0], false);
		sessions(&c[1], &s[1], true);
		ready = 1;
	}
	for (int enc = 0; enc < 2; enc++) {
		reset(&c[enc]);
		reset(&s[enc]);
		as_datagram(&s[enc], data, size);
		reset(&s[enc]);
		as_payload(&c[enc], &s[enc], data, size);
	}
	return 0;
}

#ifdef FUZZ_DGRAM_MAKE_SEEDS
/* gcc -DFUZZ_DGRAM_MAKE_SEEDS -D_GNU_SOURCE -Iinclude -Isrc -Itests/fuzz tests/fuzz/fuzz_dgram.c
 *     src/auth/dgram.c src/auth/crypto.c src/core/frame.c -lcrypto -o /tmp/mk
 * && /tmp/mk tests/fuzz/corpus-dgram */
int main(int argc, char **argv)
{
	static const uint32_t lens[] = { 0, 1, 16, 100, 1400 };

	for (int enc = 0; enc < 2; enc++) {
		struct wp_dgram_session c, s;
		uint8_t pay[1400], pkt[FMAX + 128];

		sessions(&c, &s, enc);
		for (unsigned i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
			struct wp_frame_hdr h = { .type = WP_FT_MSG, .method = 0x100, .req_id = i };
			char path[512];
			FILE *f;
			int n;

			for (uint32_t k = 0; k < lens[i]; k++)
				pay[k] = (uint8_t)(k * 7 + i);
			n = wp_dgram_seal(&c, &h, pay, lens[i], FMAX, pkt, sizeof(pkt));
			snprintf(path, sizeof(path), "%s/%s-%u", argv[1], enc ? "enc" : "int",
				 lens[i]);
			f = fopen(path, "wb");
			if (!f || fwrite(pkt, 1, (size_t)n, f) != (size_t)n)
				return 1;
			fclose(f);
		}
		wp_dgram_fini(&s);
		wp_dgram_fini(&c);
	}
	(void)argc;
	return 0;
}
#endif
