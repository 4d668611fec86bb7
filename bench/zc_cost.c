// SPDX-License-Identifier: MIT
/*
 * What MSG_ZEROCOPY costs or saves on the tcp path, per payload size: one
 * sender and one receiver thread (each its own context), one-way messages of
 * SIZE bytes from DEPTH caller buffers reused at their completion, for SECS
 * seconds per size and mode: zc (zc_threshold = SIZE, zc_always: keep
 * asking even where the kernel copies) and copy (zc_threshold never). Per
 * row: GB/s, and each thread's CPU (CLOCK_THREAD_CPUTIME_ID: user + the
 * system calls it made; softirq work the kernel does elsewhere is not in
 * it) in ns per KiB, with the meter's zc sent/copied. One JSON object per
 * row on stdout. bench/zc/run.sh runs it on loopback and across a veth
 * pair between two network namespaces (docs/performance.md).
 *
 * Usage: zc_cost [--ns SENDER_NS,RECEIVER_NS] [--addr IP] [--secs S]
 *                [--depth N] [SIZE...]
 * Namespaces are names under /var/run/netns (ip netns add); each thread
 * joins its own (setns is per thread for the network namespace).
 */

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "wirepath/wirepath.h"

static const char *g_addr = "127.0.0.1";
static char g_sns[64], g_rns[64];
static double g_secs = 1.0;
static int g_depth = 8;

static uint64_t thread_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void join_ns(const char *name)
{
	char p[128];
	int fd;

	if (!name[0])
		return;
	snprintf(p, sizeof(p), "/var/run/netns/%s", name);
	fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || setns(fd, CLONE_NEWNET) < 0) {
		fprintf(stderr, "zc_cost: cannot join network namespace %s: %s\n", name,
			strerror(errno));
		exit(2);
	}
	close(fd);
}

/* ---- receiver --------------------------------------------------------- */

static struct {
	atomic_int port;  /* listening port, once up */
	atomic_int cmd;   /* 1: mark start, 2: mark end, 3: quit */
	atomic_int acked; /* the last command done */
	uint64_t bytes, cpu0, cpu1, b0, b1;
} R;

static void r_msg(void *arg, struct wp_ep *ep, struct wp_msg *m)
{
	R.bytes += m->len;
}

static void *r_main(void *arg)
{
	struct wp_ctx_opts o;
	struct wp_ctx *ctx;
	struct wp_ep_cbs cbs = { .msg = r_msg };
	struct wp_ep *l;
	char uri[96];

	join_ns(g_rns);
	wp_ctx_opts_init(&o);
	o.select = WP_SELECT_REQUIRE;
	if (wp_ctx_create(&o, &ctx) < 0)
		exit(2);
	snprintf(uri, sizeof(uri), "tcp://%s:0", g_addr);
	if (wp_listen(ctx, uri, &cbs, &l) < 0) {
		fprintf(stderr, "zc_cost: cannot listen on %s\n", uri);
		exit(2);
	}
	atomic_store(&R.port, wp_ep_local_port(l));
	for (;;) {
		int c = atomic_load(&R.cmd);

		if (c != atomic_load(&R.acked)) {
			if (c == 1) {
				R.cpu0 = thread_cpu_ns();
				R.b0 = R.bytes;
			} else if (c == 2) {
				R.cpu1 = thread_cpu_ns();
				R.b1 = R.bytes;
			}
			atomic_store(&R.acked, c);
			if (c == 3)
				break;
		}
		wp_ctx_progress(ctx, 1000);
	}
	wp_ctx_destroy(ctx);
	return NULL;
}

static void r_cmd(int c)
{
	atomic_store(&R.cmd, c);
	while (atomic_load(&R.acked) != c)
		usleep(100);
}

/* ---- sender ----------------------------------------------------------- */

struct buf {
	uint8_t *p;
	int busy;
};

static void s_done(void *arg, int status)
{
	((struct buf *)arg)->busy = 0;
}

static void s_event(void *arg, struct wp_ep *ep, enum wp_ep_event ev, int err)
{
	*(int *)arg = ev == WP_EP_CONNECTED ? 1 : -1;
}

