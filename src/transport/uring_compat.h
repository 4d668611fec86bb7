/* SPDX-License-Identifier: MIT */
/*
 * liburing 2.3 (Debian 12) predates several constants the running kernel
 * (6.x) understands. Everything missing is defined here, once; whether the
 * kernel really supports each feature is probed at run time (uring_probe.c),
 * never assumed from a header.
 */
#ifndef WP_URING_COMPAT_H
#define WP_URING_COMPAT_H

#include <errno.h>
#include <liburing.h>
#include <sys/syscall.h>
#include <unistd.h>

/* SEND_ZC usage reporting: kernel 6.2. */
#ifndef IORING_SEND_ZC_REPORT_USAGE
#define IORING_SEND_ZC_REPORT_USAGE (1U << 3)
#endif
#ifndef IORING_NOTIF_USAGE_ZC_COPIED
#define IORING_NOTIF_USAGE_ZC_COPIED (1U << 31)
#endif
/* CQE flag of the SEND_ZC notification: kernel 6.0. */
#ifndef IORING_CQE_F_NOTIF
#define IORING_CQE_F_NOTIF (1U << 3)
#endif
#ifndef IORING_SETUP_DEFER_TASKRUN
#define IORING_SETUP_DEFER_TASKRUN (1U << 13)
#endif

/* liburing 2.3 declares io_uring_enable_rings() but its shared library does
 * not export it: issue the register opcode directly. */
static inline int wp_uring_enable_rings(struct io_uring *ring)
{
	long r = syscall(__NR_io_uring_register, ring->ring_fd, IORING_REGISTER_ENABLE_RINGS, NULL,
			 0);

	return r < 0 ? -errno : 0;
}

/* uring_probe.c: the path's probes (backend op `probe`). */
void wp_uring_probe(void);

#endif
