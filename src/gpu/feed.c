// SPDX-License-Identifier: MIT
/*
 * The GPU feed's CPU logic: everything that decides what the host does to
 * get a payload into device memory, and nothing that talks to CUDA (that is
 * the backend ops table, gpu_ops.h). Always built, so a machine with no GPU
 * still compiles and unit-tests it against a host-memory double.
 *
 * - Jobs: one per submitted payload, in a ring, completed strictly in
 *   submission order (a later copy may finish first on another stream; its
 *   completion waits for the earlier ones).
 * - Transfers ("xfers"): one per copy or kernel the GPU runs, each with its
 *   own event. A transfer covers a range of jobs (a batch) or one chunk of a
 *   staged job. When its event completes, its staging slot is free again:
 *   slots are reused only after the GPU has read them.
 * - Staging slots: pinned (and device-mapped) host buffers. Small payloads
 *   are copied into the slot being filled (one memcpy each) and the whole
 *   slot goes in one cudaMemcpyAsync when it closes: full, batch_max
 *   payloads, a non-batched submit, or the end of the progress round. Large
 *   unregistered payloads go through the slots in chunks, the CPU filling one
 *   while the previous one DMAs (double buffering).
 * - The device arena: a ring of device memory; each job or batch takes a
 *   contiguous region, released in order when its completions have run (or
 *   their keepers released them).
 * - Registrations: a sorted array of pinned host ranges (refcounted, no
 *   partial overlaps), each with a busy count of in-flight reads that makes
 *   unregistering it refuse (-EBUSY) until the GPU is done.
 *
 * Everything runs on the context's thread; the ctx poller hook (core.h)
 * starts queued batches before the context sleeps and completes jobs after
 * each round.
 */
#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "core/opts.h"
#include "gpu/gpu_ops.h"
#include "gpu/kitchen_sum.h"

#define FEED_NSTREAMS 2
#define FEED_NXFER 64         /* transfers in flight (one event each) */
#define FEED_REF_EVENT FEED_NXFER /* the reference measurement's own event */
#define FEED_DEV_ALIGN 256ull /* device regions: cudaMalloc's own alignment */
#define FEED_PAYLOAD_ALIGN 16u /* payloads inside a batch: the kernel loads words */
#define FEED_MAX_SLOTS 64u

struct reg {
	uint8_t *addr;
	size_t len;
	uint64_t dev;       /* the device's alias of addr (mapped) */
	uint32_t refs;
	uint32_t busy;      /* in-flight reads in place: unregistering waits */
	bool owned;         /* wp_gpu_host_alloc: freed, not just unpinned */
};

struct xfer {
	bool live;
	int32_t slot;        /* staging slot it reads, or -1 */
	uint64_t seq;        /* issue order: waits pick the oldest */
	uint64_t job_first, job_end; /* jobs it counts for: [first, end) */
};

struct job {
	wp_gpu_done_fn cb;
	void *arg;
	const uint8_t *src;  /* staged job still being chunked: the source */
	uint8_t *reg_addr;   /* registered range read in place (busy held), or NULL */
	uint64_t len, host_copies, dev, t0, staged;
	int64_t region;      /* device arena region, -1 (mapped) */
	uint32_t xfers_left; /* transfers not yet complete */
	uint32_t batch, copies, stream;
	int status;
	uint8_t mode;
	bool summed;
	bool staging;        /* chunks still to stage (non-lent, slots were busy) */
	bool in_batch;       /* in the batch being filled */
};

struct region {
	uint64_t seq;
	uint64_t start, end; /* absolute arena positions */
	uint32_t refs;       /* jobs not yet completed or kept */
};

struct batch {
	bool open;
	int32_t slot;        /* staging slot being filled, -1 until a copy needs one */
	uint32_t fill, n, stream;
	uint64_t dev;        /* PINNED: the device address of the slot's byte 0 */
	int64_t region;
	uint64_t job_first;
};

struct wp_gpu_feed {
	struct wp_ctx *ctx;
	struct wp_poller poller;
	const struct wp_gpu_ops *ops;
	void *bk;
	struct wp_gpu_opts o;
	enum wp_gpu_mode asked, used;
	char explain[640];

	/* device arena */
	uint64_t dev_base, dev_size, dev_head, dev_tail;
	struct region *regions;
	uint64_t rhead, rtail, rmask;

	/* staging */
	uint8_t **slot;
	uint64_t *slot_dev;
	bool *slot_busy;
	uint32_t nslots, slots_busy, slot_next;

	/* jobs */
	struct job *jobs;
	uint64_t jhead, jtail, jmask;
	bool staging;        /* jobs[jtail - 1] is still being chunked */