static void run(size_t size, bool zc)
{
	struct wp_ctx_opts o;
	struct wp_ctx *ctx;
	int up = 0;
	struct wp_ep_cbs cbs = { .event = s_event, .arg = &up };
	struct wp_ep *ep;
	struct wp_meter_snap m0, m1;
	struct buf *bufs = calloc((size_t)g_depth, sizeof(*bufs));
	uint64_t t0, t1, c0, c1, warm_end, end, sent = 0;
	char uri[96];
	bool measuring = false;

	wp_ctx_opts_init(&o);
	o.select = WP_SELECT_REQUIRE;
	o.zc_threshold = zc ? (uint32_t)size : UINT32_MAX;
	o.zc_always = 1;
	if (!bufs || wp_ctx_create(&o, &ctx) < 0)
		exit(2);
	for (int i = 0; i < g_depth; i++)
		if (!(bufs[i].p = malloc(size)) || !memset(bufs[i].p, i, size))
			exit(2);
	snprintf(uri, sizeof(uri), "tcp://%s:%d", g_addr, atomic_load(&R.port));
	if (wp_connect(ctx, uri, &cbs, &ep) < 0)
		exit(2);
	while (!up)
		wp_ctx_progress(ctx, 1000);
	if (up < 0) {
		fprintf(stderr, "zc_cost: cannot connect to %s\n", uri);
		exit(2);
	}
	t0 = wp_now_ns();
	warm_end = t0 + 200000000ull; /* 0.2 s warm-up */
	end = warm_end + (uint64_t)(g_secs * 1e9);
	c0 = t0 = 0;
	memset(&m0, 0, sizeof(m0));
	for (;;) {
		uint64_t now = wp_now_ns();

		if (!measuring && now >= warm_end) {
			measuring = true;
			r_cmd(1);
			wp_meter_snapshot(&m0);
			c0 = thread_cpu_ns();
			t0 = now;
			sent = 0;
		}
		int queued = 0;

		if (now >= end)
			break;
		for (int i = 0; i < g_depth; i++) {
			if (bufs[i].busy)
				continue;
			bufs[i].busy = 1;
			if (wp_ep_send_msg(ep, 1, bufs[i].p, size, s_done, &bufs[i]) < 0)
				exit(3);
			sent += size;
			queued++;
		}
		/* Sleep only while every buffer is the kernel's (or the socket's
		 * buffer is full): a copied send's buffer is free at the end of
		 * the round that wrote it, and nothing else would wake us. */
		wp_ctx_progress(ctx, queued ? 0 : 1000);
	}
	c1 = thread_cpu_ns();
	t1 = wp_now_ns();
	wp_meter_snapshot(&m1);
	r_cmd(2);
	printf("{\"size\":%zu,\"mode\":\"%s\",\"gb_per_s\":%.3f,\"sender_ns_per_kib\":%.1f,"
	       "\"receiver_ns_per_kib\":%.1f,\"zc_sent\":%llu,\"zc_copied\":%llu,"
	       "\"zc_nobufs\":%llu}\n",
	       size, zc ? "zc" : "copy", (double)sent / (double)(t1 - t0),
	       (double)(c1 - c0) * 1024.0 / (double)sent,
	       (double)(R.cpu1 - R.cpu0) * 1024.0 / (double)(R.b1 - R.b0 ? R.b1 - R.b0 : 1),
	       (unsigned long long)(m1.zc_sent - m0.zc_sent),
	       (unsigned long long)(m1.zc_copied - m0.zc_copied),
	       (unsigned long long)(m1.zc_nobufs - m0.zc_nobufs));
	fflush(stdout);
	wp_ep_close(ep);
	wp_ctx_destroy(ctx);
	for (int i = 0; i < g_depth; i++)
		free(bufs[i].p);
	free(bufs);
}

/* A peer that never answers (a namespace gone, a connect that never
 * completes) must not hang a benchmark script: the whole run has a bound. */
static void on_alarm(int sig)
{
	static const char msg[] = "zc_cost: timed out (a connection or the receiver stalled)\n";

	(void)sig;
	if (write(2, msg, sizeof(msg) - 1) < 0) {
		/* nothing more to say */
	}
	_exit(4);
}

int main(int argc, char **argv)
{
	static const size_t dflt[] = { 4096, 8192, 16384, 32768, 65536, 262144, 1048576 };
	size_t sizes[32];
	int nsizes = 0;
	pthread_t th;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--ns") && i + 1 < argc) {
			const char *a = argv[++i], *comma = strchr(a, ',');

			if (!comma) {
				fprintf(stderr, "zc_cost: --ns SENDER_NS,RECEIVER_NS\n");
				return 2;
			}
			snprintf(g_sns, sizeof(g_sns), "%.*s", (int)(comma - a), a);
			snprintf(g_rns, sizeof(g_rns), "%s", comma + 1);
		} else if (!strcmp(argv[i], "--addr") && i + 1 < argc) {
			g_addr = argv[++i];
		} else if (!strcmp(argv[i], "--secs") && i + 1 < argc) {
			g_secs = atof(argv[++i]);
		} else if (!strcmp(argv[i], "--depth") && i + 1 < argc) {
			g_depth = atoi(argv[++i]);
		} else if (argv[i][0] != '-' && nsizes < 32) {
			sizes[nsizes++] = (size_t)strtoull(argv[i], NULL, 0);
		} else {
			fprintf(stderr, "usage: zc_cost [--ns SENDER_NS,RECEIVER_NS] [--addr IP] "
					"[--secs S] [--depth N] [SIZE...]\n");
			return 2;
		}
	}
	if (g_depth < 1 || g_depth > 1024 || g_secs <= 0) {
		fprintf(stderr, "zc_cost: --depth 1..1024, --secs > 0\n");
		return 2;
	}
	if (!nsizes)
		for (size_t i = 0; i < sizeof(dflt) / sizeof(dflt[0]); i++)
			sizes[nsizes++] = dflt[i];
	for (int i = 0; i < nsizes; i++)
		if (sizes[i] < 513 || sizes[i] > (16u << 20)) {
			fprintf(stderr,
				"zc_cost: sizes 513 B..16 MiB (smaller payloads are staged)\n");
			return 2;
		}
	signal(SIGALRM, on_alarm);
	alarm(30 + (unsigned)(nsizes * 2 * (g_secs + 0.5)));
	join_ns(g_sns);
	if (pthread_create(&th, NULL, r_main, NULL))
		return 2;
	while (!atomic_load(&R.port))
		usleep(1000);
	for (int i = 0; i < nsizes; i++) {
		run(sizes[i], false);
		run(sizes[i], true);
	}
	r_cmd(3);
	pthread_join(th, NULL);
	return 0;
}
