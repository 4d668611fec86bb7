// SPDX-License-Identifier: MIT
/*
 * Fuzz target for the authentication v2 handshake messages (src/auth/hello.c),
 * the bytes an unauthenticated peer controls first. Built both ways fuzz.h
 * says (libFuzzer fuzz_handshake; test_fuzz_handshake replaying
 * tests/fuzz/corpus-handshake/, made by make-corpus-handshake.py, in every
 * `make test`). wp-fuzz-args: -max_len=512
 *
 * Per input: the bytes go through the receive parser (max payload 4 KiB, as
 * a stream), and every HELLO frame it delivers goes to wp_hello_parse:
 *  - a refusal is -EPROTO with a reason;
 *  - an accepted message has a known phase and flags, and rebuilding it
 *    (wp_hello_build) gives back exactly the bytes it was parsed from (so
 *    nothing the parser ignores can ride along in a transcript);
 *  - the proof over it (a fixed session's keys) is deterministic, and differs
 *    between the server and the client role.
 * A broken invariant aborts (libFuzzer keeps the input as a crash).
 */
#include <errno.h>
#include <string.h>

#include "fuzz.h"
#include "wirepath/wirepath.h"
#include "core/frame.h"
#include "core/rx.h"
#include "auth/hello.h"

static struct wp_session_keys keys; /* a fixed session: proof_key = 0x5a.. */
static struct wp_hello last_client;

static int on_frame(void *arg, const struct wp_frame_hdr *h, const uint8_t *payload)
{
	uint8_t want[WP_FRAME_HDR + WP_HELLO_MAX], got[WP_FRAME_HDR + WP_HELLO_MAX];
	uint8_t p1[WP_AUTH_HMAC], p2[WP_AUTH_HMAC], p3[WP_AUTH_HMAC];
	struct wp_hello m;
	const char *why = NULL;
	uint32_t n;
	int ret;

	(*(unsigned *)arg)++;
	if (h->type != WP_FT_HELLO)
		return 0;
	ret = wp_hello_parse(h, payload, &m, &why);
	if (ret) {
		FUZZ_CHECK(ret == -EPROTO && why && *why);
		return 0;
	}
	FUZZ_CHECK(m.phase >= WP_HELLO_CLIENT && m.phase <= WP_HELLO_PROOF);
	FUZZ_CHECK(!(m.flags & ~WP_HELLO_F__KNOWN));
	FUZZ_CHECK(h->len <= WP_HELLO_MAX);
	wp_frame_encode(h, want);
	memcpy(want + WP_FRAME_HDR, payload, h->len);
	n = wp_hello_build(&m, got);
	FUZZ_CHECK(n == WP_FRAME_HDR + h->len);
	FUZZ_CHECK(!memcmp(want, got, n));
	if (m.phase == WP_HELLO_CLIENT) {
		last_client = m;
		return 0;
	}
	FUZZ_CHECK(wp_hello_proof(&keys, true, last_client.tenant, &last_client, &m, p1) == 0);
	FUZZ_CHECK(wp_hello_proof(&keys, true, last_client.tenant, &last_client, &m, p2) == 0);
	FUZZ_CHECK(wp_hello_proof(&keys, false, last_client.tenant, &last_client, &m, p3) == 0);
	FUZZ_CHECK(!memcmp(p1, p2, sizeof(p1)));
	FUZZ_CHECK(memcmp(p1, p3, sizeof(p1)) != 0);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wp_rx rx;
	unsigned frames = 0;
	int reason = -1, ret;

	memset(keys.proof_key, 0x5a, sizeof(keys.proof_key));
	memset(&last_client, 0, sizeof(last_client));
	wp_rx_init(&rx, 4096);
	ret = wp_rx_feed(&rx, data, size, on_frame, &frames, &reason);
	FUZZ_CHECK(ret == 0 || (ret == -EPROTO && reason >= 0 && reason < WP_BAD__COUNT));
	wp_rx_free(&rx);
	return 0;
}
