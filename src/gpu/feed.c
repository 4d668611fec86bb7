// SPDX-License-Identifier: MIT
/*
 * The GPU feed's lifecycle (feed.h has the whole design and the map of
 * files): options, open (device arena and staging slots allocated up
 * front, so the fast path allocates nothing), the completion poller the
 * context drives (completions run in submission order, from
 * wp_ctx_progress), keep and release, close (waits for the device, cancels
 * what is pending), the reference measurement, stats, and the host
 * reference of the kitchen checksum.
 */
#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/opts.h"
#include "gpu/feed.h"
#include "gpu/kitchen_sum.h"

/* ---- names ------------------------------------------------------------- */

const char *wp_gpu_mode_name(enum wp_gpu_mode m)
{
	switch (m) {
	case WP_GPU_PAGEABLE:
		return "pageable";
	case WP_GPU_PINNED:
		return "pinned";
	case WP_GPU_MAPPED:
		return "mapped";
	case WP_GPU_GPUDIRECT:
		return "gpudirect";
	}
	return "?";
}

int wp_gpu_mode_parse(const char *s, enum wp_gpu_mode *out)
{
	for (int m = WP_GPU_PAGEABLE; m <= WP_GPU_GPUDIRECT; m++) {
		if (!strcmp(s, wp_gpu_mode_name((enum wp_gpu_mode)m))) {
			*out = (enum wp_gpu_mode)m;
			return 0;
		}
	}
	return -EINVAL;
}

/* ---- the kitchen checksum, host reference ---------------------------- */

uint64_t wp_gpu_kitchen_sum(const void *p, size_t len)
{
	const uint8_t *b = p;
	uint64_t sum = 0, nfull = len / 8, i;

	for (i = 0; i < nfull; i++) {
		uint64_t w;

		memcpy(&w, b + i * 8, 8);
		sum += wpk_mix(le64toh(w), i);
	}
	if (len % 8)
		sum += wpk_mix(wpk_word(b, len, i), i);
	return wpk_final(sum, len);
}

/* ---- completion -------------------------------------------------------- */

static void feed_free(struct wp_gpu_feed *f);

/* Query every live transfer; run completions in submission order. */
static int feed_poll(void *arg)
{
	struct wp_gpu_feed *f = arg;
	int n = 0;

	wpf_batch_close(f);
	wpf_reclaim(f);
	/* Slots just freed: the staged payload's next chunks can go now. */
	if (f->staging)
		wpf_stage_chunks(f, f->jtail - 1, false);
	f->in_poll++;
	while (f->jhead < f->jtail && !f->close_req) {
		struct job *j = job_at(f, f->jhead);
		struct wp_gpu_done d;

		if (j->xfers_left || j->staging || j->in_batch)
			break;
		d = (struct wp_gpu_done){
			.status = j->status,
			.mode = (enum wp_gpu_mode)j->mode,
			.dev_ptr = j->dev,
			.len = j->len,
			.host_copies = j->host_copies,
			.batch = j->batch,
			.copies = j->copies,
			.ns = wp_now_ns() - j->t0,
			.summed = j->summed && !j->status,
			.handle = j->region >= 0 ? (uint64_t)j->region + 1 : 0,
		};
		if (d.summed)
			d.gpu_sum = f->ops->result(f->bk, res_slot(f, j));
		if (!j->status) {
			f->st.payloads++;
			f->st.bytes += j->len;
		}
		f->jhead++;
		f->st.jobs_inflight = (uint32_t)(f->jtail - f->jhead);
		f->cur = j;
		f->cur_kept = false;
		j->cb(j->arg, &d);
		f->cur = NULL;
		if (!f->cur_kept)
			wpf_region_put(f, j->region);
		n++;
	}
	f->in_poll--;
	if (f->close_req && !f->in_poll)
		feed_free(f);
	return n;
}

/* Before the context sleeps: start the open batch; cap the sleep while
 * the GPU has work (nothing will wake the context when it finishes). */
static int64_t feed_max_wait(void *arg)
{
	struct wp_gpu_feed *f = arg;

	wpf_batch_close(f);
	if (f->staging)
		wpf_stage_chunks(f, f->jtail - 1, false);
	if (f->jhead == f->jtail)
		return -1;
	if (!f->xf_live && !f->staging)
		return 0; /* completions ready to run */
	return f->o.poll_us;
}

int wp_gpu_feed_keep(struct wp_gpu_feed *f, const struct wp_gpu_done *d)
{
	/* Only the completion being run, and only device arena bytes. */
	if (!f->cur || !d)
		return -EINVAL;
	if (f->cur->region < 0)
		return -EOPNOTSUPP;
	if (d->handle != (uint64_t)f->cur->region + 1)
		return -EINVAL;
	f->cur_kept = true;
	return 0;
}

