// SPDX-License-Identifier: MIT
/*
 * `wirepath bench --workload gpufeed`: the kitchen feed measured. Payloads
 * arrive from several sender processes at once (fan-in) over a path (shm,
 * tcp, uring), or from this process's own pinned or pageable memory
 * ("local": no network, the GPU side alone), and go into device memory in
 * each mode of the GPU feed, side by side in one run:
 *
 *   delivered GB/s into device memory, payloads/s, receiver host CPU us per
 *   MiB delivered (senders' CPU apart), host bytes copied per byte delivered
 *   (the feed's staging and bounce copies plus the library's own receive
 *   copies), per-payload latency (receive to GPU-verified completion), and
 *   whether every byte was verified: the kitchen kernel's checksum on the
 *   GPU against the sender's, summed per sender.
 *
 * Reference rows, measured in the same run: cudaMemcpyAsync back to back
 * from a pinned buffer (what pinned mode is judged against), and for small
 * payloads pinned mode with one copy per payload (batch_max 1, what
 * batching is judged against). The goals of docs/gpu.md are computed from
 * these rows and printed with the numbers they came from.
 *
 * Without CUDA or a GPU the workload says why in one line and exits 1: it
 * never prints a number it did not measure. The senders are forked
 * processes (bench_gpufeed_send.c); this file is the receiver, the cells,
 * the reference rows, the goals and the options.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "opt.h"
#include "stub_proto.h"
#include "util.h"
#include "wirepath/gpu.h"

#define GF_MAX_PATHS 4
#define GF_MAX_SIZES 16
#define GF_MAX_SENDERS 64
#define GF_DRAIN_NS (30ull * 1000000000ull)

/* Modes, plus the one-copy-per-payload variant of pinned. */
enum { GF_PAGEABLE, GF_PINNED, GF_PINNED_1COPY, GF_MAPPED, GF_GPUDIRECT, GF_NMODES };
static const char *const gf_mode_names[GF_NMODES] = { "pageable", "pinned", "pinned_1copy",
						      "mapped", "gpudirect" };

/* --sizes: payload sizes, increasing. */
struct gf_sizes {
	uint64_t v[GF_MAX_SIZES];
	int n;
};

struct gf_cfg {
	const char *workload;     /* "gpufeed": how the mode was picked */
	struct bench_paths paths; /* at most GF_MAX_PATHS */
	int mode_on[GF_NMODES];
	struct gf_sizes sizes;
	uint32_t senders;
	double duration_s;
	uint32_t device;
	const char *json_path;
	int quiet;
};

struct gf_row {
	char path[16];
	const char *mode;
	char mode_used[16];
	uint64_t size;
	int state; /* 0 measured, 1 unavailable, 2 error */
	char msg[300];
	char explain[640];
	uint64_t payloads, bytes, refused;
	double secs, gbps, pps, cpu_us_per_mib, send_cpu_us_per_mib, copies_per_byte;
	uint64_t dma_copies, batches, kernels, lent_waits;
	double p50_us, p99_us;
	int verified;
	uint64_t mismatches;
};

struct gf_ref {
	uint64_t size;
	double gbps, cpu_us_per_mib;
	int ok;
};

/* ------------------------------------------------------------------ */
/* One cell's receiver                                                 */
/* ------------------------------------------------------------------ */

struct gf_sender_acc {
	uint64_t count, sum;           /* from the GPU's completions */
	uint64_t want_count, want_sum; /* from the sender's STOP */
	int stopped;
};

/* A context's log: its last error becomes a row's message; printed too,
 * unless the row reports it itself (quiet). */
struct gf_log {
	int quiet;
	char last[WP_LOG_LINE_MAX];
};

static void gf_log(void *arg, enum wp_log_level level, const char *msg)
{
	struct gf_log *l = arg;

	if (level == WP_LOG_ERR)
		snprintf(l->last, sizeof(l->last), "%s",
			 strncmp(msg, "gpu feed: ", 10) ? msg : msg + 10);
	if (!l->quiet)
		tool_log(NULL, level, msg);
}

struct gf_cell {
	struct wp_gpu_feed *f;
	struct gf_log log;
	struct wp_ctx *ctx;
	int pools_per_ep;
	uint64_t size;
	uint32_t nsenders, connected, closed;
	struct gf_sender_acc acc[GF_MAX_SENDERS];
	uint64_t done, bytes, refused, mismatches, submitted;
	struct wp_hist lat;
	uint64_t t_first, t_last;
	struct rusage ru_first;
	int started;
	/* accepted endpoints, to unregister their pools before the feed goes */
	struct wp_ep *eps[GF_MAX_SENDERS];
	int ep_open[GF_MAX_SENDERS], ep_pools[GF_MAX_SENDERS];
	/* local source */
	uint8_t **lbuf;
	uint64_t *lsum;
	int *lbusy;
	struct gf_larg *larg;
	uint32_t nl;
};

struct gf_larg { /* a local submit's completion argument */
	struct gf_cell *c;
	uint32_t i;
};

static uint64_t ru_ns(const struct rusage *r)
{
	return (uint64_t)r->ru_utime.tv_sec * 1000000000ull + (uint64_t)r->ru_utime.tv_usec * 1000 +
	       (uint64_t)r->ru_stime.tv_sec * 1000000000ull + (uint64_t)r->ru_stime.tv_usec * 1000;
}

