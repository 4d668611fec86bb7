// SPDX-License-Identifier: MIT
/*
 * The RPC round trip over one path, measured the way ucx_perftest measures
 * ucp_am_lat: one call in flight, the next sent from the previous answer,
 * after a warm-up. Against a `wirepath serve` (its tool method, 1: a request
 * of [u32 resp_size][u32 service_us], an answer of resp_size bytes), with
 * the public API only. bench/ucx/run.sh runs it next to ucx_perftest across
 * two network namespaces (docs/performance.md, "ucx").
 *
 * Usage: ucx_rtt URI [N (default 20000)] [RESP_BYTES (default 64)] [--busy-poll]
 * Prints one JSON line: calls, RTT p50 / p99 / mean in us, CPU us per call,
 * and the path's explain string.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "wirepath/wirepath.h"

struct st {
	struct wp_ep *ep;
	uint32_t req[2];
	uint64_t n, done, t0;
	uint64_t *rtt;
	int up, fail;
};

static void send_next(struct st *s);

static void on_done(void *arg, int status)
{
	struct st *s = arg;

	if (status) {
		fprintf(stderr, "ucx_rtt: call failed: %s\n", strerror(-status));
		s->fail = 1;
		return;
	}
	s->rtt[s->done++] = wp_now_ns() - s->t0;
	if (s->done < s->n)
		send_next(s);
}

static void on_data(void *arg, struct wp_msg *m)
{
}

static void send_next(struct st *s)
{
	struct wp_call_params p = { .method = 1,
				    .req = s->req,
				    .req_len = sizeof(s->req),
				    .on_data = on_data,
				    .on_done = on_done,
				    .arg = s };

	s->t0 = wp_now_ns();
	if (wp_rpc_call(s->ep, &p, NULL) < 0)
		s->fail = 1;
}

static void on_event(void *arg, struct wp_ep *ep, enum wp_ep_event ev, int err)
{
	struct st *s = arg;

	if (ev == WP_EP_CONNECTED)
		s->up = 1;
	else
		s->fail = 1;
}

static int cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static double cpu_us(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_utime.tv_sec * 1e6 + ru.ru_utime.tv_usec + ru.ru_stime.tv_sec * 1e6 +
	       ru.ru_stime.tv_usec;
}

int main(int argc, char **argv)
{
	struct wp_ctx_opts o;
	struct wp_ctx *ctx;
	struct st s = { 0 };
	struct wp_ep_cbs cbs = { .event = on_event, .arg = &s };
	uint64_t warm = 2000, sum = 0;
	double c0, c1;
	int busy = argc > 4 && !strcmp(argv[4], "--busy-poll");

	if (argc < 2) {
		fprintf(stderr, "usage: ucx_rtt URI [N] [RESP_BYTES] [--busy-poll]\n");
		return 2;
	}
	s.n = argc > 2 ? strtoull(argv[2], NULL, 0) : 20000;
	s.req[0] = argc > 3 ? (uint32_t)strtoul(argv[3], NULL, 0) : 64;
	if (!s.n) {
		fprintf(stderr, "ucx_rtt: N must be positive\n");
		return 2;
	}
	s.rtt = calloc(s.n + warm, sizeof(*s.rtt));
	wp_ctx_opts_init(&o);
	o.select = WP_SELECT_REQUIRE;
	o.busy_poll = busy;
	if (!s.rtt || wp_ctx_create(&o, &ctx) < 0 || wp_connect(ctx, argv[1], &cbs, &s.ep) < 0) {
		fprintf(stderr, "ucx_rtt: cannot connect to %s\n", argv[1]);
		return 1;
	}
	while (!s.up && !s.fail)
		wp_ctx_progress(ctx, 1000);
	/* Warm-up, then the measured calls. */
	s.n = warm;
	send_next(&s);
	while (s.done < s.n && !s.fail)
		wp_ctx_progress(ctx, 1000);
	s.n = argc > 2 ? strtoull(argv[2], NULL, 0) : 20000;
	s.done = 0;
	c0 = cpu_us();
	send_next(&s);
	while (s.done < s.n && !s.fail)
		wp_ctx_progress(ctx, 1000);
	c1 = cpu_us();
	if (s.fail)
		return 1;
	for (uint64_t i = 0; i < s.n; i++)
		sum += s.rtt[i];
	qsort(s.rtt, s.n, sizeof(*s.rtt), cmp);
	printf("{\"uri\": \"%s\", \"calls\": %llu, \"resp_bytes\": %u, \"busy_poll\": %d, "
	       "\"rtt_us_p50\": %.2f, \"rtt_us_p99\": %.2f, \"rtt_us_mean\": %.2f, "
	       "\"client_cpu_us_per_call\": %.2f, \"explain\": \"%s\"}\n",
	       argv[1], (unsigned long long)s.n, s.req[0], busy, s.rtt[s.n / 2] / 1e3,
	       s.rtt[s.n * 99 / 100] / 1e3, sum / 1e3 / s.n, (c1 - c0) / s.n, wp_ctx_explain(ctx));
	wp_ctx_destroy(ctx);
	free(s.rtt);
	return 0;
}
