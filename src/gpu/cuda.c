// SPDX-License-Identifier: MIT
/*
 * The GPU feed's CUDA backend: the ops table of gpu_ops.h on the CUDA
 * runtime (linked statically, so a bare GPU machine needs only the driver).
 * Built only where meson found nvcc and libcudart_static.
 *
 * Choices and why:
 * - cudaDeviceScheduleBlockingSync and blocking-sync events: a wait for the
 *   GPU sleeps in the driver instead of spinning a host core, since host CPU
 *   per MiB is what the feed is measured on. cudaDeviceMapHost so pinned
 *   memory has a device alias (MAPPED mode, the kitchen's descriptors and
 *   results).
 * - Non-blocking streams: nothing of ours serialises against the legacy
 *   default stream another library in the process may use.
 * - Events without timing: cheaper to record; the feed times on the host.
 * - Kitchen results go to mapped host memory, written by the kernel's last
 *   block, so no device-to-host copy (several us each) is needed per batch.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cuda_runtime_api.h>

#include "gpu/gpu_ops.h"

/* kitchen.cu */
int wp_kitchen_check(void);
int wp_kitchen_launch(const struct wp_gpu_seg *segs, uint32_t nseg, uint32_t blocks,
		      unsigned long long *acc, unsigned int *cnt, unsigned long long *out,
		      cudaStream_t st);

#define CU_THREADS 256u
#define CU_MAX_BLOCKS 1024u

struct cu_bk {
	int device;
	cudaStream_t st[4];
	uint32_t nstreams;
	cudaEvent_t *ev;
	uint32_t nevents;
	unsigned long long *acc;   /* device: per-result partial sums */
	unsigned int *cnt;         /* device: per-result finished blocks */
	unsigned long long *res;   /* mapped host: final checksums */
	unsigned long long *res_d; /* its device alias */
	struct wp_gpu_seg *desc;   /* mapped host: nevents x max_segs descriptors */
	struct wp_gpu_seg *desc_d;
	uint32_t nres, max_segs;
	char what[400];
	char err[240];
};

static int cu_fail(struct cu_bk *b, cudaError_t e, const char *what)
{
	snprintf(b->err, sizeof(b->err), "%s: %s (%s)", what, cudaGetErrorString(e),
		 cudaGetErrorName(e));
	/* A non-sticky error stays as the thread's "last error" and would be
	 * blamed on the next kernel launch (wp_kitchen_launch reads it). */
	(void)cudaGetLastError();
	return e == cudaErrorMemoryAllocation ? -ENOMEM : -EIO;
}

static void cu_close(void *bk)
{
	struct cu_bk *b = bk;

	if (!b)
		return;
	cudaSetDevice(b->device);
	/* Our streams only: other users of the device in this process keep
	 * their work in flight. */
	for (uint32_t i = 0; i < b->nstreams; i++)
		if (b->st[i])
			cudaStreamSynchronize(b->st[i]);
	for (uint32_t i = 0; b->ev && i < b->nevents; i++)
		if (b->ev[i])
			cudaEventDestroy(b->ev[i]);
	for (uint32_t i = 0; i < b->nstreams; i++)
		if (b->st[i])
			cudaStreamDestroy(b->st[i]);
	if (b->acc)
		cudaFree(b->acc);
	if (b->cnt)
		cudaFree(b->cnt);
	if (b->res)
		cudaFreeHost(b->res);
	if (b->desc)
		cudaFreeHost(b->desc);
	free(b->ev);
	free(b);
}