static void gf_mark_start(struct gf_cell *c)
{
	if (c->started)
		return;
	c->started = 1;
	c->t_first = wp_now_ns();
	getrusage(RUSAGE_SELF, &c->ru_first);
}

static void gf_account(struct gf_cell *c, uintptr_t id, const struct wp_gpu_done *d)
{
	c->t_last = wp_now_ns();
	c->done++;
	if (d->status) {
		c->mismatches++;
		return;
	}
	c->bytes += d->len;
	wp_hist_add(&c->lat, d->ns);
	if (id < GF_MAX_SENDERS) {
		c->acc[id].count++;
		c->acc[id].sum += d->gpu_sum;
	}
	if (!d->summed)
		c->mismatches++;
}

static void gf_on_gpu(void *arg, const struct wp_gpu_done *d)
{
	struct gf_cell **a = arg;

	gf_account(a[0], (uintptr_t)a[1], d);
}

/* A local source buffer is free again once its payload completed. */
static void gf_on_local(void *arg, const struct wp_gpu_done *d)
{
	struct gf_larg *a = arg;

	a->c->lbusy[a->i] = 0;
	gf_account(a->c, 0, d);
}

/* The completion argument: the cell and the sender id, packed per sender
 * (so the callback needs no allocation per payload). */
static struct gf_cell *gf_args[GF_MAX_SENDERS][2];

static void gf_ep_event(void *arg, struct wp_ep *ep, enum wp_ep_event ev, int err)
{
	struct gf_cell *c = arg;

	if (ev == WP_EP_CONNECTED) {
		uint32_t k = c->connected++;

		if (k >= GF_MAX_SENDERS)
			return;
		c->eps[k] = ep;
		c->ep_open[k] = 1;
		c->ep_pools[k] = c->pools_per_ep && wp_gpu_register_pools(c->f, ep) > 0;
		wp_ep_set_user(ep, (void *)(uintptr_t)(k + 1));
	} else {
		uintptr_t k = (uintptr_t)wp_ep_user(ep);

		c->closed++;
		if (!k || !c->ep_open[k - 1])
			return;
		/* Still mapped until the library frees it after this event. */
		if (c->ep_pools[k - 1])
			wp_gpu_unregister_pools(c->f, ep);
		c->ep_open[k - 1] = 0;
	}
}

static void gf_ep_msg(void *arg, struct wp_ep *ep, struct wp_msg *m)
{
	struct gf_cell *c = arg;

	if (m->method >= GF_METHOD_STOP && m->method < GF_METHOD_STOP + GF_MAX_SENDERS) {
		struct gf_sender_acc *a = &c->acc[m->method - GF_METHOD_STOP];

		if (m->len == GF_STOP_LEN) {
			a->want_count = wpb_get64(m->data);
			a->want_sum = wpb_get64((const uint8_t *)m->data + 8);
			a->stopped = 1;
		}
		return;
	}
	if (m->method < GF_METHOD_DATA || m->method >= GF_METHOD_DATA + GF_MAX_SENDERS)
		return;
	gf_mark_start(c);
	c->submitted++;
	/* The payload is lent to this callback: the feed copies or waits. */
	if (wp_gpu_feed_submit_lent(c->f, m->data, m->len, gf_on_gpu,
				    gf_args[m->method - GF_METHOD_DATA]) < 0)
		c->refused++;
}

/* ------------------------------------------------------------------ */
/* Cells                                                               */
/* ------------------------------------------------------------------ */

static void gf_feed_opts(const struct gf_cfg *cfg, int mode, uint64_t maxsize,
			 struct wp_gpu_opts *o)
{
	wp_gpu_opts_init(o);
	o->device = (int)cfg->device;
	o->mode = mode == GF_PAGEABLE    ? WP_GPU_PAGEABLE
		  : mode == GF_MAPPED    ? WP_GPU_MAPPED
		  : mode == GF_GPUDIRECT ? WP_GPU_GPUDIRECT
					 : WP_GPU_PINNED;
	if (mode == GF_PINNED_1COPY)
		o->batch_max = 1;
	/* Room for many payloads in flight from every sender: a refused
	 * payload would fail the row's verification. */
	o->dev_bytes = 16 * maxsize > (512ull << 20) ? 16 * maxsize : (512ull << 20);
}

static void gf_finish_row(struct gf_row *r, struct gf_cell *c, const struct wp_gpu_stats *st,
			  uint64_t copied_lib, const struct rusage *ru_end, double send_cpu_ns)
{
	double mib = (double)c->bytes / (1 << 20);

	r->payloads = c->done;
	r->bytes = c->bytes;
	r->refused = c->refused;
	r->secs = c->t_last > c->t_first ? (double)(c->t_last - c->t_first) / 1e9 : 0;
	r->gbps = r->secs > 0 ? (double)c->bytes / r->secs / 1e9 : 0;
	r->pps = r->secs > 0 ? (double)c->done / r->secs : 0;
	r->cpu_us_per_mib = mib > 0 ? (double)(ru_ns(ru_end) - ru_ns(&c->ru_first)) / 1e3 / mib : 0;
	r->send_cpu_us_per_mib = mib > 0 ? send_cpu_ns / 1e3 / mib : 0;
	r->copies_per_byte = c->bytes ? (double)(st->host_copied + copied_lib) / (double)c->bytes
				      : 0;
	r->dma_copies = st->dma_copies;
	r->batches = st->batches;
	r->kernels = st->kernels;
	r->lent_waits = st->lent_waits;
	r->p50_us = (double)wp_hist_quantile(&c->lat, 0.5) / 1e3;
	r->p99_us = (double)wp_hist_quantile(&c->lat, 0.99) / 1e3;
	r->mismatches += c->mismatches;
	r->verified = c->done > 0 && r->mismatches == 0 && !c->refused;
	r->state = 0;
	if (!c->done || r->secs <= 0) {
		/* Nothing measured: an error row, not a row of zeros. */
		r->state = 2;
		snprintf(r->msg, sizeof(r->msg), "no payload completed in the cell");
	}
}

