/* SPDX-License-Identifier: MIT */
/*
 * Internal to the GPU feed (feed*.c): the feed's state and the functions its
 * files share. The feed's CPU logic is everything that decides what the host
 * does to get a payload into device memory, and nothing that talks to CUDA
 * (that is the backend ops table, gpu_ops.h). Always built, so a machine
 * with no GPU still compiles and unit-tests it against a host-memory double.
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
 * The files, one concern each, calling only downwards:
 * - feed.c: open and close, the completion poller, keep/release, the
 *   reference measurement, stats, mode names, the host kitchen checksum;
 * - feed_submit.c: the submit paths (batching, staged chunks, single
 *   transfers, lent buffers);
 * - feed_xfer.c: what the GPU holds until an event completes: the device
 *   arena, staging slots, transfers and streams;
 * - feed_reg.c: registered (pinned) host memory and receive pools.
 *
 * Everything runs on the context's thread; the ctx poller hook (core.h)
 * starts queued batches before the context sleeps and completes jobs after
 * each round. Nothing here is locked.
 */
#ifndef WP_GPU_FEED_H
#define WP_GPU_FEED_H

#include <stdbool.h>
#include <stdint.h>

#include "core/core.h"
#include "gpu/gpu_ops.h"

#define FEED_NSTREAMS 2
#define FEED_NXFER 64             /* transfers in flight (one event each) */
#define FEED_REF_EVENT FEED_NXFER /* the reference measurement's own event */
#define FEED_DEV_ALIGN 256ull     /* device regions: cudaMalloc's own alignment */
#define FEED_PAYLOAD_ALIGN 16u    /* payloads inside a batch: the kernel loads words */
#define FEED_MAX_SLOTS 64u

struct reg {
	uint8_t *addr;
	size_t len;
	uint64_t dev; /* the device's alias of addr (mapped) */
	uint32_t refs;
	uint32_t busy; /* in-flight reads in place: unregistering waits */
	bool owned;    /* wp_gpu_host_alloc: freed, not just unpinned */
};

struct xfer {
	bool live;
	int32_t slot;                /* staging slot it reads, or -1 */
	uint64_t seq;                /* issue order: waits pick the oldest */
	uint64_t job_first, job_end; /* jobs it counts for: [first, end) */
};

struct job {
	wp_gpu_done_fn cb;
	void *arg;
	const uint8_t *src; /* staged job still being chunked: the source */
	uint8_t *reg_addr;  /* registered range read in place (busy held), or NULL */
	uint64_t len, host_copies, dev, t0, staged;
	int64_t region;      /* device arena region, -1 (mapped) */
	uint32_t xfers_left; /* transfers not yet complete */
	uint32_t batch, copies, stream;
	int status;
	uint8_t mode;
	bool summed;
	bool staging;  /* chunks still to stage (non-lent, slots were busy) */
	bool in_batch; /* in the batch being filled */
};

struct region {
	uint64_t seq;
	uint64_t start, end; /* absolute arena positions */
	uint32_t refs;       /* jobs not yet completed or kept */
};

struct batch {
	bool open;
	int32_t slot; /* staging slot being filled, -1 until a copy needs one */
	uint32_t fill, n, stream;
	uint64_t dev; /* PINNED: the device address of the slot's byte 0 */
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
	bool staging; /* jobs[jtail - 1] is still being chunked */

	/* transfers */
	struct xfer xf[FEED_NXFER];
	uint32_t xf_live;
	uint64_t xf_seq;
	uint32_t next_stream;

	struct batch b;
	struct wp_gpu_seg *segs; /* batch_max: the open batch's kitchen segments */

	struct reg *regs; /* sorted by addr, no overlaps */
	uint32_t nregs, regs_cap;

	/* completion being run */
	int in_poll;
	bool close_req;
	struct job *cur;
	bool cur_kept;

	void *ref_buf; /* the reference measurement's pinned buffer */
	size_t ref_len;

	struct wp_gpu_stats st;
};

/* ---- small helpers --------------------------------------------------- */

static inline uint64_t align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) / a * a;
}

static inline struct job *job_at(struct wp_gpu_feed *f, uint64_t seq)
{
	return &f->jobs[seq & f->jmask];
}

static inline struct region *region_at(struct wp_gpu_feed *f, uint64_t seq)
{
	return &f->regions[seq & f->rmask];
}

/* A job's checksum result slot: its index in the job ring. */
static inline uint32_t res_slot(struct wp_gpu_feed *f, const struct job *j)
{
	return (uint32_t)((uint64_t)(j - f->jobs));
}

/* A backend call failed: count it and log what the device said. */
static inline void dev_error(struct wp_gpu_feed *f, const char *what)
{
	f->st.errors++;
	wp_log(f->ctx, WP_LOG_ERR, "gpu feed: %s: %s", what, f->ops->last_error(f->bk));
}

/* ---- feed_submit.c ----------------------------------------------------- */

/* Start the open batch's copy (PINNED) or kernel (MAPPED). */
void wpf_batch_close(struct wp_gpu_feed *f);
/* Copy the staged job's next chunks through free slots. wait: block on
 * the oldest transfer when none is free (lent buffers); else leave the rest
 * for the poller. */
void wpf_stage_chunks(struct wp_gpu_feed *f, uint64_t seq, bool wait);

/* ---- feed_xfer.c ------------------------------------------------------- */

/* A contiguous device region of len bytes: 0, or -ENOBUFS (arena or region
 * ring full). */
int wpf_arena_alloc(struct wp_gpu_feed *f, uint64_t len, uint64_t *dev, int64_t *rseq);
/* Release regions whose last user is gone, oldest first (a ring). */
void wpf_arena_advance(struct wp_gpu_feed *f);
/* Drop one job's (or keeper's) reference to region seq (-1: none). */
void wpf_region_put(struct wp_gpu_feed *f, int64_t seq);
/* Take back what the GPU finished, running no callbacks (safe inside a
 * submit). Returns how many transfers finished. */
int wpf_reclaim(struct wp_gpu_feed *f);
/* A free staging slot (reclaiming first if none is), or -1. */
int32_t wpf_slot_get(struct wp_gpu_feed *f);
void wpf_slot_put(struct wp_gpu_feed *f, int32_t i);
/* A free transfer (reclaiming first if none is), or -1. */
int wpf_xfer_get(struct wp_gpu_feed *f);
uint32_t wpf_stream_next(struct wp_gpu_feed *f);
/* Record the event that says transfer i is done, covering jobs [first, end). */
void wpf_xfer_start(struct wp_gpu_feed *f, int i, uint32_t stream, int32_t slot, uint64_t first,
		    uint64_t end);
/* Transfer i finished (or failed with err): its slot and its jobs move on.
 * Runs no callbacks. */
void wpf_xfer_done(struct wp_gpu_feed *f, int i, int err);
/* Block on the oldest transfer (holding a slot if need_slot): 0, or
 * -EDEADLK when nothing in flight can free what is waited for. */
int wpf_wait_oldest(struct wp_gpu_feed *f, bool need_slot);

/* ---- feed_reg.c -------------------------------------------------------- */

/* The registered range holding all of [p, p+len), or NULL. */
struct reg *wpf_reg_find(struct wp_gpu_feed *f, const void *p, size_t len);
/* Unpin (or free, if the feed allocated it) and forget a range. */
void wpf_reg_remove(struct wp_gpu_feed *f, struct reg *r);

#endif
