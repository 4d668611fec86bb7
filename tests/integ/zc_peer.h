/* SPDX-License-Identifier: MIT */
/*
 * The pieces test_tcp_zc.c and test_tcp_zc_nobufs.c share: a receiver that
 * checks every message's bytes against the pattern its method names, and a
 * sender whose buffers are poisoned the moment their completion runs and
 * whose completions are checked against the kernel's notifications.
 */
#ifndef WP_ZC_PEER_H
#define WP_ZC_PEER_H

#include <stdbool.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#define M_VERDICT 9
#define ZC_T 8192u /* the threshold these tests run with */
#define BUF_MAX (256u << 10)

/* The payload of message `seed`: len bytes of test_fill(seed). */
static uint32_t zc_len(uint32_t seed)
{
	static const uint32_t sizes[] = { ZC_T - 1, ZC_T, ZC_T + 1, 2 * ZC_T,   64u << 10,
					  BUF_MAX,  513,  100,      ZC_T + 4097 };

	return sizes[seed % (sizeof(sizes) / sizeof(sizes[0]))];
}

/* ---- receiver (server thread) ------------------------------------ */

static atomic_uint r_good, r_bad, r_count;
static atomic_int r_stall_at = -1; /* message count at which the receiver naps */
static uint8_t *r_scratch;

static void r_msg(void *arg, struct wp_ep *ep, struct wp_msg *m)
{
	uint32_t len = zc_len(m->method);

	if (m->len == len) {
		test_fill(r_scratch, len, m->method);
		if (memcmp(r_scratch, m->data, len) == 0)
			r_good++;
		else
			r_bad++;
	} else {
		r_bad++;
	}
	if ((int)++r_count == atomic_load(&r_stall_at))
		usleep(300 * 1000); /* the sender's data waits in its socket, on our pages */
}

static void r_verdict(void *arg, struct wp_call *call, struct wp_msg *req)
{
	uint32_t v[3] = { r_good, r_bad, r_count };

	wp_call_reply(call, v, sizeof(v), NULL, NULL);
}

static void r_setup(struct srv *s)
{
	CHECK(wp_rpc_register(s->ctx, M_VERDICT, r_verdict, NULL) == 0);
}

static void r_start(struct srv *s, const char *path)
{
	struct wp_ep_cbs cbs = { .msg = r_msg };

	r_scratch = malloc(BUF_MAX);
	CHECK(r_scratch != NULL);
	s->path = path;
	s->setup = r_setup;
	srv_start(s, &cbs);
}

/* ---- sender ---------------------------------------------------------- */

struct zslot {
	uint8_t *buf;
	uint32_t len;
	int busy;
	uint64_t notified_at_queue; /* zc_copied + zc_nobufs when it was queued */
};

static uint32_t s_done;
static bool s_always = true; /* every send of a large payload asks for zero copy */

/* The kernel's word so far: sends it notified (all copied on loopback:
 * zc_copied counts them) plus sends that fell back to a copy (ENOBUFS). */
static uint64_t s_notified(void)
{
	struct wp_meter_snap m;

	wp_meter_snapshot(&m);
	return m.zc_copied + m.zc_nobufs;
}

static void s_sent(void *arg, int status)
{
	struct zslot *z = arg;

	CHECK_EQ(status, 0);
	CHECK(z->busy);
	/* The ownership contract: a payload at or above the threshold goes
	 * back only after the kernel let go of it (its notification), or
	 * after it was sent by copy (ENOBUFS). Only where every such send
	 * asks (zc_always): a connection that stopped asking copies. */
	if (z->len >= ZC_T && s_always)
		CHECK(s_notified() > z->notified_at_queue);
	z->busy = 0;
	s_done++;
	memset(z->buf, 0xEE, BUF_MAX); /* poison: ours again, the library must not look */
}

static void s_queue(struct wp_ep *ep, struct zslot *z, uint32_t seed)
{
	z->len = zc_len(seed);
	test_fill(z->buf, z->len, seed);
	z->busy = 1;
	z->notified_at_queue = s_notified();
	CHECK(wp_ep_send_msg(ep, seed, z->buf, z->len, s_sent, z) == 0);
}

static uint32_t v_res[3];
static int v_done;

static void v_data(void *arg, struct wp_msg *m)
{
	CHECK(m->len == sizeof(v_res));
	memcpy(v_res, m->data, sizeof(v_res));
}

static void v_end(void *arg, int status)
{
	CHECK_EQ(status, 0);
	v_done = 1;
}

/* What the receiver saw: every message so far intact, and `total` of them
 * (UINT32_MAX: however many arrived). */
static void s_verdict(struct wp_ctx *c, struct wp_ep *ep, uint32_t total)
{
	struct wp_call_params p = { .method = M_VERDICT, .on_data = v_data, .on_done = v_end };

	v_done = 0;
	CHECK(wp_rpc_call(ep, &p, NULL) == 0);
	drive_until(c, &v_done, 20000);
	printf("receiver: good %u bad %u count %u (expected %u)\n", v_res[0], v_res[1], v_res[2],
	       total);
	CHECK_EQ(v_res[1], 0);
	CHECK_EQ(v_res[0], v_res[2]);
	if (total != UINT32_MAX)
		CHECK_EQ(v_res[2], total);
}

/* A client context for these tests: the harness's options, threshold ZC_T. */
static struct wp_ctx *zc_client(const char *path, int always)
{
	struct wp_ctx_opts o;
	struct wp_ctx *c;

	h_opts(&o, "client");
	o.zc_threshold = ZC_T;
	o.zc_always = always;
	CHECK(wp_ctx_create(&o, &c) == 0);
	return c;
}

#endif