/* Local source: this process submits from its own memory in a loop. */
static void gf_cell_local(const struct gf_cfg *cfg, struct gf_cell *c, struct gf_row *r,
			  int pageable)
{
	uint64_t end = wp_now_ns() + (uint64_t)(cfg->duration_s * 1e9);
	uint32_t next = 0;

	c->nl = (uint32_t)((256ull << 20) / c->size);
	c->nl = c->nl < 2 ? 2 : c->nl > 64 ? 64 : c->nl;
	c->lbuf = calloc(c->nl, sizeof(*c->lbuf));
	c->lsum = calloc(c->nl, sizeof(*c->lsum));
	c->lbusy = calloc(c->nl, sizeof(*c->lbusy));
	c->larg = calloc(c->nl, sizeof(*c->larg));
	if (!c->lbuf || !c->lsum || !c->lbusy || !c->larg) {
		snprintf(r->msg, sizeof(r->msg), "out of memory");
		r->state = 2;
		return;
	}
	for (uint32_t i = 0; i < c->nl; i++) {
		c->lbuf[i] = pageable ? malloc(c->size) : wp_gpu_host_alloc(c->f, c->size);
		if (!c->lbuf[i]) {
			snprintf(r->msg, sizeof(r->msg),
				 "cannot allocate %u source buffers of %" PRIu64 " B", c->nl,
				 c->size);
			r->state = 2;
			return;
		}
		bench_gf_fill(c->lbuf[i], c->size, 7000 + i);
		c->lsum[i] = wp_gpu_kitchen_sum(c->lbuf[i], c->size);
		c->larg[i] = (struct gf_larg){ c, i };
	}
	gf_mark_start(c);
	while (wp_now_ns() < end) {
		for (uint32_t k = 0; k < c->nl; k++) {
			uint32_t i = (next + k) % c->nl;
			int rc;

			if (c->lbusy[i])
				continue;
			rc = wp_gpu_feed_submit(c->f, c->lbuf[i], c->size, gf_on_local,
						&c->larg[i]);
			if (tool_backpressure(rc))
				break;
			if (rc < 0) {
				c->refused++;
				break;
			}
			c->lbusy[i] = 1;
			c->submitted++;
			c->acc[0].want_count++;
			c->acc[0].want_sum += c->lsum[i];
			next = i + 1;
		}
		wp_ctx_progress(c->ctx, 0);
	}
	end = wp_now_ns() + GF_DRAIN_NS;
	while (c->done < c->submitted && wp_now_ns() < end)
		wp_ctx_progress(c->ctx, 100);
	c->acc[0].stopped = 1;
}

