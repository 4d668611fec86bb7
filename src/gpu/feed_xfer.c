// SPDX-License-Identifier: MIT
/*
 * What the GPU holds until one of its events completes (feed.h has the
 * whole design): the device arena (a ring of regions, released in order),
 * the pinned staging slots, and the transfers, each with its event, that
 * say when a slot may be refilled and a job is done. Nothing here runs a
 * completion callback, so every function is safe inside a submit.
 */
#include <errno.h>

#include "gpu/feed.h"

/* ---- the device arena ---------------------------------------------- */

int wpf_arena_alloc(struct wp_gpu_feed *f, uint64_t len, uint64_t *dev, int64_t *rseq)
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
void wpf_arena_advance(struct wp_gpu_feed *f)
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

void wpf_region_put(struct wp_gpu_feed *f, int64_t seq)
{
	struct region *r;

	if (seq < 0)
		return;
	r = region_at(f, (uint64_t)seq);
	if (r->seq != (uint64_t)seq || !r->refs)
		return;
	if (--r->refs == 0)
		wpf_arena_advance(f);
}

/* ---- slots and transfers --------------------------------------------- */

/* Take back what the GPU finished since the last poll, without running
 * callbacks (safe inside a submit): called when a slot or transfer runs
 * out, before saying -EAGAIN or waiting. Returns how many finished. */
int wpf_reclaim(struct wp_gpu_feed *f)
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
			wpf_xfer_done(f, i, q < 0 ? -EIO : 0);
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

int32_t wpf_slot_get(struct wp_gpu_feed *f)
{
	int32_t i = slot_take(f);

	if (i < 0 && wpf_reclaim(f))
		i = slot_take(f);
	return i;
}

void wpf_slot_put(struct wp_gpu_feed *f, int32_t i)
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

int wpf_xfer_get(struct wp_gpu_feed *f)
{
	int i = xfer_free(f);

	if (i < 0 && wpf_reclaim(f))
		i = xfer_free(f);
	return i;
}

uint32_t wpf_stream_next(struct wp_gpu_feed *f)
{
	uint32_t s = f->next_stream;

	f->next_stream = (s + 1) % FEED_NSTREAMS;
	return s;
}

/* Record the event that says transfer i is done, covering jobs [first, end). */
void wpf_xfer_start(struct wp_gpu_feed *f, int i, uint32_t stream, int32_t slot, uint64_t first,
		    uint64_t end)
{
	struct xfer *x = &f->xf[i];

	*x = (struct xfer){ .live = true,
			    .slot = slot,
			    .seq = f->xf_seq++,
			    .job_first = first,
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
void wpf_xfer_done(struct wp_gpu_feed *f, int i, int err)
{
	struct xfer *x = &f->xf[i];

	wpf_slot_put(f, x->slot);
	for (uint64_t s = x->job_first; s < x->job_end; s++) {
		struct job *j = job_at(f, s);

		if (err && !j->status)
			j->status = err;
		if (j->xfers_left && --j->xfers_left == 0 && !j->staging && j->reg_addr) {
			struct reg *r = wpf_reg_find(f, j->reg_addr, 1);

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
int wpf_wait_oldest(struct wp_gpu_feed *f, bool need_slot)
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
	wpf_xfer_done(f, best, ret < 0 ? -EIO : 0);
	return 0;
}
