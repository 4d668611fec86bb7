// SPDX-License-Identifier: MIT
/*
 * The process log hook (wp_set_log): it returns the previous hook, filters
 * by level, is where a context without its own callback logs, and may be
 * swapped while other threads log: once wp_set_log returns, the previous
 * hook is never called again (its arg may be freed).
 */
#include <pthread.h>
#include <unistd.h>
#include <stdatomic.h>

#include "testlib.h"
#include "wirepath/policy.h"
#include "core/core.h"

struct sink {
	atomic_int calls;
	atomic_int retired; /* set once replaced: a call after that is a bug */
	atomic_int late;
	atomic_int last_level; /* hooks run concurrently: atomics only */
};

static void sink_fn(void *arg, enum wp_log_level level, const char *msg)
{
	struct sink *s = arg;

	if (atomic_load(&s->retired))
		atomic_fetch_add(&s->late, 1);
	atomic_fetch_add(&s->calls, 1);
	atomic_store(&s->last_level, (int)level);
}

static void sink_fn2(void *arg, enum wp_log_level level, const char *msg)
{
	sink_fn(arg, level, msg);
}

static void test_basics(void)
{
	struct sink a = { 0 }, own = { 0 };
	struct wp_ctx_opts o;
	struct wp_ctx *ctx;
	struct wp_policy *p;

	wp_set_log(NULL, NULL, WP_LOG_ERR);
	CHECK(wp_set_log(sink_fn, &a, WP_LOG_WARN) == NULL);
	CHECK(wp_set_log(sink_fn, &a, WP_LOG_WARN) == sink_fn);

	/* A call without a context logs here, at ERR. */
	CHECK_EQ(wp_policy_parse("x", "bogus\n", 6, &p), -EINVAL);
	CHECK_EQ(atomic_load(&a.calls), 1);
	CHECK_EQ(atomic_load(&a.last_level), WP_LOG_ERR);

	/* Filtered by the hook's level. */
	wp_log_global(WP_LOG_INFO, "dropped");
	wp_log_global(WP_LOG_WARN, "kept");
	CHECK_EQ(atomic_load(&a.calls), 2);

	/* A context without a callback falls back to the hook; one with a
	 * callback keeps its own. */
	CHECK_EQ(wp_ctx_create(NULL, &ctx), 0);
	wp_log(ctx, WP_LOG_ERR, "to the hook");
	CHECK_EQ(atomic_load(&a.calls), 3);
	wp_ctx_destroy(ctx);
	wp_ctx_opts_init(&o);
	o.log = sink_fn;
	o.log_arg = &own;
	CHECK_EQ(wp_ctx_create(&o, &ctx), 0);
	wp_log(ctx, WP_LOG_ERR, "to the context");
	CHECK_EQ(atomic_load(&own.calls), 1);
	CHECK_EQ(atomic_load(&a.calls), 3);
	wp_ctx_destroy(ctx);

	/* NULL discards. */
	CHECK(wp_set_log(NULL, NULL, WP_LOG_DEBUG) == sink_fn);
	wp_log_global(WP_LOG_ERR, "nowhere");
	CHECK_EQ(atomic_load(&a.calls), 3);
	printf("ok   basics: previous returned, level filter, context fallback, NULL discards\n");
}

static atomic_int stop;

static void *logger(void *arg)
{
	struct wp_policy *p;

	while (!atomic_load(&stop))
		CHECK_EQ(wp_policy_parse("t", "bogus\n", 6, &p), -EINVAL);
	return NULL;
}

static void test_threads(void)
{
	static struct sink s[64];
	pthread_t th[4];
	int total = 0;

	memset(s, 0, sizeof(s));
	wp_set_log(sink_fn, &s[0], WP_LOG_ERR);
	for (int i = 0; i < 4; i++)
		CHECK_EQ(pthread_create(&th[i], NULL, logger, NULL), 0);
	for (int i = 1; i < 64; i++) {
		usleep(1000);
		/* Alternate functions too: fn and arg change as one value. */
		wp_set_log(i & 1 ? sink_fn2 : sink_fn, &s[i], WP_LOG_ERR);
		atomic_store(&s[i - 1].retired, 1);
	}
	usleep(1000);
	atomic_store(&stop, 1);
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	wp_set_log(NULL, NULL, WP_LOG_ERR);
	for (int i = 0; i < 64; i++) {
		CHECK_EQ(atomic_load(&s[i].late), 0);
		total += atomic_load(&s[i].calls);
	}
	CHECK(total > 0);
	printf("ok   threads: %d lines from 4 threads across 63 swaps, none to a replaced hook\n",
	       total);
}

/* ---- rate-limited lines (wp_log_rl: issue 12) ------------------------ */

static char rl_last[WP_LOG_LINE_MAX];
static int rl_lines;

static void rl_sink(void *arg, enum wp_log_level level, const char *msg)
{
	snprintf(rl_last, sizeof(rl_last), "%s", msg);
	rl_lines++;
}

static void test_ratelimit(void)
{
	struct wp_meter_snap m0, m1;
	struct wp_ctx_opts o;
	struct wp_ctx *ctx;
	uint64_t end;

	wp_ctx_opts_init(&o);
	o.log = rl_sink;
	CHECK_EQ(wp_ctx_create(&o, &ctx), 0);
	wp_meter_snapshot(&m0);
	/* A flood within one interval: the first line goes, the rest are
	 * counted. */
	for (int i = 0; i < 10000; i++)
		wp_log_rl(ctx, WP_RL_ACCEPT, WP_LOG_WARN, "accept: %s", "Too many open files");
	CHECK_EQ(rl_lines, 1);
	CHECK(!strcmp(rl_last, "accept: Too many open files"));
	/* Another key has its own interval. */
	wp_log_rl(ctx, WP_RL_TIMEOUT, WP_LOG_WARN, "timeout");
	CHECK_EQ(rl_lines, 2);
	wp_meter_snapshot(&m1);
	CHECK_EQ(m1.log_suppressed - m0.log_suppressed, 9999);
	/* After the interval, the next line says how many were dropped. */
	end = wp_now_ns() + 1100000000ull;
	while (wp_now_ns() < end)
		usleep(50000);
	wp_log_rl(ctx, WP_RL_ACCEPT, WP_LOG_WARN, "accept: %s", "Too many open files");
	CHECK_EQ(rl_lines, 3);
	CHECK(!strcmp(rl_last, "accept: Too many open files (9999 more suppressed)"));
	wp_ctx_destroy(ctx);
	printf("ok   ratelimit: one line per second per key, then the count of those dropped\n");
}

int main(void)
{
	test_watchdog(60);
	test_basics();
	test_threads();
	test_ratelimit();
	printf("PASS test_log\n");
	return 0;
}
