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
 * 3. Closing with zero-copy sends the kernel still holds (the receiver
 *    napping): what was never handed over fails at once, what was comes back
 *    (status 0) only after its notification, which the closed connection's
 *    lingering descriptor still receives, before the context is destroyed.
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

static uint32_t c_ok, c_aborted;

static void c_sent(void *arg, int status)
{
	struct zslot *z = arg;

	CHECK(z->busy);
	if (status == 0) {
		CHECK(s_notified() > z->notified_at_queue); /* the kernel let go first */
		c_ok++;
	} else {
		CHECK_EQ(status, -ECONNABORTED);
		c_aborted++;
	}
	z->busy = 0;
	memset(z->buf, 0xEE, BUF_MAX);
}

static void phase_close(struct srv *s, uint32_t *seed)
{
	struct conn_wait w = { 0 };
	struct wp_ctx *c = zc_client(s->path, 1);
	struct wp_ep *ep = client_connect(c, s->path, s->port, &w, NULL, NULL);
	uint32_t base = *seed - *seed % 9 + 9 + 5; /* zc_len(base + 9 i): 256 KiB */
	struct wp_meter_snap m0, m1;
	uint64_t end = wp_now_ns() + 10000000000ull;
	uint32_t before = atomic_load(&r_count);

	atomic_store(&r_stall_at, (int)atomic_load(&r_count) + 2);
	for (int k = 0; k < 64; k++) {
		pool[k].len = zc_len(base + 9 * (uint32_t)k);
		CHECK_EQ(pool[k].len, BUF_MAX);
		test_fill(pool[k].buf, BUF_MAX, base + 9 * (uint32_t)k);
		pool[k].busy = 1;
		pool[k].notified_at_queue = s_notified();
		CHECK(wp_ep_send_msg(ep, base + 9 * (uint32_t)k, pool[k].buf, BUF_MAX, c_sent,
				     &pool[k]) == 0);
	}
	wp_meter_snapshot(&m0);
	for (int r = 0; r < 20; r++) /* the kernel takes what its buffers hold */
		CHECK(wp_ctx_progress(c, 5) >= 0);
	wp_meter_snapshot(&m1);
	printf("close: %llu zero-copy sends in the kernel when closing\n",
	       (unsigned long long)(m1.zc_sent - m0.zc_sent));
	wp_ep_close(ep);
	while (c_ok + c_aborted < 64) {
		CHECK(wp_ctx_progress(c, 100) >= 0);
		CHECK(wp_now_ns() < end);
	}
	printf("close: %u returned after their notification, %u never sent\n", c_ok, c_aborted);
	CHECK(c_ok > 0);
	CHECK(c_aborted > 0);
	wp_ctx_destroy(c);
	/* What was handed to the kernel reaches the peer (the last one may be
	 * cut short): wait for the receiver to have read it, then check it. */
	while (atomic_load(&r_count) < before + c_ok - 1) {
		CHECK(wp_now_ns() < end);
		usleep(1000);
	}
	*seed = base + 64 * 9;
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
	s_always = true;
	phase_close(&s, &seed);
	{
		/* Whatever of it arrived is intact (the stream ends mid-frame). */
		struct conn_wait w = { 0 };
		struct wp_ctx *c = zc_client(s.path, 1);
		struct wp_ep *ep = client_connect(c, s.path, s.port, &w, NULL, NULL);

		s_verdict(c, ep, UINT32_MAX);
		wp_ep_close(ep);
		wp_ctx_destroy(c);
	}
	srv_stop(&s);
	for (int k = 0; k < POOL; k++)
		free(pool[k].buf);
	free(r_scratch);
	return 0;
}