void wp_gpu_feed_release(struct wp_gpu_feed *f, uint64_t handle)
{
	if (handle)
		wpf_region_put(f, (int64_t)(handle - 1));
}

/* ---- the reference ----------------------------------------------------- */

int wp_gpu_feed_reference(struct wp_gpu_feed *f, size_t len, uint32_t iters, uint64_t *ns)
{
	uint64_t t0;
	int ret = 0;

	if (!len || len > f->dev_size || !iters)
		return -EMSGSIZE;
	/* It writes over the whole arena's start: only when nothing is in it. */
	if (f->jhead != f->jtail || f->rhead != f->rtail || f->b.open)
		return -EBUSY;
	if (f->ref_len < len) {
		if (f->ref_buf)
			f->ops->host_free(f->bk, f->ref_buf);
		f->ref_buf = NULL;
		f->ref_len = 0;
		if (f->ops->host_alloc(f->bk, len, &f->ref_buf) < 0)
			return -ENOMEM;
		f->ref_len = len;
		memset(f->ref_buf, 0x5a, len);
	}
	t0 = wp_now_ns();
	for (uint32_t i = 0; i < iters && !ret; i++)
		ret = f->ops->copy(f->bk, 0, f->dev_base, f->ref_buf, len, true);
	if (!ret)
		ret = f->ops->event_record(f->bk, 0, FEED_REF_EVENT);
	if (!ret)
		ret = f->ops->event_wait(f->bk, FEED_REF_EVENT);
	*ns = wp_now_ns() - t0;
	if (ret < 0) {
		dev_error(f, "reference copy");
		return -EIO;
	}
	return 0;
}

/* ---- open, close, stats ---------------------------------------------- */

void wp_gpu_opts_init(struct wp_gpu_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->mode = WP_GPU_PINNED;
	o->select = WP_SELECT_REQUIRE;
	o->slot_bytes = 4u << 20;
	o->slots = 4;
	o->small_max = 64u << 10;
	o->batch_max = 256;
	o->dev_bytes = 256ull << 20;
	o->max_jobs = 4096;
	o->kitchen = 1;
	o->poll_us = 20;
	o->sz = sizeof(*o);
}

/* The caller's options over the defaults in *d: a field its struct is too
 * old to have keeps its default (core/opts.h). Every field, by name. */
static void opts_take(struct wp_gpu_opts *d, const struct wp_gpu_opts *o)
{
#define TAKE(f) (d->f = WP_OPTS_GET(o, f, d->f))
	TAKE(mode);
	TAKE(select);
	TAKE(device);
	TAKE(slot_bytes);
	TAKE(slots);
	TAKE(small_max);
	TAKE(batch_max);
	TAKE(dev_bytes);
	TAKE(max_jobs);
	TAKE(kitchen);
	TAKE(poll_us);
#undef TAKE
}

static int opts_check(const struct wp_gpu_opts *o, char *why, size_t len)
{
	if (o->mode > WP_GPU_GPUDIRECT || o->select > WP_SELECT_ANY)
		snprintf(why, len, "unknown mode or select value");
	else if (o->slots < 2 || o->slots > FEED_MAX_SLOTS)
		snprintf(why, len, "slots must be 2..%u (double buffering needs two)",
			 FEED_MAX_SLOTS);
	else if (o->slot_bytes < (64u << 10) || o->slot_bytes > (1u << 30))
		snprintf(why, len, "slot_bytes must be 64 KiB..1 GiB");
	else if (o->small_max > o->slot_bytes)
		snprintf(why, len, "small_max must not exceed slot_bytes");
	else if (o->batch_max < 1 || o->batch_max > 4096)
		snprintf(why, len, "batch_max must be 1..4096");
	else if (o->max_jobs < 16 || o->max_jobs > (1u << 20) || (o->max_jobs & (o->max_jobs - 1)))
		snprintf(why, len, "max_jobs must be a power of two in 16..2^20");
	else if (o->dev_bytes < 2ull * o->slot_bytes)
		snprintf(why, len, "dev_bytes must hold at least two slots");
	else if (o->poll_us < 0)
		snprintf(why, len, "poll_us must be >= 0");
	else
		return 0;
	return -EINVAL;
}

