// SPDX-License-Identifier: MIT
/*
 * 10^5 one-way messages over a real connection, once per path, with payload
 * checksums: sizes from 0 B to 512 KiB (so frames split across reads and
 * writes go partial), sent from a pool of 64 caller buffers under the
 * ownership contract. Each buffer is poisoned the moment its completion
 * runs and only then reused: if the library touched a buffer after handing
 * it back, the receiver's checksum catches it. The receiver keeps some
 * messages beyond their callback (wp_msg_keep) and checks them later.
 */
#include "harness.h"

#define NMSG 100000u
#define POOL 64
#define M_VERDICT 9

static uint64_t rng(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static uint32_t msg_size(uint32_t i)
{
	uint64_t s = i * 0x9e3779b97f4a7c15ull + 1;
	uint64_t r = rng(&s);

	if (r % 128 == 0)
		return (uint32_t)(64 << 10) + (uint32_t)(rng(&s) % (448 << 10));
	if (r % 8 == 0)
		return (uint32_t)(rng(&s) % (16 << 10));
	return (uint32_t)(rng(&s) % 2000);
}

static void fill(uint8_t *p, uint32_t len, uint32_t i)
{
	uint64_t s = (uint64_t)i * 0x2545f4914f6cdd1dull + 7;

	for (uint32_t k = 0; k < len; k++)
		p[k] = (uint8_t)(rng(&s) >> 24);
}

/* ---- receiver (server thread) ------------------------------------ */

static uint32_t next_expected, good, bad;
static struct wp_msg *kept[16];
static uint32_t kept_idx[16];
static int nkept;
static uint8_t *scratch;

static void check_one(const struct wp_msg *m, uint32_t i)
{
	if (m->len != msg_size(i)) {
		bad++;
		return;
	}
	fill(scratch, m->len, i);
	if (memcmp(scratch, m->data, m->len) == 0)
		good++;
	else
		bad++;
}

static void on_msg(void *arg, struct wp_ep *ep, struct wp_msg *m)
{
	uint32_t i = m->method;

	if (i != next_expected++)
		bad++;
	if (i % 997 == 0 && nkept < 16) {
		kept_idx[nkept] = i;
		kept[nkept++] = wp_msg_keep(m); /* checked after many more messages */
		return;
	}
	check_one(m, i);
	if (nkept == 16 || i == NMSG - 1) {
		for (int k = 0; k < nkept; k++) {
			check_one(kept[k], kept_idx[k]);
			wp_msg_release(kept[k]);
		}
		nkept = 0;
	}
}

static void h_verdict(void *arg, struct wp_call *call, struct wp_msg *req)
{
	uint32_t v[3] = { good, bad, next_expected };

	wp_call_reply(call, v, sizeof(v), NULL, NULL);
}

static void srv_setup(struct srv *s)
{
	CHECK(wp_rpc_register(s->ctx, M_VERDICT, h_verdict, NULL) == 0);
}

/* ---- sender --------------------------------------------------------- */

struct slot {
	uint8_t *buf;
	int busy;
};
static struct slot pool[POOL];
static uint32_t done_calls;

static void sent(void *arg, int status)
{
	struct slot *s = arg;

	CHECK(status == 0);
	CHECK(s->busy);
	s->busy = 0;
	done_calls++;
	memset(s->buf, 0xEE, 512 << 10); /* poison: ours again, the library must not look */
}

static uint32_t verdict[3];
static int verdict_done;

static void on_v(void *arg, struct wp_msg *m)
{
	CHECK(m->len == sizeof(verdict));
	memcpy(verdict, m->data, sizeof(verdict));
}

static void on_vdone(void *arg, int status)
{
	CHECK(status == 0);
	verdict_done = 1;
}

int main(int argc, char **argv)
{
	static struct srv s;
	struct conn_wait w = { 0 };
	struct wp_ctx *c;
	struct wp_ep *ep;
	struct wp_meter_snap m0, m1, d;
	uint32_t i = 0;

	test_watchdog(150);
	scratch = malloc(512 << 10);
	for (int k = 0; k < POOL; k++)
		pool[k].buf = malloc(512 << 10);
	s.path = test_path(argc, argv);
	s.setup = srv_setup;
	{
		struct wp_ep_cbs cbs = { .msg = on_msg };

		srv_start(&s, &cbs);
	}
	c = client_ctx(s.path);
	ep = client_connect(c, s.path, s.port, &w, NULL, NULL);
	wp_meter_snapshot(&m0);

	while (i < NMSG) {
		int k, queued = 0;

		for (k = 0; k < POOL && i < NMSG; k++) {
			uint32_t len;

			if (pool[k].busy)
				continue;
			len = msg_size(i);
			fill(pool[k].buf, len, i);
			pool[k].busy = 1;
			CHECK(wp_ep_send_msg(ep, i, pool[k].buf, len, sent, &pool[k]) == 0);
			i++;
			queued++;
		}
		CHECK(wp_ctx_progress(c, queued ? 0 : 1000) >= 0);
		CHECK(!w.closed);
	}
	while (done_calls < NMSG)
		CHECK(wp_ctx_progress(c, 1000) >= 0);

	{
		struct wp_call_params p = { .method = M_VERDICT,
					    .on_data = on_v,
					    .on_done = on_vdone };

		CHECK(wp_rpc_call(ep, &p, NULL) == 0);
		drive_until(c, &verdict_done, 10000);
	}
	wp_meter_snapshot(&m1);
	wp_meter_diff(&m0, &m1, &d);
	printf("%s: good %u bad %u received %u; zc sent %llu copied %llu\n", s.path, verdict[0],
	       verdict[1], verdict[2], (unsigned long long)d.zc_sent,
	       (unsigned long long)d.zc_copied);
	CHECK_EQ(verdict[1], 0);
	CHECK_EQ(verdict[0], NMSG);
	CHECK_EQ(verdict[2], NMSG);
	CHECK_EQ(done_calls, NMSG);
	wp_ep_close(ep);
	wp_ctx_destroy(c);
	srv_stop(&s);
	for (int k = 0; k < POOL; k++)
		free(pool[k].buf);
	free(scratch);
	return 0;
}
