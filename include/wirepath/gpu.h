/* SPDX-License-Identifier: MIT */
/*
 * wirepath GPU feed ("the kitchen feed"): bytes that arrived over the
 * network, delivered into GPU memory, with a completion that says where they
 * are and what it cost the host.
 *
 * A feed belongs to a context (struct wp_ctx) and to its thread: its
 * completions run from wp_ctx_progress() like every other callback, never
 * from inside the call that queued the work. While GPU work is in flight the
 * context sleeps at most wp_gpu_opts.poll_us per round (CUDA events have no
 * file descriptor to wait on).
 *
 * Modes (what the host does per payload; docs/gpu.md has the diagram):
 * - PAGEABLE: cudaMemcpyAsync straight from the payload where it lies. The
 *   driver copies it through its own pinned bounce buffer (a host copy of
 *   every byte, counted) before the DMA. One copy call per payload. The
 *   baseline.
 * - PINNED: a payload inside registered (pinned) memory is DMA'd from where
 *   it lies: no host copy. Register the receive pools once
 *   (wp_gpu_register_pools) and payloads received in place there go straight
 *   to the device. Other payloads are copied into pinned staging slots,
 *   double-buffered (the CPU fills one slot while the previous one DMAs).
 *   Small payloads (<= small_max) are batched: many payloads, one host
 *   memcpy each into one slot, one cudaMemcpyAsync for the batch.
 * - MAPPED: no DMA at all: a GPU kernel (the kitchen) reads the payload
 *   across PCIe from pinned host memory (zero-copy host memory); dev_ptr is
 *   the device's alias of that host memory, valid only while the completion
 *   runs. For small control payloads. Unregistered payloads are copied into a
 *   mapped staging slot first (counted), so they must fit in a slot.
 * - GPUDIRECT: NIC to GPU memory with no host bounce. Needs an RDMA NIC,
 *   nvidia_peermem (or dma-buf) and an RDMA/UCX path, which this version of
 *   wirepath does not have: opening it fails with -EOPNOTSUPP and the exact
 *   reason (wirepath probe: gpu.gpudirect), unless select is
 *   WP_SELECT_PREFER, which falls back to PINNED and says so in the explain
 *   line and the log.
 *
 * The kitchen: with opts.kitchen set (the default) a small kernel computes
 * wp_gpu_kitchen_sum() over every delivered payload on the GPU, so delivery
 * is verified, not assumed: a sender computes the same function on its host
 * and the two must match.
 *
 * Conventions follow wirepath.h: >= 0 or -errno, out-pointers, -EAGAIN and
 * -ENOBUFS are back-pressure. The reason for an error is logged, one line at
 * WP_LOG_ERR, through the feed's context's log callback, or the process hook
 * (wp_set_log) when that context has none.
 */
#ifndef WIREPATH_GPU_H
#define WIREPATH_GPU_H

#include "wirepath/wirepath.h"

