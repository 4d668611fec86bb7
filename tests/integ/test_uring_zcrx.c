// SPDX-License-Identifier: MIT
/*
 * io_uring zero-copy receive on the uring path (wp_ctx_opts.uring_zcrx,
 * src/transport/uring_zcrx.c).
 * wp-test-paths: uring
 *
 * 1. The probe: a line per interface (uring.zcrx.IFACE) and one for the
 *    device-less mode (uring.zcrx.nodev), each a real registration that
 *    either succeeded or names the errno it got and why.
 * 2. A refused registration under select=require fails the first listen
 *    with exactly the errno the probe got for that interface; a spec that
 *    does not parse fails with -EINVAL, an interface that does not exist
 *    with -ENODEV.
 * 3. Under prefer, the context starts either way and explain says what
 *    happened (RECV_ZC, or "zero-copy receive refused (" and the kernel's
 *    errno in words); 600 echo calls of 1 B to 192 KiB then arrive intact
 *    (checksums) over whichever receive it got.
 * 4. With WP_TEST_URING_ZCRX=SPEC (tests/uring_zcrx.sh, where some
 *    registration succeeds: the harness gives it to both sides), the same
 *    calls must have gone through RECV_ZC: explain counts CQEs and bytes,
 *    and every chunk was given back.
 * Where no interface registers (lo, veth, virtio_net here: EOPNOTSUPP),
 * 4 does not run; tests/uring_zcrx.sh skips with the probe's reasons.
 */
#include "harness.h"

#define M_ECHO 1
#define NCALLS 600

static void free_done(void *arg, int status)
{
	(void)status;
	free(arg);
}

static void h_echo(void *arg, struct wp_call *call, struct wp_msg *req)
{
	void *copy = malloc(req->len ? req->len : 1);

	(void)arg;
	CHECK(copy);
	memcpy(copy, req->data, req->len);
	CHECK(wp_call_reply(call, copy, req->len, free_done, copy) == 0);
}

static void srv_setup(struct srv *s)
{
	CHECK(wp_rpc_register(s->ctx, M_ECHO, h_echo, NULL) == 0);
}

struct res {
	int done, status;
	uint32_t got;
	uint64_t sum, want;
};

static void on_data(void *arg, struct wp_msg *m)
{
	struct res *r = arg;

	r->sum = fnv1a(m->data, m->len, r->sum);
	r->got += m->len;
}

static void on_done(void *arg, int status)
{
	struct res *r = arg;

	CHECK(!r->done);
	r->done = 1;
	r->status = status;
}

/* NCALLS echo calls, 32 in flight, sizes from 1 B to 192 KiB (frames split
 * across receives, and whole ones), each checked by checksum. */
static void echo_calls(struct wp_ctx *c, struct wp_ep *ep)
{
	static struct res r[32];
	static uint8_t buf[32][192 << 10];
	uint32_t started = 0, finished = 0;
	uint32_t seed = 12345;

	while (finished < NCALLS) {
		for (int k = 0; k < 32 && started < NCALLS; k++) {
			uint32_t len;
			struct wp_call_params p;

			if (started >= 32 && !r[k].done)
				continue;
			if (started >= 32) {
				CHECK_EQ(r[k].status, 0);
				CHECK_EQ(r[k].sum, r[k].want);
				finished++;
			}
			seed = seed * 1103515245u + 12345u;
			len = 1 + (seed >> 8) % (sizeof(buf[0]) - 1);
			if (started % 5 == 0)
				len = 1 + len % 300; /* small ones too */
			for (uint32_t i = 0; i < len; i++)
				buf[k][i] = (uint8_t)(started * 31 + i * 7);
			memset(&r[k], 0, sizeof(r[k]));
			r[k].sum = FNV_INIT;
			r[k].want = fnv1a(buf[k], len, FNV_INIT);
			p = (struct wp_call_params){ .method = M_ECHO,
						     .req = buf[k],
						     .req_len = len,
						     .deadline_us = 20 * 1000 * 1000,
						     .on_data = on_data,
						     .on_done = on_done,
						     .arg = &r[k] };
			CHECK(wp_rpc_call(ep, &p, NULL) == 0);
			started++;
		}
		CHECK(wp_ctx_progress(c, 1000) >= 0);
		if (started == NCALLS) {
			for (int k = 0; k < 32; k++)
				if (r[k].done == 1) {
					CHECK_EQ(r[k].status, 0);
					CHECK_EQ(r[k].sum, r[k].want);
					r[k].done = 2; /* counted */
					finished++;
				}
		}
	}
}