	/* transfers */
	struct xfer xf[FEED_NXFER];
	uint32_t xf_live;
	uint64_t xf_seq;
	uint32_t next_stream;

	struct batch b;
	struct wp_gpu_seg *segs; /* batch_max: the open batch's kitchen segments */

	struct reg *regs;    /* sorted by addr, no overlaps */
	uint32_t nregs, regs_cap;

	/* completion being run */
	int in_poll;
	bool close_req;
	struct job *cur;
	bool cur_kept;

	void *ref_buf;       /* the reference measurement's pinned buffer */
	size_t ref_len;

	struct wp_gpu_stats st;
};

/* ---- small helpers --------------------------------------------------- */

static uint64_t align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) / a * a;
}

static struct job *job_at(struct wp_gpu_feed *f, uint64_t seq)
{
	return &f->jobs[seq & f->jmask];
}

static void dev_error(struct wp_gpu_feed *f, const char *what)
{
	f->st.errors++;
	wp_log(f->ctx, WP_LOG_ERR, "gpu feed: %s: %s", what, f->ops->last_error(f->bk));
}

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

/* ---- registrations ----------------------------------------------------- */

/* Index of the last range starting at or below p, or -1. */
static int reg_floor(const struct wp_gpu_feed *f, const uint8_t *p)
{
	int lo = 0, hi = (int)f->nregs - 1, ans = -1;

	while (lo <= hi) {
		int mid = (lo + hi) / 2;

		if (f->regs[mid].addr <= p) {
			ans = mid;
			lo = mid + 1;
		} else {
			hi = mid - 1;
		}
	}
	return ans;
}

/* The range holding all of [p, p+len), or NULL. */
static struct reg *reg_find(struct wp_gpu_feed *f, const void *p, size_t len)
{
	const uint8_t *b = p;
	int i = reg_floor(f, b);

	if (i < 0)
		return NULL;
	if (len > f->regs[i].len || b - f->regs[i].addr > (ptrdiff_t)(f->regs[i].len - len))
		return NULL;
	return &f->regs[i];
}