static void feed_free(struct wp_gpu_feed *f)
{
	wp_ctx_poller_del(f->ctx, &f->poller);
	while (f->nregs)
		wpf_reg_remove(f, &f->regs[f->nregs - 1]);
	if (f->ref_buf)
		f->ops->host_free(f->bk, f->ref_buf);
	for (uint32_t i = 0; f->slot && i < f->nslots; i++)
		if (f->slot[i])
			f->ops->host_free(f->bk, f->slot[i]);
	if (f->dev_base)
		f->ops->dev_free(f->bk, f->dev_base);
	if (f->bk)
		f->ops->close(f->bk);
	free(f->regs);
	free(f->segs);
	free(f->slot);
	free(f->slot_dev);
	free(f->slot_busy);
	free(f->jobs);
	free(f->regions);
	free(f);
}

void wp_gpu_feed_close(struct wp_gpu_feed *f)
{
	if (!f)
		return;
	if (f->close_req)
		return;
	wpf_batch_close(f);
	/* Let every transfer finish: the GPU may still read our slots and
	 * the caller's buffers. */
	for (int i = 0; i < FEED_NXFER; i++)
		if (f->xf[i].live)
			wpf_xfer_done(f, i, f->ops->event_wait(f->bk, (uint32_t)i) < 0 ? -EIO : 0);
	if (f->staging) {
		job_at(f, f->jtail - 1)->staging = false;
		f->staging = false;
	}
	f->close_req = true;
	f->in_poll++;
	while (f->jhead < f->jtail) {
		struct job *j = job_at(f, f->jhead++);
		struct wp_gpu_done d = { .status = -ECANCELED,
					 .mode = (enum wp_gpu_mode)j->mode,
					 .len = j->len,
					 .host_copies = j->host_copies,
					 .batch = j->batch,
					 .copies = j->copies,
					 .ns = wp_now_ns() - j->t0 };

		j->cb(j->arg, &d);
	}
	f->in_poll--;
	/* Called from one of our own completions: feed_poll frees on its way
	 * out. */
	if (!f->in_poll)
		feed_free(f);
}

static void make_explain(struct wp_gpu_feed *f, const char *note)
{
	char batching[160], slots[96];

	if (f->used == WP_GPU_PAGEABLE)
		snprintf(
			batching, sizeof(batching),
			"one cudaMemcpyAsync per payload from pageable memory (driver bounce copy)");
	else if (!f->o.small_max)
		snprintf(batching, sizeof(batching), "no batching");
	else
		snprintf(batching, sizeof(batching), "payloads <= %u B batched, up to %u per %s",
			 f->o.small_max, f->o.batch_max,
			 f->used == WP_GPU_MAPPED ? "kernel" : "copy");
	if (f->nslots)
		snprintf(slots, sizeof(slots), "%u x %u KiB pinned staging slots (double-buffered)",
			 f->nslots, f->o.slot_bytes >> 10);
	else
		snprintf(slots, sizeof(slots), "no pinned staging");
	snprintf(f->explain, sizeof(f->explain),
		 "gpu feed: mode %s (asked %s%s); %s; %s; %s; device arena %llu MiB; kitchen %s",
		 wp_gpu_mode_name(f->used), wp_gpu_mode_name(f->asked), note,
		 f->ops->describe(f->bk), slots, batching, (unsigned long long)(f->dev_size >> 20),
		 f->used == WP_GPU_MAPPED ? "on (mapped: the kernel is the reader)"
		 : f->o.kitchen           ? "on (GPU checksum of every payload)"
					  : "off");
}