static int cu_open(const struct wp_gpu_bk_cfg *cfg, void **out, char *why, size_t len)
{
	struct cudaDeviceProp prop;
	struct cu_bk *b;
	int n = 0, drv = 0, rt = 0;
	cudaError_t e;

	e = cudaGetDeviceCount(&n);
	if (e != cudaSuccess) {
		snprintf(why, len, "no usable CUDA device: cudaGetDeviceCount: %s (%s)",
			 cudaGetErrorString(e), cudaGetErrorName(e));
		return -ENODEV;
	}
	if (n == 0 || cfg->device < 0 || cfg->device >= n) {
		snprintf(why, len, "no CUDA device %d (%d present)", cfg->device, n);
		return -ENODEV;
	}
	if (cfg->nstreams > 4) {
		snprintf(why, len, "too many streams asked");
		return -EINVAL;
	}
	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->device = cfg->device;
	b->nstreams = cfg->nstreams;
	b->nevents = cfg->nevents;
	b->nres = cfg->nres;
	b->max_segs = cfg->max_segs;
	/* The flags go on the primary context as it is created (cudaSetDevice
	 * creates it since CUDA 12, so they must come first); on a context that
	 * is already active they replace its flags. Only the scheduling flag:
	 * mapping host memory needs no flag on 64-bit UVA systems, and CUDA 13's
	 * headers disagree on whether cudaDeviceMapHost is accepted here. */
	e = cudaInitDevice(cfg->device, cudaDeviceScheduleBlockingSync,
			   cudaInitDeviceFlagsAreValid);
	if (e != cudaSuccess && e != cudaErrorSetOnActiveProcess)
		goto out_fail;
	cudaGetLastError();
	e = cudaSetDevice(cfg->device);
	if (e != cudaSuccess)
		goto out_fail;
	e = cudaGetDeviceProperties(&prop, cfg->device);
	if (e != cudaSuccess)
		goto out_fail;
	if (!prop.canMapHostMemory) {
		snprintf(why, len, "device %d (%.96s) cannot map host memory", cfg->device,
			 prop.name);
		cu_close(b);
		return -ENODEV;
	}
	e = (cudaError_t)wp_kitchen_check();
	if (e != cudaSuccess) {
		snprintf(why, len,
			 "the kitchen kernel cannot run on %.96s (sm_%d%d): %s; built for "
			 "sm_90 + compute_90 PTX",
			 prop.name, prop.major, prop.minor, cudaGetErrorString(e));
		cu_close(b);
		return -EIO; /* a device is there: this is a build problem, not "no GPU" */
	}
	for (uint32_t i = 0; i < b->nstreams; i++) {
		e = cudaStreamCreateWithFlags(&b->st[i], cudaStreamNonBlocking);
		if (e != cudaSuccess)
			goto out_fail;
	}
	b->ev = calloc(b->nevents, sizeof(*b->ev));
	if (!b->ev) {
		snprintf(why, len, "out of memory");
		cu_close(b);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < b->nevents; i++) {
		e = cudaEventCreateWithFlags(&b->ev[i],
					     cudaEventDisableTiming | cudaEventBlockingSync);
		if (e != cudaSuccess)
			goto out_fail;
	}
	e = cudaMalloc((void **)&b->acc, b->nres * sizeof(*b->acc));
	if (e == cudaSuccess)
		e = cudaMalloc((void **)&b->cnt, b->nres * sizeof(*b->cnt));
	if (e == cudaSuccess)
		e = cudaMemset(b->acc, 0, b->nres * sizeof(*b->acc));
	if (e == cudaSuccess)
		e = cudaMemset(b->cnt, 0, b->nres * sizeof(*b->cnt));
	if (e == cudaSuccess)
		e = cudaHostAlloc((void **)&b->res, b->nres * sizeof(*b->res), cudaHostAllocMapped);
	if (e == cudaSuccess)
		e = cudaHostGetDevicePointer((void **)&b->res_d, b->res, 0);
	if (e == cudaSuccess)
		e = cudaHostAlloc((void **)&b->desc,
				  (size_t)b->nevents * b->max_segs * sizeof(*b->desc),
				  cudaHostAllocMapped);
	if (e == cudaSuccess)
		e = cudaHostGetDevicePointer((void **)&b->desc_d, b->desc, 0);
	if (e == cudaSuccess)
		e = cudaDeviceSynchronize();
	if (e != cudaSuccess)
		goto out_fail;
	cudaDriverGetVersion(&drv);
	cudaRuntimeGetVersion(&rt);
	snprintf(b->what, sizeof(b->what),
		 "CUDA device %d: %.96s (sm_%d%d, %d SMs), driver %d.%d, "
		 "runtime %d.%d (static)",
		 cfg->device, prop.name, prop.major, prop.minor, prop.multiProcessorCount,
		 drv / 1000, drv % 1000 / 10, rt / 1000, rt % 1000 / 10);
	*out = b;
	return 0;

out_fail:
	snprintf(why, len, "CUDA device %d setup: %s (%s)", cfg->device, cudaGetErrorString(e),
		 cudaGetErrorName(e));
	cu_close(b);
	/* -ENODEV only for "no usable device here" (tests skip on it); any
	 * other setup failure on a present device is an error to report. */
	if (e == cudaErrorMemoryAllocation)
		return -ENOMEM;
	if (e == cudaErrorNoDevice || e == cudaErrorInsufficientDriver ||
	    e == cudaErrorInvalidDevice || e == cudaErrorDevicesUnavailable)
		return -ENODEV;
	return -EIO;
}

