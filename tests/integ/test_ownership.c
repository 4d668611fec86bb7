// SPDX-License-Identifier: MIT
/*
 * The buffer ownership contract, clause by clause, once per path:
 * - with a completion, the payload is the library's until `done` runs, and
 *   `done` runs from wp_ctx_progress, never inside the send call, exactly once;
 * - without a completion, the payload is copied at the call (the meter's
 *   bytes_copied grows by its size) and may be reused at once;
 * - a large payload with a completion is not copied by user space when it
 *   lies in a send buffer (wp_ep_buf_alloc; on tcp/uring any memory is sent
 *   in place, on shm memory outside the shared heap is copied into the arena);
 * - a failed send (-EMSGSIZE, closed endpoint) takes nothing: `done` never runs;
 * - a received payload kept with wp_msg_keep stays valid after its callback.
 */
#include "harness.h"

static int got;
static uint64_t got_sum;
static struct wp_msg *kept;

static void on_msg(void *arg, struct wp_ep *ep, struct wp_msg *m)
{
	got++;
	got_sum = fnv1a(m->data, m->len, FNV_INIT);
	if (m->method == 7)
		kept = wp_msg_keep(m);
}

static int ndone;
static int last_status;
static void on_done(void *arg, int status)
{
	ndone++;
	last_status = status;
}

/* Server side forwards each message back to us as a one-way message. */
static void srv_msg(void *arg, struct wp_ep *ep, struct wp_msg *m)
{
	CHECK(wp_ep_send_msg(ep, m->method, m->data, m->len, NULL, NULL) == 0);
}

static void wait_got(struct wp_ctx *c, int n)
{
	uint64_t end = wp_now_ns() + 5000000000ull;

	while (got < n) {
		CHECK(wp_ctx_progress(c, 1000) >= 0);
		CHECK(wp_now_ns() < end);
	}
}

