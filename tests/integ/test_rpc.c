// SPDX-License-Identifier: MIT
/*
 * RPC over a real loopback connection, once per path: unary calls with
 * payload checksums, a fan-out of 64 calls in flight, streamed responses in
 * order, per-call deadlines, cancellation, errors from the server (no
 * handler, application status), the built-in stats method, and sends on a
 * closed endpoint.
 */
#include "harness.h"

enum { M_ECHO = 1, M_STREAM = 2, M_SLOW = 3, M_FAIL = 4 };

static const uint8_t pattern[256 << 10] = { 1 };
static uint8_t pat[256 << 10];

/* ---- server ---------------------------------------------------------- */

static struct wp_call *held[256];
static int nheld;
static atomic_int slow_cancelled;

static void noop_done(void *arg, int status)
{
}

static void h_echo(void *arg, struct wp_call *call, struct wp_msg *req)
{
	uint32_t want;

	CHECK(req->len >= 4);
	memcpy(&want, req->data, 4);
	CHECK(want <= sizeof(pat));
	/* pat is never modified: hand it over in place with a no-op done. */
	CHECK(wp_call_reply(call, pat, want, noop_done, NULL) == 0);
}

static void h_stream(void *arg, struct wp_call *call, struct wp_msg *req)
{
	uint32_t n;

	memcpy(&n, req->data, 4);
	for (uint32_t i = 0; i < n; i++)
		CHECK(wp_call_stream(call, &i, sizeof(i), NULL, NULL) == 0);
	CHECK(wp_call_end(call, 0) == 0);
}

static void h_slow(void *arg, struct wp_call *call, struct wp_msg *req)
{
	CHECK(nheld < 256);
	held[nheld++] = call;
}

static void h_fail(void *arg, struct wp_call *call, struct wp_msg *req)
{
	CHECK(wp_call_error(call, 42, "application says no") == 0);
}

static void srv_setup(struct srv *s)
{
	for (size_t i = 0; i < sizeof(pat); i++)
		pat[i] = (uint8_t)(i * 7 + 3);
	CHECK(wp_rpc_register(s->ctx, M_ECHO, h_echo, NULL) == 0);
	CHECK(wp_rpc_register(s->ctx, M_STREAM, h_stream, NULL) == 0);
	CHECK(wp_rpc_register(s->ctx, M_SLOW, h_slow, NULL) == 0);
	CHECK(wp_rpc_register(s->ctx, M_FAIL, h_fail, NULL) == 0);
	CHECK(wp_rpc_register(s->ctx, WP_METHOD_STATS, h_fail, NULL) == -EINVAL);
}

/* Held calls are finished once the client has given up on them. */
static void srv_tick(struct srv *s)
{
	for (int i = 0; i < nheld; i++) {
		if (held[i] && wp_call_cancelled(held[i])) {
			atomic_fetch_add(&slow_cancelled, 1);
			wp_call_end(held[i], 0);
			held[i] = NULL;
		}
	}
}

/* ---- client ---------------------------------------------------------- */

struct res {
	int done;
	int status;
	uint32_t want;
	uint32_t got;
	uint64_t sum;
	uint32_t chunks;
	int order_ok;
};

static void on_data(void *arg, struct wp_msg *m)
{
	struct res *r = arg;

	r->sum = fnv1a(m->data, m->len, r->sum);
	r->got += m->len;
	if (m->len == 4) {
		uint32_t i;

		memcpy(&i, m->data, 4);
		if (i != r->chunks)
			r->order_ok = 0;
	}
	r->chunks++;
}

static void on_done(void *arg, int status)
{
	struct res *r = arg;

	CHECK(!r->done); /* exactly once */
	r->done = 1;
	r->status = status;
}

static int start(struct wp_ep *ep, uint32_t method, uint32_t arg32, int64_t deadline_us,
		 struct res *r, uint64_t *id)
{
	struct wp_call_params p = { .method = method,
				    .req = &r->want,
				    .req_len = 4,
				    .deadline_us = deadline_us,
				    .on_data = on_data,
				    .on_done = on_done,
				    .arg = r };

	memset(r, 0, sizeof(*r));
	r->want = arg32;
	r->sum = FNV_INIT;
	r->order_ok = 1;
	return wp_rpc_call(ep, &p, id);
}