static const char *cu_describe(void *bk)
{
	return ((struct cu_bk *)bk)->what;
}

static const char *cu_last_error(void *bk)
{
	return ((struct cu_bk *)bk)->err;
}

static int cu_dev_alloc(void *bk, size_t len, uint64_t *dptr)
{
	void *p = NULL;
	cudaError_t e = cudaMalloc(&p, len);

	if (e != cudaSuccess)
		return cu_fail(bk, e, "cudaMalloc");
	*dptr = (uint64_t)(uintptr_t)p;
	return 0;
}

static void cu_dev_free(void *bk, uint64_t dptr)
{
	cudaFree((void *)(uintptr_t)dptr);
}

static int cu_host_alloc(void *bk, size_t len, void **p)
{
	cudaError_t e = cudaHostAlloc(p, len, cudaHostAllocMapped);

	return e == cudaSuccess ? 0 : cu_fail(bk, e, "cudaHostAlloc");
}

static void cu_host_free(void *bk, void *p)
{
	cudaFreeHost(p);
}

static int cu_host_register(void *bk, void *p, size_t len, bool readonly)
{
	/* Read-only mappings (the shm peer's arena and heap) cannot be pinned
	 * for writing: the driver needs to be told (CUDA 11.1+). */
	cudaError_t e = cudaHostRegister(
		p, len, cudaHostRegisterMapped | (readonly ? cudaHostRegisterReadOnly : 0));

	return e == cudaSuccess ? 0 : cu_fail(bk, e, "cudaHostRegister");
}

static int cu_host_unregister(void *bk, void *p)
{
	cudaError_t e = cudaHostUnregister(p);

	return e == cudaSuccess ? 0 : cu_fail(bk, e, "cudaHostUnregister");
}

static int cu_host_devptr(void *bk, void *p, uint64_t *dptr)
{
	void *d = NULL;
	cudaError_t e = cudaHostGetDevicePointer(&d, p, 0);

	if (e != cudaSuccess)
		return cu_fail(bk, e, "cudaHostGetDevicePointer");
	*dptr = (uint64_t)(uintptr_t)d;
	return 0;
}

static int cu_copy(void *bk, uint32_t stream, uint64_t dst, const void *src, size_t len,
		   bool pinned)
{
	struct cu_bk *b = bk;
	cudaError_t e = cudaMemcpyAsync((void *)(uintptr_t)dst, src, len, cudaMemcpyHostToDevice,
					b->st[stream]);

	return e == cudaSuccess ? 0 : cu_fail(b, e, "cudaMemcpyAsync");
}

static int cu_kitchen(void *bk, uint32_t stream, uint32_t slot, const struct wp_gpu_seg *segs,
		      uint32_t n)
{
	struct cu_bk *b = bk;
	struct wp_gpu_seg *d = b->desc + (size_t)slot * b->max_segs;
	uint64_t maxlen = 0, words;
	uint32_t blocks;
	int e;

	if (n > b->max_segs || slot >= b->nevents)
		return -EINVAL;
	for (uint32_t i = 0; i < n; i++) {
		d[i] = segs[i];
		if (segs[i].len > maxlen)
			maxlen = segs[i].len;
		/* Poison the result slot: a launch that never ran cannot pass
		 * for one that did with an earlier payload's sum. */
		if (segs[i].res < b->nres)
			((volatile unsigned long long *)b->res)[segs[i].res] =
				0x5a5a5a5a5a5a5a5aull;
	}
	/* About four words per thread for the longest payload, capped: a
	 * 64 MiB payload gets 1024 blocks of 256 threads. */
	words = (maxlen + 7) / 8;
	blocks = (uint32_t)((words + CU_THREADS * 4 - 1) / (CU_THREADS * 4));
	if (blocks < 1)
		blocks = 1;
	if (blocks > CU_MAX_BLOCKS)
		blocks = CU_MAX_BLOCKS;
	e = wp_kitchen_launch(b->desc_d + (size_t)slot * b->max_segs, n, blocks, b->acc, b->cnt,
			      b->res_d, b->st[stream]);
	return e == cudaSuccess ? 0 : cu_fail(b, (cudaError_t)e, "kitchen kernel launch");
}

