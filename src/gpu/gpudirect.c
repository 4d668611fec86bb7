// SPDX-License-Identifier: MIT
/*
 * Why GPUDirect RDMA (NIC straight into GPU memory) cannot run here, as one
 * line for `wirepath probe` (gpu.gpudirect) and for the feed's refusal. It
 * looks at what the hardware path needs, each fact read from the running
 * system: an RDMA device (/sys/class/infiniband), the peer-memory module
 * that lets an RDMA NIC pin GPU pages (nvidia_peermem, or the older
 * nv_peer_mem) or the kernel's dma-buf interface, and the device's own
 * cudaDevAttrGPUDirectRDMASupported. Even where all of them are present the
 * rdma path (when built) registers host memory only, and the line says that
 * too, so nobody reads "available" into it.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/probe.h"
#include "gpu/gpu_ops.h"

static int count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	if (!d)
		return 0;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

void wp_gpu_gpudirect_why(char *buf, size_t len)
{
	int rdma = count_entries("/sys/class/infiniband");
	const char *peer = access("/sys/module/nvidia_peermem", F_OK) == 0 ? "nvidia_peermem loaded"
			   : access("/sys/module/nv_peer_mem", F_OK) == 0  ? "nv_peer_mem loaded"
									   : "no nvidia_peermem";
	const char *dmabuf = access("/sys/kernel/dmabuf", F_OK) == 0 ? "dma-buf sysfs present"
								     : "no dma-buf sysfs";
	int attr = wp_gpu_probe_rdma_attr();
	const char *gpu = attr == 1             ? "GPU supports it"
			  : attr == 0           ? "GPU attribute says no"
			  : attr == -EOPNOTSUPP ? "no CUDA in this build"
						: "no CUDA device";

	snprintf(buf, len, "%d RDMA dev (/sys/class/infiniband); %s; %s; %s; %s", rdma, peer,
		 dmabuf, gpu,
#ifdef WP_HAVE_RDMA
		 "the rdma path registers host memory only"
#else
		 "no RDMA/UCX path in this wirepath"
#endif
	);
}

/*
 * The GPU probes, a lazy group of src/registry.c: a real cudaGetDeviceCount
 * (which loads the driver and creates no context), and why GPUDirect cannot
 * run. Lazy because loading the CUDA driver costs tens of milliseconds on a
 * GPU machine.
 */
void wp_gpu_probe(void)
{
	char d[160];
	int ret = wp_gpu_probe_cuda(d, sizeof(d));

	wp_probe_add("gpu.cuda", ret, "%s", d);
	wp_gpu_gpudirect_why(d, sizeof(d));
	wp_probe_add("gpu.gpudirect", -EOPNOTSUPP, "%s", d);
}