int wp_gpu_feed_open_ops(struct wp_ctx *ctx, const struct wp_gpu_opts *o,
			 const struct wp_gpu_ops *ops, struct wp_gpu_feed **out)
{
	struct wp_gpu_bk_cfg cfg;
	struct wp_gpu_feed *f;
	struct wp_gpu_opts def;
	char why[256] = "", note[320] = "";
	int ret;

	/* Every failure below logs its reason through ctx's log, or the
	 * process hook when ctx has none (wp_log). */
	if (!WP_OPTS_VALID(o, poll_us)) {
		wp_log(ctx, WP_LOG_ERR,
		       "bad gpu feed options: sz %zu, but this library knows %zu "
		       "bytes of wp_gpu_opts and fields past them are set",
		       o->sz, sizeof(*o));
		return -EINVAL;
	}
	wp_gpu_opts_init(&def);
	opts_take(&def, o);
	o = &def;
	if (opts_check(o, why, sizeof(why)) < 0) {
		wp_log(ctx, WP_LOG_ERR, "bad gpu feed options: %s", why);
		return -EINVAL;
	}
	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->ctx = ctx;
	f->ops = ops;
	f->o = *o;
	f->asked = f->used = o->mode;
	if (o->mode == WP_GPU_GPUDIRECT) {
		wp_gpu_gpudirect_why(why, sizeof(why));
		if (o->select == WP_SELECT_REQUIRE) {
			wp_log(ctx, WP_LOG_ERR, "gpu feed: gpudirect unavailable: %s", why);
			free(f);
			return -EOPNOTSUPP;
		}
		f->used = WP_GPU_PINNED;
		snprintf(note, sizeof(note), "; gpudirect unavailable (%s), fell back to pinned",
			 why);
		wp_log(ctx, WP_LOG_WARN, "gpu feed: gpudirect unavailable (%s): using pinned", why);
	}
	f->nslots = f->used == WP_GPU_PAGEABLE ? 0 : o->slots;

	cfg = (struct wp_gpu_bk_cfg){ .device = o->device,
				      .nstreams = FEED_NSTREAMS,
				      .nevents = FEED_NXFER + 1,
				      .nres = o->max_jobs,
				      .max_segs = o->batch_max };
	ret = ops->open(&cfg, &f->bk, why, sizeof(why));
	if (ret < 0) {
		wp_log(ctx, WP_LOG_ERR, "gpu feed: %s", why);
		f->bk = NULL;
		goto out_free;
	}
	f->dev_size = o->dev_bytes;
	ret = ops->dev_alloc(f->bk, f->dev_size, &f->dev_base);
	if (ret < 0) {
		wp_log(ctx, WP_LOG_ERR, "gpu feed: cannot allocate the %llu MiB device arena: %s",
		       (unsigned long long)(o->dev_bytes >> 20), ops->last_error(f->bk));
		f->dev_base = 0;
		goto out_free;
	}
	ret = -ENOMEM;
	f->jobs = calloc(o->max_jobs, sizeof(*f->jobs));
	f->regions = calloc(o->max_jobs, sizeof(*f->regions));
	f->segs = calloc(o->batch_max, sizeof(*f->segs));
	f->slot = calloc(o->slots, sizeof(*f->slot));
	f->slot_dev = calloc(o->slots, sizeof(*f->slot_dev));
	f->slot_busy = calloc(o->slots, sizeof(*f->slot_busy));
	if (!f->jobs || !f->regions || !f->segs || !f->slot || !f->slot_dev || !f->slot_busy) {
		wp_log(ctx, WP_LOG_ERR, "gpu feed: out of memory");
		goto out_free;
	}
	f->jmask = f->rmask = o->max_jobs - 1;
	for (uint32_t i = 0; i < f->nslots; i++) {
		void *p;

		ret = ops->host_alloc(f->bk, o->slot_bytes, &p);
		if (ret < 0) {
			wp_log(ctx, WP_LOG_ERR,
			       "gpu feed: cannot allocate %u pinned staging slots of %u KiB: %s",
			       f->nslots, o->slot_bytes >> 10, ops->last_error(f->bk));
			goto out_free;
		}
		f->slot[i] = p;
		ret = ops->host_devptr(f->bk, p, &f->slot_dev[i]);
		if (ret < 0) {
			wp_log(ctx, WP_LOG_ERR, "gpu feed: no device alias for a staging slot: %s",
			       ops->last_error(f->bk));
			goto out_free;
		}
	}
	make_explain(f, note);
	f->poller = (struct wp_poller){ .max_wait = feed_max_wait, .poll = feed_poll, .arg = f };
	wp_ctx_poller_add(ctx, &f->poller);
	wp_log(ctx, WP_LOG_INFO, "%s", f->explain);
	*out = f;
	return 0;

out_free:
	feed_free(f); /* never added as a poller: deleting it is a no-op */
	return ret;
}

int wp_gpu_feed_open(struct wp_ctx *ctx, const struct wp_gpu_opts *o, struct wp_gpu_feed **out)
{
	char why[256];
	const struct wp_gpu_ops *ops = wp_gpu_cuda_ops(why, sizeof(why));

	if (!ops) {
		wp_log(ctx, WP_LOG_ERR, "gpu feed: %s", why);
		return -EOPNOTSUPP;
	}
	return wp_gpu_feed_open_ops(ctx, o, ops, out);
}

void wp_gpu_feed_stats(const struct wp_gpu_feed *f, struct wp_gpu_stats *out)
{
	*out = f->st;
}

const char *wp_gpu_feed_explain(const struct wp_gpu_feed *f)
{
	return f->explain;
}

enum wp_gpu_mode wp_gpu_feed_mode(const struct wp_gpu_feed *f)
{
	return f->used;
}
