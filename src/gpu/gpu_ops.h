/* SPDX-License-Identifier: MIT */
/*
 * Internal to the GPU feed: the backend ops table the CPU logic (feed*.c)
 * drives, and the constructor that takes one. feed*.c know nothing of CUDA;
 * cuda.c implements these ops with the CUDA runtime, and the unit test
 * (tests/unit/test_gpu_feed.c) with a host-memory test double, so slot reuse,
 * batching, ordering and registration are tested on machines with no GPU.
 *
 * Streams and events are small integers the feed hands out: events
 * 0..nevents-1 (one per in-flight transfer), streams 0..nstreams-1. Work on
 * one stream runs in order; work on different streams may finish in any
 * order, and the feed must cope.
 */
#ifndef WP_GPU_OPS_H
#define WP_GPU_OPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wirepath/gpu.h"

/* One payload for the kitchen kernel: where the device reads it (device
 * memory, or the device alias of pinned host memory) and which result slot
 * gets its checksum. Layout shared with kitchen.cu. */
struct wp_gpu_seg {
	uint64_t src;
	uint64_t len;
	uint32_t res;
	uint32_t pad;
};

struct wp_gpu_bk_cfg {
	int device;
	uint32_t nstreams;
	uint32_t nevents;  /* in-flight transfers; also kitchen launch slots */
	uint32_t nres;     /* checksum result slots */
	uint32_t max_segs; /* kitchen segments per launch */
};

struct wp_gpu_ops {
	const char *name;
	/* Set the device up. 0, or -ENODEV / -ENOMEM / -EIO with why filled. */
	int (*open)(const struct wp_gpu_bk_cfg *cfg, void **bk, char *why, size_t len);
	/* Synchronise and free everything open made. */
	void (*close)(void *bk);
	/* "NVIDIA H100 80GB HBM3 (sm_90), driver 12.4": for explain lines. */
	const char *(*describe)(void *bk);
	/* The last error as text (after an op returned -EIO). */
	const char *(*last_error)(void *bk);

	int (*dev_alloc)(void *bk, size_t len, uint64_t *dptr);
	void (*dev_free)(void *bk, uint64_t dptr);
	/* Pinned, device-mapped host memory. */
	int (*host_alloc)(void *bk, size_t len, void **p);
	void (*host_free)(void *bk, void *p);
	/* Pin and map memory the caller owns (cudaHostRegister). */
	int (*host_register)(void *bk, void *p, size_t len, bool readonly);
	int (*host_unregister)(void *bk, void *p);
	/* The device alias of the start of a pinned range (host_alloc or
	 * host_register): interior pointers are base + offset. */
	int (*host_devptr)(void *bk, void *p, uint64_t *dptr);

	/* Host to device on a stream. pinned: src is pinned memory the feed
	 * keeps intact until the stream's next event completes; else src is
	 * pageable and the call returns once the bytes were taken (CUDA stages
	 * pageable memory before returning). */
	int (*copy)(void *bk, uint32_t stream, uint64_t dst, const void *src, size_t len,
		    bool pinned);
	/* Launch the kitchen over n segments on a stream; launch slot `slot`
	 * (the transfer's event index) holds the descriptors until that event
	 * completes. */
	int (*kitchen)(void *bk, uint32_t stream, uint32_t slot, const struct wp_gpu_seg *segs,
		       uint32_t n);
	/* A result slot's checksum, once the launch's event completed. */
	uint64_t (*result)(void *bk, uint32_t res);
	int (*event_record)(void *bk, uint32_t stream, uint32_t ev);
	/* 1 done, 0 not yet, -EIO. */
	int (*event_query)(void *bk, uint32_t ev);
	/* Block until done (the driver sleeps: blocking-sync events). */
	int (*event_wait)(void *bk, uint32_t ev);
};

/* The CUDA backend (cuda.c), or NULL in a build without CUDA (nocuda.c),
 * with the reason in why. */
const struct wp_gpu_ops *wp_gpu_cuda_ops(char *why, size_t len);
/* The gpu.cuda probe: 0 and a device list, or -errno and why. */
int wp_gpu_probe_cuda(char *detail, size_t len);
/* cudaDevAttrGPUDirectRDMASupported for device 0: 1, 0, or -errno. */
int wp_gpu_probe_rdma_attr(void);
/* Why GPUDirect cannot run here (always, in this version): one line. */
void wp_gpu_gpudirect_why(char *buf, size_t len);

/* Open a feed on an explicit backend (the unit test's double). */
int wp_gpu_feed_open_ops(struct wp_ctx *ctx, const struct wp_gpu_opts *o,
			 const struct wp_gpu_ops *ops, struct wp_gpu_feed **out);

#endif