static const struct wp_probe_result *probe_lo(void)
{
	const struct wp_probe_result *r = wp_probe_get("uring.zcrx.lo");

	CHECK(r != NULL);
	CHECK(wp_probe_get("uring.zcrx.nodev") != NULL);
	if (!r->ok) {
		CHECK(r->err > 0);
		CHECK(strstr(r->detail, strerror(r->err)) != NULL); /* the reason, in words */
	}
	return r;
}

static struct wp_ctx *ctx_with(const char *who, const char *spec, enum wp_select sel)
{
	struct wp_ctx_opts o;
	struct wp_ctx *c;

	h_opts(&o, who);
	o.select = sel;
	snprintf(o.uring_zcrx, sizeof(o.uring_zcrx), "%s", spec);
	CHECK(wp_ctx_create(&o, &c) == 0);
	return c;
}

/* A context whose first listen must fail with want (select=require). */
static void listen_fails(const char *spec, int want)
{
	struct wp_ctx *c = ctx_with("require", spec, WP_SELECT_REQUIRE);
	struct wp_ep *l;
	int ret;

	ret = wp_listen(c, "uring://127.0.0.1:0", &(struct wp_ep_cbs){ 0 }, &l);
	printf("require, uring_zcrx=%s: %d (%s)\n", spec, ret, strerror(-ret));
	CHECK_EQ(ret, want);
	wp_ctx_destroy(c);
}

int main(int argc, char **argv)
{
	static struct srv s;
	const char *spec = getenv("WP_TEST_URING_ZCRX");
	const struct wp_probe_result *lo;
	struct conn_wait w = { 0 };
	struct wp_ctx *c;
	struct wp_ep *ep;
	const char *ex;

	s.path = "uring";
	for (int i = 1; i + 1 < argc; i++)
		if (!strcmp(argv[i], "--path"))
			s.path = argv[i + 1];
	CHECK(!strcmp(s.path, "uring"));
	if (!wp_probe_get("uring") || !wp_probe_get("uring")->ok)
		SKIP("no io_uring here");

	/* 1, 2 */
	lo = probe_lo();
	printf("probe: %s %s\n", lo->ok ? "ok" : "refused", lo->detail);
	if (!lo->ok)
		listen_fails("lo:0", -lo->err);
	listen_fails("lo:x", -EINVAL);
	listen_fails("nosuchif0:0", -ENODEV);

	/* 3, 4: with WP_TEST_URING_ZCRX (which must register: require),
	 * else lo's queue 0 under prefer. */
	s.ctx = ctx_with("server", spec ? spec : "lo:0",
			 spec ? WP_SELECT_REQUIRE : WP_SELECT_PREFER);
	srv_setup(&s);
	CHECK(wp_listen(s.ctx, "uring://127.0.0.1:0", &(struct wp_ep_cbs){ 0 }, &s.l) == 0);
	s.port = wp_ep_local_port(s.l);
	CHECK(pthread_create(&s.th, NULL, srv_loop, &s) == 0);
	c = ctx_with("client", spec ? spec : "lo:0", spec ? WP_SELECT_REQUIRE : WP_SELECT_PREFER);
	ep = client_connect(c, s.path, s.port, &w, NULL, NULL);
	echo_calls(c, ep);
	ex = wp_ctx_explain(c);
	printf("%s\n", ex);
	if (spec) {
		unsigned long long cqes = 0, bytes = 0, back = 0;
		const char *p = strstr(ex, "multishot RECV_ZC (");

		CHECK(p != NULL);
		p = strstr(p, "; ");
		CHECK(p && sscanf(p, "; %llu CQEs, %llu bytes, %llu chunks given back", &cqes,
				  &bytes, &back) == 3);
		CHECK(cqes > 0 && bytes > 0);
		CHECK_EQ(back, cqes); /* every chunk went back to the kernel */
	} else if (lo->ok) {
		CHECK(strstr(ex, "multishot RECV_ZC (") != NULL);
	} else {
		CHECK(strstr(ex, "zero-copy receive refused (") != NULL);
		CHECK(strstr(ex, strerror(lo->err)) != NULL);
	}
	wp_ep_close(ep);
	wp_ctx_destroy(c);
	srv_stop(&s);
	printf("ok\n");
	return 0;
}
