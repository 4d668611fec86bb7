// SPDX-License-Identifier: MIT
/*
 * Closing an endpoint outside wp_ctx_progress while its output is still
 * queued. The endpoint may be freed inside wp_ep_close, and it was left on
 * the context's list of endpoints to flush: the next progress read the freed
 * endpoint (heap-use-after-free in wp_ctx_flush, found by `wirepath soak`
 * under ASan, where client agents close an endpoint right after a deferred
 * completion queued a call on it). Here: queue a message on one endpoint,
 * close it at once, and check that the other endpoints go on working,
 * many times over. Under ASan or valgrind the bug is a hard error; the
 * payload checks catch a flush of reused memory otherwise.
 */
#include "harness.h"

static int got;
static uint64_t got_sum;

static void srv_msg(void *arg, struct wp_ep *ep, struct wp_msg *m)
{
	(void)arg;
	(void)ep;
	if (m->method == 2) {
		got_sum += fnv1a(m->data, m->len, FNV_INIT);
		__atomic_add_fetch(&got, 1, __ATOMIC_SEQ_CST);
	}
}

int main(int argc, char **argv)
{
	static struct srv s;
	static uint8_t payload[4096];
	struct conn_wait wk = { 0 };
	struct wp_ctx *c;
	struct wp_ep *keep;
	uint64_t want = 0;
	int rounds = 200;

	test_watchdog(120);
	s.path = test_path(argc, argv);
	{
		struct wp_ep_cbs cbs = { .msg = srv_msg };

		srv_start(&s, &cbs);
	}
	c = client_ctx(s.path);
	keep = client_connect(c, s.path, s.port, &wk, NULL, NULL);
	for (size_t i = 0; i < sizeof(payload); i++)
		payload[i] = (uint8_t)(i * 7 + 1);

	for (int r = 0; r < rounds; r++) {
		struct conn_wait w = { 0 };
		struct wp_ep *gone = client_connect(c, s.path, s.port, &w, NULL, NULL);
		int target = r + 1;

		/* Queued (copied: no completion), not yet flushed, then closed. */
		CHECK(wp_ep_send_msg(gone, 1, payload, sizeof(payload), NULL, NULL) == 0);
		wp_ep_close(gone);
		/* The next flush must not touch it; the other endpoint still works. */
		payload[0] = (uint8_t)r;
		CHECK(wp_ep_send_msg(keep, 2, payload, sizeof(payload), NULL, NULL) == 0);
		want += fnv1a(payload, sizeof(payload), FNV_INIT);
		while (__atomic_load_n(&got, __ATOMIC_SEQ_CST) < target)
			CHECK(wp_ctx_progress(c, 1000) >= 0);
	}
	CHECK(!wk.closed);
	srv_stop(&s);
	CHECK(got_sum == want);
	wp_ctx_destroy(c);
	printf("ok: %d endpoints closed with output queued; %d messages on the other intact\n",
	       rounds, rounds);
	return 0;
}