static void gf_run_cell(const struct gf_cfg *cfg, const char *path, int mode, uint64_t size,
			uint64_t maxsize, struct gf_row *r)
{
	struct gf_cell c;
	struct wp_ctx_opts co;
	struct wp_gpu_opts go;
	struct wp_gpu_stats st;
	struct wp_meter_snap m0, m1;
	struct rusage ru_end, rc0, rc1;
	struct wp_ep_cbs cbs = { .event = gf_ep_event, .msg = gf_ep_msg };
	struct wp_ep *l = NULL;
	pid_t pids[GF_MAX_SENDERS];
	char uri[160], listen[64];
	int local = !strcmp(path, "local"), nforked = 0, rc;
	uint64_t end;

	memset(&c, 0, sizeof(c));
	memset(r, 0, sizeof(*r));
	snprintf(r->path, sizeof(r->path), "%s", path);
	r->mode = gf_mode_names[mode];
	r->size = size;
	c.size = size;
	c.nsenders = local ? 1 : cfg->senders;
	wp_hist_init(&c.lat);
	cbs.arg = &c;

	gf_feed_opts(cfg, mode, maxsize, &go);
	if (mode == GF_MAPPED && size > go.small_max) {
		r->state = 1;
		snprintf(r->msg, sizeof(r->msg), "mapped is for control payloads up to %u B",
			 go.small_max);
		return;
	}
	if (mode == GF_PINNED_1COPY && size > go.small_max) {
		r->state = 1;
		snprintf(r->msg, sizeof(r->msg),
			 "one-copy reference only for batchable sizes "
			 "(<= %u B)",
			 go.small_max);
		return;
	}
	wp_ctx_opts_init(&co);
	co.select = WP_SELECT_REQUIRE;
	co.max_frame = bench_gf_max_frame(size);
	/* Errors to stderr, except the gpudirect refusal the row reports. */
	c.log.quiet = mode == GF_GPUDIRECT;
	co.log = gf_log;
	co.log_arg = &c.log;
	co.log_level = WP_LOG_ERR;
	if (wp_ctx_create(&co, &c.ctx) < 0) {
		r->state = 2;
		snprintf(r->msg, sizeof(r->msg), "cannot create a context");
		return;
	}
	rc = wp_gpu_feed_open(c.ctx, &go, &c.f);
	if (rc < 0) {
		r->state = rc == -EOPNOTSUPP || rc == -ENODEV ? 1 : 2;
		snprintf(r->msg, sizeof(r->msg), "%.299s",
			 c.log.last[0] ? c.log.last : strerror(-rc));
		wp_ctx_destroy(c.ctx);
		return;
	}
	snprintf(r->explain, sizeof(r->explain), "%s", wp_gpu_feed_explain(c.f));
	snprintf(r->mode_used, sizeof(r->mode_used), "%s", wp_gpu_mode_name(wp_gpu_feed_mode(c.f)));
	for (uint32_t i = 0; i < GF_MAX_SENDERS; i++) {
		gf_args[i][0] = &c;
		gf_args[i][1] = (struct gf_cell *)(uintptr_t)i;
	}
	wp_meter_snapshot(&m0);
	getrusage(RUSAGE_CHILDREN, &rc0);

	if (local) {
		gf_cell_local(cfg, &c, r, mode == GF_PAGEABLE);
		goto out_measure;
	}
	if (!strcmp(path, "shm"))
		snprintf(listen, sizeof(listen), "shm://@");
	else
		snprintf(listen, sizeof(listen), "%s://127.0.0.1:0", path);
	if (wp_listen(c.ctx, listen, &cbs, &l) < 0 || wp_ep_local_uri(l, uri, sizeof(uri)) < 0) {
		r->state = 1;
		snprintf(r->msg, sizeof(r->msg), "path %s unavailable here (wirepath probe)", path);
		goto out_close;
	}
	/* Receive memory: uring's buffer ring belongs to the context; tcp and
	 * shm receive per connection (registered as each one connects). */
	if (wp_gpu_feed_mode(c.f) != WP_GPU_PAGEABLE) {
		if (!strcmp(path, "uring"))
			wp_gpu_register_pools(c.f, NULL);
		else
			c.pools_per_ep = 1;
	}
	fflush(stdout);
	fflush(stderr);
	for (uint32_t i = 0; i < cfg->senders; i++) {
		pid_t p = fork();

		if (p < 0)
			break;
		if (p == 0) {
			prctl(PR_SET_PDEATHSIG, SIGTERM);
			_exit(bench_gf_send(uri, size, i, cfg->duration_s));
		}
		pids[nforked++] = p;
	}
	end = wp_now_ns() + (uint64_t)(cfg->duration_s * 1e9) + GF_DRAIN_NS;
	for (;;) {
		uint32_t stopped = 0;

		for (uint32_t i = 0; i < cfg->senders; i++)
			stopped += c.acc[i].stopped;
		if (stopped == (uint32_t)nforked && c.done == c.submitted)
			break;
		if (wp_now_ns() > end) {
			snprintf(r->msg, sizeof(r->msg),
				 "timed out: %u of %d senders finished, %" PRIu64 " of %" PRIu64
				 " payloads completed",
				 stopped, nforked, c.done, c.submitted);
			break;
		}
		wp_ctx_progress(c.ctx, 1000);
	}
out_measure:
	wp_gpu_feed_flush(c.f);
	getrusage(RUSAGE_SELF, &ru_end);
	wp_meter_snapshot(&m1);
	wp_gpu_feed_stats(c.f, &st);
	/* Verification: per sender, the count and the sum of the GPU's
	 * checksums must equal what the sender sent. */
	for (uint32_t i = 0; i < c.nsenders; i++)
		if (!c.acc[i].stopped || c.acc[i].count != c.acc[i].want_count ||
		    c.acc[i].sum != c.acc[i].want_sum)
			r->mismatches++;
	/* The senders hang up after their STOP; an endpoint still open is
	 * unregistered from the GPU before it is closed (and freed). */
	end = wp_now_ns() + 5000000000ull;
	while (c.closed < c.connected && wp_now_ns() < end)
		wp_ctx_progress(c.ctx, 1000);
	for (uint32_t k = 0; k < c.connected && k < GF_MAX_SENDERS; k++) {
		if (!c.ep_open[k])
			continue;
		if (c.ep_pools[k])
			wp_gpu_unregister_pools(c.f, c.eps[k]);
		c.ep_open[k] = 0;
		wp_ep_close(c.eps[k]);
	}
	if (l)
		wp_ep_close(l);
	for (int i = 0; i < nforked; i++) {
		int status;

		while (waitpid(pids[i], &status, WNOHANG) == 0) {
			if (wp_now_ns() > end) {
				kill(pids[i], SIGTERM);
				waitpid(pids[i], &status, 0);
				break;
			}
			wp_ctx_progress(c.ctx, 1000);
		}
		if (!WIFEXITED(status) || WEXITSTATUS(status))
			r->mismatches++;
	}
	getrusage(RUSAGE_CHILDREN, &rc1);
	gf_finish_row(r, &c, &st, m1.bytes_copied - m0.bytes_copied, &ru_end,
		      (double)(ru_ns(&rc1) - ru_ns(&rc0)));
	if (r->msg[0])
		r->verified = 0;
out_close:
	if (c.lbuf) {
		for (uint32_t i = 0; i < c.nl; i++) {
			if (!c.lbuf[i])
				continue;
			if (mode == GF_PAGEABLE)
				free(c.lbuf[i]);
			else
				wp_gpu_host_free(c.f, c.lbuf[i]);
		}
	}
	free(c.lbuf);
	free(c.lsum);
	free(c.lbusy);
	free(c.larg);
	wp_gpu_feed_close(c.f);
	wp_ctx_destroy(c.ctx);
}

