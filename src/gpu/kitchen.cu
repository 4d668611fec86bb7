// SPDX-License-Identifier: MIT
/*
 * The kitchen: the GPU kernel that consumes what the feed delivers, a
 * checksum over every payload (kitchen_sum.h, the same arithmetic the host
 * reference and the senders use), so delivery is verified on the device,
 * not assumed. One launch covers a whole batch: blockIdx.y picks the
 * payload (a segment), blockIdx.x strides over its words. The segments
 * array and, in MAPPED mode, the payload bytes themselves are pinned host
 * memory the kernel reads across PCIe through their device alias.
 *
 * Reduction: each block sums its words (warp shuffles, then one warp over
 * the per-warp sums), adds its partial into a per-result accumulator in
 * device memory, fences, and counts itself done; the block that counts last
 * takes the total (atomicExch also resets the accumulator for the result
 * slot's next use), resets the counter and writes the final value into
 * mapped host memory, where the feed reads it once the launch's event has
 * completed. Result slots belong to one job at a time (the feed reuses a
 * slot only after its job completed), so nothing else touches them meanwhile.
 *
 * Built with nvcc for sm_90 (H100, H200) plus compute_90 PTX that newer
 * drivers JIT for later GPUs; no exceptions and no thread-safe statics in
 * the host stubs, so the object links into a C library with no libstdc++.
 */
#include <cuda_runtime.h>
#include <stdint.h>

#include "gpu/gpu_ops.h"
#include "gpu/kitchen_sum.h"

#define WPK_THREADS 256

__global__ void __launch_bounds__(WPK_THREADS)
wpk_kernel(const struct wp_gpu_seg *segs, unsigned long long *acc, unsigned int *cnt,
	   unsigned long long *out)
{
	const struct wp_gpu_seg s = segs[blockIdx.y];
	const uint8_t *p = (const uint8_t *)(uintptr_t)s.src;
	const uint64_t nw = (s.len + 7) / 8, nfull = s.len / 8;
	const bool aligned = ((uintptr_t)p & 7) == 0;
	__shared__ unsigned long long warp_sum[WPK_THREADS / 32];
	unsigned long long sum = 0;
	unsigned int lane = threadIdx.x & 31, wid = threadIdx.x >> 5;

	for (uint64_t i = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x; i < nw;
	     i += (uint64_t)gridDim.x * blockDim.x) {
		uint64_t w = aligned && i < nfull ? ((const uint64_t *)p)[i] : wpk_word(p, s.len, i);

		sum += wpk_mix(w, i);
	}
	for (int o = 16; o > 0; o >>= 1)
		sum += __shfl_down_sync(0xffffffffu, sum, o);
	if (lane == 0)
		warp_sum[wid] = sum;
	__syncthreads();
	if (wid != 0)
		return;
	sum = lane < blockDim.x / 32 ? warp_sum[lane] : 0;
	for (int o = 16; o > 0; o >>= 1)
		sum += __shfl_down_sync(0xffffffffu, sum, o);
	if (lane != 0)
		return;
	atomicAdd(&acc[s.res], sum);
	/* Our partial is in the accumulator before we count ourselves done:
	 * pairs with the last block's atomicExch below. */
	__threadfence();
	if (atomicAdd(&cnt[s.res], 1u) == gridDim.x - 1) {
		unsigned long long total = atomicExch(&acc[s.res], 0ull);

		cnt[s.res] = 0;
		out[s.res] = wpk_final(total, s.len);
		/* The host reads it after the event; make it visible system-wide. */
		__threadfence_system();
	}
}

extern "C" int wp_kitchen_check(void)
{
	cudaFuncAttributes a;

	return (int)cudaFuncGetAttributes(&a, wpk_kernel);
}

extern "C" int wp_kitchen_launch(const struct wp_gpu_seg *segs, uint32_t nseg, uint32_t blocks,
				 unsigned long long *acc, unsigned int *cnt,
				 unsigned long long *out, cudaStream_t st)
{
	dim3 grid(blocks, nseg);

	/* cudaGetLastError reports the last error of any runtime call on this
	 * thread, and a cudaEventQuery that answered "not ready" leaves one:
	 * clear it, so that only this launch's own error is returned. */
	(void)cudaGetLastError();
	wpk_kernel<<<grid, WPK_THREADS, 0, st>>>(segs, acc, cnt, out);
	return (int)cudaGetLastError();
}
