// SPDX-License-Identifier: MIT
/*
 * io_uring zero-copy receive: registration, the RECV_ZC SQE, a CQE's bytes
 * and the refill ring (uring_zcrx.h has the contract).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "meter/counters.h"
#include "transport/uring_zcrx.h"

#define ZCRX_RQ_ENTRIES 32768u /* the kernel's maximum: a full ring never holds us up */
#define ZCRX_PAGE 4096u

const char *wp_zcrx_reason(int err)
{
	switch (err) {
	case -EOPNOTSUPP:
		return " (the driver has no queue API: no header/data split, no flow "
		       "steering)";
	case -EPERM:
		return " (needs CAP_NET_ADMIN)";
	case -EINVAL:
		return " (an older zcrx ABI, or a flag this kernel lacks)";
	case -ENODEV:
		return " (no such device)";
	case -ERANGE:
		return " (no such rx queue)";
	default:
		return "";
	}
}

static int parse_spec(struct wp_zcrx *z, const char *spec)
{
	const char *colon = strchr(spec, ':');
	size_t n = colon ? (size_t)(colon - spec) : strlen(spec);
	char *end;

	if (!strcmp(spec, "nodev")) {
		z->nodev = true;
		snprintf(z->ifname, sizeof(z->ifname), "nodev");
		return 0;
	}
	if (n == 0 || n >= sizeof(z->ifname))
		return -EINVAL;
	memcpy(z->ifname, spec, n);
	z->ifname[n] = 0;
	z->rxq = 0;
	if (colon) {
		unsigned long q;

		errno = 0;
		q = strtoul(colon + 1, &end, 10);
		if (errno || end == colon + 1 || *end || q > UINT32_MAX)
			return -EINVAL;
		z->rxq = (uint32_t)q;
	}
	return 0;
}

int wp_zcrx_setup(struct wp_zcrx *z, struct io_uring *ring, const char *spec, size_t area_len)
{
	struct wp_zcrx_area_reg ar;
	struct wp_zcrx_region_desc rd;
	struct wp_zcrx_ifq_reg reg;
	unsigned ifindex = 0;
	int ret;

	memset(z, 0, sizeof(*z));
	if (parse_spec(z, spec) < 0) {
		snprintf(z->why, sizeof(z->why),
			 "uring_zcrx \"%.40s\": expected IFNAME, IFNAME:QUEUE or nodev", spec);
		return -EINVAL;
	}
	if (!z->nodev) {
		ifindex = if_nametoindex(z->ifname);
		if (!ifindex) {
			ret = -errno;
			snprintf(z->why, sizeof(z->why), "uring_zcrx %s: %s", z->ifname,
				 strerror(-ret));
			return ret;
		}
	}
	z->area_len = (area_len + ZCRX_PAGE - 1) & ~(size_t)(ZCRX_PAGE - 1);
	z->area = mmap(NULL, z->area_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
		       0);
	/* The refill ring: a page for the head and tail, then the entries. */
	z->rq_len = ((size_t)ZCRX_RQ_ENTRIES * sizeof(struct wp_zcrx_rqe) + ZCRX_PAGE + ZCRX_PAGE -
		     1) &
		    ~(size_t)(ZCRX_PAGE - 1);
	z->rq_mem = mmap(NULL, z->rq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1,
			 0);
	if (z->area == MAP_FAILED || z->rq_mem == MAP_FAILED) {
		ret = -errno;
		snprintf(z->why, sizeof(z->why), "uring_zcrx: mmap of %zu + %zu bytes: %s",
			 z->area_len, z->rq_len, strerror(-ret));
		return ret;
	}
	memset(&ar, 0, sizeof(ar));
	ar.addr = (__u64)(uintptr_t)z->area;
	ar.len = z->area_len;
	memset(&rd, 0, sizeof(rd));
	rd.user_addr = (__u64)(uintptr_t)z->rq_mem;
	rd.size = z->rq_len;
	rd.flags = WP_IORING_MEM_REGION_TYPE_USER;
	memset(&reg, 0, sizeof(reg));
	reg.if_idx = ifindex;
	reg.if_rxq = z->rxq;
	reg.rq_entries = ZCRX_RQ_ENTRIES;
	reg.flags = z->nodev ? WP_ZCRX_REG_NODEV : 0;
	reg.area_ptr = (__u64)(uintptr_t)&ar;
	reg.region_ptr = (__u64)(uintptr_t)&rd;
	ret = syscall(__NR_io_uring_register, ring->ring_fd, WP_IORING_REGISTER_ZCRX_IFQ, &reg, 1) <
			      0
		      ? -errno
		      : 0;
	if (ret < 0) {
		if (z->nodev)
			snprintf(z->why, sizeof(z->why),
				 "register device-less (ZCRX_REG_NODEV): %s%s", strerror(-ret),
				 wp_zcrx_reason(ret));
		else
			snprintf(z->why, sizeof(z->why), "register %s queue %u: %s%s", z->ifname,
				 z->rxq, strerror(-ret), wp_zcrx_reason(ret));
		return ret;
	}
	/* The kernel may round the ring down; its offsets locate the parts. */
	if (!reg.rq_entries || (reg.rq_entries & (reg.rq_entries - 1)) ||
	    reg.offsets.rqes + (size_t)reg.rq_entries * sizeof(struct wp_zcrx_rqe) > z->rq_len ||
	    reg.offsets.head + 4 > z->rq_len || reg.offsets.tail + 4 > z->rq_len) {
		ret = -EPROTO;
		snprintf(z->why, sizeof(z->why),
			 "IORING_REGISTER_ZCRX_IFQ returned a refill ring of %u entries "
			 "(offsets %u/%u/%u) that does not fit %zu bytes",
			 reg.rq_entries, reg.offsets.head, reg.offsets.tail, reg.offsets.rqes,
			 z->rq_len);
		return ret; /* the ring's teardown unregisters it */
	}
	z->khead = (uint32_t *)(z->rq_mem + reg.offsets.head);
	z->ktail = (uint32_t *)(z->rq_mem + reg.offsets.tail);
	z->rqes = (struct wp_zcrx_rqe *)(z->rq_mem + reg.offsets.rqes);
	z->rq_entries = reg.rq_entries;
	z->rq_tail = IO_URING_READ_ONCE(*z->ktail);
	z->token = ar.rq_area_token;
	z->id = reg.zcrx_id;
	z->on = true;
	if (z->nodev)
		snprintf(z->why, sizeof(z->why),
			 "device-less (ZCRX_REG_NODEV): every byte copied into the %zu KiB area "
			 "by the kernel",
			 z->area_len >> 10);
	else
		snprintf(z->why, sizeof(z->why),
			 "%s queue %u, a %zu KiB area, %u refill entries: flows steered to that "
			 "queue arrive without a copy, the rest is copied by the kernel",
			 z->ifname, z->rxq, z->area_len >> 10, z->rq_entries);
	return 0;
}