/* ------------------------------------------------------------------ */
/* Reference: cudaMemcpyAsync from pinned                              */
/* ------------------------------------------------------------------ */

static void gf_reference(const struct gf_cfg *cfg, uint64_t size, uint64_t maxsize,
			 struct gf_ref *ref)
{
	struct wp_ctx *ctx;
	struct wp_gpu_feed *f;
	struct wp_gpu_opts o;
	struct rusage a, b;
	uint64_t ns = 0, iters = (1ull << 30) / size;

	ref->size = size;
	if (wp_ctx_create(NULL, &ctx) < 0)
		return;
	gf_feed_opts(cfg, GF_PINNED, maxsize, &o);
	if (wp_gpu_feed_open(ctx, &o, &f) < 0) {
		wp_ctx_destroy(ctx);
		return;
	}
	iters = iters < 8 ? 8 : iters > 20000 ? 20000 : iters;
	wp_gpu_feed_reference(f, size, 2, &ns); /* warm: first-touch costs */
	getrusage(RUSAGE_SELF, &a);
	if (wp_gpu_feed_reference(f, size, (uint32_t)iters, &ns) == 0 && ns) {
		getrusage(RUSAGE_SELF, &b);
		ref->ok = 1;
		ref->gbps = (double)size * (double)iters / (double)ns;
		ref->cpu_us_per_mib = (double)(ru_ns(&b) - ru_ns(&a)) / 1e3 /
				      ((double)size * (double)iters / (1 << 20));
	}
	wp_gpu_feed_close(f);
	wp_ctx_destroy(ctx);
}

/* ------------------------------------------------------------------ */
/* Output                                                              */
/* ------------------------------------------------------------------ */

static const struct gf_row *gf_find(const struct gf_row *rows, int n, const char *path,
				    const char *mode, uint64_t size)
{
	for (int i = 0; i < n; i++)
		if (rows[i].state == 0 && !strcmp(rows[i].path, path) &&
		    !strcmp(rows[i].mode, mode) && rows[i].size == size)
			return &rows[i];
	return NULL;
}

static void gf_goal(struct sbuf *b, int *first, const char *name, double got, double want,
		    const char *basis, int print)
{
	int met = got >= want;

	if (print)
		printf("goal  %-52s %8.2f (want >= %.2f) %s   [%s]\n", name, got, want,
		       met ? "met" : "NOT met", basis);
	sb_printf(b, "%s\n    {\"goal\": ", *first ? "" : ",");
	sb_json_str(b, name);
	sb_printf(b, ", \"measured\": ");
	sb_json_num(b, got);
	sb_printf(b, ", \"want_at_least\": ");
	sb_json_num(b, want);
	sb_printf(b, ", \"met\": %s, \"basis\": ", met ? "true" : "false");
	sb_json_str(b, basis);
	sb_printf(b, "}");
	*first = 0;
}

static void gf_goals(struct sbuf *b, const struct gf_cfg *cfg, const struct gf_row *rows, int n,
		     const struct gf_ref *refs, int print)
{
	uint64_t big = cfg->sizes.v[cfg->sizes.n - 1], small = cfg->sizes.v[0];
	int first = 1;
	char basis[200];

	sb_printf(b, "  \"goals\": [");
	for (int p = 0; p < cfg->paths.n; p++) {
		const char *path = cfg->paths.name[p];
		const struct gf_row *pin = gf_find(rows, n, path, "pinned", big);
		const struct gf_row *pag = gf_find(rows, n, path, "pageable", big);
		const struct gf_row *bat = gf_find(rows, n, path, "pinned", small);
		const struct gf_row *one = gf_find(rows, n, path, "pinned_1copy", small);
		char name[96];

		for (int s = 0; s < cfg->sizes.n; s++) {
			if (refs[s].size != big || !refs[s].ok || !pin)
				continue;
			snprintf(name, sizeof(name), "%s: pinned / cudaMemcpy-from-pinned GB/s",
				 path);
			snprintf(basis, sizeof(basis), "%.2f / %.2f GB/s at %" PRIu64 " B",
				 pin->gbps, refs[s].gbps, big);
			gf_goal(b, &first, name, pin->gbps / refs[s].gbps, 0.8, basis, print);
		}
		if (pin && pag && pin->cpu_us_per_mib > 0) {
			snprintf(name, sizeof(name), "%s: pageable / pinned host CPU per MiB",
				 path);
			snprintf(basis, sizeof(basis), "%.1f / %.1f us/MiB at %" PRIu64 " B",
				 pag->cpu_us_per_mib, pin->cpu_us_per_mib, big);
			gf_goal(b, &first, name, pag->cpu_us_per_mib / pin->cpu_us_per_mib, 2.0,
				basis, print);
		}
		if (bat && one && one->pps > 0) {
			snprintf(name, sizeof(name), "%s: batched / one-copy payloads/s", path);
			snprintf(basis, sizeof(basis), "%.0f / %.0f payloads/s at %" PRIu64 " B",
				 bat->pps, one->pps, small);
			gf_goal(b, &first, name, bat->pps / one->pps, 5.0, basis, print);
		}
	}
	sb_printf(b, "\n  ],\n");
}

