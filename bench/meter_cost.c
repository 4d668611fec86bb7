// SPDX-License-Identifier: MIT
/*
 * What the always-on meter costs: ns per WP_CNT_ADD (the counter bump every
 * data-path operation pays), per wp_hist_add (one latency sample), and per
 * wp_meter_snapshot (with one and with 64 counting threads, and with kernel
 * syscall counting on, if it can be started). Prints one JSON object.
 *
 * Usage: meter_cost [ITERS]   (default 100000000; snapshots run ITERS/1000)
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wirepath/wirepath.h"
#include "meter/counters.h"

#define N_VALS 4096 /* power of two: index with a mask */
#define N_THREADS 64

static double per_op(uint64_t t0, uint64_t t1, uint64_t n)
{
	return (double)(t1 - t0) / (double)n;
}

static double bench_cnt_add(uint64_t iters)
{
	uint64_t t0;

	WP_CNT_ADD(msgs_tx, 1); /* attach outside the timed loop */
	t0 = wp_now_ns();
	for (uint64_t i = 0; i < iters; i++)
		WP_CNT_ADD(msgs_tx, 1);
	return per_op(t0, wp_now_ns(), iters);
}

static double bench_hist_add(uint64_t iters)
{
	static struct wp_hist h;
	static uint64_t vals[N_VALS];
	uint64_t x = 88172645463325252ull, t0;

	/* Latency-like values from 100 ns to ~1 s, spread over many buckets. */
	for (int i = 0; i < N_VALS; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		vals[i] = 100 + (x >> (34 + x % 30));
	}
	wp_hist_init(&h);
	t0 = wp_now_ns();
	for (uint64_t i = 0; i < iters; i++)
		wp_hist_add(&h, vals[i & (N_VALS - 1)]);
	t0 = wp_now_ns() - t0;
	/* Keep the histogram observable so the loop cannot be dropped. */
	if (h.count != iters)
		fprintf(stderr, "meter_cost: histogram lost samples\n");
	return (double)t0 / (double)iters;
}

static double bench_snapshot(uint64_t iters)
{
	struct wp_meter_snap s;
	uint64_t t0;

	wp_meter_snapshot(&s);
	t0 = wp_now_ns();
	for (uint64_t i = 0; i < iters; i++)
		wp_meter_snapshot(&s);
	return per_op(t0, wp_now_ns(), iters);
}

static pthread_barrier_t hold;

/* Owns a live counter block until released, so the snapshot has to sum it. */
static void *idle_counter(void *arg)
{
	WP_CNT_ADD(msgs_rx, 1);
	pthread_barrier_wait(&hold);
	pthread_barrier_wait(&hold);
	return NULL;
}

int main(int argc, char **argv)
{
	uint64_t iters = argc > 1 ? strtoull(argv[1], NULL, 0) : 100000000ull;
	uint64_t snap_iters;
	double cnt_ns, hist_ns, snap_ns, snap_many_ns, snap_kern_ns = -1;
	pthread_t t[N_THREADS - 1];
	int kerr;

	if (!iters) {
		fprintf(stderr, "usage: meter_cost [ITERS>0]\n");
		return 2;
	}
	snap_iters = iters / 1000 ? iters / 1000 : 1;

	cnt_ns = bench_cnt_add(iters);
	hist_ns = bench_hist_add(iters);
	snap_ns = bench_snapshot(snap_iters);

	if (pthread_barrier_init(&hold, NULL, N_THREADS) != 0) {
		fprintf(stderr, "meter_cost: pthread_barrier_init failed\n");
		return 1;
	}
	for (int i = 0; i < N_THREADS - 1; i++) {
		if (pthread_create(&t[i], NULL, idle_counter, NULL) != 0) {
			fprintf(stderr, "meter_cost: pthread_create failed\n");
			return 1;
		}
	}
	pthread_barrier_wait(&hold);
	snap_many_ns = bench_snapshot(snap_iters);
	pthread_barrier_wait(&hold);
	for (int i = 0; i < N_THREADS - 1; i++)
		pthread_join(t[i], NULL);

	/* Last: once on, the tracepoint also slows every later syscall. */
	kerr = wp_meter_kernel_syscalls_start();
	if (kerr == 0)
		snap_kern_ns = bench_snapshot(snap_iters);

	printf("{\"bench\":\"meter_cost\",\"version\":\"%s\",\"iters\":%" PRIu64
	       ",\"cnt_add_ns\":%.3f,\"hist_add_ns\":%.3f"
	       ",\"snapshot_iters\":%" PRIu64 ",\"snapshot_ns\":%.1f"
	       ",\"snapshot_threads\":%d,\"snapshot_many_threads_ns\":%.1f"
	       ",\"kernel_syscalls\":{\"ok\":%s,\"error\":\"%s\"}",
	       wp_version(), iters, cnt_ns, hist_ns, snap_iters, snap_ns, N_THREADS, snap_many_ns,
	       kerr ? "false" : "true", kerr ? strerror(-kerr) : "");
	if (kerr == 0)
		printf(",\"snapshot_kernel_ns\":%.1f", snap_kern_ns);
	printf("}\n");
	return 0;
}