void wp_zcrx_free(struct wp_zcrx *z)
{
	if (z->area && z->area != MAP_FAILED)
		munmap(z->area, z->area_len);
	if (z->rq_mem && z->rq_mem != MAP_FAILED)
		munmap(z->rq_mem, z->rq_len);
	z->area = NULL;
	z->rq_mem = NULL;
	z->on = false;
}

void wp_zcrx_prep_recv(const struct wp_zcrx *z, struct io_uring_sqe *sqe, int fd)
{
	io_uring_prep_rw(WP_IORING_OP_RECV_ZC, sqe, fd, NULL, 0, 0);
	sqe->ioprio |= IORING_RECV_MULTISHOT;
	sqe->file_index = z->id; /* zcrx_ifq_idx shares the union */
}

const uint8_t *wp_zcrx_data(struct wp_zcrx *z, const struct io_uring_cqe *cqe)
{
	const struct wp_zcrx_cqe *zc = (const struct wp_zcrx_cqe *)(cqe + 1);
	uint64_t off = zc->off & ~WP_IORING_ZCRX_AREA_MASK;

	z->cqes++;
	if (cqe->res <= 0 || off > z->area_len || (uint64_t)cqe->res > z->area_len - off)
		return NULL;
	z->bytes += (uint64_t)cqe->res;
	WP_CNT_ADD(zcrx_bytes, (uint64_t)cqe->res);
	return z->area + off;
}

void wp_zcrx_refill(struct wp_zcrx *z, const struct io_uring_cqe *cqe)
{
	const struct wp_zcrx_cqe *zc = (const struct wp_zcrx_cqe *)(cqe + 1);
	uint32_t head = IO_URING_READ_ONCE(*z->khead);
	struct wp_zcrx_rqe *rqe;

	if (z->rq_tail - head >= z->rq_entries) {
		/* 32768 chunks the kernel has not taken back yet: this one
		 * stays the kernel's until the ring goes (counted). */
		z->rq_full++;
		return;
	}
	rqe = &z->rqes[z->rq_tail & (z->rq_entries - 1)];
	rqe->off = (zc->off & ~WP_IORING_ZCRX_AREA_MASK) | z->token;
	rqe->len = (uint32_t)cqe->res;
	rqe->pad = 0;
	z->rq_tail++;
	io_uring_smp_store_release(z->ktail, z->rq_tail);
	z->refills++;
}