static int gf_write_json(const struct gf_cfg *cfg, const struct gf_row *rows, int n,
			 const struct gf_ref *refs)
{
	struct sbuf b = { 0 };

	sb_printf(&b,
		  "{\n  \"workload\": \"gpufeed\",\n  \"senders\": %u,\n  \"seconds_per_cell\": ",
		  cfg->senders);
	sb_json_num(&b, cfg->duration_s);
	sb_printf(&b, ",\n  \"probes\": ");
	tool_probes_json(&b);
	sb_printf(&b, ",\n  \"reference\": [");
	for (int s = 0; s < cfg->sizes.n; s++) {
		sb_printf(&b,
			  "%s\n    {\"what\": \"cudaMemcpyAsync from pinned, back to back\", "
			  "\"size\": %" PRIu64 ", \"ok\": %s, \"gbps\": ",
			  s ? "," : "", refs[s].size, refs[s].ok ? "true" : "false");
		sb_json_num(&b, refs[s].ok ? refs[s].gbps : NAN);
		sb_printf(&b, ", \"cpu_us_per_mib\": ");
		sb_json_num(&b, refs[s].ok ? refs[s].cpu_us_per_mib : NAN);
		sb_printf(&b, "}");
	}
	sb_printf(&b, "\n  ],\n");
	gf_goals(&b, cfg, rows, n, refs, 0);
	sb_printf(&b, "  \"rows\": [");
	for (int i = 0; i < n; i++) {
		const struct gf_row *r = &rows[i];

		sb_printf(&b, "%s\n    {\"path\": ", i ? "," : "");
		sb_json_str(&b, r->path);
		sb_printf(&b, ", \"mode\": ");
		sb_json_str(&b, r->mode);
		sb_printf(&b, ", \"size\": %" PRIu64 ", \"state\": \"%s\"", r->size,
			  r->state == 0   ? "measured"
			  : r->state == 1 ? "unavailable"
					  : "error");
		if (r->state) {
			sb_printf(&b, ", \"reason\": ");
			sb_json_str(&b, r->msg);
			sb_printf(&b, "}");
			continue;
		}
		sb_printf(&b, ", \"mode_used\": ");
		sb_json_str(&b, r->mode_used);
		sb_printf(&b, ", \"payloads\": %" PRIu64 ", \"bytes\": %" PRIu64 ", \"seconds\": ",
			  r->payloads, r->bytes);
		sb_json_num(&b, r->secs);
		sb_printf(&b, ", \"gbps\": ");
		sb_json_num(&b, r->gbps);
		sb_printf(&b, ", \"payloads_per_s\": ");
		sb_json_num(&b, r->pps);
		sb_printf(&b, ", \"recv_cpu_us_per_mib\": ");
		sb_json_num(&b, r->cpu_us_per_mib);
		sb_printf(&b, ", \"send_cpu_us_per_mib\": ");
		sb_json_num(&b, r->send_cpu_us_per_mib);
		sb_printf(&b, ", \"host_copies_per_byte\": ");
		sb_json_num(&b, r->copies_per_byte);
		sb_printf(&b,
			  ", \"dma_copies\": %" PRIu64 ", \"batches\": %" PRIu64
			  ", \"kernels\": %" PRIu64 ", \"lent_waits\": %" PRIu64
			  ", \"lat_p50_us\": ",
			  r->dma_copies, r->batches, r->kernels, r->lent_waits);
		sb_json_num(&b, r->p50_us);
		sb_printf(&b, ", \"lat_p99_us\": ");
		sb_json_num(&b, r->p99_us);
		sb_printf(&b,
			  ", \"refused\": %" PRIu64 ", \"verified\": %s, \"note\": ", r->refused,
			  r->verified ? "true" : "false");
		sb_json_str(&b, r->msg[0] ? r->msg : NULL);
		sb_printf(&b, ", \"explain\": ");
		sb_json_str(&b, r->explain);
		sb_printf(&b, "}");
	}
	sb_printf(&b, "\n  ]\n}\n");
	return bench_write_sb(cfg->json_path, &b);
}

/* ------------------------------------------------------------------ */
/* Options                                                             */
/* ------------------------------------------------------------------ */

