// SPDX-License-Identifier: MIT
/*
 * The GPU feed's submit paths (feed.h has the whole design). A payload
 * becomes a job, then goes one of four ways: into the batch being filled
 * (small payloads: copied into a staging slot, or read in place by the
 * MAPPED kernel), through the staging slots in chunks (large unregistered
 * PINNED payloads, double-buffered), or as one transfer of its own (in place
 * from registered memory, or a pageable copy). A refused submit takes
 * nothing; a lent buffer is waited for before the call returns.
 */
#include <errno.h>
#include <string.h>

#include "gpu/feed.h"

/* ---- jobs ------------------------------------------------------------- */

static struct job *job_new(struct wp_gpu_feed *f, const void *buf, size_t len, wp_gpu_done_fn cb,
			   void *arg)
{
	struct job *j = job_at(f, f->jtail);

	*j = (struct job){ .cb = cb,
			   .arg = arg,
			   .src = buf,
			   .len = len,
			   .t0 = wp_now_ns(),
			   .region = -1,
			   .batch = 1,
			   .mode = (uint8_t)f->used,
			   .summed = f->o.kitchen || f->used == WP_GPU_MAPPED };
	f->jtail++;
	f->st.jobs_inflight = (uint32_t)(f->jtail - f->jhead);
	return j;
}

static void fail_range(struct wp_gpu_feed *f, uint64_t first, uint64_t end, const char *what)
{
	dev_error(f, what);
	for (uint64_t s = first; s < end; s++)
		job_at(f, s)->status = -EIO;
}

/* ---- batching ---------------------------------------------------------- */

/* Start the open batch's copy (PINNED) or kernel (MAPPED). */
void wpf_batch_close(struct wp_gpu_feed *f)
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
	xi = wpf_xfer_get(f);
	if (xi < 0) {
		fail_range(f, first, end, "no transfer free for a batch (bug)");
		wpf_slot_put(f, b->slot);
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
	wpf_xfer_start(f, xi, b->stream, b->slot, first, end);
	wpf_arena_advance(f);
}

/* Open a batch: a transfer reserved for it, PINNED a slot-sized device
 * region. 0, -EAGAIN (no transfer free), -ENOBUFS (arena). */
static int batch_open(struct wp_gpu_feed *f)
{
	struct batch *b = &f->b;
	int ret;

	if (wpf_xfer_get(f) < 0)
		return -EAGAIN;
	*b = (struct batch){ .slot = -1,
			     .region = -1,
			     .job_first = f->jtail,
			     .stream = wpf_stream_next(f) };
	if (f->used == WP_GPU_PINNED) {
		ret = wpf_arena_alloc(f, f->o.slot_bytes, &b->dev, &b->region);
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
static int batch_add(struct wp_gpu_feed *f, const void *buf, size_t len, bool copy, struct reg *r,
		     wp_gpu_done_fn cb, void *arg)
{
	struct batch *b = &f->b;
	uint32_t off = (uint32_t)align_up(b->fill, FEED_PAYLOAD_ALIGN);
	struct job *j;
	int ret;

	if (b->open && (b->n == f->o.batch_max || (copy && off + len > f->o.slot_bytes))) {
		wpf_batch_close(f);
		off = 0;
	}
	if (!b->open) {
		ret = batch_open(f);
		if (ret < 0)
			return ret;
		off = 0;
	}
	if (copy && b->slot < 0) {
		b->slot = wpf_slot_get(f);
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
		wpf_batch_close(f);
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
void wpf_stage_chunks(struct wp_gpu_feed *f, uint64_t seq, bool wait)
{
	struct job *j = job_at(f, seq);

	while (j->staged < j->len) {
		uint64_t n = j->len - j->staged;
		int32_t slot;
		int xi = wpf_xfer_get(f);

		if (xi >= 0 && (slot = wpf_slot_get(f)) >= 0) {
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
			wpf_xfer_start(f, xi, j->stream, slot, seq, seq + 1);
			continue;
		}
		if (!wait || wpf_wait_oldest(f, xi >= 0) < 0) {
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

	xi = wpf_xfer_get(f);
	while (xi < 0) {
		if (!lent || wpf_wait_oldest(f, false) < 0)
			return -EAGAIN;
		xi = wpf_xfer_get(f);
	}
	if (!mapped) {
		ret = wpf_arena_alloc(f, len, &dev, &region);
		if (ret < 0)
			return ret;
	}
	j = job_new(f, buf, len, cb, arg);
	j->region = region;
	j->stream = wpf_stream_next(f);
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
	wpf_xfer_start(f, xi, j->stream, -1, f->jtail - 1, f->jtail);
	if (lent && r) {
		/* The GPU reads the caller's bytes in place; they are only lent. */
		t0 = wp_now_ns();
		ret = f->ops->event_wait(f->bk, (uint32_t)xi);
		if (ret < 0)
			dev_error(f, "waiting for an in-place read");
		wpf_xfer_done(f, xi, ret < 0 ? -EIO : 0);
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
		wpf_reclaim(f);
	if (!lent && (wpf_xfer_get(f) < 0 || f->slots_busy == f->nslots))
		return -EAGAIN;
	ret = wpf_arena_alloc(f, len, &dev, &region);
	if (ret < 0)
		return ret;
	j = job_new(f, buf, len, cb, arg);
	seq = f->jtail - 1;
	j->region = region;
	region_at(f, (uint64_t)region)->refs++;
	j->dev = dev;
	j->stream = wpf_stream_next(f);
	t0 = wp_now_ns();
	wpf_stage_chunks(f, seq, lent);
	if (lent)
		f->st.lent_wait_ns += wp_now_ns() - t0;
	return 0;
}

static int submit(struct wp_gpu_feed *f, const void *buf, size_t len, bool lent, wp_gpu_done_fn cb,
		  void *arg)
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
		wpf_stage_chunks(f, f->jtail - 1, true);
	}
	/* One job slot, and one more region than jobs: keep both rings sane. */
	if (f->jtail - f->jhead > f->jmask) {
		ret = -ENOBUFS;
		goto out_backpressure;
	}
	r = wpf_reg_find(f, buf, len);
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
				wpf_batch_close(f);
			if (wpf_wait_oldest(f, false) < 0)
				break;
			f->st.lent_waits++;
		}
		if (ret < 0)
			goto out_backpressure;
		return 0;
	}
	/* Not batched: whatever is batched goes first, in order. */
	wpf_batch_close(f);
	if (f->used == WP_GPU_MAPPED && !r) {
		/* A kernel can read only pinned memory: a one-payload staged batch. */
		if (len > f->o.slot_bytes)
			return -EMSGSIZE;
		for (;;) {
			ret = batch_add(f, buf, len, true, NULL, cb, arg);
			if (ret != -EAGAIN || !lent || wpf_wait_oldest(f, false) < 0)
				break;
			f->st.lent_waits++;
		}
		if (ret < 0)
			goto out_backpressure;
		wpf_batch_close(f);
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

int wp_gpu_feed_submit_lent(struct wp_gpu_feed *f, const void *buf, size_t len, wp_gpu_done_fn cb,
			    void *arg)
{
	return submit(f, buf, len, true, cb, arg);
}

int wp_gpu_feed_flush(struct wp_gpu_feed *f)
{
	wpf_batch_close(f);
	return 0;
}
