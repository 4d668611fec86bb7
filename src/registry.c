// SPDX-License-Identifier: MIT
/*
 * What this build of the library contains: its paths, best first (the order
 * `any` tries them in), and the probes of the parts that are not paths. A
 * path meson left out (see meson.build: no liburing, no uring path) is not
 * listed, and its probe says why instead. Adding a path is one line here
 * (docs/architecture.md, "How to add a path").
 */
#include <dirent.h>
#include <errno.h>
#include <linux/if_xdp.h>
#include <net/if.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <string.h>
#include <unistd.h>

#include "core/core.h"

#ifndef AF_XDP
#define AF_XDP 44
#endif

extern const struct wp_backend_ops wp_uring_ops;
extern const struct wp_backend_ops wp_tcp_ops;
extern const struct wp_backend_ops wp_shm_ops;
#ifdef WP_HAVE_RDMA
extern const struct wp_backend_ops wp_rdma_ops;
#endif
extern const struct wp_backend_ops wp_ucx_ops;
#ifdef WP_HAVE_XSK
extern const struct wp_backend_ops wp_xsk_ops;
#endif

const struct wp_backend_ops *const wp_registry_paths[] = {
#ifdef WP_HAVE_URING
	&wp_uring_ops,
#endif
	&wp_tcp_ops,   &wp_shm_ops,
#ifdef WP_HAVE_RDMA
	&wp_rdma_ops,
#endif
#ifdef WP_HAVE_UCX
	&wp_ucx_ops,
#endif
#ifdef WP_HAVE_XSK
	&wp_xsk_ops, /* last: `any` never needs it (it names UDP ports) */
#endif
	NULL,
};

/* Paths this version knows but this build left out, and why: asking for one
 * is "unavailable" with that reason (prefer falls back, loudly). */
const struct wp_absent_path wp_registry_absent[] = {
#ifndef WP_HAVE_URING
	{ "uring", WP_URING_WHY },
#endif
#ifndef WP_HAVE_RDMA
	{ "rdma", WP_RDMA_WHY },
#endif
#ifndef WP_HAVE_UCX
	{ "ucx", WP_UCX_WHY },
#endif
#ifndef WP_HAVE_XSK
	{ "xsk", WP_XSK_WHY },
#endif
	{ NULL, NULL },
};

/*
 * One AF_XDP bind attempt on ifname's queue 0 in mode (XDP_ZEROCOPY or
 * XDP_COPY): a socket, a 16-frame UMEM with its fill and completion rings,
 * an rx ring, bind. No XDP program is attached, so no packet is taken from
 * the interface. Returns 0 or -errno; *step names what failed.
 */
static int af_xdp_bind(const char *ifname, __u16 mode, const char **step)
{
	struct xdp_umem_reg reg = { .len = 16 * 4096, .chunk_size = 4096 };
	struct sockaddr_xdp sxdp = { .sxdp_family = AF_XDP, .sxdp_flags = mode };
	int fd, ret = 0, n = 16;
	void *umem;

	*step = "socket(AF_XDP, SOCK_RAW)";
	fd = socket(AF_XDP, SOCK_RAW | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	umem = mmap(NULL, reg.len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (umem == MAP_FAILED) {
		ret = -errno;
		*step = "mmap";
		goto out_close;
	}
	reg.addr = (__u64)(uintptr_t)umem;
	sxdp.sxdp_ifindex = if_nametoindex(ifname);
	if (setsockopt(fd, SOL_XDP, XDP_UMEM_REG, &reg, sizeof(reg)) < 0)
		*step = "XDP_UMEM_REG";
	else if (setsockopt(fd, SOL_XDP, XDP_UMEM_FILL_RING, &n, sizeof(n)) < 0 ||
		 setsockopt(fd, SOL_XDP, XDP_UMEM_COMPLETION_RING, &n, sizeof(n)) < 0 ||
		 setsockopt(fd, SOL_XDP, XDP_RX_RING, &n, sizeof(n)) < 0)
		*step = "ring sizes";
	else if (bind(fd, (struct sockaddr *)&sxdp, sizeof(sxdp)) < 0)
		*step = "bind";
	else
		*step = NULL;
	if (*step)
		ret = -errno;
	munmap(umem, reg.len);
out_close:
	close(fd);
	return ret;
}

/* AF_XDP, for real, on lo (always there; a device with an XDP zero-copy
 * driver would be the one to try for zero copy): the socket, then a bind per
 * mode. The line is "yes" where a copy-mode bind works (what the xsk path
 * needs at the least); the detail says what the kernel returned for each
 * mode, and whether this build has the xsk path. */
#ifdef WP_HAVE_XSK
#define AF_XDP_USER "the xsk path uses it"
#else
#define AF_XDP_USER "the xsk path is not in this build (" WP_XSK_WHY ")"
#endif
static void af_xdp_probe(void)
{
	const char *zstep, *cstep;
	int zret, cret;
	int fd = socket(AF_XDP, SOCK_RAW | SOCK_CLOEXEC, 0);

	if (fd < 0) {
		wp_probe_add("path.af_xdp", -errno, AF_XDP_USER "; socket(AF_XDP, SOCK_RAW): %s",
			     strerror(errno));
		return;
	}
	close(fd);
	zret = af_xdp_bind("lo", XDP_ZEROCOPY, &zstep);
	cret = af_xdp_bind("lo", XDP_COPY, &cstep);
	wp_probe_add("path.af_xdp", cret,
		     AF_XDP_USER "; socket(AF_XDP, SOCK_RAW): ok; bind on lo queue 0: "
				 "XDP_ZEROCOPY %s%s%s, XDP_COPY %s%s%s",
		     zret ? zstep : "ok", zret ? ": " : "", zret ? strerror(-zret) : "",
		     cret ? cstep : "ok", cret ? ": " : "", cret ? strerror(-cret) : "");
}

/* Paths not in this build: what the kernel offers for each, so a user sees
 * what building them would buy. */
static void planned_probe(void)
{
	DIR *d;
	struct dirent *e;
	int n = 0;

#ifndef WP_HAVE_URING
	wp_probe_add("uring", -ENOSYS, "not built: %s", WP_URING_WHY);
#endif
	af_xdp_probe();
	d = opendir("/sys/class/infiniband");
	while (d && (e = readdir(d)))
		n += e->d_name[0] != '.';
	if (d)
		closedir(d);
#ifndef WP_HAVE_RDMA
	wp_probe_add("path.rdma", -ENOSYS,
		     "not built: %s (%d RDMA device(s) in /sys/class/infiniband)", WP_RDMA_WHY, n);
#else
	(void)n; /* the rdma path's own probe opens each device (path.rdma) */
#endif
#ifndef WP_HAVE_UCX
	wp_probe_add("path.ucx", -ENOSYS, "not built: %s", WP_UCX_WHY);
#endif
}

const struct wp_probe_group wp_registry_probes[] = {
	{ wp_meter_probe, NULL }, { planned_probe, NULL },  { wp_ktls_probe, NULL },
	{ wp_gpu_probe, "gpu." }, { wp_edu_probe, "dma." }, { NULL, NULL },
};
