// SPDX-License-Identifier: MIT
/*
 * The GPU feed on a real CUDA device: every mode delivers payloads of every
 * size class (batched 4 KiB, staged and in-place MiB-sized, mapped control
 * payloads) and the kitchen kernel's checksum, computed on the GPU, must
 * equal the host reference the sender computed. Then the same through the
 * network: messages received over shm (in place from the peer's heap, which
 * the feed registered: zero host copies) and over tcp, fed to the GPU from
 * inside their receive callbacks.
 *
 * Skips (77) when setup finds no GPU: a build without CUDA, or
 * cudaGetDeviceCount failing or finding no device. Runs once (not per path:
 * it opens the paths it needs itself).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "testlib.h"
#include "wirepath/gpu.h"

struct got {
	uint32_t n, bad, errs;
	uint64_t host_copies;
	const uint64_t *want; /* by tag */
};

static void on_done(void *arg, const struct wp_gpu_done *d);

static struct got G;

static void on_done(void *arg, const struct wp_gpu_done *d)
{
	uintptr_t tag = (uintptr_t)arg;

	G.n++;
	G.host_copies += d->host_copies;
	if (d->status) {
		fprintf(stderr, "payload %zu: status %d\n", (size_t)tag, d->status);
		G.errs++;
	} else if (!d->summed || d->gpu_sum != G.want[tag]) {
		fprintf(stderr,
			"payload %zu (%llu B, mode %s): GPU checksum %016llx, sender's "
			"%016llx\n",
			(size_t)tag, (unsigned long long)d->len, wp_gpu_mode_name(d->mode),
			(unsigned long long)d->gpu_sum, (unsigned long long)G.want[tag]);
		G.bad++;
	}
}

static void wait_all(struct wp_ctx *ctx, uint32_t n)
{
	uint64_t end = wp_now_ns() + 30000000000ull;

	while (G.n < n && wp_now_ns() < end)
		wp_ctx_progress(ctx, 1000);
	CHECK_EQ(G.n, n);
	CHECK_EQ(G.errs, 0);
	CHECK_EQ(G.bad, 0);
}

/* Submit, progressing through back-pressure. */
static void put(struct wp_ctx *ctx, struct wp_gpu_feed *f, const void *p, size_t len, uintptr_t tag)
{
	int r;

	while ((r = wp_gpu_feed_submit(f, p, len, on_done, (void *)tag)) == -EAGAIN ||
	       r == -ENOBUFS)
		wp_ctx_progress(ctx, 100);
	CHECK_EQ(r, 0);
}

static void run_mode(struct wp_ctx *ctx, enum wp_gpu_mode m)
{
	static uint64_t want[512];
	struct wp_gpu_opts o;
	struct wp_gpu_feed *f;
	struct wp_gpu_stats st;
	size_t big = 16u << 20, mid = 1u << 20;
	uint8_t *heap = malloc(big), *small = malloc(256 * 4096), *pin;
	uint32_t n = 0;

	CHECK(heap && small);
	wp_gpu_opts_init(&o);
	o.mode = m;
	CHECK_EQ(wp_gpu_feed_open(ctx, &o, &f), 0);
	printf("%s\n", wp_gpu_feed_explain(f));
	memset(&G, 0, sizeof(G));
	G.want = want;
	test_fill(heap, big, 1 + m);
	test_fill(small, 256 * 4096, 2 + m);
	pin = wp_gpu_host_alloc(f, big);
	CHECK(pin);
	test_fill(pin, big, 3 + m);

	/* 256 x 4 KiB: batched (pinned, mapped) or one copy each (pageable). */
	for (uint32_t i = 0; i < 256; i++, n++) {
		want[n] = wp_gpu_kitchen_sum(small + i * 4096, 4096 - i);
		put(ctx, f, small + i * 4096, 4096 - i, n);
	}
	/* Registered pinned memory, read in place (mapped: small pieces). */
	for (uint32_t i = 0; i < 8; i++, n++) {
		size_t len = m == WP_GPU_MAPPED ? 4000 + i : mid + i * 4099;

		want[n] = wp_gpu_kitchen_sum(pin + i * 8192, len);
		put(ctx, f, pin + i * 8192, len, n);
	}
	if (m != WP_GPU_MAPPED) {
		/* Unregistered MiB-sized payloads: staged (pinned) or bounced
		 * (pageable). */
		want[n] = wp_gpu_kitchen_sum(heap, big);
		put(ctx, f, heap, big, n++);
		want[n] = wp_gpu_kitchen_sum(heap + 3, mid + 5);
		put(ctx, f, heap + 3, mid + 5, n++);
	}
	wait_all(ctx, n);
	wp_gpu_feed_stats(f, &st);
	printf("  %s: %u payloads verified on the GPU; %llu B host-copied, %llu in place, "
	       "%llu mapped, %llu copies, %llu batches, %llu kernels\n",
	       wp_gpu_mode_name(m), n, (unsigned long long)st.host_copied,
	       (unsigned long long)st.direct_bytes, (unsigned long long)st.mapped_bytes,
	       (unsigned long long)st.dma_copies, (unsigned long long)st.batches,
	       (unsigned long long)st.kernels);
	if (m == WP_GPU_PINNED) {
		uint64_t ns = 0;

		CHECK(st.batches < 256);    /* small payloads shared copies */
		CHECK(st.direct_bytes > 0); /* registered: no host copy */
		CHECK_EQ(wp_gpu_feed_reference(f, big, 10, &ns), 0);
		printf("  reference: 10 x 16 MiB cudaMemcpyAsync from pinned: %.2f GB/s\n",
		       10.0 * big / (double)ns);
	}
	if (m == WP_GPU_PAGEABLE)
		CHECK_EQ(st.batches, 0);
	if (m == WP_GPU_MAPPED)
		CHECK_EQ(st.dma_copies, 0);
	wp_gpu_host_free(f, pin);
	wp_gpu_feed_close(f);
	free(heap);
	free(small);
}