static uint64_t cu_result(void *bk, uint32_t res)
{
	struct cu_bk *b = bk;

	/* Written by the kernel's last block; the launch's event completed. */
	return ((volatile unsigned long long *)b->res)[res];
}

static int cu_event_record(void *bk, uint32_t stream, uint32_t ev)
{
	struct cu_bk *b = bk;
	cudaError_t e = cudaEventRecord(b->ev[ev], b->st[stream]);

	return e == cudaSuccess ? 0 : cu_fail(b, e, "cudaEventRecord");
}

static int cu_event_query(void *bk, uint32_t ev)
{
	struct cu_bk *b = bk;
	cudaError_t e = cudaEventQuery(b->ev[ev]);

	if (e == cudaSuccess)
		return 1;
	if (e == cudaErrorNotReady) {
		(void)cudaGetLastError(); /* "not ready" is an answer, not an error */
		return 0;
	}
	return cu_fail(b, e, "cudaEventQuery");
}

static int cu_event_wait(void *bk, uint32_t ev)
{
	struct cu_bk *b = bk;
	cudaError_t e = cudaEventSynchronize(b->ev[ev]);

	return e == cudaSuccess ? 0 : cu_fail(b, e, "cudaEventSynchronize");
}

static const struct wp_gpu_ops cu_ops = {
	.name = "cuda",
	.open = cu_open,
	.close = cu_close,
	.describe = cu_describe,
	.last_error = cu_last_error,
	.dev_alloc = cu_dev_alloc,
	.dev_free = cu_dev_free,
	.host_alloc = cu_host_alloc,
	.host_free = cu_host_free,
	.host_register = cu_host_register,
	.host_unregister = cu_host_unregister,
	.host_devptr = cu_host_devptr,
	.copy = cu_copy,
	.kitchen = cu_kitchen,
	.result = cu_result,
	.event_record = cu_event_record,
	.event_query = cu_event_query,
	.event_wait = cu_event_wait,
};

const struct wp_gpu_ops *wp_gpu_cuda_ops(char *why, size_t len)
{
	return &cu_ops;
}

int wp_gpu_probe_cuda(char *detail, size_t len)
{
	int n = 0, drv = 0;
	cudaError_t e = cudaGetDeviceCount(&n);
	size_t off;

	cudaDriverGetVersion(&drv);
	if (e != cudaSuccess) {
		snprintf(detail, len, "built with CUDA; cudaGetDeviceCount: %s%s",
			 cudaGetErrorString(e),
			 access("/dev/nvidia0", F_OK) ? " (/dev/nvidia0 absent: no driver)" : "");
		return e == cudaErrorInsufficientDriver || e == cudaErrorNoDevice ? -ENODEV : -EIO;
	}
	if (n == 0) {
		snprintf(detail, len, "built with CUDA; no CUDA device");
		return -ENODEV;
	}
	off = (size_t)snprintf(detail, len, "%d device(s), driver %d.%d:", n, drv / 1000,
			       drv % 1000 / 10);
	for (int i = 0; i < n && off < len; i++) {
		struct cudaDeviceProp p;

		if (cudaGetDeviceProperties(&p, i) != cudaSuccess)
			continue;
		off += (size_t)snprintf(detail + off, len - off, " %s%.64s (sm_%d%d)",
					i ? ", " : "", p.name, p.major, p.minor);
	}
	return 0;
}

int wp_gpu_probe_rdma_attr(void)
{
	int n = 0, v = 0;

	if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0)
		return -ENODEV;
	if (cudaDeviceGetAttribute(&v, cudaDevAttrGPUDirectRDMASupported, 0) != cudaSuccess)
		return -EIO;
	return v ? 1 : 0;
}