/* Split a comma list into out[max][16]; the count, or -EINVAL. */
static int gf_split(const char *arg, char out[][16], int max)
{
	char tmp[256], *save = NULL, *t;
	int n = 0;

	snprintf(tmp, sizeof(tmp), "%s", arg);
	for (t = strtok_r(tmp, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		if (n == max || strlen(t) >= 16)
			return -EINVAL;
		snprintf(out[n++], 16, "%s", t);
	}
	return n ? n : -EINVAL;
}

static int gf_parse_paths(const char *cmd, const char *arg, void *dst)
{
	struct bench_paths *paths = dst;
	int n = gf_split(arg, paths->name, GF_MAX_PATHS);

	if (n < 0)
		return n;
	for (int k = 0; k < n; k++)
		if (strcmp(paths->name[k], "local") && strcmp(paths->name[k], "shm") &&
		    strcmp(paths->name[k], "tcp") && strcmp(paths->name[k], "uring"))
			return -EINVAL;
	paths->n = n;
	return 0;
}

static int gf_parse_modes(const char *cmd, const char *arg, void *dst)
{
	int *mode_on = dst;
	char list[GF_NMODES][16];
	int n = gf_split(arg, list, GF_NMODES);

	if (n < 0)
		return n;
	memset(mode_on, 0, GF_NMODES * sizeof(*mode_on));
	for (int k = 0; k < n; k++) {
		int m;

		for (m = 0; m < GF_NMODES; m++)
			if (!strcmp(list[k], gf_mode_names[m]))
				break;
		if (m == GF_NMODES)
			return -EINVAL;
		mode_on[m] = 1;
	}
	return 0;
}

static int gf_parse_sizes(const char *cmd, const char *arg, void *dst)
{
	struct gf_sizes *sizes = dst;
	char list[GF_MAX_SIZES][16];
	int n = gf_split(arg, list, GF_MAX_SIZES);

	if (n < 0)
		return n;
	for (int k = 0; k < n; k++) {
		if (tool_parse_size(list[k], 64, 1ull << 30, &sizes->v[k]) < 0)
			return -EINVAL;
		if (k && sizes->v[k] <= sizes->v[k - 1])
			return -EINVAL;
	}
	sizes->n = n;
	return 0;
}

#define GF(field) offsetof(struct gf_cfg, field)

/* Scanned by cmd_bench() with the other modes' options; in --help order. */
const struct tool_opt bench_gf_opts[] = {
	/* How this mode was picked; bench --help documents it. */
	{ .name = "workload", .kind = TOOL_OPT_STR, .off = GF(workload) },
	{ .name = "paths",
	  .kind = TOOL_OPT_FN,
	  .fn = gf_parse_paths,
	  .off = GF(paths),
	  .meta = "LIST",
	  .takes = "up to 4 of local, shm, tcp, uring, comma-separated",
	  .help = "from local (this process), shm, tcp, uring\n"
		  "(default local,shm,tcp)" },
	{ .name = "modes",
	  .kind = TOOL_OPT_FN,
	  .fn = gf_parse_modes,
	  .off = GF(mode_on),
	  .meta = "LIST",
	  .takes = "a comma list of pageable, pinned, pinned_1copy, mapped, gpudirect",
	  .help = "from pageable, pinned, pinned_1copy, mapped, gpudirect\n"
		  "(default all)" },
	{ .name = "sizes",
	  .kind = TOOL_OPT_FN,
	  .fn = gf_parse_sizes,
	  .off = GF(sizes),
	  .meta = "LIST",
	  .takes = "increasing sizes in 64 B .. 1 GiB (K/M/G suffix), comma-separated",
	  .help = "payload sizes, increasing (default 4K,64K,1M,16M,64M)" },
	{ .name = "senders",
	  .kind = TOOL_OPT_U32,
	  .off = GF(senders),
	  .min = 1,
	  .max = GF_MAX_SENDERS,
	  .meta = "N",
	  .help = "sender processes per path (default 4)" },
	{ .name = "duration",
	  .kind = TOOL_OPT_SECS,
	  .off = GF(duration_s),
	  .fmin = 0.05,
	  .fmax = 3600,
	  .meta = "S",
	  .help = "seconds of sending per cell (default 1)" },
	{ .name = "device",
	  .kind = TOOL_OPT_U32,
	  .off = GF(device),
	  .min = 0,
	  .max = 64,
	  .meta = "N",
	  .takes = "a CUDA device ordinal",
	  .help = "CUDA device (default 0)" },
	{ .name = "json",
	  .kind = TOOL_OPT_FILE,
	  .off = GF(json_path),
	  .meta = "FILE",
	  .help = "default results/gpufeed.json" },
	{ .name = "quiet",
	  .short_name = 'q',
	  .kind = TOOL_OPT_FLAG,
	  .off = GF(quiet),
	  .help = "no status lines, no rows for cells that could not run" },
	{ .name = NULL },
};

void bench_gpufeed_usage(FILE *f)
{
	fprintf(f,
		"usage: wirepath bench --workload gpufeed [--paths local,shm,tcp,uring]\n"
		"         [--modes pageable,pinned,pinned_1copy,mapped,gpudirect]\n"
		"         [--sizes 4K,64K,1M,16M,64M] [--senders N] [--duration S] [--device N]\n"
		"         [--json FILE] [--quiet]\n"
		"Payloads from N sender processes (fan-in) over each path, or from this process\n"
		"(local), into GPU memory in each mode, checksummed on the GPU (docs/gpu.md).\n");
	tool_opt_help(f, bench_gf_opts, 17);
}

int bench_gpufeed(const struct tool_opt_seen *seen)
{
	static struct gf_cfg cfg;
	static const uint64_t def_sizes[] = { 4u << 10, 64u << 10, 1u << 20, 16u << 20, 64u << 20 };
	struct gf_row *rows;
	struct gf_ref refs[GF_MAX_SIZES];
	struct gf_log plog = { .quiet = 1 };
	struct wp_ctx_opts po;
	struct wp_ctx *ctx;
	struct wp_gpu_feed *f;
	int rc, n = 0, status = 0;

	memset(&cfg, 0, sizeof(cfg));
	snprintf(cfg.paths.name[0], 16, "local");
	snprintf(cfg.paths.name[1], 16, "shm");
	snprintf(cfg.paths.name[2], 16, "tcp");
	cfg.paths.n = 3;
	for (int m = 0; m < GF_NMODES; m++)
		cfg.mode_on[m] = 1;
	memcpy(cfg.sizes.v, def_sizes, sizeof(def_sizes));
	cfg.sizes.n = 5;
	cfg.senders = 4;
	cfg.duration_s = 1.0;
	cfg.json_path = "results/gpufeed.json";
	rc = tool_opt_apply("bench", bench_gf_opts, "--workload gpufeed", seen, &cfg);
	if (rc)
		return rc;

	/* Before anything is forked or measured: is there a GPU at all? */
	wp_ctx_opts_init(&po);
	po.log = gf_log;
	po.log_arg = &plog;
	if (wp_ctx_create(&po, &ctx) < 0)
		return 1;
	rc = wp_gpu_feed_open(ctx, NULL, &f);
	if (rc < 0) {
		fprintf(stderr,
			"wirepath bench: gpufeed: %s; nothing measured (needs a CUDA build "
			"and a GPU: see docs/gpu.md and 'wirepath probe')\n",
			plog.last[0] ? plog.last : strerror(-rc));
		wp_ctx_destroy(ctx);
		return 1;
	}
	if (!cfg.quiet)
		fprintf(stderr, "wirepath bench: gpufeed: %s\n", wp_gpu_feed_explain(f));
	wp_gpu_feed_close(f);
	wp_ctx_destroy(ctx);
	signal(SIGPIPE, SIG_IGN);

	rows = calloc((size_t)cfg.paths.n * cfg.sizes.n * GF_NMODES, sizeof(*rows));
	if (!rows)
		return 1;
	memset(refs, 0, sizeof(refs));
	for (int s = 0; s < cfg.sizes.n; s++)
		gf_reference(&cfg, cfg.sizes.v[s], cfg.sizes.v[cfg.sizes.n - 1], &refs[s]);

	printf("workload gpufeed: %u senders per path (local: this process), %.2f s per cell\n",
	       cfg.senders, cfg.duration_s);
	printf("%-6s %-13s %10s %9s %11s %10s %10s %11s %9s %9s %s\n", "path", "mode", "size",
	       "GB/s", "payloads/s", "rx us/MiB", "tx us/MiB", "copies/B", "p50 us", "p99 us",
	       "verified");
	for (int s = 0; s < cfg.sizes.n; s++) {
		if (!refs[s].ok) { /* never a number that was not measured */
			printf("%-6s %-13s %10" PRIu64 "   error: the reference copy failed\n",
			       "ref", "memcpy_pinned", cfg.sizes.v[s]);
			continue;
		}
		printf("%-6s %-13s %10" PRIu64 " %9.2f %11s %10.1f %10s %11s %9s %9s %s\n", "ref",
		       "memcpy_pinned", cfg.sizes.v[s], refs[s].gbps, "-", refs[s].cpu_us_per_mib,
		       "-", "0", "-", "-", "-");
	}
	for (int p = 0; p < cfg.paths.n; p++) {
		for (int s = 0; s < cfg.sizes.n; s++) {
			for (int m = 0; m < GF_NMODES; m++) {
				struct gf_row *r = &rows[n];

				if (!cfg.mode_on[m])
					continue;
				gf_run_cell(&cfg, cfg.paths.name[p], m, cfg.sizes.v[s],
					    cfg.sizes.v[cfg.sizes.n - 1], r);
				n++;
				if (r->state) {
					if (!cfg.quiet)
						printf("%-6s %-13s %10" PRIu64 "   %s: %s\n",
						       r->path, r->mode, r->size,
						       r->state == 1 ? "unavailable" : "error",
						       r->msg);
					if (r->state == 2)
						status = 1;
					continue;
				}
				printf("%-6s %-13s %10" PRIu64 " %9.2f %11.0f %10.1f %10.1f %11.3f "
				       "%9.1f %9.1f %s%s%s\n",
				       r->path, r->mode, r->size, r->gbps, r->pps,
				       r->cpu_us_per_mib, r->send_cpu_us_per_mib,
				       r->copies_per_byte, r->p50_us, r->p99_us,
				       r->verified ? "yes" : "NO", r->msg[0] ? ": " : "", r->msg);
				fflush(stdout);
				if (!r->verified)
					status = 1;
			}
		}
	}
	printf("(rx us/MiB: this process's CPU; tx: the senders'; copies/B: bytes copied by the host "
	       "per byte delivered; latency: receive to GPU-verified completion)\n");
	{
		struct sbuf tmp = { 0 };

		gf_goals(&tmp, &cfg, rows, n, refs, 1);
		sb_free(&tmp);
	}
	rc = gf_write_json(&cfg, rows, n, refs);
	if (rc < 0) {
		fprintf(stderr, "wirepath bench: cannot write %s: %s\n", cfg.json_path,
			strerror(-rc));
		status = 1;
	} else if (!cfg.quiet) {
		fprintf(stderr, "wirepath bench: wrote %s\n", cfg.json_path);
	}
	free(rows);
	return status;
}
