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

const struct wp_backend_ops *const wp_registry_paths[] = {
#ifdef WP_HAVE_URING
	&wp_uring_ops,
#endif
	&wp_tcp_ops,
	&wp_shm_ops,
	NULL,
};

/* Paths this version knows but this build left out, and why: asking for one
 * is "unavailable" with that reason (prefer falls back, loudly). */
const struct wp_absent_path wp_registry_absent[] = {
#ifndef WP_HAVE_URING
	{ "uring", WP_URING_WHY },
#endif
	{ NULL, NULL },
};

/* Paths not in this build: what the kernel offers for each, so a user sees
 * what building them would buy. */
static void planned_probe(void)
{
	DIR *d;
	struct dirent *e;
	int fd, n = 0;

#ifndef WP_HAVE_URING
	wp_probe_add("uring", -ENOSYS, "not built: %s", WP_URING_WHY);
#endif
	fd = socket(AF_XDP, SOCK_RAW | SOCK_CLOEXEC, 0);
	wp_probe_add("path.af_xdp", -ENOSYS, "not built in this version (kernel AF_XDP socket: %s)",
		     fd >= 0 ? "ok" : strerror(errno));
	if (fd >= 0)
		close(fd);
	d = opendir("/sys/class/infiniband");
	while (d && (e = readdir(d)))
		n += e->d_name[0] != '.';
	if (d)
		closedir(d);
	wp_probe_add("path.rdma", -ENOSYS,
		     "not built in this version (%d RDMA device(s) in /sys/class/infiniband)", n);
	wp_probe_add("path.ucx", -ENOSYS, "not built in this version");
}

const struct wp_probe_group wp_registry_probes[] = {
	{ wp_meter_probe, NULL }, { planned_probe, NULL },  { wp_ktls_probe, NULL },
	{ wp_gpu_probe, "gpu." }, { wp_edu_probe, "dma." }, { NULL, NULL },
};