static int reg_insert(struct wp_gpu_feed *f, void *addr, size_t len, bool readonly, bool owned)
{
	uint8_t *a = addr;
	struct reg *r;
	uint64_t dev = 0;
	int i, ret;

	if (f->nregs == f->regs_cap) {
		uint32_t cap = f->regs_cap ? f->regs_cap * 2 : 16;
		struct reg *n = realloc(f->regs, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		f->regs = n;
		f->regs_cap = cap;
	}
	if (!owned) {
		ret = f->ops->host_register(f->bk, addr, len, readonly);
		if (ret < 0) {
			wp_log(f->ctx, WP_LOG_ERR, "gpu feed: cannot pin %zu bytes at %p: %s", len,
			       addr, f->ops->last_error(f->bk));
			return ret;
		}
	}
	ret = f->ops->host_devptr(f->bk, addr, &dev);
	if (ret < 0) {
		wp_log(f->ctx, WP_LOG_ERR, "gpu feed: no device alias for %p: %s", addr,
		       f->ops->last_error(f->bk));
		if (!owned)
			f->ops->host_unregister(f->bk, addr);
		return ret;
	}
	i = reg_floor(f, a) + 1;
	memmove(&f->regs[i + 1], &f->regs[i], (f->nregs - (uint32_t)i) * sizeof(*r));
	r = &f->regs[i];
	*r = (struct reg){ .addr = a, .len = len, .dev = dev, .refs = 1, .owned = owned };
	f->nregs++;
	f->st.regs = f->nregs;
	f->st.reg_bytes += len;
	return 0;
}

int wp_gpu_register(struct wp_gpu_feed *f, void *addr, size_t len, uint32_t flags)
{
	uint8_t *a = addr;
	struct reg *r;
	int i;

	if (!addr || !len || (uintptr_t)a + len < (uintptr_t)a)
		return -EINVAL;
	r = reg_find(f, addr, len);
	if (r) {
		/* Inside a registered range: the registration cache. */
		r->refs++;
		return 0;
	}
	/* Partial overlap with the range below or the one above. */
	i = reg_floor(f, a + len - 1);
	if (i >= 0 && f->regs[i].addr + f->regs[i].len > a)
		return -EEXIST;
	return reg_insert(f, addr, len, flags & WP_MEM_READONLY, false);
}

static void reg_remove(struct wp_gpu_feed *f, struct reg *r)
{
	uint32_t i = (uint32_t)(r - f->regs);

	if (r->owned)
		f->ops->host_free(f->bk, r->addr);
	else
		f->ops->host_unregister(f->bk, r->addr);
	f->st.reg_bytes -= r->len;
	memmove(&f->regs[i], &f->regs[i + 1], (f->nregs - i - 1) * sizeof(*r));
	f->nregs--;
	f->st.regs = f->nregs;
}

int wp_gpu_unregister(struct wp_gpu_feed *f, void *addr)
{
	struct reg *r = addr ? reg_find(f, addr, 1) : NULL;

	if (!r)
		return -ENOENT;
	if (r->refs == 1 && r->busy)
		return -EBUSY;
	if (--r->refs == 0)
		reg_remove(f, r);
	return 0;
}

static int pools_of(struct wp_gpu_feed *f, struct wp_ep *ep, struct wp_mem_range *r, uint32_t max)
{
	int n = ep ? wp_ep_pools(ep, r, max) : wp_ctx_pools(f->ctx, r, max);

	return n > (int)max ? (int)max : n;
}

/*
 * What can be pinned is pinned: a range the driver refuses (say, read-only
 * memory on a device without cudaHostRegisterReadOnly) only means payloads
 * received there are staged, which is logged, not fatal.
 */
int wp_gpu_register_pools(struct wp_gpu_feed *f, struct wp_ep *ep)
{
	struct wp_mem_range r[8];
	int n = pools_of(f, ep, r, 8), done = 0, err = 0, ret;

	for (int i = 0; i < n; i++) {
		if (!r[i].len)
			continue;
		ret = wp_gpu_register(f, r[i].addr, r[i].len, r[i].flags);
		if (ret < 0) {
			wp_log(f->ctx, WP_LOG_WARN,
			       "gpu feed: receive pool (kind %u, %zu bytes%s) not registered: %s; "
			       "payloads received there are staged", r[i].kind, r[i].len,
			       r[i].flags & WP_MEM_READONLY ? ", read-only" : "", strerror(-ret));
			err = ret;
			continue;
		}
		done++;
	}
	return done || !err ? done : err;
}

int wp_gpu_unregister_pools(struct wp_gpu_feed *f, struct wp_ep *ep)
{
	struct wp_mem_range r[8];
	int n = pools_of(f, ep, r, 8), ret = 0;

	for (int i = 0; i < n; i++) {
		int e;

		if (!r[i].len)
			continue;
		e = wp_gpu_unregister(f, r[i].addr);
		/* -ENOENT: a range register_pools could not pin. */
		if (e < 0 && e != -ENOENT && !ret)
			ret = e;
	}
	return ret;
}

void *wp_gpu_host_alloc(struct wp_gpu_feed *f, size_t len)
{
	void *p = NULL;

	if (!len || f->ops->host_alloc(f->bk, len, &p) < 0)
		return NULL;
	if (reg_insert(f, p, len, false, true) < 0) {
		f->ops->host_free(f->bk, p);
		return NULL;
	}
	return p;
}

void wp_gpu_host_free(struct wp_gpu_feed *f, void *p)
{
	struct reg *r = p ? reg_find(f, p, 1) : NULL;

	if (!r || !r->owned || r->addr != p) {
		wp_log(f->ctx, WP_LOG_ERR, "wp_gpu_host_free: %p is not from wp_gpu_host_alloc", p);
		return;
	}
	if (r->busy) {
		wp_log(f->ctx, WP_LOG_ERR, "wp_gpu_host_free: %p is still being read by the GPU", p);
		return;
	}
	reg_remove(f, r);
}

/* ---- the device arena ---------------------------------------------- */

static struct region *region_at(struct wp_gpu_feed *f, uint64_t seq)
{
	return &f->regions[seq & f->rmask];
}

static int arena_alloc(struct wp_gpu_feed *f, uint64_t len, uint64_t *dev, int64_t *rseq)
{
	uint64_t n = align_up(len, FEED_DEV_ALIGN), pos, skip, start;
	struct region *r;

	if (f->rtail - f->rhead > f->rmask)
		return -ENOBUFS;
	pos = f->dev_head % f->dev_size;
	skip = pos + n > f->dev_size ? f->dev_size - pos : 0; /* regions never wrap */
	if (n > f->dev_size || f->dev_head + skip + n - f->dev_tail > f->dev_size)
		return -ENOBUFS;
	start = f->dev_head + skip;
	f->dev_head = start + n;
	r = region_at(f, f->rtail);
	*r = (struct region){ .seq = f->rtail, .start = start, .end = f->dev_head, .refs = 0 };
	*rseq = (int64_t)f->rtail++;
	*dev = f->dev_base + start % f->dev_size;
	f->st.dev_used = f->dev_head - f->dev_tail;
	return 0;
}

/* Release regions whose last user is gone, oldest first (a ring). */
static void arena_advance(struct wp_gpu_feed *f)
{
	while (f->rhead < f->rtail) {
		struct region *r = region_at(f, f->rhead);

		if (r->refs || (f->b.open && f->b.region == (int64_t)f->rhead))
			break;
		f->dev_tail = r->end;
		f->rhead++;
	}
	f->st.dev_used = f->dev_head - f->dev_tail;
}

static void region_put(struct wp_gpu_feed *f, int64_t seq)
{
	struct region *r;

	if (seq < 0)
		return;
	r = region_at(f, (uint64_t)seq);
	if (r->seq != (uint64_t)seq || !r->refs)
		return;
	if (--r->refs == 0)
		arena_advance(f);
}

/* ---- slots and transfers --------------------------------------------- */

static void xfer_done(struct wp_gpu_feed *f, int i, int err);

/* Take back what the GPU finished since the last poll, without running
 * callbacks (safe inside a submit): called when a slot or transfer runs
 * out, before saying -EAGAIN or waiting. Returns how many finished. */
static int reclaim(struct wp_gpu_feed *f)
{
	int n = 0;

	for (int i = 0; i < FEED_NXFER; i++) {
		int q;

		if (!f->xf[i].live)
			continue;
		q = f->ops->event_query(f->bk, (uint32_t)i);
		if (q < 0)
			dev_error(f, "cudaEventQuery");
		if (q != 0) {
			xfer_done(f, i, q < 0 ? -EIO : 0);
			n++;
		}
	}
	return n;
}

static int32_t slot_take(struct wp_gpu_feed *f)
{
	for (uint32_t k = 0; k < f->nslots; k++) {
		uint32_t i = (f->slot_next + k) % f->nslots;

		if (!f->slot_busy[i]) {
			f->slot_busy[i] = true;
			f->slots_busy++;
			f->slot_next = (i + 1) % f->nslots;
			f->st.slots_busy = f->slots_busy;
			return (int32_t)i;
		}
	}
	return -1;
}

static int32_t slot_get(struct wp_gpu_feed *f)
{
	int32_t i = slot_take(f);

	if (i < 0 && reclaim(f))
		i = slot_take(f);
	return i;
}

static void slot_put(struct wp_gpu_feed *f, int32_t i)
{
	if (i < 0 || !f->slot_busy[i])
		return;
	f->slot_busy[i] = false;
	f->slots_busy--;
	f->st.slots_busy = f->slots_busy;
}

static int xfer_free(struct wp_gpu_feed *f)
{
	for (uint32_t i = 0; i < FEED_NXFER; i++)
		if (!f->xf[i].live)
			return (int)i;
	return -1;
}

static int xfer_get(struct wp_gpu_feed *f)
{
	int i = xfer_free(f);

	if (i < 0 && reclaim(f))
		i = xfer_free(f);
	return i;
}

static uint32_t stream_next(struct wp_gpu_feed *f)
{
	uint32_t s = f->next_stream;

	f->next_stream = (s + 1) % FEED_NSTREAMS;
	return s;
}

/* Record the event that says transfer i is done, covering jobs [first, end). */
static void xfer_start(struct wp_gpu_feed *f, int i, uint32_t stream, int32_t slot,
		       uint64_t first, uint64_t end)
{
	struct xfer *x = &f->xf[i];

	*x = (struct xfer){ .live = true, .slot = slot, .seq = f->xf_seq++, .job_first = first,
			    .job_end = end };
	f->xf_live++;
	f->st.xfers_inflight = f->xf_live;
	for (uint64_t s = first; s < end; s++)
		job_at(f, s)->xfers_left++;
	if (f->ops->event_record(f->bk, stream, (uint32_t)i) < 0) {
		/* Without an event we cannot know when the slot is read: the
		 * device is in trouble; fail the jobs rather than guess. */
		dev_error(f, "cudaEventRecord");
		for (uint64_t s = first; s < end; s++)
			job_at(f, s)->status = -EIO;
		f->ops->event_wait(f->bk, (uint32_t)i);
	}
}

/* Transfer i finished (or failed with err): its slot and its jobs move on.
 * Runs no callbacks, so it is safe inside a submit. */
static void xfer_done(struct wp_gpu_feed *f, int i, int err)
{
	struct xfer *x = &f->xf[i];

	slot_put(f, x->slot);
	for (uint64_t s = x->job_first; s < x->job_end; s++) {
		struct job *j = job_at(f, s);

		if (err && !j->status)
			j->status = err;
		if (j->xfers_left && --j->xfers_left == 0 && !j->staging && j->reg_addr) {
			struct reg *r = reg_find(f, j->reg_addr, 1);

			if (r && r->busy)
				r->busy--;
			j->reg_addr = NULL;
		}
	}
	x->live = false;
	f->xf_live--;
	f->st.xfers_inflight = f->xf_live;
}

/* Block on the oldest transfer (holding a slot if need_slot). */
static int wait_oldest(struct wp_gpu_feed *f, bool need_slot)
{
	int best = -1, ret;

	for (int i = 0; i < FEED_NXFER; i++) {
		if (!f->xf[i].live || (need_slot && f->xf[i].slot < 0))
			continue;
		if (best < 0 || f->xf[i].seq < f->xf[best].seq)
			best = i;
	}
	if (best < 0)
		return -EDEADLK; /* nothing in flight can free what we wait for */
	ret = f->ops->event_wait(f->bk, (uint32_t)best);
	if (ret < 0)
		dev_error(f, "waiting for a transfer");
	xfer_done(f, best, ret < 0 ? -EIO : 0);
	return 0;
}

/* ---- jobs ------------------------------------------------------------- */

static struct job *job_new(struct wp_gpu_feed *f, const void *buf, size_t len, wp_gpu_done_fn cb,
			   void *arg)
{
	struct job *j = job_at(f, f->jtail);

	*j = (struct job){ .cb = cb, .arg = arg, .src = buf, .len = len, .t0 = wp_now_ns(),
			   .region = -1, .batch = 1, .mode = (uint8_t)f->used,
			   .summed = f->o.kitchen || f->used == WP_GPU_MAPPED };
	f->jtail++;
	f->st.jobs_inflight = (uint32_t)(f->jtail - f->jhead);
	return j;
}

static uint32_t res_slot(struct wp_gpu_feed *f, const struct job *j)
{
	return (uint32_t)((uint64_t)(j - f->jobs));
}

static void fail_range(struct wp_gpu_feed *f, uint64_t first, uint64_t end, const char *what)
{
	dev_error(f, what);
	for (uint64_t s = first; s < end; s++)
		job_at(f, s)->status = -EIO;
}

/* ---- batching ---------------------------------------------------------- */

/* Start the open batch's copy (PINNED) or kernel (MAPPED). */
static void batch_close(struct wp_gpu_feed *f)
{
	struct batch *b = &f->b;
	uint64_t first = b->job_first, end = first + b->n;
	int xi;

	if (!b->open)
		return;
	b->open = false;
	for (uint64_t s = first; s < end; s++)
		job_at(f, s)->in_batch = false;
	/* batch_open saw a free transfer, and nothing takes one while a batch
	 * is open (every other submit closes the batch first). */
	xi = xfer_get(f);
	if (xi < 0) {
		fail_range(f, first, end, "no transfer free for a batch (bug)");
		slot_put(f, b->slot);
		return;
	}
	if (f->used == WP_GPU_PINNED) {
		struct region *r = region_at(f, (uint64_t)b->region);

		/* Give back the unused tail of the slot-sized reservation. */
		if (r->seq == f->rtail - 1 && f->dev_head == r->end) {
			r->end = r->start + align_up(b->fill, FEED_DEV_ALIGN);
			f->dev_head = r->end;
			f->st.dev_used = f->dev_head - f->dev_tail;
		}
		if (f->ops->copy(f->bk, b->stream, b->dev, f->slot[b->slot], b->fill, true) < 0)
			fail_range(f, first, end, "cudaMemcpyAsync (batch)");
		f->st.dma_copies++;
	}
	if ((f->o.kitchen || f->used == WP_GPU_MAPPED) &&
	    f->ops->kitchen(f->bk, b->stream, (uint32_t)xi, f->segs, b->n) < 0)
		fail_range(f, first, end, "kitchen launch (batch)");
	if (f->o.kitchen || f->used == WP_GPU_MAPPED)
		f->st.kernels++;
	f->st.batches++;
	f->st.batched_payloads += b->n;
	for (uint64_t s = first; s < end; s++)
		job_at(f, s)->batch = b->n;
	xfer_start(f, xi, b->stream, b->slot, first, end);
	arena_advance(f);
}

/* Open a batch: a transfer reserved for it, PINNED a slot-sized device
 * region. 0, -EAGAIN (no transfer free), -ENOBUFS (arena). */
static int batch_open(struct wp_gpu_feed *f)
{
	struct batch *b = &f->b;
	int ret;

	if (xfer_get(f) < 0)
		return -EAGAIN;
	*b = (struct batch){ .slot = -1, .region = -1, .job_first = f->jtail,
			     .stream = stream_next(f) };
	if (f->used == WP_GPU_PINNED) {
		ret = arena_alloc(f, f->o.slot_bytes, &b->dev, &b->region);
		if (ret < 0)
			return ret;
	}
	b->open = true;
	return 0;
}

/*
 * Add a small payload to the batch. copy: into the staging slot (PINNED
 * always; MAPPED when the bytes are not registered, or only lent). 0,
 * -EAGAIN (no slot or transfer: caller waits or refuses), -ENOBUFS.
 */
static int batch_add(struct wp_gpu_feed *f, const void *buf, size_t len, bool copy,
		     struct reg *r, wp_gpu_done_fn cb, void *arg)
{
	struct batch *b = &f->b;
	uint32_t off = (uint32_t)align_up(b->fill, FEED_PAYLOAD_ALIGN);
	struct job *j;
	int ret;

	if (b->open && (b->n == f->o.batch_max || (copy && off + len > f->o.slot_bytes))) {
		batch_close(f);
		off = 0;
	}
	if (!b->open) {
		ret = batch_open(f);
		if (ret < 0)
			return ret;
		off = 0;
	}
	if (copy && b->slot < 0) {
		b->slot = slot_get(f);
		if (b->slot < 0) {
			if (!b->n) {
				/* Nothing in it yet: undo the open. */
				b->open = false;
				if (b->region >= 0) {
					f->dev_head = region_at(f, (uint64_t)b->region)->start;
					f->rtail--;
					f->st.dev_used = f->dev_head - f->dev_tail;
				}
			}
			return -EAGAIN;
		}
	}
	j = job_new(f, buf, len, cb, arg);
	j->in_batch = true;
	j->stream = b->stream;
	if (copy) {
		memcpy(f->slot[b->slot] + off, buf, len);
		j->host_copies = len;
		f->st.host_copied += len;
		b->fill = off + (uint32_t)len;
		j->dev = f->used == WP_GPU_PINNED ? b->dev + off : f->slot_dev[b->slot] + off;
	} else {
		/* MAPPED, in place: the kernel reads the registered bytes. */
		j->dev = r->dev + (uint64_t)((const uint8_t *)buf - r->addr);
		j->reg_addr = r->addr;
		r->busy++;
	}
	if (f->used == WP_GPU_PINNED) {
		j->region = b->region;
		region_at(f, (uint64_t)b->region)->refs++;
		j->copies = 1;
	} else {
		f->st.mapped_bytes += len;
	}
	f->segs[b->n] = (struct wp_gpu_seg){ .src = j->dev, .len = len, .res = res_slot(f, j) };
	b->n++;
	if (b->n == f->o.batch_max)
		batch_close(f);
	return 0;
}

/* ---- large payloads -------------------------------------------------- */

/* Launch the kitchen over one job on its stream (slot: its transfer). */
static void job_kitchen(struct wp_gpu_feed *f, struct job *j, uint32_t slot)
{
	struct wp_gpu_seg s = { .src = j->dev, .len = j->len, .res = res_slot(f, j) };

	if (!f->o.kitchen && f->used != WP_GPU_MAPPED)
		return;
	f->st.kernels++;
	if (f->ops->kitchen(f->bk, j->stream, slot, &s, 1) < 0) {
		dev_error(f, "kitchen launch");
		j->status = -EIO;
	}
}

/* Copy the staged job's next chunks through free slots. wait: block on
 * the oldest transfer when none is free (lent buffers); else leave the rest
 * for the poller. */
static void stage_chunks(struct wp_gpu_feed *f, uint64_t seq, bool wait)
{
	struct job *j = job_at(f, seq);

	while (j->staged < j->len) {
		uint64_t n = j->len - j->staged;
		int32_t slot;
		int xi = xfer_get(f);

		if (xi >= 0 && (slot = slot_get(f)) >= 0) {
			if (n > f->o.slot_bytes)
				n = f->o.slot_bytes;
			memcpy(f->slot[slot], j->src + j->staged, n);
			j->host_copies += n;
			f->st.host_copied += n;
			if (f->ops->copy(f->bk, j->stream, j->dev + j->staged, f->slot[slot], n,
					 true) < 0) {
				dev_error(f, "cudaMemcpyAsync (staged)");
				j->status = -EIO;
			}
			j->copies++;
			f->st.dma_copies++;
			j->staged += n;
			if (j->staged == j->len)
				job_kitchen(f, j, (uint32_t)xi);
			xfer_start(f, xi, j->stream, slot, seq, seq + 1);
			continue;
		}
		if (!wait || wait_oldest(f, xi >= 0) < 0) {
			j->staging = true;
			f->staging = true;
			return;
		}
		f->st.lent_waits++;
	}
	j->staging = false;
	j->src = NULL;
	f->staging = false;
}

/* One transfer of its own: in place from registered memory (PINNED,
 * PAGEABLE on pinned bytes, MAPPED), or a pageable copy. */
static int submit_single(struct wp_gpu_feed *f, const void *buf, size_t len, struct reg *r,
			 bool lent, wp_gpu_done_fn cb, void *arg)
{
	bool mapped = f->used == WP_GPU_MAPPED;
	uint64_t dev = 0, t0;
	int64_t region = -1;
	struct job *j;
	int xi, ret;

	xi = xfer_get(f);
	while (xi < 0) {
		if (!lent || wait_oldest(f, false) < 0)
			return -EAGAIN;
		xi = xfer_get(f);
	}
	if (!mapped) {
		ret = arena_alloc(f, len, &dev, &region);
		if (ret < 0)
			return ret;
	}
	j = job_new(f, buf, len, cb, arg);
	j->region = region;
	j->stream = stream_next(f);
	if (region >= 0)
		region_at(f, (uint64_t)region)->refs++;
	if (r) {
		j->reg_addr = r->addr;
		r->busy++;
	}
	if (mapped) {
		j->dev = r->dev + (uint64_t)((const uint8_t *)buf - r->addr);
		f->st.mapped_bytes += len;
	} else {
		j->dev = dev;
		j->copies = 1;
		f->st.dma_copies++;
		if (r) {
			f->st.direct_bytes += len;
		} else {
			/* Pageable: the driver copies it through its pinned bounce
			 * buffer on this CPU before the DMA (and before returning). */
			j->host_copies = len;
			f->st.host_copied += len;
		}
		if (f->ops->copy(f->bk, j->stream, dev, buf, len, r != NULL) < 0) {
			dev_error(f, "cudaMemcpyAsync");
			j->status = -EIO;
		}
	}
	job_kitchen(f, j, (uint32_t)xi);
	xfer_start(f, xi, j->stream, -1, f->jtail - 1, f->jtail);
	if (lent && r) {
		/* The GPU reads the caller's bytes in place; they are only lent. */
		t0 = wp_now_ns();
		ret = f->ops->event_wait(f->bk, (uint32_t)xi);
		if (ret < 0)
			dev_error(f, "waiting for an in-place read");
		xfer_done(f, xi, ret < 0 ? -EIO : 0);
		f->st.lent_waits++;
		f->st.lent_wait_ns += wp_now_ns() - t0;
	}
	return 0;
}

/* A large payload through the staging slots (PINNED, not registered). */
static int submit_staged(struct wp_gpu_feed *f, const void *buf, size_t len, bool lent,
			 wp_gpu_done_fn cb, void *arg)
{
	uint64_t dev, seq, t0;
	int64_t region;
	struct job *j;
	int ret;

	/* Non-lent: take nothing unless the first chunk can start now. */
	if (!lent && f->slots_busy == f->nslots)
		reclaim(f);
	if (!lent && (xfer_get(f) < 0 || f->slots_busy == f->nslots))
		return -EAGAIN;
	ret = arena_alloc(f, len, &dev, &region);
	if (ret < 0)
		return ret;
	j = job_new(f, buf, len, cb, arg);
	seq = f->jtail - 1;
	j->region = region;
	region_at(f, (uint64_t)region)->refs++;
	j->dev = dev;
	j->stream = stream_next(f);
	t0 = wp_now_ns();
	stage_chunks(f, seq, lent);
	if (lent)
		f->st.lent_wait_ns += wp_now_ns() - t0;
	return 0;
}

static int submit(struct wp_gpu_feed *f, const void *buf, size_t len, bool lent,
		  wp_gpu_done_fn cb, void *arg)
{
	bool small = len <= f->o.small_max && f->used != WP_GPU_PAGEABLE;
	struct reg *r;
	int ret;

	if (!buf || !cb)
		return -EINVAL;
	if (!len || len > f->dev_size)
		return -EMSGSIZE;
	if (f->close_req)
		return -ESHUTDOWN;
	if (f->staging) {
		/* A staged payload is still going through the slots: its
		 * chunks go first. */
		if (!lent)
			goto out_backpressure_again;
		stage_chunks(f, f->jtail - 1, true);
	}
	/* One job slot, and one more region than jobs: keep both rings sane. */
	if (f->jtail - f->jhead > f->jmask) {
		ret = -ENOBUFS;
		goto out_backpressure;
	}
	r = reg_find(f, buf, len);
	if (small) {
		bool copy = f->used == WP_GPU_PINNED || lent || !r;

		if (copy && len > f->o.slot_bytes)
			return -EMSGSIZE;
		for (;;) {
			ret = batch_add(f, buf, len, copy, r, cb, arg);
			if (ret != -EAGAIN || !lent)
				break;
			/* Lent: wait for a slot or transfer to free up. */
			if (f->b.open)
				batch_close(f);
			if (wait_oldest(f, false) < 0)
				break;
			f->st.lent_waits++;
		}
		if (ret < 0)
			goto out_backpressure;
		return 0;
	}
	/* Not batched: whatever is batched goes first, in order. */
	batch_close(f);
	if (f->used == WP_GPU_MAPPED && !r) {
		/* A kernel can read only pinned memory: a one-payload staged batch. */
		if (len > f->o.slot_bytes)
			return -EMSGSIZE;
		for (;;) {
			ret = batch_add(f, buf, len, true, NULL, cb, arg);
			if (ret != -EAGAIN || !lent || wait_oldest(f, false) < 0)
				break;
			f->st.lent_waits++;
		}
		if (ret < 0)
			goto out_backpressure;
		batch_close(f);
		return 0;
	}
	if (f->used == WP_GPU_PINNED && !r)
		ret = submit_staged(f, buf, len, lent, cb, arg);
	else
		ret = submit_single(f, buf, len, r, lent, cb, arg);
	if (ret < 0)
		goto out_backpressure;
	return 0;

out_backpressure_again:
	ret = -EAGAIN;
out_backpressure:
	if (ret == -EAGAIN || ret == -ENOBUFS)
		f->st.backpressure++;
	return ret;
}

int wp_gpu_feed_submit(struct wp_gpu_feed *f, const void *buf, size_t len, wp_gpu_done_fn cb,
		       void *arg)
{
	return submit(f, buf, len, false, cb, arg);
}

int wp_gpu_feed_submit_lent(struct wp_gpu_feed *f, const void *buf, size_t len,
			    wp_gpu_done_fn cb, void *arg)
{
	return submit(f, buf, len, true, cb, arg);
}

int wp_gpu_feed_flush(struct wp_gpu_feed *f)
{
	batch_close(f);
	return 0;
}

/* ---- completion -------------------------------------------------------- */

static void feed_free(struct wp_gpu_feed *f);

/* Query every live transfer; run completions in submission order. */
static int feed_poll(void *arg)
{
	struct wp_gpu_feed *f = arg;
	int n = 0;

	batch_close(f);
	reclaim(f);
	/* Slots just freed: the staged payload's next chunks can go now. */
	if (f->staging)
		stage_chunks(f, f->jtail - 1, false);
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
			region_put(f, j->region);
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

	batch_close(f);
	if (f->staging)
		stage_chunks(f, f->jtail - 1, false);
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
		region_put(f, (int64_t)(handle - 1));
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
		reg_remove(f, &f->regs[f->nregs - 1]);
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
	batch_close(f);
	/* Let every transfer finish: the GPU may still read our slots and
	 * the caller's buffers. */
	for (int i = 0; i < FEED_NXFER; i++)
		if (f->xf[i].live)
			xfer_done(f, i, f->ops->event_wait(f->bk, (uint32_t)i) < 0 ? -EIO : 0);
	if (f->staging) {
		job_at(f, f->jtail - 1)->staging = false;
		f->staging = false;
	}
	f->close_req = true;
	f->in_poll++;
	while (f->jhead < f->jtail) {
		struct job *j = job_at(f, f->jhead++);
		struct wp_gpu_done d = { .status = -ECANCELED, .mode = (enum wp_gpu_mode)j->mode,
					 .len = j->len, .host_copies = j->host_copies,
					 .batch = j->batch, .copies = j->copies,
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
		snprintf(batching, sizeof(batching),
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
		 f->ops->describe(f->bk), slots, batching,
		 (unsigned long long)(f->dev_size >> 20),
		 f->used == WP_GPU_MAPPED ? "on (mapped: the kernel is the reader)"
		 : f->o.kitchen	  ? "on (GPU checksum of every payload)"
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
		wp_log(ctx, WP_LOG_ERR, "bad gpu feed options: sz %zu, but this library knows %zu "
		       "bytes of wp_gpu_opts and fields past them are set", o->sz, sizeof(*o));
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
		snprintf(note, sizeof(note), "; gpudirect unavailable (%s), fell back to pinned", why);
		wp_log(ctx, WP_LOG_WARN, "gpu feed: gpudirect unavailable (%s): using pinned", why);
	}
	f->nslots = f->used == WP_GPU_PAGEABLE ? 0 : o->slots;

	cfg = (struct wp_gpu_bk_cfg){ .device = o->device, .nstreams = FEED_NSTREAMS,
				      .nevents = FEED_NXFER + 1, .nres = o->max_jobs,
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
