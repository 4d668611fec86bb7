// SPDX-License-Identifier: MIT
/*
 * One sender of `wirepath bench --workload gpufeed`, run in a process of its
 * own (forked per sender, so fan-in is real: several processes and
 * connections into one receiver). It keeps GF_BUFS payloads in flight from
 * the endpoint's own send buffers (on shm, the shared heap the receiver
 * reads in place) for the given seconds, then sends STOP with the count and
 * the sum of the payloads' kitchen checksums, which the receiver checks
 * against what the GPU summed.
 */
#include <stdint.h>
#include <string.h>

#include "bench.h"
#include "stub_proto.h"
#include "wirepath/gpu.h"

/* Payloads per sender, cycled: enough to keep the path busy. */
#define GF_BUFS 4

struct gf_tx {
	int inflight[GF_BUFS];
	int connected;
};

static void gf_tx_done(void *arg, int status)
{
	*(int *)arg = status < 0 ? -1 : 0;
}

static void gf_tx_event(void *arg, struct wp_ep *ep, enum wp_ep_event ev, int err)
{
	((struct gf_tx *)arg)->connected = ev == WP_EP_CONNECTED ? 1 : -1;
}

void bench_gf_fill(uint8_t *p, uint64_t n, uint64_t seed)
{
	uint64_t x = seed * 0x9e3779b97f4a7c15ull + 0x1234567ull;

	for (uint64_t i = 0; i + 8 <= n; i += 8) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		memcpy(p + i, &x, 8);
	}
	for (uint64_t i = n & ~7ull; i < n; i++)
		p[i] = (uint8_t)(i * 131u);
}

uint32_t bench_gf_max_frame(uint64_t size)
{
	uint64_t mf = 16u << 20;

	while (mf < size + 4096)
		mf <<= 1;
	return (uint32_t)mf;
}

int bench_gf_send(const char *uri, uint64_t size, uint32_t id, double secs)
{
	struct wp_ctx_opts o;
	struct wp_ctx *ctx;
	struct wp_ep *ep;
	struct gf_tx t = { { 0 }, 0 };
	struct wp_ep_cbs cbs = { .event = gf_tx_event, .arg = &t };
	uint8_t *buf[GF_BUFS], stop[GF_STOP_LEN];
	uint64_t sum[GF_BUFS], count = 0, total = 0, end;
	int stop_done = 1;
	uint64_t heap_mb = (GF_BUFS * size + (size >> 1)) / (1u << 20) + 16;

	wp_ctx_opts_init(&o);
	o.select = WP_SELECT_REQUIRE;
	o.max_frame = bench_gf_max_frame(size);
	o.shm_heap_mb = (uint32_t)(heap_mb > 4096 ? 4096 : heap_mb);
	if (wp_ctx_create(&o, &ctx) < 0 || wp_connect(ctx, uri, &cbs, &ep) < 0)
		return 2;
	end = wp_now_ns() + 10000000000ull;
	while (!t.connected && wp_now_ns() < end)
		wp_ctx_progress(ctx, 1000);
	if (t.connected != 1)
		return 3;
	for (int k = 0; k < GF_BUFS; k++) {
		/* In the endpoint's send buffers: on shm, the shared heap the
		 * receiver reads in place. */
		buf[k] = wp_ep_buf_alloc(ep, size);
		if (!buf[k])
			return 4;
		bench_gf_fill(buf[k], size, (uint64_t)id * 16 + (uint64_t)k);
		sum[k] = wp_gpu_kitchen_sum(buf[k], size);
	}
	end = wp_now_ns() + (uint64_t)(secs * 1e9);
	while (wp_now_ns() < end && t.connected == 1) {
		for (int k = 0; k < GF_BUFS; k++) {
			if (t.inflight[k] == 1)
				continue;
			if (t.inflight[k] < 0)
				return 5;
			t.inflight[k] = 1;
			if (wp_ep_send_msg(ep, GF_METHOD_DATA + id, buf[k], size, gf_tx_done,
					   &t.inflight[k]) < 0) {
				t.inflight[k] = 0;
				break;
			}
			count++;
			total += sum[k];
		}
		wp_ctx_progress(ctx, 1000);
	}
	for (int k = 0; k < GF_BUFS; k++)
		while (t.inflight[k] == 1 && t.connected == 1)
			wp_ctx_progress(ctx, 1000);
	wpb_put64(stop, count);
	wpb_put64(stop + 8, total);
	stop_done = 1;
	if (wp_ep_send_msg(ep, GF_METHOD_STOP + id, stop, sizeof(stop), gf_tx_done, &stop_done) < 0)
		return 6;
	while (stop_done == 1 && t.connected == 1)
		wp_ctx_progress(ctx, 1000);
	/* Everything was handed over (shm: released by the receiver; tcp,
	 * uring: accepted by the kernel, delivered before our FIN). */
	wp_ep_close(ep);
	wp_ctx_destroy(ctx);
	return 0;
}
