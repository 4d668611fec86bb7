// SPDX-License-Identifier: MIT
/*
 * MSG_ZEROCOPY on the tcp path (src/transport/tcp.c), on loopback, where the
 * kernel copies every zero-copy send and says so.
 * wp-test-paths: tcp
 *
 * 1. Sizes around the threshold (T-1, T, T+1, ...), 128 buffers in flight,
 *    the receiver napping once so the sender's data waits in its socket on
 *    the caller's pages: every message arrives intact although each buffer
 *    is poisoned the moment its completion runs, and no completion of a
 *    payload at or above the threshold runs before the kernel's notification
 *    for it (the meter's zc_copied moved since it was queued). COPIED
 *    accounting is exact: every zero-copy send notified, all copied.
 * 2. The stop-asking policy (zc_always off): one message at a time, so the
 *    count is exact: the first 16 sends ask for zero copy, all come back
 *    copied, the connection stops asking, and the explain string says so.
 */
#include "zc_peer.h"

#define NMSG 3000u
#define POOL 128
#define NJUDGE 40u

static struct zslot pool[POOL];

static void phase_in_flight(struct srv *s, uint32_t *seed)
{
	struct conn_wait w = { 0 };
	struct wp_ctx *c = zc_client(s->path, 1);
	struct wp_ep *ep = client_connect(c, s->path, s->port, &w, NULL, NULL);
	struct wp_meter_snap m0, m1, d;
	const char *ex;
	uint32_t i = 0, base = *seed;

	wp_meter_snapshot(&m0);
	atomic_store(&r_stall_at, (int)(atomic_load(&r_count) + NMSG / 3));
	while (i < NMSG) {
		int queued = 0;

		for (int k = 0; k < POOL && i < NMSG; k++) {
			if (pool[k].busy)
				continue;
			s_queue(ep, &pool[k], base + i++);
			queued++;
		}
		CHECK(wp_ctx_progress(c, queued ? 0 : 1000) >= 0);
		CHECK(!w.closed);
	}
	while (s_done < NMSG)
		CHECK(wp_ctx_progress(c, 1000) >= 0);
	*seed = base + NMSG;
	s_verdict(c, ep, *seed);
	wp_meter_snapshot(&m1);
	wp_meter_diff(&m0, &m1, &d);
	ex = wp_ctx_explain(c);
	printf("in flight: zc sent %llu copied %llu nobufs %llu disabled %llu\n%s\n",
	       (unsigned long long)d.zc_sent, (unsigned long long)d.zc_copied,
	       (unsigned long long)d.zc_nobufs, (unsigned long long)d.zc_disabled, ex);
	CHECK(d.zc_sent > 0);
	CHECK_EQ(d.zc_copied, d.zc_sent); /* loopback: every one notified, and copied */
	CHECK_EQ(d.zc_disabled, 0);       /* zc_always */
	CHECK(strstr(ex, "MSG_ZEROCOPY") && strstr(ex, "(all: loopback and veth always copy)"));
	wp_ep_close(ep);
	wp_ctx_destroy(c);
}

static void phase_stop_asking(struct srv *s, uint32_t *seed)
{
	struct conn_wait w = { 0 };
	struct wp_ctx *c = zc_client(s->path, 0);
	struct wp_ep *ep = client_connect(c, s->path, s->port, &w, NULL, NULL);
	struct wp_meter_snap m0, m1, d;
	const char *ex;

	uint32_t base = *seed - *seed % 9 + 9 + 4; /* zc_len(base + 9 i): 64 KiB */

	s_always = false;
	wp_meter_snapshot(&m0);
	for (uint32_t i = 0; i < NJUDGE; i++) {
		uint32_t target = s_done + 1;

		s_queue(ep, &pool[0], base + i * 9);
		CHECK_EQ(pool[0].len, 64u << 10);
		while (s_done < target)
			CHECK(wp_ctx_progress(c, 1000) >= 0);
	}
	*seed = base + NJUDGE * 9;
	wp_meter_snapshot(&m1);
	wp_meter_diff(&m0, &m1, &d);
	ex = wp_ctx_explain(c);
	printf("stop asking: zc sent %llu copied %llu disabled %llu\n%s\n",
	       (unsigned long long)d.zc_sent, (unsigned long long)d.zc_copied,
	       (unsigned long long)d.zc_disabled, ex);
	CHECK_EQ(d.zc_sent, 16);
	CHECK_EQ(d.zc_copied, 16);
	CHECK_EQ(d.zc_disabled, 1);
	CHECK(strstr(ex, "1 connection(s) stopped asking") != NULL);
	wp_ep_close(ep);
	wp_ctx_destroy(c);
}

int main(int argc, char **argv)
{
	static struct srv s;
	uint32_t seed = 0, received;

	test_watchdog(120);
	for (int k = 0; k < POOL; k++)
		CHECK((pool[k].buf = malloc(BUF_MAX)) != NULL);
	r_start(&s, test_path(argc, argv));
	phase_in_flight(&s, &seed);
	received = seed;
	phase_stop_asking(&s, &seed);
	{
		/* The receiver's verdict covers both phases. */
		struct conn_wait w = { 0 };
		struct wp_ctx *c = zc_client(s.path, 1);
		struct wp_ep *ep = client_connect(c, s.path, s.port, &w, NULL, NULL);

		s_verdict(c, ep, received + NJUDGE);
		wp_ep_close(ep);
		wp_ctx_destroy(c);
	}
	srv_stop(&s);
	for (int k = 0; k < POOL; k++)
		free(pool[k].buf);
	free(r_scratch);
	return 0;
}