#ifdef __cplusplus
extern "C" {
#endif

enum wp_gpu_mode {
	WP_GPU_PAGEABLE = 0,
	WP_GPU_PINNED = 1,
	WP_GPU_MAPPED = 2,
	WP_GPU_GPUDIRECT = 3,
};

struct wp_gpu_opts {
	size_t sz;             /* sizeof(struct wp_gpu_opts): wp_gpu_opts_init sets it
				 * (versioned like wp_ctx_opts: see wirepath.h) */
	enum wp_gpu_mode mode; /* default WP_GPU_PINNED */
	enum wp_select select; /* REQUIRE (default): the mode or an error; PREFER or ANY:
				 * gpudirect falls back to pinned, explained */
	int device;            /* CUDA device ordinal (default 0) */
	uint32_t slot_bytes;   /* pinned staging slot (default 4 MiB, 64 KiB..1 GiB) */
	uint32_t slots;        /* staging slots, >= 2 for double buffering (default 4) */
	uint32_t small_max;    /* payloads up to this are batched (default 64 KiB;
				 * <= slot_bytes; 0 = never batch) */
	uint32_t batch_max;    /* payloads per batched copy (default 256, max 4096;
				 * 1 = one copy per payload) */
	uint64_t dev_bytes;    /* device arena the payloads land in (default 256 MiB);
				 * a payload larger than this is refused (-EMSGSIZE) */
	uint32_t max_jobs;     /* payloads submitted and not yet completed (default 4096,
				 * a power of two) */
	int kitchen;           /* 1 (default): checksum every payload on the GPU.
				 * MAPPED always runs it: the kernel is the consumer */
	int64_t poll_us;       /* longest sleep of wp_ctx_progress while GPU work is in
				 * flight (default 20; 0 = spin) */
	/* New fields go here, at the end (src/gpu/feed.c takes each by name). */
};

/* Fill *o with the defaults, sz included (zeroed first, padding too). */
WP_API void wp_gpu_opts_init(struct wp_gpu_opts *o);

struct wp_gpu_feed;

/*
 * Open a feed on ctx (o NULL: defaults; copied, not kept). Returns 0,
 * -EOPNOTSUPP (built without CUDA, or GPUDIRECT unavailable under REQUIRE),
 * -ENODEV (no usable CUDA device), -EINVAL (bad options, or fields past what
 * this library knows set), -ENOMEM; every failure logs its
 * reason, one line at WP_LOG_ERR, through ctx's log (or the process hook).
 * Allocates the device arena and the pinned slots now, so the fast path
 * allocates nothing. *out belongs to the caller: close every feed before
 * wp_ctx_destroy.
 */
WP_API int wp_gpu_feed_open(struct wp_ctx *ctx, const struct wp_gpu_opts *o,
			    struct wp_gpu_feed **out);
/*
 * Wait for the GPU to finish what was queued, run the completions still
 * pending with status -ECANCELED (dev_ptr 0: not to be read), unregister
 * everything and free. Blocks for as long as the device needs.
 */
WP_API void wp_gpu_feed_close(struct wp_gpu_feed *f);

/* What a completion reports. */
struct wp_gpu_done {
	int status;            /* 0, -ECANCELED (feed closed), -EIO (the device said no;
				  * logged) */
	enum wp_gpu_mode mode; /* how it was really moved */
	uint64_t dev_ptr;      /* device address of the bytes */
	uint64_t len;
	uint64_t host_copies; /* bytes the host CPU copied to deliver it (staging, or
				  * the driver's bounce buffer for pageable memory) */
	uint32_t batch;       /* payloads that shared its copy or kernel (1: its own) */
	uint32_t copies;      /* cudaMemcpyAsync calls issued for it (0: mapped) */
	uint64_t ns;          /* submit to completion seen */
	uint64_t gpu_sum;     /* wp_gpu_kitchen_sum computed by the GPU over the
				  * delivered bytes, if summed */
	int summed;
	uint64_t handle; /* for wp_gpu_feed_keep */
};

typedef void (*wp_gpu_done_fn)(void *arg, const struct wp_gpu_done *d);

/*
 * Deliver [buf, buf+len) to device memory. The bytes belong to the feed
 * until cb runs (from wp_ctx_progress, exactly once); the caller must not
 * change or free them before. Returns 0 or: -EAGAIN (every staging slot or
 * in-flight copy is busy: progress, then retry), -ENOBUFS (device arena or
 * job table full: completions must run, or kept regions be released),
 * -EMSGSIZE (len 0, above dev_bytes, or a mapped payload that fits no
 * slot), -EINVAL (buf or cb NULL), -ESHUTDOWN (the feed is closing). A
 * refused submit took nothing and cb never runs. A device error on an
 * accepted payload arrives as its completion's status (-EIO), never here.
 *
 * The device bytes in d->dev_ptr are lent to cb: valid until it returns,
 * unless cb calls wp_gpu_feed_keep.
 */
WP_API int wp_gpu_feed_submit(struct wp_gpu_feed *f, const void *buf, size_t len, wp_gpu_done_fn cb,
			      void *arg);
/*
 * The same for a buffer that is only lent to the caller, such as a received
 * wp_msg payload inside its callback: the feed is done reading it when the
 * call returns. Staged payloads are copied now; a payload the GPU reads in
 * place (registered memory: PINNED direct DMA, MAPPED kernel) is waited for
 * before returning (counted in wp_gpu_stats.lent_waits), and so is a free
 * staging slot when all are busy. Never -EAGAIN; other errors as above.
 */
WP_API int wp_gpu_feed_submit_lent(struct wp_gpu_feed *f, const void *buf, size_t len,
				   wp_gpu_done_fn cb, void *arg);
/*
 * Start the copy of the batch being filled now rather than at the end of the
 * progress round. Returns 0 (a device error reaches the batch's completions).
 */
WP_API int wp_gpu_feed_flush(struct wp_gpu_feed *f);
/*
 * Keep the device bytes of d (inside its callback) beyond the callback,
 * until wp_gpu_feed_release(f, d->handle). Kept regions hold the device
 * arena (in order, like a ring): release them soon. Returns 0, -EINVAL
 * (outside the callback), -EOPNOTSUPP (MAPPED: the bytes are host memory
 * the sender owns).
 */
WP_API int wp_gpu_feed_keep(struct wp_gpu_feed *f, const struct wp_gpu_done *d);
WP_API void wp_gpu_feed_release(struct wp_gpu_feed *f, uint64_t handle);

/*
 * Register host memory with the device (cudaHostRegister: pinned and mapped,
 * read-only if flags has WP_MEM_READONLY). A submit whose payload lies
 * inside a registered range is read in place. Registering a range inside an
 * already registered one takes a reference to it; a range that overlaps one
 * only partly is refused (-EEXIST). Returns 0 or -errno (-ENOMEM: the pin
 * failed; the reason is logged).
 */
WP_API int wp_gpu_register(struct wp_gpu_feed *f, void *addr, size_t len, uint32_t flags);
/*
 * Drop the reference taken by wp_gpu_register(addr) (addr: the start of a
 * range registered earlier, or of one inside it); the memory is unpinned at
 * the last one. -EBUSY (the GPU may still read it: nothing changed),
 * -ENOENT.
 */
WP_API int wp_gpu_unregister(struct wp_gpu_feed *f, void *addr);
/*
 * Register receive memory: with ep NULL the context's (wp_ctx_pools: the
 * uring buffer ring; call it after the first listen or connect), else that
 * endpoint's (wp_ep_pools: tcp, shm; call it from WP_EP_CONNECTED). A range the driver refuses is left out (logged at
 * WARN: payloads received there are staged). Returns the number of ranges
 * registered, or -errno when there were ranges and none could be.
 * wp_gpu_unregister_pools(f, ep) drops what was registered for ep (call it
 * from WP_EP_CLOSED); with ep NULL, the context's.
 */
WP_API int wp_gpu_register_pools(struct wp_gpu_feed *f, struct wp_ep *ep);
WP_API int wp_gpu_unregister_pools(struct wp_gpu_feed *f, struct wp_ep *ep);

/*
 * Pinned, device-mapped host memory owned by the feed and registered with it
 * (a payload written there is DMA'd in place). NULL on failure. Free with
 * wp_gpu_host_free once nothing submitted from it is pending.
 */
WP_API void *wp_gpu_host_alloc(struct wp_gpu_feed *f, size_t len);
WP_API void wp_gpu_host_free(struct wp_gpu_feed *f, void *p);

struct wp_gpu_stats {
	uint64_t payloads, bytes;          /* completed with status 0 */
	uint64_t host_copied;              /* bytes the host copied (staging, pageable bounce) */
	uint64_t direct_bytes;             /* bytes DMA'd in place from registered memory */
	uint64_t mapped_bytes;             /* bytes a kernel read across PCIe from host memory */
	uint64_t dma_copies;               /* cudaMemcpyAsync calls */
	uint64_t batches;                  /* batched copies or kernels (of any size) */
	uint64_t batched_payloads;         /* payloads that went in them */
	uint64_t kernels;                  /* kitchen launches */
	uint64_t lent_waits, lent_wait_ns; /* wp_gpu_feed_submit_lent waiting for the GPU */
	uint64_t backpressure;             /* submits refused with -EAGAIN or -ENOBUFS */
	uint64_t errors;                   /* completions with a device error */
	uint32_t jobs_inflight, xfers_inflight, slots_busy, regs;
	uint64_t dev_used, reg_bytes;
};
WP_API void wp_gpu_feed_stats(const struct wp_gpu_feed *f, struct wp_gpu_stats *out);
/* One line: mode asked, mode used, why, device, slots, batching. */
WP_API const char *wp_gpu_feed_explain(const struct wp_gpu_feed *f);
WP_API enum wp_gpu_mode wp_gpu_feed_mode(const struct wp_gpu_feed *f);
WP_API const char *wp_gpu_mode_name(enum wp_gpu_mode m);
/* "pageable" | "pinned" | "mapped" | "gpudirect" -> 0, else -EINVAL. */
WP_API int wp_gpu_mode_parse(const char *s, enum wp_gpu_mode *out);

/*
 * The reference the pinned mode is judged against: `iters` back-to-back
 * cudaMemcpyAsync calls of `len` bytes from a pinned buffer into the device
 * arena on one stream, then one wait, with no wirepath logic at all. Blocks.
 * *ns gets the wall time of the copies. Returns 0, -EMSGSIZE, -ENOMEM, -EIO.
 */
WP_API int wp_gpu_feed_reference(struct wp_gpu_feed *f, size_t len, uint32_t iters, uint64_t *ns);

/*
 * The kitchen checksum, the host reference the GPU kernel matches (senders
 * compute it before sending). Order-sensitive and parallel: the bytes as
 * little-endian 64-bit words (the last one zero-padded), each mixed with its
 * index (a splitmix64 finaliser), summed mod 2^64, the sum mixed with the
 * length. Any permutation of words changes it; blocks of words can be summed
 * in any order.
 */
WP_API uint64_t wp_gpu_kitchen_sum(const void *p, size_t len);

#ifdef __cplusplus
}
#endif
#endif
