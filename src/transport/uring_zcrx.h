/* SPDX-License-Identifier: MIT */
/*
 * io_uring zero-copy receive for the uring path (wp_ctx_opts.uring_zcrx;
 * docs/architecture.md, "uring: zero-copy receive"). The kernel's uapi is
 * Linux 6.15's (io_uring/zcrx.c, Documentation/networking/iou-zcrx.rst);
 * Debian 12's liburing 2.3 predates it, so the structs and the register
 * call are declared here and issued raw.
 *
 * One interface queue (IFNAME:QUEUE) is registered on the context's ring
 * with an area the NIC's page pool DMAs into and a refill ring. Every
 * connection then receives with a multishot IORING_OP_RECV_ZC: each CQE
 * (32 bytes) names an offset and length in the area; the bytes are parsed
 * in place (wp_conn_input, the same as a provided buffer's) and the chunk
 * goes back on the refill ring before the next CQE. Payloads of flows the
 * NIC steered to that queue arrive without a copy; anything else (other
 * queues, loopback) the kernel copies into the area (its copy fallback).
 * "nodev" registers the device-less copy mode of newer kernels
 * (ZCRX_REG_NODEV): every byte copied by the kernel, for testing the path
 * without a capable NIC.
 */
#ifndef WP_URING_ZCRX_H
#define WP_URING_ZCRX_H

#include <linux/types.h>
#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "transport/uring_compat.h"

#define WP_IORING_REGISTER_ZCRX_IFQ 32
#define WP_IORING_OP_RECV_ZC 58
#define WP_ZCRX_REG_NODEV 2u
#define WP_IORING_MEM_REGION_TYPE_USER 1u
#define WP_IORING_ZCRX_AREA_SHIFT 48
#define WP_IORING_ZCRX_AREA_MASK (~((1ull << WP_IORING_ZCRX_AREA_SHIFT) - 1))
#ifndef IORING_SETUP_CQE32
#define IORING_SETUP_CQE32 (1U << 11)
#endif
#ifndef IORING_RECV_MULTISHOT
#define IORING_RECV_MULTISHOT (1U << 1)
#endif

struct wp_zcrx_offsets {
	__u32 head, tail, rqes, resv2;
	__u64 resv[2];
};
struct wp_zcrx_area_reg {
	__u64 addr, len, rq_area_token;
	__u32 flags, dmabuf_fd;
	__u64 resv2[2];
};
struct wp_zcrx_region_desc {
	__u64 user_addr, size;
	__u32 flags, id;
	__u64 mmap_offset;
	__u64 resv[4];
};
struct wp_zcrx_ifq_reg {
	__u32 if_idx, if_rxq, rq_entries, flags;
	__u64 area_ptr, region_ptr;
	struct wp_zcrx_offsets offsets;
	__u32 zcrx_id, resv2;
	__u64 resv[3];
};
struct wp_zcrx_rqe { /* a chunk given back on the refill ring */
	__u64 off;
	__u32 len, pad;
};
struct wp_zcrx_cqe { /* the second half of a RECV_ZC CQE */
	__u64 off, pad;
};

/* Why a registration failed, in words, for the errnos the kernel documents. */
const char *wp_zcrx_reason(int err);

struct wp_zcrx {
	bool on;
	bool nodev;
	uint32_t id; /* zcrx_id: the SQE's zcrx_ifq_idx */
	char ifname[IF_NAMESIZE];
	uint32_t rxq;
	uint8_t *area;
	size_t area_len;
	uint64_t token; /* rq_area_token, or'ed into every refill entry */
	uint8_t *rq_mem;
	size_t rq_len;
	uint32_t *khead, *ktail;
	struct wp_zcrx_rqe *rqes;
	uint32_t rq_entries, rq_tail;
	/* what happened, for explain */
	uint64_t cqes, bytes, refills, rq_full, area_empty;
	char why[200]; /* what was tried and what the kernel said */
};

/*
 * Parse spec ("IFNAME", "IFNAME:QUEUE" or "nodev"), then register the queue
 * on ring (made with DEFER_TASKRUN, SINGLE_ISSUER and CQE32, which zcrx
 * requires) with an area of area_len bytes and the refill ring. 0, or
 * -errno with z->why saying what failed (the errno the kernel returned, in
 * words). Either way the caller frees with wp_zcrx_free once the ring is
 * gone: a registration holds the area until then.
 */
int wp_zcrx_setup(struct wp_zcrx *z, struct io_uring *ring, const char *spec, size_t area_len);
/* After the ring is gone (the kernel holds the area until then). */
void wp_zcrx_free(struct wp_zcrx *z);
/* A multishot RECV_ZC on fd (the caller sets fixed-file flags). */
void wp_zcrx_prep_recv(const struct wp_zcrx *z, struct io_uring_sqe *sqe, int fd);
/* The bytes a RECV_ZC CQE with res > 0 names, checked to lie in the area
 * (NULL if not: the caller fails the connection). */
const uint8_t *wp_zcrx_data(struct wp_zcrx *z, const struct io_uring_cqe *cqe);
/* Give that CQE's chunk back to the kernel (after the bytes were parsed). */
void wp_zcrx_refill(struct wp_zcrx *z, const struct io_uring_cqe *cqe);

#endif
