// SPDX-License-Identifier: MIT
/*
 * Fuzz target for the shm set-up messages (src/transport/shm/hello.c): the
 * bytes a co-located process controls before either side has proved
 * anything. Built two ways (tests/fuzz/fuzz.h): with libFuzzer by
 * tests/fuzz/run.sh, and into test_fuzz_shm_hello, which replays
 * tests/fuzz/corpus-shm_hello/ (make-corpus-shm_hello.py) and mutations of it.
 *
 * wp-fuzz-args: -max_len=512
 *
 * Per input, for each mask of acceptable types the state machine uses
 * (acceptor's first message, its second, the connector's, an open
 * connection's, anything):
 *  - a rejection is -EPROTO with a reason in range and a message;
 *  - an acceptance is exactly 72 (v1) or 128 (v2) bytes of a type in the
 *    mask, and encodes back to exactly the input bytes (one encoding per
 *    message: nothing the parser ignored can carry data);
 *  - a region message's layout lies within its announced size, in order;
 *  - the verdict is the same twice (no hidden state).
 * A broken invariant aborts.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wirepath/wirepath.h"
#include "transport/shm/layout.h"
#include "fuzz.h"

static const unsigned masks[] = {
	SHM_WANT(SHM_MSG_HELLO) | SHM_WANT(SHM_MSG_AUTH_HELLO),
	SHM_WANT(SHM_MSG_AUTH_REGION) | SHM_WANT(SHM_MSG_AUTH_ACK),
	SHM_WANT(SHM_MSG_ACK) | SHM_WANT(SHM_MSG_AUTH_ACK) | SHM_WANT(SHM_MSG_AUTH_CHALLENGE),
	SHM_WANT(SHM_MSG_MR),
	0xffffffffu,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	for (size_t i = 0; i < sizeof(masks) / sizeof(masks[0]); i++) {
		struct shm_setup m, m2;
		const char *why = NULL, *why2 = NULL;
		int reason = -1, reason2 = -1;
		int r = shm_setup_parse(data, size, masks[i], &m, &reason, &why);
		int r2 = shm_setup_parse(data, size, masks[i], &m2, &reason2, &why2);
		uint8_t enc[SHM_SETUP_MAX];
		size_t n;

		FUZZ_CHECK(r == r2);
		if (r < 0) {
			FUZZ_CHECK(r == -EPROTO);
			FUZZ_CHECK(reason >= 0 && reason < WP_SETUP__COUNT && reason == reason2);
			FUZZ_CHECK(why && why == why2);
			continue;
		}
		FUZZ_CHECK(r == 0);
		FUZZ_CHECK(memcmp(&m, &m2, sizeof(m)) == 0);
		FUZZ_CHECK(size == sizeof(struct shm_wire_msg) ||
			   size == sizeof(struct shm_auth_msg));
		FUZZ_CHECK(m.type < 32 && (masks[i] & SHM_WANT(m.type)));
		FUZZ_CHECK((m.version == SHM_VERSION) == (size == sizeof(struct shm_wire_msg)));
		n = shm_setup_encode(&m, enc);
		FUZZ_CHECK(n == size && memcmp(enc, data, n) == 0);
		if (m.type == SHM_MSG_HELLO || m.type == SHM_MSG_AUTH_REGION) {
			const struct shm_geom *g = &m.g;

			FUZZ_CHECK(g->size == m.size && g->slots == m.slots);
			FUZZ_CHECK(g->ring_off[0] >= sizeof(struct shm_hdr));
			FUZZ_CHECK(g->ring_off[1] >= g->ring_off[0] + (uint64_t)g->slots * 64);
			FUZZ_CHECK(g->arena_off[0] >= g->ring_off[1] + (uint64_t)g->slots * 64);
			FUZZ_CHECK(g->arena_off[1] >= g->arena_off[0] + g->arena);
			FUZZ_CHECK(g->heap_off[0] >= g->arena_off[1] + g->arena);
			FUZZ_CHECK(g->heap_off[1] >= g->heap_off[0] + g->heap);
			FUZZ_CHECK(g->size >= g->heap_off[1] + g->heap);
			FUZZ_CHECK(g->size <= (16ull << 30)); /* bounded by the geometry limits */
		}
		if (m.type == SHM_MSG_ACK || m.type == SHM_MSG_AUTH_ACK)
			FUZZ_CHECK(m.status <= 0 && m.status >= -4095);
		if (m.version == SHM_VERSION_AUTH && m.type != SHM_MSG_AUTH_ACK)
			FUZZ_CHECK(m.tenant != 0);
	}
	return 0;
}
