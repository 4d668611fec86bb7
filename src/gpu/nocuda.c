// SPDX-License-Identifier: MIT
/*
 * The GPU backend of a build without CUDA: there is none, and every entry
 * point says why in the words meson used at configure time (nvcc or the
 * static CUDA runtime missing, or -Dcuda=disabled). The feed's CPU logic is
 * still built and unit-tested; wp_gpu_feed_open returns -EOPNOTSUPP.
 */
#include <errno.h>
#include <stdio.h>

#include "gpu/gpu_ops.h"

#ifndef WP_GPU_NOCUDA_WHY
#define WP_GPU_NOCUDA_WHY "nvcc/cudart not found at configure time"
#endif

const struct wp_gpu_ops *wp_gpu_cuda_ops(char *why, size_t len)
{
	snprintf(why, len, "built without CUDA: %s", WP_GPU_NOCUDA_WHY);
	return NULL;
}

int wp_gpu_probe_cuda(char *detail, size_t len)
{
	snprintf(detail, len, "built without CUDA: %s", WP_GPU_NOCUDA_WHY);
	return -EOPNOTSUPP;
}

int wp_gpu_probe_rdma_attr(void)
{
	return -EOPNOTSUPP;
}