int main(int argc, char **argv)
{
	static struct srv s;
	struct conn_wait w = { 0 };
	struct wp_ctx *c;
	struct wp_ep *ep;
	static struct res r[64];
	struct res one;
	uint64_t id;

	test_watchdog(60);
	s.path = test_path(argc, argv);
	s.setup = srv_setup;
	s.tick = srv_tick;
	srv_start(&s, NULL);
	c = client_ctx(s.path);
	ep = client_connect(c, s.path, s.port, &w, NULL, NULL);
	printf("path: %s\n", wp_ctx_explain(c));
	CHECK(!strcmp(wp_ctx_path(c), s.path));

	/* Unary, sizes across the staging/zero-copy thresholds. */
	for (uint32_t i = 0; i < 2000; i++) {
		uint32_t sz = (i * 2654435761u) % (200 << 10);

		if (i % 3 == 0)
			sz %= 600;
		CHECK(start(ep, M_ECHO, sz, 0, &one, NULL) == 0);
		drive_until(c, &one.done, 5000);
		CHECK_EQ(one.status, 0);
		CHECK_EQ(one.got, sz);
		CHECK(one.sum == fnv1a(pat, sz, FNV_INIT));
	}

	/* Fan-out 64: all in flight at once. */
	for (int round = 0; round < 50; round++) {
		int all = 0;

		for (int i = 0; i < 64; i++)
			CHECK(start(ep, M_ECHO, (uint32_t)(i * 1031 + round * 17) % 70000, 0, &r[i],
				    NULL) == 0);
		CHECK_EQ(wp_ep_inflight(ep), 64);
		while (!all) {
			CHECK(wp_ctx_progress(c, 1000) >= 0);
			all = 1;
			for (int i = 0; i < 64; i++)
				all &= r[i].done;
		}
		for (int i = 0; i < 64; i++) {
			CHECK_EQ(r[i].status, 0);
			CHECK_EQ(r[i].got, r[i].want);
			CHECK(r[i].sum == fnv1a(pat, r[i].want, FNV_INIT));
		}
		CHECK_EQ(wp_ep_inflight(ep), 0);
	}

	/* A stream of 520 token frames, in order, then END. */
	CHECK(start(ep, M_STREAM, 520, 0, &one, NULL) == 0);
	drive_until(c, &one.done, 5000);
	CHECK_EQ(one.status, 0);
	CHECK_EQ(one.chunks, 520);
	CHECK(one.order_ok);

	/* Deadline: the server holds the call; we give up after 20 ms. */
	{
		uint64_t t0 = wp_now_ns();

		CHECK(start(ep, M_SLOW, 0, 20000, &one, NULL) == 0);
		drive_until(c, &one.done, 5000);
		CHECK_EQ(one.status, -ETIMEDOUT);
		CHECK(wp_now_ns() - t0 >= 20000000ull);
		CHECK(wp_now_ns() - t0 < 2000000000ull);
	}

	/* Cancellation: on_done(-ECANCELED) from progress, server told. */
	CHECK(start(ep, M_SLOW, 0, 0, &one, &id) == 0);
	CHECK(wp_ctx_progress(c, 0) >= 0);
	CHECK(wp_rpc_cancel(ep, id) == 0);
	CHECK(!one.done); /* never from inside the call */
	drive_until(c, &one.done, 5000);
	CHECK_EQ(one.status, -ECANCELED);
	CHECK(wp_rpc_cancel(ep, id) == -ENOENT);
	{
		uint64_t end = wp_now_ns() + 2000000000ull;

		while (atomic_load(&slow_cancelled) < 2 && wp_now_ns() < end)
			wp_ctx_progress(c, 1000);
		CHECK_EQ(atomic_load(&slow_cancelled), 2);
	}

	/* Errors from the server. */
	CHECK(start(ep, 999, 0, 0, &one, NULL) == 0);
	drive_until(c, &one.done, 5000);
	CHECK_EQ(one.status, ENOSYS);
	CHECK(start(ep, M_FAIL, 0, 0, &one, NULL) == 0);
	drive_until(c, &one.done, 5000);
	CHECK_EQ(one.status, 42);

	/* The built-in stats method: the server's meter, flat LE u64s. */
	CHECK(start(ep, WP_METHOD_STATS, 0, 0, &one, NULL) == 0);
	drive_until(c, &one.done, 5000);
	CHECK_EQ(one.status, 0);
	CHECK_EQ(one.got, WP_METER_FIELDS * 8);

	/* Oversized request is refused locally. */
	{
		struct wp_call_params p = { .method = M_ECHO,
					    .req = pattern,
					    .req_len = (32u << 20),
					    .on_done = on_done,
					    .arg = &one };

		CHECK(wp_rpc_call(ep, &p, NULL) == -EMSGSIZE);
	}

	wp_ep_close(ep);
	wp_ctx_destroy(c);
	srv_stop(&s);
	printf("ok\n");
	return 0;
}