/* ---- through the network ------------------------------------------- */

#define NET_MSGS 64

struct net {
	struct wp_gpu_feed *f;
	struct wp_ep *ep;
	int connected, closed, submit_err, pools;
};

static void log_stderr(void *arg, enum wp_log_level level, const char *msg)
{
	fprintf(stderr, "  log: %s\n", msg);
}

static void rx_event(void *arg, struct wp_ep *ep, enum wp_ep_event ev, int err)
{
	struct net *x = arg;

	if (ev == WP_EP_CONNECTED) {
		int r = wp_gpu_register_pools(x->f, ep);

		x->ep = ep;
		x->pools = r;
		if (r < 0)
			fprintf(stderr, "  register_pools: %s\n", strerror(-r));
		x->connected = 1;
	} else if (ep == x->ep) {
		if (x->pools > 0)
			CHECK_EQ(wp_gpu_unregister_pools(x->f, ep), 0);
		x->closed = 1;
	}
}

static void rx_msg(void *arg, struct wp_ep *ep, struct wp_msg *m)
{
	struct net *x = arg;
	int r = wp_gpu_feed_submit_lent(x->f, m->data, m->len, on_done,
					(void *)(uintptr_t)m->method);

	if (r)
		x->submit_err = r;
}

static void tx_event(void *arg, struct wp_ep *ep, enum wp_ep_event ev, int err)
{
	*(int *)arg = ev == WP_EP_CONNECTED ? 1 : -1;
}

static void tx_done(void *arg, int status)
{
	(*(int *)arg)++;
}