int main(int argc, char **argv)
{
	static struct srv s;
	struct conn_wait w = { 0 };
	struct wp_ctx *c;
	struct wp_ep *ep;
	struct wp_meter_snap a, b, d;
	static uint8_t small[300];
	static uint8_t foreign[256 << 10];
	uint8_t *big;
	uint64_t sum;

	test_watchdog(60);
	s.path = test_path(argc, argv);
	{
		struct wp_ep_cbs cbs = { .msg = srv_msg };

		srv_start(&s, &cbs);
	}
	c = client_ctx(s.path);
	ep = client_connect(c, s.path, s.port, &w, on_msg, NULL);
	big = wp_ep_buf_alloc(ep, 1 << 20);
	CHECK(big != NULL);
	for (size_t i = 0; i < (1 << 20); i++)
		big[i] = (uint8_t)(i * 31);
	memset(small, 0x5a, sizeof(small));

	/* 1. Large payload with a completion: not copied, done later, once. */
	wp_meter_snapshot(&a);
	CHECK(wp_ep_send_msg(ep, 1, big, 1 << 20, on_done, NULL) == 0);
	wp_meter_snapshot(&b);
	wp_meter_diff(&a, &b, &d);
	CHECK(d.bytes_copied < 1024); /* the call took the payload by reference */
	CHECK_EQ(ndone, 0);           /* and completes it later, never inside the call */
	while (!ndone)
		CHECK(wp_ctx_progress(c, 1000) >= 0);
	CHECK_EQ(last_status, 0);
	sum = fnv1a(big, 1 << 20, FNV_INIT);
	wait_got(c, 1);
	CHECK(got_sum == sum);
	CHECK_EQ(ndone, 1);

	/* 1b. Large payload with a completion from any other memory: in place on
	 * the stream paths; on shm copied into the shared arena (counted) and done
	 * at the next progress. Either way the caller gets it back only via done. */
	memset(foreign, 0x6b, sizeof(foreign));
	ndone = 0;
	wp_meter_snapshot(&a);
	CHECK(wp_ep_send_msg(ep, 11, foreign, sizeof(foreign), on_done, NULL) == 0);
	wp_meter_snapshot(&b);
	wp_meter_diff(&a, &b, &d);
	CHECK_EQ(ndone, 0);
	if (!strcmp(s.path, "shm"))
		CHECK(d.bytes_copied >= sizeof(foreign));
	else
		CHECK(d.bytes_copied < 1024);
	while (!ndone)
		CHECK(wp_ctx_progress(c, 1000) >= 0);
	CHECK_EQ(last_status, 0);
	wait_got(c, 2);
	CHECK(got_sum == fnv1a(foreign, sizeof(foreign), FNV_INIT));
	got--; /* the numbering below counts from case 1 */

	/* 2. Without a completion: copied at the call, reusable at once. */
	wp_meter_snapshot(&a);
	CHECK(wp_ep_send_msg(ep, 2, big, 200000, NULL, NULL) == 0);
	wp_meter_snapshot(&b);
	wp_meter_diff(&a, &b, &d);
	CHECK(d.bytes_copied >= 200000);
	sum = fnv1a(big, 200000, FNV_INIT);
	memset(big, 0, 200000); /* ours again: the copy is what goes out */
	wait_got(c, 2);
	CHECK(got_sum == sum);

	/* 3. Small payload with a completion: staged, done from progress. */
	ndone = 0;
	CHECK(wp_ep_send_msg(ep, 3, small, sizeof(small), on_done, NULL) == 0);
	CHECK_EQ(ndone, 0);
	CHECK(wp_ctx_progress(c, 0) >= 0);
	CHECK_EQ(ndone, 1);
	wait_got(c, 3);
	CHECK(got_sum == fnv1a(small, sizeof(small), FNV_INIT));

	/* 4. A refused send takes nothing. */
	ndone = 0;
	CHECK(wp_ep_send_msg(ep, 4, big, (32u << 20), on_done, NULL) == -EMSGSIZE);

	/* 5. Kept message survives its callback. */
	CHECK(wp_ep_send_msg(ep, 7, small, sizeof(small), NULL, NULL) == 0);
	wait_got(c, 4);
	CHECK(kept && kept->len == sizeof(small));
	for (int i = 0; i < 20; i++)
		wp_ctx_progress(c, 0);
	CHECK(fnv1a(kept->data, kept->len, FNV_INIT) == fnv1a(small, sizeof(small), FNV_INIT));
	wp_msg_release(kept);

	/* 6. Registered pool: registration cached, buffers sent in place
	 * (uring: as fixed buffers), returned to the pool after completion. */
	{
		struct wp_pool *pool;
		struct wp_mr *mr2;
		uint8_t *bufs[8];
		int before = got;

		CHECK(wp_pool_create(c, 64 << 10, 8, &pool) == 0);
		CHECK_EQ(wp_pool_avail(pool), 8);
		for (int i = 0; i < 8; i++)
			CHECK((bufs[i] = wp_pool_get(pool)) != NULL);
		CHECK(wp_pool_get(pool) == NULL); /* back-pressure, not failure */
		/* Same range again: the cached region, no new registration. */
		CHECK(wp_mr_register(c, bufs[3], 100, &mr2) == 0);
		printf("pool region pinned by the kernel: %d\n", wp_mr_is_pinned(mr2));
		CHECK_EQ(wp_mr_is_pinned(mr2), !strcmp(s.path, "uring") || !strcmp(s.path, "rdma"));
		wp_mr_deregister(mr2);
		ndone = 0;
		for (int i = 0; i < 8; i++) {
			memset(bufs[i], i + 1, 64 << 10);
			CHECK(wp_ep_send_msg(ep, 100 + i, bufs[i], 64 << 10, on_done, NULL) == 0);
		}
		while (ndone < 8)
			CHECK(wp_ctx_progress(c, 1000) >= 0);
		for (int i = 0; i < 8; i++)
			wp_pool_put(pool, bufs[i]);
		CHECK_EQ(wp_pool_avail(pool), 8);
		wait_got(c, before + 8);
		memset(small, 8, sizeof(small));
		wp_pool_destroy(pool);
	}

	/* 7. After the peer closes: -ENOTCONN, nothing taken. */
	ndone = 0;
	srv_stop(&s);
	drive_until(c, &w.closed, 5000);
	CHECK(wp_ep_send_msg(ep, 5, small, sizeof(small), on_done, NULL) == -ENOTCONN);
	for (int i = 0; i < 5; i++)
		wp_ctx_progress(c, 0);
	CHECK_EQ(ndone, 0);
	wp_ep_buf_free(ep, big); /* valid until the endpoint is freed */
	wp_ep_close(ep);
	wp_ctx_destroy(c);
	return 0;
}