static void run_net(const char *path)
{
	static uint64_t want[NET_MSGS];
	struct wp_ctx_opts co;
	struct wp_ctx *srv, *cli;
	struct net x = { 0 };
	struct wp_ep_cbs scb = { .event = rx_event, .msg = rx_msg, .arg = &x };
	int cstate = 0, sent = 0;
	struct wp_ep_cbs ccb = { .event = tx_event, .arg = &cstate };
	struct wp_gpu_opts o;
	struct wp_gpu_stats st;
	struct wp_ep *l, *c;
	char uri[128];
	uint8_t *bufs[NET_MSGS];

	wp_ctx_opts_init(&co);
	co.select = WP_SELECT_REQUIRE;
	co.shm_heap_mb = 64;
	co.log = log_stderr;
	CHECK_EQ(wp_ctx_create(&co, &srv), 0);
	CHECK_EQ(wp_ctx_create(&co, &cli), 0);
	wp_gpu_opts_init(&o);
	CHECK_EQ(wp_gpu_feed_open(srv, &o, &x.f), 0);
	memset(&G, 0, sizeof(G));
	G.want = want;
	if (wp_listen(srv, !strcmp(path, "shm") ? "shm://@" : "tcp://127.0.0.1:0", &scb, &l) < 0) {
		printf("  %s: path unavailable here, not run\n", path);
		goto out;
	}
	CHECK_EQ(wp_ep_local_uri(l, uri, sizeof(uri)), 0);
	CHECK_EQ(wp_connect(cli, uri, &ccb, &c), 0);
	for (int i = 0; i < 5000 && (!x.connected || cstate != 1); i++) {
		wp_ctx_progress(cli, 1000);
		wp_ctx_progress(srv, 1000);
	}
	CHECK(x.connected && cstate == 1);
	for (uint32_t i = 0; i < NET_MSGS; i++) {
		size_t len = i % 4 == 0 ? (512u << 10) + i : 4096 + i;

		bufs[i] = wp_ep_buf_alloc(c, len);
		CHECK(bufs[i]);
		test_fill(bufs[i], len, 100 + i);
		want[i] = wp_gpu_kitchen_sum(bufs[i], len);
		CHECK_EQ(wp_ep_send_msg(c, i, bufs[i], len, tx_done, &sent), 0);
	}
	{
		uint64_t end = wp_now_ns() + 30000000000ull;

		while ((G.n < NET_MSGS || sent < NET_MSGS) && wp_now_ns() < end) {
			wp_ctx_progress(cli, 100);
			wp_ctx_progress(srv, 100);
		}
	}
	CHECK_EQ(x.submit_err, 0);
	CHECK_EQ(G.n, NET_MSGS);
	CHECK_EQ(G.errs, 0);
	CHECK_EQ(G.bad, 0);
	wp_gpu_feed_stats(x.f, &st);
	printf("  %s: %u received messages verified on the GPU; %llu B host-copied by the feed, "
	       "%llu B DMA'd in place from the receive pools\n",
	       path, NET_MSGS, (unsigned long long)st.host_copied,
	       (unsigned long long)st.direct_bytes);
	if (!strcmp(path, "shm")) {
		/* The peer's heap is pinned: the large ones crossed with no copy. */
		CHECK_EQ(x.pools, 3);
		CHECK(st.direct_bytes >= 16 * (512u << 10));
	}
	for (uint32_t i = 0; i < NET_MSGS; i++)
		wp_ep_buf_free(c, bufs[i]);
	wp_ep_close(c);
	for (int i = 0; i < 5000 && !x.closed; i++) {
		wp_ctx_progress(cli, 1000);
		wp_ctx_progress(srv, 1000);
	}
	wp_ep_close(l);
out:
	wp_gpu_feed_close(x.f);
	wp_ctx_destroy(cli);
	wp_ctx_destroy(srv);
}

int main(void)
{
	struct wp_ctx *ctx;
	struct wp_gpu_feed *f;
	struct wp_gpu_opts o;
	int r;

	test_watchdog(170);
	test_log_capture(); /* ctx has no log: the feed's reasons come here */
	CHECK_EQ(wp_ctx_create(NULL, &ctx), 0);
	r = wp_gpu_feed_open(ctx, NULL, &f);
	if (r == -EOPNOTSUPP || r == -ENODEV)
		SKIP("no GPU: %s", test_log.last);
	CHECK_EQ(r, 0);
	wp_gpu_feed_close(f);

	run_mode(ctx, WP_GPU_PAGEABLE);
	run_mode(ctx, WP_GPU_PINNED);
	run_mode(ctx, WP_GPU_MAPPED);

	/* GPUDirect: refused here with the reason, or pinned under prefer. */
	wp_gpu_opts_init(&o);
	o.mode = WP_GPU_GPUDIRECT;
	test_log.errs = 0;
	CHECK_EQ(wp_gpu_feed_open(ctx, &o, &f), -EOPNOTSUPP);
	CHECK_EQ(test_log.errs, 1);
	printf("gpudirect (require): %s\n", test_log.last);
	o.select = WP_SELECT_PREFER;
	CHECK_EQ(wp_gpu_feed_open(ctx, &o, &f), 0);
	CHECK_EQ(wp_gpu_feed_mode(f), WP_GPU_PINNED);
	printf("gpudirect (prefer): %s\n", wp_gpu_feed_explain(f));
	wp_gpu_feed_close(f);
	wp_ctx_destroy(ctx);

	run_net("shm");
	run_net("tcp");
	printf("PASS test_gpu_cuda\n");
	return 0;
}
